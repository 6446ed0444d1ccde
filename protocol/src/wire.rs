//! Wire encoding and decoding of AMQP 0-9-1 primitives: integers, short and
//! long strings, field tables and field arrays, plus `DecodeError`, the
//! error every decoder in `protocol` returns.
//!
//! Decoders read from the front of a `&mut Bytes` and consume what they read.
//! Strings and byte values are zero-copy slices of the input (`split_to`).
//! Every length field is checked against the bytes actually present before
//! anything is sliced or allocated, and table/array nesting is bounded by
//! [`MAX_NESTING_DEPTH`], so hostile input can neither panic nor exhaust
//! memory. Encoders append to a `BytesMut` and cannot fail.
//!
//! Field value tags are RabbitMQ's (`rabbit_binary_parser` /
//! `rabbit_binary_generator`): `t b B s u I i l f d D S A T F V x`; `L` is
//! accepted on input as a signed 64-bit integer (as RabbitMQ does) and
//! re-encoded as `l`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::fmt;

use crate::code;
use crate::types::{Decimal, FieldTable, FieldValue, LongStr, ShortStr};

/// Deepest nesting of tables/arrays inside a table that decoding accepts.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Why a method, table, property list or header payload could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before a fixed-size value or a length-prefixed value
    /// (whose length field said `needed` bytes) was complete.
    Truncated { needed: usize, available: usize },
    /// A field table or array value had a type tag RabbitMQ does not know.
    BadFieldType(u8),
    /// A shortstr (method argument, property, or table key) was not UTF-8.
    InvalidUtf8,
    /// Tables/arrays were nested deeper than [`MAX_NESTING_DEPTH`].
    NestingTooDeep,
    /// A method frame named a class/method pair that AMQP 0-9-1 (with
    /// RabbitMQ's extensions) does not define.
    UnknownMethod { class_id: u16, method_id: u16 },
    /// Bytes were left over after the last argument or property.
    TrailingBytes { count: usize },
    /// A property flag word set a bit for a property the class does not have.
    BadPropertyFlags { word: usize, flags: u16 },
    /// The arguments of a known method were malformed; `source` says how.
    InMethod {
        class_id: u16,
        method_id: u16,
        name: &'static str,
        source: Box<DecodeError>,
    },
}

impl DecodeError {
    /// The AMQP reply code to close the connection with.
    ///
    /// RabbitMQ reports undecodable method arguments, malformed tables and
    /// malformed UTF-8 as `FRAME_ERROR` (501, `rabbit_misc:frame_error/2`),
    /// so Warren does too. An unknown class/method id makes RabbitMQ's
    /// reader crash and drop the socket; Warren closes politely with
    /// `NOT_IMPLEMENTED` (540) instead.
    pub fn reply_code(&self) -> u16 {
        match self {
            DecodeError::UnknownMethod { .. } => code::NOT_IMPLEMENTED,
            DecodeError::InMethod { source, .. } => source.reply_code(),
            _ => code::FRAME_ERROR,
        }
    }

    /// The reply text, prefixed with the code's name as RabbitMQ does.
    pub fn reply_text(&self) -> String {
        format!("{} - {}", code::name(self.reply_code()), self)
    }

