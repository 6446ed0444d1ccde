//! A channel's open transaction (tx.select … tx.commit / tx.rollback), as
//! RabbitMQ keeps it: publishes are routed when they arrive (a missing
//! exchange fails the publish then) but their copies wait here — and so
//! does a publish to an `x-delayed-message` exchange, held by the scheduler
//! only at commit (see `DelayedHold`); acks, nacks
//! and rejects take their deliveries off the channel's unacked list at
//! once (an unknown tag fails then) but reach the queues only at commit.
//! `into_commit` turns the buffer into one batch of `TxOp`s per owner shard,
//! in the order they were issued (publishes, then settlements, as
//! RabbitMQ's commit); `rollback` gives the settled deliveries back to the
//! unacked list and drops the publishes.
//!
//! Bounded memory (a deliberate difference: RabbitMQ has no bound): a
//! channel buffers at most `MAX_PUBLISHES` publishes, and the buffers of a
//! connection's channels together at most `MAX_CONNECTION_BYTES` (each
//! publish charged as its body, properties and names plus a fixed
//! overhead). Past either, the publish fails with a channel error 406
//! (`too_large`), which drops the channel's transaction. Settlements need
//! no bound of their own: they move deliveries the channel already held.

use crate::broker::error::{AmqpError, AmqpResult};
use crate::broker::message::MessageRef;
use crate::broker::queue::Settle;
use crate::connection::unacked::Unacked;
use crate::protocol::types::ShortStr;
use crate::shard::envelope::TxOp;
use crate::shard::metadata::ByOwner;
use std::cell::Cell;
use std::rc::Rc;

/// Most publishes one channel's transaction holds.
pub const MAX_PUBLISHES: usize = 262_144;

/// Most bytes the open transactions of one connection hold together.
pub const MAX_CONNECTION_BYTES: u64 = 128 << 20;

/// What a buffered publish is charged on top of its body, properties and
/// names (the message, its routing, the buffer's slots).
const PUBLISH_OVERHEAD: u64 = 256;

/// A publish routed at publish time, waiting for the commit.
#[derive(Debug)]
pub struct TxPublish {
    pub message: MessageRef,
    /// Its destination queues, per owner shard.
    pub by_owner: ByOwner,
    /// A mandatory publish that reached no queue: returned at commit.
    pub returned: bool,
    /// A publish to an `x-delayed-message` exchange with a delay: not
    /// routed, held by the scheduler at commit (and dropped by a rollback).
    pub delayed: Option<DelayedHold>,
}

/// How a delayed publish of a transaction is to be held at commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelayedHold {
    pub delay_ms: u64,
    /// Persistent message, durable exchange: a durable record.
    pub durable: bool,
}

/// What tx.commit hands out: one batch of steps per owner shard, and the
/// publishes to return to the client (mandatory, unroutable), in order.
#[derive(Debug, Default)]
pub struct Commit {
    pub by_owner: Vec<(u16, Vec<TxOp>)>,
    pub returns: Vec<MessageRef>,
    /// Delayed publishes, to hold with the publisher's shard's scheduler.
    pub delayed: Vec<(MessageRef, DelayedHold)>,
    /// Copies enqueued, and publishes that reached no queue (counters).
    pub routed_copies: u64,
    pub unroutable: u64,
    /// Each publish's exchange and whether it reached a queue (a delayed
    /// one has not yet), for the per-exchange `message_stats`.
    pub exchanges: Vec<(ShortStr, bool)>,
}

#[derive(Debug)]
pub struct TxBuffer {
    publishes: Vec<TxPublish>,
    /// Each settlement's deliveries (in tag order) and what it does.
    settlements: Vec<(Vec<Unacked>, Settle)>,
    settled: usize,
    bytes: u64,
    /// The bytes of every open transaction of the connection.
    connection_bytes: Rc<Cell<u64>>,
}

impl TxBuffer {
    pub fn new(connection_bytes: Rc<Cell<u64>>) -> TxBuffer {
        TxBuffer {
            publishes: Vec::new(),
            settlements: Vec::new(),
            settled: 0,
            bytes: 0,
            connection_bytes,
        }
    }

    /// A routed publish joins the transaction, unless it is over a bound.
    pub fn publish(&mut self, p: TxPublish) -> AmqpResult<()> {
        let m = &p.message;
        let names: usize = p
            .by_owner
            .iter()
            .flat_map(|(_, q)| q)
            .map(|q| q.len())
            .sum();
        let cost = m.body.len()
            + m.raw_properties.len() as u64
            + m.exchange.len() as u64
            + m.routing_key.len() as u64
            + names as u64
            + PUBLISH_OVERHEAD;
        if self.publishes.len() >= MAX_PUBLISHES {
            return Err(too_large(format!(
                "{MAX_PUBLISHES} messages on one channel"
            )));
        }
        let total = self.connection_bytes.get();
        if total + cost > MAX_CONNECTION_BYTES {
            return Err(too_large(format!(
                "{MAX_CONNECTION_BYTES} bytes on one connection"
            )));
        }
        self.connection_bytes.set(total + cost);
        self.bytes += cost;
        self.publishes.push(p);
        Ok(())
    }

