//! Command-line flags (in RabbitMQ PerfTest's spirit) parsed into a
//! validated `Config`, the named scenario suite, and the `compare`
//! sub-command's flags. Pure: no I/O.

use std::path::PathBuf;

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
}

impl Mode {
    fn parse(s: &str) -> Result<Mode, String> {
        Ok(match s {
            "throughput" => Mode::Throughput,
            "backlog" => Mode::Backlog,
            "idle-connections" => Mode::IdleConnections,
            "queues" => Mode::Queues,
            "fill" => Mode::Fill,
            "recover-wait" => Mode::RecoverWait,
            _ => {
                return Err(format!(
                    "--mode {s:?}: expected throughput, backlog, idle-connections, queues, \
                     fill or recover-wait"
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
        }
    }
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
    /// Ack every N deliveries with multiple=true; 0 or 1 = ack each one.
    pub multi_ack_every: u32,
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
            persistent: false,
            qos: 0,
            multi_ack_every: 0,
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
        }
    }
}

/// Default run length when neither `-z` nor `-C` is given.
pub const DEFAULT_TIME_S: f64 = 10.0;
/// Largest accepted body (bounded so a typo cannot allocate gigabytes).
pub const MAX_SIZE: usize = 64 * 1024 * 1024;

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
];

pub fn scenario(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// `loadgen compare` settings.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareConfig {
    pub a: AmqpUri,
    pub b: AmqpUri,
    pub a_pid: Option<u32>,
    pub b_pid: Option<u32>,
    pub rounds: usize,
    pub a_name: String,
    pub b_name: String,
    /// Append the summary as a Markdown section to this file.
    pub markdown: Option<PathBuf>,
    /// The scenario flags (its `uri` and `broker_pid` are replaced per side).
    pub run: Config,
}

/// Splits `--flag=value` into two arguments.
fn normalize(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => {
                out.push(f.to_string());
                out.push(v.to_string());
            }
            _ => out.push(a.clone()),
        }
    }
    out
}

/// Pulls `--scenario NAME` out of the arguments and puts the scenario's
/// flags in front (so the user's flags override them).
fn expand_scenario(args: Vec<String>) -> Result<(Option<String>, Vec<String>), String> {
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

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse::<T>()
        .map_err(|_| format!("{flag}: {v:?} is not a valid number"))
}

fn bounded(flag: &str, v: usize, lo: usize, hi: usize) -> Result<usize, String> {
    if v < lo || v > hi {
        return Err(format!("{flag}: {v} is out of range {lo}..={hi}"));
    }
    Ok(v)
}

