//! Decoding primitives from the front of a `&mut Bytes`: integers, short
//! and long strings, field tables, arrays and values. Strings and byte
//! values are zero-copy slices; every length is checked before slicing.

use super::{DecodeError, MAX_NESTING_DEPTH, MAX_TABLE_VALUES};
use crate::types::{Decimal, FieldTable, FieldValue, LongStr, ShortStr};
use bytes::{Buf, Bytes};

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
/// At most [`MAX_TABLE_VALUES`] values, nested ones included.
pub fn get_table(buf: &mut Bytes) -> Result<FieldTable, DecodeError> {
    get_table_at(buf, 0, &mut { MAX_TABLE_VALUES })
}

/// A field array: a 32-bit byte length, then values.
pub fn get_array(buf: &mut Bytes) -> Result<Vec<FieldValue>, DecodeError> {
    get_array_at(buf, 0, &mut { MAX_TABLE_VALUES })
}

/// One tagged field value (tag octet, then the value).
pub fn get_field_value(buf: &mut Bytes) -> Result<FieldValue, DecodeError> {
    get_field_value_at(buf, 0, &mut { MAX_TABLE_VALUES })
}

fn get_table_at(
    buf: &mut Bytes,
    depth: usize,
    left: &mut usize,
) -> Result<FieldTable, DecodeError> {
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
        let value = get_field_value_at(&mut body, depth, left)?;
        entries.push((key, value));
    }
    Ok(FieldTable(entries))
}

fn get_array_at(
    buf: &mut Bytes,
    depth: usize,
    left: &mut usize,
) -> Result<Vec<FieldValue>, DecodeError> {
    if depth >= MAX_NESTING_DEPTH {
        return Err(DecodeError::NestingTooDeep);
    }
    let len = get_u32(buf)? as usize;
    let mut body = get_bytes(buf, len)?;
    let mut values = Vec::new();
    while !body.is_empty() {
        values.push(get_field_value_at(&mut body, depth, left)?);
    }
    Ok(values)
}

fn get_field_value_at(
    buf: &mut Bytes,
    depth: usize,
    left: &mut usize,
) -> Result<FieldValue, DecodeError> {
    *left = left.checked_sub(1).ok_or(DecodeError::TooManyValues)?;
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
        b'A' => FieldValue::Array(get_array_at(buf, depth + 1, left)?),
        b'T' => FieldValue::Timestamp(get_u64(buf)?),
        b'F' => FieldValue::Table(get_table_at(buf, depth + 1, left)?),
        b'V' => FieldValue::Void,
        b'x' => FieldValue::Bytes(get_longstr(buf)?),
        other => return Err(DecodeError::BadFieldType(other)),
    })
}
