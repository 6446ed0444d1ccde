//! How dead-lettered copies are routed: through an internal dead-letter
//! exchange (or an exchange bound to an internal one) as RabbitMQ does —
//! `internal` only refuses client publishes — and with the message's `CC`
//! and `BCC` keys as well as its routing key unless the queue sets
//! `x-dead-letter-routing-key` (then that key alone); `x-death` lists the
//! routing key and `CC` keys, never `BCC` ones; the `BCC` keys of a
//! durable message still route its dead-lettered copy after a restart.
//! With 1 and 2 shards, source and targets on different shards. Checked
//! against RabbitMQ 3.10.8 (the restart test skips there).

mod common;

use common::*;
use lapin::options::{
    BasicGetOptions, BasicRejectOptions, ExchangeBindOptions, ExchangeDeclareOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, ExchangeKind};

fn cc_bcc(cc: &[&str], bcc: &[&str]) -> BasicProperties {
    let mut h = FieldTable::default();
    h.insert("CC".into(), longstr_array(cc));
    h.insert("BCC".into(), longstr_array(bcc));
    BasicProperties::default().with_headers(h)
}

async fn exchange(ch: &Channel, name: &str, kind: ExchangeKind, internal: bool, durable: bool) {
    ch.exchange_declare(
        name.into(),
        kind,
        ExchangeDeclareOptions {
            internal,
            durable,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

/// A queue with a dead-letter exchange (and routing key, if given).
async fn source(
    ch: &Channel,
    name: &str,
    durable: bool,
    placement: Option<usize>,
    dlx: &str,
    dlrk: Option<&str>,
) {
    let mut args = lapin_placement_args(placement);
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(dlx.into()),
    );
    if let Some(k) = dlrk {
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(k.into()),
        );
    }
    ch.queue_declare(
        name.into(),
        QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        args,
    )
    .await
    .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

/// Publishes `body` to `x` with `key` (confirmed, routed).
async fn publish(ch: &Channel, x: &str, key: &str, body: &str, props: BasicProperties) {
    let c = publish_to(ch, x, key, body, props, false).await;
    assert!(matches!(c, lapin::Confirmation::Ack(None)), "{c:?}");
}

/// Rejects (without requeue) the next message of `q`.
async fn reject_next(ch: &Channel, q: &str) {
    let m = ch
        .basic_get(q.into(), BasicGetOptions { no_ack: false })
        .await
        .expect("basic.get")
        .unwrap_or_else(|| panic!("{q} is empty"));
    ch.basic_reject(
        m.delivery.delivery_tag,
        BasicRejectOptions { requeue: false },
    )
    .await
    .expect("reject");
}

/// Waits for the one message `q` gets: its body, routing key and headers.
async fn one(conn: &lapin::Connection, q: &str) -> (String, String, FieldTable) {
    wait_ready(conn, q, 1).await;
    let ch = conn.create_channel().await.unwrap();
    let m = ch
        .basic_get(q.into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic.get")
        .expect("a message");
    let _ = ch.close(200, "".into()).await;
    (
        String::from_utf8(m.delivery.data.clone()).unwrap(),
        m.delivery.routing_key.to_string(),
        m.delivery.properties.headers().clone().unwrap_or_default(),
    )
}

fn get<'a>(h: &'a FieldTable, key: &str) -> Option<&'a AMQPValue> {
    h.inner()
        .iter()
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v)
}

fn has(h: &FieldTable, key: &str) -> bool {
    get(h, key).is_some()
}

