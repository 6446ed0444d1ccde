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

mod families;
mod node;
mod objects;
mod text;

pub use node::Process;

use super::api::Node;
use super::bridge::View;
use crate::broker::vhost::VhostId;
use families::{AGE_FAMILY, CHANNEL_FAMILIES, EXCHANGE_FAMILY, QUEUE_FAMILIES};
use std::collections::HashMap;

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

pub(super) struct Renderer {
    pub(super) out: String,
    pub(super) vhosts: HashMap<VhostId, String>,
}

#[cfg(test)]
mod tests {
    use super::text::escaped;
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
