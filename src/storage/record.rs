//! The on-disk record format of the per-shard log and its codec (pure, no I/O).
//!
//! Layout of one record (all integers little-endian):
//!
//! ```text
//! offset 0   len    u32   bytes after the crc field (kind + payload), >= 1
//! offset 4   crc    u32   CRC32C of bytes [8, 8 + len)
//! offset 8   kind   u8    RecordKind
//! offset 9   payload      kind-specific, see below
//! ```
//!
//! Payloads (`str8` = u8 length + UTF-8 bytes, i.e. an AMQP shortstr):
//!
//! - `Message` (1): `u16 n` (>= 1) then `n` times (`str8 queue`, `u64 msg_id`),
//!   `str8 exchange`, `str8 routing_key`, `u32 props_len`, raw property
//!   flags+list, then the body up to the end of the record. One record stores
//!   the body once for every durable queue the message was routed to
//!   (fan-out).
//! - `Paged` (7): the layout of `Message`, for a copy that is in the log
//!   only because its queue paged it out of memory (a transient message, or
//!   any message of a non-durable queue). Recovery ignores it: it lives
//!   until its queue reads it back, and never across a restart.
//! - `Ack` (2): `str8 queue`, `u64 msg_id` — also used for reject without
//!   requeue and for no-ack deliveries.
//! - `Delivered` (6): `str8 queue`, `u64 msg_id` — the message was handed
//!   to a consumer (ack mode); recovery marks it redelivered. Kills nothing.
//! - `Purge` (3): `str8 queue`, `u64 up_to_msg_id` (inclusive).
//! - `QueueDelete` (4): `str8 queue`.
//! - `Metadata` (5): opaque bytes up to the end of the record (the broker's
//!   durable exchanges/queues/bindings).
//!
//! A header of eight zero bytes is `RecordError::Zeroes`: the clean end of the
//! written part of a preallocated segment. Anything else that does not check
//! out (length past the end, bad CRC, unknown kind, malformed payload) is an
//! error; the decoder never panics and never allocates from a length field
//! (decoded fields are zero-copy slices of the input `Bytes`).

use crate::protocol::types::ShortStr;
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

/// Bytes before the kind: `len` + `crc`.
pub const HEADER_LEN: usize = 8;

/// Default upper bound of `len` (kind + payload) accepted by the decoder and
/// the encoder: 256 MiB, above RabbitMQ's default 128 MiB max message size.
pub const DEFAULT_MAX_RECORD_LEN: u32 = 256 << 20;

/// One queue a message record belongs to, with the message's id in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub queue: ShortStr,
    pub msg_id: u64,
}

/// A decoded message record. `body` is one contiguous slice of the read
/// buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub targets: Vec<Target>,
    pub exchange: ShortStr,
    pub routing_key: ShortStr,
    pub raw_properties: Bytes,
    pub body: Bytes,
}

/// A decoded (owned, zero-copy) record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Message(Message),
    Paged(Message),
    Ack { queue: ShortStr, msg_id: u64 },
    Delivered { queue: ShortStr, msg_id: u64 },
    Purge { queue: ShortStr, up_to_msg_id: u64 },
    QueueDelete { queue: ShortStr },
    Metadata { payload: Bytes },
}

/// A borrowed message, the form the broker appends: the body may be several
/// chunks (the body frames as received) and is copied once, into the log.
#[derive(Clone, Copy, Debug)]
pub struct MessageRef<'a> {
    pub targets: &'a [Target],
    pub exchange: &'a ShortStr,
    pub routing_key: &'a ShortStr,
    pub raw_properties: &'a [u8],
    pub body: &'a [Bytes],
}

/// A borrowed record, the input of `encode`.
#[derive(Clone, Copy, Debug)]
pub enum RecordRef<'a> {
    Message(MessageRef<'a>),
    Paged(MessageRef<'a>),
    Ack {
        queue: &'a ShortStr,
        msg_id: u64,
    },
    Delivered {
        queue: &'a ShortStr,
        msg_id: u64,
    },
    Purge {
        queue: &'a ShortStr,
        up_to_msg_id: u64,
    },
    QueueDelete {
        queue: &'a ShortStr,
    },
    Metadata {
        payload: &'a [u8],
    },
}

/// The kind byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    Message = 1,
    Ack = 2,
    Purge = 3,
    QueueDelete = 4,
    Metadata = 5,
    Delivered = 6,
    Paged = 7,
}

