//! Queue behaviour: declare flags and counts, server-named queues, idempotent
//! and inequivalent redeclares, passive declares, exclusive locking, quorum
//! queues, unknown arguments, delete (if-unused / if-empty), purge, and the
//! lifetimes of exclusive and auto-delete queues.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};

async fn publish(ch: &Channel, queue: &str, body: &[u8]) {
    ch.basic_publish(
        "".into(),
        queue.into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default(),
    )
    .await
    .expect("publish");
}

/// Publishes `n` messages with confirms so they are all enqueued on return.
async fn publish_n_confirmed(conn: &Connection, queue: &str, n: usize) {
    let ch = confirm_channel(conn).await;
    for i in 0..n {
        let c = ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                format!("m{i}").as_bytes(),
                BasicProperties::default(),
            )
            .await
            .expect("publish");
        assert!(c.await.expect("confirm").is_ack());
    }
    ch.close(200, "".into()).await.expect("close");
}

/// Passive-declares `name` on a fresh channel.
async fn peek(conn: &Connection, name: &str) -> Result<lapin::Queue, lapin::Error> {
    let ch = conn.create_channel().await.expect("channel");
    ch.queue_declare(name.into(), passive(), FieldTable::default())
        .await
}

/// Waits until a passive declare of `name` fails with 404.
async fn assert_gone(conn: &Connection, name: &str) {
    let mut last = None;
    for _ in 0..100 {
        match peek(conn, name).await {
            Err(e) => {
                assert_lapin_error(
                    Err::<(), _>(e),
                    404,
                    &format!("NOT_FOUND - no queue '{name}' in vhost '/'"),
                );
                return;
            }
            Ok(q) => last = Some(q),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("queue {name} still exists: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_flags_and_counts() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                for opts in [
                    durable(),
                    QueueDeclareOptions {
                        exclusive: true,
                        ..Default::default()
                    },
                    QueueDeclareOptions {
                        auto_delete: true,
                        ..Default::default()
                    },
                    QueueDeclareOptions::default(),
                ] {
                    let name = unique_name("q-flags");
                    let q = ch
                        .queue_declare(name.as_str().into(), opts, lapin_placement_args(placement))
                        .await
                        .expect("declare");
                    assert_eq!(q.name().as_str(), name);
                    assert_eq!((q.message_count(), q.consumer_count()), (0, 0));
                    ch.queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                        .await
                        .expect("delete");
                }

                // message_count counts ready messages, consumer_count consumers.
                let name = unique_name("q-counts");
                ch.queue_declare(
                    name.as_str().into(),
                    QueueDeclareOptions::default(),
                    lapin_placement_args(placement),
                )
                .await
                .expect("declare");
                publish_n_confirmed(&conn, &name, 3).await;
                let q = ch
                    .queue_declare(name.as_str().into(), passive(), FieldTable::default())
                    .await
                    .expect("passive");
                assert_eq!((q.message_count(), q.consumer_count()), (3, 0));

                let cch = conn.create_channel().await.expect("channel");
                cch.basic_qos(1, BasicQosOptions::default())
                    .await
                    .expect("qos");
                let mut consumer = cch
                    .basic_consume(
                        name.as_str().into(),
                        "".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .expect("consume");
                let d = consumer.next().await.expect("delivery").expect("ok");
                assert_eq!(d.data, b"m0");
                let q = ch
                    .queue_declare(name.as_str().into(), passive(), FieldTable::default())
                    .await
                    .expect("passive");
                assert_eq!((q.message_count(), q.consumer_count()), (2, 1));
                // A non-passive redeclare reports the same counts.
                let q = ch
                    .queue_declare(
                        name.as_str().into(),
                        QueueDeclareOptions::default(),
                        lapin_placement_args(placement),
                    )
                    .await
                    .expect("redeclare");
                assert_eq!((q.message_count(), q.consumer_count()), (2, 1));
                ch.queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                    .await
                    .expect("delete");
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_named_queues() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            let opts = QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            };
            let q1 = ch
                .queue_declare("".into(), opts, FieldTable::default())
                .await
                .expect("declare");
            let q2 = ch
                .queue_declare("".into(), opts, FieldTable::default())
                .await
                .expect("declare");
            for q in [&q1, &q2] {
                assert!(q.name().as_str().starts_with("amq.gen-"), "{:?}", q.name());
                assert!(q.name().as_str().len() > "amq.gen-".len());
            }
            assert_ne!(q1.name(), q2.name());
            // The generated name is a real queue: publish + passive see it.
            publish_n_confirmed(&conn, q1.name().as_str(), 2).await;
            let p = peek(&conn, q1.name().as_str()).await.expect("passive");
            assert_eq!(p.message_count(), 2);

            let aconn = amqprs_connect(&b).await;
            let ach = aconn.open_channel(None).await.expect("channel");
            let (name, messages, consumers) = ach
                .queue_declare(amqprs::channel::QueueDeclareArguments::exclusive_server_named())
                .await
                .expect("declare")
                .expect("declare-ok");
            assert!(name.starts_with("amq.gen-"), "{name:?}");
            assert_eq!((messages, consumers), (0, 0));
            aconn.close().await.expect("close");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_is_idempotent() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            let name = unique_name("q-idem");
            let mut args = FieldTable::default();
            args.insert("x-max-length".into(), AMQPValue::LongInt(100));
            for _ in 0..3 {
                let q = ch
                    .queue_declare(name.as_str().into(), durable(), args.clone())
                    .await
                    .expect("declare");
                assert_eq!(q.name().as_str(), name);
            }
            publish_n_confirmed(&conn, &name, 1).await;
            let q = ch
                .queue_declare(name.as_str().into(), durable(), args.clone())
                .await
                .expect("declare");
            assert_eq!(q.message_count(), 1);
            let n = ch
                .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await
                .expect("delete");
            assert_eq!(n, 1);
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_declare_of_missing_queue_closes_channel() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            let name = unique_name("q-missing");
            let r = ch
                .queue_declare(name.as_str().into(), passive(), FieldTable::default())
                .await;
            assert_lapin_error(
                r,
                404,
                &format!("NOT_FOUND - no queue '{name}' in vhost '/'"),
            );
            assert!(!ch.status().connected(), "channel closed by the error");
            // The connection survives a channel error.
            let ch2 = conn.create_channel().await.expect("new channel");
            ch2.queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare on a new channel");

            // amqprs sees the same channel.close.
            let aconn = amqprs_connect(&b).await;
            let ach = aconn.open_channel(None).await.expect("channel");
            let rec = AmqprsCloseRecorder::default();
            ach.register_callback(rec.clone()).await.expect("callback");
            let mut args = amqprs::channel::QueueDeclareArguments::new(&name);
            args.passive(true);
            assert!(ach.queue_declare(args).await.is_err());
            let closes = rec.closes.clone();
            assert!(eventually(5, || !closes.lock().unwrap().is_empty()).await);
            assert_eq!(
                rec.closes.lock().unwrap()[0],
                (404, format!("NOT_FOUND - no queue '{name}' in vhost '/'"))
            );
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inequivalent_redeclare_is_precondition_failed() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            let name = unique_name("q-ineq");
            ch.queue_declare(
                name.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("declare");
            let r = ch
                .queue_declare(name.as_str().into(), durable(), FieldTable::default())
                .await;
            assert_lapin_error(
                r,
                406,
                &format!(
                    "PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{name}' in \
                     vhost '/': received 'true' but current is 'false'"
                ),
            );

            // Different arguments are inequivalent too.
            let ch = conn.create_channel().await.expect("channel");
            let mut args = FieldTable::default();
            args.insert("x-max-length".into(), AMQPValue::LongInt(10));
            let r = ch
                .queue_declare(name.as_str().into(), QueueDeclareOptions::default(), args)
                .await;
            let text = assert_lapin_code(r, 406);
            assert!(
                text.starts_with(&format!(
                    "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '{name}'"
                )),
                "{text:?}"
            );

            // The queue itself is unchanged.
            let q = peek(&conn, &name).await.expect("still there");
            assert_eq!(q.name().as_str(), name);
            let ch = conn.create_channel().await.expect("channel");
            ch.queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await
                .expect("delete");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_queue_is_locked_to_its_connection() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let owner = lapin_connect(&b).await;
            let other = lapin_connect(&b).await;
            let name = unique_name("q-excl");
            let och = owner.create_channel().await.expect("channel");
            och.queue_declare(
                name.as_str().into(),
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare");
            let locked = format!(
                "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}' in \
                 vhost '/'. It could be originally declared on another connection or the \
                 exclusive property value does not match that of the original declaration."
            );
            let ch = other.create_channel().await.expect("channel");
            let r = ch
                .queue_declare(
                    name.as_str().into(),
                    QueueDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await;
            assert_lapin_error(r, 405, &locked);
            let ch = other.create_channel().await.expect("channel");
            let r = ch
                .basic_consume(
                    name.as_str().into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await;
            assert_lapin_error(r, 405, &locked);
            // The owner can still use it from another channel.
            let och2 = owner.create_channel().await.expect("channel");
            och2.queue_declare(
                name.as_str().into(),
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("owner redeclare");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_queues() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let mut qargs = FieldTable::default();
            qargs.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
            let name = unique_name("q-quorum");
            let ch = conn.create_channel().await.expect("channel");
            let q = ch
                .queue_declare(name.as_str().into(), durable(), qargs.clone())
                .await
                .expect("declare quorum");
            assert_eq!((q.message_count(), q.consumer_count()), (0, 0));
            publish_n_confirmed(&conn, &name, 2).await;
            let got = ch
                .basic_get(name.as_str().into(), Default::default())
                .await
                .expect("get")
                .expect("a message");
            assert_eq!(got.delivery.data, b"m0");
            assert_eq!(got.message_count, 1);
            got.delivery
                .acker
                .ack(Default::default())
                .await
                .expect("ack");
            let n = ch
                .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await
                .expect("delete");
            assert_eq!(n, 1);

            for (flag, opts) in [
                (
                    "exclusive-owner",
                    QueueDeclareOptions {
                        durable: true,
                        exclusive: true,
                        ..Default::default()
                    },
                ),
                (
                    "auto-delete",
                    QueueDeclareOptions {
                        durable: true,
                        auto_delete: true,
                        ..Default::default()
                    },
                ),
                ("non-durable", QueueDeclareOptions::default()),
            ] {
                let name = unique_name("q-quorum-bad");
                let ch = conn.create_channel().await.expect("channel");
                let r = ch
                    .queue_declare(name.as_str().into(), opts, qargs.clone())
                    .await;
                assert_lapin_error(
                    r,
                    406,
                    &format!(
                        "PRECONDITION_FAILED - invalid property '{flag}' for queue '{name}' in \
                         vhost '/'"
                    ),
                );
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_x_arguments_are_accepted() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            let name = unique_name("q-xargs");
            let mut args = FieldTable::default();
            args.insert("x-warren-test-unknown".into(), AMQPValue::LongInt(7));
            args.insert(
                "x-something-else".into(),
                AMQPValue::LongString("yes".into()),
            );
            ch.queue_declare(name.as_str().into(), QueueDeclareOptions::default(), args)
                .await
                .expect("declare with unknown x- args");
            publish(&ch, &name, b"hi").await;
            let got = ch
                .basic_get(name.as_str().into(), Default::default())
                .await
                .expect("get")
                .expect("message");
            assert_eq!(got.delivery.data, b"hi");
            ch.queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await
                .expect("delete");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_purge() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let name = unique_name("q-del");
                ch.queue_declare(
                    name.as_str().into(),
                    QueueDeclareOptions::default(),
                    lapin_placement_args(placement),
                )
                .await
                .expect("declare");
                publish_n_confirmed(&conn, &name, 4).await;

                // if-empty on a non-empty queue
                let r = ch
                    .queue_delete(
                        name.as_str().into(),
                        QueueDeleteOptions {
                            if_empty: true,
                            ..Default::default()
                        },
                    )
                    .await;
                assert_lapin_error(
                    r,
                    406,
                    &format!("PRECONDITION_FAILED - queue '{name}' in vhost '/' not empty"),
                );

                // if-unused on a queue with a consumer
                let ch = conn.create_channel().await.expect("channel");
                let cch = conn.create_channel().await.expect("channel");
                cch.basic_qos(1, BasicQosOptions::default())
                    .await
                    .expect("qos");
                let mut consumer = cch
                    .basic_consume(
                        name.as_str().into(),
                        "c1".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .expect("consume");
                let d = consumer.next().await.expect("delivery").expect("ok");
                assert_eq!(d.data, b"m0");
                let r = ch
                    .queue_delete(
                        name.as_str().into(),
                        QueueDeleteOptions {
                            if_unused: true,
                            ..Default::default()
                        },
                    )
                    .await;
                assert_lapin_error(
                    r,
                    406,
                    &format!("PRECONDITION_FAILED - queue '{name}' in vhost '/' in use"),
                );
                cch.basic_cancel("c1".into(), BasicCancelOptions::default())
                    .await
                    .expect("cancel");

                // purge removes the ready messages and reports how many.
                let ch = conn.create_channel().await.expect("channel");
                let purged = ch
                    .queue_purge(name.as_str().into(), QueuePurgeOptions::default())
                    .await
                    .expect("purge");
                assert_eq!(purged, 3, "three ready, one unacked");
                let again = ch
                    .queue_purge(name.as_str().into(), QueuePurgeOptions::default())
                    .await
                    .expect("purge");
                assert_eq!(again, 0);
                // The unacked one comes back when its channel closes.
                cch.close(200, "".into()).await.expect("close");
                let mut count = 0;
                for _ in 0..100 {
                    count = peek(&conn, &name).await.expect("passive").message_count();
                    if count == 1 {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                assert_eq!(count, 1);
                publish_n_confirmed(&conn, &name, 2).await;

                // A plain delete returns the message count, then it is gone.
                let n = ch
                    .queue_delete(
                        name.as_str().into(),
                        QueueDeleteOptions {
                            if_unused: true,
                            ..Default::default()
                        },
                    )
                    .await
                    .expect("delete");
                assert_eq!(n, 3);
                assert_gone(&conn, &name).await;

                // Deleting a missing queue succeeds with 0 (RabbitMQ).
                let n = ch
                    .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                    .await
                    .expect("delete missing");
                assert_eq!(n, 0);
                // Purging a missing queue is 404.
                let r = ch
                    .queue_purge(name.as_str().into(), QueuePurgeOptions::default())
                    .await;
                assert_lapin_error(
                    r,
                    404,
                    &format!("NOT_FOUND - no queue '{name}' in vhost '/'"),
                );
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_queue_disappears_with_its_connection() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let observer = lapin_connect(&b).await;
            let owner = lapin_connect(&b).await;
            let ch = owner.create_channel().await.expect("channel");
            let named = unique_name("q-excl-life");
            ch.queue_declare(
                named.as_str().into(),
                QueueDeclareOptions {
                    exclusive: true,
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare");
            let generated = ch
                .queue_declare(
                    "".into(),
                    QueueDeclareOptions {
                        exclusive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("declare")
                .name()
                .to_string();
            publish(&ch, &named, b"x").await;
            owner.close(200, "bye".into()).await.expect("close");
            assert_gone(&observer, &named).await;
            assert_gone(&observer, &generated).await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_delete_queue_disappears_after_last_consumer() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let name = unique_name("q-autodel");
                ch.queue_declare(
                    name.as_str().into(),
                    QueueDeclareOptions {
                        auto_delete: true,
                        ..Default::default()
                    },
                    lapin_placement_args(placement),
                )
                .await
                .expect("declare");
                // No consumer yet: it stays.
                publish_n_confirmed(&conn, &name, 1).await;
                assert_eq!(peek(&conn, &name).await.expect("exists").message_count(), 1);
                // Consumers are kept alive: lapin cancels a consumer on drop.
                let mut consumers = Vec::new();
                for tag in ["a", "b"] {
                    let c = ch
                        .basic_consume(
                            name.as_str().into(),
                            tag.into(),
                            BasicConsumeOptions::default(),
                            FieldTable::default(),
                        )
                        .await
                        .expect("consume");
                    consumers.push(c);
                }
                ch.basic_cancel("a".into(), BasicCancelOptions::default())
                    .await
                    .expect("cancel a");
                let q = peek(&conn, &name).await.expect("one consumer left");
                assert_eq!(q.consumer_count(), 1);
                ch.basic_cancel("b".into(), BasicCancelOptions::default())
                    .await
                    .expect("cancel b");
                assert_gone(&conn, &name).await;
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queue_arguments_are_refused_with_rabbitmqs_texts() {
    use lapin::types::{AMQPValue, LongString, ShortString};
    // (argument, value, RabbitMQ 3.10's reason) — probed against RabbitMQ;
    // the whole table lives in src/broker/queue_args/tests/probed.rs.
    let cases: Vec<(&str, AMQPValue, &str)> = vec![
        (
            "x-max-priority",
            AMQPValue::LongInt(256),
            "{max_value_exceeded,256}",
        ),
        (
            "x-message-ttl",
            AMQPValue::LongInt(-1),
            "{value_negative,-1}",
        ),
        ("x-expires", AMQPValue::LongInt(0), "{value_zero,0}"),
        (
            "x-overflow",
            AMQPValue::LongString(LongString::from("bogus")),
            "invalid_overflow",
        ),
        (
            "x-max-length",
            AMQPValue::LongString(LongString::from("10")),
            "\"expected integer, got longstr\"",
        ),
    ];
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for (key, value, reason) in &cases {
                let ch = conn.create_channel().await.expect("channel");
                let name = unique_name("q-badarg");
                let mut args = FieldTable::default();
                args.insert(ShortString::from(*key), value.clone());
                let r = ch
                    .queue_declare(name.as_str().into(), QueueDeclareOptions::default(), args)
                    .await;
                assert_lapin_error(
                    r,
                    406,
                    &format!(
                        "PRECONDITION_FAILED - invalid arg '{key}' for queue '{name}' in vhost '/': {reason}"
                    ),
                );
                // Nothing was declared.
                assert_gone(&conn, &name).await;
            }
        })
        .await;
    }
}
