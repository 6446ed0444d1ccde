//! Tests of the queue and consumer arguments: every row RabbitMQ 3.10.8
//! answered (`probed.rs`) replayed through Warren, the typed values of
//! accepted arguments, redeclare equivalence, policy choice and precedence,
//! and property tests that no field table makes parsing panic.

mod probed;

use super::*;
use crate::protocol::types::{Decimal, FieldValue, ShortStr};
use bytes::Bytes;
use proptest::prelude::*;

pub(super) fn s(v: &str) -> FieldValue {
    FieldValue::LongStr(Bytes::copy_from_slice(v.as_bytes()))
}

pub(super) fn table(pairs: &[(&str, FieldValue)]) -> FieldTable {
    FieldTable(
        pairs
            .iter()
            .map(|(k, v)| (ShortStr::from(*k), v.clone()))
            .collect(),
    )
}

pub(super) struct Declare {
    pub queue: &'static str,
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub args: FieldTable,
    pub rabbitmq: Option<&'static str>,
}

pub(super) struct Consume {
    pub queue_type: QueueType,
    pub args: FieldTable,
    pub rabbitmq: Option<&'static str>,
}

pub(super) struct Redeclare {
    pub first: FieldTable,
    pub second: FieldTable,
    pub rabbitmq: Option<&'static str>,
}

fn quorum() -> FieldTable {
    table(&[("x-queue-type", s("quorum"))])
}

fn verdict<T>(r: AmqpResult<T>) -> Option<String> {
    r.err().map(|e| {
        assert_eq!(e.code, 406, "{}", e.text);
        e.text
    })
}

#[test]
fn every_probed_declare_gets_rabbitmqs_answer() {
    let rows = probed::declares();
    assert!(rows.len() > 200);
    for row in rows {
        let got = verdict(QueueArguments::validate_new_queue(
            row.queue,
            row.durable,
            row.exclusive,
            row.auto_delete,
            &row.args,
        ));
        assert_eq!(got.as_deref(), row.rabbitmq, "declare {:?}", row.args);
    }
}

#[test]
fn every_probed_consume_gets_rabbitmqs_answer() {
    for row in probed::consumes() {
        let got = verdict(ConsumerArguments::parse(
            "probe-consume-q",
            row.queue_type,
            &row.args,
        ));
        assert_eq!(got.as_deref(), row.rabbitmq, "consume {:?}", row.args);
    }
}

#[test]
fn every_probed_redeclare_gets_rabbitmqs_answer() {
    for row in probed::redeclares() {
        let got = verdict(check_equivalent_arguments(
            "probe-eq-q",
            &row.first,
            &row.second,
        ));
        assert_eq!(
            got.as_deref(),
            row.rabbitmq,
            "{:?} then {:?}",
            row.first,
            row.second
        );
    }
}