impl RecordKind {
    pub fn from_u8(b: u8) -> Option<RecordKind> {
        Some(match b {
            1 => RecordKind::Message,
            2 => RecordKind::Ack,
            3 => RecordKind::Purge,
            4 => RecordKind::QueueDelete,
            5 => RecordKind::Metadata,
            6 => RecordKind::Delivered,
            7 => RecordKind::Paged,
            _ => return None,
        })
    }
}

/// Why bytes are not a valid record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// Eight zero bytes where a header should be: end of the written data.
    Zeroes,
    /// Fewer bytes than a header, or than the header's `len` announces;
    /// `needed` is the whole record's size when known (else `HEADER_LEN`).
    Truncated { needed: usize },
    /// `len` is 0 or above the configured maximum.
    BadLength(u32),
    /// The CRC32C does not match.
    BadCrc,
    /// Unknown kind byte.
    BadKind(u8),
    /// The CRC matched but the payload does not parse.
    Malformed(&'static str),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Zeroes => write!(f, "zero header (end of data)"),
            RecordError::Truncated { needed } => {
                write!(f, "truncated record ({needed} bytes needed)")
            }
            RecordError::BadLength(l) => write!(f, "bad record length {l}"),
            RecordError::BadCrc => write!(f, "record checksum mismatch"),
            RecordError::BadKind(k) => write!(f, "unknown record kind {k}"),
            RecordError::Malformed(why) => write!(f, "malformed record: {why}"),
        }
    }
}

impl std::error::Error for RecordError {}

/// Why a record cannot be encoded (a caller error, never a panic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The encoded record would exceed the maximum record length.
    TooLarge { len: u64, max: u32 },
    /// A message record needs 1..=65535 targets.
    BadTargetCount(usize),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLarge { len, max } => {
                write!(f, "record of {len} bytes exceeds the maximum {max}")
            }
            EncodeError::BadTargetCount(n) => write!(f, "message record with {n} targets"),
        }
    }
}

impl std::error::Error for EncodeError {}

impl Message {
    /// The borrowed form of this message.
    pub fn as_ref(&self) -> MessageRef<'_> {
        MessageRef {
            targets: &self.targets,
            exchange: &self.exchange,
            routing_key: &self.routing_key,
            raw_properties: &self.raw_properties,
            body: std::slice::from_ref(&self.body),
        }
    }
}

impl Record {
    /// The borrowed form of this record (for `encode` / `Log::append`).
    pub fn as_ref(&self) -> RecordRef<'_> {
        match self {
            Record::Message(m) => RecordRef::Message(m.as_ref()),
            Record::Paged(m) => RecordRef::Paged(m.as_ref()),
            Record::Ack { queue, msg_id } => RecordRef::Ack {
                queue,
                msg_id: *msg_id,
            },
            Record::Delivered { queue, msg_id } => RecordRef::Delivered {
                queue,
                msg_id: *msg_id,
            },
            Record::Purge {
                queue,
                up_to_msg_id,
            } => RecordRef::Purge {
                queue,
                up_to_msg_id: *up_to_msg_id,
            },
            Record::QueueDelete { queue } => RecordRef::QueueDelete { queue },
            Record::Metadata { payload } => RecordRef::Metadata { payload },
        }
    }

    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Message(_) => RecordKind::Message,
            Record::Paged(_) => RecordKind::Paged,
            Record::Ack { .. } => RecordKind::Ack,
            Record::Delivered { .. } => RecordKind::Delivered,
            Record::Purge { .. } => RecordKind::Purge,
            Record::QueueDelete { .. } => RecordKind::QueueDelete,
            Record::Metadata { .. } => RecordKind::Metadata,
        }
    }
}

impl<'a> From<&'a Record> for RecordRef<'a> {
    fn from(r: &'a Record) -> RecordRef<'a> {
        r.as_ref()
    }
}

