//! One queue's state on its owner shard: ready messages in order (the
//! oldest in memory, the rest paged out to the log once the queue holds
//! more than its memory share), messages delivered but not yet
//! acknowledged, consumers with their prefetch credit, and round-robin
//! dispatch. Pure and synchronous: the shard runtime feeds it publishes,
//! acks, consumer changes and paged-in chunks, and ships the deliveries it
//! returns.
//!
//! The parts, each the home of the queue features that change it:
//!
//! - `config` — the declared shape (`QueueConfig`). The arguments of
//!   length limits, message TTL, dead-lettering, priorities and
//!   single-active-consumer are read from it.
//! - `ready` — the ready messages held in memory, in id order, with their
//!   memory charge. Message TTL (expiring at the head) and priorities (an
//!   order other than by id) change this list.
//! - `unacked` — deliveries awaiting settlement, and the `x-max-unacked`
//!   cap on them.
//! - `consumers` — consumers, their credit, exclusivity and the
//!   round-robin choice of the next one among the highest `x-priority`
//!   with credit.
//! - `getters` — the channels holding basic.gets in ack mode, and their
//!   share of the memory budget.
//! - `single_active` — `x-single-active-consumer`: which one consumer gets
//!   the deliveries, and the handover.
//! - `delivery_limit` — quorum queues: returns counted, `x-delivery-count`
//!   on redeliveries, messages over `x-delivery-limit` let go.
//! - `dispatch` — handing messages out (`next_delivery`, `get`) and
//!   settling them (`settle`). Rejects without requeue are where
//!   dead-lettering hooks in.
//! - `paging` — the paged tail: whether a new message goes to the log, and
//!   reading paged messages back.
//! - `stored` — the queue's references into the log: records written,
//!   restore at recovery, compaction.
//! - `purge` — dropping every ready message.
//! - `policy` — the effective arguments (declared, combined with the
//!   queue's policy) the features read, and re-applying a changed policy.
//! - `ttl` — message TTL: each copy's deadline, an index of the deadlines
//!   of the messages in memory, and expiring wherever a message is.
//! - `dead_lettering` — rejected messages, and messages held while their
//!   dead-lettered copies are made safe.
//! - `priority` — priority queues: one ready list and one paged tail per
//!   level instead of the single ones (`Levels`).
//! - `slices` — small waiting messages kept as slices of their read
//!   buffer until the shard's sweep copies them out.
//!
//! This file holds `Queue` itself, its counts and `publish` (where length
//! limits will refuse or drop).

mod ages;
mod config;
mod consumers;
mod dead_lettering;
mod delivery_limit;
mod dispatch;
mod expiry;
mod flow_debt;
mod getters;
mod id_ring;
mod limits;
mod paging;
mod policy;
pub mod priority;
mod purge;
mod ready;
mod single_active;
mod slices;
mod stored;
mod ttl;
mod unacked;
mod utilisation;

pub use config::QueueConfig;
pub use consumers::{ConsumerKey, ConsumerSpec, TRANSIT_WINDOW};
pub use dispatch::{Delivery, Settle};
pub use flow_debt::{FlowDebt, Publisher};
pub use getters::GetterKey;
pub use limits::{limits, Dropped, Limits, Overflow};
pub use paging::{PagedMessage, PAGE_IN_BELOW_BYTES, PAGE_IN_BELOW_MESSAGES};
pub use priority::LevelTail;
pub use purge::Purged;
pub use ready::{resident_cost, QueuedMessage, MESSAGE_OVERHEAD};
pub use stored::RecoveredTail;
pub use ttl::{expiration_of, message_ttl, parse_expiration, Expired, TtlScan};

use crate::broker::message::MessageRef;
use crate::broker::paged::PagedTail;
use crate::broker::queue_args::QueueArguments;
use crate::protocol::types::ShortStr;
use consumers::Consumers;
use dead_lettering::DeadLettering;
use delivery_limit::DeliveryCounting;
use priority::Levels;
use ready::ReadyList;
use single_active::SingleActive;
use unacked::UnackedSet;

