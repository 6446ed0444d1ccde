//! The rows of `warren ctl`'s listings (the broker's side of
//! `admin::columns`): one type per object — queue, exchange, binding,
//! connection, channel, consumer, vhost, shard counters — naming its
//! columns (rabbitmqctl's info items Warren has values for, then Warren's
//! own) and their values, and `render`, which writes a listing as JSON
//! lines (one array of the requested columns per row) from shard 0's
//! metadata and every shard's snapshot.

use super::columns::{arguments, Kind, Listing, Row};
use crate::broker::binding::BindingDef;
use crate::broker::exchange::{Destination, ExchangeDef};
use crate::broker::queue::ConsumerKey;
use crate::broker::vhost::VhostId;
use crate::protocol::types::FieldTable;
use crate::shard::counters::CountersSnapshot;
use crate::shard::envelope::{ChannelSnapshot, ConnectionSnapshot, QueueSnapshot, ShardSnapshot};
use crate::shard::Shard;
use serde_json::Value;

use Kind::{Arguments, Plain};

/// A queue on its owner shard, with its declared arguments.
pub struct QueueRow<'a> {
    pub q: &'a QueueSnapshot,
    pub shard: u16,
    pub arguments: Option<&'a FieldTable>,
    /// The node's name (`pid`).
    pub node: &'a str,
}

/// Warren's identity of a queue where RabbitMQ shows its Erlang pid: the
/// node and the shard that owns it, `<node.shard>`.
pub fn queue_pid(node: &str, shard: u16) -> String {
    format!("<{node}.{shard}>")
}

impl Row for QueueRow<'_> {
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("name", Plain),
        ("durable", Plain),
        ("auto_delete", Plain),
        ("exclusive", Plain),
        ("arguments", Arguments),
        ("policy", Plain),
        ("state", Plain),
        ("type", Plain),
        ("messages", Plain),
        ("messages_ready", Plain),
        ("messages_unacknowledged", Plain),
        ("messages_ready_ram", Plain),
        ("message_bytes", Plain),
        ("message_bytes_ready", Plain),
        ("message_bytes_unacknowledged", Plain),
        ("memory", Plain),
        ("consumers", Plain),
        ("consumer_utilisation", Plain),
        ("pid", Plain),
        // A classic queue has no mirrors and no quorum members:
        // RabbitMQ prints these empty for one too.
        ("slave_pids", Plain),
        ("synchronised_slave_pids", Plain),
        ("leader", Plain),
        ("members", Plain),
        ("online", Plain),
        // Warren's own.
        ("shard", Plain),
        ("messages_paged_out", Plain),
        ("single_active_consumer_tag", Plain),
        ("oldest_ready_age_seconds", Plain),
        ("oldest_unacked_age_seconds", Plain),
    ];

    fn cell(&self, column: &str) -> Value {
        let q = self.q;
        match column {
            "name" => q.name.name.as_str().into(),
            "durable" => q.durable.into(),
            "auto_delete" => q.auto_delete.into(),
            "exclusive" => q.exclusive.into(),
            "arguments" => self
                .arguments
                .map_or_else(|| Value::Array(Vec::new()), arguments),
            "policy" => q.policy.as_str().into(),
            "state" => q.state.into(),
            "type" => "classic".into(),
            "messages" => (q.messages as u64 + q.unacked as u64).into(),
            "messages_ready" => q.messages.into(),
            "messages_unacknowledged" => q.unacked.into(),
            "messages_ready_ram" => q.messages_ram.into(),
            "message_bytes" => (q.message_bytes_ready + q.message_bytes_unacknowledged).into(),
            "message_bytes_ready" => q.message_bytes_ready.into(),
            "message_bytes_unacknowledged" => q.message_bytes_unacknowledged.into(),
            "memory" => q.memory.into(),
            "consumers" => q.consumers.len().into(),
            // 0 without consumers, as rabbitmqctl 3.10 prints it.
            "consumer_utilisation" => q.consumer_utilisation.map_or(Value::from(0), Value::from),
            "pid" => queue_pid(self.node, self.shard).into(),
            "shard" => self.shard.into(),
            "messages_paged_out" => q.messages_paged_out.into(),
            "single_active_consumer_tag" => q
                .single_active_consumer
                .as_ref()
                .map_or("", |k| k.tag.as_str())
                .into(),
            // Null when the queue holds no such message.
            "oldest_ready_age_seconds" => {
                q.oldest_ready_age_seconds.map_or(Value::Null, Value::from)
            }
            "oldest_unacked_age_seconds" => q
                .oldest_unacked_age_seconds
                .map_or(Value::Null, Value::from),
            _ => Value::Null,
        }
    }
}

