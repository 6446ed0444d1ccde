//! Routing micro-benchmarks: `Topology::route` per message for a topic
//! exchange with 10, 10 000 and 100 000 bindings (a mix of literal keys,
//! `*` and `#` patterns), a direct exchange with 10 000 bindings, fanout to
//! 10 and 1 000 queues, and the default exchange; and what a publish does
//! with the queues it reached before sending them to their owners:
//! `Metadata::group_by_owner` (catalog lookups, one group per owner shard)
//! for one queue and for ten queues on two shards, dropping the groups.
//!
//! Run with `cargo bench --bench routing`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

use std::sync::Arc;
use warren::broker::exchange::Destination;
use warren::broker::queue::QueueConfig;
use warren::broker::topology::Topology;
use warren::broker::vhost::{QueueName, VhostId};
use warren::protocol::types::{FieldTable, ShortStr};
use warren::shard::envelope::QueueMeta;
use warren::shard::metadata::Metadata;

/// A topic exchange "t" with `n` bindings, each to its own queue, in four
/// families: `stock.<sym>.nyse`, `stock.*.<market>`, `logs.<svc>.#` and
/// `a.b.c<i>`; plus the catch-alls `stock.*.nyse` and `logs.#`.
fn topic_topology(n: usize) -> Topology {
    let mut t = Topology::new();
    let none = FieldTable::new();
    t.declare_exchange(&"t".into(), "topic", false, false, false, false, &none)
        .unwrap();
    for i in 0..n {
        let key = match i % 4 {
            0 => format!("stock.sym{i}.nyse"),
            1 => format!("stock.*.market{i}"),
            2 => format!("logs.svc{i}.#"),
            _ => format!("a.b.c{i}"),
        };
        let key = ShortStr::try_from_string(key).unwrap();
        let q = ShortStr::try_from_string(format!("q{i}")).unwrap();
        t.bind("t", Destination::Queue(q), &key, &none).unwrap();
    }
    t.bind(
        "t",
        Destination::Queue("all-nyse".into()),
        &"stock.*.nyse".into(),
        &none,
    )
    .unwrap();
    t.bind(
        "t",
        Destination::Queue("all-logs".into()),
        &"logs.#".into(),
        &none,
    )
    .unwrap();
    t
}

fn bench_topic(c: &mut Criterion) {
    let mut g = c.benchmark_group("route/topic");
    g.throughput(Throughput::Elements(1));
    for n in [10usize, 10_000, 100_000] {
        let t = topic_topology(n);
        let keys: Vec<ShortStr> = [
            "stock.sym8.nyse".to_string(),
            format!("stock.ibm.market{}", (n / 2) | 1),
            "logs.svc6.error.disk".to_string(),
            "a.b.c7".to_string(),
            "no.such.key".to_string(),
        ]
        .into_iter()
        .map(|k| ShortStr::try_from_string(k).unwrap())
        .collect();
        let mut out = Vec::with_capacity(16);
        let mut i = 0;
        g.bench_with_input(BenchmarkId::from_parameter(n), &t, |b, t| {
            b.iter(|| {
                out.clear();
                let key = &keys[i % keys.len()];
                i += 1;
                black_box(t.route("t", key, None, &mut out));
                black_box(out.len())
            })
        });
    }
    g.finish();
}

fn bench_direct(c: &mut Criterion) {
    let mut t = Topology::new();
    let none = FieldTable::new();
    let n = 10_000;
    for i in 0..n {
        let k = ShortStr::try_from_string(format!("key{i}")).unwrap();
        let q = ShortStr::try_from_string(format!("q{i}")).unwrap();
        t.bind("amq.direct", Destination::Queue(q), &k, &none)
            .unwrap();
    }
    let key: ShortStr = "key4242".into();
    let mut out = Vec::with_capacity(16);
    let mut g = c.benchmark_group("route/direct");
    g.throughput(Throughput::Elements(1));
    g.bench_function("10000-bindings", |b| {
        b.iter(|| {
            out.clear();
            black_box(t.route("amq.direct", &key, None, &mut out));
            black_box(out.len())
        })
    });
    g.bench_function("default-exchange", |b| {
        b.iter(|| {
            out.clear();
            black_box(t.route("", &key, None, &mut out));
            black_box(out.len())
        })
    });
    g.finish();
}

fn bench_fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("route/fanout");
    g.throughput(Throughput::Elements(1));
    for n in [10usize, 1_000] {
        let mut t = Topology::new();
        let none = FieldTable::new();
        for i in 0..n {
            let q = ShortStr::try_from_string(format!("q{i}")).unwrap();
            t.bind("amq.fanout", Destination::Queue(q), &ShortStr::EMPTY, &none)
                .unwrap();
        }
        let key: ShortStr = "k".into();
        let mut out = Vec::with_capacity(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &t, |b, t| {
            b.iter(|| {
                out.clear();
                black_box(t.route("amq.fanout", &key, None, &mut out));
                black_box(out.len())
            })
        });
    }
    g.finish();
}

/// A catalog of 1,000 queues `q0`..`q999` of the default vhost, owned by
/// shards 0 and 1 alternately.
fn catalog() -> Metadata {
    let mut meta = Metadata::new();
    for i in 0..1_000u16 {
        meta.queues.insert(Arc::new(QueueMeta {
            name: QueueName::new(
                VhostId::DEFAULT,
                ShortStr::try_from_string(format!("q{i}")).unwrap(),
            ),
            owner: i % 2,
            config: QueueConfig::default(),
            exclusive_to: None,
        }));
    }
    meta
}

fn bench_group_by_owner(c: &mut Criterion) {
    let meta = catalog();
    let mut g = c.benchmark_group("group_by_owner");
    g.throughput(Throughput::Elements(1));
    let one: Vec<ShortStr> = vec!["q42".into()];
    let ten: Vec<ShortStr> = (0..10)
        .map(|i| ShortStr::try_from_string(format!("q{i}")).unwrap())
        .collect();
    for (name, queues) in [("1-queue", &one), ("10-queues-2-owners", &ten)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let groups = meta.group_by_owner(VhostId::DEFAULT, queues.iter().cloned());
                black_box(groups.len())
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_topic,
    bench_direct,
    bench_fanout,
    bench_group_by_owner
);
criterion_main!(benches);
