//! Permissions, checked where RabbitMQ checks them (its access-control
//! table): configure to declare and delete queues and exchanges (server-
//! named and exclusive queues too; passive declares need nothing), read to
//! consume, get and purge, write on the queue and read on the exchange to
//! bind and unbind (exchange-to-exchange too), write on the exchange to
//! publish (the default exchange is `amq.default`), read on the queue and
//! write on the dead-letter exchange to declare a queue with one, likewise
//! for alternate exchanges; dead-lettering itself and direct reply-to are
//! not checked. Topic permissions check the routing keys of topic
//! exchanges (`{username}` / `{vhost}` expanded). A publish whose
//! `user_id` is not the connection's user is 406 (unless the user has the
//! `impersonator` tag). Permission changes apply
//! to open channels; without permissions on the vhost connection.open is
//! refused with 530. Every refusal is RabbitMQ's 403 text, closing the
//! channel. With 1 and 2 shards; against RabbitMQ the users are made with
//! rabbitmqctl and deleted afterwards.

mod common;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ExchangeKind};

/// A user made for one test (with permissions on `/` if given); deleted
/// when dropped.
struct TestUser<'a> {
    b: &'a Broker,
    name: String,
    pass: String,
}

impl<'a> TestUser<'a> {
    fn new(b: &'a Broker, perms: Option<[&str; 3]>) -> TestUser<'a> {
        let name = unique_name("zu-perm");
        let pass = "s3cret".to_string();
        broker_ctl_ok(b, &["add_user", &name, &pass]);
        if let Some([c, w, r]) = perms {
            broker_ctl_ok(b, &["set_permissions", "-p", "/", &name, c, w, r]);
        }
        TestUser { b, name, pass }
    }

    async fn connect(&self) -> lapin::Connection {
        lapin_connect_as(self.b, &self.name, &self.pass)
            .await
            .unwrap_or_else(|e| panic!("connect as {}: {e}", self.name))
    }

    fn refused(&self, kind: &str, name: &str) -> String {
        format!(
            "ACCESS_REFUSED - access to {kind} '{name}' in vhost '/' refused for user '{}'",
            self.name
        )
    }
}

impl Drop for TestUser<'_> {
    fn drop(&mut self) {
        let _ = broker_ctl(self.b, &["delete_user", &self.name]);
    }
}

async fn channel(conn: &lapin::Connection) -> lapin::Channel {
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    ch
}