/// An exchange with its policy and the delayed messages it holds.
pub struct ExchangeRow<'a> {
    pub x: &'a ExchangeDef,
    pub policy: &'a str,
    pub delayed: u64,
}

impl Row for ExchangeRow<'_> {
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("name", Plain),
        ("type", Plain),
        ("durable", Plain),
        ("auto_delete", Plain),
        ("internal", Plain),
        ("arguments", Arguments),
        ("policy", Plain),
        // The delayed-message plugin's column in the management UI (0
        // for other types).
        ("messages_delayed", Plain),
    ];

    fn cell(&self, column: &str) -> Value {
        let x = self.x;
        match column {
            "name" => x.name.as_str().into(),
            "type" => x.kind.as_str().into(),
            "durable" => x.durable.into(),
            "auto_delete" => x.auto_delete.into(),
            "internal" => x.internal.into(),
            "arguments" => arguments(&x.arguments),
            "policy" => self.policy.into(),
            "messages_delayed" => self.delayed.into(),
            _ => Value::Null,
        }
    }
}

/// A binding: a declared one, or the default exchange's to a queue.
pub struct BindingRow<'a> {
    pub source: &'a str,
    pub destination: &'a str,
    pub destination_kind: &'static str,
    pub routing_key: &'a str,
    pub arguments: Option<&'a FieldTable>,
}

impl<'a> BindingRow<'a> {
    fn of(b: &'a BindingDef) -> BindingRow<'a> {
        let (destination_kind, destination) = match &b.destination {
            Destination::Queue(q) => ("queue", q.as_str()),
            Destination::Exchange(x) => ("exchange", x.as_str()),
        };
        BindingRow {
            source: b.source.as_str(),
            destination,
            destination_kind,
            routing_key: b.routing_key.as_str(),
            arguments: Some(&b.arguments),
        }
    }
}

impl Row for BindingRow<'_> {
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("source_name", Plain),
        ("source_kind", Plain),
        ("destination_name", Plain),
        ("destination_kind", Plain),
        ("routing_key", Plain),
        ("arguments", Arguments),
    ];

    fn cell(&self, column: &str) -> Value {
        match column {
            "source_name" => self.source.into(),
            "source_kind" => "exchange".into(),
            "destination_name" => self.destination.into(),
            "destination_kind" => self.destination_kind.into(),
            "routing_key" => self.routing_key.into(),
            "arguments" => self
                .arguments
                .map_or_else(|| Value::Array(Vec::new()), arguments),
            _ => Value::Null,
        }
    }
}

/// A client connection on the shard that serves it.
pub struct ConnectionRow<'a> {
    pub c: &'a ConnectionSnapshot,
    pub shard: u16,
    pub vhost: &'a str,
}

/// The host and port of an `ip:port` peer (`[v6]:port` too).
fn host_port(peer: &str) -> (&str, Value) {
    match peer.rsplit_once(':') {
        Some((host, port)) => (
            host.trim_start_matches('[').trim_end_matches(']'),
            port.parse::<u16>().map_or(Value::Null, Value::from),
        ),
        None => (peer, Value::Null),
    }
}

