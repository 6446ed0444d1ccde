//! Persistence wiring of one shard: at start, the durable definitions and
//! the shard's log are read back into the shard's metadata copy and the
//! queues it owns (as paged tails: an index, not the messages); while
//! running, persistent messages routed to durable
//! queues are appended to the log (body once per shard, whatever the
//! fan-out), their removal is recorded (ack, purge, queue deletion), and the
//! leader journals every durable metadata change (`durable_changes`; the
//! files are `storage::definitions`'s, the writing `shard::leader`'s).

use crate::broker::message::{Body, Message, MessageRef};
use crate::broker::paged::{IdRanges, PagedRun, PagedTail};
use crate::broker::queue::{
    priority, LevelTail, Purged, QueueConfig, QueuedMessage, RecoveredTail,
};
use crate::broker::vhost::{QueueName, VhostId};
use crate::protocol::types::ShortStr;
use crate::shard::metadata::Metadata;
use crate::shard::{definitions, Settings, Shard};
use crate::storage::definitions::Definitions;
use crate::storage::{Log, LogConfig, Record, RecordPos, RecordRef, Target};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

/// The directory of shard `id`'s log.
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

/// One owned queue's messages as the replay finds them.
#[derive(Default)]
struct QueueReplay {
    /// Per segment: where the queue's records start and end, and the live ids.
    runs: BTreeMap<u32, PagedRun>,
    /// First id of each run → its segment (ids grow with log order).
    run_of: BTreeMap<u64, u32>,
    /// Ids handed to a consumer and not acked (they come back redelivered).
    delivered: IdRanges,
    /// The largest id added so far.
    max_added: u64,
    /// Live messages whose latest record came out of id order (compaction
    /// copied it forward): id → (message, segment). They come back in
    /// memory, ahead of the runs.
    moved: BTreeMap<u64, (MessageRef, u32)>,
    /// Deadlines (message TTL) of the `moved` messages that have one.
    moved_expires: HashMap<u64, u64>,
    /// A priority queue's levels: per (level, segment) the byte range of
    /// the level's records in the runs.
    spans: BTreeMap<(usize, u32), (u32, u32)>,
    /// Delivery counts of returned messages (quorum queues, `Returned`
    /// records): id → returns.
    returned: BTreeMap<u64, u32>,
}

impl QueueReplay {
    /// A message record for `id`: appended to the runs, or, when it comes
    /// after larger ids (a copy compaction made), kept in `moved` and
    /// superseding the older record. Returns the segment of the record it
    /// supersedes, if any.
    fn add_record(
        &mut self,
        id: u64,
        pos: RecordPos,
        expires: Option<u64>,
        message: impl FnOnce() -> MessageRef,
    ) -> Option<u32> {
        if id > self.max_added {
            self.max_added = id;
            self.add(id, pos, expires);
            return None;
        }
        match expires {
            Some(e) => self.moved_expires.insert(id, e),
            None => self.moved_expires.remove(&id),
        };
        let old = self
            .moved
            .remove(&id)
            .map(|(_, segment)| segment)
            .or_else(|| self.remove(id));
        self.moved.insert(id, (message(), pos.segment));
        old
    }

    fn add(&mut self, id: u64, pos: RecordPos, expires: Option<u64>) {
        let run = self
            .runs
            .entry(pos.segment)
            .or_insert_with(|| PagedRun::new(pos.segment, pos.offset));
        if run.ids.is_empty() {
            self.run_of.insert(id, pos.segment);
        }
        run.end = pos.offset + pos.len;
        run.ids.insert(id);
        run.note_expiry(expires);
    }

    /// Notes that the record at `pos` (added to the runs) is of `level`.
    fn add_span(&mut self, level: usize, pos: RecordPos) {
        let end = pos.offset + pos.len;
        self.spans
            .entry((level, pos.segment))
            .and_modify(|span| span.1 = end)
            .or_insert((pos.offset, end));
    }

    /// Removes a live id (ack, reject); returns the segment of its record.
    fn kill(&mut self, id: u64) -> Option<u32> {
        match self.moved.remove(&id) {
            Some((_, segment)) => Some(segment),
            None => self.remove(id),
        }
    }

