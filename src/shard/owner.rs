//! The queue-owner side of a shard: applies enqueues, settlements and
//! credit to the queues this shard owns, answers requests about them
//! (stats, purge, get, consume, cancel, drop), and turns ready messages into
//! deliveries for consumers on any shard.

use crate::broker::dead_letter::DeadLetterReason;
use crate::broker::error::AmqpError;
use crate::broker::message::{MessageRef, DETACH_AT_MOST};
use crate::broker::queue::{ConsumerKey, Queue, Settle};
use crate::broker::vhost::{QueueName, QueueNames};
use crate::shard::confirm::ConfirmOutcome;
use crate::shard::counters::Counters;
use crate::shard::dead_letter::{self, Letter};
use crate::shard::envelope::{
    ConnKey, Envelope, GotMessage, QueueSnapshot, QueueStats, Reply, Request, ShardSnapshot,
};
use crate::shard::slices::{self, SliceSweep};
use crate::shard::{durability, flow, limits, paging, ttl, Shard, LEADER};
use crate::storage::Target;
use std::rc::Rc;

fn no_queue(shard: &Shard, name: &QueueName) -> AmqpError {
    let vhost = shard.meta.borrow().vhost_name(name.vhost);
    AmqpError::not_found(format!("no queue '{name}' in vhost '{vhost}'"))
}

/// Most targets one message record holds (its count is a u16): a copy
/// set larger than this is written as several records, each with the body.
pub const MAX_RECORD_TARGETS: usize = u16::MAX as usize;

/// What a queue keeps in memory of a message.
enum Retained {
    /// The message itself: a consumer may take it at once, or it is large.
    Original,
    /// The message itself, marked to be copied out by the sweep if it is
    /// still waiting then (`queue::slices`): a small message for one queue.
    Slices,
    /// A copy detached from the read buffer (`Message::detached`), made
    /// once per publish for every queue that keeps it: a small message
    /// for several queues, or a queue whose order the sweep cannot follow.
    Detached,
}

/// How `q` keeps a message that `copies` queues get: a message that will
/// wait must not hold its publisher's read buffer for long, so that a
/// waiting message is charged for what it really holds. A small one for
/// one queue keeps its slices until the sweep, unless the current sweep
/// generation has touched its share of read buffers
/// (`SliceSweep::admit`): then it is copied at once, like the others.
fn retained(q: &Queue, message: &MessageRef, copies: usize, sweep: &SliceSweep) -> Retained {
    let waits = q.resident_count() > 0 || q.consumer_count() == 0;
    let small = message.body.len() + message.raw_properties.len() as u64 <= DETACH_AT_MOST;
    if !(waits && small) {
        return Retained::Original;
    }
    if copies == 1 && q.keeps_slices() && sweep.admit(message) {
        Retained::Slices
    } else {
        Retained::Detached
    }
}

