//! Publish flow control, the queue owner's side: the credit a publishing
//! connection needs to go on reading its socket (Warren's counterpart of
//! RabbitMQ's `credit_flow` between reader, channel and queue).
//!
//! A publishing connection may have `PUBLISH_CREDIT` publishes on their
//! way to each owner shard (`connection::credit` counts them). The owner
//! owes one credit per `Envelope::Enqueue` that names its publisher and
//! pays it back (`Envelope::PublishCredit`, one per publisher per pump)
//! once the copy is no longer "ahead of egress". The credit of a publish
//! is held by one of its queues (the deepest) while that queue
//!
//! - has a consumer,
//! - holds more than `HOLD_READY` ready messages in memory, and
//! - delivered during the last `STALL_TICKS` ticks (`TICK`) or since: its
//!   consumers are taking messages, just not as fast as they arrive.
//!
//! Everything else pays at once, at the end of the pump that enqueued the
//! copy: a queue without consumers (it takes publishes at memory, then
//! disk, speed: paging and the log's own back-pressure bound it), a
//! queue whose consumers stopped taking messages (prefetch full, a socket
//! that does not drain), a queue that is gone. Held credit is re-examined
//! after every pump and every tick, so credit is never held for more than
//! `STALL_TICKS` ticks after its queue's deliveries stop: no wait here can
//! become a cycle. (A connection with unacked deliveries of its own is not
//! held at all, see `connection::credit`: its acks must get through.)
//! Ticks are counted, not wall time, so a shard starved of CPU for a
//! while does not mistake its own pause for its consumers stopping.

use crate::broker::queue::{FlowDebt, Publisher, Queue};
use crate::broker::vhost::QueueName;
use crate::shard::envelope::{ConnKey, Envelope};
use crate::shard::Shard;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// Publishes a connection may have on their way to one owner shard before
/// it stops reading its socket: about one 64 KiB read of small publishes
/// (RabbitMQ's chain allows 400 per link, but moves one message per
/// step; a Warren reader moves a read buffer per step). A reader checks
/// its credit between read batches, so it may overshoot by one read
/// buffer's worth.
pub const PUBLISH_CREDIT: u32 = 1024;

/// Ready messages in memory above which a queue with a consumer that is
/// taking messages holds its publishers' credit: enough to refill its
/// consumers' prefetch windows while paid credit turns into publishes,
/// small enough that the queue stays a few milliseconds of delivery deep.
pub const HOLD_READY: usize = 1024;

/// How often held credit is looked at even when nothing happens.
const TICK: Duration = Duration::from_millis(10);

/// Ticks without a delivery after which a queue counts as stalled (its
/// consumers stopped taking messages) and pays what it holds: long enough
/// that a client's hiccup on a loaded machine is not taken for a stop.
const STALL_TICKS: u32 = 25;

/// Owed entries a queue merges a new debt into (the most recent ones);
/// past them it appends, so a queue owes at most one entry per credit held.
const MERGE_WINDOW: usize = 8;

/// The flow state of a shard's queues. Each queue keeps its own debt
/// (`Queue::flow_debt`); this lists which queues have some.
#[derive(Default)]
pub struct Flow {
    /// Queues with flow state (looked at every tick).
    tracked: RefCell<Vec<QueueName>>,
    /// Queues with owed credit, looked at by the next `settle`.
    owing: RefCell<Vec<QueueName>>,
    /// Credit paid by the next `settle`.
    paying: RefCell<Vec<(ConnKey, u32)>>,
    ticking: Cell<bool>,
}

impl Flow {
    /// Whether `settle` has anything to look at.
    pub fn busy(&self) -> bool {
        !self.owing.borrow().is_empty() || !self.paying.borrow().is_empty()
    }

    /// `publisher`'s publish reached none of its queues here: paid at the
    /// end of the pump.
    pub fn pay_later(&self, publisher: ConnKey) {
        self.paying.borrow_mut().push((publisher, 1));
    }

    /// Moves what a debt holds to the next payment.
    fn pay_all(&self, debt: &mut FlowDebt) {
        self.paying
            .borrow_mut()
            .extend(debt.owed.drain(..).map(|(p, n)| (conn_key(p), n)));
    }
}

fn conn_key((shard, id): Publisher) -> ConnKey {
    ConnKey { shard, id }
}

/// Whether `q` holds the credit of what it was sent.
fn holds(q: &Queue, f: &FlowDebt) -> bool {
    q.consumer_count() > 0
        && q.resident_count() > HOLD_READY
        && (f.idle_ticks < STALL_TICKS || q.stats().deliver_get() != f.mark)
}

