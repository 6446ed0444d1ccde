//! Sender-selected distribution (RabbitMQ's `CC` and `BCC` headers) on the
//! publish path: the keys of both headers route as well as the routing key
//! (direct, default, topic exchanges; one copy per queue however many keys
//! match it), consumers and basic.get never see `BCC` (also after a
//! restart, also in a basic.return), an alternate exchange is taken only
//! when no key matched, a `CC` that is not an array closes the channel
//! with RabbitMQ's 406, and a delayed message routes with its `CC` keys at
//! its time. With 1 and 2 shards, the queues on each shard. Checked
//! against RabbitMQ 3.10.8 (the restart and delayed tests skip there).

mod common;

use common::*;
use lapin::message::BasicGetMessage;
use lapin::options::{BasicGetOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, ExchangeKind};

/// Properties with `CC` / `BCC` headers (omitted when `None`) and
/// `other: 1`.
fn cc_bcc(cc: Option<&[&str]>, bcc: Option<&[&str]>) -> BasicProperties {
    let mut h = FieldTable::default();
    if let Some(cc) = cc {
        h.insert("CC".into(), longstr_array(cc));
    }
    if let Some(bcc) = bcc {
        h.insert("BCC".into(), longstr_array(bcc));
    }
    h.insert("other".into(), AMQPValue::LongInt(1));
    BasicProperties::default().with_headers(h)
}

