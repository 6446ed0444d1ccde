//! Operations: the admin listings through `warren ctl` (queues with ready /
//! unacked / consumers, exchanges, bindings, connections, channels,
//! consumers, counters) and the memory alarm (connection.blocked /
//! unblocked for publishers). Each test runs with 1 and 2 shards.

mod common;

use common::raw::{Args, RawConn};
use common::*;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::BasicProperties as LapinProperties;
use std::process::Command;

/// The admin address the broker printed at start.
fn admin_addr(b: &Broker) -> String {
    b.log()
        .iter()
        .find_map(|l| {
            l.split("admin endpoint on ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string)
        })
        .expect("the broker prints its admin endpoint")
}

fn ctl(b: &Broker, command: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["ctl", "--admin", &admin_addr(b), command])
        .output()
        .expect("run warren ctl");
    assert!(
        out.status.success(),
        "warren ctl {command} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The row of a tab-separated listing whose first column is `name`.
fn row(listing: &str, name: &str) -> Vec<String> {
    listing
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect::<Vec<_>>())
        .find(|cols| cols.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row '{name}' in:\n{listing}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_lists_queues_exchanges_bindings_connections_and_counters() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        if b.is_external() {
            return;
        }
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
                queues.starts_with("Listing queues for vhost / ...\n"),
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

            // An unknown command is a usage error, not a crash.
            let out = Command::new(env!("CARGO_BIN_EXE_warren"))
                .args(["ctl", "--admin", &admin_addr(&b), "list_nothing"])
                .output()
                .expect("run warren ctl");
            assert_eq!(out.status.code(), Some(2));
            conn.close(200, "".into()).await.expect("close");
        })
        .await;
    }
}

/// A raw connection whose client properties advertise the
/// `connection.blocked` capability (the broker only notifies such clients).
fn raw_connect_blocking_aware(b: &Broker) -> (RawConn, u32) {
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
            .short(0)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_alarm_blocks_publishers() {
    for shards in SHARD_COUNTS {
        // A watermark of one byte: the alarm is on from the start.
        let b = Broker::start_with_args(shards, &["--memory-high-watermark", "1"]);
        if b.is_external() {
            return;
        }
        let (mut c, frame_max) = raw_connect_blocking_aware(&b);
        c.channel_open(1);
        let (q, _, _) = c.queue_declare(1, &unique_name("alarm"));
        c.basic_publish(1, "", &q, b"x", frame_max);
        // The publish is taken, then the connection is blocked.
        let m = c.expect_method();
        assert_eq!(
            (m.channel, m.class, m.method),
            (0, 10, 60),
            "connection.blocked: {m:?}"
        );
        assert_eq!(m.reader().shortstr(), "low on memory");
        within(async {
            // A connection that never published is not blocked: it can still
            // declare and read the queue, which holds the message.
            let reader = lapin_connect(&b).await;
            let rch = reader.create_channel().await.expect("channel");
            let ok = rch
                .queue_declare(
                    q.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("passive declare on a non-publishing connection");
            assert_eq!(ok.message_count(), 1);
            reader.close(200, "".into()).await.expect("close");
        })
        .await;
    }
}
