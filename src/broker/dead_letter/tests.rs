//! Tests of dead-lettering: the `x-death` header and its companions as
//! RabbitMQ 3.13 writes them, checked field by field and type by type
//! against headers probed from RabbitMQ 3.10.8 (where 3.13's source differs,
//! the test says so), routing keys, cycle detection, and a property test
//! that arbitrary client-supplied headers never make it panic.

use super::*;
use proptest::prelude::*;

const T0: u64 = 1_796_016_051;

fn s(v: &str) -> FieldValue {
    FieldValue::LongStr(Bytes::copy_from_slice(v.as_bytes()))
}

fn b(v: &str) -> LongStr {
    Bytes::copy_from_slice(v.as_bytes())
}

fn strs(v: &[&str]) -> FieldValue {
    FieldValue::Array(v.iter().map(|x| s(x)).collect())
}

fn table(entries: Vec<(&str, FieldValue)>) -> FieldTable {
    FieldTable(
        entries
            .into_iter()
            .map(|(k, v)| (ShortStr::from(k), v))
            .collect(),
    )
}

fn props(headers: Option<FieldTable>, expiration: Option<&str>) -> Bytes {
    BasicProperties {
        headers,
        expiration: expiration.map(ShortStr::from),
        ..Default::default()
    }
    .to_bytes()
}

fn decode(raw: &Bytes) -> BasicProperties {
    BasicProperties::decode(raw.clone()).expect("output decodes")
}

fn headers_of(raw: &Bytes) -> FieldTable {
    decode(raw).headers.expect("headers")
}

fn names(t: &FieldTable) -> Vec<&str> {
    t.iter().map(|(k, _)| k.as_str()).collect()
}

/// One `x-death` entry as 3.13's `death_table/7` writes it.
fn entry(
    exp: Option<&str>,
    count: i64,
    reason: &str,
    queue: &str,
    time: u64,
    exchange: &str,
    keys: &[&str],
) -> FieldValue {
    let mut e = Vec::new();
    if let Some(exp) = exp {
        e.push(("original-expiration", s(exp)));
    }
    e.extend([
        ("count", FieldValue::I64(count)),
        ("reason", s(reason)),
        ("queue", s(queue)),
        ("time", FieldValue::Timestamp(time)),
        ("exchange", s(exchange)),
        ("routing-keys", strs(keys)),
    ]);
    FieldValue::Table(table(e))
}

fn die(
    raw: Bytes,
    routing: &Routing,
    queue: &str,
    reason: DeadLetterReason,
    now: u64,
    dlx: &str,
    dlrk: Option<&str>,
) -> DeadLettered {
    let dlrk = dlrk.map(ShortStr::from);
    dead_letter(
        raw,
        routing,
        &ShortStr::from(queue),
        reason,
        now,
        &ShortStr::from(dlx),
        dlrk.as_ref(),
    )
    .expect("dead_letter")
}

#[test]
fn reasons_have_rabbitmq_wire_names() {
    for (r, name) in [
        (DeadLetterReason::Rejected, "rejected"),
        (DeadLetterReason::Expired, "expired"),
        (DeadLetterReason::Maxlen, "maxlen"),
        (DeadLetterReason::DeliveryLimit, "delivery_limit"),
    ] {
        assert_eq!(r.as_str(), name);
        assert_eq!(DeadLetterReason::from_wire(name.as_bytes()), Some(r));
    }
    assert_eq!(DeadLetterReason::from_wire(b"Rejected"), None);
}

#[test]
fn routing_from_publish_is_key_then_cc_then_bcc() {
    let h = table(vec![
        (
            "CC",
            FieldValue::Array(vec![s("c1"), FieldValue::I32(3), s("c2")]),
        ),
        ("BCC", strs(&["b1"])),
        ("CC", strs(&["ignored: only the first CC counts"])),
    ]);
    let r = Routing::from_publish(ShortStr::from("x"), &ShortStr::from("rk"), Some(&h));
    assert_eq!(r.exchange, "x");
    assert_eq!(r.routing_keys, vec![b("rk"), b("c1"), b("c2"), b("b1")]);
    assert_eq!(r.bcc, vec![b("b1")]);
    let plain = Routing::from_publish(ShortStr::from(""), &ShortStr::from("rk"), None);
    assert_eq!(plain.routing_keys, vec![b("rk")]);
    assert!(plain.bcc.is_empty());
}