/// Enqueues one published message's copies for queues of this shard and
/// says what its publisher gets (see `confirm::ConfirmOutcome`). A queue
/// over its memory share pages the copy straight to the log; the durable
/// copies (persistent message, durable queue) share one `Message` record
/// (several past `MAX_RECORD_TARGETS`), the other paged copies one `Paged`
/// record. A copy whose record the log refused fails the publish: a paged
/// one is dropped (it cannot be kept in order behind its queue's tail), an
/// in-memory one stays queued but unrecorded (a restart loses it, like a
/// transient copy) — its publisher gets a nack either way.
///
/// `publisher` (a client's publish with flow credit) is owed one credit,
/// held by the deepest of the queues (`shard::flow`), found here with the
/// lookup the enqueue makes anyway; paid at once if no queue is left.
pub fn enqueue(
    shard: &Rc<Shard>,
    names: QueueNames,
    message: MessageRef,
    publisher: Option<ConnKey>,
) -> ConfirmOutcome {
    // A publish routes within one vhost; copies of several vhosts (never
    // made today) are enqueued per vhost, one record each.
    let Some(vhost) = names.first().map(|n| n.vhost) else {
        if let Some(p) = publisher {
            shard.flow.pay_later(p);
        }
        return ConfirmOutcome::Now;
    };
    if names.iter().any(|n| n.vhost != vhost) {
        let (this, rest): (QueueNames, QueueNames) =
            names.into_iter().partition(|n| n.vhost == vhost);
        return enqueue(shard, this, message.clone(), publisher)
            .and(enqueue(shard, rest, message, None));
    }
    let limit = shard.queue_memory_limit();
    // Read the clock once, and only for a copy that has a TTL.
    let mut now = None;
    // The coarse clock of message ages: read once per enqueue.
    let mut clock = None;
    // The message copied out of its read buffer, made once for the queues
    // that will keep it waiting (`Retained::Detached`).
    let mut detached: Option<MessageRef> = None;
    let mut durable: Vec<Target> = Vec::new();
    // Whether each of the `durable` copies is paged out.
    let mut durable_paged: Vec<bool> = Vec::new();
    let mut transient_paged: Vec<Target> = Vec::new();
    let mut outcome = ConfirmOutcome::Now;
    // Paged copies the log refused: dropped.
    let mut lost = 0;
    let mut paged_out = 0;
    // Copies refused by reject-publish-dlx, to dead-letter.
    let mut rejected = Vec::new();
    // Queues that got a copy due at once (TTL 0): decided below.
    let mut due_now = Vec::new();
    // The queue that holds the publisher's credit when there are several:
    // the deepest before the enqueue (the last of equals), by index.
    let mut holder: Option<(usize, usize)> = None;
    let mut owed = false;
    {
        let mut queues = shard.queues.borrow_mut();
        for (i, name) in names.iter().enumerate() {
            // A queue deleted while the copy was on its way: the copy is
            // dropped, as RabbitMQ drops messages routed to a deleted queue.
            let Some(q) = queues.get_mut(name) else {
                continue;
            };
            if let Some(p) = publisher {
                if names.len() == 1 {
                    flow::owe(shard, q, name, p);
                    owed = true;
                } else {
                    let depth = q.resident_count();
                    if holder.is_none_or(|(_, d)| depth >= d) {
                        holder = Some((i, depth));
                    }
                }
            }
            if q.rejects(message.body.len()) {
                // reject-publish(-dlx): not enqueued here; the publish is
                // nacked (other queues still get it, as RabbitMQ).
                outcome = outcome.and(limits::rejected(name, q, &message, &mut rejected));
                continue;
            }
            let is_durable = message.persistent && q.config().durable;
            let paged = shard.log.is_some() && q.pages_new_messages(limit);
            let expires = q.deadline_for(&message, || *now.get_or_insert_with(ttl::now_ms));
            if expires.is_some() && expires == now {
                due_now.push(name.clone());
            }
            let msg_id = if paged {
                q.reserve_id_for(&message)
            } else {
                match retained(q, &message, names.len(), &shard.slices) {
                    Retained::Original => {
                        shard.tracked(q, |q| q.publish_until(message.clone(), expires))
                    }
                    Retained::Slices => {
                        let generation = shard.slices.generation();
                        let (id, first) = shard.tracked(q, |q| {
                            q.publish_slice_until(message.clone(), expires, generation)
                        });
                        if first {
                            slices::register(shard, name, id);
                        }
                        id
                    }
                    Retained::Detached => {
                        let copy = detached
                            .get_or_insert_with(|| MessageRef::new(message.detached()))
                            .clone();
                        shard.tracked(q, |q| q.publish_until(copy, expires))
                    }
                }
            };
            q.enqueued(
                msg_id,
                *clock.get_or_insert_with(crate::shard::stats::coarse_now_ms),
            );
            let target = Target {
                queue: name.name.clone(),
                msg_id,
                expires,
            };
            if is_durable {
                durable.push(target);
                durable_paged.push(paged);
            } else if paged {
                transient_paged.push(target);
            }
            if paged {
                q.paged_body(message.body.len());
            }
        }
        if let (Some(p), Some((i, _))) = (publisher, holder) {
            if let Some(q) = queues.get_mut(&names[i]) {
                flow::owe(shard, q, &names[i], p);
                owed = true;
            }
        }
        if let (Some(p), false) = (publisher, owed) {
            shard.flow.pay_later(p);
        }
        // One record for every durable copy on this shard: the body once.
        for (chunk, paged) in durable
            .chunks(MAX_RECORD_TARGETS)
            .zip(durable_paged.chunks(MAX_RECORD_TARGETS))
        {
            match durability::append_message(shard, vhost, &message, chunk, false) {
                Ok(pos) => {
                    for t in chunk {
                        let q = queues
                            .get_mut(&QueueName::new(vhost, t.queue.clone()))
                            .expect("just published");
                        q.record_written(t.msg_id, pos.segment, pos.offset, pos.len, t.expires);
                    }
                    let n = paged.iter().filter(|p| **p).count();
                    paged_out += n;
                    if n > 0 {
                        // One record holds the body for every copy.
                        shard.stats.paged_out(pos.len as u64);
                    }
                    outcome = outcome.and(ConfirmOutcome::AfterSync(pos.lsn()));
                }
                Err(reason) => {
                    lost += paged.iter().filter(|p| **p).count();
                    outcome = outcome.and(ConfirmOutcome::Failed(reason));
                }
            }
        }
        for chunk in transient_paged.chunks(MAX_RECORD_TARGETS) {
            match durability::append_message(shard, vhost, &message, chunk, true) {
                Ok(pos) => {
                    for t in chunk {
                        let q = queues
                            .get_mut(&QueueName::new(vhost, t.queue.clone()))
                            .expect("just reserved");
                        q.push_paged(t.msg_id, pos.segment, pos.offset, pos.len, t.expires);
                    }
                    paged_out += chunk.len();
                    shard.stats.paged_out(pos.len as u64);
                }
                Err(reason) => {
                    lost += chunk.len();
                    outcome = outcome.and(ConfirmOutcome::Failed(reason));
                }
            }
        }
    }
    Counters::add(&shard.counters.paged_out, paged_out as u64);
    limits::dead_letter_rejected(shard, rejected);
    // TTL 0 (as RabbitMQ): delivered if a consumer can take it now, at its
    // enqueue, else expired — not at a later dispatch, whose clock may
    // have moved on (or whose consumers may have freed credit meanwhile).
    if let Some(now) = now {
        for name in &due_now {
            dispatch_at(shard, name, now);
        }
    }
    for name in &names {
        shard.mark_dirty(name);
    }
    if lost > 0 {
        tracing::error!(
            shard = shard.id,
            "{lost} message copies dropped, the log refused them"
        );
    }
    outcome
}

