//! What one run is: `Config` (every flag, resolved), the `Mode` it
//! measures, the `ExchangeKind` producers publish to, and the defaults.

use std::path::PathBuf;

use crate::ids::DelaySpread;
use crate::uri::{AmqpUri, DEFAULT_URI};

/// Which exchange producers publish to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeKind {
    /// The default exchange: routing key = queue name.
    Default,
    Direct,
    Fanout,
    Topic,
}

impl ExchangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Default => "default",
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
        }
    }
}

/// What a run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Producers and consumers at once: rates and latencies.
    Throughput,
    /// Publish `backlog` messages with no consumer, then drain them.
    Backlog,
    /// Open `connections` idle connections: broker RSS per connection.
    IdleConnections,
    /// Declare `queues` queues: broker RSS per queue.
    Queues,
    /// Publish `backlog` messages (for a restart test) and exit, leaving
    /// them queued.
    Fill,
    /// Wait for a restarting broker to accept connections and to report
    /// `expect` ready messages, then drain them.
    RecoverWait,
    /// Flood a queue with `x-message-ttl` nobody consumes (optionally
    /// dead-lettering to a consumed queue): expiry rate, depth, RSS.
    TtlExpiry,
    /// Consumers requeue each message `requeues` times, then ack it.
    NackRequeue,
    /// Source queues dead-letter (by TTL or reject) into one consumed
    /// target: throughput and exactly-once arrival.
    DlxFanIn,
    /// Publish to an `x-delayed-message` exchange with spread `x-delay`s:
    /// lateness and throughput.
    Delayed,
    /// Publish `backlog` messages into a queue with a TTL, then let them
    /// all expire: broker RSS through both phases.
    TtlMemory,
}