impl<'a> From<MessageRef<'a>> for RecordRef<'a> {
    fn from(m: MessageRef<'a>) -> RecordRef<'a> {
        RecordRef::Message(m)
    }
}

impl RecordRef<'_> {
    pub fn kind(&self) -> RecordKind {
        match self {
            RecordRef::Message(_) => RecordKind::Message,
            RecordRef::Paged(_) => RecordKind::Paged,
            RecordRef::Ack { .. } => RecordKind::Ack,
            RecordRef::Delivered { .. } => RecordKind::Delivered,
            RecordRef::Purge { .. } => RecordKind::Purge,
            RecordRef::QueueDelete { .. } => RecordKind::QueueDelete,
            RecordRef::Metadata { .. } => RecordKind::Metadata,
        }
    }

    /// Size of the encoded record, header included, if it is at most
    /// `max_len` (+ header) and well formed.
    pub fn encoded_len(&self, max_len: u32) -> Result<usize, EncodeError> {
        let str8 = |s: &ShortStr| 1 + s.len() as u64;
        let len: u64 = 1 + match self {
            RecordRef::Message(m) | RecordRef::Paged(m) => {
                if m.targets.is_empty() || m.targets.len() > u16::MAX as usize {
                    return Err(EncodeError::BadTargetCount(m.targets.len()));
                }
                let targets: u64 = m.targets.iter().map(|t| str8(&t.queue) + 8).sum();
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
            RecordRef::QueueDelete { queue } => str8(queue),
            RecordRef::Metadata { payload } => payload.len() as u64,
        };
        if len > max_len as u64 {
            return Err(EncodeError::TooLarge { len, max: max_len });
        }
        Ok(HEADER_LEN + len as usize)
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
    out.put_u8(record.kind() as u8);
    match record {
        RecordRef::Message(m) | RecordRef::Paged(m) => {
            out.put_u16_le(m.targets.len() as u16);
            for t in m.targets {
                put_str8(out, &t.queue);
                out.put_u64_le(t.msg_id);
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
        RecordRef::QueueDelete { queue } => put_str8(out, queue),
        RecordRef::Metadata { payload } => out.put_slice(payload),
    }
    assert_eq!(
        out.len() - start,
        total,
        "encoded_len disagrees with encode"
    );
    let crc = crc32c::crc32c(&out[start + HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(total)
}

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
    let kind = RecordKind::from_u8(kind_byte).ok_or(RecordError::BadKind(kind_byte))?;
    let mut r = Reader {
        buf: buf.slice(HEADER_LEN + 1..total),
        pos: 0,
    };
    let record = match kind {
        RecordKind::Message | RecordKind::Paged => {
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
                targets.push(Target { queue, msg_id });
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
            if kind == RecordKind::Message {
                Record::Message(message)
            } else {
                Record::Paged(message)
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
        RecordKind::QueueDelete => Record::QueueDelete {
            queue: r.str8("queue")?,
        },
        RecordKind::Metadata => Record::Metadata { payload: r.rest() },
    };
    r.finish()?;
    Ok((record, total))
}

#[cfg(test)]
mod tests {
    use super::*;
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
                },
                Target {
                    queue: q("audit"),
                    msg_id: 1 << 40,
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
                any::<bool>(),
            )
                .prop_map(|(t, exchange, routing_key, raw_properties, body, paged)| {
                    let m = Message {
                        targets: t
                            .into_iter()
                            .map(|(queue, msg_id)| Target { queue, msg_id })
                            .collect(),
                        exchange,
                        routing_key,
                        raw_properties,
                        body,
                    };
                    if paged {
                        Record::Paged(m)
                    } else {
                        Record::Message(m)
                    }
                }),
            (arb_shortstr(), any::<u64>())
                .prop_map(|(queue, msg_id)| Record::Ack { queue, msg_id }),
            (arb_shortstr(), any::<u64>())
                .prop_map(|(queue, msg_id)| Record::Delivered { queue, msg_id }),
            (arb_shortstr(), any::<u64>()).prop_map(|(queue, up_to_msg_id)| Record::Purge {
                queue,
                up_to_msg_id
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
}
