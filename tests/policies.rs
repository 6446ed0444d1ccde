//! Policies (`warren ctl set_policy` / `clear_policy` / `list_policies`,
//! rabbitmqctl's verbs): a `message-ttl` policy expires the messages of
//! matching queues declared before and after it, a `max-length` policy
//! trims, the lower of policy and argument wins for TTL and max-length,
//! the argument wins for the dead-letter exchange, `clear_policy` stops
//! it, the higher priority wins, invalid definitions are refused with
//! RabbitMQ's texts, and policies survive a SIGKILL restart. With 1 and 2
//! shards and the queue on each shard; against RabbitMQ the policies are
//! set with `rabbitmqctl` (node `ref@localhost`).

mod common;

use common::*;
use lapin::types::{AMQPValue, FieldTable};

/// Runs a policy command (`set_policy …`, `clear_policy …`,
/// `list_policies`) with `warren ctl`, or with rabbitmqctl against
/// RabbitMQ; returns (success, stdout and stderr).
fn policy_cmd(b: &Broker, words: &[&str]) -> (bool, String) {
    ctl_or_rabbitmqctl(b, words)
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
    for definition in [r#"{"ha-mode":"all"}"#, r#"{"max-in-memory-length":1}"#] {
        let (ok, out) = policy_cmd(&b, &["set_policy", &name, "^nothing$", definition]);
        assert!(!ok, "{out}");
        assert!(out.contains("is not supported by Warren"), "{out}");
    }
    let (ok, out) = policy_cmd(
        &b,
        &[
            "set_policy",
            &name,
            "^x$",
            r#"{"alternate-exchange":"ae"}"#,
            "--apply-to",
            "exchanges",
        ],
    );
    assert!(!ok, "{out}");
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
