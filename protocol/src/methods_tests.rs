//! Tests of the generated `protocol::methods`: hand-written byte vectors for
//! a few methods, ids and names of every method, round trips, and arbitrary
//! input that must never panic.

use super::*;
use crate::types::FieldValue;
use bytes::Bytes;
use proptest::prelude::*;

fn encoded(m: &Method) -> Vec<u8> {
    let mut buf = BytesMut::new();
    m.encode(&mut buf);
    buf.to_vec()
}

fn shortstr(v: &mut Vec<u8>, s: &str) {
    v.push(s.len() as u8);
    v.extend_from_slice(s.as_bytes());
}

#[test]
fn connection_start_hand_written() {
    let mut v = vec![0, 10, 0, 10, 0, 9];
    // server-properties: {"product": S "Warren"}
    let mut table = Vec::new();
    shortstr(&mut table, "product");
    table.push(b'S');
    table.extend_from_slice(&6u32.to_be_bytes());
    table.extend_from_slice(b"Warren");
    v.extend_from_slice(&(table.len() as u32).to_be_bytes());
    v.extend_from_slice(&table);
    v.extend_from_slice(&[0, 0, 0, 5]);
    v.extend_from_slice(b"PLAIN");
    v.extend_from_slice(&[0, 0, 0, 5]);
    v.extend_from_slice(b"en_US");

    let m = Method::decode(Bytes::from(v.clone())).unwrap();
    let mut props = FieldTable::new();
    props.insert(
        "product".into(),
        FieldValue::LongStr(Bytes::from_static(b"Warren")),
    );
    let want = Method::ConnectionStart(ConnectionStart {
        version_major: 0,
        version_minor: 9,
        server_properties: props,
        mechanisms: Bytes::from_static(b"PLAIN"),
        locales: Bytes::from_static(b"en_US"),
    });
    assert_eq!(m, want);
    assert_eq!(encoded(&want), v);
    assert_eq!(m.name(), "connection.start");
    assert!(!m.carries_content());
}

#[test]
fn basic_publish_hand_written() {
    // reserved-1 short, exchange "amq.direct", routing key "rk", bits:
    // mandatory (bit 0) and immediate (bit 1).
    let mut v = vec![0, 60, 0, 40, 0, 0];
    shortstr(&mut v, "amq.direct");
    shortstr(&mut v, "rk");
    v.push(0b10);
    let m = Method::decode(Bytes::from(v.clone())).unwrap();
    let want: Method = BasicPublish {
        exchange: "amq.direct".into(),
        routing_key: "rk".into(),
        mandatory: false,
        immediate: true,
    }
    .into();
    assert_eq!(m, want);
    assert_eq!(encoded(&m), v);
    assert!(m.carries_content());
    assert_eq!((m.class_id(), m.method_id()), (60, 40));

    // A non-zero reserved ticket is accepted and dropped.
    let mut v2 = v.clone();
    v2[5] = 7;
    assert_eq!(Method::decode(Bytes::from(v2)).unwrap(), want);
}

#[test]
fn basic_deliver_hand_written() {
    let mut v = vec![0, 60, 0, 60];
    shortstr(&mut v, "amq.ctag-1");
    v.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
    v.push(1);
    shortstr(&mut v, "");
    shortstr(&mut v, "q");
    let m = Method::decode(Bytes::from(v.clone())).unwrap();
    let want: Method = BasicDeliver {
        consumer_tag: "amq.ctag-1".into(),
        delivery_tag: 0x0102_0304_0506_0708,
        redelivered: true,
        exchange: "".into(),
        routing_key: "q".into(),
    }
    .into();
    assert_eq!(m, want);
    assert_eq!(encoded(&m), v);
    assert_eq!(m.name(), "basic.deliver");
}

#[test]
fn queue_declare_with_table_hand_written() {
    let mut v = vec![0, 50, 0, 10, 0, 0];
    shortstr(&mut v, "orders");
    // passive=0 durable=1 exclusive=0 auto-delete=1 no-wait=1
    v.push(0b11010);
    let mut table = Vec::new();
    shortstr(&mut table, "x-message-ttl");
    table.push(b'I');
    table.extend_from_slice(&60000i32.to_be_bytes());
    shortstr(&mut table, "x-queue-type");
    table.push(b'S');
    table.extend_from_slice(&7u32.to_be_bytes());
    table.extend_from_slice(b"classic");
    v.extend_from_slice(&(table.len() as u32).to_be_bytes());
    v.extend_from_slice(&table);

    let m = Method::decode(Bytes::from(v.clone())).unwrap();
    let Method::QueueDeclare(q) = &m else {
        panic!("expected queue.declare, got {m:?}")
    };
    assert_eq!(q.queue, "orders");
    assert!(!q.passive && q.durable && !q.exclusive && q.auto_delete && q.no_wait);
    assert_eq!(
        q.arguments.get("x-message-ttl"),
        Some(&FieldValue::I32(60000))
    );
    assert_eq!(
        q.arguments.get("x-queue-type").and_then(|v| v.as_str()),
        Some("classic")
    );
    assert_eq!(encoded(&m), v);
}

