//! Policies (`warren ctl set_policy` / `clear_policy` / `list_policies`,
//! rabbitmqctl's verbs): a `message-ttl` policy expires the messages of
//! matching queues declared before and after it, a `max-length` policy
//! trims, the lower of policy and argument wins for TTL and max-length,
//! the argument wins for the dead-letter exchange, `clear_policy` stops
//! it, the higher priority wins, invalid definitions are refused with
//! RabbitMQ's texts (and keys Warren does not apply with its own), and
//! policies survive a SIGKILL restart. An `expires` policy deletes unused
//! queues (a durable one also after a restart, for good); on quorum queues
//! `delivery-limit` applies (the lower of policy and argument) and a policy
//! with a classic-only key (`queue-mode`) does not apply at all, nor one
//! with a quorum-only key to classic queues; exchange policies set the
//! `alternate-exchange` (the argument wins), are listed by
//! `list_exchanges` and survive a restart. With 1 and 2
//! shards and the queue on each shard; against RabbitMQ the policies are
//! set with `rabbitmqctl` (node `ref@localhost`).

mod common;

use common::*;
use lapin::types::{AMQPValue, FieldTable};

/// Runs a policy command (`set_policy …`, `clear_policy …`,
/// `list_policies`) with `warren ctl`, or with rabbitmqctl against
/// RabbitMQ; returns (success, stdout and stderr).
fn policy_cmd(b: &Broker, words: &[&str]) -> (bool, String) {
    broker_ctl(b, words)
}

fn set_policy(b: &Broker, words: &[&str]) {
    let mut all = vec!["set_policy"];
    all.extend_from_slice(words);
    let (ok, text) = policy_cmd(b, &all);
    assert!(ok, "set_policy {words:?}: {text}");
}

fn clear_policy(b: &Broker, name: &str) {
    let (ok, text) = policy_cmd(b, &["clear_policy", name]);
    assert!(ok, "clear_policy {name}: {text}");
}

fn args(placement: Option<usize>, extra: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = lapin_placement_args(placement);
    for (k, v) in extra {
        t.insert((*k).into(), v.clone());
    }
    t
}