#[test]
fn accepted_arguments_are_typed() {
    let a = table(&[
        ("x-message-ttl", FieldValue::I32(1000)),
        ("x-expires", FieldValue::I64(60_000)),
        ("x-max-length", FieldValue::U16(10)),
        ("x-max-length-bytes", FieldValue::U32(1000)),
        ("x-overflow", s("reject-publish-dlx")),
        ("x-dead-letter-exchange", s("dlx")),
        ("x-dead-letter-routing-key", s("dead")),
        ("x-max-priority", FieldValue::U8(255)),
        ("x-single-active-consumer", FieldValue::Bool(true)),
        ("x-queue-mode", s("lazy")),
        ("x-queue-version", FieldValue::I8(2)),
        ("x-whatever", s("kept, not read")),
    ]);
    let q = QueueArguments::parse("q", &a).unwrap();
    assert_eq!(
        q,
        QueueArguments {
            queue_type: QueueType::Classic,
            message_ttl: Some(1000),
            expires: Some(60_000),
            max_length: Some(10),
            max_length_bytes: Some(1000),
            overflow: Some(Overflow::RejectPublishDlx),
            dead_letter_exchange: Some(Bytes::from_static(b"dlx")),
            dead_letter_routing_key: Some(Bytes::from_static(b"dead")),
            max_priority: Some(255),
            single_active_consumer: true,
            queue_mode: Some(QueueMode::Lazy),
            queue_version: Some(2),
            ..QueueArguments::default()
        }
    );
    assert_eq!(q.dead_letter_exchange_name(), Some("dlx"));
    assert_eq!(q.dead_letter_routing_key_str(), Some("dead"));

    let none = QueueArguments::parse("q", &FieldTable::new()).unwrap();
    assert_eq!(none, QueueArguments::default());
    assert_eq!(none.overflow_or_default(), Overflow::DropHead);
    assert_eq!(none.dead_letter_exchange_name(), None);

    let edges = table(&[
        ("x-message-ttl", FieldValue::I64(MAX_EXPIRY_MS as i64)),
        ("x-expires", FieldValue::I32(1)),
        ("x-max-length", FieldValue::I64(i64::MAX)),
        ("x-max-priority", FieldValue::I32(0)),
        ("x-dead-letter-exchange", s("")),
    ]);
    let q = QueueArguments::parse("q", &edges).unwrap();
    assert_eq!(q.message_ttl, Some(MAX_EXPIRY_MS));
    assert_eq!(q.expires, Some(1));
    assert_eq!(q.max_length, Some(i64::MAX as u64));
    assert_eq!(q.max_priority, Some(0));
    assert_eq!(
        q.dead_letter_exchange_name(),
        Some(""),
        "the default exchange"
    );
}

#[test]
fn quorum_arguments_are_typed() {
    let a = table(&[
        ("x-queue-type", s("quorum")),
        ("x-delivery-limit", FieldValue::I32(5)),
        ("x-dead-letter-exchange", s("dlx")),
        ("x-dead-letter-strategy", s("at-least-once")),
        ("x-overflow", s("reject-publish")),
        ("x-max-in-memory-length", FieldValue::I32(7)),
        ("x-max-in-memory-bytes", FieldValue::I32(8)),
        ("x-quorum-initial-group-size", FieldValue::I32(3)),
        ("x-queue-leader-locator", s("balanced")),
        ("x-single-active-consumer", FieldValue::Bool(true)),
    ]);
    let q = QueueArguments::validate_new_queue("qq", true, false, false, &a).unwrap();
    assert_eq!(q.queue_type, QueueType::Quorum);
    assert_eq!(q.delivery_limit, Some(5));
    assert_eq!(
        q.dead_letter_strategy,
        Some(DeadLetterStrategy::AtLeastOnce)
    );
    assert_eq!(q.overflow, Some(Overflow::RejectPublish));
    assert_eq!(q.max_in_memory_length, Some(7));
    assert_eq!(q.max_in_memory_bytes, Some(8));
    assert_eq!(q.quorum_initial_group_size, Some(3));
    assert_eq!(q.queue_leader_locator, Some(LeaderLocator::Balanced));
    assert!(q.single_active_consumer);

    // RabbitMQ 3.10.8 does not validate x-delivery-limit: anything goes,
    // only integers are kept.
    for (v, kept) in [
        (FieldValue::I32(-1), Some(-1)),
        (s("x"), None),
        (FieldValue::Bool(true), None),
    ] {
        let a = table(&[("x-queue-type", s("quorum")), ("x-delivery-limit", v)]);
        assert_eq!(
            QueueArguments::parse("qq", &a).unwrap().delivery_limit,
            kept
        );
    }
    assert_eq!(RABBITMQ4_DEFAULT_DELIVERY_LIMIT, 20);
}

#[test]
fn undeliverable_dead_letter_exchange_names_read_as_none() {
    let long = "a".repeat(300);
    let a = table(&[("x-dead-letter-exchange", s(&long))]);
    let q = QueueArguments::parse("q", &a).unwrap();
    assert_eq!(q.dead_letter_exchange.as_deref(), Some(long.as_bytes()));
    assert_eq!(q.dead_letter_exchange_name(), None);
    let a = table(&[(
        "x-dead-letter-exchange",
        FieldValue::LongStr(Bytes::from_static(b"\xff")),
    )]);
    assert_eq!(
        QueueArguments::parse("q", &a)
            .unwrap()
            .dead_letter_exchange_name(),
        None
    );
}

