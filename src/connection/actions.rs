//! What a channel asks its shard to do (the channel itself sends nothing):
//! envelopes for queue owners — settlements, a channel's consumers gone —
//! and deliveries to give back to their queues. The settlements for what an
//! ack, nack, reject, recover or a dying channel names are grouped here,
//! one envelope per (owner, queue), message ids in tag order.

use crate::broker::queue::{Delivery, Settle};
use crate::broker::vhost::QueueName;
use crate::connection::unacked::Unacked;
use crate::shard::envelope::Envelope;
use crate::shard::Shard;

/// Work a channel hands its shard: the channel itself sends nothing.
#[derive(Debug)]
pub enum ToShard {
    /// An envelope for shard `owner`.
    Send { owner: u16, envelope: Envelope },
    /// A delivery never written to the client goes back to its queue.
    Bounce {
        queue: QueueName,
        owner: u16,
        delivery: Delivery,
    },
}

impl ToShard {
    /// Queues it on the shard (sent at the next pump).
    pub fn apply(self, shard: &Shard) {
        match self {
            ToShard::Send { owner, envelope } => shard.send(owner, envelope),
            ToShard::Bounce {
                queue,
                owner,
                delivery,
            } => shard.bounce_delivery(queue, owner, delivery),
        }
    }
}

/// Settle envelopes for settled entries: one per (owner, queue), message
/// ids in tag order.
pub fn settle_envelopes(entries: Vec<Unacked>, how: Settle) -> Vec<ToShard> {
    let mut actions: Vec<ToShard> = Vec::new();
    // The first queue's ids get room for every entry (usually all are
    // one queue's: one allocation); the others grow as they need, so
    // what is reserved stays under twice the entries.
    let mut first_room = entries.len();
    for e in entries {
        let group = actions.iter_mut().find_map(|a| match a {
            ToShard::Send {
                owner,
                envelope: Envelope::Settle { queue, msg_ids, .. },
            } if *owner == e.owner && *queue == e.queue => Some(msg_ids),
            _ => None,
        });
        match group {
            Some(msg_ids) => msg_ids.push(e.msg_id),
            None => actions.push(ToShard::Send {
                owner: e.owner,
                envelope: Envelope::Settle {
                    queue: e.queue,
                    msg_ids: {
                        let mut ids = Vec::with_capacity(std::mem::take(&mut first_room).max(1));
                        ids.push(e.msg_id);
                        ids
                    },
                    how,
                },
            }),
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settlements_are_grouped_per_queue_in_tag_order() {
        let entries = [("a", 0, 1), ("b", 1, 7), ("a", 0, 2)]
            .into_iter()
            .enumerate()
            .map(|(i, (queue, owner, msg_id))| Unacked {
                tag: i as u64 + 1,
                queue: QueueName::default_vhost(queue),
                owner,
                msg_id,
                timeout: None,
                delivered_at: 0,
            })
            .collect();
        let got: Vec<(u16, String, Vec<u64>)> = settle_envelopes(entries, Settle::Remove)
            .into_iter()
            .map(|a| match a {
                ToShard::Send {
                    owner,
                    envelope:
                        Envelope::Settle {
                            queue,
                            msg_ids,
                            how: Settle::Remove,
                        },
                } => (owner, queue.to_string(), msg_ids),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            vec![(0, "a".into(), vec![1, 2]), (1, "b".into(), vec![7])]
        );
    }
}