#[test]
fn reserved_fields_are_written_as_zero() {
    // connection.open: vhost, reserved shortstr (empty), reserved bit.
    let m: Method = ConnectionOpen {
        virtual_host: "/".into(),
    }
    .into();
    assert_eq!(encoded(&m), vec![0, 10, 0, 40, 1, b'/', 0, 0]);
    // channel.open-ok: reserved longstr.
    assert_eq!(
        encoded(&ChannelOpenOk.into()),
        vec![0, 20, 0, 11, 0, 0, 0, 0]
    );
    // Clients (e.g. old ones) may send a non-empty reserved shortstr.
    let m = Method::decode(Bytes::from_static(&[0, 20, 0, 10, 2, b'x', b'y'])).unwrap();
    assert_eq!(m, Method::ChannelOpen(ChannelOpen));
}

#[test]
fn every_method_has_consistent_ids_names_and_round_trips() {
    let all = all_default_methods();
    assert_eq!(all.len(), 64);
    let mut seen = std::collections::HashSet::new();
    for m in &all {
        assert!(seen.insert((m.class_id(), m.method_id())), "{m:?}");
        assert_eq!(method_name(m.class_id(), m.method_id()), Some(m.name()));
        let (class, _) = m.name().split_once('.').unwrap();
        assert_eq!(
            class,
            match m.class_id() {
                10 => "connection",
                20 => "channel",
                40 => "exchange",
                50 => "queue",
                60 => "basic",
                85 => "confirm",
                90 => "tx",
                other => panic!("unexpected class {other}"),
            }
        );
        let bytes = encoded(m);
        assert_eq!(&bytes[..2], &m.class_id().to_be_bytes());
        assert_eq!(&bytes[2..4], &m.method_id().to_be_bytes());
        assert_eq!(&Method::decode(Bytes::from(bytes.clone())).unwrap(), m);

        // Trailing garbage is refused, naming the method.
        let mut long = bytes.clone();
        long.push(0);
        let err = Method::decode(Bytes::from(long)).unwrap_err();
        assert_eq!(err.method_ids(), Some((m.class_id(), m.method_id())));
        assert_eq!(err.reply_code(), 501);

        // Every strict prefix of a method with arguments is truncated.
        for cut in 4..bytes.len() {
            assert!(Method::decode(Bytes::copy_from_slice(&bytes[..cut])).is_err());
        }
    }
    let content: Vec<_> = all
        .iter()
        .filter(|m| m.carries_content())
        .map(|m| m.name())
        .collect();
    assert_eq!(
        content,
        [
            "basic.publish",
            "basic.return",
            "basic.deliver",
            "basic.get_ok"
        ]
    );
}

#[test]
fn unknown_and_short_method_payloads() {
    let err = Method::decode(Bytes::from_static(&[0, 30, 0, 10])).unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnknownMethod {
            class_id: 30,
            method_id: 10
        }
    );
    assert_eq!(err.reply_code(), 540);
    assert!(Method::decode(Bytes::from_static(&[0, 60, 0])).is_err());
    assert!(Method::decode(Bytes::new()).is_err());
}

#[test]
fn invalid_utf8_in_shortstr_argument() {
    let v = vec![0, 50, 0, 10, 0, 0, 1, 0xFF, 0, 0, 0, 0, 0];
    let err = Method::decode(Bytes::from(v)).unwrap_err();
    // RabbitMQ's reply names no method (measured against 3.10).
    assert_eq!(err.method_ids(), None);
    assert_eq!(
        err.reply_text(),
        "FRAME_ERROR - Malformed UTF-8 in shortstr"
    );
}

// --- property tests ---------------------------------------------------------

fn short() -> impl Strategy<Value = ShortStr> {
    "[a-zA-Z0-9._:-]{0,30}".prop_map(|s| ShortStr::try_from_string(s).unwrap())
}

fn long() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}

