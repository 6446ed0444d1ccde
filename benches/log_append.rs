//! Benchmarks of the storage log: the pure encode path of message records
//! (16 B and 1 KiB bodies) and append + group commit throughput on a temp
//! directory with N concurrent waiters (one iteration = one batch of N
//! appends released by one write + fdatasync; throughput is per message).

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

fn group_commit(c: &mut Criterion) {
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
