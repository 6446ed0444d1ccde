//! Connection-level behaviour: protocol header, authentication, tune
//! negotiation, channel open/close and channel-id errors, client close,
//! server properties, and SIGTERM shutdown (320 CONNECTION_FORCED, exit 0).

mod common;

use common::raw::{self, Args, RawConn, PROTOCOL_HEADER};
use common::*;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

#[test]
fn wrong_protocol_header_gets_server_header_and_close() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for header in [&b"AMQP\x01\x01\x00\x0a"[..], b"GET / HTTP/1.1\r\n\r\n"] {
            let mut c = RawConn::connect(&b.addr());
            c.send_bytes(header);
            let reply = c.read_until_eof();
            assert_eq!(
                reply, PROTOCOL_HEADER,
                "reply to header {header:?} must be the 0-9-1 header, then close"
            );
        }
    }
}

#[test]
fn tune_proposes_rabbitmq_defaults() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (mut c, tune) = RawConn::open(&b.addr());
        assert_eq!(
            tune,
            raw::Tune {
                channel_max: 2047,
                frame_max: 131_072,
                heartbeat: 60
            }
        );
        // The connection is usable after the handshake.
        c.channel_open(1);
        let (name, messages, consumers) = c.queue_declare(1, "");
        assert!(name.starts_with("amq.gen-"), "server-named queue {name:?}");
        assert_eq!((messages, consumers), (0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_negotiate_tune() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let cfg = conn.configuration();
            assert_eq!(cfg.frame_max(), 131_072);
            assert_eq!(cfg.channel_max(), 2047);
            assert_eq!(cfg.heartbeat(), 60);
            assert!(conn.status().connected());
            assert_eq!(conn.status().username(), "guest");
            conn.close(200, "bye".into()).await.expect("close");

            let conn = amqprs_connect(&b).await;
            assert_eq!(conn.frame_max(), 131_072);
            assert_eq!(conn.channel_max(), 2047);
            assert_eq!(conn.heartbeat(), 60);
            assert!(conn.is_open());
            conn.close().await.expect("amqprs close");
        })
        .await;
    }
}

#[test]
fn server_properties_name_the_shard() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (c, _) = RawConn::open(&b.addr());
        let entries = raw::table_entries(&c.server_properties).expect("well-formed table");
        let keys: Vec<&str> = entries.iter().map(|(k, _, _)| k.as_str()).collect();
        for k in ["product", "version", "capabilities"] {
            assert!(keys.contains(&k), "server properties lack {k}: {keys:?}");
        }
        if skip_if_external("the warren-shard server property is Warren's own") {
            continue;
        }
        let shard = entries
            .iter()
            .find(|(k, _, _)| k == "warren-shard")
            .and_then(|(_, _, v)| *v)
            .expect("integer server property warren-shard");
        assert!(
            (0..shards as i64).contains(&shard),
            "warren-shard {shard} out of range for {shards} shards"
        );
    }
}

#[test]
fn wrong_password_without_capability_closes_socket() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let mut c = RawConn::connect(&b.addr());
        c.begin();
        c.start_ok("guest", "wrong-password", false);
        // No tune, no close method: the server just drops the socket
        // (read_until_eof panics if it stays open past the read timeout).
        let sent = c.read_until_eof();
        assert!(sent.is_empty(), "expected a bare close, got {sent:?}");
    }
}

#[test]
fn wrong_password_with_capability_gets_access_refused() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let mut c = RawConn::connect(&b.addr());
        c.begin();
        c.start_ok("guest", "wrong-password", true);
        let m = c.expect_method();
        assert_eq!(
            (m.channel, m.class, m.method),
            (0, 10, 50),
            "connection.close"
        );
        let (code, text) = m.close_reason();
        assert_eq!(code, 403);
        assert!(
            text.starts_with("ACCESS_REFUSED - "),
            "reply text {text:?} starts with ACCESS_REFUSED"
        );
        assert!(c.closed_by_server(), "socket closed after the refusal");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_see_failed_login() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            // lapin advertises authentication_failure_close: it gets 403.
            let uri = b.uri().replacen("guest:guest@", "guest:nope@", 1);
            let r = lapin::Connection::connect(&uri, lapin::ConnectionProperties::default()).await;
            let text = assert_lapin_code(r.map(|_| ()), 403);
            assert!(text.starts_with("ACCESS_REFUSED - "), "{text:?}");
            // amqprs fails to open too.
            assert!(amqprs_connect_as(&b, "guest", "nope").await.is_err());
            // Good credentials still work afterwards.
            let conn = lapin_connect(&b).await;
            assert!(conn.status().connected());
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_open_and_close() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let mut channels = Vec::new();
            for _ in 0..5 {
                channels.push(conn.create_channel().await.expect("channel open"));
            }
            let ids: Vec<u16> = channels.iter().map(|c| c.id()).collect();
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 5, "distinct channel ids {ids:?}");
            for ch in &channels[..3] {
                ch.close(200, "done".into()).await.expect("channel close");
                assert!(!ch.status().connected());
            }
            // The remaining channels and the connection still work.
            for ch in &channels[3..] {
                let q = ch
                    .queue_declare(
                        "".into(),
                        QueueDeclareOptions {
                            exclusive: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .expect("declare on open channel");
                assert!(q.name().as_str().starts_with("amq.gen-"));
            }
            let again = conn.create_channel().await.expect("reopen");
            assert!(again.status().connected());
            conn.close(200, "bye".into()).await.expect("close");
            assert!(!conn.status().connected());

            let conn = amqprs_connect(&b).await;
            let ch = conn.open_channel(None).await.expect("amqprs channel");
            assert!(ch.is_open());
            ch.close().await.expect("amqprs channel close");
            let ch = conn.open_channel(Some(7)).await.expect("amqprs channel 7");
            assert_eq!(ch.channel_id(), 7);
            ch.close().await.expect("amqprs channel 7 close");
            conn.close().await.expect("amqprs close");
        })
        .await;
    }
}

