//! Persistence wiring of one shard: at start, the durable definitions and
//! the shard's log are read back into the shard's metadata copy and the
//! queues it owns; while running, persistent messages routed to durable
//! queues are appended to the log (body once per shard, whatever the
//! fan-out), their removal is recorded (ack, purge, queue deletion), and the
//! leader rewrites the definitions file on every durable metadata change.

use crate::broker::exchange::Destination;
use crate::broker::message::{Body, Message, MessageRef};
use crate::broker::queue::{QueueConfig, QueuedMessage};
use crate::protocol::types::ShortStr;
use crate::shard::envelope::QueueMeta;
use crate::shard::replica::{self, Metadata};
use crate::shard::{Settings, Shard};
use crate::storage::definitions::{Definitions, QueueDef};
use crate::storage::{Log, LogConfig, Record, RecordRef, Target};
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
    /// Messages of the durable queues this shard owns, in queue order,
    /// with the largest message id the log named for each.
    pub queues: HashMap<ShortStr, (QueueConfig, Vec<QueuedMessage>, u64)>,
    pub messages: usize,
}

/// Loads the definitions into a fresh metadata copy, opens the shard's log
/// and replays it.
pub async fn recover(settings: &Settings, id: u16) -> io::Result<Recovered> {
    let mut metadata = Metadata::new();
    let defs = Definitions::load(&settings.data_dir)?;
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
    let owned: HashSet<ShortStr> = metadata
        .queues
        .values()
        .filter(|q| q.owner == id)
        .map(|q| q.name.clone())
        .collect();

    let dir = log_dir(settings, id);
    std::fs::create_dir_all(&dir)?;
    // Per owned durable queue: msg_id → (message, segment, delivered before).
    let mut live: HashMap<ShortStr, BTreeMap<u64, (MessageRef, u32, bool)>> = HashMap::new();
    // (segment of the dead message, segment of the record that killed it)
    let mut dead: Vec<(u32, u32)> = Vec::new();
    let mut max_id: HashMap<ShortStr, u64> = HashMap::new();
    let mut saw = |queue: &ShortStr, id: u64| {
        let m = max_id.entry(queue.clone()).or_default();
        *m = (*m).max(id);
    };
    let log = Log::open_with(&dir, LogConfig::default(), |rec| {
        let seg = rec.pos.segment;
        match &rec.record {
            Record::Message(m) => m.targets.iter().for_each(|t| saw(&t.queue, t.msg_id)),
            Record::Ack { queue, msg_id } => saw(queue, *msg_id),
            Record::Purge {
                queue,
                up_to_msg_id,
            } => saw(queue, *up_to_msg_id),
            _ => {}
        }
        match rec.record {
            Record::Message(m) => {
                let message: MessageRef = Arc::new(Message {
                    exchange: m.exchange,
                    routing_key: m.routing_key,
                    raw_properties: m.raw_properties,
                    body: Body::from(m.body),
                    persistent: true,
                });
                for t in m.targets {
                    if owned.contains(&t.queue) {
                        live.entry(t.queue)
                            .or_default()
                            .insert(t.msg_id, (message.clone(), seg, false));
                    } else {
                        dead.push((seg, seg));
                    }
                }
            }
            Record::Ack { queue, msg_id } => {
                if let Some((_, s, _)) = live.get_mut(&queue).and_then(|q| q.remove(&msg_id)) {
                    dead.push((s, seg));
                }
            }
            Record::Delivered { queue, msg_id } => {
                if let Some(entry) = live.get_mut(&queue).and_then(|q| q.get_mut(&msg_id)) {
                    entry.2 = true;
                }
            }
            Record::Purge {
                queue,
                up_to_msg_id,
            } => {
                if let Some(q) = live.get_mut(&queue) {
                    let keep = q.split_off(&(up_to_msg_id + 1));
                    for (_, (_, s, _)) in std::mem::replace(q, keep) {
                        dead.push((s, seg));
                    }
                }
            }
            Record::QueueDelete { queue } => {
                if let Some(q) = live.remove(&queue) {
                    dead.extend(q.into_values().map(|(_, s, _)| (s, seg)));
                }
            }
            Record::Metadata { .. } => {}
        }
    })
    .await?;
    for (segment, by) in dead {
        log.release(segment, by);
    }
    log.replay_done();

    let mut queues = HashMap::new();
    let mut messages = 0;
    for name in owned {
        let meta = &metadata.queues[&name];
        let recovered: Vec<QueuedMessage> = live
            .remove(&name)
            .unwrap_or_default()
            .into_iter()
            .map(|(id, (message, seg, delivered))| QueuedMessage {
                id,
                message,
                // Delivered but not acked before the stop: redelivered, as RabbitMQ.
                redelivered: delivered,
                stored: Some(seg),
            })
            .collect();
        messages += recovered.len();
        let max_seen = max_id.get(&name).copied().unwrap_or(0);
        queues.insert(name, (meta.config.clone(), recovered, max_seen));
    }
    Ok(Recovered {
        log,
        metadata,
        queues,
        messages,
    })
}

