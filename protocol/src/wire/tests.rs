//! Unit and property tests of the wire primitives; the field value and
//! table strategies are shared with other modules' tests.

use super::*;
use crate::types::{Decimal, FieldTable, FieldValue, ShortStr};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

fn table_bytes(entries: &[u8]) -> Bytes {
    let mut v = (entries.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(entries);
    Bytes::from(v)
}

#[test]
fn every_field_type_decodes_from_hand_written_bytes() {
    let mut e: Vec<u8> = Vec::new();
    let key = |e: &mut Vec<u8>, k: &str, tag: u8| {
        e.push(k.len() as u8);
        e.extend_from_slice(k.as_bytes());
        e.push(tag);
    };
    key(&mut e, "t", b't');
    e.push(1);
    key(&mut e, "b", b'b');
    e.push(0xFF);
    key(&mut e, "B", b'B');
    e.push(0xFF);
    key(&mut e, "s", b's');
    e.extend_from_slice(&[0xFF, 0xFE]);
    key(&mut e, "u", b'u');
    e.extend_from_slice(&[0xFF, 0xFE]);
    key(&mut e, "I", b'I');
    e.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFD]);
    key(&mut e, "i", b'i');
    e.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFD]);
    key(&mut e, "l", b'l');
    e.extend_from_slice(&(-5i64).to_be_bytes());
    key(&mut e, "L", b'L');
    e.extend_from_slice(&7i64.to_be_bytes());
    key(&mut e, "f", b'f');
    e.extend_from_slice(&1.5f32.to_bits().to_be_bytes());
    key(&mut e, "d", b'd');
    e.extend_from_slice(&(-2.25f64).to_bits().to_be_bytes());
    key(&mut e, "D", b'D');
    e.extend_from_slice(&[2, 0, 0, 0x30, 0x39]);
    key(&mut e, "S", b'S');
    e.extend_from_slice(&[0, 0, 0, 2, b'h', b'i']);
    key(&mut e, "A", b'A');
    e.extend_from_slice(&[0, 0, 0, 4, b'V', b't', 0, b'V']);
    key(&mut e, "T", b'T');
    e.extend_from_slice(&1_700_000_000u64.to_be_bytes());
    key(&mut e, "F", b'F');
    e.extend_from_slice(&[0, 0, 0, 4, 1, b'k', b'B', 9]);
    key(&mut e, "V", b'V');
    key(&mut e, "x", b'x');
    e.extend_from_slice(&[0, 0, 0, 3, 0, 0xFF, 0x80]);

    let raw = table_bytes(&e);
    let mut buf = raw.clone();
    let table = get_table(&mut buf).unwrap();
    assert!(buf.is_empty());

    let expected = FieldTable(vec![
        ("t".into(), FieldValue::Bool(true)),
        ("b".into(), FieldValue::I8(-1)),
        ("B".into(), FieldValue::U8(255)),
        ("s".into(), FieldValue::I16(-2)),
        ("u".into(), FieldValue::U16(0xFFFE)),
        ("I".into(), FieldValue::I32(-3)),
        ("i".into(), FieldValue::U32(0xFFFF_FFFD)),
        ("l".into(), FieldValue::I64(-5)),
        ("L".into(), FieldValue::I64(7)),
        ("f".into(), FieldValue::F32(1.5)),
        ("d".into(), FieldValue::F64(-2.25)),
        (
            "D".into(),
            FieldValue::Decimal(Decimal {
                scale: 2,
                value: 12345,
            }),
        ),
        ("S".into(), FieldValue::LongStr(Bytes::from_static(b"hi"))),
        (
            "A".into(),
            FieldValue::Array(vec![
                FieldValue::Void,
                FieldValue::Bool(false),
                FieldValue::Void,
            ]),
        ),
        ("T".into(), FieldValue::Timestamp(1_700_000_000)),
        (
            "F".into(),
            FieldValue::Table(FieldTable(vec![("k".into(), FieldValue::U8(9))])),
        ),
        ("V".into(), FieldValue::Void),
        (
            "x".into(),
            FieldValue::Bytes(Bytes::from_static(&[0, 0xFF, 0x80])),
        ),
    ]);
    assert_eq!(table, expected);

    // skip_table accepts exactly the same bytes and consumes all of them.
    let mut again: &[u8] = &raw;
    skip_table(&mut again).unwrap();
    assert!(again.is_empty());

    // Re-encoding is byte-identical except that 'L' becomes 'l'.
    let mut out = BytesMut::new();
    put_table(&mut out, &table);
    let mut want = raw.to_vec();
    let l_pos = want
        .windows(3)
        .position(|w| w == [1, b'L', b'L'])
        .expect("L entry present");
    want[l_pos + 2] = b'l';
    assert_eq!(&out[..], &want[..]);
}

