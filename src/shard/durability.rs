//! Persistence wiring of one shard: at start, the durable definitions and
//! the shard's log are read back into the shard's metadata copy and the
//! queues it owns (as paged tails: an index, not the messages); while
//! running, persistent messages routed to durable
//! queues are appended to the log (body once per shard, whatever the
//! fan-out), their removal is recorded (ack, purge, queue deletion), and the
//! leader journals every durable metadata change (`durable_changes`; the
//! files are `storage::definitions`'s, the writing `shard::leader`'s).

use crate::broker::auth::AuthChange;
use crate::broker::exchange::{BindingDef, Destination};
use crate::broker::message::{Body, Message, MessageRef};
use crate::broker::paged::PagedTail;
use crate::broker::queue::{
    priority, LevelTail, Purged, QueueConfig, QueuedMessage, RecoveredTail,
};
use crate::broker::topology::strip_cr_lf;
use crate::protocol::types::ShortStr;
use crate::shard::envelope::{MetaChange, QueueMeta};
use crate::shard::metadata::Metadata;
use crate::shard::replay::QueueReplay;
use crate::shard::{Settings, Shard};
use crate::storage::definitions::{Catalog, Change, Definitions, QueueDef};
use crate::storage::{Log, LogConfig, Record, RecordPos, RecordRef, Target};
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
    pub queues: HashMap<ShortStr, (QueueConfig, Vec<QueuedMessage>, RecoveredTail, u64)>,
    pub messages: u64,
    /// The durable delayed messages still pending (`shard::delayed`).
    pub delayed: crate::shard::delayed::RecoveredDelayed,
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
        if !defs.queues.is_empty() && defs.shards as usize != settings.shards {
            return Err(io::Error::other(format!(
                "data dir {} holds queues placed on {} shards; start with --shards {}",
                settings.data_dir.display(),
                defs.shards,
                defs.shards
            )));
        }
        apply_definitions(&mut metadata, defs);
    }
    crate::shard::users::recover(
        &mut metadata,
        settings,
        defs.as_ref().and_then(|d| d.auth.clone()),
    );
    let owned: HashSet<ShortStr> = metadata
        .queues
        .values()
        .filter(|q| q.owner == id)
        .map(|q| q.name.clone())
        .collect();
    // The owned priority queues and their maximum priority.
    let priorities: HashMap<ShortStr, u8> = owned
        .iter()
        .filter_map(|name| {
            let max = priority::max_priority(&metadata.queues[name].config.arguments)?;
            Some((name.clone(), max))
        })
        .collect();

    let dir = log_dir(settings, id);
    std::fs::create_dir_all(&dir)?;
    let mut live: HashMap<ShortStr, QueueReplay> = HashMap::new();
    // (segment of dead messages, segment of the record that killed them) → count
    let mut dead: HashMap<(u32, u32), u64> = HashMap::new();
    let mut max_id: HashMap<ShortStr, u64> = HashMap::new();
    let mut delayed = crate::shard::delayed::RecoveredDelayed::default();
    // (segment of a message, segment of a Returned record about it).
    let mut pins: Vec<(u32, u32)> = Vec::new();
    let mut saw = |queue: &ShortStr, id: u64| {
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
        ..LogConfig::default()
    };
    let log = Log::open_with(&dir, config, |rec| {
        let seg = rec.pos.segment;
        match &rec.record {
            Record::Message(m) => m.targets.iter().for_each(|t| saw(&t.queue, t.msg_id)),
            Record::Ack { queue, msg_id } => saw(queue, *msg_id),
            Record::Purge {
                queue,
                up_to_msg_id,
            }
            | Record::PurgeReady {
                queue,
                up_to_msg_id,
                ..
            } => saw(queue, *up_to_msg_id),
            _ => {}
        }
        match rec.record {
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
                let body_len = m.body.len() as u64;
                for t in &m.targets {
                    if owned.contains(&t.queue) {
                        let q = live.entry(t.queue.clone()).or_default();
                        let added = t.msg_id > q.max_added;
                        if let Some(old) =
                            q.add_record(t.msg_id, rec.pos, t.expires, body_len, message)
                        {
                            *dead.entry((old, seg)).or_default() += 1;
                        }
                        if let (true, Some(&max)) = (added, priorities.get(&t.queue)) {
                            q.add_span(priority::level_of_raw(&m.raw_properties, max), rec.pos);
                        }
                    } else {
                        *dead.entry((seg, seg)).or_default() += 1;
                    }
                }
            }
            Record::Ack { queue, msg_id } => {
                if let Some(q) = live.get_mut(&queue) {
                    q.delivered.remove(msg_id);
                    q.returned.remove(&msg_id);
                    if let Some(s) = q.kill(msg_id) {
                        *dead.entry((s, seg)).or_default() += 1;
                    }
                }
            }
            Record::Delivered { queue, msg_id } => {
                if let Some(q) = live.get_mut(&queue) {
                    q.delivered.insert(msg_id);
                }
            }
            Record::Purge {
                queue,
                up_to_msg_id,
            } => {
                if let Some(q) = live.get_mut(&queue) {
                    q.purge(up_to_msg_id, &[], seg, &mut dead);
                }
            }
            Record::PurgeReady {
                queue,
                up_to_msg_id,
                spared,
            } => {
                if let Some(q) = live.get_mut(&queue) {
                    q.purge(up_to_msg_id, &spared, seg, &mut dead);
                }
            }
            Record::Returned {
                queue,
                msg_id,
                delivery_count,
            } => {
                if let Some(q) = live.get_mut(&queue) {
                    if let Some(segment) = q.segment_of(msg_id) {
                        q.returned.insert(msg_id, delivery_count);
                        pins.push((segment, seg));
                    }
                }
            }
            Record::QueueDelete { queue } => {
                if let Some(q) = live.remove(&queue) {
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
            Record::Paged(_) | Record::Metadata { .. } => {}
            Record::Delayed(d) => {
                if let Some(old) =
                    delayed.delayed(rec.pos, d.id, d.deliver_at, d.durable, &d.exchange)
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

fn apply_definitions(meta: &mut Metadata, defs: &Definitions) {
    for p in &defs.policies {
        match crate::shard::policies::compile(p) {
            Ok(p) => meta.policies.push(p),
            Err(e) => tracing::warn!("stored policy '{}' not restored: {e}", p.name),
        }
    }
    let policies: Vec<_> = meta.policies.iter().map(|p| p.policy.clone()).collect();
    meta.topology.set_policies(&policies);
    for x in &defs.exchanges {
        let r = meta.topology.declare_exchange(
            &x.name,
            x.kind.as_str(),
            false,
            true,
            x.auto_delete,
            x.internal,
            &x.arguments,
        );
        if let Err(e) = r {
            tracing::warn!("stored exchange '{}' not restored: {}", x.name, e.text);
        }
    }
    for q in &defs.queues {
        meta.queues.insert(
            q.name.clone(),
            QueueMeta {
                name: q.name.clone(),
                owner: q.owner,
                config: QueueConfig {
                    durable: true,
                    exclusive: false,
                    auto_delete: q.auto_delete,
                    arguments: q.arguments.clone(),
                },
                exclusive_to: None,
            },
        );
    }
    for b in &defs.bindings {
        if !meta.destination_exists(&b.destination) {
            continue;
        }
        let r = meta.topology.bind(
            &b.source,
            b.destination.clone(),
            &b.routing_key,
            &b.arguments,
        );
        if let Err(e) = r {
            tracing::warn!(
                "stored binding from '{}' not restored: {}",
                b.source,
                e.text
            );
        }
    }
}

fn is_predeclared(name: &str) -> bool {
    name.is_empty() || name.starts_with("amq.")
}

fn durable_queue(meta: &Metadata, name: &str) -> bool {
    meta.queues
        .get(name)
        .is_some_and(|q| q.config.durable && !q.config.exclusive)
}

fn durable_exchange(meta: &Metadata, name: &str) -> bool {
    meta.topology.exchange(name).is_some_and(|x| x.durable)
}

fn durable_destination(meta: &Metadata, d: &Destination) -> bool {
    match d {
        Destination::Queue(q) => durable_queue(meta, q),
        Destination::Exchange(x) => durable_exchange(meta, x),
    }
}

fn queue_def(q: &QueueMeta) -> QueueDef {
    QueueDef {
        name: q.name.clone(),
        owner: q.owner,
        auto_delete: q.config.auto_delete,
        arguments: q.config.arguments.clone(),
    }
}

/// The durable part of a metadata copy.
pub fn definitions_of(meta: &Metadata, shards: u16) -> Definitions {
    let mut exchanges: Vec<_> = meta
        .topology
        .exchanges()
        .filter(|x| x.durable && !is_predeclared(&x.name))
        .cloned()
        .collect();
    exchanges.sort_by(|a, b| a.name.cmp(&b.name));
    let mut queues: Vec<QueueDef> = meta
        .queues
        .values()
        .filter(|q| durable_queue(meta, &q.name))
        .map(queue_def)
        .collect();
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    let bindings = meta
        .topology
        .bindings()
        .into_iter()
        .filter(|b| durable_exchange(meta, &b.source) && durable_destination(meta, &b.destination))
        .collect();
    let mut policies: Vec<_> = meta.policies.iter().map(|p| p.def.clone()).collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    Definitions {
        shards,
        exchanges,
        queues,
        policies,
        bindings,
        auth: Some(meta.auth.defs().clone()),
    }
}

/// Leader: what a metadata change the leader just applied to its copy
/// `meta` did to the durable definitions, as journal changes, given the
/// definitions before it (`stored`). Looks only at what the change names,
/// plus the auto-delete exchanges `stored` holds (any change that removes a
/// binding can delete one of those as a side effect), so it costs about the
/// size of the change, not of the definitions.
pub fn durable_changes(stored: &Catalog, meta: &Metadata, change: &MetaChange) -> Vec<Change> {
    let stripped = |name: &ShortStr| match strip_cr_lf(name) {
        std::borrow::Cow::Borrowed(_) => name.clone(),
        std::borrow::Cow::Owned(s) => ShortStr::try_from_string(s).unwrap_or_default(),
    };
    let mut out = Vec::new();
    if stored.auth().is_none() {
        // After a first start: the first change stores every user and
        // permission (the default user among them) with it.
        let d = meta.auth.defs();
        let all = (d.users.values().cloned().map(AuthChange::User))
            .chain(d.permissions.values().cloned().map(AuthChange::Permission))
            .chain(
                d.topic_permissions
                    .values()
                    .cloned()
                    .map(AuthChange::TopicPermission),
            );
        out.extend(all.map(Change::Auth));
    }
    let removes_bindings = match change {
        MetaChange::Auth(a) => {
            if !stored.auth().is_some_and(|d| d.holds(a)) {
                out.push(Change::Auth(a.clone()));
            }
            false
        }
        MetaChange::PolicySet(p) => {
            if stored.policy(&p.name) != Some(p) {
                out.push(Change::Policy(p.clone()));
            }
            false
        }
        MetaChange::PolicyCleared(name) => {
            if stored.policy(name).is_some() {
                out.push(Change::PolicyGone(name.clone()));
            }
            false
        }
        MetaChange::QueueCreated(q) => {
            if durable_queue(meta, &q.name) && stored.queue(&q.name).is_none() {
                out.push(Change::Queue(queue_def(&meta.queues[&q.name])));
            }
            false
        }
        MetaChange::QueueDeleted(name) => {
            if stored.queue(name).is_some() && !durable_queue(meta, name) {
                out.push(Change::QueueGone(name.clone()));
            }
            true
        }
        MetaChange::ExchangeDeclared(def) => {
            let name = stripped(&def.name);
            if let Some(x) = meta.topology.exchange(&name) {
                if x.durable && !is_predeclared(&name) && stored.exchange(&name) != Some(x) {
                    out.push(Change::Exchange(x.clone()));
                }
            }
            false
        }
        MetaChange::ExchangeDeleted(_) => true,
        MetaChange::Bound(b) | MetaChange::Unbound(b) => {
            let b = BindingDef {
                source: stripped(&b.source),
                destination: match &b.destination {
                    Destination::Queue(q) => Destination::Queue(stripped(q)),
                    Destination::Exchange(x) => Destination::Exchange(stripped(x)),
                },
                routing_key: b.routing_key.clone(),
                arguments: b.arguments.clone(),
            };
            if matches!(change, MetaChange::Bound(_)) {
                if durable_exchange(meta, &b.source)
                    && durable_destination(meta, &b.destination)
                    && !stored.has_binding(&b)
                {
                    out.push(Change::Bind(b));
                }
                false
            } else {
                if stored.has_binding(&b) {
                    out.push(Change::Unbind(b));
                }
                true
            }
        }
    };
    if removes_bindings {
        // The exchange deleted, and auto-delete exchanges that went with a
        // binding they lost (possibly a binding to a transient queue).
        let gone = |name: &str| !durable_exchange(meta, name);
        if let MetaChange::ExchangeDeleted(name) = change {
            let name = stripped(name);
            if stored.exchange(&name).is_some() && gone(&name) {
                out.push(Change::ExchangeGone(name));
            }
        }
        for name in stored.auto_delete_exchanges() {
            if gone(name)
                && !out
                    .iter()
                    .any(|c| matches!(c, Change::ExchangeGone(n) if n == name))
            {
                out.push(Change::ExchangeGone(name.clone()));
            }
        }
    }
    out
}

/// Appends one record for a message's copies on this shard: a durable
/// `Message` record (persistent copies in durable queues, `paged` false) or
/// a `Paged` one (copies paged out of memory that need not survive a
/// restart). Returns where it went, or why it was not written (logged).
pub fn append_message(
    shard: &Rc<Shard>,
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
    log.append(record).map_err(|e| {
        tracing::error!(shard = shard.id, "cannot append to its log: {e}");
        format!("log append failed: {e}")
    })
}

/// Records that stored messages left a queue and releases their segments.
pub fn record_removed(shard: &Shard, queue: &ShortStr, removed: &[(u64, u32)]) {
    let Some(log) = shard.log.as_ref() else {
        return;
    };
    for &(msg_id, segment) in removed {
        match log.append(RecordRef::Ack { queue, msg_id }) {
            Ok(pos) => log.release(segment, pos.segment),
            Err(e) => tracing::error!(shard = shard.id, "cannot record an ack: {e}"),
        }
    }
}

/// Records that stored messages were handed to consumers (so a restart
/// marks them redelivered). Not synced on its own: it rides the next batch.
pub fn record_delivered(shard: &Shard, queue: &ShortStr, ids: &[u64]) {
    let Some(log) = shard.log.as_ref() else {
        return;
    };
    for &msg_id in ids {
        if let Err(e) = log.append(RecordRef::Delivered { queue, msg_id }) {
            tracing::error!(shard = shard.id, "cannot record a delivery: {e}");
        }
    }
}

/// Records that delivered stored messages came back to a queue that
/// counts deliveries, with their delivery counts (`(id, segment of the
/// message's record, count)`), so a restart keeps counting. The record's
/// segment is kept while the message's is (`Log::pin`). Not synced on its
/// own: it rides the next batch.
pub fn record_returned(shard: &Shard, queue: &ShortStr, returned: &[(u64, u32, u32)]) {
    let Some(log) = shard.log.as_ref() else {
        return;
    };
    for &(msg_id, segment, delivery_count) in returned {
        let record = RecordRef::Returned {
            queue,
            msg_id,
            delivery_count,
        };
        match log.append(record) {
            Ok(pos) => log.pin(segment, pos.segment),
            Err(e) => tracing::error!(shard = shard.id, "cannot record a return: {e}"),
        }
    }
}

/// Records a purge (for a durable queue) and releases what the purged
/// messages held in the log: stored ones in memory and paged runs.
pub fn record_purge(shard: &Shard, queue: &ShortStr, durable: bool, purged: &Purged) {
    if purged.stored.is_empty() && purged.paged.is_empty() {
        return;
    }
    let record = match (durable, purged.max_id) {
        (true, Some(up_to_msg_id)) if purged.spared.is_empty() => Some(RecordRef::Purge {
            queue,
            up_to_msg_id,
        }),
        // Unacked messages at or below the purged ids stay (a purge takes
        // ready messages only).
        (true, Some(up_to_msg_id)) => Some(RecordRef::PurgeReady {
            queue,
            up_to_msg_id,
            spared: &purged.spared,
        }),
        _ => None,
    };
    let stored = purged.stored.iter().map(|&(_, segment)| (segment, 1));
    kill_and_release(
        shard,
        record,
        "a purge",
        stored.chain(purged.paged.iter().copied()),
    );
}

/// Records a durable queue's deletion and releases what the queue held in
/// the log (`segments`: (segment, live references)).
pub fn record_queue_delete(
    shard: &Shard,
    queue: &ShortStr,
    durable: bool,
    segments: &[(u32, u64)],
) {
    let record = durable.then_some(RecordRef::QueueDelete { queue });
    kill_and_release(shard, record, "a queue deletion", segments.iter().copied());
}

/// Appends `record` (the purge or deletion that kills messages of a durable
/// queue, if one is needed) and releases the dead references, given as
/// (segment, count), by that record's segment — or by their own segment
/// when no record is needed (nothing durable to outlive). If the append
/// fails nothing is released: the log has failed anyway.
fn kill_and_release(
    shard: &Shard,
    record: Option<RecordRef<'_>>,
    what: &str,
    dead: impl Iterator<Item = (u32, u64)>,
) {
    let Some(log) = shard.log.as_ref() else {
        return;
    };
    let by = match record.map(|r| log.append(r)) {
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
        q.relocate_stored(segment, |msg_id, message, delivered, expires, count| {
            let target = [Target {
                queue: name.clone(),
                msg_id,
                expires,
            }];
            let pos = append_message(shard, message, &target, false).ok()?;
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
