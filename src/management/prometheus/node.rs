//! The node's families: object totals, process and disk figures, alarms,
//! RabbitMQ's global counters, Warren's per-shard families (fsyncs and
//! their latency histogram, paging, log size, rings) and the identity /
//! build info every endpoint ends with.

use super::families::{GLOBAL_DELIVERY, GLOBAL_PUBLISH, PROTOCOL, QUEUE_TYPE};
use super::text::{escaped, head, value};
use super::Renderer;
use crate::broker::stats::{MessageStats, Stat};
use crate::management::api::Node;
use crate::management::bridge::View;
use crate::shard::alarms::Alarms;
use crate::storage::log::FSYNC_BUCKETS;
use std::fmt::Write;

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

impl Renderer {
    pub(super) fn totals_and_node(&mut self, view: &View, p: &Process) {
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

    pub(super) fn global(&mut self, view: &View) {
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
    pub(super) fn shards(&mut self, view: &View) {
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

    pub(super) fn identity(&mut self, node: &Node, endpoint: &str) {
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