#[test]
fn streams_are_refused_as_an_unknown_type() {
    // Warren's one deviation from the probed table: RabbitMQ 3.10.8 has
    // streams; Warren does not and words the refusal as for an unknown type.
    let a = table(&[("x-queue-type", s("stream"))]);
    let expected = "PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 's' in vhost '/': \
                    \"unsupported queue type 'stream'\"";
    let e = QueueArguments::validate_new_queue("s", true, false, false, &a).unwrap_err();
    assert_eq!(e.text, expected);
    assert_eq!(
        validate_declare("s", true, false, false, &a)
            .unwrap_err()
            .text,
        expected
    );
}

#[test]
fn consumer_arguments_are_typed() {
    let a = table(&[
        ("x-priority", FieldValue::I64(-(1 << 40))),
        ("x-cancel-on-ha-failover", FieldValue::Bool(true)),
    ]);
    assert_eq!(
        ConsumerArguments::parse("q", QueueType::Classic, &a),
        Ok(ConsumerArguments {
            priority: -(1 << 40),
            cancel_on_ha_failover: true,
            timeout: None,
        })
    );
    assert_eq!(
        ConsumerArguments::parse("q", QueueType::Quorum, &FieldTable::new()),
        Ok(ConsumerArguments::default())
    );
}

#[test]
fn consumer_timeout_argument_is_checked_as_rabbitmq_4_checks_it() {
    // Every queue type takes it (a Warren extension on classic queues, as
    // the queue argument), any integer type, 0 included.
    for queue_type in [QueueType::Classic, QueueType::Quorum] {
        for (v, ms) in [
            (FieldValue::I64(60_000), 60_000),
            (FieldValue::I32(0), 0),
            (FieldValue::U8(7), 7),
        ] {
            let a = table(&[("x-consumer-timeout", v)]);
            assert_eq!(
                ConsumerArguments::parse("q", queue_type, &a).map(|c| c.timeout),
                Ok(Some(ms)),
                "{queue_type:?}"
            );
        }
    }
    // `check_non_neg_int_arg`'s reasons, in `consume_args/0`'s order.
    let refused = |v: FieldValue| {
        let a = table(&[("x-consumer-timeout", v)]);
        ConsumerArguments::parse("q", QueueType::Quorum, &a)
            .unwrap_err()
            .text
    };
    assert_eq!(
        refused(FieldValue::I64(-1)),
        "PRECONDITION_FAILED - invalid arg 'x-consumer-timeout' for queue 'q' in vhost '/': \
         {value_negative,-1}"
    );
    assert_eq!(
        refused(FieldValue::LongStr(bytes::Bytes::from_static(b"60000"))),
        "PRECONDITION_FAILED - invalid arg 'x-consumer-timeout' for queue 'q' in vhost '/': \
         \"expected integer, got longstr\""
    );
    let both = table(&[
        ("x-consumer-timeout", FieldValue::I64(-5)),
        ("x-priority", FieldValue::Bool(true)),
    ]);
    assert!(
        ConsumerArguments::parse("q", QueueType::Classic, &both)
            .unwrap_err()
            .text
            .contains("'x-priority'"),
        "x-priority is checked first"
    );
}

// ---- the existing API ------------------------------------------------

#[test]
fn quorum_queues_must_be_durable_and_shared() {
    assert_eq!(
        validate_declare("q", true, false, false, &quorum()),
        Ok(QueueType::Quorum)
    );
    let e = validate_declare("q", true, true, false, &quorum()).unwrap_err();
    assert_eq!(e.code, 406);
    assert_eq!(
        e.text,
        "PRECONDITION_FAILED - invalid property 'exclusive-owner' for queue 'q' in vhost '/'"
    );
    // RabbitMQ checks auto-delete first, then exclusive, then durable.
    let text = |d, e, a| validate_declare("q", d, e, a, &quorum()).unwrap_err().text;
    assert!(text(false, false, false).ends_with("'non-durable' for queue 'q' in vhost '/'"));
    assert!(text(false, false, true).ends_with("'auto-delete' for queue 'q' in vhost '/'"));
    assert!(text(false, true, true).ends_with("'auto-delete' for queue 'q' in vhost '/'"));
    assert!(text(false, true, false).ends_with("'exclusive-owner' for queue 'q' in vhost '/'"));
}

