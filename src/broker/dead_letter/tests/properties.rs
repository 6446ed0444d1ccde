//! Property tests: any existing headers, any reason: the output always has the right shape.

use super::*;

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
