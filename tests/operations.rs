//! Operations: the admin listings through `warren ctl` (queues with ready /
//! unacked / consumers, exchanges, bindings, connections, channels,
//! consumers, counters) and the memory and disk alarms (connection.blocked
//! for publishers, then connection.unblocked once `warren ctl
//! set_vm_memory_high_watermark` / `set_disk_free_limit` clears them). Each
//! test runs with 1 and 2 shards.

mod common;

use common::raw::{Args, RawConn};
use common::*;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::BasicProperties as LapinProperties;
use std::time::Duration;

/// Why the `warren ctl` tests skip against an external broker.
const NEEDS_CTL: &str = "it needs a local warren's admin endpoint (`warren ctl`)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_lists_queues_exchanges_bindings_connections_and_counters() {
    if skip_if_external(NEEDS_CTL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            let q = unique_name("ops-q");
            let pinned = shards - 1;
            ch.queue_declare(
                q.as_str().into(),
                QueueDeclareOptions::default(),
                lapin_placement_args(Some(pinned)),
            )
            .await
            .expect("declare");
            ch.queue_bind(
                q.as_str().into(),
                "amq.topic".into(),
                "ops.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
            for i in 0..3u8 {
                ch.basic_publish(
                    "amq.topic".into(),
                    "ops.x".into(),
                    BasicPublishOptions::default(),
                    &[i],
                    LapinProperties::default(),
                )
                .await
                .expect("publish");
            }
            // One delivered but unacked (basic.get), two ready.
            let got = ch
                .basic_get(q.as_str().into(), BasicGetOptions::default())
                .await
                .expect("get");
            assert!(got.is_some());
            let consumer_q = unique_name("ops-consumed");
            ch.queue_declare(
                consumer_q.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("declare");
            let _consumer = ch
                .basic_consume(
                    consumer_q.as_str().into(),
                    "ops-tag".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("consume");

            let queues = ctl(&b, "list_queues");
            assert!(
                queues.starts_with("Timeout: 60.0 seconds ...\nListing queues for vhost / ...\n"),
                "{queues}"
            );
            let r = row(&queues, &q);
            // name, ready, unacked, consumers, durable, auto_delete, exclusive, shard
            assert_eq!(&r[1..4], ["2", "1", "0"], "{queues}");
            assert_eq!(r[7], pinned.to_string());
            assert_eq!(row(&queues, &consumer_q)[3], "1");

            let exchanges = ctl(&b, "list_exchanges");
            assert_eq!(row(&exchanges, "amq.topic")[1], "topic");

            let bindings = ctl(&b, "list_bindings");
            let binding = row(&bindings, "amq.topic");
            assert_eq!(&binding[1..4], ["queue", q.as_str(), "ops.#"]);

            let consumers = ctl(&b, "list_consumers");
            assert_eq!(row(&consumers, &consumer_q)[1], "ops-tag");

            let connections = ctl(&b, "list_connections");
            assert!(connections.lines().count() >= 3, "{connections}");
            let channels = ctl(&b, "list_channels");
            assert!(
                channels.contains("\t1\t1\t1\t"),
                "one channel with a consumer and one unacked:\n{channels}"
            );

            let status = ctl(&b, "status");
            let total = row(&status, "total");
            assert!(
                total[1].parse::<u64>().unwrap() >= 3,
                "published:\n{status}"
            );

            // An unknown command is a usage error (rabbitmqctl's 64), not
            // a crash.
            let out = ctl_output(&b, &["list_nothing"]);
            assert_eq!(out.status.code(), Some(64));
            conn.close(200, "".into()).await.expect("close");
        })
        .await;
    }
}

/// A raw connection whose client properties advertise the
/// `connection.blocked` capability (the broker only notifies such clients).
fn raw_connect_blocking_aware(b: &Broker) -> (RawConn, u32) {
    raw_connect_blocking_aware_with_heartbeat(b, 0)
}