#[test]
fn validate_declare_checks_the_type_only() {
    let a = table(&[("x-whatever", FieldValue::I32(3))]);
    assert_eq!(
        validate_declare("q", false, false, false, &a),
        Ok(QueueType::Classic)
    );
    let bad_ttl = table(&[("x-message-ttl", FieldValue::I32(-1))]);
    assert_eq!(
        validate_declare("q", false, false, false, &bad_ttl),
        Ok(QueueType::Classic)
    );
    let e = validate_declare(
        "q",
        false,
        false,
        false,
        &table(&[("x-queue-type", s("x"))]),
    );
    assert_eq!(
        e.unwrap_err().text,
        "PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': \
         \"unsupported queue type 'x'\""
    );
}

#[test]
fn redeclare_with_other_checked_argument_is_refused() {
    let e = check_equivalent_arguments("q", &FieldTable::new(), &quorum()).unwrap_err();
    assert_eq!(
        e.text,
        "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': \
         received the value 'quorum' of type 'longstr' but current is none"
    );
    let unchecked = table(&[("x-custom", FieldValue::I32(1))]);
    assert!(check_equivalent_arguments("q", &FieldTable::new(), &unchecked).is_ok());
    // Same value, other integer width: equivalent (Java clients send longs).
    let int = table(&[("x-max-length", FieldValue::I32(10))]);
    let long = table(&[("x-max-length", FieldValue::I64(10))]);
    assert!(check_equivalent_arguments("q", &int, &long).is_ok());
    let f = table(&[("x-message-ttl", FieldValue::F32(1.5))]);
    let d = table(&[("x-message-ttl", FieldValue::F64(1.5))]);
    assert!(check_equivalent_arguments("q", &f, &d).is_ok());
    let dec = table(&[(
        "x-max-length",
        FieldValue::Decimal(Decimal {
            scale: 0,
            value: 10,
        }),
    )]);
    assert!(check_equivalent_arguments("q", &int, &dec).is_err());
}

#[test]
fn shard_pin_is_bounded() {
    let a = table(&[(SHARD_ARG, FieldValue::I64(1))]);
    assert_eq!(pinned_shard("q", &a, 2), Ok(Some(1)));
    assert_eq!(pinned_shard("q", &a, 1).unwrap_err().code, 406);
    assert_eq!(pinned_shard("q", &FieldTable::new(), 2), Ok(None));
}

// ---- policies ----------------------------------------------------------

fn definition(pairs: &[(&str, FieldValue)]) -> PolicyDefinition {
    PolicyDefinition::parse(&table(pairs)).unwrap()
}

fn policy(name: &str, pattern: &str, apply_to: ApplyTo, priority: i64) -> Policy {
    let d = definition(&[("max-length", FieldValue::I64(1))]);
    Policy::new(name, pattern, apply_to, priority, d).unwrap()
}

const CLASSIC: PolicyTarget = PolicyTarget::Queue(QueueType::Classic);
const QUORUM: PolicyTarget = PolicyTarget::Queue(QueueType::Quorum);

fn chosen<'a>(policies: &'a [Policy], name: &str, target: PolicyTarget) -> Option<&'a str> {
    select(policies, name, target).map(|p| p.name.as_str())
}

