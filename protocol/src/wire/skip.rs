//! Validating skippers over a `&[u8]` cursor: they check a short string or
//! a field table as the decoder would, without building anything.

use super::{DecodeError, MAX_NESTING_DEPTH, MAX_TABLE_VALUES};

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
    skip_table_at(buf, 0, &mut { MAX_TABLE_VALUES })
}

fn skip_table_at(buf: &mut &[u8], depth: usize, left: &mut usize) -> Result<(), DecodeError> {
    if depth >= MAX_NESTING_DEPTH {
        return Err(DecodeError::NestingTooDeep);
    }
    let len = take_u32(buf)? as usize;
    let mut body = take(buf, len)?;
    while !body.is_empty() {
        skip_shortstr_checked(&mut body)?;
        skip_field_value_at(&mut body, depth, left)?;
    }
    Ok(())
}

fn skip_array_at(buf: &mut &[u8], depth: usize, left: &mut usize) -> Result<(), DecodeError> {
    if depth >= MAX_NESTING_DEPTH {
        return Err(DecodeError::NestingTooDeep);
    }
    let len = take_u32(buf)? as usize;
    let mut body = take(buf, len)?;
    while !body.is_empty() {
        skip_field_value_at(&mut body, depth, left)?;
    }
    Ok(())
}

fn skip_field_value_at(buf: &mut &[u8], depth: usize, left: &mut usize) -> Result<(), DecodeError> {
    *left = left.checked_sub(1).ok_or(DecodeError::TooManyValues)?;
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
        b'A' => skip_array_at(buf, depth + 1, left),
        b'F' => skip_table_at(buf, depth + 1, left),
        b'V' => Ok(()),
        other => Err(DecodeError::BadFieldType(other)),
    }
}
