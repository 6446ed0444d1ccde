//! Encoding primitives: short and long strings, field tables, arrays and
//! values appended to a `BytesMut`. They cannot fail.

use crate::types::{FieldTable, FieldValue, ShortStr};
use bytes::{BufMut, BytesMut};

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