impl Row for ConnectionRow<'_> {
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("name", Plain),
        ("user", Plain),
        ("vhost", Plain),
        ("peer_host", Plain),
        ("peer_port", Plain),
        ("state", Plain),
        ("channels", Plain),
        ("protocol", Plain),
        ("ssl", Plain),
        ("ssl_protocol", Plain),
        ("ssl_cipher", Plain),
        ("peer_cert_subject", Plain),
        ("shard", Plain),
    ];

    fn cell(&self, column: &str) -> Value {
        let c = self.c;
        let tls = c.tls.as_ref();
        match column {
            // Warren names a connection by its peer (`close_connection`
            // takes it).
            "name" => c.peer.as_str().into(),
            "user" => c.user.as_str().into(),
            "vhost" => self.vhost.into(),
            "peer_host" => host_port(&c.peer).0.into(),
            "peer_port" => host_port(&c.peer).1,
            // A connection is listed once it is open.
            "state" => "running".into(),
            "channels" => c.channels.len().into(),
            "protocol" => "{0,9,1}".into(),
            "ssl" => tls.is_some().into(),
            "ssl_protocol" => tls.map_or(Value::Null, |t| t.protocol.as_str().into()),
            "ssl_cipher" => tls.map_or(Value::Null, |t| t.cipher.as_str().into()),
            "peer_cert_subject" => tls
                .and_then(|t| t.peer_cert_subject.as_deref())
                .map_or(Value::Null, Value::from),
            "shard" => self.shard.into(),
            _ => Value::Null,
        }
    }
}

/// Warren's identity of a channel where RabbitMQ shows its Erlang pid:
/// `<shard.connection.channel>`, the same in `list_channels` (pid) and
/// `list_consumers` (channel_pid).
pub fn channel_pid(shard: u16, conn: u64, channel: u16) -> String {
    format!("<{shard}.{conn}.{channel}>")
}

/// One open channel of a connection.
pub struct ChannelRow<'a> {
    pub c: &'a ConnectionSnapshot,
    pub ch: &'a ChannelSnapshot,
    pub vhost: &'a str,
}

impl Row for ChannelRow<'_> {
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("pid", Plain),
        ("name", Plain),
        ("connection", Plain),
        ("number", Plain),
        ("user", Plain),
        ("vhost", Plain),
        ("consumer_count", Plain),
        ("messages_unacknowledged", Plain),
        ("prefetch_count", Plain),
        ("confirm", Plain),
    ];

    fn cell(&self, column: &str) -> Value {
        let (c, ch) = (self.c, self.ch);
        match column {
            "pid" => channel_pid(c.key.shard, c.key.id, ch.id).into(),
            "name" => format!("{} ({})", c.peer, ch.id).into(),
            "connection" => c.peer.as_str().into(),
            "number" => ch.id.into(),
            "user" => c.user.as_str().into(),
            "vhost" => self.vhost.into(),
            "consumer_count" => ch.consumers.into(),
            "messages_unacknowledged" => ch.unacked.into(),
            "prefetch_count" => ch.prefetch.into(),
            "confirm" => ch.confirm.into(),
            _ => Value::Null,
        }
    }
}

/// A consumer of a queue.
pub struct ConsumerRow<'a> {
    pub q: &'a QueueSnapshot,
    pub key: &'a ConsumerKey,
    pub no_ack: bool,
    pub prefetch: u32,
    pub unacked: u32,
}

impl ConsumerRow<'_> {
    /// RabbitMQ's `active`: every consumer, but on a single-active-consumer
    /// queue only that one.
    fn active(&self) -> bool {
        self.q
            .single_active_consumer
            .as_ref()
            .is_none_or(|k| k == self.key)
    }
}

impl Row for ConsumerRow<'_> {
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("queue_name", Plain),
        ("channel_pid", Plain),
        ("consumer_tag", Plain),
        ("ack_required", Plain),
        ("prefetch_count", Plain),
        ("active", Plain),
        ("activity_status", Plain),
        // Warren's own.
        ("messages_unacknowledged", Plain),
    ];

    fn cell(&self, column: &str) -> Value {
        let k = self.key;
        match column {
            "queue_name" => self.q.name.name.as_str().into(),
            "channel_pid" => channel_pid(k.shard, k.conn, k.channel).into(),
            "consumer_tag" => k.tag.as_str().into(),
            "ack_required" => (!self.no_ack).into(),
            "prefetch_count" => self.prefetch.into(),
            "active" => self.active().into(),
            "activity_status" => match (&self.q.single_active_consumer, self.active()) {
                (None, _) => "up",
                (Some(_), true) => "single_active",
                (Some(_), false) => "waiting",
            }
            .into(),
            "messages_unacknowledged" => self.unacked.into(),
            _ => Value::Null,
        }
    }
}