    /// A purge of the ready ids up to `up_to` (inclusive), sparing the ids
    /// in `spared` (ranges, end exclusive: unacked when the queue was
    /// purged). Counts the dead references by segment into `dead`, killed
    /// by the purge record's segment `by`.
    fn purge(
        &mut self,
        up_to: u64,
        spared: &[(u64, u64)],
        by: u32,
        dead: &mut HashMap<(u32, u32), u64>,
    ) {
        let spares = |id: u64| spared.iter().any(|&(s, e)| s <= id && id < e);
        // The spared ids at or below `up_to` (bounded by the unacked
        // messages of the queue when it was purged).
        let below: Vec<u64> = spared
            .iter()
            .flat_map(|&(s, e)| s..e.min(up_to.saturating_add(1)))
            .collect();
        let delivered: Vec<u64> = below
            .iter()
            .copied()
            .filter(|&id| self.delivered.contains(id))
            .collect();
        self.delivered.remove_up_to(up_to);
        for id in delivered {
            self.delivered.insert(id);
        }
        let keep = self.returned.split_off(&(up_to.saturating_add(1)));
        let purged = std::mem::replace(&mut self.returned, keep);
        self.returned
            .extend(purged.into_iter().filter(|&(id, _)| spares(id)));
        let keep = self.moved.split_off(&(up_to.saturating_add(1)));
        for (id, (m, s)) in std::mem::replace(&mut self.moved, keep) {
            if spares(id) {
                self.moved.insert(id, (m, s));
            } else {
                *dead.entry((s, by)).or_default() += 1;
            }
        }
        for run in self.runs.values_mut() {
            let kept: Vec<u64> = below
                .iter()
                .copied()
                .filter(|&id| run.ids.contains(id))
                .collect();
            let n = run.ids.remove_up_to(up_to) - kept.len() as u64;
            for id in kept {
                run.ids.insert(id);
            }
            if n > 0 {
                *dead.entry((run.segment, by)).or_default() += n;
            }
        }
    }

    /// Removes a live id from the runs; returns the segment of its record.
    fn remove(&mut self, id: u64) -> Option<u32> {
        if let Some((_, &segment)) = self.run_of.range(..=id).next_back() {
            if self
                .runs
                .get_mut(&segment)
                .is_some_and(|r| r.ids.remove(id))
            {
                return Some(segment);
            }
        }
        // Ids out of log order (not written by this broker): look everywhere.
        self.runs
            .values_mut()
            .find_map(|r| r.ids.remove(id).then_some(r.segment))
    }
}

