//! Messages a queue let go of that are being dead-lettered: taken out of
//! the unacked set by a reject / nack without requeue (`reject`), and held
//! — neither ready nor unacked, never delivered again — while their copies
//! travel to the dead-letter targets, until the shard runtime hears that
//! every copy that must survive a restart is on disk (`release_dead_lettered`;
//! then the source's removal is recorded). Held messages keep their log
//! references (`stored_segments` counts them), so deleting the queue
//! meanwhile releases them with the rest.

use super::ready::QueuedMessage;
use super::Queue;
use std::collections::HashMap;

/// The held messages of a queue, by the shard's dead-letter ticket (the
/// map allocated at the first: an idle queue holds a null pointer).
#[derive(Debug, Default)]
pub(super) struct DeadLettering {
    // Boxed on purpose: one pointer instead of an empty map's 48 bytes.
    #[allow(clippy::box_collection)]
    by_ticket: Option<Box<HashMap<u64, QueuedMessage>>>,
}

impl DeadLettering {
    pub(super) fn messages(&self) -> impl Iterator<Item = &QueuedMessage> {
        self.by_ticket.iter().flat_map(|m| m.values())
    }
}

impl Queue {
    /// basic.reject / basic.nack without requeue: the delivered messages
    /// `ids` leave the unacked set (their consumers get their credit back)
    /// and are returned, in id order, to be dead-lettered. Unknown ids are
    /// ignored.
    pub fn reject(&mut self, ids: &[u64]) -> Vec<QueuedMessage> {
        let mut rejected = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(entry) = self.unacked.remove(*id) else {
                continue;
            };
            if let Some(key) = entry.consumer() {
                let cost = super::ready::resident_cost(&entry.message.message);
                self.consumers.settled(key, cost);
            }
            rejected.push(entry.message);
        }
        rejected.sort_unstable_by_key(|m| m.id);
        rejected
    }

    /// Holds `message` while its dead-lettered copies, under `ticket`, are
    /// made safe.
    pub fn hold_dead_lettering(&mut self, ticket: u64, message: QueuedMessage) {
        self.dead_lettering
            .by_ticket
            .get_or_insert_with(Default::default)
            .insert(ticket, message);
    }

    /// The message held under `ticket`, no longer held.
    pub fn release_dead_lettered(&mut self, ticket: u64) -> Option<QueuedMessage> {
        self.dead_lettering.by_ticket.as_mut()?.remove(&ticket)
    }

    /// Messages held while being dead-lettered.
    pub fn dead_lettering_count(&self) -> usize {
        self.dead_lettering
            .by_ticket
            .as_ref()
            .map_or(0, |m| m.len())
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::broker::message::{Body, Message};
    use crate::protocol::types::FieldTable;
    use bytes::Bytes;
    use std::sync::Arc;

    fn queue() -> Queue {
        Queue::new(
            ShortStr::from("q"),
            QueueConfig {
                durable: true,
                exclusive: false,
                auto_delete: false,
                arguments: FieldTable::new(),
            },
        )
    }

    fn msg(n: u32) -> MessageRef {
        Arc::new(Message {
            exchange: ShortStr::EMPTY,
            routing_key: ShortStr::from("q"),
            raw_properties: Bytes::from_static(&[0, 0]),
            body: Body::from(Bytes::from(n.to_string())),
            persistent: true,
        })
    }

    #[test]
    fn rejected_messages_leave_and_held_ones_are_neither_ready_nor_unacked() {
        let mut q = queue();
        let key = ConsumerKey {
            shard: 0,
            conn: 1,
            channel: 1,
            tag: ShortStr::from("c"),
        };
        q.add_consumer(ConsumerSpec {
            key: key.clone(),
            no_ack: false,
            exclusive: false,
            prefetch: 2,
            priority: 0,
        })
        .unwrap();
        q.activate(&key);
        for n in 0..3 {
            let id = q.publish(msg(n));
            q.record_written(id, 7, 0, 10, None);
        }
        let a = q.next_delivery().unwrap();
        let b = q.next_delivery().unwrap();
        assert!(q.next_delivery().is_none(), "prefetch 2");
        // Unknown ids are ignored; the result is in id order.
        let rejected = q.reject(&[b.msg_id, 99, a.msg_id]);
        assert_eq!(
            rejected.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![a.msg_id, b.msg_id]
        );
        assert_eq!(q.unacked_count(), 0);
        assert_eq!(q.message_count(), 1);
        for (ticket, m) in rejected.into_iter().enumerate() {
            q.hold_dead_lettering(ticket as u64, m);
        }
        assert_eq!(q.dead_lettering_count(), 2);
        assert_eq!((q.message_count(), q.unacked_count()), (1, 0));
        // The consumer got its credit back; held messages are not delivered.
        let c = q.next_delivery().unwrap();
        assert_eq!(c.message.body.to_bytes(), Bytes::from("2"));
        assert!(q.next_delivery().is_none());
        // Held messages keep their log references.
        assert_eq!(q.stored_segments().iter().map(|(_, n)| n).sum::<u64>(), 3);
        assert_eq!(q.release_dead_lettered(0).map(|m| m.id), Some(a.msg_id));
        assert!(q.release_dead_lettered(0).is_none());
        assert_eq!(q.dead_lettering_count(), 1);
    }
}