/// A virtual host.
pub struct VhostRow<'a> {
    pub name: &'a str,
}

impl Row for VhostRow<'_> {
    const COLUMNS: &'static [(&'static str, Kind)] = &[("name", Plain), ("tracing", Plain)];

    fn cell(&self, column: &str) -> Value {
        match column {
            "name" => self.name.into(),
            // Warren has no firehose tracer.
            "tracing" => false.into(),
            _ => Value::Null,
        }
    }
}

/// One shard's counters (or their total: `shard` is "total").
pub struct CounterRow<'a> {
    pub shard: String,
    pub c: &'a CountersSnapshot,
}

impl Row for CounterRow<'_> {
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("shard", Plain),
        ("published", Plain),
        ("routed_copies", Plain),
        ("unroutable", Plain),
        ("delivered", Plain),
        ("acked", Plain),
        ("confirmed", Plain),
        ("nacked", Plain),
        ("connections_opened", Plain),
        ("connections_closed", Plain),
        ("paged_out", Plain),
        ("paged_in", Plain),
        ("fsyncs", Plain),
        ("resident_bytes", Plain),
        ("dead_lettered", Plain),
        ("dead_letter_cycles", Plain),
        ("watchdog_fires", Plain),
    ];

    fn cell(&self, column: &str) -> Value {
        let c = self.c;
        match column {
            "shard" => self.shard.as_str().into(),
            "published" => c.published.into(),
            "routed_copies" => c.routed_copies.into(),
            "unroutable" => c.unroutable.into(),
            "delivered" => c.delivered.into(),
            "acked" => c.acked.into(),
            "confirmed" => c.confirmed.into(),
            "nacked" => c.nacked.into(),
            "connections_opened" => c.connections_opened.into(),
            "connections_closed" => c.connections_closed.into(),
            "paged_out" => c.paged_out.into(),
            "paged_in" => c.paged_in.into(),
            "fsyncs" => c.fsyncs.into(),
            "resident_bytes" => c.resident_bytes.into(),
            "dead_lettered" => c.dead_lettered.into(),
            "dead_letter_cycles" => c.dead_letter_cycles.into(),
            "watchdog_fires" => c.watchdog_fires.into(),
            _ => Value::Null,
        }
    }
}

/// Appends one row (a JSON array of `columns`) and a line break.
fn push<R: Row>(out: &mut Vec<u8>, row: &R, columns: &[&str]) {
    let cells: Vec<Value> = columns.iter().map(|c| row.cell(c)).collect();
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &cells);
    out.push(b'\n');
}