async fn declare(ch: &lapin::Channel, name: &str, durable: bool, a: FieldTable) {
    ch.queue_declare(
        name.into(),
        lapin::options::QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        a,
    )
    .await
    .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

async fn delete(ch: &lapin::Channel, name: &str) {
    let _ = ch
        .queue_delete(name.into(), lapin::options::QueueDeleteOptions::default())
        .await;
}

/// Unique names whose prefix a policy pattern can match.
fn names(prefix: &str) -> (String, String) {
    let p = unique_name(prefix).replace('-', "_");
    (format!("^{p}\\."), format!("{p}."))
}

#[tokio::test(flavor = "multi_thread")]
async fn message_ttl_policy_applies_to_queues_declared_before_and_after() {
    for shards in [1, 2] {
        let b = Broker::start(shards);
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        for placement in placements(&b) {
            let (pattern, prefix) = names("pttl");
            let before = format!("{prefix}before");
            let after = format!("{prefix}after");
            let policy = unique_name("ttl");
            declare(&ch, &before, false, args(placement, &[])).await;
            set_policy(
                &b,
                &[
                    &policy,
                    &pattern,
                    r#"{"message-ttl":200}"#,
                    "--apply-to",
                    "queues",
                ],
            );
            declare(&ch, &after, false, args(placement, &[])).await;
            for q in [&before, &after] {
                publish_confirmed(&ch, q, &strings(&["a", "b"]), Default::default()).await;
                assert_eq!(ready_count(&conn, q).await, 2);
            }
            tokio::time::sleep(std::time::Duration::from_millis(600)).await;
            for q in [&before, &after] {
                wait_ready(&conn, q, 0).await;
            }
            if !b.is_external() {
                let listing = ctl(&b, "list_queues");
                assert_eq!(cell(&listing, &before, "policy"), policy);
                assert_eq!(cell(&listing, &after, "policy"), policy);
            }
            // Cleared: messages stay again.
            clear_policy(&b, &policy);
            publish_confirmed(&ch, &before, &strings(&["c"]), Default::default()).await;
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            assert_eq!(ready_count(&conn, &before).await, 1);
            if !b.is_external() {
                assert_eq!(ctl_cell(&b, "list_queues", &before, "policy"), "");
            }
            delete(&ch, &before).await;
            delete(&ch, &after).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn max_length_policy_trims_and_the_lower_of_policy_and_argument_wins() {
    for shards in [1, 2] {
        let b = Broker::start(shards);
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        for placement in placements(&b) {
            let (pattern, prefix) = names("plen");
            let plain = format!("{prefix}plain");
            let lower_arg = format!("{prefix}lowarg");
            let higher_arg = format!("{prefix}higharg");
            let policy = unique_name("len");
            set_policy(&b, &[&policy, &pattern, r#"{"max-length":3}"#]);
            declare(&ch, &plain, false, args(placement, &[])).await;
            declare(
                &ch,
                &lower_arg,
                false,
                args(placement, &[("x-max-length", AMQPValue::LongLongInt(2))]),
            )
            .await;
            declare(
                &ch,
                &higher_arg,
                false,
                args(placement, &[("x-max-length", AMQPValue::LongLongInt(10))]),
            )
            .await;
            let bodies = padded_bodies("m", 6);
            for q in [&plain, &lower_arg, &higher_arg] {
                publish_confirmed(&ch, q, &bodies, Default::default()).await;
            }
            // drop-head keeps the newest.
            assert_eq!(
                bodies_only(drain(&conn, &plain).await),
                bodies[3..].to_vec()
            );
            assert_eq!(
                bodies_only(drain(&conn, &lower_arg).await),
                bodies[4..].to_vec()
            );
            assert_eq!(
                bodies_only(drain(&conn, &higher_arg).await),
                bodies[3..].to_vec()
            );
            clear_policy(&b, &policy);
            publish_confirmed(&ch, &plain, &bodies, Default::default()).await;
            assert_eq!(ready_count(&conn, &plain).await, 6);
            for q in [&plain, &lower_arg, &higher_arg] {
                delete(&ch, q).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lower_ttl_wins_and_the_argument_wins_for_the_dead_letter_exchange() {
    for shards in [1, 2] {
        let b = Broker::start(shards);
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        for placement in placements(&b) {
            let (pattern, prefix) = names("pdlx");
            let src = format!("{prefix}src");
            let by_arg = format!("{prefix}byarg");
            let by_policy = format!("{prefix}bypolicy");
            let other = last_shard(shards).map(|s| (s + 1) % shards);
            // The dead-letter targets do not match the policy's pattern.
            let arg_target = unique_name("arg-target");
            let policy_target = unique_name("policy-target");
            declare(&ch, &arg_target, false, args(other, &[])).await;
            declare(&ch, &policy_target, false, args(other, &[])).await;
            let policy = unique_name("dlx");
            let definition = format!(
                r#"{{"message-ttl":100,"dead-letter-exchange":"","dead-letter-routing-key":"{policy_target}"}}"#
            );
            set_policy(&b, &[&policy, &pattern, &definition]);
            // A 60 s argument TTL: the policy's 100 ms is lower and wins;
            // the argument's routing key wins over the policy's.
            declare(
                &ch,
                &src,
                false,
                args(
                    placement,
                    &[
                        ("x-message-ttl", AMQPValue::LongLongInt(60_000)),
                        ("x-dead-letter-exchange", AMQPValue::LongString("".into())),
                        (
                            "x-dead-letter-routing-key",
                            AMQPValue::LongString(arg_target.as_str().into()),
                        ),
                    ],
                ),
            )
            .await;
            declare(&ch, &by_policy, false, args(placement, &[])).await;
            publish_confirmed(&ch, &src, &strings(&["x"]), Default::default()).await;
            publish_confirmed(&ch, &by_policy, &strings(&["y"]), Default::default()).await;
            wait_ready(&conn, &arg_target, 1).await;
            wait_ready(&conn, &policy_target, 1).await;
            assert_eq!(
                bodies_only(drain(&conn, &arg_target).await),
                strings(&["x"])
            );
            assert_eq!(
                bodies_only(drain(&conn, &policy_target).await),
                strings(&["y"])
            );
            clear_policy(&b, &policy);
            for q in [&src, &by_arg, &by_policy, &arg_target, &policy_target] {
                delete(&ch, q).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_higher_priority_policy_applies_and_is_listed() {
    for shards in [1, 2] {
        let b = Broker::start(shards);
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        for placement in placements(&b) {
            let (pattern, prefix) = names("pprio");
            let q = format!("{prefix}q");
            let low = unique_name("low");
            let high = unique_name("high");
            set_policy(
                &b,
                &[&high, &pattern, r#"{"max-length":1}"#, "--priority", "5"],
            );
            set_policy(
                &b,
                &[&low, &pattern, r#"{"max-length":4}"#, "--priority", "1"],
            );
            declare(&ch, &q, false, args(placement, &[])).await;
            publish_confirmed(&ch, &q, &padded_bodies("p", 5), Default::default()).await;
            assert_eq!(ready_count(&conn, &q).await, 1);
            let (ok, listing) = policy_cmd(&b, &["list_policies"]);
            assert!(ok, "{listing}");
            assert!(
                listing.contains("vhost\tname\tpattern\tapply-to\tdefinition\tpriority"),
                "{listing}"
            );
            assert!(
                listing.contains(&format!(
                    "/\t{high}\t{pattern}\tall\t{{\"max-length\":1}}\t5"
                )),
                "{listing}"
            );
            // The high one cleared: the low one applies (to new publishes).
            clear_policy(&b, &high);
            publish_confirmed(&ch, &q, &padded_bodies("p", 5), Default::default()).await;
            assert_eq!(ready_count(&conn, &q).await, 4);
            clear_policy(&b, &low);
            delete(&ch, &q).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_definitions_are_refused_with_rabbitmqs_texts() {
    let b = Broker::start(1);
    let name = unique_name("bad");
    for (definition, text) in [
        (r#"{"message-ttl":-1}"#, "-1 is not a valid message TTL"),
        (
            r#"{"foo":1}"#,
            "[{<<\"foo\">>,1}] are not recognised policy settings",
        ),
    ] {
        let (ok, out) = policy_cmd(&b, &["set_policy", &name, "^nothing$", definition]);
        assert!(!ok, "{out}");
        assert!(out.contains("Validation failed"), "{out}");
        assert!(out.contains(text), "{out}");
    }
    let (ok, out) = policy_cmd(&b, &["clear_policy", &name]);
    assert!(!ok, "{out}");
    assert!(out.contains("Parameter does not exist"), "{out}");
    if skip_if_external("RabbitMQ accepts keys Warren refuses (it does not apply them)") {
        return;
    }
    for definition in [
        r#"{"ha-mode":"all"}"#,
        r#"{"max-in-memory-length":1}"#,
        r#"{"queue-version":2}"#,
        r#"{"dead-letter-strategy":"at-least-once"}"#,
    ] {
        let (ok, out) = policy_cmd(&b, &["set_policy", &name, "^nothing$", definition]);
        assert!(!ok, "{out}");
        assert!(out.contains("is not supported by Warren"), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_survive_a_sigkill_restart() {
    if skip_if_external("it restarts the broker") {
        return;
    }
    for shards in [1, 2] {
        let dir = temp_dir("warren-policies-");
        let mut b = Broker::start_in(shards, dir.path());
        let placement = last_shard(shards);
        let (pattern, prefix) = names("pdur");
        let q = format!("{prefix}q");
        {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            declare(&ch, &q, true, args(placement, &[])).await;
            set_policy(
                &b,
                &["keep", &pattern, r#"{"max-length":2}"#, "--priority", "7"],
            );
            set_policy(&b, &["gone", &pattern, r#"{"max-length":1}"#]);
            clear_policy(&b, "gone");
        }
        b.kill();
        let b = Broker::start_in(shards, dir.path());
        let (ok, listing) = policy_cmd(&b, &["list_policies"]);
        assert!(ok);
        assert!(
            listing.contains(&format!("/\tkeep\t{pattern}\tall\t{{\"max-length\":2}}\t7")),
            "{listing}"
        );
        assert!(!listing.contains("\tgone\t"), "{listing}");
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        publish_confirmed(&ch, &q, &padded_bodies("d", 5), persistent()).await;
        assert_eq!(ready_count(&conn, &q).await, 2);
        assert_eq!(ctl_cell(&b, "list_queues", &q, "policy"), "keep");
    }
}

/// Waits (20 s at most) until queue `q` no longer exists, looking every
/// `every_ms` (longer than its expiry: a passive declare is a use).
async fn wait_gone(conn: &lapin::Connection, q: &str, every_ms: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let ch = conn.create_channel().await.expect("channel.open");
        match ch
            .queue_declare(q.into(), passive(), FieldTable::default())
            .await
        {
            Err(e) => {
                assert_eq!(lapin_amqp_error(&e).map(|(c, _)| c), Some(404), "{e}");
                return;
            }
            Ok(_) => {
                let _ = ch.close(200, "".into()).await;
            }
        }
        assert!(std::time::Instant::now() < deadline, "{q} still exists");
        tokio::time::sleep(std::time::Duration::from_millis(every_ms)).await;
    }
}

async fn exists(conn: &lapin::Connection, q: &str) -> bool {
    let ch = conn.create_channel().await.expect("channel.open");
    let r = ch
        .queue_declare(q.into(), passive(), FieldTable::default())
        .await;
    if r.is_ok() {
        let _ = ch.close(200, "".into()).await;
    }
    r.is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expires_policy_deletes_unused_queues() {
    for shards in [1, 2] {
        let b = Broker::start(shards);
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        for placement in placements(&b) {
            let (pattern, prefix) = names("pexp");
            let (transient, durable_q, longer) = (
                format!("{prefix}transient"),
                format!("{prefix}durable"),
                format!("{prefix}longer"),
            );
            let policy = unique_name("expires");
            set_policy(&b, &[&policy, &pattern, r#"{"expires":300}"#]);
            declare(&ch, &transient, false, args(placement, &[])).await;
            declare(&ch, &durable_q, true, args(placement, &[])).await;
            // The lower of argument (60 s) and policy wins.
            declare(
                &ch,
                &longer,
                false,
                args(placement, &[("x-expires", AMQPValue::LongLongInt(60_000))]),
            )
            .await;
            // A control queue the pattern does not match stays.
            let control = unique_name("pexp-control");
            declare(&ch, &control, false, args(placement, &[])).await;
            for q in [&transient, &durable_q, &longer] {
                wait_gone(&conn, q, 700).await;
            }
            assert!(exists(&conn, &control).await);
            clear_policy(&b, &policy);
            delete(&ch, &control).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expires_policy_deletes_a_durable_queue_after_a_restart_for_good() {
    if skip_if_external("it restarts the broker") {
        return;
    }
    for shards in [1, 2] {
        let dir = temp_dir("warren-policy-expires-");
        let mut b = Broker::start_in(shards, dir.path());
        let (pattern, prefix) = names("pexpr");
        let q = format!("{prefix}q");
        let control = unique_name("pexpr-control");
        {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            declare(&ch, &q, true, args(last_shard(shards), &[])).await;
            declare(&ch, &control, true, args(last_shard(shards), &[])).await;
            // A consumer keeps it from expiring until the broker dies.
            ch.basic_consume(
                q.as_str().into(),
                "keep".into(),
                Default::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
            set_policy(&b, &["exp", &pattern, r#"{"expires":1500}"#]);
            assert!(exists(&conn, &q).await);
        }
        b.kill();
        let mut b = Broker::start_in(shards, dir.path());
        {
            let conn = lapin_connect(&b).await;
            wait_gone(&conn, &q, 2500).await;
            assert!(exists(&conn, &control).await);
        }
        b.kill();
        let b = Broker::start_in(shards, dir.path());
        let conn = lapin_connect(&b).await;
        assert!(!exists(&conn, &q).await, "the deletion was not journaled");
        assert!(exists(&conn, &control).await);
    }
}

async fn declare_quorum(ch: &lapin::Channel, name: &str, a: FieldTable) {
    let mut a = a;
    a.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    declare(ch, name, true, a).await;
}

/// Gets the next message of `q` and nacks it back to the queue.
async fn get_and_requeue(ch: &lapin::Channel, q: &str) -> bool {
    let Some(m) = ch
        .basic_get(q.into(), lapin::options::BasicGetOptions { no_ack: false })
        .await
        .expect("basic.get")
    else {
        return false;
    };
    ch.basic_nack(
        m.delivery.delivery_tag,
        lapin::options::BasicNackOptions {
            requeue: true,
            multiple: false,
        },
    )
    .await
    .expect("nack");
    true
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_apply_to_quorum_queues_with_their_keys_and_precedence() {
    for shards in [1, 2] {
        let b = Broker::start(shards);
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        for placement in placements(&b) {
            let (pattern, prefix) = names("pqq");
            let (quorum, classic) = (format!("{prefix}quorum"), format!("{prefix}classic"));
            let policy = unique_name("quorum");
            // delivery-limit is a quorum key: the policy does not apply to
            // classic queues at all.
            set_policy(
                &b,
                &[
                    &policy,
                    &pattern,
                    r#"{"max-length":1,"delivery-limit":1}"#,
                    "--apply-to",
                    "queues",
                ],
            );
            // The lower of argument (5) and policy (1) is the limit.
            declare_quorum(
                &ch,
                &quorum,
                args(placement, &[("x-delivery-limit", AMQPValue::LongInt(5))]),
            )
            .await;
            declare(&ch, &classic, true, args(placement, &[])).await;
            let bodies = padded_bodies("q", 3);
            for q in [&quorum, &classic] {
                publish_confirmed(&ch, q, &bodies, Default::default()).await;
            }
            wait_ready(&conn, &quorum, 1).await;
            assert_eq!(ready_count(&conn, &classic).await, 3);
            if !b.is_external() {
                let listing = ctl(&b, "list_queues");
                assert_eq!(cell(&listing, &quorum, "policy"), policy);
                assert_eq!(cell(&listing, &classic, "policy"), "");
            }
            // Returned twice: over the limit of 1, dropped.
            let getter = conn.create_channel().await.expect("channel.open");
            assert!(get_and_requeue(&getter, &quorum).await);
            wait_ready(&conn, &quorum, 1).await;
            assert!(get_and_requeue(&getter, &quorum).await);
            wait_ready(&conn, &quorum, 0).await;
            clear_policy(&b, &policy);
            for q in [&quorum, &classic] {
                delete(&ch, q).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_mode_policy_is_accepted_for_classic_queues_only() {
    for shards in [1, 2] {
        let b = Broker::start(shards);
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        for placement in placements(&b) {
            let (pattern, prefix) = names("pmode");
            let (classic, quorum) = (format!("{prefix}classic"), format!("{prefix}quorum"));
            let policy = unique_name("lazy");
            set_policy(
                &b,
                &[&policy, &pattern, r#"{"queue-mode":"lazy","max-length":2}"#],
            );
            declare(&ch, &classic, false, args(placement, &[])).await;
            declare_quorum(&ch, &quorum, args(placement, &[])).await;
            let bodies = padded_bodies("l", 5);
            for q in [&classic, &quorum] {
                publish_confirmed(&ch, q, &bodies, Default::default()).await;
            }
            // Lazy changes nothing visible; max-length trims the classic
            // queue. queue-mode is no quorum key: nothing applies there.
            assert_eq!(
                bodies_only(drain(&conn, &classic).await),
                bodies[3..].to_vec()
            );
            assert_eq!(ready_count(&conn, &quorum).await, 5);
            if !b.is_external() {
                let listing = ctl(&b, "list_queues");
                assert_eq!(cell(&listing, &classic, "policy"), policy);
                assert_eq!(cell(&listing, &quorum, "policy"), "");
            }
            clear_policy(&b, &policy);
            for q in [&classic, &quorum] {
                delete(&ch, q).await;
            }
        }
    }
}

async fn exchange(ch: &lapin::Channel, name: &str, kind: lapin::ExchangeKind, a: FieldTable) {
    ch.exchange_declare(
        name.into(),
        kind,
        lapin::options::ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        a,
    )
    .await
    .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

/// Publishes an unroutable message to `x` (confirmed).
async fn publish_unroutable(ch: &lapin::Channel, x: &str, body: &str) {
    let c = publish_to(ch, x, "no-binding-has-this-key", body, persistent(), false).await;
    assert!(matches!(c, lapin::Confirmation::Ack(None)), "{c:?}");
}

/// The `policy` column of exchange `x`, with `warren ctl` or rabbitmqctl
/// (the same command and output).
fn exchange_policy(b: &Broker, x: &str) -> String {
    let (ok, listing) = policy_cmd(b, &["list_exchanges", "name", "policy"]);
    assert!(ok, "{listing}");
    cell(&listing, x, "policy")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exchange_policy_sets_the_alternate_exchange_and_the_argument_wins() {
    for shards in [1, 2] {
        let b = Broker::start(shards);
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        let (pattern, prefix) = names("pae");
        let (ae_pol, ae_arg) = (unique_name("pae-pol"), unique_name("pae-arg"));
        let (by_pol, by_arg) = (unique_name("pae-bypol"), unique_name("pae-byarg"));
        for (x, q) in [(&ae_pol, &by_pol), (&ae_arg, &by_arg)] {
            exchange(&ch, x, lapin::ExchangeKind::Fanout, FieldTable::default()).await;
            declare(&ch, q, true, args(last_shard(shards), &[])).await;
            bind_queue(&ch, q, x, "").await;
        }
        let before = format!("{prefix}before");
        let after = format!("{prefix}after");
        let with_arg = format!("{prefix}witharg");
        exchange(
            &ch,
            &before,
            lapin::ExchangeKind::Direct,
            FieldTable::default(),
        )
        .await;
        let policy = unique_name("ae");
        let definition = format!(r#"{{"alternate-exchange":"{ae_pol}"}}"#);
        set_policy(
            &b,
            &[&policy, &pattern, &definition, "--apply-to", "exchanges"],
        );
        exchange(
            &ch,
            &after,
            lapin::ExchangeKind::Direct,
            FieldTable::default(),
        )
        .await;
        let mut arg = FieldTable::default();
        arg.insert(
            "alternate-exchange".into(),
            AMQPValue::LongString(ae_arg.as_str().into()),
        );
        exchange(&ch, &with_arg, lapin::ExchangeKind::Topic, arg).await;
        for x in [&before, &after, &with_arg] {
            publish_unroutable(&ch, x, x).await;
        }
        assert_eq!(
            bodies_only(drain(&conn, &by_pol).await),
            vec![before.clone(), after.clone()]
        );
        assert_eq!(
            bodies_only(drain(&conn, &by_arg).await),
            vec![with_arg.clone()]
        );
        for x in [&before, &after, &with_arg] {
            assert_eq!(exchange_policy(&b, x), policy, "{x}");
        }
        // A queues-only policy does not apply to exchanges.
        let queues_only = unique_name("ae-queues");
        set_policy(
            &b,
            &[
                &queues_only,
                &pattern,
                &definition,
                "--priority",
                "9",
                "--apply-to",
                "queues",
            ],
        );
        assert_eq!(exchange_policy(&b, &before), policy);
        clear_policy(&b, &queues_only);
        // Cleared: unroutable again.
        clear_policy(&b, &policy);
        publish_unroutable(&ch, &before, "dropped").await;
        assert_eq!(ready_count(&conn, &by_pol).await, 0);
        assert_eq!(exchange_policy(&b, &before), "");
        for q in [&by_pol, &by_arg] {
            delete(&ch, q).await;
        }
        for x in [&before, &after, &with_arg, &ae_pol, &ae_arg] {
            let _ = ch
                .exchange_delete(x.as_str().into(), Default::default())
                .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exchange_policy_survives_a_restart() {
    if skip_if_external("it restarts the broker") {
        return;
    }
    for shards in [1, 2] {
        let dir = temp_dir("warren-policy-ae-");
        let mut b = Broker::start_in(shards, dir.path());
        let (pattern, prefix) = names("paer");
        let x = format!("{prefix}x");
        let (ae, q) = (unique_name("paer-ae"), unique_name("paer-q"));
        {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            exchange(&ch, &ae, lapin::ExchangeKind::Fanout, FieldTable::default()).await;
            declare(&ch, &q, true, args(last_shard(shards), &[])).await;
            bind_queue(&ch, &q, &ae, "").await;
            exchange(&ch, &x, lapin::ExchangeKind::Direct, FieldTable::default()).await;
            let definition = format!(r#"{{"alternate-exchange":"{ae}"}}"#);
            set_policy(&b, &["ae", &pattern, &definition, "--apply-to", "all"]);
        }
        b.kill();
        let b = Broker::start_in(shards, dir.path());
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        publish_unroutable(&ch, &x, "after-restart").await;
        assert_eq!(
            bodies_only(drain(&conn, &q).await),
            strings(&["after-restart"])
        );
        assert_eq!(exchange_policy(&b, &x), "ae");
    }
}