#[derive(Debug)]
pub struct Queue {
    name: ShortStr,
    config: QueueConfig,
    /// The oldest ready messages, in memory, all older than the tail's.
    ready: ReadyList,
    /// The newer ready messages, paged out to the log.
    tail: PagedTail,
    unacked: UnackedSet,
    consumers: Consumers,
    /// Messages being dead-lettered (neither ready nor unacked).
    dead_lettering: DeadLettering,
    next_id: u64,
    /// Deadlines of the messages in memory (message TTL).
    deadlines: ttl::Deadlines,
    /// Length limits (`limits`), read from the arguments.
    limits: Limits,
    /// Body sizes of the paged messages, for `x-max-length-bytes`.
    paged_sizes: limits::PagedSizes,
    /// Queue expiry (`x-expires`): when it was last used.
    expiry: expiry::Expiry,
    /// Single-active-consumer state, when the queue has it (boxed: most
    /// queues have none).
    single_active: Option<Box<SingleActive>>,
    /// Quorum queues count returns (`delivery_limit`).
    delivery_counting: DeliveryCounting,
    /// Returns to record, and recovered delivery counts (`delivery_limit`).
    returns: delivery_limit::Returns,
    /// Messages over the delivery limit, until the owner takes them
    /// (quorum queues with a limit only: none until the first).
    /// Boxed on purpose: one pointer instead of an empty Vec's 24 bytes.
    #[allow(clippy::box_collection)]
    over_limit: Option<Box<Vec<QueuedMessage>>>,
    /// A priority queue's ready messages, per level (then `ready` and
    /// `tail` stay empty); None for every other queue.
    levels: Option<Box<Levels>>,
    /// The arguments the features read: the declared ones combined with
    /// the policy (`policy`).
    effective: crate::protocol::types::FieldTable,
    /// The name of the policy applied, if any.
    policy: Option<String>,
    /// `x-max-unacked`: no delivery while this many are unacked.
    max_unacked: Option<u64>,
    /// `x-consumer-timeout` (ms): sent with each delivery, for its channel
    /// (`connection::consumer_timeout`).
    consumer_timeout: Option<u64>,
    /// RabbitMQ's per-queue `message_stats` (`broker::stats`).
    stats: LazyStats,
    /// When its messages were enqueued (`ages`); none before the first.
    ages: Option<Box<ages::AgeIndex>>,
    /// `consumer_utilisation` (`utilisation`).
    consumer_use: utilisation::ConsumerUse,
    /// Restored from a log written before compaction copies were marked,
    /// with copies in memory newer than paged messages (`restore`): its
    /// ready messages are not in id order until the tail is read.
    restored_out_of_order: bool,
    /// The publish credit it holds (`shard::flow`); boxed: most queues
    /// never hold any.
    flow: Option<Box<FlowDebt>>,
}

impl Queue {
    pub fn new(name: ShortStr, config: QueueConfig) -> Queue {
        // Validated at declare; a table that no longer parses (recovered
        // from an older version) reads as plain arguments.
        let args = QueueArguments::parse(name.as_str(), &config.arguments).unwrap_or_default();
        let levels =
            priority::max_priority(&config.arguments).map(|max| Box::new(Levels::new(max)));
        let config_arguments = config.arguments.clone();
        Queue {
            limits: limits::limits(&config.arguments),
            paged_sizes: match levels {
                Some(_) => limits::PagedSizes::unordered(0),
                None => limits::PagedSizes::default(),
            },
            expiry: expiry::Expiry::new(&config.arguments),
            name,
            deadlines: ttl::Deadlines::for_queue(&config.arguments),
            config,
            ready: ReadyList::default(),
            tail: PagedTail::new(),
            unacked: UnackedSet::default(),
            consumers: Consumers::default(),
            dead_lettering: DeadLettering::default(),
            single_active: args.single_active_consumer.then(Box::default),
            next_id: 1,
            delivery_counting: DeliveryCounting::of(&args),
            returns: delivery_limit::Returns::default(),
            over_limit: None,
            levels,
            max_unacked: unacked::max_unacked(&config_arguments),
            consumer_timeout: unacked::consumer_timeout(&config_arguments),
            effective: config_arguments,
            policy: None,
            stats: Default::default(),
            ages: None,
            consumer_use: Default::default(),
            restored_out_of_order: false,
            flow: None,
        }
    }

