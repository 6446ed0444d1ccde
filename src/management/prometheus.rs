//! Prometheus' text format (0.0.4) on the management port, with the metric
//! names, types and labels of RabbitMQ's `rabbitmq_prometheus` plugin:
//! `/metrics` (aggregated: per-object families summed, no object labels),
//! `/metrics/per-object` (one sample per queue, exchange or channel, with
//! `vhost` / `queue` / `exchange` / `channel` labels) and
//! `/metrics/detailed?family=...&vhost=...` (`rabbitmq_detailed_` names,
//! only the families asked for). Plus Warren's own `warren_*` families:
//! message ages per queue, and per shard fsyncs (count and latency
//! histogram), paging, log size and the rings between shards. Pure: it
//! renders a `View` into one `String` (no allocation per line), on the
//! management thread.

use super::api::Node;
use super::bridge::View;
use crate::broker::stats::{MessageStats, Stat};
use crate::broker::vhost::VhostId;
use crate::shard::alarms::Alarms;
use crate::shard::envelope::{ChannelSnapshot, ConnectionSnapshot, QueueSnapshot};
use crate::storage::log::FSYNC_BUCKETS;
use std::collections::HashMap;
use std::fmt::Write;

/// Which endpoint, and what it shows.
#[derive(Debug, PartialEq)]
pub enum Endpoint {
    /// `/metrics`.
    Aggregated,
    /// `/metrics/per-object`.
    PerObject,
    /// `/metrics/detailed`: the families and vhosts asked for (no vhost:
    /// every vhost).
    Detailed {
        families: Vec<String>,
        vhosts: Vec<String>,
    },
}

impl Endpoint {
    /// The endpoint of a path and its query; None when it is not one.
    pub fn of(path: &str, query: &[(String, String)]) -> Option<Endpoint> {
        let of = |key: &str| -> Vec<String> {
            query
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .collect()
        };
        match path.trim_end_matches('/') {
            "/metrics" => Some(Endpoint::Aggregated),
            "/metrics/per-object" => Some(Endpoint::PerObject),
            "/metrics/detailed" => Some(Endpoint::Detailed {
                families: of("family"),
                vhosts: of("vhost"),
            }),
            _ => None,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Endpoint::Aggregated => "aggregated",
            Endpoint::PerObject => "per-object",
            Endpoint::Detailed { .. } => "detailed",
        }
    }
}

/// What is read from the process and the alarm monitor, not the shards.
pub struct Process {
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub resident_bytes: Option<u64>,
    pub memory_limit: u64,
    pub disk_free: Option<u64>,
    pub disk_free_limit: u64,
    pub memory_alarm: bool,
    pub disk_alarm: bool,
}

impl Process {
    pub fn read(alarms: &Alarms) -> Process {
        let reason = alarms.reason();
        let limits = alarms.limits();
        Process {
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            max_fds: max_fds(),
            resident_bytes: crate::shard::alarms::rss_bytes(),
            memory_limit: limits.memory_high_watermark,
            disk_free: alarms.disk_free(),
            disk_free_limit: limits.disk_free_limit,
            memory_alarm: reason.contains("memory"),
            disk_alarm: reason.contains("disk"),
        }
    }
}

fn max_fds() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (rc == 0).then_some(r.rlim_cur)
}

/// A gauge or counter of one queue.
type QueueMetric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&QueueSnapshot) -> f64,
);

