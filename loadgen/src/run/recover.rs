//! The recover-wait run (step 2 of a restart test): times until the
//! restarted broker accepts connections and until its queue reports every
//! message ready, measures its RSS, then drains.

use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use super::backlog::drain_backlog;
use super::monitor::Monitor;
use super::setup::{connect_admin, queue_depth, teardown};
use super::shared::Shared;
use super::summary::{push_cpu, push_rss, settings};
use crate::cli::Config;
use crate::report::{Better, Report};
use crate::sys::CpuMeter;
use crate::topology::Topology;

/// Longest recover-wait waits for the broker and then for its messages.
const RECOVER_MAX: Duration = Duration::from_secs(900);
/// Polling interval while waiting for a restarting broker.
const RECOVER_POLL: Duration = Duration::from_millis(5);

/// Seconds since `since_unix_ns` (or since `fallback` when not given).
fn elapsed_since(since_unix_ns: Option<u64>, fallback: Instant) -> f64 {
    match since_unix_ns {
        Some(t0) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            now.saturating_sub(t0) as f64 / 1e9
        }
        None => fallback.elapsed().as_secs_f64(),
    }
}

/// Step 2 of a restart test, started right after the broker process:
/// times until the broker completes an AMQP handshake and until a passive
/// declare reports `expect` ready messages, measures the broker's RSS, then
/// drains the queue and deletes it.
pub fn run_recover_wait(cfg: &Config) -> Report {
    let name = cfg
        .scenario
        .clone()
        .unwrap_or_else(|| "recover-wait".into());
    let mut r = Report::new(&name, &cfg.uri.to_string(), &settings(cfg));
    let began = Instant::now();
    let topo = Topology::new(cfg);
    let queue = topo.queues[0].clone();
    let mut last_err = String::new();
    let first = loop {
        match connect_admin(cfg) {
            Ok(c) => break Some(c),
            Err(e) => last_err = e.to_string(),
        }
        if began.elapsed() >= RECOVER_MAX {
            break None;
        }
        thread::sleep(RECOVER_POLL);
    };
    let Some(mut conn) = first else {
        r.error = Some(format!(
            "broker not accepting connections after {} s: {last_err}",
            RECOVER_MAX.as_secs()
        ));
        return r;
    };
    r.push(
        "time to accept connections",
        elapsed_since(cfg.since_unix_ns, began),
        "s",
        Better::Lower,
    );
    // Poll the queue; a refused passive declare (queue not recovered yet)
    // closes the channel, so start over on a fresh connection.
    let mut depth = 0u64;
    let mut channel_open = false;
    loop {
        let polled = (|| {
            if !channel_open {
                conn.open_channel(1)?;
                channel_open = true;
            }
            queue_depth(&mut conn, &queue).map(u64::from)
        })();
        match polled {
            Ok(d) => {
                depth = d;
                if d >= cfg.expect {
                    break;
                }
            }
            Err(e) => {
                last_err = e.to_string();
                conn.close();
                channel_open = false;
                match connect_admin(cfg) {
                    Ok(c) => conn = c,
                    Err(e) => {
                        r.error = Some(format!("reconnecting while polling the queue: {e}"));
                        return r;
                    }
                }
            }
        }
        if began.elapsed() >= RECOVER_MAX {
            r.error = Some(format!(
                "{queue}: {depth} of {} messages ready after {} s (last error: {last_err})",
                cfg.expect,
                RECOVER_MAX.as_secs()
            ));
            return r;
        }
        thread::sleep(RECOVER_POLL);
    }
    r.push(
        "time to all messages ready",
        elapsed_since(cfg.since_unix_ns, began),
        "s",
        Better::Lower,
    );
    r.push("ready after restart", depth as f64, "msg", Better::Neither);
    if depth > cfg.expect {
        r.notes.push(format!(
            "{depth} messages ready, more than the {} expected",
            cfg.expect
        ));
    }
    let pid = cfg
        .broker_pid
        .or_else(|| crate::sys::listener_pid(cfg.uri.port));
    match pid.and_then(crate::sys::pid_rss_bytes) {
        Some(rss) => {
            push_rss(&mut r, "broker RSS after recovery", rss);
            r.push(
                "broker RSS after recovery per msg",
                rss as f64 / depth.max(1) as f64,
                "B",
                Better::Lower,
            );
        }
        None => r.notes.push(format!(
            "broker RSS not measured: no --broker-pid and no readable process listening on \
             port {}",
            cfg.uri.port
        )),
    }
    let shared = Shared::new();
    let cpu = CpuMeter::start(pid);
    let mut mon = Monitor::new(cfg.quiet);
    drain_backlog(cfg, &topo, &shared, &mut mon, 0, depth, &mut r);
    let usage = cpu.stop();
    let received = shared.received.load(Ordering::Relaxed);
    push_cpu(&mut r, &usage, received, pid);
    if let Err(e) = teardown(&mut conn, &topo) {
        r.notes.push(format!("teardown: {e}"));
    }
    conn.close();
    r.error = shared.first_error();
    r
}
