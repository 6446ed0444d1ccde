//! Persistence wiring of one shard: at start, the durable definitions and
//! the shard's log are read back into the shard's metadata copy and the
//! queues it owns (as paged tails: an index, not the messages); while
//! running, persistent messages routed to durable
//! queues are appended to the log (body once per shard, whatever the
//! fan-out), their removal is recorded (ack, purge, queue deletion), and the
//! leader journals every durable metadata change (`durable_changes`; the
//! files are `storage::definitions`'s, the writing `shard::leader`'s).

use crate::broker::message::{Body, Message, MessageRef};
use crate::broker::paged::PagedTail;
use crate::broker::queue::{
    priority, LevelTail, Purged, QueueConfig, QueuedMessage, RecoveredTail,
};
use crate::broker::vhost::{QueueName, VhostId};
use crate::protocol::types::ShortStr;
use crate::shard::metadata::Metadata;
use crate::shard::replay::QueueReplay;
use crate::shard::{definitions, Settings, Shard};
use crate::storage::definitions::Definitions;
use crate::storage::{Log, LogConfig, Record, RecordPos, RecordRef, Target};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

/// The directory of shard `id`'s log.
/// Bounds of a shard's log write window (`write_window`).
pub const WRITE_WINDOW_MIN: usize = 1 << 20;
pub const WRITE_WINDOW_MAX: usize = 8 << 20;

/// How many bytes a shard's log may hold appended but not yet written before
/// publishers wait (`Log::wait_for_space`): a quarter of the shard's share
/// of `--memory-budget`, within `WRITE_WINDOW_MIN..=WRITE_WINDOW_MAX`. The
/// writer copies what is pending into one DMA buffer, so a flood of
/// messages paged straight out costs at most twice this on top of the
/// budget, whatever the publishers' rate; the publishers wait for the disk
/// (TCP backpressure) instead of the broker buffering.
pub fn write_window(settings: &Settings) -> usize {
    let share = settings.memory_budget / settings.shards.max(1) as u64 / 4;
    (share as usize).clamp(WRITE_WINDOW_MIN, WRITE_WINDOW_MAX)
}

pub fn log_dir(settings: &Settings, id: u16) -> PathBuf {
    settings.data_dir.join(format!("shard-{id}"))
}

/// What a shard recovered before serving.
pub struct Recovered {
    pub log: Log,
    pub metadata: Metadata,
    /// The durable queues this shard owns: their config, their live
    /// messages as a paged tail (nothing is read into memory at start), and
    /// the largest message id the log named for each.
    pub queues: HashMap<QueueName, (QueueConfig, Vec<QueuedMessage>, RecoveredTail, u64)>,
    pub messages: u64,
    /// The durable delayed messages still pending (`shard::delayed`).
    pub delayed: crate::shard::delayed::RecoveredDelayed,
}

/// Says what the log's recovery cut: a torn tail (a crash in the middle of
/// a write: expected after SIGKILL) or segments after a corrupt one.
fn log_recovery_report(id: u16, report: &crate::storage::RecoveryReport) {
    if let Some((segment, len, why)) = &report.truncated {
        tracing::info!(
            shard = id,
            "log recovery: segment {segment} cut to {len} bytes at a torn or corrupt record ({why})"
        );
    }
    if !report.quarantined.is_empty() {
        tracing::error!(
            shard = id,
            "log recovery: segments {:?} follow a corrupt one and were quarantined (*.seg.corrupt)",
            report.quarantined
        );
    }
}

