//! Dead-lettering on a queue's owner shard: the one way a queue lets go of
//! a message other than an ack or a purge — rejected without requeue,
//! expired, dropped by a length limit, or over its delivery limit.
//!
//! Contract for callers (the queue features): hand the messages over as
//! `Letter`s *instead of* recording their removal in the log. This module
//! republishes each one through the queue's dead-letter exchange (with the
//! `x-death` history of `broker::dead_letter`) when the queue has one, and
//! records the source copy's removal only once every copy it made is as
//! safe as the source was (a persistent message in a durable target is on
//! disk first), so a crash in between loses nothing — at worst the message
//! is dead-lettered twice, as RabbitMQ's at-least-once dead-lettering.
//!
//! How: a letter whose source copy is stored (persistent message, durable
//! queue) gets a ticket of this shard (`Pending`); its copies go to their
//! owners as ordinary `Envelope::Enqueue`s carrying a `ConfirmTicket`
//! addressed to this shard's internal connection id `INTERNAL_CONN` (no
//! client connection has id 0), so each owner answers it exactly as it
//! answers a publisher in confirm mode: once the durable copies are on disk.
//! Meanwhile the source queue holds the message (`Queue::hold_dead_lettering`:
//! neither ready nor unacked, never delivered again). When every owner has
//! answered, the source's removal is recorded; if one failed (nack), the
//! source stays held and its record stays in the log (logged as an error),
//! so a restart brings it back and dead-letters it again. A crash before
//! the confirmation likewise dead-letters it again after recovery: copies
//! may then be duplicated, never lost. A held message lives until the
//! target shards' next group-commit fsync.
//!
//! A message with no dead-letter exchange, a dead-letter exchange that does
//! not exist, or no route is dropped, as RabbitMQ drops it; an internal
//! dead-letter exchange routes as any other (it refuses only clients). The
//! copy routes with all its keys at once (`Topology::route_keys`: the
//! routing key, then the `CC` and `BCC` keys unless the queue sets
//! `x-dead-letter-routing-key`), so an alternate exchange is taken only
//! when no key matched.
//! A copy for a queue in a fully automatic cycle (`broker::dead_letter::
//! is_cycle`) is dropped, with a warning the first time per target queue.
//! A message's routing keys are read from what is stored — its routing key
//! and its `CC` and `BCC` headers (`BCC` stays in the stored properties and
//! is stripped only on the way to a client) — so they are the same after a
//! restart, as RabbitMQ's routing-key annotation. A dead-lettered copy
//! keeps `CC` and drops `BCC` from its properties (RabbitMQ 3.13), so a
//! second dead-lettering of it routes without the `BCC` keys.

use crate::broker::dead_letter::{self as pure, DeadLetterReason, Routing};
use crate::broker::message::{Message, MessageRef};
use crate::broker::queue::QueuedMessage;
use crate::broker::queue_args::QueueArguments;
use crate::broker::topology::{Origin, RouteResult};
use crate::broker::vhost::QueueName;
use crate::protocol::properties::BasicProperties;
use crate::protocol::types::{FieldTable, ShortStr};
use crate::shard::counters::Counters;
use crate::shard::envelope::{ConfirmTicket, Envelope};
use crate::shard::metadata::ByOwner;
use crate::shard::{durability, FastMap, Shard};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;

/// A message a queue let go of, and why.
#[derive(Debug)]
pub struct Letter {
    pub message: QueuedMessage,
    pub reason: DeadLetterReason,
}

/// The connection id of the tickets this module hands to owners: answers
/// to it (`Envelope::Confirmed`) come back to `confirmed`.
pub const INTERNAL_CONN: u64 = 0;

/// Most target queues remembered for the cycle warning.
const WARNED_CYCLES_MAX: usize = 1024;

/// A shard's dead-letters waiting for their copies' owners.
#[derive(Debug, Default)]
pub struct Pending {
    next_ticket: Cell<u64>,
    waiting: RefCell<FastMap<u64, Waiting>>,
    /// Target queues a cycle warning was logged for.
    warned_cycles: RefCell<HashSet<ShortStr>>,
}

#[derive(Debug)]
struct Waiting {
    /// The queue holding the source message.
    queue: QueueName,
    /// Owners that have not answered yet.
    owners_left: usize,
    /// An owner could not keep its copies.
    failed: bool,
}

