//! The memory runs: open N idle connections, or declare N idle queues, and
//! report the broker's resident-memory growth per connection / per queue
//! (from /proc/PID/status, so they need `--broker-pid`), plus how fast the
//! broker accepted them.

use std::thread;
use std::time::{Duration, Instant};

use warren_protocol::methods::{Method, QueueDeclare, QueueDelete};
use warren_protocol::types::ShortStr;

use crate::cli::Config;
use crate::client::{Conn, Error};
use crate::report::{Better, Report};
use crate::sys::{pid_rss_bytes, raise_nofile_limit, CpuMeter};

/// Longest wait for the broker's RSS to settle.
const SETTLE_MAX: Duration = Duration::from_secs(30);
/// Queue declares / deletes in flight at once.
const PIPELINE: usize = 256;

/// The broker's RSS once it has stopped moving: samples a second apart
/// until two differ by less than 0.25% (at most `SETTLE_MAX`), so garbage
/// collection or freeing after an earlier run does not land in the delta.
pub(crate) fn settled_rss(cfg: &Config, r: &mut Report, when: &str) -> Option<u64> {
    let pid = cfg.broker_pid?;
    let t0 = Instant::now();
    let mut prev = pid_rss_bytes(pid)?;
    loop {
        thread::sleep(Duration::from_secs(1));
        let now = pid_rss_bytes(pid)?;
        if now.abs_diff(prev) * 400 <= prev {
            return Some(now);
        }
        if t0.elapsed() >= SETTLE_MAX {
            r.notes.push(format!(
                "broker RSS {when} still moving after {} s; the delta is approximate",
                SETTLE_MAX.as_secs()
            ));
            return Some(now);
        }
        prev = now;
    }
}

fn no_pid_note(r: &mut Report, cfg: &Config) {
    match cfg.broker_pid {
        None => r.notes.push(
            "memory not measured: this scenario needs --broker-pid PID (the broker's process id)"
                .to_string(),
        ),
        Some(pid) if pid_rss_bytes(pid).is_none() => r.notes.push(format!(
            "could not read /proc/{pid}/status: memory not measured"
        )),
        Some(_) => {}
    }
}

fn push_delta(r: &mut Report, what: &str, before: Option<u64>, after: Option<u64>, n: usize) {
    if let (Some(b), Some(a)) = (before, after) {
        let delta = a as f64 - b as f64;
        r.push(
            "broker RSS before",
            b as f64 / (1024.0 * 1024.0),
            "MiB",
            Better::Neither,
        );
        r.push(
            "broker RSS delta",
            delta / (1024.0 * 1024.0),
            "MiB",
            Better::Lower,
        );
        r.push(
            &format!("broker RSS per {what}"),
            delta / n.max(1) as f64 / 1024.0,
            "KiB",
            Better::Lower,
        );
    }
}

/// Opens `cfg.connections` connections with one channel each and holds
/// them idle.
pub fn run_idle_connections(cfg: &Config) -> Report {
    let n = cfg.connections;
    let name = cfg
        .scenario
        .clone()
        .unwrap_or_else(|| "idle-connections".into());
    let mut r = Report::new(
        &name,
        &cfg.uri.to_string(),
        &format!("mode idle-connections, {n} connections with 1 channel each"),
    );
    no_pid_note(&mut r, cfg);
    let limit = raise_nofile_limit();
    if (limit as usize) < n + 64 {
        r.error = Some(format!(
            "open-files limit {limit} is too low for {n} connections (raise ulimit -n)"
        ));
        return r;
    }
    let before = settled_rss(cfg, &mut r, "before");
    let cpu = CpuMeter::start(cfg.broker_pid);
    let mut conns = Vec::with_capacity(n);
    let t0 = Instant::now();
    let mut last_print = Instant::now();
    for i in 0..n {
        match Conn::connect(&cfg.uri, &format!("loadgen-idle-{i}")).and_then(|mut c| {
            c.open_channel(1)?;
            Ok(c)
        }) {
            Ok(c) => conns.push(c),
            Err(e) => {
                r.error = Some(format!("connection {i} of {n}: {e}"));
                break;
            }
        }
        if !cfg.quiet && last_print.elapsed() >= Duration::from_secs(1) {
            eprintln!(
                "[{:>6.1}s] {} connections open",
                t0.elapsed().as_secs_f64(),
                i + 1
            );
            last_print = Instant::now();
        }
    }
    let open_s = t0.elapsed().as_secs_f64();
    let opened = conns.len();
    r.push("connections opened", opened as f64, "conn", Better::Neither);
    r.push(
        "connection open rate",
        opened as f64 / open_s.max(1e-9),
        "conn/s",
        Better::Higher,
    );
    let after = settled_rss(cfg, &mut r, "after opening");
    push_delta(&mut r, "connection", before, after, opened);
    let t1 = Instant::now();
    for c in conns {
        c.close();
    }
    r.push(
        "connection close rate",
        opened as f64 / t1.elapsed().as_secs_f64().max(1e-9),
        "conn/s",
        Better::Higher,
    );
    let usage = cpu.stop();
    if let Some(b) = usage.broker_cpu_s {
        r.push("broker CPU", b, "s", Better::Lower);
    }
    r.push("loadgen CPU", usage.loadgen_cpu_s, "s", Better::Neither);
    r
}

