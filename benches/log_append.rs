//! Benchmarks of the storage log: the pure encode path of message records
//! (16 B and 1 KiB bodies) and append + group commit throughput on a temp
//! directory with N concurrent waiters (one iteration = one batch of N
//! appends released by one write + fdatasync; throughput is per message).
//!
//! The group-commit figures are only disk figures if the temp directory
//! ($TMPDIR, else /tmp) is on a disk: the bench prints its filesystem and
//! refuses tmpfs and ramfs (point TMPDIR at a disk-backed directory).

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use glommio::LocalExecutorBuilder;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};
use warren::protocol::types::ShortStr;
use warren::storage::record::{self, DEFAULT_MAX_RECORD_LEN};
use warren::storage::{Log, LogConfig, MessageRef, RecordRef, Target};

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode_message");
    let targets = [Target {
        queue: ShortStr::from("bench-queue"),
        msg_id: 42,
        expires: None,
    }];
    let exchange = ShortStr::from("amq.direct");
    let routing_key = ShortStr::from("bench-queue");
    let props = [0x10u8, 0x00, 0x02];
    for size in [16usize, 1024] {
        let body = [Bytes::from(vec![7u8; size])];
        let m = MessageRef {
            targets: &targets,
            exchange: &exchange,
            routing_key: &routing_key,
            raw_properties: &props,
            body: &body,
        };
        let mut out = BytesMut::with_capacity(1 << 20);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{size}B"), |b| {
            b.iter(|| {
                if out.len() > (1 << 20) - 2048 {
                    out.clear();
                }
                let n = record::encode(
                    &RecordRef::Message(black_box(m)),
                    DEFAULT_MAX_RECORD_LEN,
                    &mut out,
                );
                black_box(n.unwrap())
            })
        });
    }
    g.finish();
}

/// The filesystem type of `dir` (statfs's f_type, named when known).
fn fs_name(dir: &std::path::Path) -> (String, bool) {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).expect("no NUL in path");
    // SAFETY: a NUL-terminated path and a zeroed statfs we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &mut st) } != 0 {
        return ("unknown".into(), false);
    }
    let (name, in_memory) = match st.f_type as u64 {
        0x0102_1994 => ("tmpfs", true),
        0x8584_58f6 => ("ramfs", true),
        0xef53 => ("ext2/3/4", false),
        0x5846_5342 => ("xfs", false),
        0x9123_683e => ("btrfs", false),
        0x794c_7630 => ("overlayfs", false),
        0x2fc1_2fc1 => ("zfs", false),
        other => return (format!("f_type {other:#x}"), false),
    };
    (name.into(), in_memory)
}

fn group_commit(c: &mut Criterion) {
    let dir = std::env::temp_dir();
    let (fs, in_memory) = fs_name(&dir);
    eprintln!("log_append: group commit in {} on {fs}", dir.display());
    assert!(
        !in_memory,
        "log_append: {} is on {fs}: fdatasync there costs nothing, so the group-commit \
         figures would not be disk figures; set TMPDIR to a disk-backed directory",
        dir.display()
    );
    let mut g = c.benchmark_group("append_group_commit");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let ex = LocalExecutorBuilder::default().make().expect("executor");
    for &(waiters, size) in &[(1usize, 16usize), (100, 16), (1000, 16), (1000, 1024)] {
        g.throughput(Throughput::Elements(waiters as u64));
        g.bench_function(format!("{waiters}x{size}B"), |b| {
            b.iter_custom(|iters| {
                ex.run(async {
                    let tmp = tempfile::tempdir().expect("tempdir");
                    let (log, _) = Log::open(tmp.path(), LogConfig::default())
                        .await
                        .expect("open log");
                    let log = Rc::new(log);
                    let body = [Bytes::from(vec![7u8; size])];
                    let exchange = ShortStr::from("amq.direct");
                    let start = Instant::now();
                    for it in 0..iters {
                        let mut tasks = Vec::with_capacity(waiters);
                        for w in 0..waiters {
                            let log = log.clone();
                            let body = body.clone();
                            let exchange = exchange.clone();
                            tasks.push(glommio::spawn_local(async move {
                                let targets = [Target {
                                    queue: ShortStr::from("q"),
                                    msg_id: it * 100_000 + w as u64,
                                    expires: None,
                                }];
                                let m = MessageRef {
                                    targets: &targets,
                                    exchange: &exchange,
                                    routing_key: &exchange,
                                    raw_properties: &[],
                                    body: &body,
                                };
                                let pos = log.append(m).expect("append");
                                log.sync(pos.lsn()).await.expect("sync");
                            }));
                        }
                        for t in tasks {
                            t.await;
                        }
                    }
                    let elapsed = start.elapsed();
                    if let Ok(log) = Rc::try_unwrap(log) {
                        log.close().await.expect("close");
                    }
                    elapsed
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, encode, group_commit);
criterion_main!(benches);
