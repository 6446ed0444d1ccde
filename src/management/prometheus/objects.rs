//! The per-object families (queues, message ages, exchanges, channels),
//! per object or summed (`/metrics`, aggregated).

use super::families::*;
use super::text::{escaped, head, object, value, vhost_name};
use super::Renderer;
use crate::broker::stats::MessageStats;
use crate::broker::vhost::VhostId;
use crate::management::api::Node;
use crate::management::bridge::View;
use crate::shard::envelope::{ChannelSnapshot, ConnectionSnapshot};
use std::collections::HashMap;
use std::fmt::Write;

impl Renderer {
    pub(super) fn queues(
        &mut self,
        view: &View,
        prefix: &str,
        per_object: bool,
        keep: &dyn Fn(&str) -> bool,
    ) {
        for (_, metrics) in QUEUE_FAMILIES {
            self.queue_family(view, prefix, metrics, per_object, keep);
        }
    }

    pub(super) fn queue_family(
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

    pub(super) fn ages(&mut self, view: &View, keep: &dyn Fn(&str) -> bool) {
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

    pub(super) fn queue_info(&mut self, view: &View, prefix: &str, keep: &dyn Fn(&str) -> bool) {
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

    pub(super) fn exchanges(
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

    pub(super) fn channels(&mut self, view: &View, node: &Node, prefix: &str, per_object: bool) {
        for (_, metrics) in CHANNEL_FAMILIES {
            self.channel_family(view, node, prefix, metrics, per_object);
        }
    }

    pub(super) fn channel_family(
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

    pub(super) fn channel_sample(
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
        let _ = writeln!(
            self.out,
            " -> {}:{} ({})\"}} {v}",
            node.amqp_bind, node.amqp_port, ch.id
        );
    }
}