/// The scenario probed on RabbitMQ 3.10.8 (step 1b of the report): a
/// message published to the default exchange with routing key
/// `dlprobe.q1`, `expiration` 60000, headers `zeta`, `CC`, `BCC`, `alpha`,
/// rejected (requeue=false) from `dlprobe.q1`, whose dead-letter exchange is
/// the fanout `dlprobe.dlx`. 3.10.8 wrote, headers in this order:
/// `CC`, `alpha`, `x-death` = [{count l 1, reason S rejected, queue S
/// dlprobe.q1, time T, exchange S "", routing-keys A[S dlprobe.q1, S cc.one,
/// S cc.two], original-expiration S 60000}], `x-first-death-exchange` S "",
/// `x-first-death-queue`, `x-first-death-reason`, `zeta` I 1; no
/// `expiration`, no `BCC`. 3.13 differs in the entry's key order
/// (`original-expiration` first, `death_table/7`) and adds `x-last-death-*`.
fn first_death() -> (Routing, DeadLettered) {
    let h = table(vec![
        ("zeta", FieldValue::I32(1)),
        ("CC", strs(&["cc.one", "cc.two"])),
        ("BCC", strs(&["bcc.one"])),
        ("alpha", s("a")),
    ]);
    let routing =
        Routing::from_publish(ShortStr::from(""), &ShortStr::from("dlprobe.q1"), Some(&h));
    let out = die(
        props(Some(h), Some("60000")),
        &routing,
        "dlprobe.q1",
        DeadLetterReason::Rejected,
        T0,
        "dlprobe.dlx",
        None,
    );
    (routing, out)
}

#[test]
fn first_death_writes_x_death_and_first_and_last_death_headers() {
    let (_, out) = first_death();
    let p = decode(&out.raw_properties);
    assert_eq!(
        p.expiration, None,
        "expiration moves to original-expiration"
    );
    let expected = table(vec![
        ("CC", strs(&["cc.one", "cc.two"])),
        ("alpha", s("a")),
        (
            "x-death",
            FieldValue::Array(vec![entry(
                Some("60000"),
                1,
                "rejected",
                "dlprobe.q1",
                T0,
                "",
                &["dlprobe.q1", "cc.one", "cc.two"],
            )]),
        ),
        ("x-first-death-exchange", s("")),
        ("x-first-death-queue", s("dlprobe.q1")),
        ("x-first-death-reason", s("rejected")),
        ("x-last-death-exchange", s("")),
        ("x-last-death-queue", s("dlprobe.q1")),
        ("x-last-death-reason", s("rejected")),
        ("zeta", FieldValue::I32(1)),
    ]);
    assert_eq!(p.headers.as_ref(), Some(&expected));
    // Republished to the DLX with all the original keys, BCC ones included.
    assert_eq!(out.routing.exchange, "dlprobe.dlx");
    assert_eq!(
        out.routing.routing_keys,
        vec![b("dlprobe.q1"), b("cc.one"), b("cc.two"), b("bcc.one")]
    );
    assert_eq!(out.routing.bcc, vec![b("bcc.one")]);
    assert_eq!(out.history.len(), 1);
    assert_eq!(out.history[0].count, 1);
}

#[test]
fn header_types_are_exactly_rabbitmqs() {
    let (_, out) = first_death();
    let raw = &out.raw_properties;
    let has = |needle: &[u8]| raw.windows(needle.len()).any(|w| w == needle);
    // count: 'l' (signed 64-bit), as 3.10.8 sent `count: l(1)`.
    assert!(has(b"\x05countl\x00\x00\x00\x00\x00\x00\x00\x01"));
    // time: 'T' (timestamp, seconds).
    let mut time = b"\x04timeT".to_vec();
    time.extend_from_slice(&T0.to_be_bytes());
    assert!(has(&time));
    // reason, queue, exchange, original-expiration: 'S'; routing-keys: 'A' of 'S'.
    assert!(has(b"\x06reasonS\x00\x00\x00\x08rejected"));
    assert!(has(b"\x08exchangeS\x00\x00\x00\x00"));
    assert!(has(b"\x13original-expirationS\x00\x00\x00\x0560000"));
    assert!(has(b"\x0crouting-keysA"));
    assert!(has(b"S\x00\x00\x00\x0adlprobe.q1S\x00\x00\x00\x06cc.one"));
    assert!(has(b"\x12x-last-death-queueS\x00\x00\x00\x0adlprobe.q1"));
    // headers is the only property left: flags 0x2000, as 3.10.8 sent.
    assert_eq!(&raw[..2], &[0x20, 0x00]);
}

