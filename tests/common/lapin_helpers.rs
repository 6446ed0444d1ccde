//! lapin helpers several test files share: connecting, error inspection, placement arguments, confirm channels, confirmed publishes, drains, ready counts.

use super::*;

/// Connects lapin to the broker (guest/guest, vhost `/`).
pub async fn lapin_connect(b: &Broker) -> lapin::Connection {
    within_secs(
        20,
        lapin::Connection::connect(&b.uri(), lapin::ConnectionProperties::default()),
    )
    .await
    .unwrap_or_else(|e| panic!("lapin connect to {}: {e}", b.uri()))
}

/// Connects lapin as `user` / `password` on vhost `/`.
pub async fn lapin_connect_as(
    b: &Broker,
    user: &str,
    password: &str,
) -> Result<lapin::Connection, lapin::Error> {
    let uri = format!("amqp://{user}:{password}@{}:{}/%2f", b.host(), b.port());
    within_secs(
        20,
        lapin::Connection::connect(&uri, lapin::ConnectionProperties::default()),
    )
    .await
}

/// The AMQP reply code and text carried by a lapin error, if it is one.
pub fn lapin_amqp_error(e: &lapin::Error) -> Option<(u16, String)> {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(err) => Some((err.get_id(), err.get_message().to_string())),
        _ => None,
    }
}

/// Asserts that a lapin result failed with AMQP reply `code` and exact `text`.
#[track_caller]
pub fn assert_lapin_error<T: std::fmt::Debug>(r: Result<T, lapin::Error>, code: u16, text: &str) {
    match r {
        Ok(v) => panic!("expected AMQP error {code} {text:?}, got Ok({v:?})"),
        Err(e) => match lapin_amqp_error(&e) {
            Some((c, t)) => {
                assert_eq!(c, code, "reply code (text {t:?})");
                assert_eq!(t, text, "reply text");
            }
            None => panic!("expected AMQP error {code} {text:?}, got {e:?}"),
        },
    }
}

/// Asserts that a lapin result failed with AMQP reply `code` (any text);
/// returns the text.
#[track_caller]
pub fn assert_lapin_code<T: std::fmt::Debug>(r: Result<T, lapin::Error>, code: u16) -> String {
    match r {
        Ok(v) => panic!("expected AMQP error {code}, got Ok({v:?})"),
        Err(e) => match lapin_amqp_error(&e) {
            Some((c, t)) => {
                assert_eq!(c, code, "reply code (text {t:?})");
                t
            }
            None => panic!("expected AMQP error {code}, got {e:?}"),
        },
    }
}

/// Queue-declare arguments pinning the queue to `shard` (`x-warren-shard`),
/// or empty arguments for `None`.
pub fn lapin_placement_args(shard: Option<usize>) -> lapin::types::FieldTable {
    let mut t = lapin::types::FieldTable::default();
    if let Some(s) = shard {
        let s = i32::try_from(s).expect("shard index fits i32");
        t.insert("x-warren-shard".into(), lapin::types::AMQPValue::LongInt(s));
    }
    t
}

/// The placements a core test runs with on `b`: unpinned with one shard;
/// pinned to each shard in turn with several (one of them crosses shards
/// whichever shard the connection lands on).
pub fn placements(b: &Broker) -> Vec<Option<usize>> {
    if b.shards() <= 1 {
        vec![None]
    } else {
        (0..b.shards()).map(Some).collect()
    }
}

/// The last shard (None with one): with several shards, a queue placed
/// there is not on the shard of the leader, and usually not on the one a
/// connection lands on, so its traffic crosses shards.
pub fn last_shard(shards: usize) -> Option<usize> {
    (shards > 1).then_some(shards - 1)
}

/// Owned copies of `v`.
pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

/// Delivery mode 2.
pub fn persistent() -> lapin::BasicProperties {
    lapin::BasicProperties::default().with_delivery_mode(2)
}

/// queue.declare options with `durable` set.
pub fn durable() -> lapin::options::QueueDeclareOptions {
    lapin::options::QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

/// queue.declare options with `passive` set.
pub fn passive() -> lapin::options::QueueDeclareOptions {
    lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    }
}

/// Message `i` of a numbered series: `<prefix>-<i, six digits>-` and 90
/// `x`, about 100 bytes (a few hundred fill a 64 KiB memory budget).
pub fn padded_body(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:06}-{}", "x".repeat(90))
}

/// Messages `0..n` of the [`padded_body`] series.
pub fn padded_bodies(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| padded_body(prefix, i)).collect()
}

/// `(body, false)` for each body: never delivered before.
pub fn fresh(bodies: &[String]) -> Vec<(String, bool)> {
    bodies.iter().map(|b| (b.clone(), false)).collect()
}

/// The bodies of `(body, redelivered)` pairs.
pub fn bodies_only(got: Vec<(String, bool)>) -> Vec<String> {
    got.into_iter().map(|(body, _)| body).collect()
}

/// A new channel in confirm mode.
pub async fn confirm_channel(conn: &lapin::Connection) -> lapin::Channel {
    let ch = conn.create_channel().await.expect("channel.open");
    ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    ch
}