    /// An ack / nack / reject: its deliveries wait for the commit.
    pub fn settle(&mut self, entries: Vec<Unacked>, how: Settle) {
        if entries.is_empty() {
            return;
        }
        self.settled += entries.len();
        self.settlements.push((entries, how));
    }

    /// Deliveries settled in the transaction, not yet committed.
    pub fn pending_settled(&self) -> usize {
        self.settled
    }

    /// tx.commit: the batches for the owners; the buffer is empty after.
    pub fn into_commit(&mut self) -> Commit {
        let mut c = Commit::default();
        for p in std::mem::take(&mut self.publishes) {
            c.exchanges
                .push((p.message.exchange.clone(), !p.by_owner.is_empty()));
            if let Some(hold) = p.delayed {
                // As outside a transaction, a mandatory one is returned
                // (nothing is routed until its time).
                if p.returned {
                    c.returns.push(p.message.clone());
                }
                c.delayed.push((p.message, hold));
                continue;
            }
            if p.by_owner.is_empty() {
                c.unroutable += 1;
                if p.returned {
                    c.returns.push(p.message.clone());
                }
            }
            for (owner, queues) in p.by_owner {
                c.routed_copies += queues.len() as u64;
                batch(&mut c.by_owner, owner).push(TxOp::Enqueue {
                    queues,
                    message: p.message.clone(),
                });
            }
        }
        for (entries, how) in std::mem::take(&mut self.settlements) {
            for e in entries {
                let ops = batch(&mut c.by_owner, e.owner);
                match ops.last_mut() {
                    Some(TxOp::Settle {
                        queue,
                        msg_ids,
                        how: h,
                    }) if *queue == e.queue && *h == how => msg_ids.push(e.msg_id),
                    _ => ops.push(TxOp::Settle {
                        queue: e.queue,
                        msg_ids: vec![e.msg_id],
                        how,
                    }),
                }
            }
        }
        self.settled = 0;
        self.release_bytes();
        c
    }

    /// tx.rollback (or the channel going away): the publishes are dropped;
    /// the deliveries settled in the transaction are returned, to be
    /// unacked again.
    pub fn rollback(&mut self) -> Vec<Unacked> {
        self.publishes.clear();
        self.settled = 0;
        self.release_bytes();
        std::mem::take(&mut self.settlements)
            .into_iter()
            .flat_map(|(entries, _)| entries)
            .collect()
    }

    fn release_bytes(&mut self) {
        let total = self.connection_bytes.get();
        self.connection_bytes.set(total.saturating_sub(self.bytes));
        self.bytes = 0;
    }
}

impl Drop for TxBuffer {
    fn drop(&mut self) {
        self.release_bytes();
    }
}

/// The batch for `owner`, created empty at the end if there is none yet.
fn batch(by_owner: &mut Vec<(u16, Vec<TxOp>)>, owner: u16) -> &mut Vec<TxOp> {
    let i = match by_owner.iter().position(|(o, _)| *o == owner) {
        Some(i) => i,
        None => {
            by_owner.push((owner, Vec::new()));
            by_owner.len() - 1
        }
    };
    &mut by_owner[i].1
}

