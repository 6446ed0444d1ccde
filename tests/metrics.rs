//! Statistics on the management port against the real binary, with 1 and
//! 2 shards: `message_stats` counts and rates in `/api/overview`,
//! `/api/queues`, `/api/exchanges` and `/api/channels` after traffic
//! through lapin (per exchange also in transactions and to a delayed
//! exchange); `/metrics`, `/metrics/per-object` and
//! `/metrics/detailed` parsed as Prometheus' text format (every family with
//! TYPE and HELP, label syntax, the values of a known queue), without
//! auth; message ages that grow. These need Warren's management port, so
//! they skip against an external broker.

mod common;

use common::*;
use lapin::options::{BasicGetOptions, BasicPublishOptions};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

const NEEDS_API: &str = "it needs Warren's management port";

/// GET `path` without credentials: (status, body).
fn get_text(b: &Broker, path: &str) -> (u16, String) {
    let response = admin_request(
        &admin_addr(b),
        &format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"),
    );
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, body.to_string())
}

/// A parsed exposition: per family its type, help and samples
/// (metric name, labels, value).
#[derive(Default, Debug)]
struct Exposition {
    types: HashMap<String, String>,
    helps: HashMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Exposition {
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && l.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.2)
    }
}

/// Parses Prometheus' text format strictly: a sample must belong to a
/// family declared (TYPE and HELP) before it; label names are
/// `[a-zA-Z_][a-zA-Z0-9_]*`, values quoted with `\\`, `\"`, `\n` escapes.
fn parse(text: &str) -> Exposition {
    let mut e = Exposition::default();
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(ident(name), "metric name {name:?}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "type {kind}"
            );
            assert!(
                e.types.insert(name.into(), kind.into()).is_none(),
                "{name} typed twice"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(!help.is_empty(), "empty HELP for {name}");
            e.helps.insert(name.into(), help.into());
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => panic!("no value in {line:?}"),
        };
        assert!(ident(name), "metric name {name:?}");
        let mut labels = BTreeMap::new();
        let value = if let Some(mut r) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = r.strip_prefix('}') {
                    break after;
                }
                let (key, after) = r
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("label in {line:?}"));
                assert!(ident(key), "label name {key:?} in {line:?}");
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            Some((_, 'n')) => value.push('\n'),
                            other => panic!("bad escape {other:?} in {line:?}"),
                        },
                        Some((i, '"')) => break i + 1,
                        Some((_, c)) => value.push(c),
                        None => panic!("unterminated label value in {line:?}"),
                    }
                };
                labels.insert(key.to_string(), value);
                r = &after[end..];
                r = r.strip_prefix(',').unwrap_or(r);
            }
        } else {
            rest
        };
        let value = value.trim();
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("value {v:?} in {line:?}")),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| e.types.get(*f).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        assert!(
            e.types.contains_key(family),
            "{name} sampled before its TYPE"
        );
        assert!(
            e.helps.contains_key(family),
            "{name} sampled before its HELP"
        );
        e.samples.push((name.to_string(), labels, v));
    }
    e
}

