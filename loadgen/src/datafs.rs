//! Which filesystem a broker keeps its data on, so a persistent run can say
//! it and refuse tmpfs (a "persistent" figure from RAM is not a disk
//! figure). From `--data-dir` (its mount in /proc/self/mountinfo), or else
//! from the regular files `--broker-pid` has open (/proc/PID/fd, mapped
//! through /proc/PID/mountinfo: both Warren's log segments and RabbitMQ's
//! message store are held open). The parsers are pure functions.

use std::path::Path;

use crate::cli::Config;

/// Filesystems that keep data in memory only.
const MEMORY_FS: &[&str] = &["tmpfs", "ramfs"];
/// At most this many open descriptors are looked at (bounded work).
const MAX_FDS: usize = 100_000;

/// One line of /proc/PID/mountinfo, the fields that matter here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub point: String,
    pub fstype: String,
    pub source: String,
}

/// Unescapes the octal escapes (`\040` for a space …) of a mountinfo path.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses /proc/PID/mountinfo: `id parent maj:min root point opts
/// [optional…] - fstype source superopts` per line; bad lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            let point = fields.get(4)?;
            Some(Mount {
                point: unescape(point),
                fstype: fields.get(sep + 1)?.to_string(),
                source: unescape(fields.get(sep + 2)?),
            })
        })
        .collect()
}

/// The mount holding `path` (absolute): the longest mount point that is
/// `path` or a directory above it; the last such mount wins (it is on top).
pub fn mount_of<'a>(mounts: &'a [Mount], path: &str) -> Option<&'a Mount> {
    let mut best: Option<&Mount> = None;
    for m in mounts {
        let p = m.point.trim_end_matches('/');
        let under = path == p || path.starts_with(&format!("{p}/")) || p.is_empty();
        if under && best.is_none_or(|b| p.len() >= b.point.trim_end_matches('/').len()) {
            best = Some(m);
        }
    }
    best
}

/// What a run found out about the broker's data filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataFs {
    /// Distinct "fstype (source)" of the data, in the order found.
    pub kinds: Vec<String>,
    /// Whether any of them keeps data in memory only.
    pub in_memory: bool,
    /// How it was found.
    pub how: String,
}

impl DataFs {
    fn from_mounts<'a>(found: impl Iterator<Item = &'a Mount>, how: String) -> Option<DataFs> {
        let mut kinds = Vec::new();
        let mut in_memory = false;
        for m in found {
            in_memory |= MEMORY_FS.contains(&m.fstype.as_str());
            let k = format!("{} ({})", m.fstype, m.source);
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        (!kinds.is_empty()).then_some(DataFs {
            kinds,
            in_memory,
            how,
        })
    }

    /// One line for a report's notes.
    pub fn note(&self) -> String {
        format!("broker data on {} ({})", self.kinds.join(", "), self.how)
    }
}

/// The filesystem of a directory on this machine.
pub fn of_dir(dir: &Path) -> Result<DataFs, String> {
    let canon = dir
        .canonicalize()
        .map_err(|e| format!("--data-dir {}: {e}", dir.display()))?;
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    let mounts = parse_mountinfo(&text);
    let path = canon.to_string_lossy();
    DataFs::from_mounts(
        mount_of(&mounts, &path).into_iter(),
        format!("--data-dir {path}"),
    )
    .ok_or_else(|| format!("no mount holds {path}"))
}

/// Whether an open file's link target names a file worth counting: an
/// absolute path (not a socket, pipe or anon inode), not deleted, not a
/// device or kernel file.
pub fn is_data_path(target: &str) -> bool {
    target.starts_with('/')
        && !target.ends_with(" (deleted)")
        && !["/dev/", "/proc/", "/sys/", "/run/"]
            .iter()
            .any(|p| target.starts_with(p))
}

/// The filesystems of the regular files process `pid` has open, stdio
/// excepted.
pub fn of_pid(pid: u32) -> Result<DataFs, String> {
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?;
    let text = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .map_err(|e| format!("/proc/{pid}/mountinfo: {e}"))?;
    let mounts = parse_mountinfo(&text);
    let mut found = Vec::new();
    for e in entries.take(MAX_FDS).flatten() {
        // stdin, stdout and stderr are where the broker was started from
        // (a log file, say), not its data.
        if matches!(e.file_name().to_str(), Some("0" | "1" | "2")) {
            continue;
        }
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        // metadata() follows the fd link to the open file itself.
        let regular = std::fs::metadata(e.path()).is_ok_and(|m| m.is_file());
        if regular && is_data_path(&target) {
            if let Some(m) = mount_of(&mounts, &target) {
                found.push(m.clone());
            }
        }
    }
    DataFs::from_mounts(found.iter(), format!("files open in pid {pid}"))
        .ok_or_else(|| format!("pid {pid} has no regular file open"))
}