async fn delete_queues(ch: &Channel, qs: &[&String]) {
    for q in qs {
        let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_dead_letter_exchange_delivers() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            let other = last_shard(shards).map(|s| (s + 1) % shards);
            // The dead-letter exchange itself is internal.
            let internal = unique_name("dl-internal");
            exchange(&ch, &internal, ExchangeKind::Fanout, true, false).await;
            let target = unique_name("dl-int-target");
            declare_queue(&ch, &target, false, other).await;
            bind_queue(&ch, &target, &internal, "").await;
            let src = unique_name("dl-int-src");
            source(&ch, &src, false, last_shard(shards), &internal, None).await;
            publish(&ch, "", &src, "via-internal", BasicProperties::default()).await;
            reject_next(&ch, &src).await;
            let (body, key, _) = one(&conn, &target).await;
            assert_eq!(
                (body.as_str(), key.as_str()),
                ("via-internal", src.as_str())
            );
            // The dead-letter exchange is bound to an internal one.
            let front = unique_name("dl-front");
            exchange(&ch, &front, ExchangeKind::Fanout, false, false).await;
            ch.exchange_bind(
                internal.as_str().into(),
                front.as_str().into(),
                "".into(),
                ExchangeBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("exchange.bind");
            let src2 = unique_name("dl-int-src2");
            source(&ch, &src2, false, last_shard(shards), &front, None).await;
            publish(&ch, "", &src2, "via-binding", BasicProperties::default()).await;
            reject_next(&ch, &src2).await;
            assert_eq!(one(&conn, &target).await.0, "via-binding");
            delete_queues(&ch, &[&target, &src, &src2]).await;
            for x in [&front, &internal] {
                let _ = ch
                    .exchange_delete(x.as_str().into(), Default::default())
                    .await;
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_lettered_copies_route_with_cc_and_bcc_keys_unless_the_queue_sets_the_key() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            let other = last_shard(shards).map(|s| (s + 1) % shards);
            let dlx = unique_name("dl-cc-x");
            exchange(&ch, &dlx, ExchangeKind::Direct, false, false).await;
            let mut targets = Vec::new();
            for k in ["ka", "kb", "kc", "kd"] {
                let q = unique_name(&format!("dl-cc-{k}"));
                declare_queue(&ch, &q, false, other).await;
                bind_queue(&ch, &q, &dlx, k).await;
                targets.push(q);
            }
            // No x-dead-letter-routing-key: "ka", CC "kb" and BCC "kc" route.
            let src = unique_name("dl-cc-src");
            source(&ch, &src, false, last_shard(shards), &dlx, None).await;
            bind_queue(&ch, &src, "amq.direct", "ka").await;
            publish(&ch, "amq.direct", "ka", "c1", cc_bcc(&["kb"], &["kc"])).await;
            reject_next(&ch, &src).await;
            for q in &targets[..3] {
                let (body, key, headers) = one(&conn, q).await;
                assert_eq!((body.as_str(), key.as_str()), ("c1", "ka"));
                assert!(!has(&headers, "BCC"), "{headers:?}");
                // x-death's routing keys: the key and the CC keys only.
                let Some(AMQPValue::FieldArray(deaths)) = get(&headers, "x-death") else {
                    panic!("no x-death: {headers:?}");
                };
                let Some(AMQPValue::FieldTable(death)) = deaths.as_slice().first() else {
                    panic!("x-death {deaths:?}");
                };
                assert_eq!(
                    get(death, "routing-keys"),
                    Some(&longstr_array(&["ka", "kb"]))
                );
            }
            assert_eq!(ready_count(&conn, &targets[3]).await, 0);
            // With x-dead-letter-routing-key "kd": that key alone.
            let src2 = unique_name("dl-cc-src2");
            source(&ch, &src2, false, last_shard(shards), &dlx, Some("kd")).await;
            publish(&ch, "", &src2, "c2", cc_bcc(&["kb"], &["kc"])).await;
            reject_next(&ch, &src2).await;
            let (body, key, _) = one(&conn, &targets[3]).await;
            assert_eq!((body.as_str(), key.as_str()), ("c2", "kd"));
            for q in &targets[..3] {
                assert_eq!(ready_count(&conn, q).await, 0, "{q}");
            }
            let mut all: Vec<&String> = targets.iter().collect();
            all.extend([&src, &src2]);
            delete_queues(&ch, &all).await;
            let _ = ch
                .exchange_delete(dlx.as_str().into(), Default::default())
                .await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bcc_keys_route_a_dead_lettered_copy_after_a_restart() {
    if skip_if_external("it restarts the broker") {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-dl-bcc-");
        let (dlx, src, bcc_target) = (
            unique_name("dl-bcc-x"),
            unique_name("dl-bcc-src"),
            unique_name("dl-bcc-t"),
        );
        let other = last_shard(shards).map(|s| (s + 1) % shards);
        let mut b = Broker::start_in(shards, dir.path());
        {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            exchange(&ch, &dlx, ExchangeKind::Direct, false, true).await;
            declare_queue(&ch, &bcc_target, true, other).await;
            bind_queue(&ch, &bcc_target, &dlx, "secret").await;
            source(&ch, &src, true, last_shard(shards), &dlx, None).await;
            publish(
                &ch,
                "",
                &src,
                "durable",
                cc_bcc(&[], &["secret"]).with_delivery_mode(2),
            )
            .await;
        }
        b.kill();
        let b = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.unwrap();
            reject_next(&ch, &src).await;
            let (body, key, headers) = one(&conn, &bcc_target).await;
            assert_eq!((body.as_str(), key.as_str()), ("durable", src.as_str()));
            assert!(!has(&headers, "BCC"), "{headers:?}");
        })
        .await;
    }
}