/// Probe steps 1c–1e: the copy expires in `dlprobe.q2` (per-queue TTL;
/// `x-dead-letter-exchange` "" and routing key `dlprobe.q1`), is rejected in
/// `dlprobe.q1` again, then expires in `dlprobe.q2` again.
#[test]
fn later_deaths_prepend_or_count_and_move_to_front() {
    let (_, first) = first_death();
    let dl = |d: &DeadLettered, q: &str, r, t, dlx: &str, dlrk| {
        die(d.raw_properties.clone(), &d.routing, q, r, t, dlx, dlrk)
    };
    let q1_rejected = |count| {
        entry(
            Some("60000"),
            count,
            "rejected",
            "dlprobe.q1",
            T0,
            "",
            &["dlprobe.q1", "cc.one", "cc.two"],
        )
    };
    let q2_expired = |count| {
        entry(
            None,
            count,
            "expired",
            "dlprobe.q2",
            T0 + 1,
            "dlprobe.dlx",
            &["dlprobe.q1", "cc.one", "cc.two"],
        )
    };

    // 1c: a second death in another queue is prepended; the first-death
    // headers stay, the last-death ones follow.
    let second = dl(
        &first,
        "dlprobe.q2",
        DeadLetterReason::Expired,
        T0 + 1,
        "",
        Some("dlprobe.q1"),
    );
    let h = headers_of(&second.raw_properties);
    assert_eq!(
        h.get("x-death"),
        Some(&FieldValue::Array(vec![q2_expired(1), q1_rejected(1)]))
    );
    assert_eq!(h.get("x-first-death-queue"), Some(&s("dlprobe.q1")));
    assert_eq!(h.get("x-first-death-reason"), Some(&s("rejected")));
    assert_eq!(h.get("x-first-death-exchange"), Some(&s("")));
    assert_eq!(h.get("x-last-death-queue"), Some(&s("dlprobe.q2")));
    assert_eq!(h.get("x-last-death-reason"), Some(&s("expired")));
    assert_eq!(h.get("x-last-death-exchange"), Some(&s("dlprobe.dlx")));
    assert_eq!(second.routing.exchange, "");
    assert_eq!(second.routing.routing_keys, vec![b("dlprobe.q1")]);

    // 1d: rejected in q1 again: that entry counts 2 and moves to the front,
    // keeping its time, exchange, routing keys and original-expiration.
    let third = dl(
        &second,
        "dlprobe.q1",
        DeadLetterReason::Rejected,
        T0 + 5,
        "dlprobe.dlx",
        None,
    );
    let h = headers_of(&third.raw_properties);
    assert_eq!(
        h.get("x-death"),
        Some(&FieldValue::Array(vec![q1_rejected(2), q2_expired(1)]))
    );
    assert_eq!(h.get("x-first-death-queue"), Some(&s("dlprobe.q1")));
    assert_eq!(h.get("x-last-death-queue"), Some(&s("dlprobe.q1")));
    assert_eq!(h.get("x-last-death-reason"), Some(&s("rejected")));
    assert_eq!(h.get("x-last-death-exchange"), Some(&s("")));
    // Published as [dlprobe.q1] by the last dead-lettering: so republished.
    assert_eq!(third.routing.routing_keys, vec![b("dlprobe.q1")]);

    // 1e: expired in q2 again.
    let fourth = dl(
        &third,
        "dlprobe.q2",
        DeadLetterReason::Expired,
        T0 + 6,
        "",
        Some("dlprobe.q1"),
    );
    let h = headers_of(&fourth.raw_properties);
    assert_eq!(
        h.get("x-death"),
        Some(&FieldValue::Array(vec![q2_expired(2), q1_rejected(2)]))
    );
    assert_eq!(
        names(&h),
        vec![
            "CC",
            "alpha",
            "x-death",
            "x-first-death-exchange",
            "x-first-death-queue",
            "x-first-death-reason",
            "x-last-death-exchange",
            "x-last-death-queue",
            "x-last-death-reason",
            "zeta",
        ]
    );
    // Back into q1 (where 3.10.8 delivered it) is no automatic cycle: it
    // went through a rejection there; straight back into q2 would be one.
    assert!(!fourth.is_cycle(b"dlprobe.q1"));
    assert!(fourth.is_cycle(b"dlprobe.q2"));
}

/// Probe step 2: `expiration` 100, expired in `dlprobe.e1`.
#[test]
fn per_message_expiration_becomes_original_expiration() {
    let h = table(vec![("h", s("v"))]);
    let routing =
        Routing::from_publish(ShortStr::from(""), &ShortStr::from("dlprobe.e1"), Some(&h));
    let out = die(
        props(Some(h), Some("100")),
        &routing,
        "dlprobe.e1",
        DeadLetterReason::Expired,
        T0,
        "dlprobe.dlx",
        None,
    );
    let p = decode(&out.raw_properties);
    assert_eq!(p.expiration, None);
    let h = p.headers.unwrap();
    assert_eq!(
        h.get("x-death"),
        Some(&FieldValue::Array(vec![entry(
            Some("100"),
            1,
            "expired",
            "dlprobe.e1",
            T0,
            "",
            &["dlprobe.e1"]
        )]))
    );
    assert_eq!(h.get("x-first-death-reason"), Some(&s("expired")));
}

