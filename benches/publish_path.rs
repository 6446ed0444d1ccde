//! The in-process publish path without sockets: decode a basic.publish +
//! content header + body from a read buffer (zero-copy), route it through
//! the topology, build the shared message and enqueue it on its queue, then
//! take the delivery out again — what one shard does per message between
//! socket read and socket write (the inter-shard ring hop excepted).
//!
//! Once as is, once with the publish permission check of a connection
//! (`broker::auth::publish`), and once with the statistics a publish adds
//! outside the queue (the channel's publish count, the exchange's in / out
//! in the shard's map, the coarse clock read and the queue's publish count
//! and age checkpoint, `shard::stats`), to show what each costs. The
//! queue's delivery and ack counts are in every variant (plain adds inside
//! `Queue`).
//!
//! Run with `cargo bench --bench publish_path`.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use warren::broker::auth::publish::{PublishGrants, Publisher};
use warren::broker::auth::{AuthDefs, AuthStore};
use warren::broker::exchange::Destination;
use warren::broker::message::{Body, Message};
use warren::broker::queue::{ConsumerKey, ConsumerSpec, Queue, QueueConfig, Settle};
use warren::broker::stats::{MessageStats, Stat};
use warren::broker::topology::Topology;
use warren::broker::vhost::VhostId;
use warren::protocol::frame::{
    encode_body_frame, encode_header_frame, encode_method_frame, Frame, FrameDecoder,
};
use warren::protocol::methods::{BasicPublish, Method};
use warren::protocol::properties::{BasicProperties, ContentHeader};
use warren::protocol::types::{FieldTable, ShortStr};
use warren::shard::stats::{coarse_now_ms, ShardStats};

const BATCH: usize = 1000;

/// `BATCH` publishes of a 16-byte body to exchange `x`, key `k`, as a
/// client would write them.
fn wire_batch() -> Bytes {
    let mut buf = BytesMut::new();
    let props = ContentHeader::new(16, &BasicProperties::default()).raw_properties;
    for _ in 0..BATCH {
        let publish = Method::from(BasicPublish {
            exchange: ShortStr::from("x"),
            routing_key: ShortStr::from("k"),
            mandatory: false,
            immediate: false,
        });
        encode_method_frame(&mut buf, 1, &publish);
        encode_header_frame(&mut buf, 1, 60, 16, &props);
        encode_body_frame(&mut buf, 1, &[7u8; 16]);
    }
    buf.freeze()
}

fn topology() -> Topology {
    let mut t = Topology::new();
    let none = FieldTable::new();
    t.declare_exchange(&"x".into(), "direct", false, false, false, false, &none)
        .unwrap();
    t.bind("x", Destination::Queue("q".into()), &"k".into(), &none)
        .unwrap();
    t
}

fn publish_route_enqueue(c: &mut Criterion) {
    let wire = wire_batch();
    let topology = topology();
    let key = ConsumerKey {
        shard: 0,
        conn: 1,
        channel: 1,
        tag: ShortStr::from("c"),
    };
    let mut group = c.benchmark_group("publish_path");
    group.throughput(Throughput::Elements(BATCH as u64));
    // The same path without and with the connection's permission check
    // (`broker::auth::publish`, what `handlers::access::publish_allowed`
    // runs per publish): write on the exchange, cached per channel.
    let store = AuthStore::new(AuthDefs::initial("guest", ""));
    for (checked, stats) in [(false, false), (true, false), (false, true)] {
        let name = match (checked, stats) {
            (true, _) => "decode_route_enqueue_dispatch_ack_16b_with_permission_check",
            (_, true) => "decode_route_enqueue_dispatch_ack_16b_with_stats",
            _ => "decode_route_enqueue_dispatch_ack_16b",
        };
        let shard_stats = ShardStats::default();
        let mut channel_stats = MessageStats::default();
        let mut grants = PublishGrants::default();
        let who = Publisher {
            user: "guest",
            vhost: "/",
        };
        group.bench_function(name, |b| {
            let mut queue = Queue::new(
                ShortStr::from("q"),
                QueueConfig {
                    durable: false,
                    exclusive: false,
                    auto_delete: false,
                    arguments: FieldTable::new(),
                },
            );
            queue
                .add_consumer(ConsumerSpec {
                    key: key.clone(),
                    no_ack: false,
                    exclusive: false,
                    prefetch: 0,
                    priority: 0,
                })
                .unwrap();
            queue.activate(&key);
            let mut decoder = FrameDecoder::new(131_072);
            let mut destinations = Vec::new();
            let mut ids = Vec::with_capacity(BATCH);
            b.iter(|| {
                let mut buf = BytesMut::from(&wire[..]);
                let mut pending: Option<(BasicPublish, ContentHeader)> = None;
                while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                    match frame {
                        Frame::Method {
                            method: Method::BasicPublish(p),
                            ..
                        } => {
                            pending = Some((p, ContentHeader::new(0, &BasicProperties::default())))
                        }
                        Frame::Header { header, .. } => {
                            if let Some(p) = pending.as_mut() {
                                p.1 = header;
                            }
                        }
                        Frame::Body { payload, .. } => {
                            let (p, h) = pending.take().unwrap();
                            if checked {
                                grants
                                    .check(&store, who, &p.exchange, p.routing_key.as_str(), || {
                                        false
                                    })
                                    .unwrap();
                            }
                            destinations.clear();
                            topology.route(&p.exchange, &p.routing_key, None, &mut destinations);
                            let message = Arc::new(Message {
                                exchange: p.exchange,
                                routing_key: p.routing_key,
                                raw_properties: h.raw_properties,
                                body: Body::from(payload),
                                persistent: false,
                            });
                            if stats {
                                channel_stats.add(Stat::Publish, 1);
                                shard_stats.exchange_publish(
                                    VhostId::DEFAULT,
                                    &message.exchange,
                                    !destinations.is_empty(),
                                );
                            }
                            let now = if stats { coarse_now_ms() } else { 0 };
                            for _q in &destinations {
                                let id = queue.publish(message.clone());
                                if stats {
                                    queue.enqueued(id, now);
                                }
                            }
                        }
                        _ => {}
                    }
                }
                ids.clear();
                while let Some(d) = queue.next_delivery() {
                    ids.push(d.msg_id);
                    queue.credit(&key, 1);
                }
                queue.settle(&ids, Settle::Remove);
                black_box(channel_stats.get(Stat::Publish));
                black_box(ids.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, publish_route_enqueue);
criterion_main!(benches);