fn stat(v: &Value, key: &str) -> u64 {
    v["message_stats"][key].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_stats_count_and_rate_per_object() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let q = unique_name("stats");
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &q, false, last_shard(shards)).await;
            // A first sample before any traffic: the rates below are
            // against it.
            assert_eq!(stat(&api_get(&b, "/api/overview"), "publish"), 0);
            publish_confirmed(&ch, &q, &padded_bodies("m", 20), Default::default()).await;
            // One unroutable publish, not mandatory: dropped.
            ch.basic_publish(
                "".into(),
                "no-such-queue".into(),
                BasicPublishOptions::default(),
                b"x",
                Default::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
            // Prefetch 50: all 20 are delivered, 15 acked, and the other 5
            // go back (redelivered) when the channel closes.
            assert_eq!(consume_acked(&conn, &q, 15).await.len(), 15);
            let getter = conn.create_channel().await.expect("channel");
            let got = getter
                .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .expect("get");
            assert!(got.is_some());

            let path = format!("/api/queues/%2F/{q}");
            assert!(
                eventually(20, || {
                    let v = api_get(&b, &path);
                    stat(&v, "publish") == 20
                        && stat(&v, "deliver") == 20
                        && stat(&v, "ack") == 15
                        && stat(&v, "get_no_ack") == 1
                        && stat(&v, "redeliver") == 1
                        && stat(&v, "deliver_get") == 21
                })
                .await,
                "queue message_stats: {}",
                api_get(&b, &path)["message_stats"]
            );
            let overview = api_get(&b, "/api/overview");
            let o = &overview["message_stats"];
            assert_eq!(stat(&overview, "publish"), 21, "{o}");
            assert_eq!(stat(&overview, "confirm"), 21, "{o}");
            assert_eq!(stat(&overview, "drop_unroutable"), 1, "{o}");
            assert_eq!(stat(&overview, "deliver"), 20, "{o}");
            assert_eq!(stat(&overview, "redeliver"), 1, "{o}");
            assert_eq!(stat(&overview, "ack"), 15, "{o}");
            assert_eq!(stat(&overview, "get_no_ack"), 1, "{o}");
            assert_eq!(stat(&overview, "deliver_get"), 21, "{o}");
            assert!(o["publish_details"]["rate"].as_f64().is_some(), "{o}");
            assert!(
                eventually(20, || {
                    api_get(&b, "/api/overview")["message_stats"]["publish_details"]["rate"]
                        .as_f64()
                        .is_some_and(|r| r > 0.0)
                })
                .await,
                "a publish rate: {}",
                api_get(&b, "/api/overview")["message_stats"]
            );
            let x = api_get(&b, "/api/exchanges/%2F/amq.default");
            assert_eq!(stat(&x, "publish_in"), 21, "{x}");
            assert_eq!(stat(&x, "publish_out"), 20, "{x}");
            // The publishing channel is still open: it has its own.
            let channels = api_get(&b, "/api/channels");
            let publisher = channels
                .as_array()
                .expect("a list")
                .iter()
                .find(|c| stat(c, "publish") == 21)
                .unwrap_or_else(|| panic!("the publishing channel: {channels}"));
            assert_eq!(stat(publisher, "confirm"), 21);
            assert_eq!(stat(publisher, "drop_unroutable"), 1);
            let _ = conn.close(200, "".into()).await;
        })
        .await;
    }
}