#[test]
fn original_expiration_is_the_parsed_integer() {
    // 3.13 writes integer_to_binary(parse_expiration(...)); 3.10 copied the
    // property verbatim.
    let routing = Routing::from_publish(ShortStr::from(""), &ShortStr::from("q"), None);
    for (given, written) in [("0100", "100"), ("+7", "7"), ("0", "0"), ("-0", "0")] {
        let out = die(
            props(None, Some(given)),
            &routing,
            "q",
            DeadLetterReason::Maxlen,
            T0,
            "dlx",
            None,
        );
        assert_eq!(out.history[0].original_expiration, Some(b(written)));
    }
    // RabbitMQ refuses a publish whose expiration is not an integer from 0
    // to ten years in milliseconds; should one get here, it is dropped.
    for invalid in ["soon", "", "-5", "5 ", "0+", "315360000001"] {
        let out = die(
            props(None, Some(invalid)),
            &routing,
            "q",
            DeadLetterReason::Maxlen,
            T0,
            "dlx",
            None,
        );
        assert_eq!(out.history[0].original_expiration, None, "{invalid:?}");
        assert_eq!(decode(&out.raw_properties).expiration, None);
    }
    let out = die(
        props(None, Some("315360000000")),
        &routing,
        "q",
        DeadLetterReason::Maxlen,
        T0,
        "dlx",
        None,
    );
    assert_eq!(out.history[0].original_expiration, Some(b("315360000000")));
}

/// Probe step 3: `x-max-length` 1 with `x-dead-letter-routing-key` `dlrk`;
/// the dropped message had `CC` [cc.m]. 3.10.8 removed the `CC` header;
/// 3.13 keeps it (dead_lettering_SUITE, "we keep the CC header as of
/// RabbitMQ 3.13").
#[test]
fn dead_letter_routing_key_replaces_all_keys_and_cc_is_kept() {
    let h = table(vec![("CC", strs(&["cc.m"])), ("BCC", strs(&["bcc.m"]))]);
    let routing =
        Routing::from_publish(ShortStr::from(""), &ShortStr::from("dlprobe.m1"), Some(&h));
    let out = die(
        props(Some(h), None),
        &routing,
        "dlprobe.m1",
        DeadLetterReason::Maxlen,
        T0,
        "dlprobe.dlx",
        Some("dlrk"),
    );
    assert_eq!(out.routing.routing_keys, vec![b("dlrk")]);
    let h = headers_of(&out.raw_properties);
    assert_eq!(h.get("CC"), Some(&strs(&["cc.m"])));
    assert_eq!(h.get("BCC"), None);
    assert_eq!(
        h.get("x-death"),
        Some(&FieldValue::Array(vec![entry(
            None,
            1,
            "maxlen",
            "dlprobe.m1",
            T0,
            "",
            &["dlprobe.m1", "cc.m"]
        )]))
    );
}

#[test]
fn bcc_is_removed_and_left_out_of_x_death_but_still_routes() {
    let h = table(vec![
        ("BCC", strs(&["b1", "b2"])),
        ("CC", strs(&["b1", "c1"])),
    ]);
    let routing = Routing::from_publish(ShortStr::from("ex"), &ShortStr::from("rk"), Some(&h));
    assert_eq!(
        routing.routing_keys,
        vec![b("rk"), b("b1"), b("c1"), b("b1"), b("b2")]
    );
    let out = die(
        props(Some(h), None),
        &routing,
        "q",
        DeadLetterReason::Rejected,
        T0,
        "dlx",
        None,
    );
    let h = headers_of(&out.raw_properties);
    assert!(h.get("BCC").is_none());
    // `[rk, b1, c1, b1, b2] -- [b1, b2]`: the first b1 (a CC key) goes, as
    // Erlang's `--` takes the first occurrence.
    assert_eq!(out.history[0].routing_keys, vec![b("rk"), b("c1"), b("b1")]);
    assert_eq!(out.routing.routing_keys, routing.routing_keys);
    // A second death keeps leaving the BCC keys out.
    let again = die(
        out.raw_properties.clone(),
        &out.routing,
        "q2",
        DeadLetterReason::Expired,
        T0,
        "dlx",
        None,
    );
    assert_eq!(
        again.history[0].routing_keys,
        vec![b("rk"), b("c1"), b("b1")]
    );
    assert_eq!(again.routing.routing_keys, routing.routing_keys);
}

