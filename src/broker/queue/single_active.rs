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

impl Consumers {
    /// The consumer that should be active: the highest priority, the
    /// earliest attached among equals.
    fn single_active_choice(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, c) in self.list.iter().enumerate() {
            if best.is_none_or(|b| c.priority() > self.list[b].priority()) {
                best = Some(i);
            }
        }
        best
    }

    /// The single active consumer, when it may take a delivery now.
    pub(super) fn next_single_active(&mut self) -> Option<&mut Consumer> {
        let sac = self.single_active.as_ref().expect("single active queue");
        if sac.departed.is_some() {
            return None;
        }
        let best = self.single_active_choice()?;
        let holder = sac
            .holder
            .as_ref()
            .and_then(|h| self.list.iter().position(|c| c.key() == h));
        let index = match holder {
            Some(h) if self.list[best].priority() > self.list[h].priority() => {
                if self.list[h].unacked() > 0 {
                    // The better consumer waits for the holder's unacked.
                    return None;
                }
                best
            }
            Some(h) => h,
            None => best,
        };
        let key = self.list[index].key().clone();
        self.single_active.as_mut().expect("checked").holder = Some(key);
        let consumer = &mut self.list[index];
        consumer.has_credit().then_some(consumer)
    }

    /// The tag of the active consumer (for `list_queues`), once one was
    /// chosen.
    pub(super) fn single_active_tag(&self) -> Option<&ConsumerKey> {
        let sac = self.single_active.as_ref()?;
        sac.holder
            .as_ref()
            .filter(|h| self.list.iter().any(|c| c.key() == *h))
            .or_else(|| self.single_active_choice().map(|i| self.list[i].key()))
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
        let Some(sac) = &mut self.consumers.single_active else {
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
        self.consumers.single_active.is_some()
    }

    /// The key of the single active consumer, if the queue has one.
    pub fn single_active_consumer(&self) -> Option<&ConsumerKey> {
        self.consumers.single_active_tag()
    }
}
