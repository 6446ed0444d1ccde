//! Parsing the flags of a run (`loadgen [run] …`) into a validated
//! `Config`: each flag, then the cross-flag defaults and checks.

use std::path::PathBuf;

use super::config::{
    Config, DlxVia, ExchangeKind, Mode, CLIENT_LIKE_READ_SIZE, DEFAULT_TIME_S, MAX_SIZE,
    READ_SIZE_RANGE,
};
use super::flags::{bounded, normalize, num};
use super::scenarios::expand_scenario;
use crate::uri::AmqpUri;

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
            "--producer-sndbuf" => {
                c.producer_sndbuf =
                    Some(bounded(flag, num(flag, value()?)?, 4096, 64 << 20)? as u32)
            }
            "--write-per-publish" => c.write_per_publish = true,
            "--read-size" => {
                let (lo, hi) = READ_SIZE_RANGE;
                c.read_size = Some(bounded(flag, num(flag, value()?)?, lo, hi)?)
            }
            "--client-like" => c.client_like = true,
            "--data-dir" => {
                let d = value()?;
                if d.is_empty() || d.len() > 4096 {
                    return Err(format!("{flag}: must be 1..=4096 bytes"));
                }
                c.data_dir = Some(PathBuf::from(d));
            }
            "--ttl" => c.ttl_ms = Some(bounded(flag, num(flag, value()?)?, 1, 86_400_000)? as u32),
            "--dead-letter" => c.dead_letter = true,
            "--requeues" => c.requeues = bounded(flag, num(flag, value()?)?, 1, 1000)? as u32,
            "--requeue-with" => {
                c.requeue_with_reject = match value()? {
                    "nack" => false,
                    "reject" => true,
                    other => return Err(format!("{flag}: {other:?} is not nack or reject")),
                }
            }
            "--dlx-via" => {
                c.dlx_via = match value()? {
                    "reject" => DlxVia::Reject,
                    "ttl" => DlxVia::Ttl,
                    other => return Err(format!("{flag}: {other:?} is not reject or ttl")),
                }
            }
            "--delay-min" => {
                c.delay.min_ms = bounded(flag, num(flag, value()?)?, 0, 3_600_000)? as u32
            }
            "--delay-max" => {
                c.delay.max_ms = bounded(flag, num(flag, value()?)?, 0, 3_600_000)? as u32
            }
            "--rss-bound-mib" => {
                let m: f64 = num(flag, value()?)?;
                if !(m > 0.0 && m <= 1e6) {
                    return Err(format!("{flag}: {m} must be in (0, 1000000] MiB"));
                }
                c.rss_bound_mib = Some(m);
            }
            other => return Err(format!("unknown flag {other:?} (try --help)")),
        }
    }
    finish(c)
}

/// Cross-flag defaults and checks.
fn finish(mut c: Config) -> Result<Config, String> {
    if c.client_like {
        c.write_per_publish = true;
        c.read_size.get_or_insert(CLIENT_LIKE_READ_SIZE);
    }
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
    // ttl-memory publishes --backlog messages, however long that takes
    // (-z still bounds it if given).
    if c.time_s.is_none() && c.pmessages == 0 && c.mode != Mode::TtlMemory {
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
    check_feature_mode(&mut c)?;
    Ok(c)
}

/// The checks of the queue-feature modes (ttl-expiry, nack-requeue,
/// dlx-fan-in, delayed, ttl-memory).
fn check_feature_mode(c: &mut Config) -> Result<(), String> {
    let m = c.mode.as_str();
    let needs_ids = match c.mode {
        Mode::TtlExpiry => c.dead_letter,
        Mode::NackRequeue | Mode::DlxFanIn | Mode::Delayed => true,
        Mode::TtlMemory => false,
        _ => return Ok(()),
    };
    if c.exchange != ExchangeKind::Default || c.fanout > 0 {
        return Err(format!(
            "--mode {m}: publishes through the default exchange (the delayed \
             exchange in delayed mode); no --exchange-type, --routing-key or --fanout"
        ));
    }
    if needs_ids && c.size < 16 {
        return Err(format!(
            "--mode {m}: -s must be >= 16 (bytes 8..16 carry the message id)"
        ));
    }
    let needs_ttl = matches!(c.mode, Mode::TtlExpiry | Mode::TtlMemory)
        || (c.mode == Mode::DlxFanIn && c.dlx_via == DlxVia::Ttl);
    if needs_ttl && c.ttl_ms.is_none() {
        return Err(format!("--mode {m}: needs --ttl MS"));
    }
    if c.producers == 0 {
        return Err(format!("--mode {m}: needs at least one producer"));
    }
    match c.mode {
        Mode::NackRequeue => {
            if c.autoack {
                return Err("--mode nack-requeue: consumers must ack (no -a)".into());
            }
            if c.consumers != c.queues {
                return Err(format!(
                    "--mode nack-requeue: one consumer per queue (-y {} with --queues {}): \
                     a consumer counts the requeues of the messages it sees",
                    c.consumers, c.queues
                ));
            }
        }
        Mode::DlxFanIn | Mode::Delayed | Mode::TtlExpiry
            if c.consumers == 0 && (c.mode != Mode::TtlExpiry || c.dead_letter) =>
        {
            return Err(format!("--mode {m}: needs at least one consumer (-y)"));
        }
        Mode::TtlMemory if c.confirm == 0 => {
            return Err("--mode ttl-memory needs publisher confirms (-c N)".into());
        }
        _ => {}
    }
    if c.mode == Mode::Delayed {
        if c.delay.max_ms < c.delay.min_ms {
            return Err("--delay-max is below --delay-min".into());
        }
        if c.delay.values() > crate::ids::MAX_DELAY_VALUES {
            return Err(format!(
                "--delay-max - --delay-min: at most {} ms apart",
                crate::ids::MAX_DELAY_VALUES - 1
            ));
        }
    }
    Ok(())
}