/// Probe step 4: `c1` (TTL 100, DLX `cyc` direct) → `cyc` routes key `k`
/// (a `CC` key) to `c1`, `c2` and `ctap`; `c2` is like `c1`. 3.10.8
/// delivered two copies to `ctap` and none back to `c1` or `c2`.
#[test]
fn fully_automatic_cycle_is_dropped() {
    let h = table(vec![("CC", strs(&["k"]))]);
    let routing =
        Routing::from_publish(ShortStr::from(""), &ShortStr::from("dlprobe.c1"), Some(&h));
    let one = die(
        props(Some(h), None),
        &routing,
        "dlprobe.c1",
        DeadLetterReason::Expired,
        T0,
        "dlprobe.cyc",
        None,
    );
    assert!(one.is_cycle(b"dlprobe.c1"), "straight back into c1");
    assert!(!one.is_cycle(b"dlprobe.c2"));
    assert!(!one.is_cycle(b"dlprobe.ctap"));
    let two = die(
        one.raw_properties.clone(),
        &one.routing,
        "dlprobe.c2",
        DeadLetterReason::Expired,
        T0,
        "dlprobe.cyc",
        None,
    );
    assert!(two.is_cycle(b"dlprobe.c1"));
    assert!(two.is_cycle(b"dlprobe.c2"));
    assert!(!two.is_cycle(b"dlprobe.ctap"));
    assert_eq!(
        history_queue_names(&two.history),
        vec![b("dlprobe.c2"), b("dlprobe.c1")]
    );
}

fn death(queue: &str, reason: DeadLetterReason) -> Death {
    Death {
        queue: b(queue),
        reason: b(reason.as_str()),
        count: 1,
        time: T0,
        exchange: b(""),
        routing_keys: vec![b(queue)],
        original_expiration: None,
    }
}

#[test]
fn cycle_predicate_follows_is_cycle_v2() {
    use DeadLetterReason::*;
    // A rejection in the cycle keeps the copy.
    let h = [death("b", Expired), death("a", Rejected)];
    assert!(!is_cycle(&h, b"a"));
    assert!(is_cycle(&h, b"b"));
    // The death being recorded is a rejection: nothing is dropped.
    let h = [death("b", Rejected), death("a", Expired)];
    assert!(!is_cycle(&h, b"a"));
    assert!(!is_cycle(&h, b"b"));
    // A rejection older than the target's last death is outside the cycle.
    let h = [
        death("b", Maxlen),
        death("a", DeliveryLimit),
        death("c", Rejected),
        death("a", Rejected),
    ];
    assert!(is_cycle(&h, b"a"));
    assert!(!is_cycle(&h, b"c"));
    assert!(!is_cycle(&h, b"elsewhere"));
    assert!(!is_cycle(&[], b"a"));
    // A reason RabbitMQ does not know (client-forged) is not a rejection.
    let mut odd = death("a", Expired);
    odd.reason = b("forged");
    assert!(is_cycle(&[odd], b"a"));
}

/// Probe step 5a: `x-death` was the string "not an array" and
/// `x-first-death-reason` "forged". 3.10.8 reset `x-death` to the new entry
/// and kept "forged" without adding the other first-death headers; 3.13 has
/// no history (`headers_to_deaths` wants a list), so this is a first death
/// and its annotations replace the forged header.
#[test]
fn x_death_that_is_not_an_array_is_replaced() {
    let h = table(vec![
        ("x-death", s("not an array")),
        ("x-first-death-reason", s("forged")),
        ("x-last-death-queue", s("forged too")),
    ]);
    let routing = Routing::from_publish(ShortStr::from(""), &ShortStr::from("q1"), Some(&h));
    let out = die(
        props(Some(h), None),
        &routing,
        "q1",
        DeadLetterReason::Rejected,
        T0,
        "dlx",
        None,
    );
    let h = headers_of(&out.raw_properties);
    assert_eq!(
        h.get("x-death"),
        Some(&FieldValue::Array(vec![entry(
            None,
            1,
            "rejected",
            "q1",
            T0,
            "",
            &["q1"]
        )]))
    );
    assert_eq!(h.get("x-first-death-reason"), Some(&s("rejected")));
    assert_eq!(h.get("x-first-death-queue"), Some(&s("q1")));
    assert_eq!(h.get("x-last-death-queue"), Some(&s("q1")));
    assert_eq!(h.len(), 7, "one of each name: {:?}", names(&h));
}