impl Pending {
    /// Letters waiting for their copies to be confirmed.
    pub fn len(&self) -> usize {
        self.waiting.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// basic.reject / basic.nack without requeue of the deliveries `ids` of
/// `queue`: dead-lettered with reason `rejected`.
pub fn rejected(shard: &Rc<Shard>, queue: &QueueName, ids: &[u64]) {
    let messages = match shard.queues.borrow_mut().get_mut(queue) {
        Some(q) => shard.tracked(q, |q| q.reject(ids)),
        None => Vec::new(),
    };
    let letters = messages
        .into_iter()
        .map(|message| Letter {
            message,
            reason: DeadLetterReason::Rejected,
        })
        .collect();
    dead_letter(shard, queue, letters);
    shard.mark_dirty(queue);
}

/// Takes the letters `queue` let go of: republished through its
/// dead-letter exchange, or dropped (see the module doc).
pub fn dead_letter(shard: &Rc<Shard>, queue: &QueueName, letters: Vec<Letter>) {
    if letters.is_empty() {
        return;
    }
    let exchange = shard
        .queues
        .borrow()
        .get(queue)
        .and_then(|q| dead_letter_target(queue, q.effective_arguments()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut removed = Vec::new();
    for letter in letters {
        let copies = match &exchange {
            Some((dlx, key)) => republish(shard, queue, &letter, now, dlx, key.as_ref()),
            None => None,
        };
        let Some((message, by_owner)) = copies else {
            if let Some(segment) = letter.message.stored {
                removed.push((letter.message.id, segment));
            }
            continue;
        };
        Counters::add(&shard.counters.dead_lettered, 1);
        let ticket = match letter.message.stored {
            None => None,
            Some(_) => {
                let seq = shard.dead_letters.next_ticket.get();
                shard.dead_letters.next_ticket.set(seq + 1);
                shard.dead_letters.waiting.borrow_mut().insert(
                    seq,
                    Waiting {
                        queue: queue.clone(),
                        owners_left: by_owner.len(),
                        failed: false,
                    },
                );
                match shard.queues.borrow_mut().get_mut(queue) {
                    Some(q) => q.hold_dead_lettering(seq, letter.message),
                    None => debug_assert!(false, "dead-lettering from a queue that is gone"),
                }
                Some(ConfirmTicket {
                    shard: shard.id,
                    conn: INTERNAL_CONN,
                    channel: 0,
                    seq,
                })
            }
        };
        for (owner, queues) in by_owner {
            shard.send(
                owner,
                Envelope::Enqueue {
                    queues,
                    message: message.clone(),
                    confirm: ticket,
                    publisher: None,
                },
            );
        }
    }
    durability::record_removed(shard, queue, &removed);
}

/// The dead-letter exchange and routing key of a queue with these
/// arguments, if it has an exchange.
fn dead_letter_target(queue: &str, arguments: &FieldTable) -> Option<(ShortStr, Option<ShortStr>)> {
    let args = QueueArguments::parse(queue, arguments).ok()?;
    let exchange = ShortStr::try_from_string(args.dead_letter_exchange_name()?.to_string())?;
    let key = args
        .dead_letter_routing_key_str()
        .and_then(|k| ShortStr::try_from_string(k.to_string()));
    Some((exchange, key))
}

/// The dead-lettered copy of a letter and its target queues by owner
/// shard, cycles left out; None when it reaches no queue.
fn republish(
    shard: &Rc<Shard>,
    queue: &QueueName,
    letter: &Letter,
    now: u64,
    exchange: &ShortStr,
    routing_key: Option<&ShortStr>,
) -> Option<(MessageRef, ByOwner)> {
    let source = &letter.message.message;
    let headers = headers_of(&source.raw_properties);
    let routing = Routing::from_publish(
        source.exchange.clone(),
        &source.routing_key,
        headers.as_ref(),
    );
    let copy = match pure::dead_letter(
        source.raw_properties.clone(),
        &routing,
        queue,
        letter.reason,
        now,
        exchange,
        routing_key,
    ) {
        Ok(copy) => copy,
        Err(e) => {
            tracing::warn!(
                shard = shard.id,
                "message dead-lettered from queue '{queue}' dropped: its properties do not decode: {e}"
            );
            return None;
        }
    };
    // The first key is the copy's routing key; the others (the `CC` and
    // `BCC` keys, unless the queue sets the routing key) route as well.
    let (first, extra) = match copy.routing.routing_keys.split_first() {
        Some((first, extra)) => (
            ShortStr::from_bytes(first.clone()).unwrap_or_default(),
            extra,
        ),
        None => (ShortStr::default(), &[][..]),
    };
    let new_headers = headers_of(&copy.raw_properties);
    let meta = shard.meta.borrow();
    let mut targets = Vec::new();
    // Dead-lettering stays in the source queue's vhost. An internal
    // dead-letter exchange is fine: `internal` only refuses client
    // publishes.
    let vhost = queue.vhost;
    let topology = meta.topology(vhost)?;
    match topology.route_keys(
        exchange,
        &first,
        extra,
        new_headers.as_ref(),
        Origin::Broker,
        &mut targets,
    ) {
        RouteResult::Routed { .. } => {}
        RouteResult::ExchangeNotFound | RouteResult::Internal => return None,
    }
    let kept = targets.into_iter().filter(|target| {
        if !meta
            .queues
            .contains_key(&QueueName::new(vhost, target.clone()))
            || !copy.is_cycle(target.as_bytes())
        {
            return true;
        }
        Counters::add(&shard.counters.dead_letter_cycles, 1);
        warn_cycle(shard, target, &copy.history);
        false
    });
    let by_owner = meta.group_by_owner(vhost, kept);
    if by_owner.is_empty() {
        return None;
    }
    let message = Arc::new(Message {
        exchange: exchange.clone(),
        routing_key: first,
        raw_properties: copy.raw_properties,
        body: source.body.clone(),
        persistent: source.persistent,
    });
    Some((message, by_owner))
}

/// The headers of encoded properties, if any.
fn headers_of(raw_properties: &bytes::Bytes) -> Option<FieldTable> {
    BasicProperties::decode(raw_properties.clone())
        .ok()
        .and_then(|p| p.headers)
}

/// RabbitMQ's warning for a copy dropped in a dead-letter cycle, logged
/// once per target queue.
fn warn_cycle(shard: &Shard, target: &ShortStr, history: &[pure::Death]) {
    let mut warned = shard.dead_letters.warned_cycles.borrow_mut();
    if warned.contains(target) || warned.len() >= WARNED_CYCLES_MAX {
        return;
    }
    warned.insert(target.clone());
    let cycle: Vec<String> = pure::history_queue_names(history)
        .iter()
        .map(|q| String::from_utf8_lossy(q).into_owned())
        .collect();
    tracing::warn!(
        shard = shard.id,
        "Message dropped. Dead-letter queues cycle detected: [{target}, {}]. \
         This cycle will NOT be reported again.",
        cycle.join(", ")
    );
}

/// The owners of dead-lettered copies answered for the tickets `seqs`
/// (`ok`: their durable copies are on disk). A letter answered by all its
/// owners leaves its source queue: its removal is recorded, unless an
/// owner failed, in which case the source is kept.
pub fn confirmed(shard: &Rc<Shard>, seqs: &[u64], ok: bool) {
    for &seq in seqs {
        let done = {
            let mut waiting = shard.dead_letters.waiting.borrow_mut();
            let Some(w) = waiting.get_mut(&seq) else {
                debug_assert!(false, "unknown dead-letter ticket {seq}");
                continue;
            };
            w.failed |= !ok;
            w.owners_left = w.owners_left.saturating_sub(1);
            if w.owners_left > 0 {
                continue;
            }
            waiting.remove(&seq).expect("just found")
        };
        if done.failed {
            // Kept held (never delivered again until a restart, which
            // recovers it from its record and dead-letters it again).
            tracing::error!(
                shard = shard.id,
                "a message dead-lettered from queue '{}' could not be stored in a target queue; \
                 it is kept in the source queue's log",
                done.queue
            );
            continue;
        }
        // A queue deleted meanwhile recorded (and released) its messages
        // already; tickets are never reused, so a new queue of the same
        // name holds nothing under this one.
        let message = shard
            .queues
            .borrow_mut()
            .get_mut(&done.queue)
            .and_then(|q| q.release_dead_lettered(seq));
        if let Some(QueuedMessage {
            id,
            stored: Some(segment),
            ..
        }) = message
        {
            durability::record_removed(shard, &done.queue, &[(id, segment)]);
        }
    }
}