/// Declares queue `name` (durable or not) with the placement argument.
pub async fn declare_queue(
    ch: &lapin::Channel,
    name: &str,
    durable: bool,
    placement: Option<usize>,
) {
    ch.queue_declare(
        name.into(),
        lapin::options::QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        lapin_placement_args(placement),
    )
    .await
    .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

/// Publishes every body to `queue` through the default exchange on `ch` (a
/// confirm channel), pipelined, and asserts each was acked (and not
/// returned).
pub async fn publish_confirmed(
    ch: &lapin::Channel,
    queue: &str,
    bodies: &[String],
    props: lapin::BasicProperties,
) {
    let mut confirms = Vec::with_capacity(bodies.len());
    for b in bodies {
        let c = ch
            .basic_publish(
                "".into(),
                queue.into(),
                lapin::options::BasicPublishOptions::default(),
                b.as_bytes(),
                props.clone(),
            )
            .await
            .unwrap_or_else(|e| panic!("publish {b}: {e}"));
        confirms.push(c);
    }
    for c in confirms {
        match c.await.expect("confirm") {
            lapin::Confirmation::Ack(None) => {}
            other => panic!("expected an ack, got {other:?}"),
        }
    }
}

/// Takes every ready message of `queue` with basic.get (no-ack) on a fresh
/// channel: `(body, redelivered)` in queue order.
pub async fn drain(conn: &lapin::Connection, queue: &str) -> Vec<(String, bool)> {
    let ch = conn.create_channel().await.expect("channel.open");
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(
            queue.into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap_or_else(|e| panic!("basic.get {queue}: {e}"))
    {
        let body = String::from_utf8(m.delivery.data).expect("utf-8 body");
        out.push((body, m.delivery.redelivered));
        assert!(out.len() <= 1_000_000, "runaway drain of {queue}");
    }
    let _ = ch.close(200, "".into()).await;
    out
}

/// Consumes `n` messages of `queue` on a fresh channel with manual acks
/// (prefetch 50), acking each: `(body, redelivered)` in arrival order.
pub async fn consume_acked(conn: &lapin::Connection, queue: &str, n: usize) -> Vec<(String, bool)> {
    use futures_lite::StreamExt;
    let ch = conn.create_channel().await.expect("channel.open");
    ch.basic_qos(50, lapin::options::BasicQosOptions::default())
        .await
        .expect("qos");
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "consume-acked".into(),
            lapin::options::BasicConsumeOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .expect("consume");
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let d = consumer
            .next()
            .await
            .expect("consumer stream ended")
            .expect("delivery");
        out.push((
            String::from_utf8(d.data.clone()).expect("utf-8"),
            d.redelivered,
        ));
        d.ack(lapin::options::BasicAckOptions::default())
            .await
            .expect("ack");
    }
    let _ = ch.close(200, "".into()).await;
    out
}

/// Ready-message count of `queue` via a passive declare on a fresh channel.
pub async fn ready_count(conn: &lapin::Connection, queue: &str) -> u32 {
    let ch = conn.create_channel().await.expect("channel.open");
    let q = ch
        .queue_declare(queue.into(), passive(), lapin::types::FieldTable::default())
        .await
        .unwrap_or_else(|e| panic!("passive declare of {queue}: {e}"));
    let _ = ch.close(200, "".into()).await;
    q.message_count()
}

/// Waits (about 5 s at most) until `queue` holds exactly `n` ready messages.
pub async fn wait_ready(conn: &lapin::Connection, queue: &str, n: u32) {
    let mut last = u32::MAX;
    for _ in 0..250 {
        last = ready_count(conn, queue).await;
        if last == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("queue {queue} holds {last} ready messages, wanted {n}");
}

/// A field array of long strings (a `CC` / `BCC` header, `x-death` keys).
pub fn longstr_array(v: &[&str]) -> lapin::types::AMQPValue {
    lapin::types::AMQPValue::FieldArray(lapin::types::FieldArray::from(
        v.iter()
            .map(|k| lapin::types::AMQPValue::LongString((*k).into()))
            .collect::<Vec<_>>(),
    ))
}

/// Binds queue `q` to exchange `x` with `key` and no arguments.
pub async fn bind_queue(ch: &lapin::Channel, q: &str, x: &str, key: &str) {
    ch.queue_bind(
        q.into(),
        x.into(),
        key.into(),
        lapin::options::QueueBindOptions::default(),
        lapin::types::FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("bind {q} to {x} with {key}: {e}"));
}

/// Publishes `body` to `x` with `key` on `ch` (a confirm channel) and
/// waits for the confirmation (a returned message comes with its ack).
pub async fn publish_to(
    ch: &lapin::Channel,
    x: &str,
    key: &str,
    body: &str,
    props: lapin::BasicProperties,
    mandatory: bool,
) -> lapin::Confirmation {
    ch.basic_publish(
        x.into(),
        key.into(),
        lapin::options::BasicPublishOptions {
            mandatory,
            ..Default::default()
        },
        body.as_bytes(),
        props,
    )
    .await
    .unwrap_or_else(|e| panic!("publish {body}: {e}"))
    .await
    .unwrap_or_else(|e| panic!("confirm of {body}: {e}"))
}

/// Waits (40 s at most: for work the broker does in the background, such
/// as reading paged messages back) until `queue` holds exactly `n` ready
/// messages.
pub async fn wait_ready_long(conn: &lapin::Connection, queue: &str, n: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let got = ready_count(conn, queue).await;
        if got == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{queue} holds {got} ready messages, wanted {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes what the broker must refuse by closing the channel, and
/// returns the close's result. The channel is put in confirm mode first so
/// that the publish has a pending confirm, which the close fails with the
/// broker's reply: a method sent after the publish could instead race the
/// close and fail with "channel closing" and no reply code.
pub async fn publish_refused(
    ch: &lapin::Channel,
    exchange: &str,
    key: &str,
    props: lapin::BasicProperties,
) -> Result<lapin::Confirmation, lapin::Error> {
    ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    ch.basic_publish(
        exchange.into(),
        key.into(),
        lapin::options::BasicPublishOptions::default(),
        b"x",
        props,
    )
    .await?
    .await
}
