//! Unit tests of the record codec: round trips of every kind, the exact
//! layout, zero-copy decoding, and rejection of bad input (with property
//! tests that decoding never panics).

use super::*;
use bytes::BytesMut;
use proptest::prelude::*;

const MAX: u32 = DEFAULT_MAX_RECORD_LEN;

fn q(s: &str) -> ShortStr {
    ShortStr::from(s)
}

fn sample_message() -> Record {
    Record::Message(Message {
        targets: vec![
            Target {
                queue: q("orders"),
                msg_id: 7,
                expires: None,
            },
            Target {
                queue: q("audit"),
                msg_id: 1 << 40,
                expires: None,
            },
        ],
        exchange: q("amq.direct"),
        routing_key: q("order.created"),
        raw_properties: Bytes::from_static(&[0x90, 0x00, 0x02]),
        body: Bytes::from_static(b"hello world"),
    })
}

fn enc(r: &Record) -> Bytes {
    let mut out = BytesMut::new();
    let n = encode(&r.as_ref(), MAX, &mut out).unwrap();
    assert_eq!(n, out.len());
    out.freeze()
}

#[test]
fn round_trip_every_kind() {
    let records = vec![
        sample_message(),
        Record::Ack {
            queue: q("orders"),
            msg_id: 7,
        },
        Record::Purge {
            queue: q("orders"),
            up_to_msg_id: u64::MAX,
        },
        Record::PurgeReady {
            queue: q("orders"),
            up_to_msg_id: 90,
            spared: vec![(3, 5), (40, 41)],
        },
        Record::Returned {
            queue: q("orders"),
            msg_id: 4,
            delivery_count: 3,
        },
        Record::QueueDelete { queue: q("") },
        Record::Metadata {
            payload: Bytes::from_static(b"{\"exchanges\":[]}"),
        },
        Record::Metadata {
            payload: Bytes::new(),
        },
    ];
    for r in records {
        let b = enc(&r);
        let (d, n) = decode(&b, MAX).unwrap();
        assert_eq!(n, b.len());
        assert_eq!(d, r);
    }
}

#[test]
fn layout_of_an_ack() {
    let b = enc(&Record::Ack {
        queue: q("q"),
        msg_id: 0x0102,
    });
    // len = kind(1) + str8(2) + u64(8)
    assert_eq!(&b[0..4], &11u32.to_le_bytes());
    assert_eq!(b[8], RecordKind::Ack as u8);
    assert_eq!(&b[9..11], &[1, b'q']);
    assert_eq!(&b[11..19], &0x0102u64.to_le_bytes());
    assert_eq!(
        u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        crc32c::crc32c(&b[8..])
    );
}

#[test]
fn body_chunks_are_concatenated() {
    let targets = [Target {
        queue: q("a"),
        msg_id: 1,
        expires: None,
    }];
    let ex = q("");
    let rk = q("a");
    let chunks = [
        Bytes::from_static(b"abc"),
        Bytes::new(),
        Bytes::from_static(b"de"),
    ];
    let m = MessageRef {
        targets: &targets,
        exchange: &ex,
        routing_key: &rk,
        raw_properties: &[],
        body: &chunks,
    };
    let mut out = BytesMut::new();
    encode(&m.into(), MAX, &mut out).unwrap();
    let (d, _) = decode(&out.freeze(), MAX).unwrap();
    match d {
        Record::Message(m) => assert_eq!(&m.body[..], b"abcde"),
        other => panic!("decoded {other:?}"),
    }
}

#[test]
fn decoded_fields_share_the_input_buffer() {
    let b = enc(&sample_message());
    let (d, _) = decode(&b, MAX).unwrap();
    let Record::Message(m) = d else {
        panic!("not a message")
    };
    let range = b.as_ptr() as usize..b.as_ptr() as usize + b.len();
    assert!(range.contains(&(m.body.as_ptr() as usize)));
}

