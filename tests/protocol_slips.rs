//! Protocol details that client libraries' own test suites depend on, each
//! checked byte by byte with the raw client: the socket stays open after
//! connection.close-ok and after a refused login until the client closes
//! it (bounded); closes that cross on a channel or on the connection;
//! queue.delete-ok before the basic.cancel of the channel's own consumer
//! (and no basic.cancel without `consumer_cancel_notify`); 540 for
//! channel.flow active=false and basic.publish immediate=true.

mod common;

use common::raw::{Args, RawConn, RawMethod, SocketEnd};
use common::*;
use std::time::Duration;

/// Warren closes a finished connection's socket by itself this long after
/// close-ok (or a refused login) at the latest, if the client does not.
const LINGER_BOUND: Duration = Duration::from_secs(6);

fn close_args(code: u16, text: &str) -> Vec<u8> {
    Args::new()
        .short(code)
        .shortstr(text)
        .short(0)
        .short(0)
        .done()
}

fn is(m: &RawMethod, channel: u16, class: u16, method: u16) -> bool {
    (m.channel, m.class, m.method) == (channel, class, method)
}

#[track_caller]
fn expect(c: &mut RawConn, channel: u16, class: u16, method: u16) -> RawMethod {
    let m = c.expect_method();
    assert!(
        is(&m, channel, class, method),
        "expected {class}.{method} on channel {channel}, got {m:?}"
    );
    m
}

fn closed_in_time(end: SocketEnd) -> bool {
    matches!(end, SocketEnd::Eof(t) | SocketEnd::Reset(t) if t <= LINGER_BOUND)
}

fn passive_declare_args(queue: &str) -> Vec<u8> {
    Args::new()
        .short(0)
        .shortstr(queue)
        .bits(&[true, false, false, false, false])
        .empty_table()
        .done()
}

/// A connection error the client can provoke at will: channel.close-ok on
/// a channel that was never opened (504, as RabbitMQ).
fn provoke_504(c: &mut RawConn) -> RawMethod {
    c.send_method(7, 20, 41, &[]);
    let m = expect(c, 0, 10, 50);
    assert_eq!(
        m.close_reason(),
        (504, "CHANNEL_ERROR - expected 'channel.open'".to_string())
    );
    assert_eq!(m.reader().skip_close_text(), 20 << 16 | 41);
    m
}

#[test]
fn socket_stays_open_after_close_ok_until_the_client_closes() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (mut c, _) = RawConn::open(&b.addr());
        c.channel_open(1);
        c.send_method(0, 10, 50, &close_args(200, "bye"));
        expect(&mut c, 0, 10, 51);
        // No EOF or reset right away, and a write still goes through.
        assert_eq!(c.watch_socket(Duration::from_millis(700)), SocketEnd::Open);
        c.send_frame(common::raw::FRAME_HEARTBEAT, 0, &[]);
        assert_eq!(c.watch_socket(Duration::from_millis(300)), SocketEnd::Open);
        if skip_if_external("not waiting for the socket to close (RabbitMQ waits 30 s)") {
            continue;
        }
        let end = c.watch_socket(Duration::from_secs(10));
        assert!(closed_in_time(end), "Warren closes by itself: {end:?}");
    }
}

#[test]
fn frames_after_connection_close_get_close_ok_and_no_reset() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (mut c, _) = RawConn::open(&b.addr());
        c.channel_open(1);
        // amqplib closes while publishes are still buffered behind close.
        let mut bytes = RawConn::method_bytes(0, 10, 50, &close_args(200, "bye"));
        for i in 0..300 {
            bytes.extend(RawConn::publish_bytes(
                1,
                "",
                "nowhere",
                false,
                false,
                format!("late {i}").as_bytes(),
            ));
        }
        c.send_bytes(&bytes);
        expect(&mut c, 0, 10, 51);
        assert_eq!(c.watch_socket(Duration::from_secs(1)), SocketEnd::Open);
        c.send_bytes(&RawConn::publish_bytes(
            1, "", "nowhere", false, false, b"x",
        ));
        assert_eq!(c.watch_socket(Duration::from_millis(300)), SocketEnd::Open);
    }
}