pub fn settle(shard: &Rc<Shard>, queue: &QueueName, ids: &[u64], how: Settle) {
    if how == Settle::Reject {
        return dead_letter::rejected(shard, queue, ids);
    }
    let (removed, over_limit, returned) = match shard.queues.borrow_mut().get_mut(queue) {
        Some(q) => (
            shard.tracked(q, |q| q.settle(ids, how)),
            q.take_over_limit(),
            q.take_returns(),
        ),
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    durability::record_removed(shard, queue, &removed);
    durability::record_returned(shard, queue, &returned);
    let letters = over_limit
        .into_iter()
        .map(|message| Letter {
            message,
            reason: DeadLetterReason::DeliveryLimit,
        })
        .collect();
    dead_letter::dead_letter(shard, queue, letters);
    if how == Settle::Remove {
        Counters::add(&shard.counters.acked, ids.len() as u64);
    }
    shard.mark_dirty(queue);
}

pub fn credit(shard: &Rc<Shard>, queue: &QueueName, consumer: &ConsumerKey, n: u32) {
    if let Some(q) = shard.queues.borrow_mut().get_mut(queue) {
        q.credit(consumer, n);
    }
    shard.mark_dirty(queue);
}

pub fn channel_gone(shard: &Rc<Shard>, queue: &QueueName, conn: ConnKey, channel: u16) {
    let auto_delete = match shard.queues.borrow_mut().get_mut(queue) {
        Some(q) => {
            q.remove_consumers_of(conn.shard, conn.id, Some(channel));
            q.touch();
            q.should_auto_delete()
        }
        None => false,
    };
    if auto_delete {
        auto_delete_queue(shard, queue);
    }
    shard.mark_dirty(queue);
}

/// Drops an auto-delete queue whose last consumer left, and tells the leader
/// to remove it from every shard's catalog.
fn auto_delete_queue(shard: &Rc<Shard>, queue: &QueueName) {
    drop_queue(shard, queue);
    shard.send(
        LEADER,
        Envelope::Request {
            from: shard.id,
            token: 0,
            request: Request::ForgetQueue {
                name: queue.clone(),
            },
        },
    );
}

/// Removes a queue's state and cancels its consumers (queue deleted).
/// Returns the ready messages it held.
pub fn drop_queue(shard: &Rc<Shard>, name: &QueueName) -> Option<u32> {
    let mut q = shard.queues.borrow_mut().remove(name)?;
    flow::forget(shard, &mut q);
    shard.untrack(&q);
    let segments = q.stored_segments();
    if !segments.is_empty() || q.config().durable {
        durability::record_queue_delete(shard, name, q.config().durable, &segments);
    }
    for consumer in q.consumer_keys() {
        shard.send(consumer.shard, Envelope::ConsumerCancelled { consumer });
    }
    Some(q.message_count())
}

/// Ships every delivery `queue` can make now to its consumers' shards.
pub fn dispatch(shard: &Rc<Shard>, queue: &QueueName) {
    let timed = shard
        .queues
        .borrow()
        .get(queue)
        .is_some_and(|q| q.has_deadlines());
    if !timed {
        // No message of the queue has a TTL: no clock read, no TTL pass.
        return dispatch_ready(shard, queue);
    }
    dispatch_at(shard, queue, ttl::now_ms());
}

/// `dispatch` at `now`: what expired before `now` is never delivered; what
/// is due at `now` (TTL 0) only if a consumer takes it at once.
fn dispatch_at(shard: &Rc<Shard>, queue: &QueueName, now: u64) {
    ttl::expire_queue(shard, queue, now, false);
    dispatch_ready(shard, queue);
    ttl::expire_queue(shard, queue, now, true);
}

fn dispatch_ready(shard: &Rc<Shard>, queue: &QueueName) {
    let mut queues = shard.queues.borrow_mut();
    let Some(q) = queues.get_mut(queue) else {
        return;
    };
    let mut n = 0u64;
    let mut removed = Vec::new();
    let mut delivered = Vec::new();
    let resident_before = q.memory_bytes();
    // Unacked messages count against the budget: a consumer holding its
    // share gets nothing more (and the tail is not read back for it) until
    // its acks free memory.
    q.set_memory_limit(shard.queue_memory_room(resident_before));
    let default_timeout = shard.settings.consumer_timeout;
    while let Some(mut delivery) = q.next_delivery() {
        n += 1;
        delivery.consumer_timeout = delivery.consumer_timeout.or(default_timeout);
        if let Some(segment) = delivery.stored {
            if delivery.no_ack {
                removed.push((delivery.msg_id, segment));
            } else if !delivery.redelivered {
                delivered.push(delivery.msg_id);
            }
        }
        shard.send(
            delivery.consumer.shard,
            Envelope::Deliver {
                queue: queue.clone(),
                owner: shard.id,
                delivery,
            },
        );
    }
    // `consumer_utilisation`: the clock only when the state changed.
    if q.use_needs_stamp() {
        q.stamp_use(crate::shard::stats::coarse_now_ms());
    }
    // drop-head: what is still over a length limit once consumers had
    // their share.
    let dropped = q.drop_over_limit();
    shard.resident_changed(resident_before, q.memory_bytes());
    let page_in = if q.wants_page_in() {
        q.start_page_in(paging::CHUNK)
    } else {
        None
    };
    let durable = q.config().durable;
    drop(queues);
    limits::let_go(shard, queue, durable, dropped);
    if let Some(read) = page_in {
        paging::spawn_read(shard, queue.clone(), read);
    }
    durability::record_removed(shard, queue, &removed);
    durability::record_delivered(shard, queue, &delivered);
    Counters::add(&shard.counters.delivered, n);
}

pub fn handle_request(shard: &Rc<Shard>, request: Request) -> Reply {
    match request {
        Request::QueueStats { name } => Reply::Stats({
            ttl::expire_queue(shard, &name, ttl::now_ms(), true);
            match shard.queues.borrow_mut().get_mut(&name) {
                // Sent for every queue.declare: a redeclare uses the queue.
                Some(q) => {
                    q.touch();
                    Ok(QueueStats {
                        messages: q.message_count(),
                        unacked: q.unacked_count(),
                        consumers: q.consumer_count(),
                    })
                }
                None => Err(no_queue(shard, &name)),
            }
        }),
        Request::Purge { name } => {
            let purged = shard
                .queues
                .borrow_mut()
                .get_mut(&name)
                .map(|q| (q.config().durable, shard.tracked(q, |q| q.purge())));
            Reply::Count(match purged {
                Some((durable, purged)) => {
                    durability::record_purge(shard, &name, durable, &purged);
                    Ok(purged.count)
                }
                None => Err(no_queue(shard, &name)),
            })
        }
        Request::DropQueue {
            name,
            if_unused,
            if_empty,
        } => {
            let vhost = shard.meta.borrow().vhost_name(name.vhost);
            let check = match shard.queues.borrow().get(&name) {
                None => Ok(()),
                Some(q) if if_unused && q.consumer_count() > 0 => {
                    Err(AmqpError::precondition_failed(format!(
                        "queue '{name}' in vhost '{vhost}' in use"
                    )))
                }
                Some(q) if if_empty && q.message_count() > 0 => {
                    Err(AmqpError::precondition_failed(format!(
                        "queue '{name}' in vhost '{vhost}' not empty"
                    )))
                }
                Some(_) => Ok(()),
            };
            Reply::Count(check.map(|()| drop_queue(shard, &name).unwrap_or(0)))
        }
        Request::Get {
            name,
            no_ack,
            getter,
        } => {
            ttl::expire_queue(shard, &name, ttl::now_ms(), true);
            let mut queues = shard.queues.borrow_mut();
            let got = match queues.get_mut(&name) {
                None => Err(no_queue(shard, &name)),
                Some(q) => Ok(shard
                    .tracked(q, |q| {
                        q.touch();
                        match &getter {
                            // A channel's gets in ack mode are held to its
                            // share of the memory budget, as consumers.
                            Some(g) => {
                                let room = shard.queue_memory_room(q.memory_bytes());
                                q.get_for(g, no_ack, room)
                            }
                            None => q.get(no_ack),
                        }
                    })
                    .map(|m| {
                        let timeout = q.consumer_timeout().or(shard.settings.consumer_timeout);
                        (m, q.message_count(), timeout)
                    })),
            };
            drop(queues);
            if let Ok(Some((m, _, _))) = &got {
                match (no_ack, m.stored) {
                    (true, Some(segment)) => {
                        durability::record_removed(shard, &name, &[(m.id, segment)])
                    }
                    (false, Some(_)) if !m.redelivered => {
                        durability::record_delivered(shard, &name, &[m.id])
                    }
                    _ => {}
                }
            }
            Reply::Got(got.map(|o| {
                o.map(|(m, remaining, consumer_timeout)| GotMessage {
                    msg_id: m.id,
                    redelivered: m.redelivered,
                    message: m.message,
                    remaining,
                    consumer_timeout,
                })
            }))
        }
        Request::Consume { name, spec } => {
            Reply::Done(match shard.queues.borrow_mut().get_mut(&name) {
                None => Err(no_queue(shard, &name)),
                Some(q) => {
                    q.touch();
                    q.add_consumer(spec).map_err(|e| {
                        let vhost = shard.meta.borrow().vhost_name(name.vhost);
                        crate::broker::vhost::in_vhost(e, &vhost)
                    })
                }
            })
        }
        Request::Activate { name, key } => {
            if let Some(q) = shard.queues.borrow_mut().get_mut(&name) {
                q.activate(&key);
            }
            shard.mark_dirty(&name);
            Reply::Done(Ok(()))
        }
        Request::Cancel { name, key } => {
            let auto_delete = match shard.queues.borrow_mut().get_mut(&name) {
                Some(q) => {
                    q.remove_consumer(&key);
                    q.touch();
                    q.should_auto_delete()
                }
                None => false,
            };
            if auto_delete {
                auto_delete_queue(shard, &name);
            }
            Reply::Done(Ok(()))
        }
        Request::Snapshot => Reply::Snapshot(Box::new(snapshot(shard))),
        Request::PickQueues(req) => {
            Reply::Picked(Box::new(crate::shard::listing::pick(shard, &req)))
        }
        other => {
            debug_assert!(false, "leader request reached an owner: {other:?}");
            Reply::Done(Err(AmqpError::new(
                crate::broker::error::code::INTERNAL_ERROR,
                "misrouted request",
            )))
        }
    }
}

fn snapshot(shard: &Rc<Shard>) -> ShardSnapshot {
    let now = crate::shard::stats::coarse_now_ms();
    let mut queues: Vec<QueueSnapshot> = shard
        .queues
        .borrow_mut()
        .iter_mut()
        .map(|(name, q)| crate::shard::listing::queue_snapshot(name, q, now))
        .collect();
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    let connections = shard
        .conns
        .borrow()
        .values()
        .map(|c| c.snapshot())
        .collect::<Vec<_>>();
    let stats = {
        let meta = shard.meta.borrow();
        let mut s = shard
            .stats
            .snapshot(|v, x| meta.topology(v).is_some_and(|t| t.exchange(x).is_some()));
        if let Some(log) = &shard.log {
            s.fsync_seconds = log.stats().fsync_seconds;
            s.log_bytes = log.disk_bytes();
        }
        (s.ring_sent, s.ring_received, s.outbox) = shard.mesh.occupancy();
        let mut ids: Vec<_> = queues.iter().map(|q| q.name.vhost).collect();
        ids.extend(connections.iter().map(|c| c.vhost));
        ids.extend(s.exchanges.iter().map(|((v, _), _)| *v));
        ids.sort_unstable();
        ids.dedup();
        s.vhost_names = ids.into_iter().map(|v| (v, meta.vhost_name(v))).collect();
        s
    };
    ShardSnapshot {
        shard: shard.id,
        queues,
        connections,
        delayed: shard.delayed.counts(),
        stats,
        counters: {
            let mut c = shard.counters.snapshot();
            c.resident_bytes = shard.resident_bytes();
            c.fsyncs = shard.log.as_ref().map_or(0, |l| l.stats().fsyncs);
            c.watchdog_fires = shard
                .watchdog
                .borrow()
                .as_ref()
                .map_or(0, |w| w.fires(shard.id as usize));
            c
        },
    }
}