/// Writes `listing` as JSON lines with `columns` (already checked against
/// the listing's), for `vhost` where it is vhost-scoped (an unknown vhost
/// has no rows, as in rabbitmqctl).
pub fn render(
    listing: &Listing,
    columns: &[&str],
    shard: &Shard,
    vhost: Option<VhostId>,
    snapshots: &[ShardSnapshot],
) -> Vec<u8> {
    let mut out = Vec::new();
    let meta = shard.meta.borrow();
    let in_vhost = |v: VhostId| vhost == Some(v);
    let vhost_name = |v: VhostId| meta.vhost_name(v);
    match listing.path {
        "/queues" => {
            for s in snapshots {
                for q in s.queues.iter().filter(|q| in_vhost(q.name.vhost)) {
                    let arguments = meta.queues.get(&q.name).map(|m| &m.config.arguments);
                    let row = QueueRow {
                        q,
                        shard: s.shard,
                        arguments,
                        node: &shard.settings.node_name,
                    };
                    push(&mut out, &row, columns);
                }
            }
        }
        "/exchanges" => {
            let Some(t) = vhost.and_then(|v| meta.topology(v)) else {
                return out;
            };
            let mut xs: Vec<_> = t.exchanges().collect();
            xs.sort_by(|a, b| a.name.cmp(&b.name));
            for x in xs {
                let delayed = snapshots
                    .iter()
                    .flat_map(|s| s.delayed.iter())
                    .filter(|(v, name, _)| in_vhost(*v) && *name == x.name)
                    .map(|(_, _, n)| n)
                    .sum();
                let policy = t.exchange_policy(&x.name).unwrap_or("");
                push(&mut out, &ExchangeRow { x, policy, delayed }, columns);
            }
        }
        "/bindings" => {
            let Some(v) = vhost else { return out };
            // The default exchange's binding to every queue first, as
            // RabbitMQ lists them.
            let mut queues: Vec<&str> = meta
                .queues
                .keys()
                .filter(|q| q.vhost == v)
                .map(|q| q.name.as_str())
                .collect();
            queues.sort_unstable();
            for q in queues {
                let row = BindingRow {
                    source: "",
                    destination: q,
                    destination_kind: "queue",
                    routing_key: q,
                    arguments: None,
                };
                push(&mut out, &row, columns);
            }
            for b in meta.topology(v).map(|t| t.bindings()).unwrap_or_default() {
                push(&mut out, &BindingRow::of(&b), columns);
            }
        }
        "/connections" => {
            for s in snapshots {
                for c in &s.connections {
                    let vhost = vhost_name(c.vhost);
                    let row = ConnectionRow {
                        c,
                        shard: s.shard,
                        vhost: &vhost,
                    };
                    push(&mut out, &row, columns);
                }
            }
        }
        "/channels" => {
            for c in snapshots.iter().flat_map(|s| &s.connections) {
                let vhost = vhost_name(c.vhost);
                for ch in &c.channels {
                    push(
                        &mut out,
                        &ChannelRow {
                            c,
                            ch,
                            vhost: &vhost,
                        },
                        columns,
                    );
                }
            }
        }
        "/consumers" => {
            for s in snapshots {
                for q in s.queues.iter().filter(|q| in_vhost(q.name.vhost)) {
                    for (key, no_ack, prefetch, unacked) in &q.consumers {
                        let row = ConsumerRow {
                            q,
                            key,
                            no_ack: *no_ack,
                            prefetch: *prefetch,
                            unacked: *unacked,
                        };
                        push(&mut out, &row, columns);
                    }
                }
            }
        }
        "/vhosts" => {
            let mut names: Vec<&str> = meta.vhosts.values().map(|v| v.name.as_str()).collect();
            names.sort_unstable();
            for name in names {
                push(&mut out, &VhostRow { name }, columns);
            }
        }
        "/counters" => {
            let mut total = CountersSnapshot::default();
            for s in snapshots {
                let row = CounterRow {
                    shard: s.shard.to_string(),
                    c: &s.counters,
                };
                push(&mut out, &row, columns);
                total.merge(&s.counters);
            }
            let row = CounterRow {
                shard: "total".into(),
                c: &total,
            };
            push(&mut out, &row, columns);
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_has_a_value() {
        let q = QueueSnapshot {
            name: crate::broker::vhost::QueueName::default_vhost("q"),
            durable: true,
            exclusive: false,
            auto_delete: false,
            messages: 2,
            messages_ram: 2,
            messages_paged_out: 0,
            state: "running",
            message_bytes_ready: 10,
            message_bytes_unacknowledged: 4,
            memory: 1000,
            unacked: 1,
            consumers: Vec::new(),
            single_active_consumer: None,
            policy: String::new(),
            message_stats: Default::default(),
            oldest_ready_age_seconds: Some(1.5),
            oldest_unacked_age_seconds: Some(0.5),
            consumer_utilisation: Some(1.0),
        };
        let row = QueueRow {
            q: &q,
            shard: 1,
            arguments: None,
            node: "warren@localhost",
        };
        let empty_is_right = [
            "slave_pids",
            "synchronised_slave_pids",
            "leader",
            "members",
            "online",
        ];
        for (c, _) in QueueRow::COLUMNS {
            assert!(
                !row.cell(c).is_null() || empty_is_right.contains(c),
                "queue column {c}"
            );
        }
        assert_eq!(row.cell("messages"), Value::from(3));
        assert_eq!(row.cell("message_bytes"), Value::from(14));
        assert_eq!(row.cell("pid"), Value::from("<warren@localhost.1>"));
        assert_eq!(row.cell("arguments"), Value::Array(Vec::new()));
        assert_eq!(host_port("127.0.0.1:5672").1, Value::from(5672));
        assert_eq!(host_port("[::1]:5672").0, "::1");
    }
}
