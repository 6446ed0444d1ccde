//! A shard's side of the control plane's queue listings: the snapshot of
//! one queue (`queue_snapshot`, what every listing copies out), and a
//! paged listing's pick (`Request::PickQueues`): of the queues this shard
//! owns, counts of those the listing shows and of those its filter keeps,
//! and only the first `limit` of them in the listing's order as full
//! snapshots, so a page of 100 k queues copies out a page per shard, not
//! every queue. What is shown, kept and how it sorts is the listing's
//! (`envelope::QueuePick`, implemented by the management API); the shard
//! only runs it.

use crate::broker::queue::Queue;
use crate::broker::vhost::{QueueName, VhostId};
use crate::protocol::types::FieldTable;
use crate::shard::envelope::{PickRequest, Picked, PickedQueue, QueueSnapshot};
use crate::shard::Shard;
use std::collections::HashMap;
use std::sync::Arc;

/// Queue `name`'s snapshot; `now` from `shard::stats::coarse_now_ms`.
pub fn queue_snapshot(name: &QueueName, q: &mut Queue, now: u64) -> QueueSnapshot {
    let (ready_age, unacked_age) = q.ages(now);
    QueueSnapshot {
        name: name.clone(),
        durable: q.config().durable,
        exclusive: q.config().exclusive,
        auto_delete: q.config().auto_delete,
        messages: q.message_count(),
        messages_ram: q.resident_count() as u64,
        messages_paged_out: q.paged_count(),
        state: if q.is_crashed() { "crashed" } else { "running" },
        message_bytes_ready: q.ready_body_bytes(),
        message_bytes_unacknowledged: q.unacked_body_bytes(),
        memory: q.memory_bytes(),
        unacked: q.unacked_count(),
        consumers: q.consumer_summaries(),
        single_active_consumer: q.single_active_consumer().cloned(),
        policy: q.policy().unwrap_or("").to_string(),
        message_stats: *q.stats(),
        oldest_ready_age_seconds: ready_age,
        oldest_unacked_age_seconds: unacked_age,
        consumer_utilisation: q.consumer_utilisation(now),
    }
}

/// Runs `req` over the queues this shard owns. The kept queues are cut
/// back to `limit` whenever they reach twice that, so the work is linear
/// in the queue count and the memory bounded by the limit.
pub fn pick(shard: &Shard, req: &PickRequest) -> Picked {
    let now = crate::shard::stats::coarse_now_ms();
    let mut vhosts: HashMap<VhostId, (Arc<str>, bool)> = HashMap::new();
    let mut out = Picked::default();
    let limit = req.limit;
    let meta = shard.meta.borrow();
    let order = |a: &PickedQueue, b: &PickedQueue| req.pick.order(a, b);
    for (name, q) in shard.queues.borrow_mut().iter_mut() {
        if req.stats && !q.stats().is_empty() {
            out.stats.push((name.clone(), *q.stats()));
        }
        let (vhost, shown) = vhosts.entry(name.vhost).or_insert_with(|| {
            let v: Arc<str> = Arc::from(meta.vhost_name(name.vhost).as_str());
            let shown = req.pick.shows(&v);
            (v, shown)
        });
        if !*shown {
            continue;
        }
        out.total += 1;
        if !req.pick.keeps(name.as_str()) {
            continue;
        }
        out.filtered += 1;
        if limit == 0 {
            continue;
        }
        let queue = queue_snapshot(name, q, now);
        out.queues.push(PickedQueue {
            key: req.pick.key(vhost, &queue),
            vhost: vhost.clone(),
            queue,
            arguments: FieldTable::default(),
        });
        if out.queues.len() >= limit.saturating_mul(2) {
            out.queues.select_nth_unstable_by(limit - 1, order);
            out.queues.truncate(limit);
        }
    }
    out.queues.sort_by(order);
    out.queues.truncate(limit);
    let queues = shard.queues.borrow();
    for p in &mut out.queues {
        if let Some(q) = queues.get(&p.queue.name) {
            p.arguments = q.config().arguments.clone();
        }
    }
    out
}
