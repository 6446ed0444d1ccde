//! `/api/nodes` and `/api/nodes/{name}`: the one node, with the fields of
//! RabbitMQ's node object that Warren has figures for — memory (RSS and
//! the high watermark), free disk under the data directory and its limit,
//! the alarms, file descriptors (open and the soft limit), sockets (client
//! connections) against the descriptor limit, uptime, processors, the OS
//! pid. Erlang's process count has no counterpart: `proc_used` is the
//! broker's OS threads (its shards, the management thread, …) and
//! `proc_total` the most it may have (`RLIMIT_NPROC`, else the kernel's
//! `threads-max`), so `check_rabbitmq_server` reads a real bound. Erlang's
//! other figures (run queue, GC, reductions, …) are left out rather than
//! made up.

use super::api::Node;
use super::bridge::View;
use crate::shard::alarms::{self, Alarms};
use serde_json::{json, Value};

/// The node as `/api/nodes` lists it.
pub fn node_json(node: &Node, alarms: &Alarms, view: &View) -> Value {
    let limits = alarms.limits();
    let reason = alarms.reason();
    let sockets: usize = view.snapshots.iter().map(|s| s.connections.len()).sum();
    let mut v = json!({
        "name": node.name,
        "type": "disc",
        "running": true,
        // Warren has no maintenance mode.
        "being_drained": false,
        "mem_limit": limits.memory_high_watermark,
        "mem_alarm": reason.contains("memory"),
        "disk_free_limit": limits.disk_free_limit,
        "disk_free_alarm": reason.contains("disk"),
        "sockets_used": sockets,
        "uptime": node.started.elapsed().as_millis() as u64,
        "os_pid": std::process::id().to_string(),
        "partitions": [],
        "rates_mode": "none",
        "exchange_types": super::api::exchange_types(),
    });
    if let Some(rss) = alarms::rss_bytes() {
        v["mem_used"] = json!(rss);
    }
    if let Some(free) = alarms::free_disk_bytes(&node.data_dir) {
        v["disk_free"] = json!(free);
    }
    if let Some(n) = open_fds() {
        v["fd_used"] = json!(n);
    }
    if let Some(n) = fd_limit() {
        v["fd_total"] = json!(n);
        // Each socket takes a descriptor; Warren sets no lower bound.
        v["sockets_total"] = json!(n);
    }
    if let Some(n) = threads() {
        v["proc_used"] = json!(n);
    }
    if let Some(n) = thread_limit() {
        v["proc_total"] = json!(n);
    }
    if let Ok(n) = std::thread::available_parallelism() {
        v["processors"] = json!(n.get());
    }
    v
}

/// Descriptors the process has open.
fn open_fds() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

/// The soft limit on open descriptors.
fn fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0).then_some(limit.rlim_cur)
}

/// The process's OS threads (`Threads:` of `/proc/self/status`).
fn threads() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// The most threads the process may have: the soft `RLIMIT_NPROC` (it
/// counts the user's threads), else, unlimited, the kernel's
/// `threads-max`.
fn thread_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut limit) };
    if rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY {
        return Some(limit.rlim_cur);
    }
    std::fs::read_to_string("/proc/sys/kernel/threads-max")
        .ok()?
        .trim()
        .parse()
        .ok()
}