/// Per-exchange `publish_in` / `publish_out` of publishes in a transaction
/// (counted at tx.commit, as RabbitMQ's channel counts them, not before)
/// and to an `x-delayed-message` exchange (taken in at once; routed when
/// due by the scheduler, which, as the plugin's, is not counted out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_and_delayed_exchanges_count_per_exchange() {
    use lapin::options::{ExchangeDeclareOptions, QueueBindOptions};
    use lapin::types::{AMQPValue, FieldTable};
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            let q = unique_name("xstats-q");
            let x = unique_name("xstats-tx");
            let delayed = unique_name("xstats-delayed");
            declare_queue(&ch, &q, false, last_shard(shards)).await;
            ch.exchange_declare(
                x.as_str().into(),
                lapin::ExchangeKind::Direct,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("declare");
            let mut args = FieldTable::default();
            args.insert(
                "x-delayed-type".into(),
                AMQPValue::LongString("direct".into()),
            );
            ch.exchange_declare(
                delayed.as_str().into(),
                lapin::ExchangeKind::Custom("x-delayed-message".into()),
                ExchangeDeclareOptions::default(),
                args,
            )
            .await
            .expect("declare");
            for source in [&x, &delayed] {
                ch.queue_bind(
                    q.as_str().into(),
                    source.as_str().into(),
                    "k".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("bind");
            }
            let exchange = |name: &str| api_get(&b, &format!("/api/exchanges/%2F/{name}"));
            let mut held = FieldTable::default();
            held.insert("x-delay".into(), AMQPValue::LongLongInt(600_000));
            let later = lapin::BasicProperties::default().with_headers(held);

            // Three routed and one unroutable in a transaction, and one to
            // the delayed exchange.
            let tx = conn.create_channel().await.expect("channel");
            tx.tx_select().await.expect("tx.select");
            for key in ["k", "k", "k", "nowhere"] {
                tx.basic_publish(
                    x.as_str().into(),
                    key.into(),
                    BasicPublishOptions::default(),
                    b"tx",
                    Default::default(),
                )
                .await
                .expect("publish");
            }
            tx.basic_publish(
                delayed.as_str().into(),
                "k".into(),
                BasicPublishOptions::default(),
                b"tx-later",
                later.clone(),
            )
            .await
            .expect("publish");
            // A round trip on the channel: the publishes are in.
            tx.basic_qos(10, Default::default()).await.expect("qos");
            assert_eq!(
                stat(&exchange(&x), "publish_in"),
                0,
                "not before the commit"
            );
            tx.tx_commit().await.expect("tx.commit");
            let x_stats = exchange(&x);
            assert_eq!(stat(&x_stats, "publish_in"), 4, "{x_stats}");
            assert_eq!(stat(&x_stats, "publish_out"), 3, "{x_stats}");

            // Outside a transaction, to the delayed exchange.
            let confirms = confirm_channel(&conn).await;
            let confirmation = confirms
                .basic_publish(
                    delayed.as_str().into(),
                    "k".into(),
                    BasicPublishOptions::default(),
                    b"later",
                    later,
                )
                .await
                .expect("publish")
                .await
                .expect("confirm");
            assert!(confirmation.is_ack(), "{confirmation:?}");
            let d = exchange(&delayed);
            assert_eq!(stat(&d, "publish_in"), 2, "{d}");
            assert_eq!(stat(&d, "publish_out"), 0, "held, not routed yet: {d}");
            let ready = api_get(&b, &format!("/api/queues/%2F/{q}"))["messages_ready"].clone();
            assert_eq!(ready, 3, "only the transaction's routed copies");
            let _ = conn.close(200, "".into()).await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_endpoints_parse_and_show_a_known_queue() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let q = format!("{}-\"quoted\"\\", unique_name("prom"));
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &q, true, last_shard(shards)).await;
            publish_confirmed(&ch, &q, &padded_bodies("p", 3), persistent()).await;

            // Aggregated: no auth, no object labels, RabbitMQ's families.
            let (status, text) = get_text(&b, "/metrics");
            assert_eq!(status, 200, "{text}");
            let agg = parse(&text);
            for (family, kind) in [
                ("rabbitmq_connections", "gauge"),
                ("rabbitmq_channels", "gauge"),
                ("rabbitmq_queues", "gauge"),
                ("rabbitmq_consumers", "gauge"),
                ("rabbitmq_queue_messages_ready", "gauge"),
                ("rabbitmq_queue_messages_unacked", "gauge"),
                ("rabbitmq_queue_messages", "gauge"),
                ("rabbitmq_global_messages_received_total", "counter"),
                ("rabbitmq_global_messages_delivered_total", "counter"),
                ("rabbitmq_global_messages_acknowledged_total", "counter"),
                ("rabbitmq_global_messages_confirmed_total", "counter"),
                ("rabbitmq_global_messages_redelivered_total", "counter"),
                (
                    "rabbitmq_global_messages_unroutable_dropped_total",
                    "counter",
                ),
                (
                    "rabbitmq_global_messages_unroutable_returned_total",
                    "counter",
                ),
                ("rabbitmq_process_resident_memory_bytes", "gauge"),
                ("rabbitmq_disk_space_available_bytes", "gauge"),
                ("rabbitmq_process_open_fds", "gauge"),
                ("rabbitmq_process_max_fds", "gauge"),
                ("rabbitmq_alarms_memory_used_watermark", "untyped"),
                ("rabbitmq_alarms_free_disk_space_watermark", "untyped"),
                ("rabbitmq_identity_info", "untyped"),
                ("rabbitmq_build_info", "untyped"),
                ("warren_shard_fsyncs_total", "counter"),
                ("warren_shard_fsync_seconds", "histogram"),
                ("warren_shard_paged_out_bytes_total", "counter"),
                ("warren_shard_log_bytes", "gauge"),
                ("warren_ring_batches", "gauge"),
            ] {
                assert_eq!(
                    agg.types.get(family).map(String::as_str),
                    Some(kind),
                    "{family}"
                );
            }
            assert!(agg.samples.iter().all(|(_, l, _)| !l.contains_key("queue")));
            assert!(agg.value("rabbitmq_queue_messages_ready", &[]).unwrap() >= 3.0);
            assert_eq!(
                agg.value(
                    "rabbitmq_global_messages_received_total",
                    &[("protocol", "amqp091")]
                ),
                Some(3.0)
            );
            assert_eq!(
                agg.value(
                    "rabbitmq_identity_info",
                    &[
                        ("rabbitmq_node", "warren@localhost"),
                        ("rabbitmq_cluster", "warren"),
                        ("rabbitmq_endpoint", "aggregated")
                    ]
                ),
                Some(1.0)
            );
            // Persistent messages in a durable queue: fsyncs, counted and
            // timed on the owner's shard.
            let owner = last_shard(shards).unwrap_or(0).to_string();
            let fsyncs = agg
                .value("warren_shard_fsyncs_total", &[("shard", &owner)])
                .unwrap();
            assert!(fsyncs >= 1.0, "fsyncs {fsyncs}");
            assert_eq!(
                agg.value("warren_shard_fsync_seconds_count", &[("shard", &owner)]),
                Some(fsyncs)
            );
            assert_eq!(
                agg.value(
                    "warren_shard_fsync_seconds_bucket",
                    &[("shard", &owner), ("le", "+Inf")]
                ),
                Some(fsyncs)
            );

            // Per object: the queue's own samples, its labels escaped.
            let (status, text) = get_text(&b, "/metrics/per-object");
            assert_eq!(status, 200);
            let per = parse(&text);
            let labels = [("vhost", "/"), ("queue", q.as_str())];
            assert_eq!(
                per.value("rabbitmq_queue_messages_ready", &labels),
                Some(3.0)
            );
            assert_eq!(
                per.value("rabbitmq_queue_messages_unacked", &labels),
                Some(0.0)
            );
            assert_eq!(per.value("rabbitmq_queue_messages", &labels), Some(3.0));
            assert_eq!(per.value("rabbitmq_queue_consumers", &labels), Some(0.0));
            assert_eq!(
                per.value("rabbitmq_queue_messages_published_total", &labels),
                Some(3.0)
            );
            assert!(per
                .value("warren_queue_oldest_ready_age_seconds", &labels)
                .is_some());
            assert_eq!(
                per.value(
                    "rabbitmq_exchange_messages_published_total",
                    &[("vhost", "/"), ("exchange", "amq.default")]
                ),
                Some(3.0)
            );

            // Detailed: only the families asked for, `rabbitmq_detailed_`.
            let (status, text) = get_text(
                &b,
                "/metrics/detailed?family=queue_coarse_metrics&family=warren_queue_age_metrics",
            );
            assert_eq!(status, 200);
            let det = parse(&text);
            assert_eq!(
                det.value("rabbitmq_detailed_queue_messages_ready", &labels),
                Some(3.0)
            );
            assert!(det
                .types
                .contains_key("warren_queue_oldest_ready_age_seconds"));
            assert!(!det
                .types
                .contains_key("rabbitmq_detailed_channel_consumers"));
            assert!(!det.types.contains_key("rabbitmq_detailed_queue_consumers"));
            let (_, text) = get_text(
                &b,
                "/metrics/detailed?family=queue_coarse_metrics&vhost=other",
            );
            assert!(parse(&text)
                .samples
                .iter()
                .all(|(n, _, _)| n != "rabbitmq_detailed_queue_messages_ready"));
            let _ = conn.close(200, "".into()).await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_ages_grow_and_clear() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let q = unique_name("ages");
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &q, false, last_shard(shards)).await;
            let path = format!("/api/queues/%2F/{q}");
            assert_eq!(api_get(&b, &path)["oldest_ready_age_seconds"], Value::Null);
            publish_confirmed(&ch, &q, &padded_bodies("a", 2), Default::default()).await;
            let age = |field: &str| api_get(&b, &path)[field].as_f64();
            let first = age("oldest_ready_age_seconds").expect("a ready age");
            assert!(
                eventually(30, || age("oldest_ready_age_seconds")
                    .is_some_and(|a| a >= first + 0.5))
                .await,
                "the ready age grows from {first}: {}",
                api_get(&b, &path)
            );
            assert_eq!(
                api_get(&b, &path)["oldest_unacked_age_seconds"],
                Value::Null
            );
            // One delivered, not acked: the unacked age is the message's.
            let getter = conn.create_channel().await.expect("channel");
            let m = getter
                .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .expect("get")
                .expect("a message");
            let unacked = age("oldest_unacked_age_seconds").expect("an unacked age");
            assert!(unacked >= first + 0.5, "{unacked} vs {first}");
            assert!(
                eventually(30, || age("oldest_unacked_age_seconds")
                    .is_some_and(|a| a >= unacked + 0.5))
                .await,
                "the unacked age grows"
            );
            m.delivery.ack(Default::default()).await.expect("ack");
            assert!(
                eventually(20, || api_get(&b, &path)["oldest_unacked_age_seconds"]
                    .is_null())
                .await,
                "no unacked message, no age"
            );
            let _ = conn.close(200, "".into()).await;
        })
        .await;
    }
}

