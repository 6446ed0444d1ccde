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
use crate::shard::envelope::{PickRequest, Picked, PickedQueue, QueueSnapshot, SortKey};
use crate::shard::Shard;
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
        message_stats: q.stats(),
        oldest_ready_age_seconds: ready_age,
        oldest_unacked_age_seconds: unacked_age,
        consumer_utilisation: q.consumer_utilisation(now),
    }
}

/// A queue that may be picked: what orders it, and (when the order reads
/// a key) its snapshot; `N`: its name, borrowed or owned.
struct Candidate<N> {
    key: Option<serde_json::Value>,
    vhost: Arc<str>,
    name: N,
    snapshot: Option<QueueSnapshot>,
}

impl Candidate<&QueueName> {
    fn sort_key(&self) -> SortKey<'_> {
        SortKey {
            key: self.key.as_ref(),
            vhost: &self.vhost,
            name: self.name.as_str(),
        }
    }
}

/// Runs `req` over the queues this shard owns. The candidates are cut back
/// to `limit` whenever they reach twice that, and a queue that sorts after
/// the last one kept at the latest cut is passed over, so the work is
/// linear in the queue count and the memory bounded by the limit. Without
/// a sort key a queue's own state is read only if it is picked (at 100 k
/// queues, reading each one's is most of the cost).
pub fn pick(shard: &Shard, req: &PickRequest) -> Picked {
    let now = crate::shard::stats::coarse_now_ms();
    let pick = &*req.pick;
    let sorts = pick.sorts();
    let limit = req.limit;
    let mut vhosts: Vec<(VhostId, Arc<str>, bool)> = Vec::new();
    let mut out = Picked::default();
    let meta = shard.meta.borrow();
    let mut queues = shard.queues.borrow_mut();
    let order = |a: &Candidate<&QueueName>, b: &Candidate<&QueueName>| {
        pick.order(a.sort_key(), b.sort_key())
    };
    let mut kept: Vec<Candidate<&QueueName>> = Vec::new();
    // After a cut: `kept[limit - 1]` is the last of the kept ones.
    let mut cut = false;
    for (key, q) in queues.iter_mut() {
        let name: &QueueName = key;
        if req.stats && !q.stats().is_empty() {
            out.stats.push((name.clone(), q.stats()));
        }
        let at = match vhosts.iter().position(|(id, _, _)| *id == name.vhost) {
            Some(at) => at,
            None => {
                let v: Arc<str> = Arc::from(meta.vhost_name(name.vhost).as_str());
                let shown = pick.shows(&v);
                vhosts.push((name.vhost, v, shown));
                vhosts.len() - 1
            }
        };
        let (_, vhost, shown) = &vhosts[at];
        if !*shown {
            continue;
        }
        out.total += 1;
        if !pick.keeps(name.as_str()) {
            continue;
        }
        out.filtered += 1;
        if limit == 0 {
            continue;
        }
        let snapshot = sorts.then(|| queue_snapshot(name, q, now));
        let candidate = Candidate {
            key: snapshot.as_ref().and_then(|s| pick.key(vhost, s)),
            vhost: vhost.clone(),
            name,
            snapshot,
        };
        if cut && order(&candidate, &kept[limit - 1]).is_gt() {
            continue;
        }
        kept.push(candidate);
        if kept.len() >= limit.saturating_mul(2) {
            kept.select_nth_unstable_by(limit - 1, order);
            kept.truncate(limit);
            cut = true;
        }
    }
    kept.sort_by(order);
    kept.truncate(limit);
    let kept: Vec<Candidate<QueueName>> = kept
        .into_iter()
        .map(|c| Candidate {
            name: c.name.clone(),
            key: c.key,
            vhost: c.vhost,
            snapshot: c.snapshot,
        })
        .collect();
    out.queues = kept
        .into_iter()
        .filter_map(|c| {
            let q = queues.get_mut(&c.name)?;
            Some(PickedQueue {
                key: c.key,
                vhost: c.vhost,
                arguments: q.config().arguments.clone(),
                queue: c
                    .snapshot
                    .unwrap_or_else(|| queue_snapshot(&c.name, q, now)),
            })
        })
        .collect();
    out
}