#[test]
fn channel_numbers_above_channel_max_are_allowed_as_in_rabbitmq() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (mut c, tune) = RawConn::open(&b.addr());
        c.channel_open(tune.channel_max);
        // RabbitMQ 3.10 limits the number of open channels, not their ids
        // (the spec says ids; clients are written against RabbitMQ): it
        // opens channel 2048, and so does Warren. The count limit is
        // `more_channels_than_negotiated_channel_max` in hostile_input.rs.
        c.send_method(
            tune.channel_max + 1,
            20,
            10,
            &Args::new().shortstr("").done(),
        );
        let m = c.expect_method();
        assert_eq!((m.channel, m.class, m.method), (2048, 20, 11), "{m:?}");
    }
}

#[test]
fn reopening_an_open_channel_is_a_connection_error() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (mut c, _) = RawConn::open(&b.addr());
        c.channel_open(1);
        c.send_method(1, 20, 10, &Args::new().shortstr("").done());
        let m = c.expect_method();
        assert_eq!(
            (m.channel, m.class, m.method),
            (0, 10, 50),
            "connection.close: {m:?}"
        );
        let (code, text) = m.close_reason();
        assert_eq!(code, 504);
        assert_eq!(text, "CHANNEL_ERROR - second 'channel.open' seen");
        c.send_method(0, 10, 51, &[]);
        assert!(c.closed_by_server());
    }
}

#[test]
fn client_connection_close_gets_close_ok() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (mut c, _) = RawConn::open(&b.addr());
        c.channel_open(1);
        c.channel_open(2);
        let args = Args::new()
            .short(200)
            .shortstr("bye")
            .short(0)
            .short(0)
            .done();
        c.send_method(0, 10, 50, &args);
        let m = c.expect_method();
        assert_eq!(
            (m.channel, m.class, m.method),
            (0, 10, 51),
            "close-ok: {m:?}"
        );
        // The client that sent close closes the socket (RabbitMQ does not).
        c.drop_socket();
    }
}

#[test]
fn channel_close_gets_close_ok_and_id_is_reusable() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (mut c, _) = RawConn::open(&b.addr());
        c.channel_open(3);
        let args = Args::new()
            .short(200)
            .shortstr("done")
            .short(0)
            .short(0)
            .done();
        c.send_method(3, 20, 40, &args);
        let m = c.expect_method();
        assert_eq!(
            (m.channel, m.class, m.method),
            (3, 20, 41),
            "channel.close-ok"
        );
        c.channel_open(3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_connections_with_connection_forced() {
    if skip_if_external("it sends SIGTERM to a local warren process") {
        return;
    }
    for shards in SHARD_COUNTS {
        let mut b = Broker::start(shards);
        let (mut raw_conn, _) = RawConn::open(&b.addr());
        raw_conn.channel_open(1);
        let conn = lapin_connect(&b).await;
        let ch = conn.create_channel().await.expect("channel");
        b.stop(); // asserts exit code 0
        let m = raw_conn.expect_method();
        assert_eq!(
            (m.channel, m.class, m.method),
            (0, 10, 50),
            "connection.close: {m:?}"
        );
        let (code, text) = m.close_reason();
        assert_eq!(code, 320);
        assert!(text.starts_with("CONNECTION_FORCED - "), "{text:?}");
        // lapin sees its connection gone.
        let ok = eventually(10, || !conn.status().connected()).await;
        assert!(ok, "lapin connection still marked connected after shutdown");
        let r = ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await;
        assert!(r.is_err(), "operations fail after shutdown");
    }
}
