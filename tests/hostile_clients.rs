//! The table of bad inputs (`docs/bad-input.md`), part 3: clients that
//! misbehave in time rather than in bytes — one that connects and sends
//! nothing (the 10 s handshake timeout, as RabbitMQ), one that misses its
//! heartbeats, one that stops reading its socket. Each time a well-behaved
//! lapin client on the same broker publishes and consumes meanwhile.
//! --shards 1 and 2 (in parallel: the waits are long); also against
//! RabbitMQ 3.10 (`WARREN_TEST_EXTERNAL_URI`), which answers the same.

mod common;

use common::hostile::{next_seen, second_client_works, Seen};
use common::raw::{Args, RawConn, FRAME_HEARTBEAT, PROTOCOL_HEADER};
use common::*;
use std::time::{Duration, Instant};

/// Runs `case` for each shard count at once, each on its own broker.
fn on_each_broker(case: fn(&Broker)) {
    let shard_counts: Vec<usize> = if external() {
        vec![1]
    } else {
        SHARD_COUNTS.to_vec()
    };
    let runs: Vec<_> = shard_counts
        .into_iter()
        .map(|shards| {
            std::thread::spawn(move || {
                let b = Broker::start(shards);
                case(&b);
            })
        })
        .collect();
    for r in runs {
        r.join().expect("a shard count failed");
    }
}

/// Waits for the server to end the socket, reading (and keeping) what it
/// sends; returns the frames and when it ended.
fn until_dropped(c: &mut RawConn, within: Duration) -> (Vec<Seen>, Duration) {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let left = within.saturating_sub(start.elapsed());
        assert!(
            !left.is_zero(),
            "socket still open after {within:?}: {seen:?}"
        );
        match next_raw_or_heartbeat(c, left) {
            Seen::Eof | Seen::Reset => return (seen, start.elapsed()),
            Seen::Quiet => {}
            other => seen.push(other),
        }
    }
}

/// Like `next_seen`, but heartbeats count (the heartbeat row needs them).
fn next_raw_or_heartbeat(c: &mut RawConn, wait: Duration) -> Seen {
    c.stream.set_read_timeout(Some(wait)).expect("read timeout");
    let mut one = [0u8; 8];
    match c.stream.peek(&mut one) {
        Ok(8) if one[0] == FRAME_HEARTBEAT => {
            let mut frame = [0u8; 8];
            std::io::Read::read_exact(&mut c.stream, &mut frame).expect("heartbeat");
            Seen::Frame {
                kind: FRAME_HEARTBEAT,
                channel: u16::from_be_bytes([frame[1], frame[2]]),
                len: 0,
            }
        }
        _ => next_seen(c, wait),
    }
}

#[test]
fn a_client_that_sends_nothing_is_dropped_after_the_handshake_timeout() {
    on_each_broker(|b| {
        // One sends nothing at all, one stops after the protocol header.
        let connected = Instant::now();
        let mut silent = RawConn::connect(&b.addr());
        let mut after_header = RawConn::connect(&b.addr());
        after_header.send_bytes(PROTOCOL_HEADER);
        let start = after_header.expect_method();
        assert_eq!((start.class, start.method), (10, 10), "connection.start");
        second_client_works(b, "silent clients connected");
        for (name, c) in [("silent", &mut silent), ("after header", &mut after_header)] {
            let (seen, _) = until_dropped(c, Duration::from_secs(30));
            let after = connected.elapsed();
            // RabbitMQ 3.10: reset after 10.0 s, without a connection.close.
            assert!(seen.is_empty(), "{name}: sent {seen:?} before dropping");
            assert!(
                after >= Duration::from_secs(7),
                "{name}: dropped after {after:?}, before the 10 s handshake timeout"
            );
        }
        second_client_works(b, "silent clients dropped");
    });
}

#[test]
fn a_client_that_misses_its_heartbeats_is_dropped() {
    on_each_broker(|b| {
        let mut c = RawConn::connect(&b.addr());
        c.begin();
        c.start_ok("guest", "guest", false);
        let tune = c.expect_method();
        assert_eq!((tune.class, tune.method), (10, 30), "connection.tune");
        let ok = Args::new().short(2047).long(131_072).short(1).done();
        c.send_method(0, 10, 31, &ok);
        c.send_method(
            0,
            10,
            40,
            &Args::new().shortstr("/").shortstr("").octet(0).done(),
        );
        let open_ok = c.expect_method();
        assert_eq!((open_ok.class, open_ok.method), (10, 41), "open-ok");
        // Heartbeat 1 s, and the client never sends one.
        let (seen, after) = until_dropped(&mut c, Duration::from_secs(20));
        // RabbitMQ 3.10: heartbeats, then a reset after 2.8 s, no close.
        assert!(
            seen.iter().all(|s| matches!(
                s,
                Seen::Frame {
                    kind: FRAME_HEARTBEAT,
                    channel: 0,
                    ..
                }
            )),
            "only heartbeats before the drop: {seen:?}"
        );
        assert!(!seen.is_empty(), "the server sent heartbeats");
        assert!(
            after >= Duration::from_millis(1500),
            "dropped after {after:?}: sooner than two missed heartbeats"
        );
        second_client_works(b, "missed heartbeats");
    });
}

#[test]
fn a_client_that_stops_reading_does_not_hold_up_the_others() {
    on_each_broker(|b| {
        let queue = unique_name("hostile-stuck");
        let (mut stuck, tune) = RawConn::open(&b.addr());
        stuck.channel_open(1);
        stuck.queue_declare(1, &queue);
        // Manual acks, no prefetch limit: everything may be sent to it.
        stuck.basic_consume(1, &queue, "stuck");
        // ~24 MiB for a consumer that never reads: its socket buffers fill
        // and the rest waits in the broker.
        let body = vec![b's'; 64 * 1024];
        let (mut publisher, _) = RawConn::open(&b.addr());
        publisher.channel_open(1);
        for _ in 0..384 {
            publisher.basic_publish(1, "", &queue, &body, tune.frame_max);
        }
        // The publisher's connection still answers…
        let qos = Args::new().long(0).short(0).bits(&[false]).done();
        publisher.send_method(1, 60, 10, &qos);
        let m = publisher.expect_method();
        assert_eq!((m.channel, m.class, m.method), (1, 60, 11), "qos-ok: {m:?}");
        // …and others publish and consume as usual.
        second_client_works(b, "a consumer stopped reading");
        second_client_works(b, "a consumer stopped reading (again)");
        stuck.drop_socket();
        let delete = Args::new()
            .short(0)
            .shortstr(&queue)
            .bits(&[false, false, false])
            .done();
        publisher.send_method(1, 50, 40, &delete);
        let m = publisher.expect_method();
        assert_eq!((m.class, m.method), (50, 41), "delete-ok: {m:?}");
    });
}