/// A confirmed publish, then a synchronous probe on the same channel: Ok,
/// or the error the channel was closed with.
async fn publish(
    ch: &lapin::Channel,
    exchange: &str,
    key: &str,
    props: BasicProperties,
) -> Result<(), lapin::Error> {
    ch.basic_publish(
        exchange.into(),
        key.into(),
        BasicPublishOptions::default(),
        b"m",
        props,
    )
    .await?
    .await?;
    ch.exchange_declare(
        "amq.topic".into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
}

async fn qbind(ch: &lapin::Channel, q: &str, x: &str, key: &str) -> Result<(), lapin::Error> {
    let none = FieldTable::default();
    ch.queue_bind(
        q.into(),
        x.into(),
        key.into(),
        QueueBindOptions::default(),
        none,
    )
    .await
}

async fn qunbind(ch: &lapin::Channel, q: &str, x: &str, key: &str) -> Result<(), lapin::Error> {
    ch.queue_unbind(q.into(), x.into(), key.into(), FieldTable::default())
        .await
}

async fn xbind(ch: &lapin::Channel, dest: &str, src: &str, key: &str) -> Result<(), lapin::Error> {
    let (opts, none) = (ExchangeBindOptions::default(), FieldTable::default());
    ch.exchange_bind(dest.into(), src.into(), key.into(), opts, none)
        .await
}

async fn xunbind(
    ch: &lapin::Channel,
    dest: &str,
    src: &str,
    key: &str,
) -> Result<(), lapin::Error> {
    let (opts, none) = (ExchangeUnbindOptions::default(), FieldTable::default());
    ch.exchange_unbind(dest.into(), src.into(), key.into(), opts, none)
        .await
}

async fn declare(
    ch: &lapin::Channel,
    name: &str,
    opts: QueueDeclareOptions,
    args: FieldTable,
) -> Result<lapin::Queue, lapin::Error> {
    ch.queue_declare(name.into(), opts, args).await
}

async fn exchange(
    ch: &lapin::Channel,
    name: &str,
    kind: ExchangeKind,
    args: FieldTable,
) -> Result<(), lapin::Error> {
    ch.exchange_declare(name.into(), kind, ExchangeDeclareOptions::default(), args)
        .await
}

fn arg(key: &str, value: &str) -> FieldTable {
    let mut t = FieldTable::default();
    t.insert(key.into(), AMQPValue::LongString(value.into()));
    t
}

/// Names `{p}.<letters>`: the user may configure names whose letters hold
/// `c`, write `w`, read `r`.
fn perms(p: &str) -> [String; 3] {
    ["c", "w", "r"].map(|l| format!("^{p}\\.[a-z]*{l}[a-z]*$"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_needs_its_permission() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let p = unique_name("zp").replace('-', "");
            let n = |s: &str| format!("{p}.{s}");
            let [c, w, r] = perms(&p);
            let u = TestUser::new(&b, Some([&c, &w, &r]));
            // guest sets the stage.
            let admin = lapin_connect(&b).await;
            let g = channel(&admin).await;
            for q in ["r", "w", "x", "cr", "dlq"] {
                declare(
                    &g,
                    &n(q),
                    QueueDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
            }
            for x in ["r", "w", "c", "dlx"] {
                exchange(&g, &n(x), ExchangeKind::Fanout, FieldTable::default())
                    .await
                    .unwrap();
            }
            let conn = u.connect().await;

            // queue.declare: configure (passive: nothing).
            let ch = channel(&conn).await;
            declare(
                &ch,
                &n("c"),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
            let passive = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            declare(&ch, &n("x"), passive, FieldTable::default())
                .await
                .unwrap();
            let e = declare(
                &ch,
                &n("x"),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await;
            assert_lapin_error(e, 403, &u.refused("queue", &n("x")));
            let ch = channel(&conn).await;
            let e = declare(
                &ch,
                "",
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await;
            let text = assert_lapin_code(e, 403);
            assert!(
                text.starts_with("ACCESS_REFUSED - access to queue 'amq.gen-"),
                "{text}"
            );
            let ch = channel(&conn).await;
            let exclusive = QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            };
            let e = declare(&ch, &n("xe"), exclusive, FieldTable::default()).await;
            assert_lapin_error(e, 403, &u.refused("queue", &n("xe")));
            // With a dead-letter exchange: read on the queue, write on it.
            let ch = channel(&conn).await;
            declare(
                &ch,
                &n("crq"),
                QueueDeclareOptions::default(),
                arg("x-dead-letter-exchange", &n("w")),
            )
            .await
            .unwrap();
            let e = declare(
                &ch,
                &n("cx"),
                QueueDeclareOptions::default(),
                arg("x-dead-letter-exchange", &n("w")),
            )
            .await;
            assert_lapin_error(e, 403, &u.refused("queue", &n("cx")));
            let ch = channel(&conn).await;
            let e = declare(
                &ch,
                &n("crd"),
                QueueDeclareOptions::default(),
                arg("x-dead-letter-exchange", &n("c")),
            )
            .await;
            assert_lapin_error(e, 403, &u.refused("exchange", &n("c")));

            // purge, get, consume: read.
            let ch = channel(&conn).await;
            ch.queue_purge(n("r").as_str().into(), QueuePurgeOptions::default())
                .await
                .unwrap();
            ch.basic_get(n("r").as_str().into(), BasicGetOptions::default())
                .await
                .unwrap();
            // Held, not dropped: a dropped lapin consumer sends basic.cancel
            // in the background, and when that races the refusal below,
            // lapin reports the cancel's "channel closing" instead of 403.
            let _held = ch
                .basic_consume(
                    n("r").as_str().into(),
                    "t".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
            let e = ch
                .queue_purge(n("c").as_str().into(), QueuePurgeOptions::default())
                .await;
            assert_lapin_error(e, 403, &u.refused("queue", &n("c")));
            let ch = channel(&conn).await;
            let e = ch
                .basic_get(n("c").as_str().into(), BasicGetOptions::default())
                .await;
            assert_lapin_error(e, 403, &u.refused("queue", &n("c")));
            let ch = channel(&conn).await;
            let e = ch
                .basic_consume(
                    n("c").as_str().into(),
                    "t".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await;
            assert_lapin_error(e, 403, &u.refused("queue", &n("c")));
            // Direct reply-to is not a queue: no check.
            let ch = channel(&conn).await;
            let no_ack = BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            };
            // Held, as `_held` above (a refusal follows on this channel).
            let _held_reply_to = ch
                .basic_consume(
                    "amq.rabbitmq.reply-to".into(),
                    "rt".into(),
                    no_ack,
                    FieldTable::default(),
                )
                .await
                .unwrap();

            // queue.bind / unbind: write on the queue, read on the exchange.
            let none = FieldTable::default();
            qbind(&ch, &n("w"), &n("r"), "k").await.unwrap();
            qunbind(&ch, &n("w"), &n("r"), "k").await.unwrap();
            let e = qbind(&ch, &n("r"), &n("r"), "k").await;
            assert_lapin_error(e, 403, &u.refused("queue", &n("r")));
            let ch = channel(&conn).await;
            let e = qbind(&ch, &n("w"), &n("w"), "k").await;
            assert_lapin_error(e, 403, &u.refused("exchange", &n("w")));
            let ch = channel(&conn).await;
            let e = qunbind(&ch, &n("w"), &n("c"), "k").await;
            assert_lapin_error(e, 403, &u.refused("exchange", &n("c")));

            // Exchanges: declare and delete need configure, e2e bindings
            // write on the destination and read on the source.
            let ch = channel(&conn).await;
            exchange(&ch, &n("cw"), ExchangeKind::Direct, none.clone())
                .await
                .unwrap();
            ch.exchange_declare(
                "amq.direct".into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                none.clone(),
            )
            .await
            .unwrap();
            xbind(&ch, &n("cw"), &n("r"), "k").await.unwrap();
            xunbind(&ch, &n("cw"), &n("r"), "k").await.unwrap();
            let e = xbind(&ch, &n("c"), &n("r"), "k").await;
            assert_lapin_error(e, 403, &u.refused("exchange", &n("c")));
            let ch = channel(&conn).await;
            let e = exchange(&ch, &n("w"), ExchangeKind::Fanout, none.clone()).await;
            assert_lapin_error(e, 403, &u.refused("exchange", &n("w")));
            let ch = channel(&conn).await;
            let e = ch
                .exchange_declare(
                    "amq.direct".into(),
                    ExchangeKind::Direct,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    none.clone(),
                )
                .await;
            assert_lapin_error(e, 403, &u.refused("exchange", "amq.direct"));
            // An alternate exchange: read on the exchange, write on it.
            let ch = channel(&conn).await;
            exchange(
                &ch,
                &n("cr"),
                ExchangeKind::Direct,
                arg("alternate-exchange", &n("w")),
            )
            .await
            .unwrap();
            let e = exchange(
                &ch,
                &n("ca"),
                ExchangeKind::Direct,
                arg("alternate-exchange", &n("w")),
            )
            .await;
            assert_lapin_error(e, 403, &u.refused("exchange", &n("ca")));
            let ch = channel(&conn).await;
            ch.exchange_delete(n("cw").as_str().into(), ExchangeDeleteOptions::default())
                .await
                .unwrap();
            let e = ch
                .exchange_delete(n("w").as_str().into(), ExchangeDeleteOptions::default())
                .await;
            assert_lapin_error(e, 403, &u.refused("exchange", &n("w")));

            // Publish: write on the exchange, checked before it is looked up.
            let ch = channel(&conn).await;
            publish(&ch, &n("w"), "k", BasicProperties::default())
                .await
                .unwrap();
            let e = publish(&ch, &n("c"), "k", BasicProperties::default()).await;
            assert_lapin_error(e, 403, &u.refused("exchange", &n("c")));
            let ch = channel(&conn).await;
            let e = publish(&ch, "", &n("r"), BasicProperties::default()).await;
            assert_lapin_error(e, 403, &u.refused("exchange", "amq.default"));
            let ch = channel(&conn).await;
            let e = publish(&ch, &n("nope"), "k", BasicProperties::default()).await;
            assert_lapin_error(e, 403, &u.refused("exchange", &n("nope")));
            let ch = channel(&conn).await;
            let e = publish(&ch, &n("nowpe"), "k", BasicProperties::default()).await;
            assert_lapin_error(
                e,
                404,
                &format!("NOT_FOUND - no exchange '{}' in vhost '/'", n("nowpe")),
            );

            // queue.delete: configure.
            let ch = channel(&conn).await;
            ch.queue_delete(n("c").as_str().into(), QueueDeleteOptions::default())
                .await
                .unwrap();
            let e = ch
                .queue_delete(n("r").as_str().into(), QueueDeleteOptions::default())
                .await;
            assert_lapin_error(e, 403, &u.refused("queue", &n("r")));

            // Dead-lettering is not checked: the user may not write to the
            // queue's dead-letter exchange, its rejects still get there.
            g.queue_bind(
                n("dlq").as_str().into(),
                n("dlx").as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                none.clone(),
            )
            .await
            .unwrap();
            g.queue_declare(
                n("rd").as_str().into(),
                QueueDeclareOptions::default(),
                arg("x-dead-letter-exchange", &n("dlx")),
            )
            .await
            .unwrap();
            publish(&g, "", &n("rd"), BasicProperties::default())
                .await
                .unwrap();
            let ch = channel(&conn).await;
            let got = ch
                .basic_get(n("rd").as_str().into(), BasicGetOptions::default())
                .await
                .unwrap()
                .expect("a message");
            got.delivery
                .reject(BasicRejectOptions { requeue: false })
                .await
                .unwrap();
            wait_ready(&admin, &n("dlq"), 1).await;

            for q in ["r", "w", "x", "cr", "dlq", "rd", "crq"] {
                let _ = g
                    .queue_delete(n(q).as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            for x in ["r", "w", "c", "dlx", "cr"] {
                let _ = g
                    .exchange_delete(n(x).as_str().into(), ExchangeDeleteOptions::default())
                    .await;
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_permissions_check_routing_keys() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let u = TestUser::new(&b, Some([".*", ".*", ".*"]));
            broker_ctl_ok(
                &b,
                &["set_topic_permissions", "-p", "/", &u.name, "amq.topic", "^{username}\\.", "^{vhost}\\."],
            );
            let user_key = format!("{}.x", u.name);
            let conn = u.connect().await;
            let ch = channel(&conn).await;
            publish(&ch, "amq.topic", &user_key, BasicProperties::default()).await.unwrap();
            // Not a topic exchange: topic permissions do not apply.
            publish(&ch, "amq.direct", "other.x", BasicProperties::default()).await.unwrap();
            let e = publish(&ch, "amq.topic", "other.x", BasicProperties::default()).await;
            let topic_refused = |key: &str| {
                format!(
                    "ACCESS_REFUSED - access to topic '{key}' in exchange 'amq.topic' in vhost '/' refused for user '{}'",
                    u.name
                )
            };
            assert_lapin_error(e, 403, &topic_refused("other.x"));
            // Bindings: read, with `{vhost}` expanded.
            let ch = channel(&conn).await;
            let q = unique_name("zu-topic");
            let excl = QueueDeclareOptions { exclusive: true, ..Default::default() };
            declare(&ch, &q, excl, FieldTable::default()).await.unwrap();
            let none = FieldTable::default();
            qbind(&ch, &q, "amq.topic", "/.a").await
                .unwrap();
            qunbind(&ch, &q, "amq.topic", "/.a").await
                .unwrap();
            let e = qbind(&ch, &q, "amq.topic", &user_key).await;
            assert_lapin_error(e, 403, &topic_refused(&user_key));
            let ch = channel(&conn).await;
            let x = unique_name("zu-topic-x");
            exchange(&ch, &x, ExchangeKind::Topic, none.clone()).await.unwrap();
            let e = xbind(&ch, &x, "amq.topic", "k").await;
            assert_lapin_error(e, 403, &topic_refused("k"));
            // Cleared: every key goes.
            broker_ctl_ok(&b, &["clear_topic_permissions", "-p", "/", &u.name, "amq.topic"]);
            let ch = channel(&conn).await;
            publish(&ch, "amq.topic", "other.x", BasicProperties::default()).await.unwrap();
            ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
                .await
                .unwrap();
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_id_must_be_the_connections_user() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let u = TestUser::new(&b, Some([".*", ".*", ".*"]));
            let conn = u.connect().await;
            let ch = channel(&conn).await;
            let own = BasicProperties::default().with_user_id(u.name.as_str().into());
            publish(&ch, "amq.direct", "k", own).await.unwrap();
            let other = BasicProperties::default().with_user_id("bob".into());
            let e = publish(&ch, "amq.direct", "k", other.clone()).await;
            assert_lapin_error(
                e,
                406,
                &format!(
                    "PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was '{}'",
                    u.name
                ),
            );
            // RabbitMQ's `impersonator` tag allows any user_id, from the
            // next login on (a connection keeps the tags it logged in with).
            broker_ctl_ok(&b, &["set_user_tags", &u.name, "impersonator"]);
            let ch = channel(&conn).await;
            let e = publish(&ch, "amq.direct", "k", other.clone()).await;
            assert_lapin_code(e, 406);
            let conn = u.connect().await;
            let ch = channel(&conn).await;
            publish(&ch, "amq.direct", "k", other).await.unwrap();
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_changes_apply_to_open_channels() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let u = TestUser::new(&b, Some([".*", ".*", ".*"]));
            let conn = u.connect().await;
            let ch = channel(&conn).await;
            // The channel's cached decision...
            publish(&ch, "amq.fanout", "k", BasicProperties::default())
                .await
                .unwrap();
            broker_ctl_ok(
                &b,
                &[
                    "set_permissions",
                    "-p",
                    "/",
                    &u.name,
                    ".*",
                    "^amq\\.direct$",
                    ".*",
                ],
            );
            // ...is dropped when the permissions change.
            let e = publish(&ch, "amq.fanout", "k", BasicProperties::default()).await;
            assert_lapin_error(e, 403, &u.refused("exchange", "amq.fanout"));
            let ch = channel(&conn).await;
            publish(&ch, "amq.direct", "k", BasicProperties::default())
                .await
                .unwrap();
            broker_ctl_ok(&b, &["clear_permissions", "-p", "/", &u.name]);
            let e = publish(&ch, "amq.direct", "k", BasicProperties::default()).await;
            assert_lapin_error(e, 403, &u.refused("exchange", "amq.direct"));
            // Without permissions on the vhost, connection.open is refused.
            let Err(e) = amqprs_connect_as(&b, &u.name, &u.pass).await else {
                panic!("connection.open without permissions on the vhost succeeded");
            };
            let text = e.to_string();
            assert!(
                text.contains("530")
                    && text.contains(&format!(
                        "NOT_ALLOWED - access to vhost '/' refused for user '{}'",
                        u.name
                    )),
                "{text}"
            );
        })
        .await;
    }
}

/// connection.open on `vhost` as `u` over a raw socket: the server's answer.
fn raw_open_as(b: &Broker, u: &TestUser, vhost: &str) -> common::raw::RawMethod {
    let mut c = common::raw::RawConn::connect(&b.addr());
    c.open_vhost(&u.name, &u.pass, vhost)
}

#[track_caller]
fn assert_refused_530(m: &common::raw::RawMethod, vhost: &str, user: &str) {
    assert_eq!((m.class, m.method), (10, 50), "connection.close: {m:?}");
    let text = format!("NOT_ALLOWED - access to vhost '{vhost}' refused for user '{user}'");
    assert_eq!(m.close_reason(), (530, text));
}

/// Permissions are per vhost: a user with permissions on `v1` only opens
/// `v1` and is refused `/` with 530; the 403 and 406 texts name `v1`;
/// `set_permissions` on a missing vhost is refused as rabbitmqctl does; a
/// deleted vhost takes its permissions with it (added again, the user is
/// refused there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_are_per_vhost() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let v1 = unique_name("zv-perm");
            broker_ctl_ok(&b, &["add_vhost", &v1]);
            let u = TestUser::new(&b, None);
            broker_ctl_ok(&b, &["set_permissions", "-p", &v1, &u.name, "^ok", ".*", ".*"]);
            let m = raw_open_as(&b, &u, &v1);
            assert_eq!((m.class, m.method), (10, 41), "open-ok on {v1}: {m:?}");
            assert_refused_530(&raw_open_as(&b, &u, "/"), "/", &u.name);

            let uri = format!("amqp://{}:{}@{}:{}/{v1}", u.name, u.pass, b.host(), b.port());
            let props = lapin::ConnectionProperties::default();
            let conn = within_secs(20, lapin::Connection::connect(&uri, props))
                .await
                .unwrap_or_else(|e| panic!("connect to {v1}: {e}"));
            let ch = channel(&conn).await;
            let q = declare(&ch, "ok-q", QueueDeclareOptions::default(), FieldTable::default());
            q.await.expect("declare ok-q in v1");
            let refused = format!(
                "ACCESS_REFUSED - access to queue 'no-q' in vhost '{v1}' refused for user '{}'",
                u.name
            );
            let r = declare(&ch, "no-q", QueueDeclareOptions::default(), FieldTable::default());
            assert_lapin_error(r.await, 403, &refused);
            let ch = channel(&conn).await;
            let r = declare(&ch, "ok-bad", Default::default(), arg("x-message-ttl", "abc"));
            let invalid = format!(
                "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'ok-bad' in vhost '{v1}': \"expected integer, got longstr\""
            );
            assert_lapin_error(r.await, 406, &invalid);
            let (a, c) = (channel(&conn).await, channel(&conn).await);
            let exclusive = BasicConsumeOptions {
                exclusive: true,
                ..Default::default()
            };
            let none = FieldTable::default();
            // Kept: lapin cancels a consumer it drops.
            let _held = a
                .basic_consume("ok-q".into(), "a".into(), exclusive, none.clone())
                .await
                .expect("exclusive consumer");
            let r = c
                .basic_consume("ok-q".into(), "c".into(), Default::default(), none)
                .await;
            let in_use = format!("ACCESS_REFUSED - queue 'ok-q' in vhost '{v1}' in exclusive use");
            assert_lapin_error(r, 403, &in_use);
            let _ = conn.close(200, "".into()).await;

            let missing = unique_name("zv-missing");
            let words = ["set_permissions", "-p", &missing, &u.name, ".*", ".*", ".*"];
            let (ok, text) = broker_ctl(&b, &words);
            assert!(!ok, "set_permissions on a missing vhost: {text}");
            let gone = format!("Virtual host {missing} does not exist");
            assert!(text.contains(&gone), "{text}");

            let listed = broker_ctl_ok(&b, &["list_user_permissions", &u.name]);
            assert!(listed.contains(&format!("{v1}\t^ok\t.*\t.*")), "{listed}");
            broker_ctl_ok(&b, &["delete_vhost", &v1]);
            let listed = broker_ctl_ok(&b, &["list_user_permissions", &u.name]);
            assert!(!listed.contains(&v1), "{listed}");
            broker_ctl_ok(&b, &["add_vhost", &v1]);
            assert_refused_530(&raw_open_as(&b, &u, &v1), &v1, &u.name);
            broker_ctl_ok(&b, &["delete_vhost", &v1]);
        })
        .await;
    }
}