/// `raw_connect_blocking_aware`, asking for heartbeats every `heartbeat` s.
fn raw_connect_blocking_aware_with_heartbeat(b: &Broker, heartbeat: u16) -> (RawConn, u32) {
    let mut c = RawConn::connect(&b.addr());
    c.begin();
    let key = b"connection.blocked";
    let mut caps = vec![key.len() as u8];
    caps.extend_from_slice(key);
    caps.extend_from_slice(b"t\x01");
    let mut props = vec![b"capabilities".len() as u8];
    props.extend_from_slice(b"capabilities");
    props.push(b'F');
    props.extend_from_slice(&(caps.len() as u32).to_be_bytes());
    props.extend_from_slice(&caps);
    let start_ok = Args::new()
        .table(&props)
        .shortstr("PLAIN")
        .longstr(b"\0guest\0guest")
        .shortstr("en_US")
        .done();
    c.send_method(0, 10, 11, &start_ok);
    let tune = c.expect_method();
    assert_eq!((tune.class, tune.method), (10, 30));
    let mut r = tune.reader();
    let (channel_max, frame_max) = (r.short(), r.long());
    c.send_method(
        0,
        10,
        31,
        &Args::new()
            .short(channel_max)
            .long(frame_max)
            .short(heartbeat)
            .done(),
    );
    c.send_method(
        0,
        10,
        40,
        &Args::new().shortstr("/").shortstr("").octet(0).done(),
    );
    let ok = c.expect_method();
    assert_eq!((ok.class, ok.method), (10, 41));
    (c, frame_max)
}