#[test]
fn refused_login_leaves_the_socket_open_briefly() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for capability in [true, false] {
            let mut c = RawConn::connect(&b.addr());
            c.begin();
            c.start_ok("guest", "wrong-password", capability);
            if capability {
                let m = expect(&mut c, 0, 10, 50);
                assert_eq!(m.close_reason().0, 403);
            }
            assert_eq!(
                c.watch_socket(Duration::from_millis(700)),
                SocketEnd::Open,
                "capability {capability}: the client gets time to close first"
            );
            let end = c.watch_socket(Duration::from_secs(10));
            assert!(
                closed_in_time(end),
                "capability {capability}: the broker closes by itself: {end:?}"
            );
        }
    }
}

#[test]
fn client_channel_close_crossing_a_server_channel_close() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (mut c, _) = RawConn::open(&b.addr());
        let missing = unique_name("slips-missing");

        // The client's close is on the wire before it sees the server's.
        c.channel_open(1);
        let mut bytes = RawConn::method_bytes(1, 50, 10, &passive_declare_args(&missing));
        bytes.extend(RawConn::method_bytes(1, 20, 40, &close_args(200, "bye")));
        c.send_bytes(&bytes);
        let m = expect(&mut c, 1, 20, 40);
        assert_eq!(m.close_reason().0, 404);
        expect(&mut c, 1, 20, 41);
        c.send_method(1, 20, 41, &[]); // close-ok for the server's close
        c.channel_open(1);

        // The client has seen the server's close and answers it with its
        // own close before close-ok.
        c.send_method(1, 50, 10, &passive_declare_args(&missing));
        let m = expect(&mut c, 1, 20, 40);
        assert_eq!(m.close_reason().0, 404);
        c.send_method(1, 20, 40, &close_args(200, "bye"));
        expect(&mut c, 1, 20, 41);
        c.send_method(1, 20, 41, &[]);
        c.channel_open(1);

        // The connection is healthy after both.
        c.channel_open(2);
        c.queue_declare(2, "");
    }
}

#[test]
fn close_ok_for_a_channel_not_open_is_504() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (mut c, _) = RawConn::open(&b.addr());
        c.channel_open(1);
        c.send_method(1, 20, 40, &close_args(200, "bye"));
        expect(&mut c, 1, 20, 41);
        // A stray close-ok after the handshake finished.
        c.send_method(1, 20, 41, &[]);
        let m = expect(&mut c, 0, 10, 50);
        assert_eq!(
            m.close_reason(),
            (504, "CHANNEL_ERROR - expected 'channel.open'".to_string())
        );
        c.send_method(0, 10, 51, &[]);
    }
}

#[test]
fn client_connection_close_crossing_a_server_connection_close() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);

        // The client answers the server's close with a close of its own:
        // close-ok, and the server still waits for the client's close-ok.
        let (mut c, _) = RawConn::open(&b.addr());
        provoke_504(&mut c);
        c.send_method(0, 10, 50, &close_args(200, "bye"));
        expect(&mut c, 0, 10, 51);
        assert_eq!(c.watch_socket(Duration::from_millis(700)), SocketEnd::Open);
        c.send_method(0, 10, 51, &[]);
        let end = c.watch_socket(Duration::from_secs(5));
        assert!(
            matches!(end, SocketEnd::Eof(t) | SocketEnd::Reset(t) if t < Duration::from_secs(2)),
            "closed once the client's close-ok came: {end:?}"
        );

        // Both in flight at once: the error and the client's close in one
        // write. Warren sends its close, then answers the client's with
        // close-ok; RabbitMQ (channels are processes of their own) may see
        // the close first and send only close-ok. Either way the client
        // gets its close-ok and no reset.
        let (mut c, _) = RawConn::open(&b.addr());
        let mut bytes = RawConn::method_bytes(7, 20, 41, &[]);
        bytes.extend(RawConn::method_bytes(0, 10, 50, &close_args(200, "bye")));
        c.send_bytes(&bytes);
        let first = c.expect_method();
        if is(&first, 0, 10, 50) {
            assert_eq!(first.close_reason().0, 504);
            expect(&mut c, 0, 10, 51);
            c.send_method(0, 10, 51, &[]);
        } else {
            assert!(is(&first, 0, 10, 51), "close-ok: {first:?}");
            assert_eq!(c.watch_socket(Duration::from_millis(500)), SocketEnd::Open);
        }
    }
}