fn table() -> impl Strategy<Value = FieldTable> {
    crate::wire::tests::field_table()
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        (any::<u8>(), any::<u8>(), table(), long(), long()).prop_map(|(a, b, t, m, l)| {
            ConnectionStart {
                version_major: a,
                version_minor: b,
                server_properties: t,
                mechanisms: m,
                locales: l,
            }
            .into()
        }),
        (table(), short(), long(), short()).prop_map(|(t, m, r, l)| {
            ConnectionStartOk {
                client_properties: t,
                mechanism: m,
                response: r,
                locale: l,
            }
            .into()
        }),
        (any::<u16>(), any::<u32>(), any::<u16>()).prop_map(|(c, f, h)| {
            ConnectionTuneOk {
                channel_max: c,
                frame_max: f,
                heartbeat: h,
            }
            .into()
        }),
        (any::<u16>(), short(), any::<u16>(), any::<u16>()).prop_map(|(c, t, k, m)| {
            ChannelClose {
                reply_code: c,
                reply_text: t,
                class_id: k,
                method_id: m,
            }
            .into()
        }),
        (short(), short(), any::<[bool; 5]>(), table()).prop_map(|(e, k, b, a)| {
            ExchangeDeclare {
                exchange: e,
                kind: k,
                passive: b[0],
                durable: b[1],
                auto_delete: b[2],
                internal: b[3],
                no_wait: b[4],
                arguments: a,
            }
            .into()
        }),
        (short(), any::<[bool; 5]>(), table()).prop_map(|(q, b, a)| {
            QueueDeclare {
                queue: q,
                passive: b[0],
                durable: b[1],
                exclusive: b[2],
                auto_delete: b[3],
                no_wait: b[4],
                arguments: a,
            }
            .into()
        }),
        (short(), any::<u32>(), any::<u32>()).prop_map(|(q, m, c)| {
            QueueDeclareOk {
                queue: q,
                message_count: m,
                consumer_count: c,
            }
            .into()
        }),
        (short(), short(), short(), any::<bool>(), table()).prop_map(|(q, e, r, n, a)| {
            QueueBind {
                queue: q,
                exchange: e,
                routing_key: r,
                no_wait: n,
                arguments: a,
            }
            .into()
        }),
        (any::<u32>(), any::<u16>(), any::<bool>()).prop_map(|(s, c, g)| {
            BasicQos {
                prefetch_size: s,
                prefetch_count: c,
                global: g,
            }
            .into()
        }),
        (short(), short(), any::<[bool; 4]>(), table()).prop_map(|(q, c, b, a)| {
            BasicConsume {
                queue: q,
                consumer_tag: c,
                no_local: b[0],
                no_ack: b[1],
                exclusive: b[2],
                no_wait: b[3],
                arguments: a,
            }
            .into()
        }),
        (short(), short(), any::<bool>(), any::<bool>()).prop_map(|(e, r, m, i)| {
            BasicPublish {
                exchange: e,
                routing_key: r,
                mandatory: m,
                immediate: i,
            }
            .into()
        }),
        (short(), any::<u64>(), any::<bool>(), short(), short()).prop_map(|(c, t, r, e, k)| {
            BasicDeliver {
                consumer_tag: c,
                delivery_tag: t,
                redelivered: r,
                exchange: e,
                routing_key: k,
            }
            .into()
        }),
        (any::<u64>(), any::<bool>(), short(), short(), any::<u32>()).prop_map(
            |(t, r, e, k, c)| {
                BasicGetOk {
                    delivery_tag: t,
                    redelivered: r,
                    exchange: e,
                    routing_key: k,
                    message_count: c,
                }
                .into()
            }
        ),
        (any::<u64>(), any::<bool>(), any::<bool>()).prop_map(|(t, m, r)| {
            BasicNack {
                delivery_tag: t,
                multiple: m,
                requeue: r,
            }
            .into()
        }),
        (long(), short()).prop_map(|(s, r)| {
            ConnectionUpdateSecret {
                new_secret: s,
                reason: r,
            }
            .into()
        }),
        any::<bool>().prop_map(|n| ConfirmSelect { nowait: n }.into()),
    ]
}

proptest! {
    #[test]
    fn methods_round_trip(m in method()) {
        let bytes = Bytes::from(encoded(&m));
        prop_assert_eq!(Method::decode(bytes).unwrap(), m);
    }

    #[test]
    fn arbitrary_method_payloads_never_panic(
        class in prop_oneof![Just(10u16), Just(20), Just(40), Just(50), Just(60), Just(85), Just(90), any::<u16>()],
        method in prop_oneof![0u16..130, any::<u16>()],
        args in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let mut v = class.to_be_bytes().to_vec();
        v.extend_from_slice(&method.to_be_bytes());
        v.extend_from_slice(&args);
        match Method::decode(Bytes::from(v.clone())) {
            // Whatever decodes re-encodes to a payload no longer than the input
            // (reserved fields shrink to empty; nothing grows).
            Ok(m) => prop_assert!(encoded(&m).len() <= v.len()),
            Err(e) => prop_assert!(matches!(e.reply_code(), 501 | 540)),
        }
    }
}