/// `publisher` sent one publish whose holder (the deepest of its queues
/// on this shard, measured before the enqueue) is `q`, named `name`: the
/// shard owes it one credit, held by `q`. Called by the enqueue, with the
/// queue it already looked up.
pub fn owe(shard: &Rc<Shard>, q: &mut Queue, name: &QueueName, publisher: ConnKey) {
    let flow = &shard.flow;
    let mark = q.stats().deliver_get();
    let debt = q.flow_debt();
    match debt {
        Some(f) => {
            if f.owed.is_empty() {
                flow.owing.borrow_mut().push(name.clone());
            }
            add_debt(&mut f.owed, (publisher.shard, publisher.id));
        }
        None => {
            *debt = Some(Box::new(FlowDebt {
                mark,
                // Stalled until a delivery is seen.
                idle_ticks: STALL_TICKS,
                owed: vec![((publisher.shard, publisher.id), 1)],
            }));
            flow.owing.borrow_mut().push(name.clone());
            flow.tracked.borrow_mut().push(name.clone());
            if !flow.ticking.replace(true) {
                let shard = shard.clone();
                glommio::spawn_local(async move { tick_loop(shard).await }).detach();
            }
        }
    }
}

/// A queue is going away: what it holds is paid at the end of the pump.
pub fn forget(shard: &Shard, q: &mut Queue) {
    if let Some(mut f) = q.flow_debt().take() {
        shard.flow.pay_all(&mut f);
    }
}

fn add_debt(owed: &mut Vec<(Publisher, u32)>, publisher: Publisher) {
    let start = owed.len().saturating_sub(MERGE_WINDOW);
    match owed[start..]
        .iter_mut()
        .rev()
        .find(|(k, _)| *k == publisher)
    {
        Some((_, n)) => *n += 1,
        None => owed.push((publisher, 1)),
    }
}

/// After a pump's deliveries: pays the credit its queues no longer hold.
pub fn settle(shard: &Rc<Shard>) {
    let flow = &shard.flow;
    if !flow.busy() {
        return;
    }
    let owing = std::mem::take(&mut *flow.owing.borrow_mut());
    let mut still = Vec::new();
    {
        let mut queues = shard.queues.borrow_mut();
        for name in owing {
            // A queue gone paid at its drop (`forget`).
            let Some(q) = queues.get_mut(&name) else {
                continue;
            };
            let held = match q.flow_state() {
                Some(f) if !f.owed.is_empty() => holds(q, f),
                _ => continue,
            };
            if held {
                still.push(name);
            } else if let Some(f) = q.flow_debt() {
                flow.pay_all(f);
            }
        }
    }
    flow.owing.borrow_mut().append(&mut still);
    pay(shard);
}

/// Sends what `paying` holds: one envelope per publisher.
fn pay(shard: &Shard) {
    let mut paying = std::mem::take(&mut *shard.flow.paying.borrow_mut());
    if paying.is_empty() {
        return;
    }
    paying.sort_unstable_by_key(|(k, _)| (k.shard, k.id));
    let mut i = 0;
    while i < paying.len() {
        let key = paying[i].0;
        let mut n = 0u32;
        while i < paying.len() && paying[i].0 == key {
            n = n.saturating_add(paying[i].1);
            i += 1;
        }
        shard.send(
            key.shard,
            Envelope::PublishCredit {
                conn: key.id,
                owner: shard.id,
                n,
            },
        );
    }
}

/// Every `TICK` while any queue has flow state: notes which queues
/// delivered, pays what queues that stalled hold, and forgets the state
/// of queues that owe nothing and are stalled.
async fn tick_loop(shard: Rc<Shard>) {
    loop {
        glommio::timer::sleep(TICK).await;
        let empty = {
            let mut queues = shard.queues.borrow_mut();
            let mut tracked = shard.flow.tracked.borrow_mut();
            // A queue deleted and declared again may be listed twice.
            tracked.sort_unstable();
            tracked.dedup();
            tracked.retain(|name| {
                // A queue gone paid at its drop (`forget`).
                let Some(q) = queues.get_mut(name) else {
                    return false;
                };
                let now = q.stats().deliver_get();
                let Some(f) = q.flow_debt().as_deref_mut() else {
                    return false;
                };
                if now != f.mark {
                    f.mark = now;
                    f.idle_ticks = 0;
                } else {
                    f.idle_ticks = f.idle_ticks.saturating_add(1);
                }
                let stalled = f.idle_ticks >= STALL_TICKS;
                if q.flow_state()
                    .is_some_and(|f| !f.owed.is_empty() && !holds(q, f))
                {
                    if let Some(f) = q.flow_debt() {
                        shard.flow.pay_all(f);
                    }
                }
                let owes = q.flow_state().is_some_and(|f| !f.owed.is_empty());
                if stalled && !owes {
                    *q.flow_debt() = None;
                    return false;
                }
                true
            });
            tracked.is_empty()
        };
        {
            let queues = shard.queues.borrow();
            shard.flow.owing.borrow_mut().retain(|n| {
                queues
                    .get(n)
                    .and_then(|q| q.flow_state())
                    .is_some_and(|f| !f.owed.is_empty())
            });
        }
        pay(&shard);
        shard.pump();
        if empty {
            shard.flow.ticking.set(false);
            return;
        }
    }
}