#[test]
fn the_highest_priority_matching_policy_applies() {
    let policies = [
        policy("all", ".*", ApplyTo::All, 0),
        policy("orders", "^orders\\.", ApplyTo::Queues, 5),
        policy("orders-low", "^orders\\.", ApplyTo::Queues, 1),
        policy("exchanges", "^orders\\.", ApplyTo::Exchanges, 10),
        policy("negative", ".*", ApplyTo::Queues, -3),
    ];
    assert_eq!(chosen(&policies, "orders.created", CLASSIC), Some("orders"));
    assert_eq!(chosen(&policies, "payments", CLASSIC), Some("all"));
    assert_eq!(
        chosen(&policies, "orders.created", PolicyTarget::Exchange),
        Some("exchanges")
    );
    assert_eq!(
        chosen(&policies, "payments", PolicyTarget::Exchange),
        Some("all")
    );
    assert_eq!(chosen(&policies[4..], "x", PolicyTarget::Exchange), None);
    assert_eq!(chosen(&[], "x", CLASSIC), None);
}

#[test]
fn policy_patterns_are_unanchored_byte_regexes() {
    let p = policy("p", "ders\\.", ApplyTo::All, 0);
    assert!(
        p.matches("orders.x", CLASSIC),
        "re:run searches, it does not anchor"
    );
    assert!(!p.matches("ordersx", CLASSIC));
    let dot = policy("p", "^.$", ApplyTo::All, 0);
    assert!(dot.matches("a", CLASSIC));
    assert!(
        !dot.matches("é", CLASSIC),
        "without `unicode`, `.` is one byte"
    );
    let lit = policy("p", "^é$", ApplyTo::All, 0);
    assert!(lit.matches("é", CLASSIC));
    let d = definition(&[("max-length", FieldValue::I64(1))]);
    assert!(Policy::new("p", "(", ApplyTo::All, 0, d.clone())
        .unwrap_err()
        .starts_with("pattern should be regular expression but is invalid"));
    assert!(
        Policy::new("p", "(?=a)", ApplyTo::All, 0, d).is_err(),
        "no look-around"
    );
}

#[test]
fn equal_priorities_take_the_first_policy() {
    let policies = [
        policy("first", "^q", ApplyTo::All, 2),
        policy("second", "^q", ApplyTo::All, 2),
    ];
    assert_eq!(chosen(&policies, "q1", CLASSIC), Some("first"));
}

#[test]
fn a_policy_with_a_key_the_type_lacks_skips_that_type() {
    let dl = Policy::new(
        "dl",
        ".*",
        ApplyTo::Queues,
        9,
        definition(&[("delivery-limit", FieldValue::I64(3))]),
    )
    .unwrap();
    let lazy = Policy::new(
        "lazy",
        ".*",
        ApplyTo::Queues,
        8,
        definition(&[("queue-mode", s("lazy"))]),
    )
    .unwrap();
    let ha = Policy::new(
        "ha",
        ".*",
        ApplyTo::Queues,
        7,
        definition(&[("ha-mode", s("all")), ("message-ttl", FieldValue::I64(5))]),
    )
    .unwrap();
    let policies = [dl, lazy, ha, policy("fallback", ".*", ApplyTo::Queues, 0)];
    assert_eq!(chosen(&policies, "q", CLASSIC), Some("lazy"));
    assert_eq!(chosen(&policies, "q", QUORUM), Some("dl"));
    assert_eq!(chosen(&policies[1..], "q", QUORUM), Some("fallback"));
    assert_eq!(chosen(&policies[2..], "q", CLASSIC), Some("ha"));
}