    pub fn name(&self) -> &ShortStr {
        &self.name
    }

    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Ready messages, in memory and paged (what declare-ok and purge count).
    pub fn message_count(&self) -> u32 {
        (self.resident_count() as u64 + self.paged_count()).min(u32::MAX as u64) as u32
    }

    /// Ready messages held in memory.
    pub fn resident_count(&self) -> usize {
        if let Some(levels) = &self.levels {
            return levels.len();
        }
        self.ready.len()
    }

    /// Ready messages paged out to the log.
    pub fn paged_count(&self) -> u64 {
        if let Some(levels) = &self.levels {
            return levels.tail().count();
        }
        self.tail.count()
    }

    /// Memory charged for the ready messages held in memory.
    pub fn resident_bytes(&self) -> u64 {
        if let Some(levels) = &self.levels {
            return levels.bytes();
        }
        self.ready.bytes()
    }

    /// Memory charged for the messages delivered and not yet settled
    /// (they stay in memory until then).
    pub fn unacked_bytes(&self) -> u64 {
        self.unacked.bytes()
    }

    /// What the queue holds in memory and its shard's budget counts: the
    /// ready messages in memory and the unacked ones.
    pub fn memory_bytes(&self) -> u64 {
        self.resident_bytes() + self.unacked.bytes()
    }

    /// The consumer timeout of the queue's deliveries (ms; argument and
    /// policy combined), if it sets one.
    pub fn consumer_timeout(&self) -> Option<u64> {
        self.consumer_timeout
    }

    pub fn unacked_count(&self) -> u32 {
        self.unacked.len().min(u32::MAX as usize) as u32
    }

    pub fn consumer_count(&self) -> u32 {
        self.consumers.len() as u32
    }

    /// RabbitMQ's `consumer_utilisation` at `now_ms` (None without
    /// consumers, where RabbitMQ shows none).
    pub fn consumer_utilisation(&self, now_ms: u64) -> Option<f64> {
        (!self.consumers.is_empty()).then(|| self.consumer_use.utilisation(now_ms))
    }

    /// Whether dispatch found the consumers' state changed (read the
    /// clock and `stamp_use` then).
    #[inline]
    pub fn use_needs_stamp(&self) -> bool {
        self.consumer_use.needs_stamp()
    }

    /// Stamps a changed consumer state at `now_ms`.
    pub fn stamp_use(&mut self, now_ms: u64) {
        self.consumer_use.stamp(now_ms);
    }

    /// Its flow state, if it has any (`shard::flow`).
    pub fn flow_state(&self) -> Option<&FlowDebt> {
        self.flow.as_deref()
    }

    /// Its flow state, to change (`shard::flow`).
    pub fn flow_debt(&mut self) -> &mut Option<Box<FlowDebt>> {
        &mut self.flow
    }

    /// The queue's message counters.
    pub fn stats(&self) -> crate::broker::stats::MessageStats {
        self.stats.get()
    }

    /// The copy `id` was enqueued at `now_ms` (in memory or paged): counted
    /// as a publish, and noted for message ages.
    #[inline]
    pub fn enqueued(&mut self, id: u64, now_ms: u64) {
        self.stats.add(crate::broker::stats::Stat::Publish, 1);
        self.ages
            .get_or_insert_with(Default::default)
            .published(id, now_ms);
    }

    /// The messages held at a restart count their age from `now_ms`.
    pub fn restored_at(&mut self, now_ms: u64) {
        if let Some(first) = self.oldest_ready_id() {
            self.ages
                .get_or_insert_with(Default::default)
                .restored(first, now_ms);
        }
    }

    /// The id of the oldest ready message, in memory or paged.
    pub fn oldest_ready_id(&self) -> Option<u64> {
        match &self.levels {
            Some(levels) => levels.first_id(),
            None => self.ready.front_id().or(self.tail.first_id()),
        }
    }

    /// The id of the oldest delivered, unsettled message (a scan of the
    /// unacked set: for snapshots, not the message path).
    pub fn oldest_unacked_id(&self) -> Option<u64> {
        self.unacked.oldest_id()
    }

    /// Body bytes of the delivered, unsettled messages: a scan of the
    /// unacked set, for snapshots, not the message path.
    pub fn unacked_body_bytes(&self) -> u64 {
        self.unacked.messages().map(|m| m.message.body.len()).sum()
    }