fn consume_on(c: &mut RawConn, channel: u16, queue: &str, tag: &str) {
    assert_eq!(c.basic_consume(channel, queue, tag), tag);
}

fn delete_args(queue: &str) -> Vec<u8> {
    Args::new()
        .short(0)
        .shortstr(queue)
        .bits(&[false, false, false])
        .done()
}

#[test]
fn queue_delete_ok_comes_before_the_channels_own_basic_cancel() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let mut c = RawConn::open_with_capabilities(&b.addr(), &["consumer_cancel_notify"]);
        c.channel_open(1);
        c.channel_open(2);
        // Several queues, so that with 2 shards some live on the other one.
        for i in 0..4 {
            let q = unique_name(&format!("slips-del-{i}"));
            c.queue_declare(1, &q);
            consume_on(&mut c, 1, &q, "own");
            consume_on(&mut c, 2, &q, "other");
            c.send_method(1, 50, 40, &delete_args(&q));
            // Channel 2's notification may come at any point; channel 1's
            // comes after its delete-ok.
            let mut seen = Vec::new();
            while seen.len() < 3 {
                let m = c.expect_method();
                let tag = if is(&m, 1, 50, 41) {
                    "delete-ok".to_string()
                } else {
                    assert_eq!((m.class, m.method), (60, 30), "basic.cancel: {m:?}");
                    m.reader().shortstr()
                };
                seen.push((m.channel, tag));
            }
            seen.retain(|(ch, _)| *ch == 1);
            assert_eq!(
                seen,
                vec![(1, "delete-ok".to_string()), (1, "own".to_string())],
                "queue {q}"
            );
        }
    }
}

#[test]
fn no_basic_cancel_without_consumer_cancel_notify() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (mut c, _) = RawConn::open(&b.addr());
        c.channel_open(1);
        let q = unique_name("slips-nocancel");
        c.queue_declare(1, &q);
        consume_on(&mut c, 1, &q, "quiet");
        c.send_method(1, 50, 40, &delete_args(&q));
        expect(&mut c, 1, 50, 41);
        // The next thing on the channel is the answer to the next method.
        c.basic_qos(1, 5);
        c.send_method(1, 20, 20, &Args::new().bits(&[true]).done());
        expect(&mut c, 1, 20, 21);
    }
}

#[test]
fn channel_flow_active_false_is_540() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (mut c, _) = RawConn::open(&b.addr());
        c.channel_open(1);
        c.send_method(1, 20, 20, &Args::new().bits(&[true]).done());
        let m = expect(&mut c, 1, 20, 21);
        assert_eq!(m.args, vec![1], "flow-ok active=true");
        c.send_method(1, 20, 20, &Args::new().bits(&[false]).done());
        let m = expect(&mut c, 0, 10, 50);
        assert_eq!(
            m.close_reason(),
            (540, "NOT_IMPLEMENTED - active=false".to_string())
        );
        assert_eq!(m.reader().skip_close_text(), 20 << 16 | 20);
        c.send_method(0, 10, 51, &[]);
    }
}

#[test]
fn publish_immediate_is_540() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for mandatory in [false, true] {
            let (mut c, _) = RawConn::open(&b.addr());
            c.channel_open(1);
            let q = c.queue_declare(1, "").0;
            c.send_bytes(&RawConn::publish_bytes(1, "", &q, mandatory, true, b"now"));
            let m = expect(&mut c, 0, 10, 50);
            assert_eq!(
                m.close_reason(),
                (540, "NOT_IMPLEMENTED - immediate=true".to_string())
            );
            assert_eq!(m.reader().skip_close_text(), 60 << 16 | 40);
            c.send_method(0, 10, 51, &[]);
        }
    }
}