#[test]
fn policy_definitions_are_validated_like_rabbitmq() {
    let err = |pairs: &[(&str, FieldValue)]| PolicyDefinition::parse(&table(pairs)).unwrap_err();
    assert_eq!(
        err(&[("message-ttl", FieldValue::I64(-1))]),
        "-1 is not a valid message TTL"
    );
    assert_eq!(
        err(&[("expires", FieldValue::I64(0))]),
        "0 is not a valid queue expiry"
    );
    assert_eq!(
        err(&[("max-length", s("10"))]),
        "<<\"10\">> is not a valid maximum length"
    );
    assert_eq!(
        err(&[("overflow", s("bogus"))]),
        "<<\"bogus\">> is not a valid overflow value"
    );
    assert_eq!(
        err(&[("dead-letter-exchange", FieldValue::I64(1))]),
        "1 is not a valid dead letter exchange name"
    );
    assert_eq!(
        err(&[("delivery-limit", FieldValue::F64(1.5))]),
        "1.5 is not a valid delivery limit"
    );
    assert_eq!(
        err(&[("queue-version", FieldValue::I64(3))]),
        "3 is not a valid queue-version value"
    );
    assert_eq!(
        err(&[("foo", FieldValue::I64(1))]),
        "[{<<\"foo\">>,1}] are not recognised policy settings"
    );
    assert_eq!(err(&[]), "no policy provided");
    let d = definition(&[
        ("message-ttl", FieldValue::I64(0)),
        ("max-length-bytes", FieldValue::I64(100)),
        ("dead-letter-exchange", s("dlx")),
        ("dead-letter-routing-key", s("rk")),
        ("overflow", s("reject-publish")),
        ("queue-mode", s("lazy")),
        ("federation-upstream-set", s("all")),
    ]);
    assert_eq!(d.message_ttl, Some(0));
    assert_eq!(d.max_length_bytes, Some(100));
    assert_eq!(d.dead_letter_exchange.as_deref(), Some(&b"dlx"[..]));
    assert_eq!(d.overflow, Some(Overflow::RejectPublish));
    assert_eq!(d.queue_mode, Some(QueueMode::Lazy));
    assert_eq!(d.keys.len(), 7);
    assert_eq!(ApplyTo::from_name("queues"), Some(ApplyTo::Queues));
    assert_eq!(ApplyTo::from_name("streams"), None);
}

fn classic_args(pairs: &[(&str, FieldValue)]) -> QueueArguments {
    QueueArguments::parse("q", &table(pairs)).unwrap()
}

fn quorum_args(pairs: &[(&str, FieldValue)]) -> QueueArguments {
    let mut all = vec![("x-queue-type", s("quorum"))];
    all.extend(pairs.iter().cloned());
    QueueArguments::parse("qq", &table(&all)).unwrap()
}

#[test]
fn classic_precedence_lower_limit_or_the_argument() {
    let args = classic_args(&[
        ("x-message-ttl", FieldValue::I32(5000)),
        ("x-expires", FieldValue::I32(1000)),
        ("x-max-length", FieldValue::I32(10)),
        ("x-overflow", s("drop-head")),
        ("x-dead-letter-exchange", s("arg-dlx")),
        ("x-max-priority", FieldValue::I32(5)),
    ]);
    let p = definition(&[
        ("message-ttl", FieldValue::I64(1000)),
        ("expires", FieldValue::I64(9000)),
        ("max-length", FieldValue::I64(100)),
        ("max-length-bytes", FieldValue::I64(4096)),
        ("overflow", s("reject-publish")),
        ("dead-letter-exchange", s("policy-dlx")),
        ("dead-letter-routing-key", s("policy-rk")),
        ("queue-mode", s("lazy")),
    ]);
    let e = effective(&args, Some(&p));
    assert_eq!(e.message_ttl, Some(1000), "lower: policy");
    assert_eq!(e.expires, Some(1000), "lower: argument");
    assert_eq!(e.max_length, Some(10), "lower: argument");
    assert_eq!(e.max_length_bytes, Some(4096), "policy alone");
    assert_eq!(e.overflow, Some(Overflow::DropHead), "argument wins");
    assert_eq!(
        e.dead_letter_exchange_name(),
        Some("arg-dlx"),
        "argument wins"
    );
    assert_eq!(
        e.dead_letter_routing_key_str(),
        Some("policy-rk"),
        "policy alone"
    );
    assert_eq!(e.queue_mode, Some(QueueMode::Lazy), "policy alone");
    assert_eq!(e.max_priority, Some(5), "arguments only");
    assert_eq!(effective(&args, None), args);
    // A delivery-limit policy does not apply to classic queues at all.
    let dl = definition(&[
        ("delivery-limit", FieldValue::I64(3)),
        ("message-ttl", FieldValue::I64(1)),
    ]);
    assert_eq!(effective(&args, Some(&dl)), args);
}