/// Loads the definitions into a fresh metadata copy, opens the shard's log
/// and replays it. Only an index of the live messages is kept (ranges of
/// ids per segment), so recovery takes little memory whatever the backlog.
/// The log raises `out_of_space` while it waits out a full disk (the
/// disk alarm's `Alarms::log_space_counter`).
pub async fn recover(
    settings: &Settings,
    id: u16,
    out_of_space: Arc<std::sync::atomic::AtomicUsize>,
) -> io::Result<Recovered> {
    let mut metadata = Metadata::new();
    let (defs, loaded) = Definitions::load_verbose(&settings.data_dir)?;
    if id == 0 {
        if loaded.torn_bytes > 0 {
            tracing::warn!(
                "definitions journal: ignored a torn tail of {} bytes after {} entries",
                loaded.torn_bytes,
                loaded.entries
            );
        }
        if let Some(g) = loaded.stale_generation {
            tracing::warn!(
                "definitions journal: generation {g} is not the snapshot's ({}): \
                 left over from an interrupted rotation, ignored",
                loaded.generation
            );
        }
    }
    if let Some(defs) = &defs {
        let has_queues =
            !defs.queues.is_empty() || defs.vhosts.iter().any(|v| !v.defs.queues.is_empty());
        if has_queues && defs.shards as usize != settings.shards {
            return Err(io::Error::other(format!(
                "data dir {} holds queues placed on {} shards; start with --shards {}",
                settings.data_dir.display(),
                defs.shards,
                defs.shards
            )));
        }
        definitions::apply(&mut metadata, VhostId::DEFAULT, defs);
        if defs.default_vhost_deleted {
            // Deleted, it stays deleted (RabbitMQ creates `/` only on a
            // first start).
            metadata.vhosts.remove(&VhostId::DEFAULT);
        }
        for v in &defs.vhosts {
            let id = VhostId(metadata.next_vhost);
            metadata.next_vhost += 1;
            metadata
                .vhosts
                .insert(id, crate::shard::metadata::VhostMeta::new(v.name.clone()));
            definitions::apply(&mut metadata, id, &v.defs);
        }
    }
    crate::shard::users::recover(
        &mut metadata,
        settings,
        defs.as_ref().and_then(|d| d.auth.clone()),
    );
    if id == 0 {
        crate::shard::users::store_first_start(&mut metadata, settings, loaded.generation).await?;
    }
    let owned: HashSet<QueueName> = metadata
        .queues
        .values()
        .filter(|q| q.owner == id)
        .map(|q| q.name.clone())
        .collect();
    // The owned priority queues and their maximum priority.
    let priorities: HashMap<QueueName, u8> = owned
        .iter()
        .filter_map(|name| {
            let max = priority::max_priority(&metadata.queues[name].config.arguments)?;
            Some((name.clone(), max))
        })
        .collect();

    let dir = log_dir(settings, id);
    std::fs::create_dir_all(&dir)?;
    let mut live: HashMap<QueueName, QueueReplay> = HashMap::new();
    // (segment of dead messages, segment of the record that killed them) → count
    let mut dead: HashMap<(u32, u32), u64> = HashMap::new();
    let mut max_id: HashMap<QueueName, u64> = HashMap::new();
    let mut delayed = crate::shard::delayed::RecoveredDelayed::default();
    // Records of a vhost that no longer exists name no queue it owns.
    let vhost_ids: HashMap<ShortStr, VhostId> = metadata
        .vhosts
        .iter()
        .map(|(id, v)| (v.name.clone(), *id))
        .collect();
    // (segment of a message, segment of a Returned record about it).
    let mut pins: Vec<(u32, u32)> = Vec::new();
    let mut saw = |queue: &QueueName, id: u64| {
        let m = max_id.entry(queue.clone()).or_default();
        *m = (*m).max(id);
    };
    let config = LogConfig {
        // Test-only (see README): make the log fail like a broken disk.
        fail_after_batches: std::env::var("WARREN_TEST_LOG_FAIL_AFTER_BATCHES")
            .ok()
            .and_then(|v| v.parse().ok()),
        // Test-only: a slow disk (every batch waits this many ms first).
        batch_delay: std::env::var("WARREN_TEST_LOG_SYNC_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(std::time::Duration::from_millis),
        // Test-only: message records with this routing key are refused.
        refuse_routing_key: std::env::var("WARREN_TEST_LOG_REFUSE_ROUTING_KEY").ok(),
        // Test-only: small segments, so a test rolls a few quickly.
        segment_size: std::env::var("WARREN_TEST_LOG_SEGMENT_SIZE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(LogConfig::default().segment_size),
        max_pending_bytes: write_window(settings),
        out_of_space: Some(out_of_space),
        ..LogConfig::default()
    };
    let log = Log::open_with(&dir, config, |rec| {
        let seg = rec.pos.segment;
        let (in_vhost, record) = rec.record.split_vhost();
        let vhost = match in_vhost {
            None => VhostId::DEFAULT,
            Some(name) => vhost_ids.get(&name).copied().unwrap_or(VhostId(u32::MAX)),
        };
        let qn = |name: &ShortStr| QueueName::new(vhost, name.clone());
        match &record {
            Record::Message(m) | Record::Copy(m) => {
                m.targets.iter().for_each(|t| saw(&qn(&t.queue), t.msg_id))
            }
            Record::Ack { queue, msg_id } => saw(&qn(queue), *msg_id),
            Record::Purge {
                queue,
                up_to_msg_id,
            }
            | Record::PurgeReady {
                queue,
                up_to_msg_id,
                ..
            } => saw(&qn(queue), *up_to_msg_id),
            _ => {}
        }
        match record {
            Record::Message(ref m) | Record::Copy(ref m) => {
                let copy = matches!(record, Record::Copy(_));
                // A message recovery keeps in memory (a compaction copy):
                // its own bytes, not a slice pinning the whole read chunk.
                let message = || -> MessageRef {
                    Arc::new(Message {
                        exchange: ShortStr::from(m.exchange.as_str()),
                        routing_key: ShortStr::from(m.routing_key.as_str()),
                        raw_properties: Bytes::copy_from_slice(&m.raw_properties),
                        body: Body::from(Bytes::copy_from_slice(&m.body)),
                        persistent: true,
                    })
                };
                let body_len = m.body.len() as u64;
                for t in &m.targets {
                    let name = qn(&t.queue);
                    if owned.contains(&name) {
                        let q = live.entry(name.clone()).or_default();
                        let added = !copy && t.msg_id > q.max_added;
                        let old = if copy {
                            q.add_copy(t.msg_id, rec.pos, t.expires, message)
                        } else {
                            q.add_record(t.msg_id, rec.pos, t.expires, body_len, message)
                        };
                        if let Some(old) = old {
                            *dead.entry((old, seg)).or_default() += 1;
                        }
                        if let (true, Some(&max)) = (added, priorities.get(&name)) {
                            q.add_span(priority::level_of_raw(&m.raw_properties, max), rec.pos);
                        }
                    } else {
                        *dead.entry((seg, seg)).or_default() += 1;
                    }
                }
            }
            Record::Ack { queue, msg_id } => {
                if let Some(q) = live.get_mut(&qn(&queue)) {
                    q.delivered.remove(msg_id);
                    q.returned.remove(&msg_id);
                    if let Some(s) = q.kill(msg_id) {
                        *dead.entry((s, seg)).or_default() += 1;
                    }
                }
            }
            Record::Delivered { queue, msg_id } => {
                if let Some(q) = live.get_mut(&qn(&queue)) {
                    q.delivered.insert(msg_id);
                }
            }
            Record::Purge {
                queue,
                up_to_msg_id,
            } => {
                if let Some(q) = live.get_mut(&qn(&queue)) {
                    q.purge(up_to_msg_id, &[], seg, &mut dead);
                }
            }
            Record::PurgeReady {
                queue,
                up_to_msg_id,
                spared,
            } => {
                if let Some(q) = live.get_mut(&qn(&queue)) {
                    q.purge(up_to_msg_id, &spared, seg, &mut dead);
                }
            }
            Record::Returned {
                queue,
                msg_id,
                delivery_count,
            } => {
                if let Some(q) = live.get_mut(&qn(&queue)) {
                    if let Some(segment) = q.segment_of(msg_id) {
                        q.returned.insert(msg_id, delivery_count);
                        pins.push((segment, seg));
                    }
                }
            }
            Record::QueueDelete { queue } => {
                if let Some(q) = live.remove(&qn(&queue)) {
                    for run in q.runs.into_values() {
                        *dead.entry((run.segment, seg)).or_default() += run.ids.len();
                    }
                    for (_, (_, s)) in q.moved {
                        *dead.entry((s, seg)).or_default() += 1;
                    }
                }
            }
            // Paged copies die with the process that wrote them; the log
            // never counted them at recovery.
            Record::Paged(_) | Record::Metadata { .. } | Record::InVhost { .. } => {}
            Record::Delayed(d) => {
                if let Some(old) =
                    delayed.delayed(rec.pos, d.id, d.deliver_at, d.durable, vhost, &d.exchange)
                {
                    // Compaction moved it forward: the older record is dead.
                    *dead.entry((old, seg)).or_default() += 1;
                }
            }
            Record::DelayedDone { id } => {
                if let Some(s) = delayed.done(id) {
                    *dead.entry((s, seg)).or_default() += 1;
                }
            }
        }
    })
    .await?;
    log_recovery_report(id, &log.recovery_report());
    for ((segment, by), n) in dead {
        log.release_many(segment, by, n);
    }
    // A delivery count's segment stays while its message's does.
    for (segment, by) in pins {
        log.pin(segment, by);
    }
    log.replay_done();

    let mut queues = HashMap::new();
    let mut messages = 0;
    for name in owned {
        let meta = &metadata.queues[&name];
        let mut replay = live.remove(&name).unwrap_or_default();
        if !replay.in_order() {
            tracing::warn!(
                shard = id,
                "queue '{name}': {} messages compaction copied forward come back ahead of \
                 older paged ones (a log written before compaction copies were marked); \
                 nothing is lost or repeated",
                replay.moved.len()
            );
        }
        let head: Vec<QueuedMessage> = std::mem::take(&mut replay.moved)
            .into_iter()
            .map(|(id, (message, segment))| QueuedMessage {
                id,
                message,
                redelivered: replay.delivered.remove(id),
                stored: Some(segment),
                expires: replay.moved_expires.get(&id).copied(),
                delivery_count: replay.returned.remove(&id).unwrap_or(0),
                slice_generation: None,
            })
            .collect();
        let runs = replay.runs.into_values().collect();
        let mut tail: RecoveredTail = match priorities.get(&name) {
            Some(&max) => {
                LevelTail::from_recovery(max as usize + 1, runs, &replay.spans, replay.delivered)
                    .into()
            }
            None => PagedTail::from_runs(runs, replay.delivered).into(),
        };
        tail.delivery_counts = replay.returned;
        messages += head.len() as u64 + tail.count();
        let max_seen = max_id.get(&name).copied().unwrap_or(0);
        queues.insert(name, (meta.config.clone(), head, tail, max_seen));
    }
    Ok(Recovered {
        log,
        metadata,
        queues,
        messages,
        delayed,
    })
}

/// Appends one record for a message's copies on this shard: a durable
/// `Message` record (persistent copies in durable queues, `paged` false) or
/// a `Paged` one (copies paged out of memory that need not survive a
/// restart). Returns where it went, or why it was not written (logged).
pub fn append_message(
    shard: &Rc<Shard>,
    vhost: VhostId,
    message: &Message,
    targets: &[Target],
    paged: bool,
) -> Result<RecordPos, String> {
    let kind = if paged { Kind::Paged } else { Kind::Message };
    append_as(shard, vhost, message, targets, kind)
}

/// Appends the `Copy` record compaction writes for a stored message (see
/// `compact`).
fn append_copy(
    shard: &Rc<Shard>,
    vhost: VhostId,
    message: &Message,
    target: &Target,
) -> Result<RecordPos, String> {
    append_as(
        shard,
        vhost,
        message,
        std::slice::from_ref(target),
        Kind::Copy,
    )
}

/// Which message record `append_as` writes.
#[derive(Clone, Copy)]
enum Kind {
    Message,
    Paged,
    Copy,
}

/// Appends `message` for `targets` as the record `kind` makes of it.
fn append_as(
    shard: &Rc<Shard>,
    vhost: VhostId,
    message: &Message,
    targets: &[Target],
    kind: Kind,
) -> Result<RecordPos, String> {
    let Some(log) = shard.log.as_ref() else {
        return Err("this shard has no log".into());
    };
    let m = crate::storage::MessageRef {
        targets,
        exchange: &message.exchange,
        routing_key: &message.routing_key,
        raw_properties: &message.raw_properties,
        body: message.body.chunks(),
    };
    let record = match kind {
        Kind::Message => RecordRef::Message(m),
        Kind::Paged => RecordRef::Paged(m),
        Kind::Copy => RecordRef::Copy(m),
    };
    shard.append_in(log, vhost, record).map_err(|e| {
        tracing::error!(shard = shard.id, "cannot append to its log: {e}");
        format!("log append failed: {e}")
    })
}

/// Records that stored messages left a queue and releases their segments.
pub fn record_removed(shard: &Shard, queue: &QueueName, removed: &[(u64, u32)]) {
    let Some(log) = shard.log.as_ref() else {
        return;
    };
    let (vhost, queue) = (queue.vhost, &queue.name);
    for &(msg_id, segment) in removed {
        match shard.append_in(log, vhost, RecordRef::Ack { queue, msg_id }) {
            Ok(pos) => log.release(segment, pos.segment),
            Err(e) => tracing::error!(shard = shard.id, "cannot record an ack: {e}"),
        }
    }
}

/// Records that stored messages were handed to consumers (so a restart
/// marks them redelivered). Not synced on its own: it rides the next batch.
pub fn record_delivered(shard: &Shard, queue: &QueueName, ids: &[u64]) {
    let Some(log) = shard.log.as_ref() else {
        return;
    };
    let (vhost, queue) = (queue.vhost, &queue.name);
    for &msg_id in ids {
        if let Err(e) = shard.append_in(log, vhost, RecordRef::Delivered { queue, msg_id }) {
            tracing::error!(shard = shard.id, "cannot record a delivery: {e}");
        }
    }
}

/// Records that delivered stored messages came back to a queue that
/// counts deliveries, with their delivery counts (`(id, segment of the
/// message's record, count)`), so a restart keeps counting. The record's
/// segment is kept while the message's is (`Log::pin`). Not synced on its
/// own: it rides the next batch.
pub fn record_returned(shard: &Shard, queue: &QueueName, returned: &[(u64, u32, u32)]) {
    let Some(log) = shard.log.as_ref() else {
        return;
    };
    let (vhost, queue) = (queue.vhost, &queue.name);
    for &(msg_id, segment, delivery_count) in returned {
        let record = RecordRef::Returned {
            queue,
            msg_id,
            delivery_count,
        };
        match shard.append_in(log, vhost, record) {
            Ok(pos) => log.pin(segment, pos.segment),
            Err(e) => tracing::error!(shard = shard.id, "cannot record a return: {e}"),
        }
    }
}

/// Records a purge (for a durable queue) and releases what the purged
/// messages held in the log: stored ones in memory and paged runs.
pub fn record_purge(shard: &Shard, queue: &QueueName, durable: bool, purged: &Purged) {
    if purged.stored.is_empty() && purged.paged.is_empty() {
        return;
    }
    let record = match (durable, purged.max_id) {
        (true, Some(up_to_msg_id)) if purged.spared.is_empty() => Some(RecordRef::Purge {
            queue: &queue.name,
            up_to_msg_id,
        }),
        // Unacked messages at or below the purged ids stay (a purge takes
        // ready messages only).
        (true, Some(up_to_msg_id)) => Some(RecordRef::PurgeReady {
            queue: &queue.name,
            up_to_msg_id,
            spared: &purged.spared,
        }),
        _ => None,
    };
    let stored = purged.stored.iter().map(|&(_, segment)| (segment, 1));
    kill_and_release(
        shard,
        queue.vhost,
        record,
        "a purge",
        stored.chain(purged.paged.iter().copied()),
    );
}

/// Records a durable queue's deletion and releases what the queue held in
/// the log (`segments`: (segment, live references)).
pub fn record_queue_delete(
    shard: &Shard,
    queue: &QueueName,
    durable: bool,
    segments: &[(u32, u64)],
) {
    let record = durable.then_some(RecordRef::QueueDelete { queue: &queue.name });
    kill_and_release(
        shard,
        queue.vhost,
        record,
        "a queue deletion",
        segments.iter().copied(),
    );
}

/// Appends `record` (the purge or deletion that kills messages of a durable
/// queue, if one is needed) and releases the dead references, given as
/// (segment, count), by that record's segment — or by their own segment
/// when no record is needed (nothing durable to outlive). If the append
/// fails nothing is released: the log has failed anyway.
fn kill_and_release(
    shard: &Shard,
    vhost: VhostId,
    record: Option<RecordRef<'_>>,
    what: &str,
    dead: impl Iterator<Item = (u32, u64)>,
) {
    let Some(log) = shard.log.as_ref() else {
        return;
    };
    let by = match record.map(|r| shard.append_in(log, vhost, r)) {
        None => None,
        Some(Ok(pos)) => Some(pos.segment),
        Some(Err(e)) => {
            tracing::error!(shard = shard.id, "cannot record {what}: {e}");
            return;
        }
    };
    for (segment, n) in dead {
        log.release_many(segment, by.unwrap_or(segment), n);
    }
}

/// Compaction looks only at a segment with at most this many live records…
const COMPACT_MAX_LIVE: u64 = 4096;
/// …and at least this many segments newer than it.
const COMPACT_BEHIND: u32 = 2;

/// Copies the few live records of the oldest log segment forward when they
/// all belong to stored messages held in memory (ready or unacked) or to
/// pending delayed messages (`shard::delayed::relocate`, asynchronously:
/// their bodies are read back first): that
/// segment then goes, and so does every later one kept only because its
/// dead records hold acks for it. Without this, one long-lived message
/// would keep the whole log from being reclaimed. A segment whose live
/// records include paged-out backlog stays (that is live data). Returns
/// whether it rewrote anything.
///
/// A copy is a `Copy` record (same queue, id and content), appended before
/// the original's reference is released, and each queue's copies of one
/// round are appended in ascending id order. With originals appended in
/// id order (`owner::enqueue` takes the id and appends in one step) and
/// only the oldest segment with live records ever copied, every live copy
/// of a queue has a smaller id than every live original of it, at every
/// point of the log, a round cut short by a crash included — so recovery
/// restores the copies in memory ahead of the paged originals, in id
/// order (`shard::replay`, `Queue::restore`). The original's segment is
/// deleted only once everything appended before is durable (the log's
/// writer deletes between batches, with nothing pending), so the copy is
/// on disk first. The crash-safety argument is in docs/ARCHITECTURE.md.
pub fn compact(shard: &Rc<Shard>) -> bool {
    let Some(log) = shard.log.as_ref() else {
        return false;
    };
    if log.out_of_space() {
        // Copies forward would only add to what the full disk holds back.
        return false;
    }
    let Some((segment, live)) = log.compaction_candidate(COMPACT_MAX_LIVE, COMPACT_BEHIND) else {
        return false;
    };
    if shard.compaction_checked.get() == Some((segment, live)) {
        return false;
    }
    shard.compaction_checked.set(Some((segment, live)));
    let mut queues = shard.queues.borrow_mut();
    let held: u64 = queues.values().map(|q| q.stored_in(segment)).sum();
    // Delayed messages: the pending ones move too; routed ones waiting for
    // confirms will die soon (their segment is looked at again then).
    let (delayed, routed) = crate::shard::delayed::held_in(shard, segment);
    if held + delayed + routed != live || routed > 0 {
        return false;
    }
    if delayed > 0 && !crate::shard::delayed::relocate(shard, segment) {
        // A move is still out: look again later.
        shard.compaction_checked.set(None);
        return false;
    }
    for (name, q) in queues.iter_mut() {
        q.relocate_stored(segment, |msg_id, message, delivered, expires, count| {
            let target = Target {
                queue: name.name.clone(),
                msg_id,
                expires,
            };
            let pos = append_copy(shard, name.vhost, message, &target).ok()?;
            log.release(segment, pos.segment);
            if delivered {
                // The old segment's Delivered record goes with it.
                record_delivered(shard, name, &[msg_id]);
            }
            if count > 0 {
                // And its delivery count (the old Returned record's segment
                // is no longer kept for it).
                record_returned(shard, name, &[(msg_id, pos.segment, count)]);
            }
            Some(pos.segment)
        });
    }
    true
}
