//! Resource alarms, as RabbitMQ's: when the broker's memory (RSS) goes above
//! the high watermark or the free disk under the data directory drops below
//! the limit, publishing connections are blocked — they get
//! `connection.blocked` (if the client advertises the capability) and the
//! broker stops reading from their sockets, so nothing is dropped and TCP
//! pushes back. `connection.unblocked` follows when every alarm has cleared.
//!
//! One monitor thread samples the process; shards only read two atomic
//! flags (no locks on the message path). The limits are atomics too, so the
//! admin endpoint can change them at run time (`warren ctl
//! set_disk_free_limit` / `set_vm_memory_high_watermark`, as rabbitmqctl's):
//! a change wakes the monitor, which re-samples at once.
//!
//! A shard's log that finds the disk full (a new segment cannot be
//! preallocated) raises the disk alarm too, whatever the limit, until it
//! has written again (`logs_out_of_space`, counted by the logs themselves).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How often the monitor samples memory and disk.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// Limits that raise an alarm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// RSS in bytes above which publishers are blocked (0: never).
    pub memory_high_watermark: u64,
    /// Free bytes on the data dir's file system below which publishers are blocked.
    pub disk_free_limit: u64,
}

/// The alarm state every shard reads, and the limits the monitor applies.
#[derive(Debug, Default)]
pub struct Alarms {
    memory: AtomicBool,
    disk: AtomicBool,
    memory_high_watermark: AtomicU64,
    disk_free_limit: AtomicU64,
    /// Bumped by every limit change (after the new limit is stored).
    limits_version: AtomicU64,
    /// The `limits_version` the last completed sample started from.
    sampled_version: AtomicU64,
    /// The monitor thread, woken when a limit changes.
    monitor: OnceLock<std::thread::Thread>,
    /// Shard logs waiting out a full disk (`storage::LogConfig::out_of_space`).
    logs_out_of_space: Arc<AtomicUsize>,
    /// Free disk space at the last sample, plus one (0: not known).
    disk_free: AtomicU64,
}

impl Alarms {
    /// Alarm state with these limits and no alarm raised yet.
    pub fn new(limits: &Limits) -> Alarms {
        let alarms = Alarms::default();
        alarms
            .memory_high_watermark
            .store(limits.memory_high_watermark, Ordering::Relaxed);
        alarms
            .disk_free_limit
            .store(limits.disk_free_limit, Ordering::Relaxed);
        alarms
    }

    pub fn active(&self) -> bool {
        self.memory.load(Ordering::Relaxed) || self.disk()
    }

    /// The disk alarm: free space under the limit, or a log out of space.
    pub fn disk(&self) -> bool {
        self.disk.load(Ordering::Relaxed) || self.logs_out_of_space.load(Ordering::Relaxed) > 0
    }

    /// The counter every shard's log raises while it waits out a full disk.
    pub fn log_space_counter(&self) -> Arc<AtomicUsize> {
        self.logs_out_of_space.clone()
    }

    pub fn reason(&self) -> &'static str {
        match (self.memory.load(Ordering::Relaxed), self.disk()) {
            (true, true) => "low on memory and disk",
            (true, false) => "low on memory",
            (false, true) => "low on disk",
            (false, false) => "",
        }
    }

    /// Free disk space of the data directory at the monitor's last sample.
    pub fn disk_free(&self) -> Option<u64> {
        self.disk_free.load(Ordering::Relaxed).checked_sub(1)
    }

    /// The limits in force now.
    pub fn limits(&self) -> Limits {
        Limits {
            memory_high_watermark: self.memory_high_watermark.load(Ordering::Relaxed),
            disk_free_limit: self.disk_free_limit.load(Ordering::Relaxed),
        }
    }

    /// Changes the free-disk limit (bytes; 0: never) and wakes the monitor.
    /// Returns a ticket for [`Alarms::applied`].
    pub fn set_disk_free_limit(&self, bytes: u64) -> u64 {
        self.disk_free_limit.store(bytes, Ordering::Relaxed);
        self.limits_changed()
    }

    /// Changes the memory high watermark (bytes of RSS; 0: never) and wakes
    /// the monitor. Returns a ticket for [`Alarms::applied`].
    pub fn set_memory_high_watermark(&self, bytes: u64) -> u64 {
        self.memory_high_watermark.store(bytes, Ordering::Relaxed);
        self.limits_changed()
    }

    fn limits_changed(&self) -> u64 {
        // Release: a sample that reads this version (Acquire) sees the limit
        // stored above.
        let ticket = self.limits_version.fetch_add(1, Ordering::Release) + 1;
        if let Some(monitor) = self.monitor.get() {
            monitor.unpark();
        }
        ticket
    }

    /// True once a sample taken with the limits of `ticket` (or newer) has
    /// completed, i.e. the alarm flags reflect that change.
    pub fn applied(&self, ticket: u64) -> bool {
        self.sampled_version.load(Ordering::Acquire) >= ticket
    }
}

/// Starts the monitor thread; it runs for the life of the process.
pub fn start_monitor(limits: Limits, data_dir: PathBuf) -> Arc<Alarms> {
    let alarms = Arc::new(Alarms::new(&limits));
    sample(&alarms, &data_dir);
    let shared = alarms.clone();
    let handle = std::thread::Builder::new()
        .name("alarm-monitor".into())
        .spawn(move || loop {
            sample(&shared, &data_dir);
            // A limit change unparks us (an unpark that comes before the
            // park makes it return at once, so none is lost).
            std::thread::park_timeout(SAMPLE_EVERY);
        })
        .expect("spawn the alarm monitor");
    let _ = alarms.monitor.set(handle.thread().clone());
    alarms
}