#[test]
fn quorum_precedence_policy_wins_overflow_and_expires() {
    let args = quorum_args(&[
        ("x-message-ttl", FieldValue::I32(5000)),
        ("x-expires", FieldValue::I32(1000)),
        ("x-max-length", FieldValue::I32(10)),
        ("x-overflow", s("reject-publish")),
        ("x-delivery-limit", FieldValue::I32(5)),
        ("x-dead-letter-exchange", s("arg-dlx")),
        ("x-dead-letter-strategy", s("at-least-once")),
    ]);
    let p = definition(&[
        ("message-ttl", FieldValue::I64(9000)),
        ("expires", FieldValue::I64(9000)),
        ("max-length", FieldValue::I64(3)),
        ("overflow", s("drop-head")),
        ("delivery-limit", FieldValue::I64(2)),
        ("max-in-memory-length", FieldValue::I64(7)),
        ("dead-letter-exchange", s("policy-dlx")),
        ("dead-letter-strategy", s("at-most-once")),
    ]);
    let e = effective(&args, Some(&p));
    assert_eq!(e.message_ttl, Some(5000), "lower: argument");
    assert_eq!(e.expires, Some(9000), "policyHasPrecedence");
    assert_eq!(e.max_length, Some(3), "lower: policy");
    assert_eq!(e.overflow, Some(Overflow::DropHead), "policyHasPrecedence");
    assert_eq!(e.delivery_limit, Some(2), "lower: policy");
    assert_eq!(e.max_in_memory_length, Some(7), "policy alone");
    assert_eq!(
        e.dead_letter_exchange_name(),
        Some("arg-dlx"),
        "argument wins"
    );
    assert_eq!(
        e.dead_letter_strategy,
        Some(DeadLetterStrategy::AtLeastOnce)
    );
    // A queue-mode policy does not apply to quorum queues at all.
    let lazy = definition(&[
        ("queue-mode", s("lazy")),
        ("max-length", FieldValue::I64(1)),
    ]);
    assert_eq!(effective(&args, Some(&lazy)), args);
}

#[test]
fn quorum_queues_run_reject_publish_dlx_as_drop_head() {
    let args = quorum_args(&[("x-overflow", s("reject-publish-dlx"))]);
    assert_eq!(
        args.overflow,
        Some(Overflow::RejectPublishDlx),
        "declared as given"
    );
    assert_eq!(effective(&args, None).overflow, Some(Overflow::DropHead));
    let p = definition(&[("overflow", s("reject-publish-dlx"))]);
    let classic = classic_args(&[]);
    assert_eq!(
        effective(&classic, Some(&p)).overflow,
        Some(Overflow::RejectPublishDlx)
    );
}

// ---- properties ------------------------------------------------------

/// Argument names the parsers look at, plus a few they do not.
const KEYS: &[&str] = &[
    "x-message-ttl",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-overflow",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-max-priority",
    "x-single-active-consumer",
    "x-delivery-limit",
    "x-queue-mode",
    "x-queue-version",
    "x-queue-type",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-quorum-initial-group-size",
    "x-queue-leader-locator",
    "x-queue-master-locator",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-priority",
    "x-cancel-on-ha-failover",
    "x-stream-offset",
    "x-credit",
    "x-warren-shard",
    "x-whatever",
];

const WORDS: &[&str] = &[
    "classic",
    "quorum",
    "stream",
    "lazy",
    "default",
    "drop-head",
    "reject-publish",
    "reject-publish-dlx",
    "at-least-once",
    "balanced",
    "",
    "日本",
];

fn leaf() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i8>().prop_map(FieldValue::I8),
        any::<u8>().prop_map(FieldValue::U8),
        any::<i16>().prop_map(FieldValue::I16),
        any::<u16>().prop_map(FieldValue::U16),
        any::<i32>().prop_map(FieldValue::I32),
        any::<u32>().prop_map(FieldValue::U32),
        any::<i64>().prop_map(FieldValue::I64),
        (-3i64..400).prop_map(FieldValue::I64),
        any::<f32>().prop_map(FieldValue::F32),
        any::<f64>().prop_map(FieldValue::F64),
        (any::<u8>(), any::<u32>())
            .prop_map(|(scale, value)| FieldValue::Decimal(Decimal { scale, value })),
        prop::sample::select(WORDS).prop_map(s),
        prop::collection::vec(any::<u8>(), 0..300)
            .prop_map(|b| FieldValue::LongStr(Bytes::from(b))),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(|b| FieldValue::Bytes(Bytes::from(b))),
        any::<u64>().prop_map(FieldValue::Timestamp),
        Just(FieldValue::Void),
    ]
}