/// The alarm that `flags` raise from the start blocks a publisher that
/// advertises `connection.blocked`: its first publish is taken, then it gets
/// connection.blocked with `reason` and nothing more is read from it (a
/// second publish stays out of the queue), while a connection that never
/// published is served. `warren ctl <set_limit> <value>` clears the alarm:
/// the publisher gets connection.unblocked and its second message arrives.
async fn alarm_blocks_until_ctl_clears_it(
    flags: &[&str],
    reason: &str,
    set_limit: &str,
    value: &str,
) {
    if skip_if_external(
        "it raises alarms with a local warren's flags and clears them with `warren ctl`",
    ) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start_with_args(shards, flags);
        let (mut c, frame_max) = raw_connect_blocking_aware(&b);
        c.channel_open(1);
        let (q, _, _) = c.queue_declare(1, &unique_name("alarm"));
        c.basic_publish(1, "", &q, b"first", frame_max);
        let m = c.expect_method();
        assert_eq!(
            (m.channel, m.class, m.method),
            (0, 10, 60),
            "connection.blocked: {m:?}"
        );
        assert_eq!(m.reader().shortstr(), reason);
        // Sent while blocked: the broker leaves it in the socket.
        c.basic_publish(1, "", &q, b"second", frame_max);

        let (reader, rch) = within(async {
            let reader = lapin_connect(&b).await;
            let rch = reader.create_channel().await.expect("channel");
            wait_ready(&reader, &q, 1).await;
            // Several alarm samples and reader polls later, still one.
            tokio::time::sleep(Duration::from_millis(600)).await;
            assert_eq!(
                ready_count(&reader, &q).await,
                1,
                "a blocked publisher's message was enqueued"
            );
            (reader, rch)
        })
        .await;

        let out = ctl_with(&b, &[set_limit, value]);
        assert!(out.starts_with("Setting "), "warren ctl {set_limit}: {out}");
        let m = c.expect_method();
        assert_eq!(
            (m.channel, m.class, m.method),
            (0, 10, 61),
            "connection.unblocked: {m:?}"
        );

        within(async {
            wait_ready(&reader, &q, 2).await;
            for body in [&b"first"[..], b"second"] {
                let got = rch
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                    .await
                    .expect("get")
                    .expect("get-ok");
                assert_eq!(got.delivery.data, body);
            }
            reader.close(200, "".into()).await.expect("close");
        })
        .await;
        let what = reason.trim_start_matches("low on ");
        assert!(
            b.logs_within(&format!("{what} alarm cleared")),
            "the broker logs the cleared alarm:\n{}",
            b.log().join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_alarm_blocks_publishers_until_the_watermark_is_raised() {
    // A watermark of one byte: the alarm is on from the start; a petabyte
    // clears it.
    alarm_blocks_until_ctl_clears_it(
        &["--memory-high-watermark", "1"],
        "low on memory",
        "set_vm_memory_high_watermark",
        "1000000000000000",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_alarm_blocks_publishers_until_the_limit_is_lowered() {
    // A petabyte of free disk required: the alarm is on from the start;
    // one byte clears it.
    alarm_blocks_until_ctl_clears_it(
        &["--disk-free-limit", "1000000000000000"],
        "low on disk",
        "set_disk_free_limit",
        "1",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_refuses_bad_limits() {
    if skip_if_external(NEEDS_CTL) {
        return;
    }
    let b = Broker::start(1);
    let run = |words: &[&str]| ctl_output(&b, words);
    for words in [
        &["set_disk_free_limit"][..],
        &["set_disk_free_limit", "lots"],
        &["set_vm_memory_high_watermark", "1.5"],
    ] {
        assert_eq!(run(words).status.code(), Some(64), "usage error: {words:?}");
    }
    // The broker checks too, and only POST changes a limit.
    let http = |request: &str| admin_request(&admin_addr(&b), request);
    let r = http("POST /set_disk_free_limit/x HTTP/1.0\r\n\r\n");
    assert!(r.starts_with("HTTP/1.0 400"), "{r}");
    let r = http("GET /set_disk_free_limit/1 HTTP/1.0\r\n\r\n");
    assert!(r.starts_with("HTTP/1.0 405"), "{r}");
    let out = ctl_with(
        &b,
        &["set_vm_memory_high_watermark", "absolute", "2000000000"],
    );
    assert_eq!(
        out,
        "Setting memory high watermark to 2000000000 bytes ...\n"
    );
    assert!(
        b.logs_within("admin: setting memory high watermark to 2000000000 bytes"),
        "{}",
        b.log().join("\n")
    );
}

/// A publisher blocked by an alarm is not read, so neither are its
/// heartbeats: the broker pauses its heartbeat monitor while the reader
/// waits (as RabbitMQ's reader does, `rabbit_heartbeat:pause_monitor`)
/// instead of dropping the client after two heartbeat intervals.
#[test]
fn a_blocked_publisher_is_not_dropped_for_missed_heartbeats() {
    if skip_if_external("it raises an alarm with a local warren's flags") {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start_with_args(shards, &["--memory-high-watermark", "1"]);
        let (mut c, frame_max) = raw_connect_blocking_aware_with_heartbeat(&b, 1);
        c.channel_open(1);
        let (q, _, _) = c.queue_declare(1, &unique_name("heartbeat"));
        c.basic_publish(1, "", &q, b"first", frame_max);
        let m = c.expect_method();
        assert_eq!(
            (m.channel, m.class, m.method),
            (0, 10, 60),
            "connection.blocked: {m:?}"
        );
        // Four heartbeat intervals without a byte from the client.
        std::thread::sleep(Duration::from_secs(4));
        assert!(
            !b.logs_within("missed heartbeats"),
            "shards {shards}: the blocked publisher was dropped"
        );
        let out = ctl_with(&b, &["set_vm_memory_high_watermark", "1000000000000000"]);
        assert!(out.starts_with("Setting "), "{out}");
        let m = c.expect_method();
        assert_eq!(
            (m.channel, m.class, m.method),
            (0, 10, 61),
            "connection.unblocked: {m:?}"
        );
        // Still served: a declare is answered.
        let (_, ready, _) = c.queue_declare(1, &q);
        assert_eq!(ready, 1, "shards {shards}");
    }
}