#[test]
fn bad_tag_is_rejected_with_frame_error() {
    let raw = table_bytes(&[1, b'k', b'Q', 0]);
    let err = get_table(&mut raw.clone()).unwrap_err();
    assert_eq!(err, DecodeError::BadFieldType(b'Q'));
    assert_eq!(err.reply_code(), 501);
    assert_eq!(skip_table(&mut &raw[..]).unwrap_err(), err);
}

#[test]
fn length_beyond_input_is_truncated_not_allocated() {
    // Table claims 4 GiB; only 3 bytes follow.
    let mut buf = Bytes::from_static(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]);
    assert_eq!(
        get_table(&mut buf).unwrap_err(),
        DecodeError::Truncated {
            needed: 0xFFFF_FFFF,
            available: 3
        }
    );
    // longstr inside a table claiming more than the table holds.
    let raw = table_bytes(&[1, b'k', b'S', 0, 0, 0, 9, b'a']);
    assert!(matches!(
        get_table(&mut raw.clone()),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn invalid_utf8_key_is_rejected() {
    let raw = table_bytes(&[1, 0xFF, b'V']);
    assert_eq!(
        get_table(&mut raw.clone()).unwrap_err(),
        DecodeError::InvalidUtf8
    );
    assert_eq!(
        skip_table(&mut &raw[..]).unwrap_err(),
        DecodeError::InvalidUtf8
    );
    let mut s = Bytes::from_static(&[2, 0xC3, 0x28]);
    assert_eq!(get_shortstr(&mut s).unwrap_err(), DecodeError::InvalidUtf8);
}

#[test]
fn nesting_is_bounded() {
    // MAX_NESTING_DEPTH - 1 nested tables inside the top one are fine...
    fn nested(levels: usize) -> FieldTable {
        let mut t = FieldTable::new();
        for _ in 0..levels {
            t = FieldTable(vec![("n".into(), FieldValue::Table(t))]);
        }
        t
    }
    let mut ok = BytesMut::new();
    put_table(&mut ok, &nested(MAX_NESTING_DEPTH - 1));
    let ok = ok.freeze();
    assert_eq!(
        get_table(&mut ok.clone()).unwrap(),
        nested(MAX_NESTING_DEPTH - 1)
    );
    skip_table(&mut &ok[..]).unwrap();
    // ...one more is not.
    let mut deep = BytesMut::new();
    put_table(&mut deep, &nested(MAX_NESTING_DEPTH));
    let deep = deep.freeze();
    assert_eq!(
        get_table(&mut deep.clone()).unwrap_err(),
        DecodeError::NestingTooDeep
    );
    assert_eq!(
        skip_table(&mut &deep[..]).unwrap_err(),
        DecodeError::NestingTooDeep
    );
}

#[test]
fn shortstr_is_zero_copy() {
    let raw = Bytes::from_static(b"\x03abcREST");
    let mut buf = raw.clone();
    let s = get_shortstr(&mut buf).unwrap();
    assert_eq!(s, "abc");
    assert_eq!(s.as_bytes().as_ptr(), raw[1..].as_ptr());
    assert_eq!(&buf[..], b"REST");
}

#[test]
fn primitives_report_truncation() {
    assert!(get_u16(&mut Bytes::from_static(&[1])).is_err());
    assert!(get_u32(&mut Bytes::from_static(&[1, 2, 3])).is_err());
    assert!(get_u64(&mut Bytes::from_static(&[0; 7])).is_err());
    assert!(get_longstr(&mut Bytes::from_static(&[0, 0, 0, 2, 1])).is_err());
    assert_eq!(
        get_u64(&mut Bytes::from_static(&[0, 0, 0, 0, 0, 0, 1, 0])).unwrap(),
        256
    );
}

// --- property tests -----------------------------------------------------

fn shortstr() -> impl Strategy<Value = ShortStr> {
    proptest::string::string_regex("[a-zA-Z0-9._ -]{0,12}|\\PC{0,4}")
        .unwrap()
        .prop_filter_map("short", ShortStr::try_from_string)
}

fn bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..16).prop_map(Bytes::from)
}

