//! Cycles, and histories clients or older brokers wrote: malformed entries, sorting, other properties, wrap-around.

use super::*;

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