/// 100 k queues: `/metrics` (aggregated) must answer in under a second.
/// Run in release: `cargo test --release -p warren --test metrics --
/// --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn scale_100k_queues() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    const QUEUES: usize = 100_000;
    let b = Broker::start_with_args(2, &["--memory-budget", "1073741824"]);
    within_secs(1200, async {
        let conn = lapin_connect(&b).await;
        let ch = conn.create_channel().await.expect("channel");
        let tag = unique_name("scale");
        let mut pending = Vec::new();
        for i in 0..QUEUES {
            let ch = ch.clone();
            let name = format!("{tag}-{i}");
            pending.push(tokio::spawn(async move {
                ch.queue_declare(
                    name.as_str().into(),
                    lapin::options::QueueDeclareOptions {
                        nowait: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await
                .expect("declare");
            }));
            if pending.len() >= 1000 {
                for p in pending.drain(..) {
                    p.await.expect("task");
                }
            }
        }
        for p in pending.drain(..) {
            p.await.expect("task");
        }
        assert!(
            eventually(300, || api_get(&b, "/api/overview")["object_totals"]
                ["queues"]
                .as_u64()
                == Some(QUEUES as u64))
            .await
        );
        for path in ["/metrics", "/metrics", "/metrics/per-object"] {
            let start = std::time::Instant::now();
            let (status, text) = get_text(&b, path);
            let took = start.elapsed();
            assert_eq!(status, 200);
            println!("{path}: {took:?}, {} bytes", text.len());
            if path == "/metrics" {
                assert!(
                    took < std::time::Duration::from_secs(1),
                    "{path} took {took:?}"
                );
            }
        }
    })
    .await;
}