fn apply_definitions(meta: &mut Metadata, defs: &Definitions) {
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
            eprintln!(
                "warren: stored exchange '{}' not restored: {}",
                x.name, e.text
            );
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
        if !replica::destination_exists(meta, &b.destination) {
            continue;
        }
        let r = meta.topology.bind(
            &b.source,
            b.destination.clone(),
            &b.routing_key,
            &b.arguments,
        );
        if let Err(e) = r {
            eprintln!(
                "warren: stored binding from '{}' not restored: {}",
                b.source, e.text
            );
        }
    }
}

fn is_predeclared(name: &str) -> bool {
    name.is_empty() || name.starts_with("amq.")
}

/// The durable part of a metadata copy.
pub fn definitions_of(meta: &Metadata, shards: u16) -> Definitions {
    let durable_queue = |name: &str| {
        meta.queues
            .get(name)
            .is_some_and(|q| q.config.durable && !q.config.exclusive)
    };
    let durable_exchange = |name: &str| meta.topology.exchange(name).is_some_and(|x| x.durable);
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
        .filter(|q| durable_queue(&q.name))
        .map(|q| QueueDef {
            name: q.name.clone(),
            owner: q.owner,
            auto_delete: q.config.auto_delete,
            arguments: q.config.arguments.clone(),
        })
        .collect();
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    let bindings = meta
        .topology
        .bindings()
        .into_iter()
        .filter(|b| {
            durable_exchange(&b.source)
                && match &b.destination {
                    Destination::Queue(q) => durable_queue(q),
                    Destination::Exchange(x) => durable_exchange(x),
                }
        })
        .collect();
    Definitions {
        shards,
        exchanges,
        queues,
        bindings,
    }
}

/// Leader: rewrites the definitions file if the durable part changed.
pub fn store_definitions(shard: &Shard) {
    let defs = definitions_of(&shard.meta.borrow(), shard.count);
    let mut last = shard.stored_definitions.borrow_mut();
    if last.as_ref() == Some(&defs) {
        return;
    }
    if let Err(e) = defs.store(&shard.settings.data_dir) {
        eprintln!("warren: cannot store definitions: {e}");
        return;
    }
    *last = Some(defs);
}

/// Appends one record for a persistent message's copies in durable queues
/// of this shard; returns the segment it went to.
pub fn append_message(shard: &Rc<Shard>, message: &Message, targets: &[Target]) -> Option<u32> {
    let log = shard.log.as_ref()?;
    let record = RecordRef::Message(crate::storage::MessageRef {
        targets,
        exchange: &message.exchange,
        routing_key: &message.routing_key,
        raw_properties: &message.raw_properties,
        body: message.body.chunks(),
    });
    match log.append(record) {
        Ok(pos) => Some(pos.segment),
        Err(e) => {
            eprintln!("warren: shard {} cannot append to its log: {e}", shard.id);
            None
        }
    }
}

/// Records that stored messages left a queue and releases their segments.
pub fn record_removed(shard: &Shard, queue: &ShortStr, removed: &[(u64, u32)]) {
    let Some(log) = shard.log.as_ref() else {
        return;
    };
    for &(msg_id, segment) in removed {
        match log.append(RecordRef::Ack { queue, msg_id }) {
            Ok(pos) => log.release(segment, pos.segment),
            Err(e) => eprintln!("warren: shard {} cannot record an ack: {e}", shard.id),
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
            eprintln!("warren: shard {} cannot record a delivery: {e}", shard.id);
        }
    }
}

/// Records a purge of stored messages up to `up_to` and releases them.
pub fn record_purge(shard: &Shard, queue: &ShortStr, removed: &[(u64, u32)]) {
    let Some(log) = shard.log.as_ref() else {
        return;
    };
    let Some(up_to_msg_id) = removed.iter().map(|r| r.0).max() else {
        return;
    };
    match log.append(RecordRef::Purge {
        queue,
        up_to_msg_id,
    }) {
        Ok(pos) => {
            for &(_, segment) in removed {
                log.release(segment, pos.segment);
            }
        }
        Err(e) => eprintln!("warren: shard {} cannot record a purge: {e}", shard.id),
    }
}

/// Records a durable queue's deletion and releases what it held.
pub fn record_queue_delete(shard: &Shard, queue: &ShortStr, segments: &[u32]) {
    let Some(log) = shard.log.as_ref() else {
        return;
    };
    match log.append(RecordRef::QueueDelete { queue }) {
        Ok(pos) => {
            for &segment in segments {
                log.release(segment, pos.segment);
            }
        }
        Err(e) => eprintln!(
            "warren: shard {} cannot record a queue deletion: {e}",
            shard.id
        ),
    }
}
