//! Codec micro-benchmarks: decoding a read buffer full of basic.publish +
//! header + 16-byte body frames (the publish hot path), encoding the
//! basic.deliver + header + body-frame-header prefix of a delivery, and
//! comparing a decoded shortstr with a copy of it (empty, as the default
//! exchange's name is on every publish to it, and 8 bytes).
//!
//! Run with `cargo bench --bench codec`.

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

use warren::protocol::frame::{
    encode_body_frame_header, encode_header_frame, encode_method_frame, Frame, FrameDecoder,
    FRAME_END,
};
use warren::protocol::methods::{BasicDeliver, BasicPublish, Method};
use warren::protocol::properties::BasicProperties;
use warren::protocol::types::ShortStr;
use warren::protocol::wire::get_shortstr;

const MESSAGES: usize = 1000;

fn publish_stream() -> BytesMut {
    let publish: Method = BasicPublish {
        exchange: "amq.direct".into(),
        routing_key: "bench.queue".into(),
        mandatory: false,
        immediate: false,
    }
    .into();
    let props = BasicProperties {
        delivery_mode: Some(2),
        content_type: Some("application/octet-stream".into()),
        ..Default::default()
    }
    .to_bytes();
    let body = [0xABu8; 16];
    let mut buf = BytesMut::new();
    for _ in 0..MESSAGES {
        encode_method_frame(&mut buf, 1, &publish);
        encode_header_frame(&mut buf, 1, 60, body.len() as u64, &props);
        encode_body_frame_header(&mut buf, 1, body.len() as u32);
        buf.put_slice(&body);
        buf.put_u8(FRAME_END);
    }
    buf
}

fn decode(c: &mut Criterion) {
    let stream = publish_stream();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.bench_function("publish+header+16B body", |b| {
        b.iter_batched(
            || BytesMut::from(&stream[..]),
            |mut buf| {
                let mut dec = FrameDecoder::new(131072);
                let mut bytes = 0usize;
                while let Some(frame) = dec.decode(&mut buf).unwrap() {
                    match frame {
                        Frame::Method { method, .. } => {
                            black_box(&method);
                        }
                        Frame::Header { header, .. } => {
                            black_box(header.delivery_mode());
                        }
                        Frame::Body { payload, .. } => bytes += payload.len(),
                        Frame::Heartbeat { .. } => {}
                    }
                }
                assert_eq!(bytes, MESSAGES * 16);
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let deliver: Method = BasicDeliver {
        consumer_tag: "amq.ctag-0123456789abcdef".into(),
        delivery_tag: 123_456,
        redelivered: false,
        exchange: "amq.direct".into(),
        routing_key: "bench.queue".into(),
    }
    .into();
    let props: Bytes = BasicProperties {
        delivery_mode: Some(2),
        ..Default::default()
    }
    .to_bytes();
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));
    group.bench_function("deliver+header+body frame header", |b| {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        b.iter(|| {
            if buf.len() > 60 * 1024 {
                buf.clear();
            }
            encode_method_frame(&mut buf, 1, black_box(&deliver));
            encode_header_frame(&mut buf, 1, 60, 16, black_box(&props));
            encode_body_frame_header(&mut buf, 1, 16);
        })
    });
    group.finish();
}

fn shortstr_eq(c: &mut Criterion) {
    let mut group = c.benchmark_group("shortstr_eq");
    group.throughput(Throughput::Elements(1));
    for (name, wire) in [("empty", &b"\x00"[..]), ("8-bytes", &b"\x08exchange"[..])] {
        // A name decoded from a frame, and a copy of it (as the exchange
        // statistics keep the name of the exchange published to).
        let a = get_shortstr(&mut Bytes::copy_from_slice(wire)).unwrap();
        let b = ShortStr::from(a.as_str());
        group.bench_function(name, |bench| bench.iter(|| black_box(&a) == black_box(&b)));
    }
    group.finish();
}

criterion_group!(benches, decode, encode, shortstr_eq);
criterion_main!(benches);
