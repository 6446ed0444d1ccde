//! What every run's report shares: the settings line, CPU and RSS metrics,
//! and rates over a time span.

use crate::cli::{Config, DlxVia, Mode};
use crate::report::{Better, Report};
use crate::sys::CpuUsage;

pub(super) fn settings(cfg: &Config) -> String {
    let mut s = format!(
        "mode {}, {} producer(s), {} consumer(s), {} queue(s), exchange {}, {} B, ",
        cfg.mode.as_str(),
        cfg.producers,
        cfg.consumers,
        cfg.queues,
        cfg.exchange.as_str(),
        cfg.size
    );
    s += &if cfg.rate > 0 {
        format!("rate {}/s per producer, ", cfg.rate)
    } else {
        "unlimited rate, ".to_string()
    };
    s += if cfg.persistent {
        "persistent, "
    } else {
        "transient, "
    };
    if cfg.confirm > 0 {
        s += &format!("confirm window {}, ", cfg.confirm);
    }
    s += &if cfg.autoack {
        "autoack".to_string()
    } else {
        format!("qos {}, ack every {}", cfg.qos, cfg.multi_ack_every.max(1))
    };
    if cfg.write_per_publish {
        s += ", one write per publish and per ack";
    }
    if let Some(n) = cfg.read_size {
        s += &format!(", reads of at most {n} B");
    }
    match cfg.mode {
        Mode::Backlog | Mode::Fill => s += &format!(", backlog {}", cfg.backlog),
        Mode::RecoverWait => s += &format!(", expecting {} ready", cfg.expect),
        Mode::TtlMemory => s += &format!(", {} messages", cfg.backlog),
        _ => {
            if let Some(t) = cfg.time_s {
                s += &format!(", {t} s");
            }
            if cfg.pmessages > 0 {
                s += &format!(", {} msg per producer", cfg.pmessages);
            }
        }
    }
    s + &feature_settings(cfg)
}

/// The queue-feature part of the settings line.
fn feature_settings(cfg: &Config) -> String {
    let ttl = cfg
        .ttl_ms
        .map_or(String::new(), |t| format!(", x-message-ttl {t} ms"));
    match cfg.mode {
        Mode::TtlExpiry if cfg.dead_letter => format!("{ttl}, dead-lettered to a drain queue"),
        Mode::TtlExpiry | Mode::TtlMemory => ttl,
        Mode::NackRequeue => format!(
            ", each message requeued {} times by basic.{} then acked",
            cfg.requeues,
            if cfg.requeue_with_reject {
                "reject"
            } else {
                "nack"
            }
        ),
        Mode::DlxFanIn => match cfg.dlx_via {
            DlxVia::Reject => ", sources dead-letter by basic.reject(requeue=false)".to_string(),
            DlxVia::Ttl => format!(", sources dead-letter by expiry{ttl}"),
        },
        Mode::Delayed => format!(", x-delay {}..={} ms", cfg.delay.min_ms, cfg.delay.max_ms),
        _ => String::new(),
    }
}

pub(super) fn push_cpu(r: &mut Report, cpu: &CpuUsage, messages: u64, pid: Option<u32>) {
    r.push("wall time", cpu.wall_s, "s", Better::Neither);
    r.push("loadgen CPU", cpu.loadgen_cpu_s, "s", Better::Neither);
    r.push(
        "loadgen CPU per wall s",
        cpu.loadgen_cpu_s / cpu.wall_s.max(1e-9),
        "cores",
        Better::Neither,
    );
    match cpu.broker_cpu_s {
        Some(b) => {
            r.push("broker CPU", b, "s", Better::Lower);
            r.push(
                "broker CPU per wall s",
                b / cpu.wall_s.max(1e-9),
                "cores",
                Better::Neither,
            );
            if messages > 0 {
                r.push(
                    "broker CPU per msg",
                    b / messages as f64 * 1e6,
                    "us",
                    Better::Lower,
                );
            }
        }
        None if pid.is_some() => r
            .notes
            .push("could not read the broker's /proc/PID/stat".to_string()),
        None => {}
    }
}

pub(super) fn rate(n: u64, from_ns: u64, to_ns: u64) -> f64 {
    if n == 0 || to_ns <= from_ns {
        return 0.0;
    }
    n as f64 / ((to_ns - from_ns) as f64 / 1e9)
}

pub(super) fn push_rss(r: &mut Report, name: &str, rss: u64) {
    r.push(name, rss as f64 / (1024.0 * 1024.0), "MiB", Better::Lower);
}
