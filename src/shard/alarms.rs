//! Resource alarms, as RabbitMQ's: when the broker's memory (RSS) goes above
//! the high watermark or the free disk under the data directory drops below
//! the limit, publishing connections are blocked — they get
//! `connection.blocked` (if the client advertises the capability) and the
//! broker stops reading from their sockets, so nothing is dropped and TCP
//! pushes back. `connection.unblocked` follows when every alarm has cleared.
//!
//! One monitor thread samples the process; shards only read two atomic
//! flags (no locks on the message path).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the monitor samples memory and disk.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// Limits that raise an alarm.
#[derive(Clone, Debug)]
pub struct Limits {
    /// RSS in bytes above which publishers are blocked (0: never).
    pub memory_high_watermark: u64,
    /// Free bytes on the data dir's file system below which publishers are blocked.
    pub disk_free_limit: u64,
}

/// The alarm state every shard reads.
#[derive(Debug, Default)]
pub struct Alarms {
    memory: AtomicBool,
    disk: AtomicBool,
}

impl Alarms {
    pub fn active(&self) -> bool {
        self.memory.load(Ordering::Relaxed) || self.disk.load(Ordering::Relaxed)
    }

    pub fn reason(&self) -> &'static str {
        match (
            self.memory.load(Ordering::Relaxed),
            self.disk.load(Ordering::Relaxed),
        ) {
            (true, true) => "low on memory and disk",
            (true, false) => "low on memory",
            (false, true) => "low on disk",
            (false, false) => "",
        }
    }
}

/// Starts the monitor thread; it runs for the life of the process.
pub fn start_monitor(limits: Limits, data_dir: PathBuf) -> Arc<Alarms> {
    let alarms = Arc::new(Alarms::default());
    sample(&alarms, &limits, &data_dir);
    let shared = alarms.clone();
    std::thread::Builder::new()
        .name("alarm-monitor".into())
        .spawn(move || loop {
            sample(&shared, &limits, &data_dir);
            std::thread::sleep(SAMPLE_EVERY);
        })
        .expect("spawn the alarm monitor");
    alarms
}

fn sample(alarms: &Alarms, limits: &Limits, data_dir: &Path) {
    let memory = limits.memory_high_watermark > 0
        && rss_bytes().is_some_and(|rss| rss > limits.memory_high_watermark);
    let disk = limits.disk_free_limit > 0
        && free_disk_bytes(data_dir).is_some_and(|free| free < limits.disk_free_limit);
    set(&alarms.memory, memory, "memory");
    set(&alarms.disk, disk, "disk");
}

fn set(flag: &AtomicBool, on: bool, what: &str) {
    if flag.swap(on, Ordering::Relaxed) != on {
        if on {
            eprintln!("warren: {what} alarm set: publishers are blocked");
        } else {
            eprintln!("warren: {what} alarm cleared");
        }
    }
}

/// The process's resident set size.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page.max(4096) as u64)
}

/// Total physical memory (for the default watermark).
pub fn total_memory_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn free_disk_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_watermark_raises_memory_alarm_and_zero_disables_it() {
        let alarms = Alarms::default();
        let dir = std::env::temp_dir();
        sample(
            &alarms,
            &Limits {
                memory_high_watermark: 1,
                disk_free_limit: 0,
            },
            &dir,
        );
        assert!(alarms.active());
        assert_eq!(alarms.reason(), "low on memory");
        sample(
            &alarms,
            &Limits {
                memory_high_watermark: 0,
                disk_free_limit: 0,
            },
            &dir,
        );
        assert!(!alarms.active());
    }

    #[test]
    fn huge_disk_limit_raises_disk_alarm() {
        let alarms = Alarms::default();
        sample(
            &alarms,
            &Limits {
                memory_high_watermark: 0,
                disk_free_limit: u64::MAX,
            },
            &std::env::temp_dir(),
        );
        assert_eq!(alarms.reason(), "low on disk");
    }
}
