//! A full disk under the log: a confirm-mode publisher of persistent
//! messages fills a small ext4 file system (a loop-mounted image the test
//! makes in a temporary directory) that holds the broker's data dir.
//!
//! What must hold, with 1 and 2 shards: the broker raises its disk alarm
//! (publishers are blocked, as RabbitMQ's `disk_free_limit` does; here with
//! the limit off, so it is the log's ENOSPC that raises it) and holds the
//! publishes it could not write — none is nacked and none is confirmed
//! before it is on disk; once the test deletes the ballast file it made
//! before filling, the broker writes again by itself (no restart): every
//! held publish is confirmed and new ones are too; after a SIGKILL and a
//! restart on the same file system, recovery finds nothing torn or corrupt
//! and every confirmed message id is there, exactly once.
//!
//! Mounting needs root and loop devices: without them the test fails when
//! `CI=true` and is skipped otherwise, saying why.

mod common;

use common::*;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Confirmation};
use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Size of the file system image.
const IMAGE_BYTES: u64 = 64 << 20;

/// Segment size of the broker's log on it (a test knob; the default 64 MiB
/// would not fit twice).
const SEGMENT_BYTES: &str = "1048576";

/// Free space the ballast leaves for the publisher to fill.
const LEAVE_FREE: u64 = 12 << 20;

/// Message body size (about 16 KiB: the disk fills after a few hundred).
const BODY_BYTES: usize = 16 << 10;

/// Confirms outstanding at once.
const WINDOW: usize = 32;

/// A loop-mounted ext4 image in a temporary directory, unmounted (and its
/// loop device detached) when dropped, also when the test fails.
struct LoopFs {
    mount: PathBuf,
    mounted: bool,
    _dir: tempfile::TempDir,
}

impl LoopFs {
    /// Makes and mounts the image; Err says why it could not.
    fn mount(bytes: u64) -> Result<LoopFs, String> {
        let dir = temp_dir("warren-disk-full-");
        let image = dir.path().join("fs.img");
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).map_err(|e| format!("mkdir: {e}"))?;
        let file = std::fs::File::create(&image).map_err(|e| format!("image: {e}"))?;
        file.set_len(bytes)
            .map_err(|e| format!("image size: {e}"))?;
        drop(file);
        // No blocks reserved for root (the broker runs as root here, and
        // would otherwise write into them after `df` says 0).
        run("mkfs.ext4", &["-q", "-F", "-b", "4096", "-m", "0"], &image)?;
        // `-o loop` attaches a loop device that the unmount detaches.
        let out = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -o loop failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(LoopFs {
            mount,
            mounted: true,
            _dir: dir,
        })
    }

    fn path(&self) -> &Path {
        &self.mount
    }

    /// Bytes available to the broker on the file system.
    fn free(&self) -> u64 {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(self.mount.as_os_str().as_bytes()).expect("path");
        // SAFETY: statvfs writes into the zeroed struct we own.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
        assert_eq!(rc, 0, "statvfs {}", self.mount.display());
        st.f_bavail as u64 * st.f_frsize as u64
    }

    /// A file taking (allocated, not sparse) all but `leave` free bytes.
    fn ballast(&self, leave: u64) -> PathBuf {
        use std::os::unix::io::AsRawFd;
        let path = self.mount.join("ballast");
        let len = self.free().saturating_sub(leave);
        let file = std::fs::File::create(&path).expect("create the ballast");
        // SAFETY: fallocate on a file descriptor we own.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
        assert_eq!(rc, 0, "fallocate {len} bytes of ballast");
        file.sync_all().expect("sync the ballast");
        path
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        if !self.mounted {
            return;
        }
        // A process that just exited may hold its files a moment longer
        // (io_uring tears down in the background): try for a while.
        let deadline = Instant::now() + Duration::from_secs(10);
        let ok = loop {
            let ok = Command::new("umount")
                .arg(&self.mount)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok || Instant::now() > deadline {
                break ok;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if !ok {
            // Something still holds it (a broker that did not die yet):
            // detach lazily so the loop device goes when it is let go.
            let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        }
        self.mounted = false;
    }
}

fn run(program: &str, args: &[&str], path: &Path) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .arg(path)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Mounts a fresh file system, or says why not: a failure under `CI=true`
/// (CI runs as root with loop devices), a skip otherwise.
fn mount_or_skip() -> Option<LoopFs> {
    match LoopFs::mount(IMAGE_BYTES) {
        Ok(fs) => Some(fs),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("cannot mount a loop file system under CI: {why}")
        }
        Err(why) => {
            eprintln!("disk_full: skipped: cannot mount a loop file system ({why})");
            None
        }
    }
}