/// Loads the definitions into a fresh metadata copy, opens the shard's log
/// and replays it. Only an index of the live messages is kept (ranges of
/// ids per segment), so recovery takes little memory whatever the backlog.
pub async fn recover(settings: &Settings, id: u16) -> io::Result<Recovered> {
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
        for v in &defs.vhosts {
            let id = VhostId(metadata.next_vhost);
            metadata.next_vhost += 1;
            metadata
                .vhosts
                .insert(id, crate::shard::metadata::VhostMeta::new(v.name.clone()));
            definitions::apply(&mut metadata, id, &v.defs);
        }
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
            Record::Message(m) => m.targets.iter().for_each(|t| saw(&qn(&t.queue), t.msg_id)),
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
            Record::Message(m) => {
                let message = || -> MessageRef {
                    Arc::new(Message {
                        exchange: m.exchange.clone(),
                        routing_key: m.routing_key.clone(),
                        raw_properties: m.raw_properties.clone(),
                        body: Body::from(m.body.clone()),
                        persistent: true,
                    })
                };
                for t in &m.targets {
                    let name = qn(&t.queue);
                    if owned.contains(&name) {
                        let q = live.entry(name.clone()).or_default();
                        let added = t.msg_id > q.max_added;
                        if let Some(old) = q.add_record(t.msg_id, rec.pos, t.expires, message) {
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
                    q.returned.insert(msg_id, delivery_count);
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
    for ((segment, by), n) in dead {
        log.release_many(segment, by, n);
    }
    log.replay_done();

    let mut queues = HashMap::new();
    let mut messages = 0;
    for name in owned {
        let meta = &metadata.queues[&name];
        let mut replay = live.remove(&name).unwrap_or_default();
        let head: Vec<QueuedMessage> = std::mem::take(&mut replay.moved)
            .into_iter()
            .map(|(id, (message, segment))| QueuedMessage {
                id,
                message,
                redelivered: replay.delivered.remove(id),
                stored: Some(segment),
                expires: replay.moved_expires.get(&id).copied(),
                delivery_count: replay.returned.remove(&id).unwrap_or(0),
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
    let record = if paged {
        RecordRef::Paged(m)
    } else {
        RecordRef::Message(m)
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
/// counts deliveries, with their delivery counts (`(id, count)`), so a
/// restart keeps counting. Not synced on its own: it rides the next batch.
pub fn record_returned(shard: &Shard, queue: &ShortStr, returned: &[(u64, u32)]) {
    let Some(log) = shard.log.as_ref() else {
        return;
    };
    for &(msg_id, delivery_count) in returned {
        let record = RecordRef::Returned {
            queue,
            msg_id,
            delivery_count,
        };
        if let Err(e) = log.append(record) {
            tracing::error!(shard = shard.id, "cannot record a return: {e}");
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
pub fn compact(shard: &Rc<Shard>) -> bool {
    let Some(log) = shard.log.as_ref() else {
        return false;
    };
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
        q.relocate_stored(segment, |msg_id, message, delivered, expires| {
            let target = [Target {
                queue: name.name.clone(),
                msg_id,
                expires,
            }];
            let pos = append_message(shard, name.vhost, message, &target, false).ok()?;
            log.release(segment, pos.segment);
            if delivered {
                // The old segment's Delivered record goes with it.
                record_delivered(shard, name, &[msg_id]);
            }
            Some(pos.segment)
        });
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn pos(segment: u32, offset: u32) -> RecordPos {
        RecordPos {
            segment,
            offset,
            len: 50,
        }
    }

    fn message() -> MessageRef {
        Arc::new(Message {
            exchange: ShortStr::EMPTY,
            routing_key: ShortStr::from("q"),
            raw_properties: Bytes::from_static(&[0, 0]),
            body: Body::from(Bytes::from_static(b"m")),
            persistent: true,
        })
    }

    #[test]
    fn a_purge_spares_the_ids_it_names() {
        let mut q = QueueReplay::default();
        for id in 1..=6 {
            q.add_record(id, pos(1, id as u32 * 50), None, message);
        }
        // 2 was compacted forward; 2 and 3 were unacked when purged.
        q.add_record(2, pos(2, 0), None, message);
        q.delivered.insert(2);
        q.delivered.insert(3);
        q.delivered.insert(4);
        q.returned.insert(3, 2);
        q.returned.insert(4, 1);
        let mut dead = HashMap::new();
        q.purge(5, &[(2, 4)], 3, &mut dead);
        let live: Vec<u64> = (0..10).filter(|&i| q.runs[&1].ids.contains(i)).collect();
        assert_eq!(live, vec![3, 6]);
        assert_eq!(q.moved.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert_eq!(dead, HashMap::from([((1, 3), 3)]), "1, 4 and 5 died");
        assert!(q.delivered.contains(2) && q.delivered.contains(3));
        assert!(!q.delivered.contains(4));
        assert_eq!(q.returned, BTreeMap::from([(3, 2)]));
    }

    #[test]
    fn replay_keeps_log_order_ids_in_runs_and_compacted_copies_apart() {
        let mut q = QueueReplay::default();
        for id in 1..=3 {
            assert_eq!(
                q.add_record(id, pos(1, id as u32 * 50), None, message),
                None
            );
        }
        assert_eq!(q.add_record(4, pos(2, 0), None, message), None);
        // Compaction copied id 2 forward: the copy supersedes segment 1's.
        assert_eq!(q.add_record(2, pos(3, 0), None, message), Some(1));
        assert_eq!(q.moved.keys().copied().collect::<Vec<_>>(), vec![2]);
        // And again, from segment 3 to 5.
        assert_eq!(q.add_record(2, pos(5, 0), None, message), Some(3));
        assert_eq!(q.moved[&2].1, 5);
        // Acks find either kind.
        assert_eq!(q.kill(2), Some(5));
        assert_eq!(q.kill(3), Some(1));
        assert_eq!(q.kill(3), None);
        let ids: Vec<u64> = q
            .runs
            .values()
            .flat_map(|r| (0..10).filter(|&i| r.ids.contains(i)).collect::<Vec<_>>())
            .collect();
        assert_eq!(ids, vec![1, 4]);
    }
}