/// Probe steps 5b and 5c. 3.10.8 lost a message whose `x-death` array held
/// non-tables, and kept a foreign entry as it was (`count` I 5 became l 6,
/// `time` stayed I 1, `extra` stayed). 3.13 drops the entries it cannot
/// read and rewrites the others with its own keys and types; a valid array,
/// even one left empty, is a history, so no first-death headers are added.
#[test]
fn client_supplied_history_is_read_like_recover_deaths() {
    let foreign = FieldValue::Table(table(vec![
        ("count", FieldValue::I32(5)),
        ("reason", s("rejected")),
        ("queue", s("q1")),
        ("time", FieldValue::I32(1)),
        ("exchange", s("")),
        ("routing-keys", strs(&["x"])),
        ("extra", s("e")),
    ]));
    let h = table(vec![(
        "x-death",
        FieldValue::Array(vec![s("junk"), FieldValue::I32(7), foreign]),
    )]);
    let routing = Routing::from_publish(ShortStr::from(""), &ShortStr::from("q1"), Some(&h));
    let out = die(
        props(Some(h), None),
        &routing,
        "q1",
        DeadLetterReason::Rejected,
        T0,
        "dlx",
        None,
    );
    let h = headers_of(&out.raw_properties);
    assert_eq!(
        h.get("x-death"),
        Some(&FieldValue::Array(vec![entry(
            None,
            6,
            "rejected",
            "q1",
            1,
            "",
            &["x"]
        )]))
    );
    assert_eq!(h.get("x-first-death-reason"), None);
    assert_eq!(h.get("x-last-death-reason"), Some(&s("rejected")));

    let junk_only = table(vec![("x-death", FieldValue::Array(vec![s("junk")]))]);
    let out = die(
        props(Some(junk_only), None),
        &routing,
        "q1",
        DeadLetterReason::Expired,
        T0,
        "dlx",
        None,
    );
    let h = headers_of(&out.raw_properties);
    assert_eq!(
        h.get("x-death"),
        Some(&FieldValue::Array(vec![entry(
            None,
            1,
            "expired",
            "q1",
            T0,
            "",
            &["q1"]
        )]))
    );
    assert_eq!(h.get("x-first-death-reason"), None);
}

#[test]
fn entries_rabbitmq_cannot_use_are_dropped() {
    let good = || {
        vec![
            ("count", FieldValue::I64(2)),
            ("reason", s("expired")),
            ("queue", s("q")),
            ("time", FieldValue::Timestamp(5)),
            ("exchange", s("x")),
            ("routing-keys", strs(&["k"])),
        ]
    };
    assert!(Death::from_table(&table(good())).is_some());
    let with = |key: &str, v: FieldValue| {
        let mut e = good();
        e.retain(|(k, _)| *k != key);
        e.push((key, v));
        Death::from_table(&table(e))
    };
    assert!(with("time", s("5")).is_none(), "time must be an integer");
    assert!(with("count", FieldValue::F64(2.0)).is_none());
    assert!(with("queue", FieldValue::I8(1)).is_none());
    assert!(with("routing-keys", s("k")).is_none());
    assert!(with("routing-keys", FieldValue::Array(vec![FieldValue::Void])).is_none());
    assert!(with("original-expiration", s("ten")).is_none());
    assert!(with("original-expiration", FieldValue::I32(10)).is_none());
    let d = with("original-expiration", s("-010")).unwrap();
    assert_eq!(d.original_expiration, Some(b("-10")));
    // Byte arrays are binaries too; written back as long strings.
    let d = with("queue", FieldValue::Bytes(b("q"))).unwrap();
    assert_eq!(d.queue, b("q"));
    // The last of repeated keys counts, as maps:from_list keeps it.
    let mut e = good();
    e.push(("count", FieldValue::U8(9)));
    assert_eq!(Death::from_table(&table(e)).unwrap().count, 9);
    let mut e = good();
    e.retain(|(k, _)| *k != "exchange");
    assert!(Death::from_table(&table(e)).is_none());
}

#[test]
fn headers_come_out_sorted_with_one_entry_per_name() {
    let h = table(vec![
        ("b", s("first b")),
        ("a", s("a")),
        ("b", s("second b")),
        ("BCC", strs(&["x"])),
        ("BCC", strs(&["y"])),
        ("x-death", s("first")),
        ("x-death", s("second")),
    ]);
    let routing = Routing::from_publish(ShortStr::from(""), &ShortStr::from("q"), Some(&h));
    let out = die(
        props(Some(h), None),
        &routing,
        "q",
        DeadLetterReason::Expired,
        T0,
        "dlx",
        None,
    );
    let h = headers_of(&out.raw_properties);
    // Only the first BCC is stripped on publish; the second survives.
    assert_eq!(
        names(&h),
        vec![
            "BCC",
            "a",
            "b",
            "x-death",
            "x-first-death-exchange",
            "x-first-death-queue",
            "x-first-death-reason",
            "x-last-death-exchange",
            "x-last-death-queue",
            "x-last-death-reason",
        ]
    );
    assert_eq!(h.get("BCC"), Some(&strs(&["y"])));
    assert_eq!(h.get("b"), Some(&s("first b")));
    assert!(matches!(h.get("x-death"), Some(FieldValue::Array(_))));
}