/// RabbitMQ's queue families (`family` name, metrics) that Warren has
/// figures for.
const QUEUE_FAMILIES: &[(&str, &[QueueMetric])] = &[
    (
        "queue_coarse_metrics",
        &[
            ("queue_messages_ready", "gauge", "Messages ready to be delivered to consumers", |q| q.messages as f64),
            ("queue_messages_unacked", "gauge", "Messages delivered to consumers but not yet acknowledged", |q| q.unacked as f64),
            ("queue_messages", "gauge", "Sum of ready and unacknowledged messages - total queue depth", |q| q.messages as f64 + q.unacked as f64),
        ],
    ),
    (
        "queue_consumer_count",
        &[("queue_consumers", "gauge", "Consumers on a queue", |q| q.consumers.len() as f64)],
    ),
    (
        "queue_metrics",
        &[
            ("queue_messages_ready_ram", "gauge", "Ready messages stored in memory", |q| q.messages_ram as f64),
            ("queue_messages_ready_bytes", "gauge", "Size in bytes of ready messages", |q| q.message_bytes_ready as f64),
            ("queue_messages_paged_out", "gauge", "Messages paged out to disk", |q| q.messages_paged_out as f64),
        ],
    ),
    (
        "queue_delivery_metrics",
        &[
            ("queue_get_ack_total", "counter", "Total number of messages fetched from a queue with basic.get in manual acknowledgement mode", |q| q.message_stats.get(Stat::Get) as f64),
            ("queue_get_total", "counter", "Total number of messages fetched from a queue with basic.get in automatic acknowledgement mode", |q| q.message_stats.get(Stat::GetNoAck) as f64),
            ("queue_messages_delivered_ack_total", "counter", "Total number of messages delivered from a queue to consumers in manual acknowledgement mode", |q| q.message_stats.get(Stat::Deliver) as f64),
            ("queue_messages_delivered_total", "counter", "Total number of messages delivered from a queue to consumers in automatic acknowledgement mode", |q| q.message_stats.get(Stat::DeliverNoAck) as f64),
            ("queue_messages_redelivered_total", "counter", "Total number of messages redelivered from a queue to consumers", |q| q.message_stats.get(Stat::Redeliver) as f64),
            ("queue_messages_acked_total", "counter", "Total number of messages acknowledged by consumers on a queue", |q| q.message_stats.get(Stat::Ack) as f64),
            ("queue_messages_published_total", "counter", "Total number of messages published into a queue", |q| q.message_stats.get(Stat::Publish) as f64),
        ],
    ),
];

/// Warren's message ages (per object only: a sum of ages means nothing).
const AGE_FAMILY: &str = "warren_queue_age_metrics";
const AGES: &[(&str, &str, fn(&QueueSnapshot) -> Option<f64>)] = &[
    ("warren_queue_oldest_ready_age_seconds", "Seconds since the oldest ready message of the queue was enqueued (at most 0.1 s more)", |q| q.oldest_ready_age_seconds),
    ("warren_queue_oldest_unacked_age_seconds", "Seconds since the oldest unacknowledged message of the queue was enqueued (at most 0.1 s more)", |q| q.oldest_unacked_age_seconds),
];

type ChannelMetric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ChannelSnapshot) -> f64,
);

