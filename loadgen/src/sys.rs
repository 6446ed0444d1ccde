//! Process accounting: loadgen's own CPU time (getrusage), a broker's CPU
//! time and resident memory from /proc/PID/{stat,status}, the shared
//! monotonic clock that message timestamps use, and the fd limit. The
//! parsers are pure functions; the readers are thin wrappers around them.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process's clock epoch (CLOCK_MONOTONIC via
/// `Instant`). Producers and consumers live in one process, so a timestamp
/// written by one is comparable with `now_ns()` in another.
#[inline]
pub fn now_ns() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    epoch.elapsed().as_nanos() as u64
}

/// This process's user + system CPU seconds so far.
pub fn self_cpu_s() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime (in clock ticks) from the text of /proc/PID/stat. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last ')'.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // After the name: state(3) ppid pgrp session tty tpgid flags minflt
    // cminflt majflt cmajflt utime(14) stime(15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// VmRSS in bytes from the text of /proc/PID/status.
pub fn parse_status_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let kb: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => kb.checked_mul(1024),
        _ => None,
    }
}

/// A process's CPU seconds (user + system), if /proc says.
pub fn pid_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(parse_stat_cpu_ticks(&stat)? as f64 / clock_ticks_per_s())
}

/// A process's resident set size in bytes, if /proc says.
pub fn pid_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_rss_bytes(&status)
}

/// Socket inodes of TCP sockets listening on `port`, from the text of
/// /proc/net/tcp or /proc/net/tcp6 (state 0A is LISTEN).
pub fn parse_listen_inodes(net_tcp: &str, port: u16) -> Vec<u64> {
    net_tcp
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
            let p = u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()?;
            (p == port && *state == "0A").then(|| inode.parse().ok())?
        })
        .filter(|&i| i != 0)
        .collect()
}

/// The id of the process that holds a socket listening on TCP `port`
/// (found through /proc/net/tcp* and /proc/*/fd; needs the rights to read
/// that process's fds). For brokers loadgen did not start, such as a
/// restarted RabbitMQ whose pid is unknown until it listens.
pub fn listener_pid(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(t) = std::fs::read_to_string(f) {
            inodes.extend(parse_listen_inodes(&t, port));
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if wanted.iter().any(|w| target.as_os_str() == w.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// Raises the soft open-files limit to the hard limit (idle-connection
/// runs open thousands of sockets). Returns the resulting soft limit.
pub fn raise_nofile_limit() -> u64 {
    // SAFETY: get/setrlimit read and write the struct we own.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 0;
        }
        if rl.rlim_cur < rl.rlim_max {
            let want = libc::rlimit {
                rlim_cur: rl.rlim_max,
                rlim_max: rl.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur as u64;
            }
        }
        rl.rlim_cur as u64
    }
}

/// CPU accounting over one measured interval.
pub struct CpuMeter {
    start_wall: Instant,
    start_self: f64,
    broker_pid: Option<u32>,
    start_broker: Option<f64>,
}

/// What a `CpuMeter` measured.
#[derive(Clone, Copy, Debug)]
pub struct CpuUsage {
    pub wall_s: f64,
    pub loadgen_cpu_s: f64,
    pub broker_cpu_s: Option<f64>,
}

impl CpuMeter {
    pub fn start(broker_pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            start_wall: Instant::now(),
            start_self: self_cpu_s(),
            broker_pid,
            start_broker: broker_pid.and_then(pid_cpu_s),
        }
    }

    pub fn stop(&self) -> CpuUsage {
        let broker_cpu_s = match (self.broker_pid, self.start_broker) {
            (Some(pid), Some(start)) => pid_cpu_s(pid).map(|end| (end - start).max(0.0)),
            _ => None,
        };
        CpuUsage {
            wall_s: self.start_wall.elapsed().as_secs_f64(),
            loadgen_cpu_s: (self_cpu_s() - self.start_self).max(0.0),
            broker_cpu_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_ticks() {
        let stat = "1234 (beam.smp) S 1 1234 1234 0 -1 4194560 5000 0 0 0 \
                    250 75 0 0 20 0 30 0 100 2000000 5000 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(325));
        // A command name with spaces and a ')' inside.
        let stat = "9 (we ird) name) R 1 9 9 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(10));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_rss() {
        let status = "Name:\twarren\nVmPeak:\t  900 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_status_rss_bytes(status), Some(12345 * 1024));
        assert_eq!(parse_status_rss_bytes("Name: x\n"), None);
        assert_eq!(parse_status_rss_bytes("VmRSS: lots kB\n"), None);
        assert_eq!(parse_status_rss_bytes("VmRSS: 5 MB\n"), None);
    }

    #[test]
    fn listen_inodes() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1628 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0
   1: 0100007F:1628 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0 20 4 30 10 -1
   2: 00000000:1629 00000000:0000 0A 00000000:00000000 00:00000000 00000000   107        0 99 1 0 100 0 0 10 0
";
        assert_eq!(
            parse_listen_inodes(t, 5672),
            vec![4242],
            "only the listener"
        );
        assert_eq!(parse_listen_inodes(t, 5673), vec![99]);
        assert!(parse_listen_inodes(t, 1).is_empty());
        assert!(parse_listen_inodes("header\ngarbage line\n", 5672).is_empty());
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(pid_rss_bytes(pid).unwrap() > 0);
        assert!(pid_cpu_s(pid).is_some());
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
    }
}