#[test]
fn other_properties_are_kept() {
    let p = BasicProperties {
        content_type: Some(ShortStr::from("text/plain")),
        delivery_mode: Some(2),
        priority: Some(3),
        correlation_id: Some(ShortStr::from("c")),
        expiration: Some(ShortStr::from("5")),
        timestamp: Some(99),
        app_id: Some(ShortStr::from("app")),
        ..Default::default()
    };
    let routing = Routing::from_publish(ShortStr::from(""), &ShortStr::from("q"), None);
    let out = die(
        p.to_bytes(),
        &routing,
        "q",
        DeadLetterReason::Expired,
        T0,
        "dlx",
        None,
    );
    let mut got = decode(&out.raw_properties);
    assert!(got.headers.take().is_some());
    assert_eq!(
        got,
        BasicProperties {
            expiration: None,
            ..p
        }
    );
}

#[test]
fn undecodable_properties_are_an_error() {
    let routing = Routing::from_publish(ShortStr::from(""), &ShortStr::from("q"), None);
    let r = dead_letter(
        Bytes::from_static(&[0x20, 0x00, 0x00]),
        &routing,
        &ShortStr::from("q"),
        DeadLetterReason::Rejected,
        T0,
        &ShortStr::from("dlx"),
        None,
    );
    assert!(r.is_err());
}

#[test]
fn count_wraps_like_a_64_bit_long() {
    let h = table(vec![(
        "x-death",
        FieldValue::Array(vec![FieldValue::Table(table(vec![
            ("count", FieldValue::I64(i64::MAX)),
            ("reason", s("expired")),
            ("queue", s("q")),
            ("time", FieldValue::I64(-1)),
            ("exchange", s("")),
            ("routing-keys", strs(&[])),
        ]))]),
    )]);
    let routing = Routing::from_publish(ShortStr::from(""), &ShortStr::from("q"), Some(&h));
    let out = die(
        props(Some(h), None),
        &routing,
        "q",
        DeadLetterReason::Expired,
        T0,
        "dlx",
        None,
    );
    assert_eq!(out.history[0].count, i64::MIN);
    assert_eq!(out.history[0].time, u64::MAX);
}

fn arb_bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        Just(Bytes::from_static(b"q")),
        Just(Bytes::from_static(b"rejected")),
        Just(Bytes::from_static(b"expired")),
        Just(Bytes::from_static(b"")),
        Just(Bytes::from_static(b"12")),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(Bytes::from),
    ]
}

fn arb_key() -> impl Strategy<Value = ShortStr> {
    prop_oneof![
        Just("x-death"),
        Just("count"),
        Just("reason"),
        Just("queue"),
        Just("time"),
        Just("exchange"),
        Just("routing-keys"),
        Just("original-expiration"),
        Just("CC"),
        Just("BCC"),
        Just("x-first-death-queue"),
        Just("x-last-death-reason"),
        Just("zz"),
        Just(""),
    ]
    .prop_map(ShortStr::from_static)
}

fn arb_value() -> impl Strategy<Value = FieldValue> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i8>().prop_map(FieldValue::I8),
        any::<u8>().prop_map(FieldValue::U8),
        any::<i16>().prop_map(FieldValue::I16),
        any::<i32>().prop_map(FieldValue::I32),
        any::<u32>().prop_map(FieldValue::U32),
        any::<i64>().prop_map(FieldValue::I64),
        any::<u64>().prop_map(FieldValue::Timestamp),
        any::<f64>().prop_map(FieldValue::F64),
        arb_bytes().prop_map(FieldValue::LongStr),
        arb_bytes().prop_map(FieldValue::Bytes),
        Just(FieldValue::Void),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(FieldValue::Array),
            proptest::collection::vec((arb_key(), inner), 0..9)
                .prop_map(|e| FieldValue::Table(FieldTable(e))),
        ]
    })
}

/// A plausible `x-death` entry with some fields missing, mistyped or
/// repeated.
fn arb_entry() -> impl Strategy<Value = FieldValue> {
    (
        proptest::collection::vec((arb_key(), arb_value()), 0..4),
        any::<u8>(),
        prop_oneof![Just("q"), Just("q2")],
        prop_oneof![Just("rejected"), Just("expired"), Just("maxlen")],
    )
        .prop_map(|(extra, mask, queue, reason)| {
            let mut e: Vec<(ShortStr, FieldValue)> = [
                ("count", FieldValue::I32(2)),
                ("reason", s(reason)),
                ("queue", s(queue)),
                ("time", FieldValue::Timestamp(7)),
                ("exchange", s("x")),
                ("routing-keys", strs(&["k"])),
                ("original-expiration", s("10")),
            ]
            .into_iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) == 0)
            .map(|(_, (k, v))| (ShortStr::from(k), v))
            .collect();
            e.extend(extra);
            FieldValue::Table(FieldTable(e))
        })
}