/// Parses the flags of a run (`loadgen [run] …`).
pub fn parse_run(args: &[String]) -> Result<Config, String> {
    let (scenario, args) = expand_scenario(normalize(args))?;
    let mut c = Config {
        scenario,
        ..Config::default()
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let flag = flag.as_str();
        let mut value = || {
            it.next()
                .map(|s| s.as_str())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "--uri" | "-h" => c.uri = AmqpUri::parse(value()?)?,
            "--mode" => c.mode = Mode::parse(value()?)?,
            "-x" | "--producers" => c.producers = bounded(flag, num(flag, value()?)?, 0, 10_000)?,
            "-y" | "--consumers" => c.consumers = bounded(flag, num(flag, value()?)?, 0, 10_000)?,
            "-s" | "--size" => c.size = bounded(flag, num(flag, value()?)?, 8, MAX_SIZE)?,
            "-r" | "--rate" => c.rate = num(flag, value()?)?,
            "-z" | "--time" => {
                let t: f64 = num(flag, value()?)?;
                if !(t > 0.0 && t <= 86_400.0) {
                    return Err(format!("{flag}: {t} must be in (0, 86400] seconds"));
                }
                c.time_s = Some(t);
            }
            "-C" | "--pmessages" => c.pmessages = num(flag, value()?)?,
            "-c" | "--confirm" => {
                c.confirm = bounded(flag, num(flag, value()?)?, 0, 1_000_000)? as u32
            }
            "-f" | "--flag" => match value()? {
                "persistent" => c.persistent = true,
                "transient" => c.persistent = false,
                other => return Err(format!("{flag}: unknown flag {other:?} (persistent)")),
            },
            "--persistent" => c.persistent = true,
            "-q" | "--qos" => c.qos = bounded(flag, num(flag, value()?)?, 0, 65_535)? as u16,
            "-A" | "--multi-ack-every" => {
                c.multi_ack_every = bounded(flag, num(flag, value()?)?, 0, 1_000_000)? as u32
            }
            "-a" | "--autoack" => c.autoack = true,
            "--queues" => c.queues = bounded(flag, num(flag, value()?)?, 1, 1_000_000)?,
            "--exchange-type" | "-t" => {
                c.exchange = match value()? {
                    "direct" => ExchangeKind::Direct,
                    "fanout" => ExchangeKind::Fanout,
                    "topic" => ExchangeKind::Topic,
                    "default" | "" => ExchangeKind::Default,
                    other => {
                        return Err(format!(
                            "{flag}: {other:?} is not one of direct, fanout, topic"
                        ))
                    }
                }
            }
            "--routing-key" | "-k" => {
                let k = value()?;
                if k.len() > 255 {
                    return Err(format!("{flag}: longer than 255 bytes"));
                }
                c.routing_key = Some(k.to_string());
            }
            "--fanout" => c.fanout = bounded(flag, num(flag, value()?)?, 1, 10_000)?,
            "--connections" => c.connections = bounded(flag, num(flag, value()?)?, 1, 100_000)?,
            "--channels-per-connection" => {
                c.channels_per_connection = bounded(flag, num(flag, value()?)?, 1, 2047)?
            }
            "--queue-prefix" => {
                let p = value()?;
                if p.is_empty() || p.len() > 200 {
                    return Err(format!("{flag}: must be 1..=200 bytes"));
                }
                c.queue_prefix = p.to_string();
            }
            "--json" => c.json = Some(PathBuf::from(value()?)),
            "--broker-pid" => c.broker_pid = Some(num(flag, value()?)?),
            "--backlog" => {
                c.backlog = num(flag, value()?)?;
                if c.backlog == 0 || c.backlog > 1_000_000_000 {
                    return Err(format!("{flag}: must be 1..=1000000000"));
                }
            }
            "--recovery" => {
                let n: u64 = num(flag, value()?)?;
                if n == 0 || n > 1_000_000_000 {
                    return Err(format!("{flag}: must be 1..=1000000000"));
                }
                (c.backlog, c.expect) = (n, n);
            }
            "--expect" => {
                c.expect = num(flag, value()?)?;
                if c.expect == 0 || c.expect > 1_000_000_000 {
                    return Err(format!("{flag}: must be 1..=1000000000"));
                }
            }
            "--since-unix-ns" => c.since_unix_ns = Some(num(flag, value()?)?),
            "--save" => c.save = Some(PathBuf::from(value()?)),
            "--quiet" => c.quiet = true,
            other => return Err(format!("unknown flag {other:?} (try --help)")),
        }
    }
    finish(c)
}

/// Cross-flag defaults and checks.
fn finish(mut c: Config) -> Result<Config, String> {
    if c.fanout > 0 {
        if !matches!(c.exchange, ExchangeKind::Default | ExchangeKind::Fanout) {
            return Err("--fanout needs --exchange-type fanout (or none)".to_string());
        }
        c.exchange = ExchangeKind::Fanout;
        c.queues = c.fanout;
    }
    if c.routing_key.is_some() && c.exchange == ExchangeKind::Default {
        c.exchange = ExchangeKind::Direct;
    }
    if c.time_s.is_none() && c.pmessages == 0 {
        c.time_s = Some(DEFAULT_TIME_S);
    }
    if !c.autoack && c.qos > 0 && c.multi_ack_every > u32::from(c.qos) {
        return Err(format!(
            "-A {} with -q {}: the consumer would stall waiting for deliveries it never gets",
            c.multi_ack_every, c.qos
        ));
    }
    if c.mode == Mode::Throughput && c.producers == 0 && c.consumers == 0 {
        return Err("nothing to do: no producers and no consumers".to_string());
    }
    if matches!(c.mode, Mode::Backlog | Mode::Fill) && c.producers == 0 {
        c.producers = 1;
    }
    if c.mode == Mode::RecoverWait && c.expect == 0 {
        return Err("--mode recover-wait needs --expect N (or --recovery N)".to_string());
    }
    if matches!(c.mode, Mode::Fill | Mode::RecoverWait) {
        if c.exchange != ExchangeKind::Default || c.queues != 1 {
            return Err(format!(
                "--mode {}: one queue on the default exchange only",
                c.mode.as_str()
            ));
        }
        if !c.persistent {
            return Err(format!(
                "--mode {}: a restart test needs -f persistent (durable queue)",
                c.mode.as_str()
            ));
        }
    }
    if c.mode == Mode::Fill && c.confirm == 0 {
        return Err("--mode fill needs publisher confirms (-c N)".to_string());
    }
    Ok(c)
}