/// For a persistent run: the note to put in its report, or why it must not
/// run (the broker's data is on tmpfs). `Ok(None)` for a transient run;
/// `Ok(Some("… unknown …"))` when neither `--data-dir` nor `--broker-pid`
/// tells.
pub fn check(cfg: &Config) -> Result<Option<String>, String> {
    if !cfg.is_persistent() {
        return Ok(None);
    }
    let found = match (&cfg.data_dir, cfg.broker_pid) {
        (Some(d), _) => of_dir(d),
        (None, Some(pid)) => of_pid(pid),
        (None, None) => {
            return Ok(Some(
                "broker data filesystem unknown (give --data-dir or --broker-pid)".into(),
            ))
        }
    };
    match found {
        Ok(fs) if fs.in_memory => Err(format!(
            "refusing a persistent run: {}; a figure from memory is not a disk figure \
             (put the broker's data directory on a disk)",
            fs.note()
        )),
        Ok(fs) => Ok(Some(fs.note())),
        Err(e) => Ok(Some(format!("broker data filesystem unknown: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
23 22 0:21 / /proc rw,nosuid - proc proc rw
24 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw
30 22 0:27 / /tmp rw,nosuid,nodev shared:9 - tmpfs tmpfs rw,size=1024k
31 30 0:28 / /tmp/disk\\040dir rw master:3 - xfs /dev/vdb rw
bad line without separator
";

    #[test]
    fn parses_mountinfo_with_optional_fields_and_escapes() {
        let m = parse_mountinfo(INFO);
        assert_eq!(m.len(), 5);
        assert_eq!(
            m[0],
            Mount {
                point: "/".into(),
                fstype: "ext4".into(),
                source: "/dev/vda".into()
            }
        );
        assert_eq!(m[3].fstype, "tmpfs");
        assert_eq!(m[4].point, "/tmp/disk dir");
        assert_eq!(m[4].fstype, "xfs");
    }

    #[test]
    fn longest_mount_point_holds_the_path() {
        let m = parse_mountinfo(INFO);
        let fs = |p: &str| mount_of(&m, p).map(|m| m.fstype.as_str());
        assert_eq!(fs("/var/lib/rabbitmq/mnesia/x.rdq"), Some("ext4"));
        assert_eq!(fs("/tmp/warren-bench.1/warren-data/seg-0"), Some("tmpfs"));
        assert_eq!(fs("/tmp"), Some("tmpfs"));
        assert_eq!(
            fs("/tmpfoo/x"),
            Some("ext4"),
            "a prefix that is not a directory"
        );
        assert_eq!(fs("/tmp/disk dir/log"), Some("xfs"));
    }

    #[test]
    fn only_real_files_count_as_data() {
        assert!(is_data_path("/var/lib/warren/00000001.seg"));
        assert!(!is_data_path("socket:[1234]"));
        assert!(!is_data_path("anon_inode:[eventfd]"));
        assert!(!is_data_path("/dev/null"));
        assert!(!is_data_path("/tmp/x (deleted)"));
    }

    #[test]
    fn memory_filesystems_are_flagged() {
        let m = parse_mountinfo(INFO);
        let tmp = DataFs::from_mounts([&m[0], &m[3], &m[0]].into_iter(), "test".into()).unwrap();
        assert!(tmp.in_memory);
        assert_eq!(tmp.kinds, vec!["ext4 (/dev/vda)", "tmpfs (tmpfs)"]);
        let disk = DataFs::from_mounts([&m[0]].into_iter(), "test".into()).unwrap();
        assert!(!disk.in_memory);
        assert_eq!(disk.note(), "broker data on ext4 (/dev/vda) (test)");
        assert!(DataFs::from_mounts(std::iter::empty(), "test".into()).is_none());
    }

    #[test]
    fn a_directory_here_has_a_filesystem() {
        let fs = of_dir(Path::new("/")).unwrap();
        assert_eq!(fs.kinds.len(), 1);
        assert!(of_dir(Path::new("/no/such/dir/here")).is_err());
    }

    #[test]
    fn transient_runs_are_not_checked_and_unknown_is_said() {
        let cfg = Config::default();
        assert_eq!(check(&cfg), Ok(None));
        let cfg = Config {
            persistent: true,
            ..Config::default()
        };
        assert!(check(&cfg).unwrap().unwrap().contains("unknown"));
    }
}
