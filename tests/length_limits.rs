//! Queue length limits (`x-max-length`, `x-max-length-bytes`) with each
//! `x-overflow` mode, as RabbitMQ's "Queue Length Limit" page documents
//! them: drop-head keeps the newest messages (in memory and paged out,
//! across a restart for a durable queue), the bytes limit counts ready
//! body bytes, reject-publish nacks only the over-limit publish (and
//! drops it silently without confirms) while other queues the publish
//! reached keep it, a limit of 0 keeps nothing but still feeds a waiting
//! consumer, and `warren ctl list_queues` counts what is left. Each test
//! runs with 1 and 2 shards and the queue on each shard; every test but
//! the ones reading `warren ctl` also runs against RabbitMQ.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Confirmation, ExchangeKind};

/// Small enough that a few hundred messages page out.
const BUDGET: &str = "65536";

const NEEDS_LOCAL: &str = "it sets a local warren's --memory-budget and reads `warren ctl`";

/// Queue arguments: the placement plus `limits`.
fn limit_args(placement: Option<usize>, limits: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = lapin_placement_args(placement);
    for (k, v) in limits {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn long(n: i64) -> AMQPValue {
    AMQPValue::LongLongInt(n)
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

async fn declare_limited(
    ch: &lapin::Channel,
    name: &str,
    durable: bool,
    placement: Option<usize>,
    limits: &[(&str, AMQPValue)],
) {
    ch.queue_declare(
        name.into(),
        QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        limit_args(placement, limits),
    )
    .await
    .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

/// Publishes each body to `exchange` / `key` on a confirm channel, and
/// returns for each whether it was acked (true) or nacked (false).
async fn publish_acks(
    ch: &lapin::Channel,
    exchange: &str,
    key: &str,
    bodies: &[String],
    props: BasicProperties,
) -> Vec<bool> {
    let mut confirms = Vec::new();
    for b in bodies {
        confirms.push(
            ch.basic_publish(
                exchange.into(),
                key.into(),
                BasicPublishOptions::default(),
                b.as_bytes(),
                props.clone(),
            )
            .await
            .expect("publish"),
        );
    }
    let mut out = Vec::new();
    for c in confirms {
        out.push(match c.await.expect("confirm") {
            Confirmation::Ack(None) => true,
            Confirmation::Nack(None) => false,
            other => panic!("unexpected confirm {other:?}"),
        });
    }
    out
}

fn bodies(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:04}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_head_keeps_the_newest_messages() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                for (durable, props) in [(false, BasicProperties::default()), (true, persistent())]
                {
                    // The default overflow, and drop-head named.
                    for overflow in [None, Some("drop-head")] {
                        let q = unique_name(&format!("maxlen-{durable}-{placement:?}"));
                        let mut limits = vec![("x-max-length", long(5))];
                        if let Some(o) = overflow {
                            limits.push(("x-overflow", text(o)));
                        }
                        declare_limited(&ch, &q, durable, placement, &limits).await;
                        let sent = bodies("m", 20);
                        // Every publish is confirmed: dropping is not refusing.
                        publish_confirmed(&ch, &q, &sent, props.clone()).await;
                        wait_ready(&conn, &q, 5).await;
                        assert_eq!(bodies_only(drain(&conn, &q).await), sent[15..].to_vec());
                        if !b.is_external() {
                            assert_eq!(ctl_num(&b, "list_queues", &q, "messages_ready"), 0);
                        }
                        ch.queue_delete(q.as_str().into(), Default::default())
                            .await
                            .expect("delete");
                    }
                }
                conn.close(200, "".into()).await.expect("close");
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bytes_limit_counts_ready_body_bytes() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                let q = unique_name(&format!("maxbytes-{placement:?}"));
                declare_limited(
                    &ch,
                    &q,
                    false,
                    placement,
                    &[("x-max-length-bytes", long(1000))],
                )
                .await;
                // 100-byte bodies: exactly 10 fit.
                let sent: Vec<String> = (0..25).map(|i| format!("{i:0100}")).collect();
                publish_confirmed(&ch, &q, &sent, BasicProperties::default()).await;
                wait_ready(&conn, &q, 10).await;
                if !b.is_external() {
                    let out = ctl(&b, "list_queues");
                    assert_eq!(cell_num(&out, &q, "messages_ready"), 10);
                    assert_eq!(cell_num(&out, &q, "message_bytes_ready"), 1000);
                }
                // One 450-byte body pushes out five of the oldest.
                let big = vec!["y".repeat(450)];
                publish_confirmed(&ch, &q, &big, BasicProperties::default()).await;
                let mut want = sent[20..].to_vec();
                want.extend(big);
                wait_ready(&conn, &q, 6).await;
                assert_eq!(bodies_only(drain(&conn, &q).await), want);
                // A body larger than the limit cannot stay at all.
                let huge = vec!["z".repeat(1001)];
                publish_confirmed(&ch, &q, &huge, BasicProperties::default()).await;
                wait_ready(&conn, &q, 0).await;
                conn.close(200, "".into()).await.expect("close");
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_head_drops_paged_out_messages_too() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-limits-");
        let mut b = Broker::start_in_with(shards, dir.path(), &["--memory-budget", BUDGET]);
        let mut queues = Vec::new();
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                for (durable, props) in [(false, BasicProperties::default()), (true, persistent())]
                {
                    let q = unique_name(&format!("maxlen-paged-{durable}-{placement:?}"));
                    declare_limited(&ch, &q, durable, placement, &[("x-max-length", long(1000))])
                        .await;
                    let sent = padded_bodies("p", 3000);
                    publish_confirmed(&ch, &q, &sent, props.clone()).await;
                    let out = ctl(&b, "list_queues");
                    assert_eq!(cell_num(&out, &q, "messages_ready"), 1000, "{q}");
                    assert!(cell_num(&out, &q, "messages_paged_out") > 0, "{q}: {out}");
                    let body_len = sent[0].len() as u64;
                    assert_eq!(cell_num(&out, &q, "message_bytes_ready"), 1000 * body_len);
                    if durable {
                        queues.push((q, sent[2000..].to_vec()));
                    } else {
                        assert_eq!(bodies_only(drain(&conn, &q).await), sent[2000..].to_vec());
                    }
                }
                conn.close(200, "".into()).await.expect("close");
            })
            .await;
        }
        // The durable queues keep their newest 1000 across a restart.
        b.stop();
        let b = Broker::start_in_with(shards, dir.path(), &["--memory-budget", BUDGET]);
        within(async {
            let conn = lapin_connect(&b).await;
            for (q, want) in &queues {
                assert_eq!(ready_count(&conn, q).await, 1000, "{q}");
                assert_eq!(&bodies_only(drain(&conn, q).await), want, "{q}");
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_publish_nacks_only_the_publishes_over_the_limit() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                for overflow in ["reject-publish", "reject-publish-dlx"] {
                    for (durable, props) in
                        [(false, BasicProperties::default()), (true, persistent())]
                    {
                        let q = unique_name(&format!("reject-{durable}-{placement:?}"));
                        declare_limited(
                            &ch,
                            &q,
                            durable,
                            placement,
                            &[("x-max-length", long(3)), ("x-overflow", text(overflow))],
                        )
                        .await;
                        let sent = bodies("r", 5);
                        let acks = publish_acks(&ch, "", &q, &sent, props.clone()).await;
                        assert_eq!(acks, [true, true, true, false, false], "{overflow}");
                        assert_eq!(ready_count(&conn, &q).await, 3);
                        // Room again after one leaves: the next publish is taken.
                        let got = drain(&conn, &q).await;
                        assert_eq!(bodies_only(got), sent[..3].to_vec());
                        let acks = publish_acks(&ch, "", &q, &bodies("s", 4), props.clone()).await;
                        assert_eq!(acks, [true, true, true, false]);
                        ch.queue_delete(q.as_str().into(), Default::default())
                            .await
                            .expect("delete");
                    }
                }
                conn.close(200, "".into()).await.expect("close");
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_publish_bytes_limit_refuses_what_would_not_fit() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let placement = last_shard(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            let q = unique_name("reject-bytes");
            declare_limited(
                &ch,
                &q,
                false,
                placement,
                &[
                    ("x-max-length-bytes", long(10)),
                    ("x-overflow", text("reject-publish")),
                ],
            )
            .await;
            let sent = strings(&["1234", "5678", "abc", "de", "f"]);
            let acks = publish_acks(&ch, "", &q, &sent, BasicProperties::default()).await;
            assert_eq!(acks, [true, true, false, true, false]);
            assert_eq!(
                bodies_only(drain(&conn, &q).await),
                strings(&["1234", "5678", "de"])
            );
            conn.close(200, "".into()).await.expect("close");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_publish_nacks_but_other_queues_keep_the_message() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            let x = unique_name("reject-fanout");
            ch.exchange_declare(
                x.as_str().into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("exchange.declare");
            // The limited queue on one shard, the other on another.
            let full = unique_name("reject-full");
            let open = unique_name("reject-open");
            declare_limited(
                &ch,
                &full,
                false,
                Some(0),
                &[
                    ("x-max-length", long(1)),
                    ("x-overflow", text("reject-publish")),
                ],
            )
            .await;
            declare_queue(&ch, &open, false, last_shard(shards)).await;
            for q in [&full, &open] {
                ch.queue_bind(
                    q.as_str().into(),
                    x.as_str().into(),
                    "".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("bind");
            }
            let sent = bodies("f", 3);
            let acks = publish_acks(&ch, &x, "", &sent, BasicProperties::default()).await;
            // RabbitMQ: a publish is nacked if any queue it reached refused it.
            assert_eq!(acks, [true, false, false]);
            assert_eq!(bodies_only(drain(&conn, &full).await), sent[..1].to_vec());
            assert_eq!(bodies_only(drain(&conn, &open).await), sent);
            conn.close(200, "".into()).await.expect("close");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_publish_without_confirms_drops_silently() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = conn.create_channel().await.expect("channel");
                let q = unique_name(&format!("reject-silent-{placement:?}"));
                declare_limited(
                    &ch,
                    &q,
                    false,
                    placement,
                    &[
                        ("x-max-length", long(2)),
                        ("x-overflow", text("reject-publish")),
                    ],
                )
                .await;
                let sent = bodies("n", 6);
                for body in &sent {
                    ch.basic_publish(
                        "".into(),
                        q.as_str().into(),
                        BasicPublishOptions::default(),
                        body.as_bytes(),
                        BasicProperties::default(),
                    )
                    .await
                    .expect("publish");
                }
                wait_ready(&conn, &q, 2).await;
                // The channel is still fine.
                assert!(ch.status().connected());
                assert_eq!(bodies_only(drain(&conn, &q).await), sent[..2].to_vec());
                conn.close(200, "".into()).await.expect("close");
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_of_zero_keeps_nothing_but_feeds_a_waiting_consumer() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let placement = last_shard(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            let drop_q = unique_name("zero-drop");
            let reject_q = unique_name("zero-reject");
            declare_limited(&ch, &drop_q, false, placement, &[("x-max-length", long(0))]).await;
            declare_limited(
                &ch,
                &reject_q,
                false,
                placement,
                &[
                    ("x-max-length", long(0)),
                    ("x-overflow", text("reject-publish")),
                ],
            )
            .await;
            let sent = bodies("z", 3);
            publish_confirmed(&ch, &drop_q, &sent, BasicProperties::default()).await;
            assert_eq!(ready_count(&conn, &drop_q).await, 0);
            let acks = publish_acks(&ch, "", &reject_q, &sent, BasicProperties::default()).await;
            assert_eq!(acks, [false, false, false]);
            // drop-head with a consumer waiting: it gets every message.
            let cch = conn.create_channel().await.expect("channel");
            cch.basic_qos(10, BasicQosOptions::default())
                .await
                .expect("qos");
            let mut consumer = cch
                .basic_consume(
                    drop_q.as_str().into(),
                    "zero".into(),
                    BasicConsumeOptions {
                        no_ack: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("consume");
            publish_confirmed(&ch, &drop_q, &sent, BasicProperties::default()).await;
            let mut got = Vec::new();
            while got.len() < sent.len() {
                let d = consumer.next().await.expect("stream").expect("delivery");
                got.push(String::from_utf8(d.data).expect("utf-8"));
            }
            assert_eq!(got, sent);
            conn.close(200, "".into()).await.expect("close");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeued_messages_count_against_the_limit() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                let q = unique_name(&format!("maxlen-requeue-{placement:?}"));
                declare_limited(&ch, &q, false, placement, &[("x-max-length", long(2))]).await;
                let first = bodies("a", 2);
                publish_confirmed(&ch, &q, &first, BasicProperties::default()).await;
                // Take both without acking, then fill the queue again.
                let cch = conn.create_channel().await.expect("channel");
                cch.basic_qos(2, BasicQosOptions::default())
                    .await
                    .expect("qos");
                let mut consumer = cch
                    .basic_consume(
                        q.as_str().into(),
                        "held".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .expect("consume");
                for _ in 0..2 {
                    consumer.next().await.expect("stream").expect("delivery");
                }
                let second = bodies("b", 2);
                publish_confirmed(&ch, &q, &second, BasicProperties::default()).await;
                wait_ready(&conn, &q, 2).await;
                // The two come back (requeued on close): the queue is over
                // its limit again and drops from the head (the requeued
                // ones, which are older).
                cch.close(200, "".into()).await.expect("close");
                wait_ready(&conn, &q, 2).await;
                assert_eq!(bodies_only(drain(&conn, &q).await), second);
                conn.close(200, "".into()).await.expect("close");
            })
            .await;
        }
    }
}

/// drop-head on a queue with a dead-letter exchange dead-letters every
/// dropped head (reason `maxlen`), also the ones paged out to the log when
/// they were dropped (Warren reads them back a chunk at a time), in order;
/// durable ones are still where they went after a restart. Against
/// RabbitMQ the same (nothing is paged there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_head_dead_letters_paged_out_heads() {
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-limits-dlx-");
        let mut b = Broker::start_in_with(shards, dir.path(), &["--memory-budget", BUDGET]);
        let mut kept = Vec::new();
        for placement in placements(&b) {
            within_secs(120, async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                for (durable, props) in [(false, BasicProperties::default()), (true, persistent())]
                {
                    let q = unique_name(&format!("maxlen-dlx-{durable}-{placement:?}"));
                    let dead = format!("{q}-dead");
                    // The target on the other shard when there are two.
                    let other = placement.map(|p| (p + 1) % shards);
                    declare_limited(&ch, &dead, durable, other, &[]).await;
                    declare_limited(
                        &ch,
                        &q,
                        durable,
                        placement,
                        &[
                            ("x-max-length", long(1000)),
                            ("x-dead-letter-exchange", text("")),
                            ("x-dead-letter-routing-key", text(&dead)),
                        ],
                    )
                    .await;
                    let sent = padded_bodies("p", 3000);
                    publish_confirmed(&ch, &q, &sent, props.clone()).await;
                    wait_ready_long(&conn, &dead, 2000).await;
                    wait_ready_long(&conn, &q, 1000).await;
                    if !b.is_external() {
                        let out = ctl(&b, "list_queues");
                        let body_len = sent[0].len() as u64;
                        assert_eq!(cell_num(&out, &q, "message_bytes_ready"), 1000 * body_len);
                    }
                    if durable {
                        kept.push((q, dead, sent));
                    } else {
                        assert_eq!(bodies_only(drain(&conn, &q).await), sent[2000..].to_vec());
                        let got = drain(&conn, &dead).await;
                        assert_eq!(bodies_only(got), sent[..2000].to_vec(), "{dead}");
                    }
                }
                conn.close(200, "".into()).await.expect("close");
            })
            .await;
        }
        if b.is_external() {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = conn.create_channel().await.expect("channel");
                for (q, dead, _) in &kept {
                    for name in [q, dead] {
                        ch.queue_delete(name.as_str().into(), Default::default())
                            .await
                            .expect("delete");
                    }
                }
            })
            .await;
            continue;
        }
        b.stop();
        let b = Broker::start_in_with(shards, dir.path(), &["--memory-budget", BUDGET]);
        within_secs(120, async {
            let conn = lapin_connect(&b).await;
            for (q, dead, sent) in &kept {
                assert_eq!(ready_count(&conn, q).await, 1000, "{q}");
                assert_eq!(bodies_only(drain(&conn, q).await), sent[2000..].to_vec());
                assert_eq!(bodies_only(drain(&conn, dead).await), sent[..2000].to_vec());
            }
        })
        .await;
    }
}

/// Issue 11: the bytes limit counts paged-out messages and survives a
/// restart. Durable queues with `x-max-length-bytes` (drop-head, and
/// reject-publish) are filled past a small memory budget, so most of their
/// messages are paged out; after a restart (SIGTERM, then SIGKILL) the
/// recovered tail counts its bodies' bytes (summed per log run while the
/// log is replayed), so publishing more drops the head / is nacked exactly
/// as before the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bytes_limit_counts_a_recovered_paged_tail() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    const KEPT: u64 = 1000;
    for shards in SHARD_COUNTS {
        for sigkill in [false, true] {
            let dir = temp_dir("warren-limits-bytes-");
            let mut b = Broker::start_in_with(shards, dir.path(), &["--memory-budget", BUDGET]);
            let body_len = padded_body("p", 0).len() as u64;
            let max = long((KEPT * body_len) as i64);
            let mut queues = Vec::new();
            for placement in placements(&b) {
                within(async {
                    let conn = lapin_connect(&b).await;
                    let ch = confirm_channel(&conn).await;
                    let drop = unique_name(&format!("bytes-drop-{placement:?}"));
                    declare_limited(
                        &ch,
                        &drop,
                        true,
                        placement,
                        &[("x-max-length-bytes", max.clone())],
                    )
                    .await;
                    let sent = padded_bodies("p", 3 * KEPT as usize);
                    publish_confirmed(&ch, &drop, &sent, persistent()).await;
                    let reject = unique_name(&format!("bytes-reject-{placement:?}"));
                    let limits = [
                        ("x-max-length-bytes", max.clone()),
                        ("x-overflow", text("reject-publish")),
                    ];
                    declare_limited(&ch, &reject, true, placement, &limits).await;
                    let first = padded_bodies("p", KEPT as usize + 5);
                    let acks = publish_acks(&ch, "", &reject, &first, persistent()).await;
                    assert_eq!(acks.iter().filter(|&&a| a).count() as u64, KEPT, "{reject}");
                    assert!(acks[KEPT as usize..].iter().all(|&a| !a), "{reject}");
                    let out = ctl(&b, "list_queues");
                    for q in [&drop, &reject] {
                        assert_eq!(cell_num(&out, q, "messages_ready"), KEPT, "{q}");
                        assert!(cell_num(&out, q, "messages_paged_out") > 0, "{q}: {out}");
                        assert_eq!(cell_num(&out, q, "message_bytes_ready"), KEPT * body_len);
                    }
                    queues.push((drop, sent[2 * KEPT as usize..].to_vec(), reject, first));
                    conn.close(200, "".into()).await.expect("close");
                })
                .await;
            }
            if sigkill {
                b.kill();
            } else {
                b.stop();
            }
            let b = Broker::start_in_with(shards, dir.path(), &["--memory-budget", BUDGET]);
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                for (drop, kept, reject, first) in &queues {
                    let out = ctl(&b, "list_queues");
                    for q in [drop, reject] {
                        assert_eq!(
                            cell_num(&out, q, "messages_ready"),
                            KEPT,
                            "{q} sigkill={sigkill}"
                        );
                        let bytes = cell_num(&out, q, "message_bytes_ready");
                        assert_eq!(bytes, KEPT * body_len, "{q} sigkill={sigkill}: {out}");
                    }
                    // drop-head: 10 more push the 10 oldest out.
                    let more = padded_bodies("n", 10);
                    publish_confirmed(&ch, drop, &more, persistent()).await;
                    let out = ctl(&b, "list_queues");
                    assert_eq!(cell_num(&out, drop, "messages_ready"), KEPT, "{drop}");
                    assert_eq!(cell_num(&out, drop, "message_bytes_ready"), KEPT * body_len);
                    let mut want = kept[10..].to_vec();
                    want.extend(more);
                    assert_eq!(bodies_only(drain(&conn, drop).await), want, "{drop}");
                    // reject-publish: still full, so the next publish is nacked.
                    let acks =
                        publish_acks(&ch, "", reject, &padded_bodies("n", 3), persistent()).await;
                    assert_eq!(acks, [false, false, false], "{reject} sigkill={sigkill}");
                    let got = bodies_only(drain(&conn, reject).await);
                    assert_eq!(got, first[..KEPT as usize].to_vec(), "{reject}");
                }
                conn.close(200, "".into()).await.expect("close");
            })
            .await;
        }
    }
}