#[test]
fn zero_header_is_end_of_data() {
    assert_eq!(check(&[0u8; 64], MAX), Err(RecordError::Zeroes));
    assert_eq!(
        check(&[0u8; 3], MAX),
        Err(RecordError::Truncated { needed: HEADER_LEN })
    );
    assert_eq!(
        check(&[], MAX),
        Err(RecordError::Truncated { needed: HEADER_LEN })
    );
}

#[test]
fn bad_inputs_are_rejected() {
    let b = enc(&sample_message());
    // Truncated.
    assert_eq!(
        check(&b[..b.len() - 1], MAX),
        Err(RecordError::Truncated { needed: b.len() })
    );
    // Length above the bound.
    assert_eq!(
        check(&b, 4),
        Err(RecordError::BadLength((b.len() - 8) as u32))
    );
    // Flipped body byte.
    let mut v = b.to_vec();
    let last = v.len() - 1;
    v[last] ^= 1;
    assert_eq!(check(&v, MAX), Err(RecordError::BadCrc));
    // Unknown kind with a valid crc.
    let mut v = b.to_vec();
    v[8] = 99;
    let crc = crc32c::crc32c(&v[8..]);
    v[4..8].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(
        decode(&Bytes::from(v), MAX).map(|_| ()),
        Err(RecordError::BadKind(99))
    );
}

