//! Message TTL (issue 11): `x-message-ttl` per queue and `expiration` per
//! message (the lower wins); expired messages are never delivered and stop
//! counting; Warren expires a message wherever it is in the queue (RabbitMQ
//! only at the head), paged-out ones included; TTL 0 delivers only to a
//! consumer that can take the message at once; a durable queue's messages
//! keep their deadline across a restart; an invalid `expiration` is refused
//! as RabbitMQ refuses it. Each test runs with 1 and 2 shards and the queue
//! on each shard.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicGetOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use std::time::{Duration, Instant};

/// Placement arguments plus `x-message-ttl` (if any).
fn ttl_args(placement: Option<usize>, ttl: Option<i64>) -> FieldTable {
    let mut t = lapin_placement_args(placement);
    if let Some(ttl) = ttl {
        t.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
    }
    t
}

async fn declare(ch: &lapin::Channel, q: &str, durable: bool, args: FieldTable) {
    ch.queue_declare(
        q.into(),
        lapin::options::QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        args,
    )
    .await
    .unwrap_or_else(|e| panic!("declare {q}: {e}"));
}

fn expiring(ms: u64) -> BasicProperties {
    BasicProperties::default().with_expiration(ms.to_string().into())
}

/// Polls the ready count until it is `n` (within `secs`); returns the time
/// it took.
async fn until_ready(conn: &lapin::Connection, q: &str, n: u32, secs: u64) -> Duration {
    let start = Instant::now();
    loop {
        let c = ready_count(conn, q).await;
        if c == n {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{q} holds {c} ready messages, wanted {n}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_ttl_expires_messages_unseen() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                let q = unique_name("ttl-q");
                declare(&ch, &q, false, ttl_args(placement, Some(300))).await;
                publish_confirmed(&ch, &q, &padded_bodies("t", 20), BasicProperties::default())
                    .await;
                assert_eq!(ready_count(&conn, &q).await, 20);
                until_ready(&conn, &q, 0, 5).await;
                assert!(drain(&conn, &q).await.is_empty(), "{q}: nothing to get");
                // A consumer that arrives later sees nothing either.
                let c = conn.create_channel().await.unwrap();
                let mut consumer = c
                    .basic_consume(
                        q.as_str().into(),
                        "late".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .unwrap();
                let got = tokio::time::timeout(Duration::from_millis(300), consumer.next()).await;
                assert!(got.is_err(), "{q}: an expired message was delivered");
                let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_message_expiration_and_the_lower_wins() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                // No queue TTL: the message's own expiration.
                let q1 = unique_name("ttl-msg");
                declare(&ch, &q1, false, ttl_args(placement, None)).await;
                publish_confirmed(&ch, &q1, &strings(&["short"]), expiring(200)).await;
                publish_confirmed(&ch, &q1, &strings(&["keep"]), BasicProperties::default()).await;
                until_ready(&conn, &q1, 1, 5).await;
                assert_eq!(bodies_only(drain(&conn, &q1).await), strings(&["keep"]));
                // Queue TTL 200 ms, message 60 s: the queue's wins.
                let q2 = unique_name("ttl-lower-q");
                declare(&ch, &q2, false, ttl_args(placement, Some(200))).await;
                publish_confirmed(&ch, &q2, &strings(&["m"]), expiring(60_000)).await;
                until_ready(&conn, &q2, 0, 5).await;
                // Queue TTL 60 s, message 200 ms: the message's wins.
                let q3 = unique_name("ttl-lower-m");
                declare(&ch, &q3, false, ttl_args(placement, Some(60_000))).await;
                publish_confirmed(&ch, &q3, &strings(&["m"]), expiring(200)).await;
                until_ready(&conn, &q3, 0, 5).await;
                for q in [q1, q2, q3] {
                    let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_ttl_behind_a_long_one_expires_on_time() {
    if skip_if_external(
        "RabbitMQ expires a per-message TTL only at the head of the queue; \
         Warren expires it wherever it is",
    ) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                let q = unique_name("ttl-behind");
                declare(&ch, &q, false, ttl_args(placement, None)).await;
                publish_confirmed(&ch, &q, &strings(&["long"]), expiring(60_000)).await;
                publish_confirmed(&ch, &q, &strings(&["short"]), expiring(200)).await;
                publish_confirmed(&ch, &q, &strings(&["none"]), BasicProperties::default()).await;
                until_ready(&conn, &q, 2, 3).await;
                assert_eq!(
                    bodies_only(drain(&conn, &q).await),
                    strings(&["long", "none"])
                );
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_out_messages_expire_without_a_consumer() {
    if skip_if_external("it sets a local warren's --memory-budget and reads `warren ctl`") {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start_with_args(shards, &["--memory-budget", "65536"]);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                for (durable, props) in [(false, BasicProperties::default()), (true, persistent())]
                {
                    // Queue TTL: whole runs expire (dropped unread).
                    let q = unique_name(&format!("ttl-paged-{durable}"));
                    declare(&ch, &q, durable, ttl_args(placement, Some(1500))).await;
                    publish_confirmed(&ch, &q, &padded_bodies("p", 2000), props.clone()).await;
                    let out = ctl(&b, "list_queues");
                    assert!(cell_num(&out, &q, "messages_paged_out") > 0, "{q} paged");
                    until_ready(&conn, &q, 0, 10).await;
                    let out = ctl(&b, "list_queues");
                    assert_eq!(cell_num(&out, &q, "messages_ready"), 0, "{q}");
                    // Per-message: a few short ones among long ones, all
                    // paged (runs are scanned, just those taken out).
                    let q2 = unique_name(&format!("ttl-paged-mix-{durable}"));
                    declare(&ch, &q2, durable, ttl_args(placement, None)).await;
                    let filler = padded_bodies("f", 1500);
                    publish_confirmed(&ch, &q2, &filler, props.clone()).await;
                    let short = props.clone().with_expiration("300".into());
                    publish_confirmed(&ch, &q2, &padded_bodies("s", 10), short).await;
                    publish_confirmed(&ch, &q2, &padded_bodies("g", 10), props.clone()).await;
                    // Only the end state is asserted: on a loaded machine the
                    // short ones may expire before a count could see 1520.
                    until_ready(&conn, &q2, 1510, 10).await;
                    let got = bodies_only(drain(&conn, &q2).await);
                    assert_eq!(got.len(), 1510);
                    assert!(got.iter().all(|b| !b.starts_with("s-")), "{q2}");
                    for q in [q, q2] {
                        let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
                    }
                }
            })
            .await;
        }
    }
}

/// Publishes one message to `q` and returns whether basic.get finds it.
async fn publish_then_get(ch: &lapin::Channel, q: &str, props: BasicProperties) -> bool {
    ch.basic_publish(
        "".into(),
        q.into(),
        BasicPublishOptions::default(),
        b"zero",
        props,
    )
    .await
    .unwrap()
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    ch.basic_get(q.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_zero_delivers_only_to_a_ready_consumer() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                // Without a consumer: expired at once (basic.get sees nothing).
                let q = unique_name("ttl-zero");
                declare(&ch, &q, false, ttl_args(placement, Some(0))).await;
                assert!(!publish_then_get(&ch, &q, BasicProperties::default()).await);
                let q2 = unique_name("ttl-zero-msg");
                declare(&ch, &q2, false, ttl_args(placement, None)).await;
                assert!(!publish_then_get(&ch, &q2, expiring(0)).await);
                // With a consumer ready: delivered.
                let c = conn.create_channel().await.unwrap();
                let mut consumer = c
                    .basic_consume(
                        q.as_str().into(),
                        "zero".into(),
                        BasicConsumeOptions {
                            no_ack: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .unwrap();
                publish_confirmed(&ch, &q, &strings(&["now"]), BasicProperties::default()).await;
                let d = tokio::time::timeout(Duration::from_secs(5), consumer.next())
                    .await
                    .expect("TTL 0 delivered to a ready consumer")
                    .unwrap()
                    .unwrap();
                assert_eq!(d.data, b"now");
                for q in [q, q2] {
                    let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_expiration_is_refused() {
    let cases = [
        ("abc", "invalid expiration 'abc': no_integer"),
        ("-5", "invalid expiration '-5': {value_negative,-5}"),
        ("1.5", "invalid expiration '1.5': {leftover_string,\".5\"}"),
    ];
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let q = unique_name("ttl-bad");
            let ch = conn.create_channel().await.unwrap();
            declare(&ch, &q, false, FieldTable::default()).await;
            for (exp, text) in cases {
                let ch = conn.create_channel().await.unwrap();
                let props = BasicProperties::default().with_expiration(exp.into());
                let r = publish_refused(&ch, "", &q, props).await;
                assert_lapin_error(r, 406, &format!("PRECONDITION_FAILED - {text}"));
            }
            let ch = conn.create_channel().await.unwrap();
            let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_queue_keeps_the_time_left_across_a_restart() {
    if skip_if_external("it restarts a local warren") {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-ttl-");
        let q = unique_name("ttl-durable");
        let mut b = Broker::start_in(shards, dir.path());
        let placement = last_shard(shards);
        let published = Instant::now();
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            declare(&ch, &q, true, ttl_args(placement, Some(4000))).await;
            publish_confirmed(&ch, &q, &strings(&["a", "b"]), persistent()).await;
            publish_confirmed(
                &ch,
                &q,
                &strings(&["forever"]),
                persistent().with_expiration("600000".into()),
            )
            .await;
        })
        .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        b.kill();
        let b = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&b).await;
            // Still there after the restart (about 2.5 s left)…
            assert_eq!(ready_count(&conn, &q).await, 3);
            // …and gone about 4 s after the publish, not 4 s after the restart.
            until_ready(&conn, &q, 0, 10).await;
            let at = published.elapsed();
            assert!(
                at < Duration::from_millis(5200),
                "expired {at:?} after the publish"
            );
        })
        .await;
    }
}

/// VmRSS of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_expiring_messages_keep_rss_bounded() {
    if skip_if_external("it sets a local warren's --memory-budget and reads its RSS") {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start_with_args(shards, &["--memory-budget", "1048576"]);
        let pid = b.pid().expect("local broker");
        within_secs(300, async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            let q = unique_name("ttl-rss");
            declare(&ch, &q, false, ttl_args(last_shard(shards), Some(2000))).await;
            let n = 200_000;
            let mut peak = 0;
            for batch in 0..20 {
                let bodies = padded_bodies(&format!("r{batch}"), n / 20);
                publish_confirmed(&ch, &q, &bodies, BasicProperties::default()).await;
                peak = peak.max(rss(pid));
            }
            until_ready(&conn, &q, 0, 30).await;
            peak = peak.max(rss(pid));
            assert!(
                peak < 150 << 20,
                "RSS peaked at {} MiB for {n} expiring messages",
                peak >> 20
            );
        })
        .await;
    }
}

/// TTL 0 is decided when the message is enqueued, with the consumers'
/// credit at that moment (as RabbitMQ hands a publish to a waiting
/// consumer before it enqueues, then drops what expired): a consumer with
/// prefetch 10 that never acks gets exactly the first 10 of a burst of
/// TTL-0 messages (written in one go, so the broker takes them in large
/// batches and its clock moves while it does), and the others are
/// dead-lettered (reason `expired`), never delivered later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_zero_is_decided_at_enqueue_with_the_consumers_credit() {
    const BURST: usize = 3000;
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within_secs(90, async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                let q = unique_name("ttl-zero-burst");
                let dead = format!("{q}-dead");
                let other = placement.map(|p| (p + 1) % shards);
                declare(&ch, &dead, false, ttl_args(other, None)).await;
                let mut args = ttl_args(placement, Some(0));
                args.insert(
                    "x-dead-letter-exchange".into(),
                    AMQPValue::LongString("".into()),
                );
                args.insert(
                    "x-dead-letter-routing-key".into(),
                    AMQPValue::LongString(dead.as_str().into()),
                );
                declare(&ch, &q, false, args).await;
                let c = conn.create_channel().await.unwrap();
                c.basic_qos(10, Default::default()).await.unwrap();
                let mut consumer = c
                    .basic_consume(
                        q.as_str().into(),
                        "credit-10".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .unwrap();
                let sent = padded_bodies("z", BURST);
                let mut burst = Vec::new();
                for body in &sent {
                    burst.extend(raw::RawConn::publish_bytes(
                        1,
                        "",
                        &q,
                        false,
                        false,
                        body.as_bytes(),
                    ));
                }
                let addr = b.addr();
                let mut publisher = tokio::task::spawn_blocking(move || {
                    let (mut c, _) = raw::RawConn::open(&addr);
                    c.channel_open(1);
                    c.send_bytes(&burst);
                    c
                })
                .await
                .unwrap();
                until_ready(&conn, &dead, (BURST - 10) as u32, 40).await;
                let mut got = Vec::new();
                while got.len() < 10 {
                    let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
                        .await
                        .expect("the first 10 delivered")
                        .unwrap()
                        .unwrap();
                    got.push(String::from_utf8(d.data).unwrap());
                }
                assert_eq!(got, sent[..10].to_vec());
                assert_eq!(ready_count(&conn, &q).await, 0);
                let dead_bodies = bodies_only(drain(&conn, &dead).await);
                assert_eq!(dead_bodies, sent[10..].to_vec());
                for name in [&q, &dead] {
                    let _ = ch
                        .queue_delete(name.as_str().into(), Default::default())
                        .await;
                }
                publisher.send_method(
                    1,
                    20,
                    40,
                    &raw::Args::new()
                        .short(200)
                        .shortstr("")
                        .short(0)
                        .short(0)
                        .done(),
                );
            })
            .await;
        }
    }
}