fn value() -> impl Strategy<Value = FieldValue> {
    leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(FieldValue::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..4).prop_map(|kv| {
                FieldValue::Table(FieldTable(
                    kv.into_iter()
                        .map(|(k, v)| (ShortStr::from(k), v))
                        .collect(),
                ))
            }),
        ]
    })
}

/// Tables with distinct keys (so their order cannot change which value a
/// lookup finds).
fn arguments() -> impl Strategy<Value = FieldTable> {
    prop::collection::btree_map(prop::sample::select(KEYS), value(), 0..8)
        .prop_map(|m| FieldTable(m.into_iter().map(|(k, v)| (ShortStr::from(k), v)).collect()))
}

fn queue_name() -> impl Strategy<Value = String> {
    prop_oneof![Just("q".to_string()), "[a-zé\"'\\\\]{0,255}"]
}

proptest! {
    #[test]
    fn parsing_never_panics_and_errors_fit_a_shortstr(
        name in queue_name(),
        args in arguments(),
        flags in any::<(bool, bool, bool)>(),
    ) {
        let (durable, exclusive, auto_delete) = flags;
        for result in [
            QueueArguments::validate_new_queue(&name, durable, exclusive, auto_delete, &args).err(),
            validate_declare(&name, durable, exclusive, auto_delete, &args).err(),
            ConsumerArguments::parse(&name, QueueType::Classic, &args).err(),
            ConsumerArguments::parse(&name, QueueType::Quorum, &args).err(),
            check_equivalent_arguments(&name, &args, &FieldTable::new()).err(),
        ]
        .into_iter()
        .flatten()
        {
            prop_assert_eq!(result.code, 406);
            prop_assert!(result.text.len() <= 255);
            prop_assert!(result.text.starts_with("PRECONDITION_FAILED - "));
        }
        if let Ok(def) = PolicyDefinition::parse(&args) {
            if let Ok(parsed) = QueueArguments::parse(&name, &args) {
                let _ = effective(&parsed, Some(&def));
            }
        }
    }

    #[test]
    fn acceptance_does_not_depend_on_argument_order(args in arguments()) {
        let mut reversed = args.clone();
        reversed.0.reverse();
        prop_assert_eq!(
            QueueArguments::parse("q", &args).ok(),
            QueueArguments::parse("q", &reversed).ok()
        );
    }

    #[test]
    fn a_queue_is_equivalent_to_itself(args in arguments()) {
        prop_assert!(check_equivalent_arguments("q", &args, &args).is_ok()
            || args.iter().any(|(_, v)| has_nan(v)));
    }

    #[test]
    fn effective_without_a_policy_only_maps_quorum_dlx_overflow(args in arguments()) {
        if let Ok(parsed) = QueueArguments::parse("q", &args) {
            let e = effective(&parsed, None);
            let mut expected = parsed.clone();
            if parsed.queue_type == QueueType::Quorum
                && parsed.overflow == Some(Overflow::RejectPublishDlx)
            {
                expected.overflow = Some(Overflow::DropHead);
            }
            prop_assert_eq!(e, expected);
        }
    }
}

/// NaN is not equal to itself, so a table holding one is not equivalent to
/// itself (RabbitMQ never sees one: Erlang has no NaN).
fn has_nan(v: &FieldValue) -> bool {
    match v {
        FieldValue::F32(f) => f.is_nan(),
        FieldValue::F64(f) => f.is_nan(),
        FieldValue::Array(items) => items.iter().any(has_nan),
        FieldValue::Table(t) => t.iter().any(|(_, v)| has_nan(v)),
        _ => false,
    }
}