    /// Seconds since the oldest ready and the oldest unacked message were
    /// enqueued (upper bounds within `ages::STEP_MS`), at `now_ms`; forgets
    /// what older messages needed.
    pub fn ages(&mut self, now_ms: u64) -> (Option<f64>, Option<f64>) {
        let ready = self.oldest_ready_id();
        let unacked = self.oldest_unacked_id();
        let oldest = match (ready, unacked) {
            (Some(r), Some(u)) => Some(r.min(u)),
            (r, u) => r.or(u),
        };
        if let (Some(oldest), Some(ages)) = (oldest, &mut self.ages) {
            ages.forget_before(oldest);
        }
        let age = |id: Option<u64>| {
            let at = self.ages.as_ref()?.enqueued_at(id?)?;
            Some(now_ms.saturating_sub(at) as f64 / 1000.0)
        };
        (age(ready), age(unacked))
    }

    /// Appends a message in memory; returns its id.
    pub fn publish(&mut self, message: MessageRef) -> u64 {
        self.publish_until(message, None)
    }

    /// Appends a message in memory that expires at `expires` (ms since the
    /// Unix epoch, see `ttl`); returns its id.
    pub fn publish_until(&mut self, message: MessageRef, expires: Option<u64>) -> u64 {
        debug_assert!(
            self.tail.is_empty(),
            "in-memory publish behind a paged tail"
        );
        let id = self.next_id;
        self.next_id += 1;
        let queued = QueuedMessage {
            id,
            message,
            redelivered: false,
            stored: None,
            expires,
            delivery_count: 0,
            slice_generation: None,
        };
        if let Some(at) = expires {
            self.deadlines.push(at, id);
        }
        match &mut self.levels {
            Some(levels) => levels.push(queued),
            None => self.ready.push_back(queued),
        }
        id
    }
}

/// A queue's `message_stats`, allocated at the first count: an idle queue
/// holds a null pointer, not the counters.
#[derive(Debug, Default)]
struct LazyStats(Option<Box<crate::broker::stats::MessageStats>>);

impl LazyStats {
    #[inline]
    fn add(&mut self, stat: crate::broker::stats::Stat, n: u64) {
        self.0.get_or_insert_with(Default::default).add(stat, n);
    }

    fn get(&self) -> crate::broker::stats::MessageStats {
        self.0.as_deref().copied().unwrap_or_default()
    }
}

/// Issue 15: an idle queue is one `Box<Queue>` on its owner (the
/// allocator's size class of its size), its catalog entries
/// (`shard::metadata::QueueCatalog`) and its name. What an idle queue does
/// not use is a null pointer until the first use; pinned here so that a
/// field that grows the struct past 640 bytes (mimalloc's next size class
/// is 768: 128 bytes more for every idle queue) shows.
#[cfg(test)]
mod size_tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn an_idle_queue_fits_in_640_bytes() {
        let size = size_of::<Queue>();
        assert!(size <= 640, "Queue is {size} bytes");
    }

    #[test]
    fn a_queued_message_fits_in_48_bytes() {
        // `slice_generation` lives in what was padding.
        assert_eq!(size_of::<QueuedMessage>(), 48);
    }

    #[test]
    fn parts_an_idle_queue_does_not_use_are_one_pointer() {
        assert_eq!(size_of::<LazyStats>(), 8);
        assert_eq!(size_of::<UnackedSet>(), 8);
        assert_eq!(size_of::<Option<Box<SingleActive>>>(), 8);
        assert_eq!(size_of::<Option<Box<ages::AgeIndex>>>(), 8);
        assert_eq!(size_of::<Option<Box<Vec<QueuedMessage>>>>(), 8);
        assert_eq!(size_of::<DeadLettering>(), 8);
        assert_eq!(size_of::<delivery_limit::Returns>(), 8);
        assert!(size_of::<limits::PagedSizes>() <= 24);
    }

    #[test]
    fn lazy_stats_count_from_zero() {
        let mut s = LazyStats::default();
        assert!(s.get().is_empty());
        s.add(crate::broker::stats::Stat::Publish, 2);
        assert_eq!(s.get().get(crate::broker::stats::Stat::Publish), 2);
    }
}

#[cfg(test)]
mod feature_tests;
#[cfg(test)]
mod tests;