fn sample(alarms: &Alarms, data_dir: &Path) {
    let version = alarms.limits_version.load(Ordering::Acquire);
    let limits = alarms.limits();
    let memory = limits.memory_high_watermark > 0
        && rss_bytes().is_some_and(|rss| rss > limits.memory_high_watermark);
    let free = free_disk_bytes(data_dir);
    alarms
        .disk_free
        .store(free.map_or(0, |f| f.saturating_add(1)), Ordering::Relaxed);
    let disk = limits.disk_free_limit > 0 && free.is_some_and(|free| free < limits.disk_free_limit);
    set(&alarms.memory, memory, "memory");
    set(&alarms.disk, disk, "disk");
    alarms.sampled_version.fetch_max(version, Ordering::Release);
}

fn set(flag: &AtomicBool, on: bool, what: &str) {
    if flag.swap(on, Ordering::Relaxed) != on {
        if on {
            tracing::warn!("{what} alarm set: publishers are blocked");
        } else {
            tracing::info!("{what} alarm cleared");
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

/// A memory high watermark: bytes, or a fraction (with a '.', 0.0..=1.0) of
/// the machine's memory. Shared by `--memory-high-watermark` and
/// `warren ctl set_vm_memory_high_watermark`.
pub fn parse_watermark(v: &str) -> Option<u64> {
    if v.contains('.') {
        let f: f64 = v.parse().ok()?;
        if !(0.0..=1.0).contains(&f) {
            return None;
        }
        let total = total_memory_bytes().unwrap_or(0);
        Some((total as f64 * f) as u64)
    } else {
        v.parse().ok()
    }
}

/// A free-disk limit in bytes. Shared by `--disk-free-limit` and
/// `warren ctl set_disk_free_limit`.
pub fn parse_disk_free_limit(v: &str) -> Option<u64> {
    v.parse().ok()
}

/// Total physical memory (for the default watermark).
pub fn total_memory_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

pub fn free_disk_bytes(path: &Path) -> Option<u64> {
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
    use std::time::Instant;

    fn limits(memory_high_watermark: u64, disk_free_limit: u64) -> Limits {
        Limits {
            memory_high_watermark,
            disk_free_limit,
        }
    }

    #[test]
    fn tiny_watermark_raises_memory_alarm_and_zero_disables_it() {
        let alarms = Alarms::new(&limits(1, 0));
        let dir = std::env::temp_dir();
        sample(&alarms, &dir);
        assert!(alarms.active());
        assert_eq!(alarms.reason(), "low on memory");
        alarms.set_memory_high_watermark(0);
        sample(&alarms, &dir);
        assert!(!alarms.active());
    }

    #[test]
    fn a_log_out_of_space_raises_the_disk_alarm() {
        let alarms = Alarms::new(&limits(0, 0));
        sample(&alarms, &std::env::temp_dir());
        assert!(!alarms.active());
        let counter = alarms.log_space_counter();
        counter.fetch_add(1, Ordering::SeqCst);
        assert!(alarms.active() && alarms.disk());
        assert_eq!(alarms.reason(), "low on disk");
        counter.fetch_sub(1, Ordering::SeqCst);
        assert!(!alarms.active());
    }

    #[test]
    fn huge_disk_limit_raises_disk_alarm() {
        let alarms = Alarms::new(&limits(0, u64::MAX));
        sample(&alarms, &std::env::temp_dir());
        assert_eq!(alarms.reason(), "low on disk");
    }

    #[test]
    fn a_sample_applies_the_limits_changed_before_it() {
        let alarms = Alarms::new(&limits(0, 0));
        let ticket = alarms.set_disk_free_limit(u64::MAX);
        assert_eq!(alarms.limits(), limits(0, u64::MAX));
        assert!(!alarms.applied(ticket));
        sample(&alarms, &std::env::temp_dir());
        assert!(alarms.applied(ticket));
        assert_eq!(alarms.reason(), "low on disk");
        let ticket = alarms.set_memory_high_watermark(1);
        assert!(ticket > 1 && !alarms.applied(ticket));
        sample(&alarms, &std::env::temp_dir());
        assert_eq!(alarms.reason(), "low on memory and disk");
    }

    /// Waits (bounded) until the monitor has sampled with `ticket`'s limits.
    fn wait_applied(alarms: &Alarms, ticket: u64) -> Duration {
        let start = Instant::now();
        while !alarms.applied(ticket) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the monitor never re-sampled"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        start.elapsed()
    }

    #[test]
    fn the_monitor_resamples_when_a_limit_changes() {
        let alarms = start_monitor(limits(0, u64::MAX), std::env::temp_dir());
        assert_eq!(alarms.reason(), "low on disk", "sampled before returning");
        // Let the monitor sample once and go back to sleep (~200 ms left of
        // its period), so only a wake-up makes it re-sample well before that.
        std::thread::sleep(Duration::from_millis(50));
        let took = wait_applied(&alarms, alarms.set_disk_free_limit(1));
        assert!(!alarms.active(), "disk alarm cleared");
        assert!(
            took < Duration::from_millis(150),
            "woken at once, not after {took:?}"
        );
        wait_applied(&alarms, alarms.set_memory_high_watermark(1));
        assert_eq!(alarms.reason(), "low on memory");
        wait_applied(&alarms, alarms.set_memory_high_watermark(u64::MAX));
        assert!(!alarms.active());
    }
}