impl Mode {
    pub(super) fn parse(s: &str) -> Result<Mode, String> {
        Ok(match s {
            "throughput" => Mode::Throughput,
            "backlog" => Mode::Backlog,
            "idle-connections" => Mode::IdleConnections,
            "queues" => Mode::Queues,
            "fill" => Mode::Fill,
            "recover-wait" => Mode::RecoverWait,
            "ttl-expiry" => Mode::TtlExpiry,
            "nack-requeue" => Mode::NackRequeue,
            "dlx-fan-in" => Mode::DlxFanIn,
            "delayed" => Mode::Delayed,
            "ttl-memory" => Mode::TtlMemory,
            _ => {
                return Err(format!(
                    "--mode {s:?}: expected throughput, backlog, idle-connections, queues, \
                     fill, recover-wait, ttl-expiry, nack-requeue, dlx-fan-in, delayed or \
                     ttl-memory"
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Throughput => "throughput",
            Mode::Backlog => "backlog",
            Mode::IdleConnections => "idle-connections",
            Mode::Queues => "queues",
            Mode::Fill => "fill",
            Mode::RecoverWait => "recover-wait",
            Mode::TtlExpiry => "ttl-expiry",
            Mode::NackRequeue => "nack-requeue",
            Mode::DlxFanIn => "dlx-fan-in",
            Mode::Delayed => "delayed",
            Mode::TtlMemory => "ttl-memory",
        }
    }
}

/// How the source queues of a dlx-fan-in run dead-letter their messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DlxVia {
    /// A consumer per source queue rejects each message (requeue=false).
    Reject,
    /// Nobody consumes the sources; messages expire (`--ttl`).
    Ttl,
}

/// One benchmark run, fully specified.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub uri: AmqpUri,
    pub mode: Mode,
    pub scenario: Option<String>,
    pub producers: usize,
    pub consumers: usize,
    /// Body size in bytes (at least 8: the timestamp).
    pub size: usize,
    /// Messages per second per producer; 0 = unlimited.
    pub rate: u64,
    /// Run length; `None` = until `pmessages` are sent.
    pub time_s: Option<f64>,
    /// Messages per producer; 0 = no count limit.
    pub pmessages: u64,
    /// Unconfirmed messages allowed per producer channel; 0 = no confirms.
    pub confirm: u32,
    pub persistent: bool,
    /// Consumer prefetch (basic.qos); 0 = unlimited.
    pub qos: u16,
    /// SO_SNDBUF of each producer socket; `None` = the kernel's (autotuned,
    /// up to `net.ipv4.tcp_wmem`'s maximum: megabytes of publishes that
    /// wait in the producer's own kernel buffer count in e2e latency).
    pub producer_sndbuf: Option<u32>,
    /// Ack every N deliveries with multiple=true; 0 or 1 = ack each one.
    pub multi_ack_every: u32,
    /// One write syscall per publish and per ack (`--write-per-publish`,
    /// `--client-like`), as pika, amqprs and the Java client do, instead
    /// of batching up to `client::FLUSH_AT` bytes per write.
    pub write_per_publish: bool,
    /// Bytes asked of the kernel per read (`--read-size`); `None` = 64 KiB.
    pub read_size: Option<usize>,
    /// `--client-like`: `write_per_publish` plus `CLIENT_LIKE_READ_SIZE`
    /// reads unless `--read-size` says otherwise.
    pub client_like: bool,
    /// The broker's data directory (`--data-dir`), for the filesystem a
    /// persistent run reports and checks; otherwise found from the files
    /// `broker_pid` has open.
    pub data_dir: Option<PathBuf>,
    pub autoack: bool,
    pub queues: usize,
    pub exchange: ExchangeKind,
    pub routing_key: Option<String>,
    /// Number of queues bound to one fanout exchange; 0 = not a fanout run.
    pub fanout: usize,
    /// Idle connections to open (idle-connections mode).
    pub connections: usize,
    pub channels_per_connection: usize,
    pub queue_prefix: String,
    pub json: Option<PathBuf>,
    pub broker_pid: Option<u32>,
    /// Messages to publish then drain (backlog mode).
    pub backlog: u64,
    /// No per-second progress lines.
    pub quiet: bool,
    /// Ready messages to wait for (recover-wait mode).
    pub expect: u64,
    /// When the broker process was started (ns since the Unix epoch), the
    /// origin of recover-wait's timings; `None` = when loadgen started.
    pub since_unix_ns: Option<u64>,
    /// Write the report in the line format that `loadgen merge` reads.
    pub save: Option<PathBuf>,
    /// `x-message-ttl` of the queues that should expire messages.
    pub ttl_ms: Option<u32>,
    /// ttl-expiry: dead-letter expired messages to a consumed queue.
    pub dead_letter: bool,
    /// nack-requeue: times each message is requeued before it is acked.
    pub requeues: u32,
    /// nack-requeue: requeue with basic.reject instead of basic.nack.
    pub requeue_with_reject: bool,
    /// dlx-fan-in: how the sources dead-letter.
    pub dlx_via: DlxVia,
    /// delayed: the spread of `x-delay`s.
    pub delay: DelaySpread,
    /// ttl-memory: fail if the broker's RSS grows more than this (MiB)
    /// over its RSS before the run.
    pub rss_bound_mib: Option<f64>,
}

impl Config {
    /// The `x-delay` spread producers publish with (delayed mode only).
    pub fn delay_spread(&self) -> Option<DelaySpread> {
        (self.mode == Mode::Delayed).then_some(self.delay)
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            uri: AmqpUri::parse(DEFAULT_URI).expect("default URI parses"),
            mode: Mode::Throughput,
            scenario: None,
            producers: 1,
            consumers: 1,
            size: 16,
            rate: 0,
            time_s: None,
            pmessages: 0,
            confirm: 0,
            producer_sndbuf: None,
            persistent: false,
            qos: 0,
            multi_ack_every: 0,
            write_per_publish: false,
            read_size: None,
            client_like: false,
            data_dir: None,
            autoack: false,
            queues: 1,
            exchange: ExchangeKind::Default,
            routing_key: None,
            fanout: 0,
            connections: 1000,
            channels_per_connection: 1,
            queue_prefix: "loadgen".to_string(),
            json: None,
            broker_pid: None,
            backlog: 1_000_000,
            quiet: false,
            expect: 0,
            since_unix_ns: None,
            save: None,
            ttl_ms: None,
            dead_letter: false,
            requeues: 3,
            requeue_with_reject: false,
            dlx_via: DlxVia::Reject,
            delay: DelaySpread {
                min_ms: 0,
                max_ms: 2000,
            },
            rss_bound_mib: None,
        }
    }
}

impl Config {
    /// Bytes per read syscall of every connection of the run.
    pub fn read_chunk(&self) -> usize {
        self.read_size.unwrap_or(DEFAULT_READ_SIZE)
    }

    /// Whether the run keeps messages on the broker's disk (so it must not
    /// run on tmpfs).
    pub fn is_persistent(&self) -> bool {
        self.persistent || matches!(self.mode, Mode::Fill | Mode::RecoverWait)
    }
}

/// Bytes per read unless `--read-size` or `--client-like` says otherwise.
pub const DEFAULT_READ_SIZE: usize = 64 * 1024;
/// `--client-like`'s read size: what typical clients read per syscall
/// (the Java client's 8 KiB buffered stream halved; pika and amqprs read
/// what is there into a few KiB).
pub const CLIENT_LIKE_READ_SIZE: usize = 4096;
/// Bounds of `--read-size`.
pub const READ_SIZE_RANGE: (usize, usize) = (64, 1 << 20);

/// Default run length when neither `-z` nor `-C` is given.
pub const DEFAULT_TIME_S: f64 = 10.0;
/// Largest accepted body (bounded so a typo cannot allocate gigabytes).
pub const MAX_SIZE: usize = 64 * 1024 * 1024;
