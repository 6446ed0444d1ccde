//! The shape of a run derived from its `Config`: queue and exchange names,
//! each producer's exchange and routing key and the queues it reaches,
//! which queue each consumer reads, how producers and consumers are grouped
//! into connections, and how many deliveries to expect. Pure: no I/O.

use crate::cli::{Config, ExchangeKind};

/// Where one producer publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub exchange: String,
    pub routing_key: String,
    /// Indices into `Topology::queues` that each message reaches.
    pub reaches: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// "" for the default exchange.
    pub exchange: String,
    pub exchange_kind: ExchangeKind,
    pub queues: Vec<String>,
    /// (queue index, binding key) pairs to create.
    pub bindings: Vec<(usize, String)>,
    pub routes: Vec<Route>,
    /// The queue index each consumer reads.
    pub consumer_queue: Vec<usize>,
}

impl Topology {
    pub fn new(cfg: &Config) -> Topology {
        let nq = cfg.queues.max(1);
        let queues: Vec<String> = if nq == 1 {
            vec![cfg.queue_prefix.clone()]
        } else {
            (0..nq)
                .map(|i| format!("{}-{i}", cfg.queue_prefix))
                .collect()
        };
        let exchange = match cfg.exchange {
            ExchangeKind::Default => String::new(),
            kind => format!("{}-{}", cfg.queue_prefix, kind.as_str()),
        };
        let all: Vec<usize> = (0..nq).collect();
        let bindings: Vec<(usize, String)> = match (cfg.exchange, &cfg.routing_key) {
            (ExchangeKind::Default, _) => Vec::new(),
            (_, Some(k)) => all.iter().map(|&q| (q, k.clone())).collect(),
            (ExchangeKind::Fanout, None) => all.iter().map(|&q| (q, String::new())).collect(),
            (_, None) => all.iter().map(|&q| (q, queues[q].clone())).collect(),
        };
        let routes = (0..cfg.producers)
            .map(|p| {
                let q = p % nq;
                match (cfg.exchange, &cfg.routing_key) {
                    (ExchangeKind::Default, _) => Route {
                        exchange: String::new(),
                        routing_key: queues[q].clone(),
                        reaches: vec![q],
                    },
                    (_, Some(k)) => Route {
                        exchange: exchange.clone(),
                        routing_key: k.clone(),
                        reaches: all.clone(),
                    },
                    (ExchangeKind::Fanout, None) => Route {
                        exchange: exchange.clone(),
                        routing_key: String::new(),
                        reaches: all.clone(),
                    },
                    (_, None) => Route {
                        exchange: exchange.clone(),
                        routing_key: queues[q].clone(),
                        reaches: vec![q],
                    },
                }
            })
            .collect();
        let consumer_queue = (0..cfg.consumers).map(|c| c % nq).collect();
        Topology {
            exchange,
            exchange_kind: cfg.exchange,
            queues,
            bindings,
            routes,
            consumer_queue,
        }
    }

    /// Deliveries expected by consumers, given how many messages each
    /// producer sent: every queue a message reaches that has a consumer
    /// counts once.
    pub fn expected_deliveries(&self, sent_per_producer: &[u64]) -> u64 {
        let mut consumed = vec![false; self.queues.len()];
        for &q in &self.consumer_queue {
            consumed[q] = true;
        }
        self.routes
            .iter()
            .zip(sent_per_producer)
            .map(|(r, &n)| n * r.reaches.iter().filter(|&&q| consumed[q]).count() as u64)
            .sum()
    }
}

/// Splits `n` workers into connections of at most `per_conn` channels:
/// the worker index ranges of each connection.
pub fn group(n: usize, per_conn: usize) -> Vec<std::ops::Range<usize>> {
    assert!(per_conn >= 1);
    (0..n.div_ceil(per_conn))
        .map(|c| c * per_conn..((c + 1) * per_conn).min(n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse_run;

    fn topo(flags: &str) -> Topology {
        let args: Vec<String> = flags.split_whitespace().map(String::from).collect();
        Topology::new(&parse_run(&args).unwrap())
    }

    #[test]
    fn default_exchange_one_queue_per_producer() {
        let t = topo("-x 3 -y 2 --queues 2 --queue-prefix q");
        assert_eq!(t.exchange, "");
        assert_eq!(t.queues, vec!["q-0", "q-1"]);
        assert!(t.bindings.is_empty());
        assert_eq!(t.routes[2].routing_key, "q-0");
        assert_eq!(t.routes[1].reaches, vec![1]);
        assert_eq!(t.consumer_queue, vec![0, 1]);
        assert_eq!(t.expected_deliveries(&[10, 20, 30]), 60);
        let single = topo("");
        assert_eq!(single.queues, vec!["loadgen"]);
    }

    #[test]
    fn fanout_reaches_every_queue() {
        let t = topo("--fanout 3 -y 2");
        assert_eq!(t.exchange, "loadgen-fanout");
        assert_eq!(t.bindings.len(), 3);
        assert_eq!(t.routes[0].reaches, vec![0, 1, 2]);
        // Only queues 0 and 1 have consumers.
        assert_eq!(t.expected_deliveries(&[100]), 200);
    }

    #[test]
    fn routing_key_binds_all_queues() {
        let t = topo("--exchange-type topic --routing-key a.b --queues 2 -x 2");
        assert_eq!(t.exchange, "loadgen-topic");
        assert!(t.bindings.iter().all(|(_, k)| k == "a.b"));
        assert_eq!(t.routes[1].routing_key, "a.b");
        let t = topo("--exchange-type direct --queues 2 -x 2");
        assert_eq!(
            t.bindings,
            vec![(0, "loadgen-0".into()), (1, "loadgen-1".into())]
        );
        assert_eq!(t.routes[1].reaches, vec![1]);
    }

    #[test]
    fn no_consumers_expect_nothing() {
        let t = topo("-y 0");
        assert_eq!(t.expected_deliveries(&[1000]), 0);
    }

    #[test]
    fn grouping() {
        assert_eq!(group(5, 2), vec![0..2, 2..4, 4..5]);
        assert_eq!(group(0, 3), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(group(3, 8), vec![0..3]);
    }
}