async fn exchange(ch: &Channel, name: &str, kind: ExchangeKind, args: FieldTable) {
    ch.exchange_declare(
        name.into(),
        kind,
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        args,
    )
    .await
    .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

/// Every message of `q` (basic.get, no-ack).
async fn get_all(ch: &Channel, q: &str) -> Vec<BasicGetMessage> {
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(q.into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic.get")
    {
        out.push(m);
        assert!(out.len() < 100, "runaway get");
    }
    out
}

fn header_names(props: &BasicProperties) -> Vec<String> {
    let mut names: Vec<String> = props
        .headers()
        .as_ref()
        .map(|h| h.inner().keys().map(|k| k.to_string()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// The one message `q` holds: its body and routing key, checked to carry
/// no `BCC`.
async fn only_message(ch: &Channel, q: &str) -> (String, String) {
    let got = get_all(ch, q).await;
    assert_eq!(got.len(), 1, "{q} holds {} messages", got.len());
    let d = &got[0].delivery;
    assert!(
        !header_names(&d.properties).contains(&"BCC".to_string()),
        "BCC delivered: {:?}",
        d.properties.headers()
    );
    (
        String::from_utf8(d.data.clone()).unwrap(),
        d.routing_key.to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cc_and_bcc_keys_route_and_bcc_is_never_delivered() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            for placement in placements(&b) {
                let other = last_shard(shards).map(|s| (s + 1) % shards);
                let x = unique_name("cc-direct");
                exchange(&ch, &x, ExchangeKind::Direct, FieldTable::default()).await;
                let mut qs = Vec::new();
                for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
                    let q = unique_name(&format!("cc-{k}"));
                    // Alternate the queues between the shards.
                    let at = if i % 2 == 0 { placement } else { other };
                    declare_queue(&ch, &q, false, at).await;
                    bind_queue(&ch, &q, &x, k).await;
                    qs.push(q);
                }
                // Direct: "a" routes, CC "b", BCC "c"; "d" is not named.
                let c = publish_to(
                    &ch,
                    &x,
                    "a",
                    "m1",
                    cc_bcc(Some(&["b"]), Some(&["c"])),
                    false,
                )
                .await;
                assert!(matches!(c, Confirmation::Ack(None)), "{c:?}");
                for q in &qs[..3] {
                    assert_eq!(only_message(&ch, q).await, ("m1".into(), "a".into()));
                }
                assert!(get_all(&ch, &qs[3]).await.is_empty());
                // The delivered headers keep CC and the others, lose BCC.
                publish_to(
                    &ch,
                    &x,
                    "a",
                    "m2",
                    cc_bcc(Some(&["b"]), Some(&["c"])),
                    false,
                )
                .await;
                let got = get_all(&ch, &qs[0]).await;
                assert_eq!(
                    header_names(&got[0].delivery.properties),
                    ["CC", "other"],
                    "{got:?}"
                );
                for q in &qs[1..3] {
                    get_all(&ch, q).await;
                }
                // The default exchange: every key names a queue.
                publish_to(
                    &ch,
                    "",
                    &qs[0],
                    "m3",
                    cc_bcc(Some(&[&qs[1]]), Some(&[&qs[2], &qs[0]])),
                    false,
                )
                .await;
                for q in &qs[..3] {
                    assert_eq!(only_message(&ch, q).await, ("m3".into(), qs[0].clone()));
                }
                // Topic: two BCC keys matching one queue give one copy.
                let t = unique_name("cc-topic");
                exchange(&ch, &t, ExchangeKind::Topic, FieldTable::default()).await;
                bind_queue(&ch, &qs[1], &t, "x.*").await;
                publish_to(
                    &ch,
                    &t,
                    "nomatch",
                    "m4",
                    cc_bcc(None, Some(&["x.y", "x.z"])),
                    false,
                )
                .await;
                assert_eq!(
                    only_message(&ch, &qs[1]).await,
                    ("m4".into(), "nomatch".into())
                );
                // A mandatory publish no key routes is returned without BCC.
                match publish_to(
                    &ch,
                    &x,
                    "zz",
                    "m5",
                    cc_bcc(Some(&["y"]), Some(&["w"])),
                    true,
                )
                .await
                {
                    Confirmation::Ack(Some(r)) => {
                        assert_eq!(header_names(&r.delivery.properties), ["CC", "other"])
                    }
                    other => panic!("expected a return, got {other:?}"),
                }
                for q in &qs {
                    let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
                }
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alternate_exchange_is_taken_only_when_no_key_matched() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            let ae = unique_name("cc-ae");
            exchange(&ch, &ae, ExchangeKind::Fanout, FieldTable::default()).await;
            let mut args = FieldTable::default();
            args.insert(
                "alternate-exchange".into(),
                AMQPValue::LongString(ae.as_str().into()),
            );
            let x = unique_name("cc-main");
            exchange(&ch, &x, ExchangeKind::Direct, args).await;
            let (routed, unrouted) = (unique_name("cc-routed"), unique_name("cc-unrouted"));
            declare_queue(&ch, &routed, false, None).await;
            declare_queue(&ch, &unrouted, false, last_shard(shards)).await;
            bind_queue(&ch, &routed, &x, "a").await;
            bind_queue(&ch, &unrouted, &ae, "").await;
            publish_to(
                &ch,
                &x,
                "a",
                "key-matched",
                cc_bcc(Some(&["zzz"]), None),
                false,
            )
            .await;
            publish_to(
                &ch,
                &x,
                "zzz",
                "cc-matched",
                cc_bcc(Some(&["a"]), None),
                false,
            )
            .await;
            publish_to(
                &ch,
                &x,
                "zzz",
                "bcc-matched",
                cc_bcc(None, Some(&["a"])),
                false,
            )
            .await;
            publish_to(&ch, &x, "zzz", "none", cc_bcc(Some(&["yyy"]), None), false).await;
            let bodies = |v: Vec<BasicGetMessage>| -> Vec<String> {
                v.into_iter()
                    .map(|m| String::from_utf8(m.delivery.data).unwrap())
                    .collect()
            };
            assert_eq!(
                bodies(get_all(&ch, &routed).await),
                ["key-matched", "cc-matched", "bcc-matched"]
            );
            assert_eq!(bodies(get_all(&ch, &unrouted).await), ["none"]);
            for q in [&routed, &unrouted] {
                let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cc_header_that_is_not_an_array_closes_the_channel() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let q = unique_name("cc-bad");
            let setup = conn.create_channel().await.unwrap();
            declare_queue(&setup, &q, false, None).await;
            for (key, value, kind) in [
                ("CC", AMQPValue::LongString("b".into()), "longstr"),
                ("BCC", AMQPValue::LongInt(1), "signedint"),
            ] {
                let ch = conn.create_channel().await.unwrap();
                let mut h = FieldTable::default();
                h.insert(key.into(), value);
                let props = BasicProperties::default().with_headers(h);
                let r = publish_refused(&ch, "", &q, props).await;
                assert_lapin_error(
                    r,
                    406,
                    &format!(
                        "PRECONDITION_FAILED - invalid message: \
                         {{unacceptable_type_in_header,\"{key}\",{kind}}}"
                    ),
                );
            }
            assert_eq!(ready_count(&conn, &q).await, 0);
            let _ = setup
                .queue_delete(q.as_str().into(), Default::default())
                .await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bcc_stays_hidden_after_a_restart() {
    if skip_if_external("it restarts the broker") {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-bcc-");
        let q = unique_name("bcc-durable");
        let mut b = Broker::start_in(shards, dir.path());
        {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &q, true, last_shard(shards)).await;
            let props = cc_bcc(None, Some(&["nowhere"])).with_delivery_mode(2);
            publish_to(&ch, "", &q, "kept", props, false).await;
        }
        b.kill();
        let b = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.unwrap();
            assert_eq!(only_message(&ch, &q).await, ("kept".into(), q.clone()));
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_routes_with_its_cc_keys_at_its_time() {
    if skip_if_external("the reference RabbitMQ has no delayed-message plugin") {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            let x = unique_name("cc-delayed");
            let mut args = FieldTable::default();
            args.insert(
                "x-delayed-type".into(),
                AMQPValue::LongString("direct".into()),
            );
            exchange(
                &ch,
                &x,
                ExchangeKind::Custom("x-delayed-message".into()),
                args,
            )
            .await;
            let (qa, qb) = (unique_name("cc-da"), unique_name("cc-db"));
            declare_queue(&ch, &qa, false, None).await;
            declare_queue(&ch, &qb, false, last_shard(shards)).await;
            bind_queue(&ch, &qa, &x, "a").await;
            bind_queue(&ch, &qb, &x, "b").await;
            let mut props = cc_bcc(None, Some(&["b"]));
            let mut h = props.headers().clone().unwrap();
            h.insert("x-delay".into(), AMQPValue::LongLongInt(100));
            props = props.with_headers(h);
            publish_to(&ch, &x, "a", "later", props, false).await;
            wait_ready(&conn, &qa, 1).await;
            wait_ready(&conn, &qb, 1).await;
            for q in [&qa, &qb] {
                assert_eq!(only_message(&ch, q).await, ("later".into(), "a".into()));
                let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
            }
        })
        .await;
    }
}
