//! Bad input over a real socket: malformed frames and methods get a clear
//! AMQP connection error (501 / 505 …) and the broker goes on serving
//! everyone else. Raw client, each case for --shards 1 and 2.

mod common;

use common::raw::{Args, RawConn, FRAME_BODY, FRAME_HEADER, FRAME_METHOD};
use common::*;

/// Reads frames until connection.close; returns (code, text).
fn expect_connection_close(c: &mut RawConn) -> (u16, String) {
    loop {
        let m = c
            .read_method()
            .unwrap_or_else(|e| panic!("expected connection.close, socket said: {e}"));
        if (m.channel, m.class, m.method) == (0, 10, 50) {
            return m.close_reason();
        }
    }
}

/// A fresh connection still works end to end: declare, publish, get.
fn broker_still_serves(b: &Broker) {
    let (mut c, tune) = RawConn::open(&b.addr());
    c.channel_open(1);
    let (q, _, _) = c.queue_declare(1, &unique_name("after-bad-input"));
    c.basic_publish(1, "", &q, b"still here", tune.frame_max);
    c.basic_consume(1, &q, "t");
    let d = c.read_delivery();
    assert_eq!(d.body, b"still here");
}

/// Why these tests skip against an external broker.
const WARREN_ONLY: &str = "it sends malformed frames and asserts Warren's exact replies";

fn with_each_broker(case: impl Fn(&Broker, &mut RawConn, u32)) {
    if skip_if_external(WARREN_ONLY) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (mut c, tune) = RawConn::open(&b.addr());
        case(&b, &mut c, tune.frame_max);
        broker_still_serves(&b);
    }
}

#[test]
fn frame_larger_than_frame_max_is_a_frame_error() {
    with_each_broker(|_, c, frame_max| {
        // Only the header: the size alone must be refused.
        let mut header = vec![FRAME_METHOD, 0, 1];
        header.extend_from_slice(&(frame_max + 100).to_be_bytes());
        c.send_bytes(&header);
        let (code, text) = expect_connection_close(c);
        assert_eq!(code, 501, "{text}");
        assert!(text.starts_with("FRAME_ERROR"), "{text}");
    });
}

#[test]
fn bad_frame_end_is_a_frame_error() {
    with_each_broker(|_, c, _| {
        let mut f = vec![FRAME_METHOD, 0, 1, 0, 0, 0, 4, 0, 20, 0, 10];
        f.push(0x00); // not 0xCE
        c.send_bytes(&f);
        let (code, text) = expect_connection_close(c);
        assert_eq!(code, 501, "{text}");
    });
}

#[test]
fn unknown_frame_type_is_a_frame_error() {
    with_each_broker(|_, c, _| {
        c.send_frame(42, 1, b"junk");
        let (code, text) = expect_connection_close(c);
        assert_eq!(code, 501, "{text}");
    });
}

#[test]
fn truncated_method_arguments_are_refused() {
    with_each_broker(|_, c, _| {
        c.channel_open(1);
        // queue.declare with its arguments cut short.
        let args = Args::new().short(0).done();
        c.send_method(1, 50, 10, &args);
        let (code, text) = expect_connection_close(c);
        assert!(
            code == 501 || code == 502,
            "undecodable arguments: {code} {text}"
        );
    });
}

#[test]
fn content_without_publish_is_unexpected() {
    with_each_broker(|_, c, _| {
        c.channel_open(1);
        // A content header (class 60, weight 0, size 1, no properties).
        let mut header = Vec::new();
        header.extend_from_slice(&60u16.to_be_bytes());
        header.extend_from_slice(&0u16.to_be_bytes());
        header.extend_from_slice(&1u64.to_be_bytes());
        header.extend_from_slice(&0u16.to_be_bytes());
        c.send_frame(FRAME_HEADER, 1, &header);
        let (code, text) = expect_connection_close(c);
        assert_eq!(code, 505, "{text}");
    });
}

#[test]
fn body_longer_than_announced_is_unexpected() {
    with_each_broker(|_, c, _| {
        c.channel_open(1);
        let publish = Args::new()
            .short(0)
            .shortstr("")
            .shortstr("nowhere")
            .bits(&[false, false])
            .done();
        c.send_method(1, 60, 40, &publish);
        let mut header = Vec::new();
        header.extend_from_slice(&60u16.to_be_bytes());
        header.extend_from_slice(&0u16.to_be_bytes());
        header.extend_from_slice(&2u64.to_be_bytes());
        header.extend_from_slice(&0u16.to_be_bytes());
        c.send_frame(FRAME_HEADER, 1, &header);
        c.send_frame(FRAME_BODY, 1, b"three");
        let (code, text) = expect_connection_close(c);
        assert_eq!(code, 505, "{text}");
    });
}

#[test]
fn method_on_an_unopened_channel_is_a_channel_error() {
    with_each_broker(|_, c, _| {
        let args = Args::new().long(0).short(10).octet(0).done();
        c.send_method(7, 60, 10, &args); // basic.qos on channel 7, never opened
        let (code, text) = expect_connection_close(c);
        assert_eq!(code, 504, "{text}");
    });
}

#[test]
fn random_garbage_never_takes_the_broker_down() {
    if skip_if_external(WARREN_ONLY) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        // Deterministic pseudo-random byte strings after a good handshake.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15 ^ shards as u64;
        for round in 0..30 {
            let (mut c, _) = RawConn::open(&b.addr());
            let len = 1 + (round * 37) % 400;
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect();
            c.send_bytes(&junk);
            // Either a connection.close with an error code, or a wait for
            // more bytes (a plausible incomplete frame): both are fine, as
            // long as nothing else breaks.
            drop(c);
        }
        broker_still_serves(&b);
    }
}