/// What the publisher saw.
#[derive(Default)]
struct Published {
    /// Message ids the broker acked.
    confirmed: Mutex<Vec<u64>>,
    /// Ids handed to the client so far.
    sent: AtomicU64,
    nacked: AtomicU64,
}

impl Published {
    fn confirmed(&self) -> usize {
        self.confirmed.lock().unwrap().len()
    }
}

/// Publishes persistent messages (message id `id`, to `queues[id % n]`)
/// with at most `WINDOW` confirms outstanding, from id `from` until `stop`
/// is reached or the channel fails.
async fn publisher(
    ch: lapin::Channel,
    queues: Vec<String>,
    from: u64,
    stop: Arc<AtomicU64>,
    out: Arc<Published>,
) {
    let mut window: VecDeque<(u64, lapin::PublisherConfirm)> = VecDeque::new();
    let settle = |id: u64, r: Result<Confirmation, lapin::Error>| match r {
        Ok(c) if c.is_ack() => out.confirmed.lock().unwrap().push(id),
        Ok(_) => {
            out.nacked.fetch_add(1, Ordering::SeqCst);
        }
        Err(e) => panic!("confirm of message {id}: {e}"),
    };
    let body = vec![b'x'; BODY_BYTES];
    let mut id = from;
    while id < stop.load(Ordering::SeqCst) {
        let q = &queues[(id % queues.len() as u64) as usize];
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(id.to_string().into());
        let c = ch
            .basic_publish(
                "".into(),
                q.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                props,
            )
            .await
            .unwrap_or_else(|e| panic!("publish {id}: {e}"));
        out.sent.store(id + 1, Ordering::SeqCst);
        window.push_back((id, c));
        id += 1;
        if window.len() >= WINDOW {
            let (id, c) = window.pop_front().expect("non-empty window");
            settle(id, c.await);
        }
    }
    for (id, c) in window {
        settle(id, c.await);
    }
}