const CHANNEL_FAMILIES: &[(&str, &[ChannelMetric])] = &[
    (
        "channel_metrics",
        &[
            ("channel_consumers", "gauge", "Consumers on a channel", |c| c.consumers as f64),
            ("channel_messages_unacked", "gauge", "Delivered but not yet acknowledged messages", |c| c.unacked as f64),
            ("consumer_prefetch", "gauge", "Limit of unacknowledged messages for each consumer", |c| c.prefetch as f64),
        ],
    ),
    (
        "channel_exchange_metrics",
        &[
            ("channel_messages_published_total", "counter", "Total number of messages published into an exchange on a channel", |c| c.message_stats.get(Stat::Publish) as f64),
            ("channel_messages_confirmed_total", "counter", "Total number of messages published into an exchange and confirmed on the channel", |c| c.message_stats.get(Stat::Confirm) as f64),
            ("channel_messages_unroutable_returned_total", "counter", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable", |c| c.message_stats.get(Stat::ReturnUnroutable) as f64),
            ("channel_messages_unroutable_dropped_total", "counter", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", |c| c.message_stats.get(Stat::DropUnroutable) as f64),
        ],
    ),
    (
        "channel_queue_metrics",
        &[
            ("channel_get_ack_total", "counter", "Total number of messages fetched with basic.get in manual acknowledgement mode", |c| c.message_stats.get(Stat::Get) as f64),
            ("channel_get_total", "counter", "Total number of messages fetched with basic.get in automatic acknowledgement mode", |c| c.message_stats.get(Stat::GetNoAck) as f64),
            ("channel_messages_delivered_ack_total", "counter", "Total number of messages delivered to consumers in manual acknowledgement mode", |c| c.message_stats.get(Stat::Deliver) as f64),
            ("channel_messages_delivered_total", "counter", "Total number of messages delivered to consumers in automatic acknowledgement mode", |c| c.message_stats.get(Stat::DeliverNoAck) as f64),
            ("channel_messages_redelivered_total", "counter", "Total number of messages redelivered to consumers", |c| c.message_stats.get(Stat::Redeliver) as f64),
            ("channel_messages_acked_total", "counter", "Total number of messages acknowledged by consumers", |c| c.message_stats.get(Stat::Ack) as f64),
            ("channel_get_empty_total", "counter", "Total number of times basic.get operations fetched no message", |c| c.message_stats.get(Stat::GetEmpty) as f64),
        ],
    ),
];

const EXCHANGE_FAMILY: &str = "exchange_metrics";
const EXCHANGE_METRICS: &[(&str, &str, Stat)] = &[
    (
        "exchange_messages_published_total",
        "Total number of messages published into an exchange",
        Stat::PublishIn,
    ),
    (
        "exchange_messages_routed_total",
        "Total number of messages published into an exchange and routed to at least one queue",
        Stat::PublishOut,
    ),
];

/// `rabbitmq_global_*`: per protocol, and the delivery side per queue type.
const GLOBAL_PUBLISH: &[(&str, &str, Stat)] = &[
    ("global_messages_received_total", "Total number of messages received from publishers", Stat::Publish),
    ("global_messages_confirmed_total", "Total number of messages confirmed to publishers", Stat::Confirm),
    ("global_messages_unroutable_dropped_total", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", Stat::DropUnroutable),
    ("global_messages_unroutable_returned_total", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable", Stat::ReturnUnroutable),
];
const GLOBAL_DELIVERY: &[(&str, &str, &[Stat])] = &[
    ("global_messages_delivered_total", "Total number of messages delivered to consumers", &[Stat::Deliver, Stat::DeliverNoAck, Stat::Get, Stat::GetNoAck]),
    ("global_messages_delivered_consume_manual_ack_total", "Total number of messages delivered to consumers using basic.consume with manual acknowledgment", &[Stat::Deliver]),
    ("global_messages_delivered_consume_auto_ack_total", "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment", &[Stat::DeliverNoAck]),
    ("global_messages_delivered_get_manual_ack_total", "Total number of messages delivered to consumers using basic.get with manual acknowledgment", &[Stat::Get]),
    ("global_messages_delivered_get_auto_ack_total", "Total number of messages delivered to consumers using basic.get with automatic acknowledgment", &[Stat::GetNoAck]),
    ("global_messages_get_empty_total", "Total number of times basic.get operations fetched no message", &[Stat::GetEmpty]),
    ("global_messages_redelivered_total", "Total number of messages redelivered to consumers", &[Stat::Redeliver]),
    ("global_messages_acknowledged_total", "Total number of messages acknowledged by consumers", &[Stat::Ack]),
];
const PROTOCOL: &str = "protocol=\"amqp091\"";
const QUEUE_TYPE: &str = "protocol=\"amqp091\",queue_type=\"rabbit_classic_queue\"";

/// Renders `endpoint` for `view`.
pub fn render(endpoint: &Endpoint, view: &View, node: &Node, process: &Process) -> String {
    let mut r = Renderer {
        out: String::with_capacity(16 << 10),
        vhosts: view
            .snapshots
            .iter()
            .flat_map(|s| s.stats.vhost_names.iter())
            .map(|(id, name)| (*id, name.to_string()))
            .collect(),
    };
    match endpoint {
        Endpoint::Aggregated => {
            r.queues(view, "rabbitmq_", false, &|_| true);
            r.exchanges(view, "rabbitmq_", false, &|_| true);
            r.channels(view, node, "rabbitmq_", false);
            r.totals_and_node(view, process);
            r.global(view);
            r.shards(view);
        }
        Endpoint::PerObject => {
            r.queues(view, "rabbitmq_", true, &|_| true);
            r.ages(view, &|_| true);
            r.queue_info(view, "rabbitmq_", &|_| true);
            r.exchanges(view, "rabbitmq_", true, &|_| true);
            r.channels(view, node, "rabbitmq_", true);
            r.totals_and_node(view, process);
            r.global(view);
            r.shards(view);
        }
        Endpoint::Detailed { families, vhosts } => {
            let wanted = |f: &str| families.iter().any(|x| x == f);
            let in_vhost = |v: &str| vhosts.is_empty() || vhosts.iter().any(|x| x == v);
            let p = "rabbitmq_detailed_";
            let mut queue_families = false;
            for (family, metrics) in QUEUE_FAMILIES {
                if wanted(family) {
                    queue_families = true;
                    r.queue_family(view, p, metrics, true, &in_vhost);
                }
            }
            if queue_families {
                r.queue_info(view, p, &in_vhost);
            }
            if wanted(AGE_FAMILY) {
                r.ages(view, &in_vhost);
            }
            if wanted(EXCHANGE_FAMILY) {
                r.exchanges(view, p, true, &in_vhost);
            }
            for (family, metrics) in CHANNEL_FAMILIES {
                if wanted(family) {
                    r.channel_family(view, node, p, metrics, true);
                }
            }
        }
    }
    r.identity(node, endpoint.name());
    r.out
}

fn head(out: &mut String, prefix: &str, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# TYPE {prefix}{name} {kind}");
    let _ = writeln!(out, "# HELP {prefix}{name} {help}");
}

/// One sample; `labels` is written as is between braces (none when
/// empty).
fn value(out: &mut String, prefix: &str, name: &str, labels: &str, v: f64) {
    out.push_str(prefix);
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        out.push_str(labels);
        out.push('}');
    }
    out.push(' ');
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        // `+ 0.0`: an empty float sum is -0.0.
        let _ = write!(out, "{}", v + 0.0);
    }
    out.push('\n');
}

/// A sample with a `vhost` and one object label.
fn object(
    out: &mut String,
    prefix: &str,
    name: &str,
    vhost: &str,
    key: &str,
    object: &str,
    v: f64,
) {
    out.push_str(prefix);
    out.push_str(name);
    out.push_str("{vhost=\"");
    escaped(out, vhost);
    let _ = write!(out, "\",{key}=\"");
    escaped(out, object);
    out.push_str("\"} ");
    let _ = write!(out, "{v}");
    out.push('\n');
}

fn vhost_name(names: &HashMap<VhostId, String>, id: VhostId) -> &str {
    names.get(&id).map_or("", String::as_str)
}

struct Renderer {
    out: String,
    vhosts: HashMap<VhostId, String>,
}

/// Writes `s` as a label value (backslash, quote and newline escaped).
fn escaped(out: &mut String, s: &str) {
    if !s.contains(['\\', '"', '\n']) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

impl Renderer {
    fn queues(&mut self, view: &View, prefix: &str, per_object: bool, keep: &dyn Fn(&str) -> bool) {
        for (_, metrics) in QUEUE_FAMILIES {
            self.queue_family(view, prefix, metrics, per_object, keep);
        }
    }

    fn queue_family(
        &mut self,
        view: &View,
        prefix: &str,
        metrics: &[QueueMetric],
        per_object: bool,
        keep: &dyn Fn(&str) -> bool,
    ) {
        for (name, kind, help, f) in metrics {
            head(&mut self.out, prefix, name, kind, help);
            let mut sum = 0.0;
            for q in view.snapshots.iter().flat_map(|s| s.queues.iter()) {
                let vhost = vhost_name(&self.vhosts, q.name.vhost);
                if !keep(vhost) {
                    continue;
                }
                if per_object {
                    object(
                        &mut self.out,
                        prefix,
                        name,
                        vhost,
                        "queue",
                        &q.name.name,
                        f(q),
                    );
                } else {
                    sum += f(q);
                }
            }
            if !per_object {
                value(&mut self.out, prefix, name, "", sum);
            }
        }
    }

    fn ages(&mut self, view: &View, keep: &dyn Fn(&str) -> bool) {
        for (name, help, f) in AGES {
            head(&mut self.out, "", name, "gauge", help);
            for q in view.snapshots.iter().flat_map(|s| s.queues.iter()) {
                let vhost = vhost_name(&self.vhosts, q.name.vhost);
                if let Some(age) = f(q).filter(|_| keep(vhost)) {
                    object(&mut self.out, "", name, vhost, "queue", &q.name.name, age);
                }
            }
        }
    }

    fn queue_info(&mut self, view: &View, prefix: &str, keep: &dyn Fn(&str) -> bool) {
        head(
            &mut self.out,
            prefix,
            "queue_info",
            "gauge",
            "A metric with a constant '1' value and labels that provide some queue details",
        );
        for q in view.snapshots.iter().flat_map(|s| s.queues.iter()) {
            let vhost = vhost_name(&self.vhosts, q.name.vhost);
            if !keep(vhost) {
                continue;
            }
            self.out.push_str(prefix);
            self.out.push_str("queue_info{vhost=\"");
            escaped(&mut self.out, vhost);
            self.out.push_str("\",queue=\"");
            escaped(&mut self.out, &q.name.name);
            self.out
                .push_str("\",queue_type=\"rabbit_classic_queue\",membership=\"leader\"} 1\n");
        }
    }

    fn exchanges(
        &mut self,
        view: &View,
        prefix: &str,
        per_object: bool,
        keep: &dyn Fn(&str) -> bool,
    ) {
        let mut merged: HashMap<(VhostId, &str), MessageStats> = HashMap::new();
        for s in &view.snapshots {
            for ((v, x), stats) in &s.stats.exchanges {
                merged.entry((*v, x.as_str())).or_default().merge(stats);
            }
        }
        let mut merged: Vec<_> = merged.into_iter().collect();
        merged.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, help, stat) in EXCHANGE_METRICS {
            head(&mut self.out, prefix, name, "counter", help);
            let mut sum = 0.0;
            for ((v, x), stats) in &merged {
                let vhost = vhost_name(&self.vhosts, *v);
                if !keep(vhost) {
                    continue;
                }
                let n = stats.get(*stat) as f64;
                if per_object {
                    let x = if x.is_empty() { "amq.default" } else { x };
                    object(&mut self.out, prefix, name, vhost, "exchange", x, n);
                } else {
                    sum += n;
                }
            }
            if !per_object {
                value(&mut self.out, prefix, name, "", sum);
            }
        }
    }

    fn channels(&mut self, view: &View, node: &Node, prefix: &str, per_object: bool) {
        for (_, metrics) in CHANNEL_FAMILIES {
            self.channel_family(view, node, prefix, metrics, per_object);
        }
    }

    fn channel_family(
        &mut self,
        view: &View,
        node: &Node,
        prefix: &str,
        metrics: &[ChannelMetric],
        per_object: bool,
    ) {
        let channels = || {
            view.snapshots
                .iter()
                .flat_map(|s| s.connections.iter())
                .flat_map(|c| c.channels.iter().map(move |ch| (c, ch)))
        };
        for (name, kind, help, f) in metrics {
            head(&mut self.out, prefix, name, kind, help);
            if !per_object {
                let sum = channels().map(|(_, ch)| f(ch)).sum();
                value(&mut self.out, prefix, name, "", sum);
                continue;
            }
            for (c, ch) in channels() {
                self.channel_sample(prefix, name, node, c, ch, f(ch));
            }
        }
    }

    fn channel_sample(
        &mut self,
        prefix: &str,
        name: &str,
        node: &Node,
        c: &ConnectionSnapshot,
        ch: &ChannelSnapshot,
        v: f64,
    ) {
        self.out.push_str(prefix);
        self.out.push_str(name);
        self.out.push_str("{channel=\"");
        escaped(&mut self.out, &c.peer);
        let _ = write!(
            self.out,
            " -> {}:{} ({})\"}} {v}\n",
            node.amqp_bind, node.amqp_port, ch.id
        );
    }

    fn totals_and_node(&mut self, view: &View, p: &Process) {
        let conns = || view.snapshots.iter().flat_map(|s| s.connections.iter());
        let queues = || view.snapshots.iter().flat_map(|s| s.queues.iter());
        let mut counters = crate::shard::counters::CountersSnapshot::default();
        for s in &view.snapshots {
            counters.merge(&s.counters);
        }
        let totals: [(&str, &str, f64); 4] = [
            (
                "connections",
                "Connections currently open",
                conns().count() as f64,
            ),
            (
                "channels",
                "Channels currently open",
                conns().map(|c| c.channels.len()).sum::<usize>() as f64,
            ),
            (
                "consumers",
                "Consumers currently connected",
                queues().map(|q| q.consumers.len()).sum::<usize>() as f64,
            ),
            ("queues", "Queues available", queues().count() as f64),
        ];
        for (name, help, v) in totals {
            head(&mut self.out, "rabbitmq_", name, "gauge", help);
            value(&mut self.out, "rabbitmq_", name, "", v);
        }
        let churn: [(&str, &str, u64); 2] = [
            (
                "connections_opened_total",
                "Total number of connections opened",
                counters.connections_opened,
            ),
            (
                "connections_closed_total",
                "Total number of connections closed or terminated",
                counters.connections_closed,
            ),
        ];
        for (name, help, v) in churn {
            head(&mut self.out, "rabbitmq_", name, "counter", help);
            value(&mut self.out, "rabbitmq_", name, "", v as f64);
        }
        let node: [(&str, &str, Option<u64>); 6] = [
            ("process_open_fds", "Open file descriptors", p.open_fds),
            ("process_max_fds", "Open file descriptors limit", p.max_fds),
            (
                "process_resident_memory_bytes",
                "Memory used in bytes",
                p.resident_bytes,
            ),
            (
                "resident_memory_limit_bytes",
                "Memory high watermark in bytes",
                Some(p.memory_limit),
            ),
            (
                "disk_space_available_bytes",
                "Disk space available in bytes",
                p.disk_free,
            ),
            (
                "disk_space_available_limit_bytes",
                "Free disk space low watermark in bytes",
                Some(p.disk_free_limit),
            ),
        ];
        for (name, help, v) in node {
            if let Some(v) = v {
                head(&mut self.out, "rabbitmq_", name, "gauge", help);
                value(&mut self.out, "rabbitmq_", name, "", v as f64);
            }
        }
        let alarms: [(&str, &str, bool); 3] = [
            (
                "alarms_file_descriptor_limit",
                "is 1 if file descriptor limit alarm is in effect",
                false,
            ),
            (
                "alarms_free_disk_space_watermark",
                "is 1 if free disk space watermark alarm is in effect",
                p.disk_alarm,
            ),
            (
                "alarms_memory_used_watermark",
                "is 1 if VM memory watermark alarm is in effect",
                p.memory_alarm,
            ),
        ];
        for (name, help, on) in alarms {
            head(&mut self.out, "rabbitmq_", name, "untyped", help);
            value(
                &mut self.out,
                "rabbitmq_",
                name,
                "",
                if on { 1.0 } else { 0.0 },
            );
        }
    }

    fn global(&mut self, view: &View) {
        let mut all = MessageStats::default();
        let mut routed = 0u64;
        for s in &view.snapshots {
            all.merge(&s.stats.retired_channels);
            for c in &s.connections {
                for ch in &c.channels {
                    all.merge(&ch.message_stats);
                }
            }
            routed += s
                .stats
                .exchanges
                .iter()
                .map(|(_, x)| x.get(Stat::PublishOut))
                .sum::<u64>();
        }
        for (name, help, stat) in GLOBAL_PUBLISH {
            head(&mut self.out, "rabbitmq_", name, "counter", help);
            value(
                &mut self.out,
                "rabbitmq_",
                name,
                PROTOCOL,
                all.get(*stat) as f64,
            );
        }
        head(
            &mut self.out,
            "rabbitmq_",
            "global_messages_routed_total",
            "counter",
            "Total number of messages routed to queues or streams",
        );
        value(
            &mut self.out,
            "rabbitmq_",
            "global_messages_routed_total",
            PROTOCOL,
            routed as f64,
        );
        for (name, help, stats) in GLOBAL_DELIVERY {
            head(&mut self.out, "rabbitmq_", name, "counter", help);
            let n: u64 = stats.iter().map(|s| all.get(*s)).sum();
            value(&mut self.out, "rabbitmq_", name, QUEUE_TYPE, n as f64);
        }
        let consumers: usize = view
            .snapshots
            .iter()
            .flat_map(|s| s.queues.iter())
            .map(|q| q.consumers.len())
            .sum();
        head(
            &mut self.out,
            "rabbitmq_",
            "global_consumers",
            "gauge",
            "Current number of consumers",
        );
        value(
            &mut self.out,
            "rabbitmq_",
            "global_consumers",
            PROTOCOL,
            consumers as f64,
        );
    }

    /// Warren's own, per shard.
    fn shards(&mut self, view: &View) {
        type ShardMetric = (
            &'static str,
            &'static str,
            &'static str,
            fn(&crate::shard::envelope::ShardSnapshot) -> f64,
        );
        let metrics: [ShardMetric; 7] = [
            (
                "warren_shard_fsyncs_total",
                "counter",
                "fdatasyncs of the shard's log completed",
                |s| s.counters.fsyncs as f64,
            ),
            (
                "warren_shard_log_bytes",
                "gauge",
                "Size of the shard's log on disk in bytes",
                |s| s.stats.log_bytes as f64,
            ),
            (
                "warren_shard_paged_out_messages_total",
                "counter",
                "Message copies paged out to the log",
                |s| s.counters.paged_out as f64,
            ),
            (
                "warren_shard_paged_in_messages_total",
                "counter",
                "Paged message copies read back into memory",
                |s| s.counters.paged_in as f64,
            ),
            (
                "warren_shard_paged_out_bytes_total",
                "counter",
                "Log bytes written for paged-out messages",
                |s| s.stats.paged_out_bytes as f64,
            ),
            (
                "warren_shard_paged_in_bytes_total",
                "counter",
                "Log bytes read back by page-ins",
                |s| s.stats.paged_in_bytes as f64,
            ),
            (
                "warren_shard_resident_bytes",
                "gauge",
                "Memory charged for ready messages held in memory",
                |s| s.counters.resident_bytes as f64,
            ),
        ];
        let mut labels = String::new();
        for (name, kind, help, f) in metrics {
            head(&mut self.out, "", name, kind, help);
            for s in &view.snapshots {
                labels.clear();
                let _ = write!(labels, "shard=\"{}\"", s.shard);
                value(&mut self.out, "", name, &labels, f(s));
            }
        }
        let h = "warren_shard_fsync_seconds";
        head(
            &mut self.out,
            "",
            h,
            "histogram",
            "Latency of the shard's log fdatasyncs",
        );
        for s in &view.snapshots {
            let hist = &s.stats.fsync_seconds;
            let mut cumulative = 0;
            for (i, count) in hist.counts.iter().enumerate() {
                cumulative += count;
                labels.clear();
                match FSYNC_BUCKETS.get(i) {
                    Some(le) => {
                        let _ = write!(labels, "shard=\"{}\",le=\"{le}\"", s.shard);
                    }
                    None => {
                        let _ = write!(labels, "shard=\"{}\",le=\"+Inf\"", s.shard);
                    }
                }
                value(&mut self.out, h, "_bucket", &labels, cumulative as f64);
            }
            labels.clear();
            let _ = write!(labels, "shard=\"{}\"", s.shard);
            value(&mut self.out, h, "_sum", &labels, hist.sum_seconds);
            value(&mut self.out, h, "_count", &labels, cumulative as f64);
        }
        head(
            &mut self.out,
            "",
            "warren_ring_batches",
            "gauge",
            "Batches in the ring from one shard to another, not yet taken by the receiver",
        );
        for from in &view.snapshots {
            for to in &view.snapshots {
                if from.shard == to.shard {
                    continue;
                }
                let sent = from
                    .stats
                    .ring_sent
                    .get(to.shard as usize)
                    .copied()
                    .unwrap_or(0);
                let taken = to
                    .stats
                    .ring_received
                    .get(from.shard as usize)
                    .copied()
                    .unwrap_or(0);
                labels.clear();
                let _ = write!(labels, "from=\"{}\",to=\"{}\"", from.shard, to.shard);
                value(
                    &mut self.out,
                    "",
                    "warren_ring_batches",
                    &labels,
                    sent.saturating_sub(taken) as f64,
                );
            }
        }
        head(
            &mut self.out,
            "",
            "warren_shard_outbox_envelopes",
            "gauge",
            "Envelopes waiting in a shard's outbox for another shard's ring",
        );
        for s in &view.snapshots {
            for (to, n) in s.stats.outbox.iter().enumerate() {
                if to != s.shard as usize {
                    labels.clear();
                    let _ = write!(labels, "shard=\"{}\",to=\"{to}\"", s.shard);
                    value(
                        &mut self.out,
                        "",
                        "warren_shard_outbox_envelopes",
                        &labels,
                        *n as f64,
                    );
                }
            }
        }
    }

    fn identity(&mut self, node: &Node, endpoint: &str) {
        head(
            &mut self.out,
            "rabbitmq_",
            "build_info",
            "untyped",
            "RabbitMQ & Erlang/OTP version info",
        );
        let _ = writeln!(
            self.out,
            "rabbitmq_build_info{{rabbitmq_version=\"3.10.8\",prometheus_plugin_version=\"3.10.8\",prometheus_client_version=\"\",erlang_version=\"\",product_name=\"Warren\",product_version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        head(
            &mut self.out,
            "rabbitmq_",
            "identity_info",
            "untyped",
            "RabbitMQ node & cluster identity info",
        );
        self.out.push_str("rabbitmq_identity_info{rabbitmq_node=\"");
        escaped(&mut self.out, &node.name);
        let _ = writeln!(
            self.out,
            "\",rabbitmq_cluster=\"warren\",rabbitmq_endpoint=\"{endpoint}\"}} 1"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_label_escaping() {
        let q = vec![("family".to_string(), "queue_coarse_metrics".to_string())];
        assert_eq!(Endpoint::of("/metrics", &[]), Some(Endpoint::Aggregated));
        assert_eq!(
            Endpoint::of("/metrics/per-object", &[]),
            Some(Endpoint::PerObject)
        );
        assert_eq!(
            Endpoint::of("/metrics/detailed", &q),
            Some(Endpoint::Detailed {
                families: vec!["queue_coarse_metrics".into()],
                vhosts: vec![]
            })
        );
        assert_eq!(Endpoint::of("/metricsx", &[]), None);
        let mut s = String::new();
        escaped(&mut s, "a\"b\\c\nd");
        assert_eq!(s, "a\\\"b\\\\c\\nd");
    }
}
