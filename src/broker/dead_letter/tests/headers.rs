//! The headers a death writes: x-death entries, first/last-death headers, expiration, routing keys, CC/BCC.

use super::*;

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