pub(crate) fn field_value() -> impl Strategy<Value = FieldValue> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i8>().prop_map(FieldValue::I8),
        any::<u8>().prop_map(FieldValue::U8),
        any::<i16>().prop_map(FieldValue::I16),
        any::<u16>().prop_map(FieldValue::U16),
        any::<i32>().prop_map(FieldValue::I32),
        any::<u32>().prop_map(FieldValue::U32),
        any::<i64>().prop_map(FieldValue::I64),
        any::<f32>()
            .prop_filter("NaN != NaN", |f| !f.is_nan())
            .prop_map(FieldValue::F32),
        any::<f64>()
            .prop_filter("NaN != NaN", |f| !f.is_nan())
            .prop_map(FieldValue::F64),
        (any::<u8>(), any::<u32>())
            .prop_map(|(scale, value)| FieldValue::Decimal(Decimal { scale, value })),
        bytes().prop_map(FieldValue::LongStr),
        any::<u64>().prop_map(FieldValue::Timestamp),
        Just(FieldValue::Void),
        bytes().prop_map(FieldValue::Bytes),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(FieldValue::Array),
            proptest::collection::vec((shortstr(), inner), 0..6)
                .prop_map(|e| FieldValue::Table(FieldTable(e))),
        ]
    })
}

pub(crate) fn field_table() -> impl Strategy<Value = FieldTable> {
    proptest::collection::vec((shortstr(), field_value()), 0..8).prop_map(FieldTable)
}

proptest! {
    #[test]
    fn table_round_trips(table in field_table()) {
        let mut out = BytesMut::new();
        put_table(&mut out, &table);
        let encoded = out.freeze();
        let mut buf = encoded.clone();
        prop_assert_eq!(get_table(&mut buf).unwrap(), table);
        prop_assert!(buf.is_empty());
        let mut buf: &[u8] = &encoded;
        skip_table(&mut buf).unwrap();
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn array_round_trips(values in proptest::collection::vec(field_value(), 0..8)) {
        let mut out = BytesMut::new();
        put_array(&mut out, &values);
        let mut buf = out.freeze();
        prop_assert_eq!(get_array(&mut buf).unwrap(), values);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let input = Bytes::from(data);
        let mut a = input.clone();
        let parsed = get_table(&mut a);
        let mut b: &[u8] = &input;
        let skipped = skip_table(&mut b);
        // The validating skipper and the parser agree on what is valid.
        prop_assert_eq!(parsed.is_ok(), skipped.is_ok());
        if parsed.is_ok() {
            prop_assert_eq!(a.len(), b.len());
        }
        let _ = get_array(&mut input.clone());
        let _ = get_field_value(&mut input.clone());
    }
}

#[test]
fn a_table_holds_at_most_max_table_values_values_nested_ones_included() {
    use crate::wire::{skip_table, MAX_TABLE_VALUES};
    // An array of one-octet void values: the cheapest value there is.
    let table = |values: usize| {
        let mut entry = vec![1, b'a', b'A'];
        entry.extend_from_slice(&(values as u32).to_be_bytes());
        entry.extend(std::iter::repeat_n(b'V', values));
        let mut t = (entry.len() as u32).to_be_bytes().to_vec();
        t.extend(entry);
        t
    };
    // The array itself is one value.
    let ok = table(MAX_TABLE_VALUES - 1);
    assert!(get_table(&mut Bytes::from(ok.clone())).is_ok());
    assert!(skip_table(&mut &ok[..]).is_ok());
    let over = table(MAX_TABLE_VALUES);
    assert_eq!(
        get_table(&mut Bytes::from(over.clone())),
        Err(DecodeError::TooManyValues)
    );
    assert_eq!(skip_table(&mut &over[..]), Err(DecodeError::TooManyValues));
}

#[test]
fn every_empty_shortstr_points_at_a_real_byte() {
    // An empty `Bytes` points at 0x1; comparing two of them with glibc's
    // AVX-512 memcmp took a microcode assist (see `ShortStr`).
    let mut decoded = Bytes::from_static(&[0, b'x']);
    let empties = [
        get_shortstr(&mut decoded).unwrap(),
        ShortStr::EMPTY,
        ShortStr::default(),
        ShortStr::from(""),
        ShortStr::from_static(""),
        ShortStr::from_bytes(Bytes::new()).unwrap(),
        ShortStr::try_from_string(String::new()).unwrap(),
    ];
    let at = ShortStr::EMPTY.as_bytes().as_ptr();
    assert!(at as usize >= 4096, "EMPTY points into page 0: {at:p}");
    for (i, e) in empties.iter().enumerate() {
        assert!(e.is_empty(), "{i}");
        assert_eq!(e.as_bytes().as_ptr(), at, "{i}");
        assert_eq!(e, &ShortStr::EMPTY, "{i}");
    }
    assert_eq!(decoded.as_ref(), b"x", "the length octet alone was read");
}

#[test]
fn shortstrs_compare_by_length_then_bytes() {
    let a = ShortStr::from("abc");
    assert_eq!(a, ShortStr::from_bytes(Bytes::from_static(b"abc")).unwrap());
    assert_ne!(a, ShortStr::from("abd"));
    assert_ne!(a, ShortStr::from("ab"));
    assert_ne!(a, ShortStr::EMPTY);
    assert!(ShortStr::EMPTY < a);
}