fn arb_headers() -> impl Strategy<Value = Option<FieldTable>> {
    let x_death = prop_oneof![
        arb_value(),
        proptest::collection::vec(prop_oneof![arb_entry(), arb_value()], 0..5)
            .prop_map(FieldValue::Array),
    ];
    proptest::option::of(
        (
            proptest::collection::vec((arb_key(), arb_value()), 0..6),
            proptest::option::of(x_death),
        )
            .prop_map(|(mut entries, x_death)| {
                if let Some(v) = x_death {
                    entries.push((ShortStr::from_static("x-death"), v));
                }
                FieldTable(entries)
            }),
    )
}

fn arb_reason() -> impl Strategy<Value = DeadLetterReason> {
    prop_oneof![
        Just(DeadLetterReason::Rejected),
        Just(DeadLetterReason::Expired),
        Just(DeadLetterReason::Maxlen),
        Just(DeadLetterReason::DeliveryLimit),
    ]
}

/// The shape every output must have, whatever came in.
fn check_output(out: &DeadLettered, queue: &str, reason: DeadLetterReason) {
    let p = decode(&out.raw_properties);
    assert_eq!(p.expiration, None);
    let h = p.headers.expect("headers");
    let names = names(&h);
    assert!(
        names.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()),
        "sorted and unique: {names:?}"
    );
    assert_eq!(h.get("x-last-death-queue"), Some(&s(queue)));
    assert_eq!(h.get("x-last-death-reason"), Some(&s(reason.as_str())));
    let Some(FieldValue::Array(entries)) = h.get("x-death") else {
        panic!("x-death is not an array: {h:?}");
    };
    assert_eq!(entries.len(), out.history.len());
    for (e, d) in entries.iter().zip(&out.history) {
        let FieldValue::Table(t) = e else {
            panic!("entry is not a table: {e:?}")
        };
        assert_eq!(t, &d.to_table());
        let mut keys: Vec<&str> = names_of(t);
        if keys.first() == Some(&"original-expiration") {
            keys.remove(0);
        }
        assert_eq!(
            keys,
            [
                "count",
                "reason",
                "queue",
                "time",
                "exchange",
                "routing-keys"
            ]
        );
        assert!(matches!(t.get("count"), Some(FieldValue::I64(_))));
        assert!(matches!(t.get("time"), Some(FieldValue::Timestamp(_))));
    }
    let front = &out.history[0];
    assert_eq!(front.queue, b(queue));
    assert_eq!(front.reason, b(reason.as_str()));
    // Re-reading what was written gives the same history back.
    assert_eq!(read_history(&h).as_ref(), Some(&out.history));
}

fn names_of(t: &FieldTable) -> Vec<&str> {
    t.iter().map(|(k, _)| k.as_str()).collect()
}

proptest! {
    #[test]
    fn never_panics_on_client_headers(
        headers in arb_headers(),
        expiration in proptest::option::of(prop_oneof![
            Just("60000".to_string()),
            Just("007".to_string()),
            "[-+0-9a]{0,6}",
        ]),
        queue in prop_oneof![Just("q"), Just("q2")],
        reason in arb_reason(),
        dlrk in proptest::option::of(Just("dlrk")),
        now in any::<u64>(),
    ) {
        let raw = props(headers.clone(), expiration.as_deref());
        let routing = Routing::from_publish(ShortStr::from("ex"), &ShortStr::from("rk"), headers.as_ref());
        let out = die(raw, &routing, queue, reason, now, "dlx", dlrk);
        check_output(&out, queue, reason);
        match dlrk {
            Some(k) => prop_assert_eq!(&out.routing.routing_keys, &vec![b(k)]),
            None => prop_assert_eq!(&out.routing.routing_keys, &routing.routing_keys),
        }
        // Dying again in the same queue for the same reason counts it.
        let again = die(out.raw_properties.clone(), &out.routing, queue, reason, now, "dlx", None);
        check_output(&again, queue, reason);
        prop_assert_eq!(again.history.len(), out.history.len());
        prop_assert_eq!(again.history[0].count, out.history[0].count.wrapping_add(1));
        prop_assert_eq!(&again.history[1..], &out.history[1..]);
        // A death anywhere makes the next copy back into that queue a cycle
        // exactly when no rejection happened since.
        let rejected_since = again.history.iter().take_while(|d| d.queue != queue.as_bytes())
            .chain(std::iter::once(&again.history[0]))
            .any(|d| d.reason == "rejected".as_bytes());
        prop_assert_eq!(again.is_cycle(queue.as_bytes()), !rejected_since);
    }
}