/// Parses `loadgen compare --a URI --b URI [--a-pid P] [--b-pid P]
/// [--rounds N] [run flags]`.
pub fn parse_compare(args: &[String]) -> Result<CompareConfig, String> {
    let args = normalize(args);
    let (mut a, mut b, mut a_pid, mut b_pid, mut rounds) = (None, None, None, None, 2usize);
    let mut markdown = None;
    let (mut a_name, mut b_name) = ("A".to_string(), "B".to_string());
    let mut rest = Vec::with_capacity(args.len());
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .map(|s| s.as_str())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--a" => a = Some(AmqpUri::parse(value()?)?),
            "--b" => b = Some(AmqpUri::parse(value()?)?),
            "--a-pid" => a_pid = Some(num(flag, value()?)?),
            "--b-pid" => b_pid = Some(num(flag, value()?)?),
            "--rounds" => rounds = bounded(flag, num(flag, value()?)?, 1, 100)?,
            "--a-name" => a_name = value()?.to_string(),
            "--b-name" => b_name = value()?.to_string(),
            "--markdown" => markdown = Some(PathBuf::from(value()?)),
            "--uri" | "--broker-pid" => {
                return Err(format!(
                    "{flag}: use --a/--b and --a-pid/--b-pid with compare"
                ))
            }
            _ => rest.push(flag.clone()),
        }
    }
    let run = parse_run(&rest)?;
    Ok(CompareConfig {
        a: a.ok_or("compare needs --a URI")?,
        b: b.ok_or("compare needs --b URI")?,
        a_pid,
        b_pid,
        rounds,
        a_name,
        b_name,
        markdown,
        run,
    })
}

/// `loadgen merge` settings: reports saved by separate runs (`--save`),
/// side A and side B, combined into one comparison table.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeConfig {
    pub title: String,
    /// The sentence under the title (what was run).
    pub intro: String,
    pub a_name: String,
    pub b_name: String,
    /// Each side's saved reports; one side's files are joined into one
    /// report (their metrics appended in order).
    pub a_files: Vec<PathBuf>,
    pub b_files: Vec<PathBuf>,
    /// Append the Markdown section to this file.
    pub markdown: Option<PathBuf>,
}