/// Waits up to `secs` for `cond`, polling.
async fn wait_for(secs: u64, what: &str, b: &Broker, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {secs} s; broker log:\n{}",
            b.log().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the management API's alarm health check reports the disk alarm.
fn disk_alarm(b: &Broker) -> bool {
    let r = api(b, "GET", "/api/health/checks/alarms", Some("guest:guest"));
    r.status == 503 && r.body.to_string().contains("\"disk\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_blocks_publishers_loses_nothing_and_recovers_by_itself() {
    if skip_if_external("it mounts a small file system under a local warren's data dir") {
        return;
    }
    for shards in SHARD_COUNTS {
        let Some(fs) = mount_or_skip() else { return };
        let data = fs.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        // The free-disk limit is off: the disk really fills, and it is the
        // log's ENOSPC that must block publishers and hold their confirms.
        // A small memory budget pages the messages out: with them all in
        // memory, compaction would copy whole 1 MiB segments forward every
        // 500 ms, which trips a recovery ordering bug of its own (see the
        // report of this change), not what this test is about.
        let args = ["--disk-free-limit", "0", "--memory-budget", "65536"];
        let env = [("WARREN_TEST_LOG_SEGMENT_SIZE", SEGMENT_BYTES)];
        let mut broker = Broker::start_in_with_env(shards, &data, &args, &env);
        let queues: Vec<String> = placements(&broker)
            .into_iter()
            .map(|p| unique_name(&format!("disk-full-{p:?}")))
            .collect();
        let published = Arc::new(Published::default());
        let stop = Arc::new(AtomicU64::new(u64::MAX));
        within_secs(180, async {
            let conn = lapin_connect(&broker).await;
            let ch = confirm_channel(&conn).await;
            for (q, p) in queues.iter().zip(placements(&broker)) {
                declare_queue(&ch, q, true, p).await;
            }
            let ballast = fs.ballast(LEAVE_FREE);
            let task = tokio::spawn(publisher(
                ch,
                queues.clone(),
                0,
                stop.clone(),
                published.clone(),
            ));
            // The disk fills: a log cannot create its next segment.
            wait_for(120, "a log out of disk space", &broker, || {
                broker.log().iter().any(|l| l.contains("out of disk space"))
            })
            .await;
            assert!(disk_alarm(&broker), "the disk alarm is raised");
            // Publishers are held, not refused: the publisher stalls with
            // unconfirmed messages, none of them nacked.
            let stalled_at = published.confirmed();
            wait_for(30, "the publisher stalls", &broker, || {
                published.sent.load(Ordering::SeqCst) as usize > published.confirmed()
            })
            .await;
            assert_eq!(published.nacked.load(Ordering::SeqCst), 0, "nothing nacked");
            eprintln!(
                "disk full ({shards} shards): {} free, {stalled_at} confirmed, {} sent",
                fs.free(),
                published.sent.load(Ordering::SeqCst)
            );
            // Room again: the broker writes by itself, confirms the held
            // publishes and takes new ones.
            std::fs::remove_file(&ballast).expect("delete the ballast");
            let resume_from = published.sent.load(Ordering::SeqCst);
            stop.store(resume_from + 100, Ordering::SeqCst);
            within_secs(60, task).await.expect("publisher task");
            assert_eq!(published.nacked.load(Ordering::SeqCst), 0, "nothing nacked");
            assert_eq!(
                published.confirmed() as u64,
                resume_from + 100,
                "every publish confirmed once there was room"
            );
            wait_for(10, "the log writing again", &broker, || {
                broker
                    .log()
                    .iter()
                    .any(|l| l.contains("disk space available again"))
            })
            .await;
            wait_for(10, "the disk alarm cleared", &broker, || {
                !disk_alarm(&broker)
            })
            .await;
        })
        .await;
        // Nothing torn or corrupt: a crash and a restart on the same file
        // system bring every confirmed message back, each once.
        broker.kill();
        let node = Broker::start_in_with_env(shards, &data, &args, &env);
        within_secs(120, async {
            let conn = lapin_connect(&node).await;
            let mut seen = HashSet::new();
            for q in &queues {
                let ch = conn.create_channel().await.expect("channel.open");
                while let Some(m) = ch
                    .basic_get(
                        q.as_str().into(),
                        lapin::options::BasicGetOptions { no_ack: true },
                    )
                    .await
                    .expect("basic.get")
                {
                    let id: u64 = m
                        .delivery
                        .properties
                        .message_id()
                        .as_ref()
                        .expect("a message id")
                        .as_str()
                        .parse()
                        .expect("a numeric message id");
                    assert!(seen.insert(id), "message {id} delivered twice");
                    assert_eq!(m.delivery.data.len(), BODY_BYTES, "message {id}'s body");
                }
            }
            let confirmed = published.confirmed.lock().unwrap().clone();
            let lost: Vec<u64> = confirmed
                .iter()
                .copied()
                .filter(|id| !seen.contains(id))
                .collect();
            assert!(lost.is_empty(), "confirmed messages lost: {lost:?}");
            let sent = published.sent.load(Ordering::SeqCst);
            assert!(seen.iter().all(|&id| id < sent), "only published ids");
            eprintln!(
                "disk full ({shards} shards): {} confirmed, {} recovered",
                confirmed.len(),
                seen.len()
            );
        })
        .await;
        // A torn tail is what a SIGKILL mid-write leaves; a segment after a
        // corrupt one would be damage.
        let bad: Vec<String> = node
            .log()
            .into_iter()
            .filter(|l| l.contains("quarantined"))
            .collect();
        assert!(bad.is_empty(), "recovery found damage: {bad:?}");
        drop(node);
        drop(fs);
    }
}
