//! Message TTL on a queue's owner shard: one timer per shard, armed for the
//! earliest deadline of its queues (never one per message), expiring what
//! is due (`broker::queue::ttl` says where a message can be and what that
//! costs), handing expired messages to `shard::dead_letter` with reason
//! `expired`, and scanning paged runs that hold expired messages.
//!
//! The schedule holds at most one entry per queue (its earliest known
//! deadline); an entry that turns out early (the message left meanwhile)
//! just expires nothing and schedules the queue's next deadline. Paged runs
//! dropped unread (all expired, no dead-letter exchange) release their log
//! references without a log record: a restart that still finds them finds
//! them expired and drops them again.

use crate::broker::dead_letter::DeadLetterReason;
use crate::broker::paged::PageRead;
use crate::broker::queue::TtlScan;
use crate::broker::vhost::QueueName;
use crate::shard::dead_letter::{dead_letter, Letter};
use crate::shard::{paging, FastMap, Shard};
use glommio::timer::TimerActionOnce;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::{Rc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A scan that failed is tried again this much later.
const SCAN_RETRY_MS: u64 = 1000;

/// Now, in ms since the Unix epoch (the clock deadlines are kept in; they
/// are stored in the log, so they must mean the same after a restart).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The shard's expiry schedule and its one timer.
#[derive(Default)]
pub struct Timer {
    /// (deadline, queue), at most one per queue.
    due: RefCell<BTreeSet<(u64, QueueName)>>,
    /// queue → its entry's deadline in `due`.
    scheduled: RefCell<FastMap<QueueName, u64>>,
    /// The armed timer and when it fires.
    armed: RefCell<Option<(u64, TimerActionOnce<()>)>>,
}

/// Expires what of `queue` is due at `now` (`inclusive`: deadlines at `now`
/// too, else only before it) and schedules its next deadline.
pub fn expire_queue(shard: &Rc<Shard>, queue: &QueueName, now: u64, inclusive: bool) {
    let (expired, next) = {
        let mut queues = shard.queues.borrow_mut();
        let Some(q) = queues.get_mut(queue) else {
            return;
        };
        match q.next_deadline() {
            None => return,
            Some(at) if at > now || (at == now && !inclusive) => {
                drop(queues);
                schedule(shard, queue, at);
                return;
            }
            Some(_) => {}
        }
        let expired = shard.tracked(q, |q| q.expire(now, inclusive));
        (expired, q.next_deadline())
    };
    if let Some(log) = shard.log.as_ref() {
        for &(segment, n) in &expired.dropped {
            log.release_many(segment, segment, n);
        }
    }
    let letters = expired
        .letters
        .into_iter()
        .map(|message| Letter {
            message,
            reason: DeadLetterReason::Expired,
        })
        .collect();
    dead_letter(shard, queue, letters);
    for scan in expired.scans {
        spawn_scan(shard, queue.clone(), scan);
    }
    if let Some(at) = next {
        schedule(shard, queue, at);
    }
}

/// Notes that `queue` has something due at `at`, arming the timer if that
/// is earlier than what it waits for.
fn schedule(shard: &Rc<Shard>, queue: &QueueName, at: u64) {
    let t = &shard.ttl;
    {
        let mut scheduled = t.scheduled.borrow_mut();
        if scheduled.get(queue).is_some_and(|&s| s <= at) {
            return;
        }
        let mut due = t.due.borrow_mut();
        if let Some(old) = scheduled.insert(queue.clone(), at) {
            due.remove(&(old, queue.clone()));
        }
        due.insert((at, queue.clone()));
    }
    arm(shard, at);
}

/// Arms the shard's timer for `at` unless it fires earlier already.
fn arm(shard: &Rc<Shard>, at: u64) {
    let mut armed = shard.ttl.armed.borrow_mut();
    if armed.as_ref().is_some_and(|(a, _)| *a <= at) {
        return;
    }
    if let Some((_, old)) = armed.take() {
        old.destroy();
    }
    // +1: fire after the deadline's millisecond, not inside it.
    let wait = Duration::from_millis(at.saturating_sub(now_ms()) + 1);
    let weak = Rc::downgrade(shard);
    *armed = Some((at, TimerActionOnce::do_in(wait, fire(weak))));
}

/// The timer went off: expire every queue due, re-arm for the next.
async fn fire(shard: Weak<Shard>) {
    let Some(shard) = shard.upgrade() else {
        return;
    };
    drop(shard.ttl.armed.borrow_mut().take());
    let now = now_ms();
    let queues: Vec<QueueName> = {
        let mut due = shard.ttl.due.borrow_mut();
        let mut scheduled = shard.ttl.scheduled.borrow_mut();
        let mut out = Vec::new();
        while let Some((at, _)) = due.first() {
            if *at > now {
                break;
            }
            let (_, q) = due.pop_first().expect("peeked");
            scheduled.remove(&q);
            out.push(q);
        }
        out
    };
    for q in &queues {
        expire_queue(&shard, q, now, true);
    }
    let next = shard.ttl.due.borrow().first().map(|(at, _)| *at);
    if let Some(at) = next {
        arm(&shard, at);
    }
    shard.pump();
}

/// Scans a paged run for expired messages in the background.
fn spawn_scan(shard: &Rc<Shard>, queue: QueueName, scan: TtlScan) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let retry_at = run_scan(&shard, &queue, &scan).await;
        let next = match shard.queues.borrow_mut().get_mut(&queue) {
            Some(q) => {
                q.end_scan(&scan, retry_at);
                q.next_deadline()
            }
            None => None,
        };
        if let Some(at) = next {
            schedule(&shard, &queue, at);
        }
        shard.pump();
    })
    .detach();
}

/// Reads the run chunk by chunk, taking out the expired messages. Returns
/// when to try again if a read failed.
async fn run_scan(shard: &Rc<Shard>, queue: &QueueName, scan: &TtlScan) -> Option<u64> {
    let log = shard.log.as_ref()?;
    let mut offset = scan.from;
    while offset < scan.to {
        let read = PageRead {
            segment: scan.segment,
            offset,
            len: (scan.to - offset).min(paging::CHUNK),
            epoch: scan.epoch,
        };
        let (found, consumed) = match paging::read_chunk(shard, queue, &read).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(
                    shard = shard.id,
                    "cannot scan queue '{queue}' for expired messages in segment {}: {e}; \
                     retrying in {SCAN_RETRY_MS} ms",
                    scan.segment
                );
                return Some(now_ms() + SCAN_RETRY_MS);
            }
        };
        let letters = {
            let mut queues = shard.queues.borrow_mut();
            let q = queues.get_mut(queue)?;
            q.scan_chunk(scan, found, now_ms())
        };
        // Paged-only copies release their log reference as they come out,
        // as a page-in does; stored ones are dead_letter's to record.
        let paged_only = letters.iter().filter(|m| m.stored.is_none()).count() as u64;
        log.release_many(scan.segment, scan.segment, paged_only);
        let letters = letters
            .into_iter()
            .map(|message| Letter {
                message,
                reason: DeadLetterReason::Expired,
            })
            .collect();
        dead_letter(shard, queue, letters);
        if consumed == 0 {
            break;
        }
        offset += consumed;
    }
    None
}
