//! The named scenario suite (`--scenario NAME`, `loadgen scenarios`): each
//! a set of flags applied before the user's own.

/// A named scenario: a set of flags applied before the user's own.
pub struct Scenario {
    pub name: &'static str,
    pub description: &'static str,
    pub args: &'static [&'static str],
}

/// Consumers in the throughput scenarios use prefetch 1000 and ack every 100
/// deliveries (multiple=true): a tuned client, the same for both brokers.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "1p1c-16b",
        description: "1 producer, 1 consumer, 1 queue, transient 16 B messages, no confirms",
        args: &["-x", "1", "-y", "1", "-s", "16", "-q", "1000", "-A", "100"],
    },
    Scenario {
        name: "1p1c-1k",
        description: "1 producer, 1 consumer, 1 queue, transient 1 KiB messages, no confirms",
        args: &[
            "-x", "1", "-y", "1", "-s", "1024", "-q", "1000", "-A", "100",
        ],
    },
    Scenario {
        name: "persistent-confirms-1k",
        description: "1p1c, 1 KiB persistent messages to a durable queue, confirm window 1000",
        args: &[
            "-x",
            "1",
            "-y",
            "1",
            "-s",
            "1024",
            "-f",
            "persistent",
            "-c",
            "1000",
            "-q",
            "1000",
            "-A",
            "100",
        ],
    },
    Scenario {
        name: "4p4c",
        description: "4 producers, 4 consumers, 4 queues (one pair per queue), 16 B",
        args: &[
            "-x", "4", "-y", "4", "--queues", "4", "-s", "16", "-q", "1000", "-A", "100",
        ],
    },
    Scenario {
        name: "fanout-10",
        description: "1 producer to a fanout exchange bound to 10 queues, 1 consumer each, 16 B",
        args: &[
            "-x", "1", "-y", "10", "--fanout", "10", "-s", "16", "-q", "1000", "-A", "100",
        ],
    },
    Scenario {
        name: "client-like-16b",
        description: "1p1c-16b written and read as typical clients do: one write per publish, \
                      one ack (multiple=false) per delivery on its own write, 4 KiB reads",
        args: &[
            "-x",
            "1",
            "-y",
            "1",
            "-s",
            "16",
            "-q",
            "1000",
            "-A",
            "1",
            "--client-like",
        ],
    },
    Scenario {
        name: "client-like-persistent-1k",
        description: "persistent-confirms-1k written and read as typical clients do: one write \
                      per publish, one ack per delivery on its own write, 4 KiB reads",
        args: &[
            "-x",
            "1",
            "-y",
            "1",
            "-s",
            "1024",
            "-f",
            "persistent",
            "-c",
            "1000",
            "-q",
            "1000",
            "-A",
            "1",
            "--client-like",
        ],
    },
    Scenario {
        name: "latency-10k",
        description: "fixed 10,000 msg/s (1p1c, 16 B, confirm window 1000): latency at a sane load",
        args: &[
            "-x", "1", "-y", "1", "-s", "16", "-r", "10000", "-c", "1000", "-q", "1000", "-A",
            "100",
        ],
    },
    Scenario {
        name: "backlog",
        description: "publish --backlog N (default 1M) 16 B messages with no consumer (confirm \
                      window 1000), then drain with 1 consumer: both rates",
        args: &[
            "--mode", "backlog", "-s", "16", "-c", "1000", "-q", "1000", "-A", "100",
        ],
    },
    Scenario {
        name: "recovery-1m",
        description: "restart recovery, in two steps around a broker restart: --mode fill \
                      publishes --recovery N (default 1M) persistent 16 B messages to a durable \
                      queue (confirm window 1000) and exits; --mode recover-wait then times \
                      until the restarted broker accepts connections and reports all N ready, \
                      and drains them (scripts/bench-vs-rabbitmq.sh does the restart)",
        args: &[
            "--mode",
            "fill",
            "-s",
            "16",
            "-f",
            "persistent",
            "-c",
            "1000",
            "-q",
            "1000",
            "-A",
            "100",
            "--recovery",
            "1000000",
        ],
    },
    Scenario {
        name: "idle-connections-1000",
        description: "open --connections N (default 1000) idle connections (1 channel each): \
                      broker RSS per connection (needs --broker-pid)",
        args: &["--mode", "idle-connections", "--connections", "1000"],
    },
    Scenario {
        name: "queues-100k",
        description: "declare --queues N (default 100000) idle queues: broker RSS per queue \
                      (needs --broker-pid)",
        args: &["--mode", "queues", "--queues", "100000"],
    },
    Scenario {
        name: "ttl-expiry",
        description: "1 producer floods (16 B, no confirms) a queue with x-message-ttl 100 ms \
                      that nobody consumes; it dead-letters (default exchange) to a queue 1 \
                      consumer drains: publish and dead-letter rates, expiry lateness, queue \
                      depth over time, broker RSS peak (drop --dead-letter: expiry only)",
        args: &[
            "--mode",
            "ttl-expiry",
            "-x",
            "1",
            "-y",
            "1",
            "-s",
            "16",
            "--ttl",
            "100",
            "--dead-letter",
            "-q",
            "1000",
            "-A",
            "100",
        ],
    },
    Scenario {
        name: "nack-requeue",
        description: "1 producer publishes 100,000 16 B messages (confirm window 1000); 1 consumer (qos 1000) \
                      basic.nacks each with requeue=true 3 times (--requeues), then acks it: \
                      deliveries/s, acks/s, broker CPU per delivery, redelivered flags",
        args: &[
            "--mode",
            "nack-requeue",
            "-x",
            "1",
            "-y",
            "1",
            "-s",
            "16",
            "--requeues",
            "3",
            "-C",
            "100000",
            "-c",
            "1000",
            "-q",
            "1000",
            "-A",
            "100",
        ],
    },
    Scenario {
        name: "dlx-fan-in",
        description: "8 producers publish 25,000 16 B messages each (confirm window 1000) to 8 \
                      source queues whose \
                      consumers reject them (requeue=false); all dead-letter through one fanout \
                      exchange into one target queue 1 consumer drains: dead-letter throughput, \
                      every message arrived exactly once (--dlx-via ttl --ttl MS: by expiry)",
        args: &[
            "--mode",
            "dlx-fan-in",
            "--queues",
            "8",
            "-x",
            "8",
            "-y",
            "1",
            "-s",
            "16",
            "--dlx-via",
            "reject",
            "-C",
            "25000",
            "-c",
            "1000",
            "-q",
            "1000",
            "-A",
            "100",
        ],
    },
    Scenario {
        name: "delayed",
        description: "1 producer publishes 5,000 msg/s (16 B, confirm window 1000) for 10 s to \
                      an x-delayed-message exchange, x-delay spread over 0-2000 ms; 1 consumer: \
                      lateness (delivery - publish - x-delay) and throughput. Needs the \
                      delayed-message exchange (Warren has it; RabbitMQ only with its plugin)",
        args: &[
            "--mode",
            "delayed",
            "-x",
            "1",
            "-y",
            "1",
            "-s",
            "16",
            "--delay-min",
            "0",
            "--delay-max",
            "2000",
            "-r",
            "5000",
            "-z",
            "10",
            "-c",
            "1000",
            "-q",
            "1000",
            "-A",
            "100",
        ],
    },
    Scenario {
        name: "ttl-1m-memory",
        description: "publish --backlog N (default 1M) 1 KiB messages (confirm window 1000) \
                      into a queue with x-message-ttl 30 s, then wait until all expired: \
                      broker RSS sampled through fill and expiry (needs --broker-pid; \
                      --rss-bound-mib M fails the run if RSS grows more than M)",
        args: &[
            "--mode",
            "ttl-memory",
            "-y",
            "0",
            "-s",
            "1024",
            "--backlog",
            "1000000",
            "--ttl",
            "30000",
            "-c",
            "1000",
        ],
    },
];

pub fn scenario(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// Pulls `--scenario NAME` out of the arguments and puts the scenario's
/// flags in front (so the user's flags override them).
pub(super) fn expand_scenario(args: Vec<String>) -> Result<(Option<String>, Vec<String>), String> {
    let mut name = None;
    let mut rest = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--scenario" {
            name = Some(it.next().ok_or("--scenario needs a name")?);
        } else {
            rest.push(a);
        }
    }
    let Some(name) = name else {
        return Ok((None, rest));
    };
    let sc = scenario(&name)
        .ok_or_else(|| format!("unknown scenario {name:?} (`loadgen scenarios` lists them)"))?;
    let mut all: Vec<String> = sc.args.iter().map(|s| s.to_string()).collect();
    all.extend(rest);
    Ok((Some(name), all))
}
