//! Direct reply-to addresses cannot be forged: each reply consumer gets an
//! address ending in a random secret, a reply whose address has the right
//! connection and channel but the wrong secret is not delivered (and, like
//! any reply in RabbitMQ 3.10, is returned when mandatory), and two
//! channels' addresses differ in their secrets.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::BasicProperties;
use lapin::Confirmation;
use std::time::Duration;

const REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Starts a reply consumer on `ch` and returns (its consumer, the address
/// the broker writes into a request's reply_to).
async fn reply_address(ch: &lapin::Channel) -> (lapin::Consumer, String) {
    let replies = ch
        .basic_consume(
            REPLY_TO.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume amq.rabbitmq.reply-to");
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
        .expect("declare the request queue");
    ch.basic_publish(
        "".into(),
        q.name().as_str().into(),
        BasicPublishOptions::default(),
        b"request",
        BasicProperties::default().with_reply_to(REPLY_TO.into()),
    )
    .await
    .expect("publish request");
    let request = loop {
        if let Some(m) = ch
            .basic_get(q.name().as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get")
        {
            break m.delivery;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let address = request
        .properties
        .reply_to()
        .as_ref()
        .expect("rewritten reply_to")
        .to_string();
    assert!(
        address.starts_with("amq.rabbitmq.reply-to."),
        "rewritten address: {address}"
    );
    (replies, address)
}

/// The address's last dot-separated part: its secret.
fn secret(address: &str) -> &str {
    address.rsplit('.').next().unwrap()
}

/// `address` with a different secret of the same length.
fn forged(address: &str) -> String {
    let s = secret(address);
    let fake: String = s
        .chars()
        .map(|c| match c {
            '=' => '=',
            'A' => 'B',
            _ => 'A',
        })
        .collect();
    format!("{}{fake}", &address[..address.len() - s.len()])
}

async fn publish(ch: &lapin::Channel, key: &str, body: &[u8], mandatory: bool) -> Confirmation {
    ch.basic_publish(
        "".into(),
        key.into(),
        BasicPublishOptions {
            mandatory,
            ..Default::default()
        },
        body,
        BasicProperties::default(),
    )
    .await
    .expect("publish")
    .await
    .expect("confirm")
}

fn assert_returned_no_route(c: Confirmation, what: &str) {
    match c {
        Confirmation::Ack(Some(ret)) => {
            assert_eq!(
                (ret.reply_code, ret.reply_text.as_str()),
                (312, "NO_ROUTE"),
                "{what}"
            );
        }
        other => panic!("{what}: expected ack with basic.return, got {other:?}"),
    }
}

async fn forged_reply_is_not_delivered(b: &Broker) {
    let client = lapin_connect(b).await;
    let cch = client.create_channel().await.unwrap();
    let (mut replies, address) = reply_address(&cch).await;
    let fake = forged(&address);
    assert_ne!(fake, address);

    let server = lapin_connect(b).await;
    let sch = server.create_channel().await.unwrap();
    sch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    // The forged address reaches nobody: dropped, returned when mandatory.
    assert_returned_no_route(
        publish(&sch, &fake, b"forged, mandatory", true).await,
        "forged mandatory reply",
    );
    assert_eq!(
        publish(&sch, &fake, b"forged", false).await,
        Confirmation::Ack(None)
    );
    // The real address delivers (RabbitMQ 3.10 returns a mandatory reply
    // as unroutable even though it delivers it; Warren does the same).
    assert_returned_no_route(
        publish(&sch, &address, b"real, mandatory", true).await,
        "real mandatory reply",
    );
    assert_eq!(
        publish(&sch, &address, b"real", false).await,
        Confirmation::Ack(None)
    );
    for expected in [&b"real, mandatory"[..], b"real"] {
        let d = within_secs(10, replies.next())
            .await
            .expect("reply consumer ended")
            .expect("reply delivery");
        assert_eq!(d.data, expected, "only the real replies arrive, in order");
    }
    let extra = tokio::time::timeout(Duration::from_millis(300), replies.next()).await;
    assert!(extra.is_err(), "no forged reply arrives: {extra:?}");
    let _ = server.close(200, "OK".into()).await;
    let _ = client.close(200, "OK".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_reply_address_is_not_delivered() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(forged_reply_is_not_delivered(&b)).await;
    }
}

async fn addresses_differ(b: &Broker) {
    let conn = lapin_connect(b).await;
    let mut addresses = Vec::new();
    for _ in 0..2 {
        let ch = conn.create_channel().await.unwrap();
        let (_replies, address) = reply_address(&ch).await;
        addresses.push((ch, address));
    }
    let (a, b2) = (&addresses[0].1, &addresses[1].1);
    assert_ne!(a, b2);
    let (sa, sb) = (secret(a), secret(b2));
    assert_ne!(sa, sb, "the secrets of two channels differ");
    assert!(
        sa.len() >= 16 && sb.len() >= 16,
        "secrets long enough to be unguessable: {sa} {sb}"
    );
    // Not a counter: the two secrets differ in more than a character or two.
    let differing = sa.chars().zip(sb.chars()).filter(|(x, y)| x != y).count();
    assert!(differing > 4, "secrets {sa} and {sb} look sequential");
    let _ = conn.close(200, "OK".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_addresses_of_two_channels_differ_unpredictably() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(addresses_differ(&b)).await;
    }
}