/// The channel error for a transaction over Warren's bound.
pub fn too_large(bound: String) -> AmqpError {
    AmqpError::precondition_failed(format!(
        "transaction too large: uncommitted publishes exceed Warren's bound of {bound} \
         (commit more often)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::vhost::QueueName;
    use crate::connection::delivery::tests::message;
    use std::sync::Arc;

    fn unacked(tag: u64, queue: &str, owner: u16) -> Unacked {
        Unacked {
            tag,
            queue: QueueName::default_vhost(queue),
            owner,
            msg_id: tag + 100,
            timeout: None,
            delivered_at: 0,
        }
    }

    fn publish(body: &[u8], by_owner: Vec<(u16, Vec<&str>)>, returned: bool) -> TxPublish {
        TxPublish {
            message: Arc::new(message(body)),
            by_owner: by_owner
                .into_iter()
                .map(|(o, qs)| (o, qs.into_iter().map(QueueName::default_vhost).collect()))
                .collect(),
            returned,
            delayed: None,
        }
    }

    /// (owner, step) where a step is `E:<queues>` or `S:<queue>:<ids>:<how>`.
    fn steps(c: &Commit) -> Vec<(u16, String)> {
        c.by_owner
            .iter()
            .flat_map(|(owner, ops)| {
                ops.iter().map(move |op| {
                    let s = match op {
                        TxOp::Enqueue { queues, .. } => format!(
                            "E:{}",
                            queues
                                .iter()
                                .map(|q| q.as_str())
                                .collect::<Vec<_>>()
                                .join(",")
                        ),
                        TxOp::Settle {
                            queue,
                            msg_ids,
                            how,
                        } => format!("S:{queue}:{msg_ids:?}:{how:?}"),
                    };
                    (*owner, s)
                })
            })
            .collect()
    }

    #[test]
    fn a_commit_is_one_batch_per_owner_publishes_then_settlements_in_order() {
        let bytes = Rc::new(Cell::new(0));
        let mut tx = TxBuffer::new(bytes.clone());
        tx.publish(publish(
            b"a",
            vec![(1, vec!["q1"]), (0, vec!["q0", "r0"])],
            false,
        ))
        .unwrap();
        tx.settle(
            vec![unacked(1, "q0", 0), unacked(2, "q1", 1)],
            Settle::Remove,
        );
        tx.publish(publish(b"b", vec![], true)).unwrap();
        tx.publish(publish(b"c", vec![], false)).unwrap();
        tx.settle(vec![unacked(3, "q0", 0)], Settle::Remove);
        tx.settle(vec![unacked(4, "q0", 0)], Settle::Requeue);
        tx.settle(Vec::new(), Settle::Remove);
        assert_eq!(tx.pending_settled(), 4);
        assert!(bytes.get() > 0);
        let c = tx.into_commit();
        assert_eq!(
            steps(&c),
            vec![
                (1, "E:q1".to_string()),
                (1, "S:q1:[102]:Remove".to_string()),
                (0, "E:q0,r0".to_string()),
                (0, "S:q0:[101, 103]:Remove".to_string()),
                (0, "S:q0:[104]:Requeue".to_string()),
            ]
        );
        assert_eq!(c.returns.len(), 1, "only the mandatory one is returned");
        assert_eq!((c.routed_copies, c.unroutable), (3, 2));
        assert_eq!(bytes.get(), 0, "the connection's bytes are released");
        assert_eq!(tx.pending_settled(), 0);
    }

    #[test]
    fn rollback_returns_the_settled_deliveries_and_drops_release_bytes() {
        let bytes = Rc::new(Cell::new(0));
        let mut a = TxBuffer::new(bytes.clone());
        let mut b = TxBuffer::new(bytes.clone());
        a.publish(publish(b"x", vec![(0, vec!["q"])], false))
            .unwrap();
        b.publish(publish(b"y", vec![(0, vec!["q"])], false))
            .unwrap();
        let one = bytes.get() / 2;
        a.settle(vec![unacked(5, "q", 0)], Settle::Remove);
        let back: Vec<u64> = a.rollback().iter().map(|u| u.tag).collect();
        assert_eq!(back, vec![5]);
        assert_eq!(bytes.get(), one);
        assert!(a.into_commit().by_owner.is_empty());
        drop(b);
        assert_eq!(bytes.get(), 0, "a dropped buffer releases its bytes");
    }

    #[test]
    fn delayed_publishes_are_handed_out_at_commit_and_dropped_by_rollback() {
        let bytes = Rc::new(Cell::new(0));
        let mut tx = TxBuffer::new(bytes.clone());
        let hold = DelayedHold {
            delay_ms: 500,
            durable: true,
        };
        let delayed = |body: &[u8], mandatory: bool| TxPublish {
            delayed: Some(hold),
            ..publish(body, vec![], mandatory)
        };
        tx.publish(delayed(b"gone", false)).unwrap();
        assert!(tx.rollback().is_empty());
        assert_eq!(bytes.get(), 0);
        tx.publish(delayed(b"d1", true)).unwrap();
        tx.publish(publish(b"p", vec![(0, vec!["q"])], false))
            .unwrap();
        tx.publish(delayed(b"d2", false)).unwrap();
        let c = tx.into_commit();
        let held: Vec<&[u8]> = c
            .delayed
            .iter()
            .map(|(m, h)| {
                assert_eq!(*h, hold);
                m.body.chunks()[0].as_ref()
            })
            .collect();
        assert_eq!(held, [b"d1".as_ref(), b"d2".as_ref()]);
        // Not routed now, so not unroutable; a mandatory one is returned,
        // as the plugin returns it at publish time outside a transaction.
        assert_eq!((c.routed_copies, c.unroutable), (1, 0));
        assert_eq!(c.returns.len(), 1);
        assert_eq!(steps(&c), vec![(0, "E:q".to_string())]);
    }

    #[test]
    fn the_connection_bound_refuses_a_publish_with_a_406() {
        let bytes = Rc::new(Cell::new(MAX_CONNECTION_BYTES - 100));
        let mut tx = TxBuffer::new(bytes.clone());
        let e = tx
            .publish(publish(b"z", vec![(0, vec!["q"])], false))
            .unwrap_err();
        assert_eq!(e.code, 406);
        assert!(e.text.contains("transaction too large"), "{}", e.text);
        assert_eq!(bytes.get(), MAX_CONNECTION_BYTES - 100, "nothing charged");
    }
}