/// Sends `n` copies of a method (built by `make(i)`) on channel 1 with at
/// most `PIPELINE` outstanding, checking each reply's name.
fn pipelined(
    conn: &mut Conn,
    n: usize,
    reply: &str,
    quiet: bool,
    label: &str,
    mut make: impl FnMut(usize) -> Result<Method, Error>,
) -> Result<usize, Error> {
    let (mut sent, mut done) = (0usize, 0usize);
    let t0 = Instant::now();
    let mut last_print = Instant::now();
    while done < n {
        while sent < n && sent - done < PIPELINE {
            let m = make(sent)?;
            conn.send(1, m);
            sent += 1;
        }
        conn.flush()?;
        let m = conn.read_method(1)?;
        if m.name() != reply {
            return Err(Error(format!("expected {reply}, got {}", m.name())));
        }
        done += 1;
        if !quiet && last_print.elapsed() >= Duration::from_secs(1) {
            eprintln!(
                "[{:>6.1}s] {done} queues {label}",
                t0.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
    }
    Ok(done)
}

fn queue_name(cfg: &Config, i: usize) -> Result<ShortStr, Error> {
    ShortStr::try_from_string(format!("{}-idle-{i}", cfg.queue_prefix))
        .ok_or_else(|| Error("queue name too long".into()))
}

/// Declares `cfg.queues` idle queues on one channel, then deletes them.
pub fn run_queues(cfg: &Config) -> Report {
    let n = cfg.queues;
    let name = cfg.scenario.clone().unwrap_or_else(|| "queues".into());
    let mut r = Report::new(
        &name,
        &cfg.uri.to_string(),
        &format!(
            "mode queues, {n} {} queues, declared {PIPELINE} in flight on one channel",
            if cfg.persistent {
                "durable"
            } else {
                "non-durable"
            }
        ),
    );
    no_pid_note(&mut r, cfg);
    let mut conn = match Conn::connect(&cfg.uri, "loadgen-queues").and_then(|mut c| {
        c.open_channel(1)?;
        Ok(c)
    }) {
        Ok(c) => c,
        Err(e) => {
            r.error = Some(format!("connect: {e}"));
            return r;
        }
    };
    let before = settled_rss(cfg, &mut r, "before");
    let cpu = CpuMeter::start(cfg.broker_pid);
    let t0 = Instant::now();
    let declared = pipelined(
        &mut conn,
        n,
        "queue.declare_ok",
        cfg.quiet,
        "declared",
        |i| {
            Ok(Method::QueueDeclare(QueueDeclare {
                queue: queue_name(cfg, i)?,
                durable: cfg.persistent,
                ..QueueDeclare::default()
            }))
        },
    );
    let declare_s = t0.elapsed().as_secs_f64();
    match declared {
        Ok(d) => {
            r.push("queues declared", d as f64, "queues", Better::Neither);
            r.push(
                "declare rate",
                d as f64 / declare_s.max(1e-9),
                "queues/s",
                Better::Higher,
            );
            let after = settled_rss(cfg, &mut r, "after declaring");
            push_delta(&mut r, "queue", before, after, d);
        }
        Err(e) => {
            r.error = Some(format!("declaring: {e}"));
        }
    }
    // Delete whatever may exist (also after a failed declare), on a fresh
    // connection if this one was closed by the broker.
    if r.error.is_some() {
        conn = match Conn::connect(&cfg.uri, "loadgen-queues-cleanup").and_then(|mut c| {
            c.open_channel(1)?;
            Ok(c)
        }) {
            Ok(c) => c,
            Err(e) => {
                r.notes.push(format!("cleanup: {e}"));
                return r;
            }
        };
    }
    let t1 = Instant::now();
    match pipelined(&mut conn, n, "queue.delete_ok", cfg.quiet, "deleted", |i| {
        Ok(Method::QueueDelete(QueueDelete {
            queue: queue_name(cfg, i)?,
            ..QueueDelete::default()
        }))
    }) {
        Ok(d) => r.push(
            "delete rate",
            d as f64 / t1.elapsed().as_secs_f64().max(1e-9),
            "queues/s",
            Better::Higher,
        ),
        Err(e) => r.notes.push(format!("cleanup: {e}")),
    }
    conn.close();
    let usage = cpu.stop();
    if let Some(b) = usage.broker_cpu_s {
        r.push("broker CPU", b, "s", Better::Lower);
    }
    r.push("loadgen CPU", usage.loadgen_cpu_s, "s", Better::Neither);
    r
}