    /// The class and method ids of the method being decoded, if known (for
    /// the `class-id`/`method-id` fields of `connection.close`).
    pub fn method_ids(&self) -> Option<(u16, u16)> {
        match *self {
            DecodeError::UnknownMethod {
                class_id,
                method_id,
            }
            | DecodeError::InMethod {
                class_id,
                method_id,
                ..
            } => Some((class_id, method_id)),
            _ => None,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { needed, available } => write!(
                f,
                "truncated input: needed {needed} octets, {available} available"
            ),
            DecodeError::BadFieldType(t) => {
                if t.is_ascii_graphic() {
                    write!(f, "unknown field value type '{}'", *t as char)
                } else {
                    write!(f, "unknown field value type {t}")
                }
            }
            DecodeError::InvalidUtf8 => f.write_str("Malformed UTF-8 in shortstr"),
            DecodeError::NestingTooDeep => write!(
                f,
                "field tables nested deeper than {MAX_NESTING_DEPTH} levels"
            ),
            DecodeError::UnknownMethod {
                class_id,
                method_id,
            } => write!(f, "unknown method: class {class_id}, method {method_id}"),
            DecodeError::TrailingBytes { count } => {
                write!(f, "{count} unexpected trailing octets")
            }
            DecodeError::BadPropertyFlags { word, flags } => write!(
                f,
                "property flags word {word} ({flags:#06x}) names unknown properties"
            ),
            DecodeError::InMethod { name, source, .. } => {
                write!(f, "cannot decode '{name}': {source}")
            }
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::InMethod { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding primitives.

#[inline]
fn need(buf: &Bytes, n: usize) -> Result<(), DecodeError> {
    if buf.len() < n {
        return Err(DecodeError::Truncated {
            needed: n,
            available: buf.len(),
        });
    }
    Ok(())
}

#[inline]
pub fn get_u8(buf: &mut Bytes) -> Result<u8, DecodeError> {
    need(buf, 1)?;
    Ok(buf.get_u8())
}

#[inline]
pub fn get_u16(buf: &mut Bytes) -> Result<u16, DecodeError> {
    need(buf, 2)?;
    Ok(buf.get_u16())
}

#[inline]
pub fn get_u32(buf: &mut Bytes) -> Result<u32, DecodeError> {
    need(buf, 4)?;
    Ok(buf.get_u32())
}

#[inline]
pub fn get_u64(buf: &mut Bytes) -> Result<u64, DecodeError> {
    need(buf, 8)?;
    Ok(buf.get_u64())
}

/// Splits exactly `len` bytes off the front (zero-copy).
#[inline]
pub fn get_bytes(buf: &mut Bytes, len: usize) -> Result<Bytes, DecodeError> {
    need(buf, len)?;
    Ok(buf.split_to(len))
}

/// Drops exactly `len` bytes off the front.
#[inline]
pub fn skip(buf: &mut Bytes, len: usize) -> Result<(), DecodeError> {
    need(buf, len)?;
    buf.advance(len);
    Ok(())
}

/// A `shortstr`: one length octet, then that many bytes of UTF-8.
#[inline]
pub fn get_shortstr(buf: &mut Bytes) -> Result<ShortStr, DecodeError> {
    let len = get_u8(buf)? as usize;
    let bytes = get_bytes(buf, len)?;
    ShortStr::from_bytes(bytes).ok_or(DecodeError::InvalidUtf8)
}

/// Skips a `shortstr` without validating its contents (reserved fields).
#[inline]
pub fn skip_shortstr(buf: &mut Bytes) -> Result<(), DecodeError> {
    let len = get_u8(buf)? as usize;
    skip(buf, len)
}

/// A `longstr`: a 32-bit length, then that many bytes (any content).
#[inline]
pub fn get_longstr(buf: &mut Bytes) -> Result<LongStr, DecodeError> {
    let len = get_u32(buf)? as usize;
    get_bytes(buf, len)
}

/// Skips a `longstr` (reserved fields).
#[inline]
pub fn skip_longstr(buf: &mut Bytes) -> Result<(), DecodeError> {
    let len = get_u32(buf)? as usize;
    skip(buf, len)
}

/// A field table: a 32-bit byte length, then `name value` pairs.
pub fn get_table(buf: &mut Bytes) -> Result<FieldTable, DecodeError> {
    get_table_at(buf, 0)
}

/// A field array: a 32-bit byte length, then values.
pub fn get_array(buf: &mut Bytes) -> Result<Vec<FieldValue>, DecodeError> {
    get_array_at(buf, 0)
}

/// One tagged field value (tag octet, then the value).
pub fn get_field_value(buf: &mut Bytes) -> Result<FieldValue, DecodeError> {
    get_field_value_at(buf, 0)
}

fn get_table_at(buf: &mut Bytes, depth: usize) -> Result<FieldTable, DecodeError> {
    if depth >= MAX_NESTING_DEPTH {
        return Err(DecodeError::NestingTooDeep);
    }
    let len = get_u32(buf)? as usize;
    let mut body = get_bytes(buf, len)?;
    // No pre-allocation from the length: every entry consumes at least two
    // octets of input, so the vector is bounded by the input size.
    let mut entries = Vec::new();
    while !body.is_empty() {
        let key = get_shortstr(&mut body)?;
        let value = get_field_value_at(&mut body, depth)?;
        entries.push((key, value));
    }
    Ok(FieldTable(entries))
}

fn get_array_at(buf: &mut Bytes, depth: usize) -> Result<Vec<FieldValue>, DecodeError> {
    if depth >= MAX_NESTING_DEPTH {
        return Err(DecodeError::NestingTooDeep);
    }
    let len = get_u32(buf)? as usize;
    let mut body = get_bytes(buf, len)?;
    let mut values = Vec::new();
    while !body.is_empty() {
        values.push(get_field_value_at(&mut body, depth)?);
    }
    Ok(values)
}

fn get_field_value_at(buf: &mut Bytes, depth: usize) -> Result<FieldValue, DecodeError> {
    let tag = get_u8(buf)?;
    Ok(match tag {
        b't' => FieldValue::Bool(get_u8(buf)? != 0),
        b'b' => FieldValue::I8(get_u8(buf)? as i8),
        b'B' => FieldValue::U8(get_u8(buf)?),
        b's' => FieldValue::I16(get_u16(buf)? as i16),
        b'u' => FieldValue::U16(get_u16(buf)?),
        b'I' => FieldValue::I32(get_u32(buf)? as i32),
        b'i' => FieldValue::U32(get_u32(buf)?),
        b'l' | b'L' => FieldValue::I64(get_u64(buf)? as i64),
        b'f' => FieldValue::F32(f32::from_bits(get_u32(buf)?)),
        b'd' => FieldValue::F64(f64::from_bits(get_u64(buf)?)),
        b'D' => {
            need(buf, 5)?;
            let scale = buf.get_u8();
            let value = buf.get_u32();
            FieldValue::Decimal(Decimal { scale, value })
        }
        b'S' => FieldValue::LongStr(get_longstr(buf)?),
        b'A' => FieldValue::Array(get_array_at(buf, depth + 1)?),
        b'T' => FieldValue::Timestamp(get_u64(buf)?),
        b'F' => FieldValue::Table(get_table_at(buf, depth + 1)?),
        b'V' => FieldValue::Void,
        b'x' => FieldValue::Bytes(get_longstr(buf)?),
        other => return Err(DecodeError::BadFieldType(other)),
    })
}

/// Splits `len` bytes off the front of a slice cursor.
#[inline]
fn take<'a>(buf: &mut &'a [u8], len: usize) -> Result<&'a [u8], DecodeError> {
    if buf.len() < len {
        return Err(DecodeError::Truncated {
            needed: len,
            available: buf.len(),
        });
    }
    let (head, tail) = buf.split_at(len);
    *buf = tail;
    Ok(head)
}

#[inline]
fn take_u32(buf: &mut &[u8]) -> Result<u32, DecodeError> {
    let b = take(buf, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Checks that a `shortstr` is well formed (length, UTF-8) and skips it.
/// Works on a plain slice so that validation touches no reference counts.
#[inline]
pub fn skip_shortstr_checked(buf: &mut &[u8]) -> Result<(), DecodeError> {
    let len = take(buf, 1)?[0] as usize;
    let s = take(buf, len)?;
    if std::str::from_utf8(s).is_err() {
        return Err(DecodeError::InvalidUtf8);
    }
    Ok(())
}

/// Checks that a field table is well formed (tags, lengths, UTF-8 keys,
/// nesting) and skips it, without allocating. Accepts exactly what
/// `get_table` accepts.
pub fn skip_table(buf: &mut &[u8]) -> Result<(), DecodeError> {
    skip_table_at(buf, 0)
}

fn skip_table_at(buf: &mut &[u8], depth: usize) -> Result<(), DecodeError> {
    if depth >= MAX_NESTING_DEPTH {
        return Err(DecodeError::NestingTooDeep);
    }
    let len = take_u32(buf)? as usize;
    let mut body = take(buf, len)?;
    while !body.is_empty() {
        skip_shortstr_checked(&mut body)?;
        skip_field_value_at(&mut body, depth)?;
    }
    Ok(())
}

fn skip_array_at(buf: &mut &[u8], depth: usize) -> Result<(), DecodeError> {
    if depth >= MAX_NESTING_DEPTH {
        return Err(DecodeError::NestingTooDeep);
    }
    let len = take_u32(buf)? as usize;
    let mut body = take(buf, len)?;
    while !body.is_empty() {
        skip_field_value_at(&mut body, depth)?;
    }
    Ok(())
}

fn skip_field_value_at(buf: &mut &[u8], depth: usize) -> Result<(), DecodeError> {
    let tag = take(buf, 1)?[0];
    match tag {
        b't' | b'b' | b'B' => take(buf, 1).map(drop),
        b's' | b'u' => take(buf, 2).map(drop),
        b'I' | b'i' | b'f' => take(buf, 4).map(drop),
        b'l' | b'L' | b'd' | b'T' => take(buf, 8).map(drop),
        b'D' => take(buf, 5).map(drop),
        b'S' | b'x' => {
            let len = take_u32(buf)? as usize;
            take(buf, len).map(drop)
        }
        b'A' => skip_array_at(buf, depth + 1),
        b'F' => skip_table_at(buf, depth + 1),
        b'V' => Ok(()),
        other => Err(DecodeError::BadFieldType(other)),
    }
}

// ---------------------------------------------------------------------------
// Encoding.

#[inline]
pub fn put_shortstr(buf: &mut BytesMut, s: &ShortStr) {
    // Through `as_bytes`: `len()` via `Deref<Target = str>` re-validates UTF-8.
    let bytes = s.as_bytes();
    debug_assert!(bytes.len() <= crate::types::SHORTSTR_MAX);
    buf.put_u8(bytes.len() as u8);
    buf.put_slice(bytes);
}

/// Writes a `longstr`. Panics if `s` is 4 GiB or longer (it cannot be
/// framed; no caller builds such a value).
#[inline]
pub fn put_longstr(buf: &mut BytesMut, s: &[u8]) {
    let len = u32::try_from(s.len()).expect("longstr longer than u32::MAX");
    buf.put_u32(len);
    buf.put_slice(s);
}

/// Reserves a 32-bit length slot and returns its offset.
#[inline]
fn begin_len(buf: &mut BytesMut) -> usize {
    let at = buf.len();
    buf.put_u32(0);
    at
}

/// Fills in a length slot opened by `begin_len` with the bytes written since.
#[inline]
fn end_len(buf: &mut BytesMut, at: usize) {
    let len = buf.len() - at - 4;
    let len = u32::try_from(len).expect("field table longer than u32::MAX");
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Writes a field table (length, then entries), without a temporary buffer.
pub fn put_table(buf: &mut BytesMut, table: &FieldTable) {
    let at = begin_len(buf);
    for (key, value) in table.iter() {
        put_shortstr(buf, key);
        put_field_value(buf, value);
    }
    end_len(buf, at);
}

/// Writes a field array (length, then values).
pub fn put_array(buf: &mut BytesMut, values: &[FieldValue]) {
    let at = begin_len(buf);
    for value in values {
        put_field_value(buf, value);
    }
    end_len(buf, at);
}

/// Writes one tagged field value.
pub fn put_field_value(buf: &mut BytesMut, value: &FieldValue) {
    match value {
        FieldValue::Bool(v) => {
            buf.put_u8(b't');
            buf.put_u8(*v as u8);
        }
        FieldValue::I8(v) => {
            buf.put_u8(b'b');
            buf.put_i8(*v);
        }
        FieldValue::U8(v) => {
            buf.put_u8(b'B');
            buf.put_u8(*v);
        }
        FieldValue::I16(v) => {
            buf.put_u8(b's');
            buf.put_i16(*v);
        }
        FieldValue::U16(v) => {
            buf.put_u8(b'u');
            buf.put_u16(*v);
        }
        FieldValue::I32(v) => {
            buf.put_u8(b'I');
            buf.put_i32(*v);
        }
        FieldValue::U32(v) => {
            buf.put_u8(b'i');
            buf.put_u32(*v);
        }
        FieldValue::I64(v) => {
            buf.put_u8(b'l');
            buf.put_i64(*v);
        }
        FieldValue::F32(v) => {
            buf.put_u8(b'f');
            buf.put_u32(v.to_bits());
        }
        FieldValue::F64(v) => {
            buf.put_u8(b'd');
            buf.put_u64(v.to_bits());
        }
        FieldValue::Decimal(d) => {
            buf.put_u8(b'D');
            buf.put_u8(d.scale);
            buf.put_u32(d.value);
        }
        FieldValue::LongStr(s) => {
            buf.put_u8(b'S');
            put_longstr(buf, s);
        }
        FieldValue::Array(values) => {
            buf.put_u8(b'A');
            put_array(buf, values);
        }
        FieldValue::Timestamp(t) => {
            buf.put_u8(b'T');
            buf.put_u64(*t);
        }
        FieldValue::Table(t) => {
            buf.put_u8(b'F');
            put_table(buf, t);
        }
        FieldValue::Void => buf.put_u8(b'V'),
        FieldValue::Bytes(b) => {
            buf.put_u8(b'x');
            put_longstr(buf, b);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
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
}