/// Parses `loadgen merge --title T [--intro S] [--a-name N] [--b-name N]
/// --a FILE… --b FILE… [--markdown FILE]`.
pub fn parse_merge(args: &[String]) -> Result<MergeConfig, String> {
    let args = normalize(args);
    let mut c = MergeConfig {
        title: String::new(),
        intro: String::new(),
        a_name: "A".to_string(),
        b_name: "B".to_string(),
        a_files: Vec::new(),
        b_files: Vec::new(),
        markdown: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .map(|s| s.as_str())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--title" => c.title = value()?.to_string(),
            "--intro" => c.intro = value()?.to_string(),
            "--a-name" => c.a_name = value()?.to_string(),
            "--b-name" => c.b_name = value()?.to_string(),
            "--a" => c.a_files.push(PathBuf::from(value()?)),
            "--b" => c.b_files.push(PathBuf::from(value()?)),
            "--markdown" => c.markdown = Some(PathBuf::from(value()?)),
            other => return Err(format!("merge: unknown flag {other:?}")),
        }
    }
    if c.title.is_empty() {
        return Err("merge needs --title".to_string());
    }
    if c.a_files.is_empty() || c.b_files.is_empty() {
        return Err("merge needs at least one --a FILE and one --b FILE".to_string());
    }
    if c.a_files.len() > 64 || c.b_files.len() > 64 {
        return Err("merge: at most 64 files per side".to_string());
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults() {
        let c = parse_run(&[]).unwrap();
        assert_eq!(c.producers, 1);
        assert_eq!(c.consumers, 1);
        assert_eq!(c.size, 16);
        assert_eq!(c.time_s, Some(DEFAULT_TIME_S));
        assert_eq!(c.exchange, ExchangeKind::Default);
        assert_eq!(c.uri.port, 5672);
        assert_eq!(c.mode, Mode::Throughput);
    }

    #[test]
    fn perftest_short_flags() {
        let c = parse_run(&args(
            "-x 3 -y 4 -s 1024 -r 500 -z 5 -c 100 -f persistent -q 50 -A 10 --queues 2",
        ))
        .unwrap();
        assert_eq!(
            (c.producers, c.consumers, c.size, c.rate),
            (3, 4, 1024, 500)
        );
        assert_eq!(c.time_s, Some(5.0));
        assert_eq!(c.confirm, 100);
        assert!(c.persistent);
        assert_eq!((c.qos, c.multi_ack_every, c.queues), (50, 10, 2));
        assert!(!c.autoack);
        assert!(parse_run(&args("-a")).unwrap().autoack);
    }

    #[test]
    fn long_flags_with_equals() {
        let c = parse_run(&args(
            "--producers=2 --uri=amqp://u:p@h:1/v --json=/tmp/x.json --exchange-type topic --routing-key a.b",
        ))
        .unwrap();
        assert_eq!(c.producers, 2);
        assert_eq!(c.uri.host, "h");
        assert_eq!(c.uri.vhost, "v");
        assert_eq!(c.json, Some(PathBuf::from("/tmp/x.json")));
        assert_eq!(c.exchange, ExchangeKind::Topic);
        assert_eq!(c.routing_key.as_deref(), Some("a.b"));
    }

    #[test]
    fn count_without_time_runs_until_count() {
        let c = parse_run(&args("-C 1000")).unwrap();
        assert_eq!(c.pmessages, 1000);
        assert_eq!(c.time_s, None);
        let c = parse_run(&args("-C 1000 -z 3")).unwrap();
        assert_eq!(c.time_s, Some(3.0));
    }

    #[test]
    fn fanout_implies_exchange_and_queues() {
        let c = parse_run(&args("--fanout 10")).unwrap();
        assert_eq!(c.exchange, ExchangeKind::Fanout);
        assert_eq!(c.queues, 10);
        assert!(parse_run(&args("--fanout 3 --exchange-type topic")).is_err());
        // A routing key with no exchange type means a direct exchange.
        let c = parse_run(&args("--routing-key k")).unwrap();
        assert_eq!(c.exchange, ExchangeKind::Direct);
    }

    #[test]
    fn rejects_bad_flags() {
        for bad in [
            "-x",
            "-x many",
            "-s 4",
            "-s 999999999999",
            "-z 0",
            "-z -1",
            "--bogus",
            "-f mandatory",
            "--exchange-type headers",
            "--queues 0",
            "-q 10 -A 20",
            "-x 0 -y 0",
            "--uri http://h",
            "--scenario nope",
            "--mode sideways",
            "--channels-per-connection 0",
            "--backlog 0",
            "--recovery 0",
            "--recovery lots",
            "--expect 0",
            "--since-unix-ns -5",
            "--mode recover-wait -f persistent",
            "--mode fill -f persistent",
            "--mode fill -c 10",
            "--mode fill -f persistent -c 10 --queues 2",
            "--scenario recovery-1m --fanout 2",
        ] {
            assert!(parse_run(&args(bad)).is_err(), "{bad:?} should be refused");
        }
        // Autoack makes -A irrelevant, so no stall check.
        assert!(parse_run(&args("-q 10 -A 20 -a")).is_ok());
    }

    #[test]
    fn scenarios_parse_and_user_flags_override() {
        for s in SCENARIOS {
            let c = parse_run(&args(&format!("--scenario {}", s.name)))
                .unwrap_or_else(|e| panic!("scenario {}: {e}", s.name));
            assert_eq!(c.scenario.as_deref(), Some(s.name));
        }
        let c = parse_run(&args("--scenario persistent-confirms-1k -z 2 -s 2048")).unwrap();
        assert!(c.persistent);
        assert_eq!(c.confirm, 1000);
        assert_eq!(c.size, 2048);
        assert_eq!(c.time_s, Some(2.0));
        let c = parse_run(&args("--scenario backlog --backlog 5000")).unwrap();
        assert_eq!(c.mode, Mode::Backlog);
        assert_eq!(c.backlog, 5000);
        let c = parse_run(&args("--scenario queues-100k")).unwrap();
        assert_eq!((c.mode, c.queues), (Mode::Queues, 100_000));
        let c = parse_run(&args("--scenario fanout-10")).unwrap();
        assert_eq!((c.queues, c.consumers), (10, 10));
    }

    #[test]
    fn recovery_flags() {
        let c = parse_run(&args("--scenario recovery-1m")).unwrap();
        assert_eq!(c.mode, Mode::Fill);
        assert_eq!((c.backlog, c.expect), (1_000_000, 1_000_000));
        assert!(c.persistent);
        assert_eq!((c.size, c.confirm), (16, 1000));
        let c = parse_run(&args(
            "--scenario recovery-1m --mode recover-wait --recovery 5000 --since-unix-ns 17 --save /tmp/r.txt",
        ))
        .unwrap();
        assert_eq!(c.mode, Mode::RecoverWait);
        assert_eq!((c.backlog, c.expect), (5000, 5000));
        assert_eq!(c.since_unix_ns, Some(17));
        assert_eq!(c.save, Some(PathBuf::from("/tmp/r.txt")));
        // --expect alone changes only what recover-wait waits for.
        let c = parse_run(&args("--mode recover-wait -f persistent --expect 7")).unwrap();
        assert_eq!((c.expect, c.backlog, c.since_unix_ns), (7, 1_000_000, None));
        let c = parse_run(&args("--mode fill -f persistent -c 5 -x 0")).unwrap();
        assert_eq!(c.producers, 1, "fill always has a producer");
    }

    #[test]
    fn merge_flags() {
        let c = parse_merge(&args(
            "--title recovery-1m --intro=x --a-name w --b-name r --a f1 --a f2 --b g1 --markdown m.md",
        ))
        .unwrap();
        assert_eq!((c.title.as_str(), c.intro.as_str()), ("recovery-1m", "x"));
        assert_eq!((c.a_name.as_str(), c.b_name.as_str()), ("w", "r"));
        assert_eq!(c.a_files, vec![PathBuf::from("f1"), PathBuf::from("f2")]);
        assert_eq!(c.b_files, vec![PathBuf::from("g1")]);
        assert_eq!(c.markdown, Some(PathBuf::from("m.md")));
        for bad in [
            "--a f --b g",
            "--title t --a f",
            "--title t --b g",
            "--title t --a f --b g --bogus 1",
            "--title",
        ] {
            assert!(
                parse_merge(&args(bad)).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn compare_flags() {
        let c = parse_compare(&args(
            "--a amqp://h:5672 --b amqp://h:5673 --a-pid 10 --rounds 3 --scenario 1p1c-1k -z 1",
        ))
        .unwrap();
        assert_eq!(c.a.port, 5672);
        assert_eq!(c.b.port, 5673);
        assert_eq!((c.a_pid, c.b_pid, c.rounds), (Some(10), None, 3));
        assert_eq!(c.run.size, 1024);
        assert_eq!(c.run.time_s, Some(1.0));
        assert_eq!(c.markdown, None);
        let c = parse_compare(&args("--a amqp://h --b amqp://h --markdown=/tmp/m.md")).unwrap();
        assert_eq!(c.markdown, Some(PathBuf::from("/tmp/m.md")));
        assert_eq!(c.rounds, 2);
        assert_eq!((c.a_name.as_str(), c.b_name.as_str()), ("A", "B"));
        assert!(parse_compare(&args("--a amqp://h")).is_err());
        assert!(parse_compare(&args("--a amqp://h --b amqp://h --uri amqp://x")).is_err());
        assert!(parse_compare(&args("--a amqp://h --b amqp://h --rounds 0")).is_err());
    }
}
