//! Single active consumer (`x-single-active-consumer`): one consumer of
//! the queue at a time gets deliveries, the others wait. The active one is
//! the consumer of the highest `x-priority`, the earliest attached among
//! equals (RabbitMQ 3.12+; 3.10 ignores priorities and takes the earliest).
//! A consumer of higher priority than the active one takes over once the
//! active one has no unacked messages left (no new deliveries go to the
//! active one meanwhile), so messages are processed in order.
//!
//! When the active consumer's channel goes, its unacked messages are
//! requeued (the channel's settlements follow its consumers' removal over
//! the same ring): the next consumer only takes over once they are back,
//! so it gets them first, before newer messages. A basic.cancel leaves
//! them with the channel, as RabbitMQ does, and hands over at once.

use super::consumers::{Consumer, ConsumerKey, Consumers};
use super::Queue;

/// The single-active-consumer state of a queue.
#[derive(Debug, Default)]
pub(super) struct SingleActive {
    /// The consumer that gets the deliveries.
    holder: Option<ConsumerKey>,
    /// A holder whose channel went, and how many of its deliveries are
    /// still to be requeued: nobody gets deliveries until they are back.
    departed: Option<(ConsumerKey, u32)>,
}

impl SingleActive {
    /// A delivery of a removed consumer was settled.
    pub(super) fn departed_settled(&mut self, key: &ConsumerKey) {
        if let Some((departed, left)) = &mut self.departed {
            if departed == key {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    self.departed = None;
                }
            }
        }
    }
}

/// The consumer that should be active: the highest priority, the
/// earliest attached among equals.
fn choice(consumers: &Consumers) -> Option<usize> {
    let list = &consumers.list;
    let mut best: Option<usize> = None;
    for (i, c) in list.iter().enumerate() {
        if best.is_none_or(|b| c.priority() > list[b].priority()) {
            best = Some(i);
        }
    }
    best
}

impl SingleActive {
    /// The single active consumer, when it may take a delivery now.
    pub(super) fn next<'a>(&mut self, consumers: &'a mut Consumers) -> Option<&'a mut Consumer> {
        if self.departed.is_some() {
            return None;
        }
        let best = choice(consumers)?;
        let list = &mut consumers.list;
        let holder = self
            .holder
            .as_ref()
            .and_then(|h| list.iter().position(|c| c.key() == h));
        let index = match holder {
            Some(h) if list[best].priority() > list[h].priority() => {
                if list[h].unacked() > 0 {
                    // The better consumer waits for the holder's unacked.
                    return None;
                }
                best
            }
            Some(h) => h,
            None => best,
        };
        self.holder = Some(list[index].key().clone());
        let share = consumers.share();
        let consumer = &mut consumers.list[index];
        consumer.has_credit(share).then_some(consumer)
    }

    /// The active consumer (for the listings): the holder, or the one that
    /// will be once a delivery is due.
    fn active<'a>(&'a self, consumers: &'a Consumers) -> Option<&'a ConsumerKey> {
        self.holder
            .as_ref()
            .filter(|h| consumers.list.iter().any(|c| c.key() == *h))
            .or_else(|| choice(consumers).map(|i| consumers.list[i].key()))
    }
}

impl Queue {
    /// Consumers matching `gone` were removed: when the holder was one of
    /// them it no longer is; when its channel went (`requeue_follows`), the
    /// next one waits for its unacked messages to come back.
    pub(super) fn single_active_gone(
        &mut self,
        gone: impl Fn(&ConsumerKey) -> bool,
        requeue_follows: bool,
    ) {
        let Some(sac) = &mut self.single_active else {
            return;
        };
        let Some(holder) = sac.holder.take_if(|h| gone(h)) else {
            return;
        };
        if !requeue_follows {
            return;
        }
        let unacked = self
            .unacked
            .consumers()
            .filter(|c| *c == Some(&holder))
            .count() as u32;
        if unacked > 0 {
            sac.departed = Some((holder, unacked));
        }
    }

    /// Whether this queue has a single active consumer.
    pub fn is_single_active(&self) -> bool {
        self.single_active.is_some()
    }

    /// The key of the single active consumer, if the queue has one.
    pub fn single_active_consumer(&self) -> Option<&ConsumerKey> {
        self.single_active.as_ref()?.active(&self.consumers)
    }
}
