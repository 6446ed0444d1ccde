//! Encoding a record: its size (`RecordRef::encoded_len`) and its bytes
//! (`encode`), header and CRC included.

use super::error::EncodeError;
use super::{RecordRef, HEADER_LEN};
use crate::protocol::types::ShortStr;
use bytes::{BufMut, BytesMut};

impl RecordRef<'_> {
    /// Size of the encoded record, header included, if it is at most
    /// `max_len` (+ header) and well formed.
    pub fn encoded_len(&self, max_len: u32) -> Result<usize, EncodeError> {
        let len = 1 + self.payload_len()?;
        if len > max_len as u64 {
            return Err(EncodeError::TooLarge { len, max: max_len });
        }
        Ok(HEADER_LEN + len as usize)
    }

    /// Bytes after the kind byte.
    fn payload_len(&self) -> Result<u64, EncodeError> {
        let str8 = |s: &ShortStr| 1 + s.len() as u64;
        Ok(match self {
            RecordRef::Message(m) | RecordRef::Paged(m) | RecordRef::Copy(m) => {
                if m.targets.is_empty() || m.targets.len() > u16::MAX as usize {
                    return Err(EncodeError::BadTargetCount(m.targets.len()));
                }
                let per_target = if m.is_timed() { 16 } else { 8 };
                let targets: u64 = m.targets.iter().map(|t| str8(&t.queue) + per_target).sum();
                let body: u64 = m.body.iter().map(|b| b.len() as u64).sum();
                2 + targets
                    + str8(m.exchange)
                    + str8(m.routing_key)
                    + 4
                    + m.raw_properties.len() as u64
                    + body
            }
            RecordRef::Ack { queue, .. }
            | RecordRef::Delivered { queue, .. }
            | RecordRef::Purge { queue, .. } => str8(queue) + 8,
            RecordRef::PurgeReady { queue, spared, .. } => {
                str8(queue) + 8 + 4 + 16 * spared.len() as u64
            }
            RecordRef::Returned { queue, .. } => str8(queue) + 8 + 4,
            RecordRef::QueueDelete { queue } => str8(queue),
            RecordRef::Metadata { payload } => payload.len() as u64,
            RecordRef::Delayed(d) => {
                let body: u64 = d.body.iter().map(|b| b.len() as u64).sum();
                8 + 8
                    + 1
                    + str8(d.exchange)
                    + str8(d.routing_key)
                    + 4
                    + d.raw_properties.len() as u64
                    + body
            }
            RecordRef::DelayedDone { .. } => 8,
            RecordRef::InVhost { vhost, inner } => {
                if matches!(inner, RecordRef::InVhost { .. }) {
                    return Err(EncodeError::NestedVhost);
                }
                str8(vhost) + 1 + inner.payload_len()?
            }
        })
    }
}

fn put_str8(out: &mut BytesMut, s: &ShortStr) {
    debug_assert!(s.len() <= 255, "ShortStr invariant");
    out.put_u8(s.len() as u8);
    out.put_slice(s.as_bytes());
}

/// Appends the encoded record to `out`; returns its size (header included).
/// Fails (writing nothing) if the record is malformed or longer than
/// `max_len`.
pub fn encode(
    record: &RecordRef<'_>,
    max_len: u32,
    out: &mut BytesMut,
) -> Result<usize, EncodeError> {
    let total = record.encoded_len(max_len)?;
    let start = out.len();
    out.reserve(total);
    out.put_u32_le((total - HEADER_LEN) as u32);
    out.put_u32_le(0); // crc, patched below
    put_payload(record, out);
    assert_eq!(
        out.len() - start,
        total,
        "encoded_len disagrees with encode"
    );
    let crc = crc32c::crc32c(&out[start + HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(total)
}

/// Writes the kind byte and the payload.
fn put_payload(record: &RecordRef<'_>, out: &mut BytesMut) {
    out.put_u8(record.wire_kind() as u8);
    match record {
        RecordRef::Message(m) | RecordRef::Paged(m) | RecordRef::Copy(m) => {
            let timed = m.is_timed();
            out.put_u16_le(m.targets.len() as u16);
            for t in m.targets {
                put_str8(out, &t.queue);
                out.put_u64_le(t.msg_id);
                if timed {
                    out.put_u64_le(t.expires.unwrap_or(u64::MAX));
                }
            }
            put_str8(out, m.exchange);
            put_str8(out, m.routing_key);
            out.put_u32_le(m.raw_properties.len() as u32);
            out.put_slice(m.raw_properties);
            for chunk in m.body {
                out.put_slice(chunk);
            }
        }
        RecordRef::Ack { queue, msg_id } | RecordRef::Delivered { queue, msg_id } => {
            put_str8(out, queue);
            out.put_u64_le(*msg_id);
        }
        RecordRef::Purge {
            queue,
            up_to_msg_id,
        } => {
            put_str8(out, queue);
            out.put_u64_le(*up_to_msg_id);
        }
        RecordRef::PurgeReady {
            queue,
            up_to_msg_id,
            spared,
        } => {
            put_str8(out, queue);
            out.put_u64_le(*up_to_msg_id);
            out.put_u32_le(spared.len() as u32);
            for &(start, end) in spared.iter() {
                out.put_u64_le(start);
                out.put_u64_le(end);
            }
        }
        RecordRef::Returned {
            queue,
            msg_id,
            delivery_count,
        } => {
            put_str8(out, queue);
            out.put_u64_le(*msg_id);
            out.put_u32_le(*delivery_count);
        }
        RecordRef::QueueDelete { queue } => put_str8(out, queue),
        RecordRef::Metadata { payload } => out.put_slice(payload),
        RecordRef::Delayed(d) => {
            out.put_u64_le(d.id);
            out.put_u64_le(d.deliver_at);
            out.put_u8(d.durable as u8);
            put_str8(out, d.exchange);
            put_str8(out, d.routing_key);
            out.put_u32_le(d.raw_properties.len() as u32);
            out.put_slice(d.raw_properties);
            for chunk in d.body {
                out.put_slice(chunk);
            }
        }
        RecordRef::DelayedDone { id } => out.put_u64_le(*id),
        RecordRef::InVhost { vhost, inner } => {
            put_str8(out, vhost);
            put_payload(inner, out);
        }
    }
}
