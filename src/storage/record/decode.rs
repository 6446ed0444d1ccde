//! Decoding a record: `check` (header, length bound, CRC) and `decode`
//! (the payload, as zero-copy slices of the input), never panicking and
//! never allocating from a length field.

use super::error::RecordError;
use super::{Delayed, Message, Record, RecordKind, Target, HEADER_LEN};
use crate::protocol::types::ShortStr;
use bytes::Bytes;

/// Checks the record at the start of `buf` (header, length bound, CRC) and
/// returns its total size (header included). Does not parse the payload.
pub fn check(buf: &[u8], max_len: u32) -> Result<usize, RecordError> {
    if buf.len() < HEADER_LEN {
        // Even all-zero bytes are not `Zeroes` here: a length's low byte may
        // be zero, so the caller must look at more bytes (or at the EOF).
        return Err(RecordError::Truncated { needed: HEADER_LEN });
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len == 0 && crc == 0 {
        return Err(RecordError::Zeroes);
    }
    if len == 0 || len > max_len {
        return Err(RecordError::BadLength(len));
    }
    let total = HEADER_LEN + len as usize;
    if buf.len() < total {
        return Err(RecordError::Truncated { needed: total });
    }
    if crc32c::crc32c(&buf[HEADER_LEN..total]) != crc {
        return Err(RecordError::BadCrc);
    }
    Ok(total)
}

/// A bounds-checked reader over a record's payload.
struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    fn take(&mut self, n: usize, what: &'static str) -> Result<Bytes, RecordError> {
        if self.buf.len() - self.pos < n {
            return Err(RecordError::Malformed(what));
        }
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, RecordError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, RecordError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, RecordError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, RecordError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_le_bytes(a))
    }
    fn str8(&mut self, what: &'static str) -> Result<ShortStr, RecordError> {
        let n = self.u8(what)? as usize;
        ShortStr::from_bytes(self.take(n, what)?).ok_or(RecordError::Malformed("invalid UTF-8"))
    }
    fn rest(&mut self) -> Bytes {
        let b = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        b
    }
    fn finish(&self) -> Result<(), RecordError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(RecordError::Malformed("trailing bytes"))
        }
    }
}

/// Decodes the record at the start of `buf`; returns it and its total size.
/// Every field of the result is a slice of `buf` (no copy).
pub fn decode(buf: &Bytes, max_len: u32) -> Result<(Record, usize), RecordError> {
    let total = check(buf, max_len)?;
    let kind_byte = buf[HEADER_LEN];
    let mut r = Reader {
        buf: buf.slice(HEADER_LEN + 1..total),
        pos: 0,
    };
    let record = if kind_byte == RecordKind::InVhost as u8 {
        let vhost = r.str8("vhost")?;
        let inner_kind = r.u8("inner kind")?;
        if inner_kind == RecordKind::InVhost as u8 {
            return Err(RecordError::Malformed("nested vhost record"));
        }
        Record::InVhost {
            vhost,
            inner: Box::new(decode_payload(inner_kind, &mut r)?),
        }
    } else {
        decode_payload(kind_byte, &mut r)?
    };
    r.finish()?;
    Ok((record, total))
}

/// Decodes one record's payload of kind `kind_byte` (not `InVhost`).
fn decode_payload(kind_byte: u8, r: &mut Reader) -> Result<Record, RecordError> {
    let kind = RecordKind::from_u8(kind_byte).ok_or(RecordError::BadKind(kind_byte))?;
    Ok(match kind {
        RecordKind::Message
        | RecordKind::Paged
        | RecordKind::Copy
        | RecordKind::TimedMessage
        | RecordKind::TimedPaged
        | RecordKind::TimedCopy => {
            let timed = matches!(
                kind,
                RecordKind::TimedMessage | RecordKind::TimedPaged | RecordKind::TimedCopy
            );
            let n = r.u16("target count")? as usize;
            if n == 0 {
                return Err(RecordError::Malformed("message without targets"));
            }
            // Each target takes at least 9 bytes: bound the allocation by the
            // bytes actually present.
            if n > (r.buf.len() - r.pos) / 9 {
                return Err(RecordError::Malformed("target count past the end"));
            }
            let mut targets = Vec::with_capacity(n);
            for _ in 0..n {
                let queue = r.str8("target queue")?;
                let msg_id = r.u64("target msg id")?;
                let expires = if timed {
                    Some(r.u64("target expiry")?).filter(|&e| e != u64::MAX)
                } else {
                    None
                };
                targets.push(Target {
                    queue,
                    msg_id,
                    expires,
                });
            }
            let exchange = r.str8("exchange")?;
            let routing_key = r.str8("routing key")?;
            let props_len = r.u32("properties length")? as usize;
            let raw_properties = r.take(props_len, "properties")?;
            let body = r.rest();
            let message = Message {
                targets,
                exchange,
                routing_key,
                raw_properties,
                body,
            };
            match kind {
                RecordKind::Message | RecordKind::TimedMessage => Record::Message(message),
                RecordKind::Copy | RecordKind::TimedCopy => Record::Copy(message),
                _ => Record::Paged(message),
            }
        }
        RecordKind::Ack => Record::Ack {
            queue: r.str8("queue")?,
            msg_id: r.u64("msg id")?,
        },
        RecordKind::Delivered => Record::Delivered {
            queue: r.str8("queue")?,
            msg_id: r.u64("msg id")?,
        },
        RecordKind::Purge => Record::Purge {
            queue: r.str8("queue")?,
            up_to_msg_id: r.u64("msg id")?,
        },
        RecordKind::PurgeReady => {
            let queue = r.str8("queue")?;
            let up_to_msg_id = r.u64("msg id")?;
            let n = r.u32("spared count")? as usize;
            // 16 bytes a range: bound the allocation by the bytes present.
            if n > (r.buf.len() - r.pos) / 16 {
                return Err(RecordError::Malformed("spared count past the end"));
            }
            let mut spared = Vec::with_capacity(n);
            for _ in 0..n {
                spared.push((r.u64("spared start")?, r.u64("spared end")?));
            }
            Record::PurgeReady {
                queue,
                up_to_msg_id,
                spared,
            }
        }
        RecordKind::Returned => Record::Returned {
            queue: r.str8("queue")?,
            msg_id: r.u64("msg id")?,
            delivery_count: r.u32("delivery count")?,
        },
        RecordKind::QueueDelete => Record::QueueDelete {
            queue: r.str8("queue")?,
        },
        RecordKind::Metadata => Record::Metadata { payload: r.rest() },
        RecordKind::Delayed => {
            let id = r.u64("delayed id")?;
            let deliver_at = r.u64("deliver at")?;
            let durable = match r.u8("durable flag")? {
                0 => false,
                1 => true,
                _ => return Err(RecordError::Malformed("durable flag")),
            };
            let exchange = r.str8("exchange")?;
            let routing_key = r.str8("routing key")?;
            let props_len = r.u32("properties length")? as usize;
            let raw_properties = r.take(props_len, "properties")?;
            Record::Delayed(Delayed {
                id,
                deliver_at,
                durable,
                exchange,
                routing_key,
                raw_properties,
                body: r.rest(),
            })
        }
        RecordKind::DelayedDone => Record::DelayedDone {
            id: r.u64("delayed id")?,
        },
        RecordKind::InVhost => return Err(RecordError::Malformed("nested vhost record")),
    })
}