#[test]
fn valid_crc_but_malformed_payload_is_rejected() {
    // A message whose target count claims more than present.
    let mut payload = vec![RecordKind::Message as u8];
    payload.extend_from_slice(&1000u16.to_le_bytes());
    payload.extend_from_slice(&[0; 5]);
    let mut v = (payload.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    v.extend_from_slice(&payload);
    assert!(matches!(
        decode(&Bytes::from(v), MAX),
        Err(RecordError::Malformed(_))
    ));
    // An ack with trailing bytes.
    let mut payload = vec![RecordKind::Ack as u8, 1, b'q'];
    payload.extend_from_slice(&[0; 9]);
    let mut v = (payload.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    v.extend_from_slice(&payload);
    assert_eq!(
        decode(&Bytes::from(v), MAX).map(|_| ()),
        Err(RecordError::Malformed("trailing bytes"))
    );
}

#[test]
fn encode_rejects_bad_records_without_writing() {
    let ex = q("");
    let m = MessageRef {
        targets: &[],
        exchange: &ex,
        routing_key: &ex,
        raw_properties: &[],
        body: &[],
    };
    let mut out = BytesMut::new();
    assert_eq!(
        encode(&m.into(), MAX, &mut out),
        Err(EncodeError::BadTargetCount(0))
    );
    let big = vec![0u8; 100];
    assert!(matches!(
        encode(&RecordRef::Metadata { payload: &big }, 50, &mut out),
        Err(EncodeError::TooLarge { len: 101, max: 50 })
    ));
    assert!(out.is_empty());
}

fn arb_shortstr() -> impl Strategy<Value = ShortStr> {
    "[a-z.\\-é]{0,40}".prop_map(|s| ShortStr::try_from_string(s).unwrap())
}

fn arb_record() -> impl Strategy<Value = Record> {
    let bytes = |n| proptest::collection::vec(any::<u8>(), 0..n).prop_map(Bytes::from);
    prop_oneof![
        (
            proptest::collection::vec((arb_shortstr(), any::<u64>()), 1..5),
            arb_shortstr(),
            arb_shortstr(),
            bytes(40),
            bytes(300),
            0u8..3,
        )
            .prop_map(|(t, exchange, routing_key, raw_properties, body, kind)| {
                let m = Message {
                    targets: t
                        .into_iter()
                        .map(|(queue, msg_id)| Target {
                            queue,
                            msg_id,
                            expires: None,
                        })
                        .collect(),
                    exchange,
                    routing_key,
                    raw_properties,
                    body,
                };
                match kind {
                    0 => Record::Message(m),
                    1 => Record::Paged(m),
                    _ => Record::Copy(m),
                }
            }),
        (arb_shortstr(), any::<u64>()).prop_map(|(queue, msg_id)| Record::Ack { queue, msg_id }),
        (arb_shortstr(), any::<u64>())
            .prop_map(|(queue, msg_id)| Record::Delivered { queue, msg_id }),
        (arb_shortstr(), any::<u64>()).prop_map(|(queue, up_to_msg_id)| Record::Purge {
            queue,
            up_to_msg_id
        }),
        (
            arb_shortstr(),
            any::<u64>(),
            proptest::collection::vec((any::<u64>(), any::<u64>()), 0..4)
        )
            .prop_map(|(queue, up_to_msg_id, spared)| Record::PurgeReady {
                queue,
                up_to_msg_id,
                spared
            }),
        (arb_shortstr(), any::<u64>(), any::<u32>()).prop_map(|(queue, msg_id, delivery_count)| {
            Record::Returned {
                queue,
                msg_id,
                delivery_count,
            }
        }),
        arb_shortstr().prop_map(|queue| Record::QueueDelete { queue }),
        bytes(200).prop_map(|payload| Record::Metadata { payload }),
    ]
}

proptest! {
    #[test]
    fn prop_round_trip_sequence(records in proptest::collection::vec(arb_record(), 1..8)) {
        let mut out = BytesMut::new();
        for r in &records {
            encode(&r.as_ref(), MAX, &mut out).unwrap();
        }
        let buf = out.freeze();
        let mut pos = 0;
        for r in &records {
            let (d, n) = decode(&buf.slice(pos..), MAX).unwrap();
            prop_assert_eq!(&d, r);
            pos += n;
        }
        prop_assert_eq!(pos, buf.len());
    }

    #[test]
    fn prop_any_truncation_is_detected(r in arb_record(), cut in any::<prop::sample::Index>()) {
        let b = enc(&r);
        let cut = cut.index(b.len());
        let res = decode(&b.slice(..cut), MAX);
        prop_assert!(res.is_err(), "truncated to {} of {} decoded", cut, b.len());
    }

    #[test]
    fn prop_any_single_corruption_is_detected(
        r in arb_record(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let b = enc(&r);
        let mut v = b.to_vec();
        let i = at.index(v.len());
        v[i] ^= flip;
        // Either rejected, or (only if the length field shrank onto a
        // valid prefix — impossible with a crc over the payload) equal.
        match decode(&Bytes::from(v), MAX) {
            Err(_) => {}
            Ok((d, _)) => prop_assert!(false, "corruption at {} accepted: {:?}", i, d),
        }
    }

    #[test]
    fn prop_garbage_never_panics(v in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&Bytes::from(v.clone()), MAX);
        let _ = check(&v, MAX);
    }

    #[test]
    fn prop_garbage_with_valid_crc_never_panics(
        kind in 0u8..7,
        payload in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut body = vec![kind];
        body.extend_from_slice(&payload);
        let mut v = (body.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        v.extend_from_slice(&body);
        let _ = decode(&Bytes::from(v), MAX);
    }
}

#[test]
fn timed_targets_round_trip_and_untimed_records_stay_as_before() {
    let targets = [
        Target {
            queue: q("ttl"),
            msg_id: 3,
            expires: Some(1_700_000_000_000),
        },
        Target {
            queue: q("plain"),
            msg_id: 4,
            expires: None,
        },
    ];
    let exchange = q("x");
    let rk = q("k");
    let body = [Bytes::from_static(b"body")];
    let m = MessageRef {
        targets: &targets,
        exchange: &exchange,
        routing_key: &rk,
        raw_properties: b"",
        body: &body,
    };
    for record in [
        RecordRef::Message(m),
        RecordRef::Paged(m),
        RecordRef::Copy(m),
    ] {
        let mut out = BytesMut::new();
        let n = encode(&record, DEFAULT_MAX_RECORD_LEN, &mut out).unwrap();
        assert_eq!(n, out.len());
        let timed = match record.kind() {
            RecordKind::Message => RecordKind::TimedMessage,
            RecordKind::Copy => RecordKind::TimedCopy,
            _ => RecordKind::TimedPaged,
        };
        assert_eq!(out[HEADER_LEN], timed as u8, "timed kind byte");
        let (rec, used) = decode(&out.freeze(), DEFAULT_MAX_RECORD_LEN).unwrap();
        assert_eq!(used, n);
        assert_eq!(rec.kind(), record.kind());
        let (Record::Message(d) | Record::Paged(d) | Record::Copy(d)) = rec else {
            panic!("a message record");
        };
        assert_eq!(d.targets, targets.to_vec());
    }
    // Without a deadline the record is written exactly as before TTL.
    let plain = [targets[1].clone()];
    let m = MessageRef {
        targets: &plain,
        ..m
    };
    let mut out = BytesMut::new();
    encode(&RecordRef::Message(m), DEFAULT_MAX_RECORD_LEN, &mut out).unwrap();
    assert_eq!(out[HEADER_LEN], RecordKind::Message as u8);
}

#[test]
fn a_record_in_a_vhost_names_it_and_round_trips() {
    let inner = sample_message();
    let vhost = q("v1");
    let mut out = BytesMut::new();
    let n = encode(
        &RecordRef::InVhost {
            vhost: &vhost,
            inner: &inner.as_ref(),
        },
        MAX,
        &mut out,
    )
    .unwrap();
    assert_eq!(n, out.len());
    // kind 12, the vhost as str8, then the inner kind and payload.
    assert_eq!(out[8], RecordKind::InVhost as u8);
    assert_eq!(&out[9..12], &[2, b'v', b'1']);
    assert_eq!(out[12], RecordKind::Message as u8);
    let (d, len) = decode(&out.clone().freeze(), MAX).unwrap();
    assert_eq!(len, out.len());
    assert_eq!(
        d.clone().split_vhost(),
        (Some(vhost.clone()), inner.clone())
    );
    // A record without the wrapper is of `/`.
    assert_eq!(inner.clone().split_vhost(), (None, inner.clone()));
    // Nesting is refused both ways.
    let wrapped = RecordRef::InVhost {
        vhost: &vhost,
        inner: &inner.as_ref(),
    };
    let nested = RecordRef::InVhost {
        vhost: &vhost,
        inner: &wrapped,
    };
    assert_eq!(
        encode(&nested, MAX, &mut BytesMut::new()),
        Err(EncodeError::NestedVhost)
    );
    let mut forged = out.to_vec();
    forged[12] = RecordKind::InVhost as u8;
    let crc = crc32c::crc32c(&forged[8..]);
    forged[4..8].copy_from_slice(&crc.to_le_bytes());
    assert!(decode(&Bytes::from(forged), MAX).is_err());
}

#[test]
fn a_compaction_copy_is_a_message_record_with_its_own_kind() {
    let Record::Message(m) = sample_message() else {
        unreachable!()
    };
    let original = enc(&Record::Message(m.clone()));
    let copy = enc(&Record::Copy(m.clone()));
    assert_eq!(copy[HEADER_LEN], RecordKind::Copy as u8);
    // Same length and payload; only the kind byte (and so the CRC) differ.
    assert_eq!(copy.len(), original.len());
    assert_eq!(&copy[HEADER_LEN + 1..], &original[HEADER_LEN + 1..]);
    let (d, _) = decode(&copy, MAX).unwrap();
    assert_eq!(d, Record::Copy(m));
    // A kind above the ones this version knows is refused, not guessed.
    let mut unknown = copy.to_vec();
    unknown[HEADER_LEN] = 17;
    let crc = crc32c::crc32c(&unknown[HEADER_LEN..]);
    unknown[4..8].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(
        decode(&Bytes::from(unknown), MAX),
        Err(RecordError::BadKind(17))
    );
}
