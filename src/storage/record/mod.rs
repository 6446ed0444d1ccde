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
//! - `TimedMessage` (10) / `TimedPaged` (11): `Message` / `Paged` whose
//!   targets carry an expiry: each target is (`str8 queue`, `u64 msg_id`,
//!   `u64 expires_at`), the copy's deadline in milliseconds since the Unix
//!   epoch (`u64::MAX`: none). Written only when some copy has a deadline
//!   (message TTL); decoded into `Message` / `Paged` with `Target::expires`
//!   set, so records written before TTL existed read back unchanged.
//! - `Paged` (7): the layout of `Message`, for a copy that is in the log
//!   only because its queue paged it out of memory (a transient message, or
//!   any message of a non-durable queue). Recovery ignores it: it lives
//!   until its queue reads it back, and never across a restart.
//! - `Ack` (2): `str8 queue`, `u64 msg_id` — also used for reject without
//!   requeue and for no-ack deliveries.
//! - `Delivered` (6): `str8 queue`, `u64 msg_id` — the message was handed
//!   to a consumer (ack mode); recovery marks it redelivered. Kills nothing.
//! - `Purge` (3): `str8 queue`, `u64 up_to_msg_id` (inclusive).
//! - `PurgeReady` (12): a purge with unacked messages outstanding: `str8
//!   queue`, `u64 up_to_msg_id` (inclusive), `u32 n`, then `n` id ranges
//!   (`u64 start`, `u64 end`, end exclusive, ascending) that it spares —
//!   the messages delivered and not yet settled when the queue was purged
//!   (a purge removes ready messages only). Written instead of `Purge`
//!   only when something is spared.
//! - `Returned` (13): `str8 queue`, `u64 msg_id`, `u32 delivery_count` — a
//!   delivered message of a queue that counts deliveries (quorum) came
//!   back to the queue, returned this many times in all. Kills nothing.
//! - `QueueDelete` (4): `str8 queue`.
//! - `Metadata` (5): opaque bytes up to the end of the record (the broker's
//!   durable exchanges/queues/bindings).
//! - `Delayed` (8): a message published to an `x-delayed-message` exchange,
//!   held until its time: `u64 id` (per shard, never reused), `u64
//!   deliver_at` (Unix ms), `u8 durable` (1: recovery keeps it; 0: a
//!   transient one, in the log only to keep its body out of memory), `str8
//!   exchange`, `str8 routing_key`, `u32 props_len`, raw properties, then
//!   the body up to the end of the record. One live reference.
//! - `DelayedDone` (9): `u64 id` — the delayed message was routed (its
//!   copies are as safe as it was). Kills the `Delayed` record.
//! - `Copy` (15) / `TimedCopy` (16): the layout of `Message` /
//!   `TimedMessage`, for a compaction copy: the record of a live message
//!   written again, same queue, id and content, so that the segment of its
//!   older record can go (`shard::durability::compact`). Recovery lets a
//!   copy supersede every earlier record of its (queue, id), whether or not
//!   those are still on disk, and never mistakes it for a new message.
//!   Logs written before these kinds existed hold their copies as plain
//!   `Message` records; recovery still recognises those the old way (a
//!   message record whose id is not above the largest id already seen for
//!   its queue), which fails once the original's segment is gone.
//! - `InVhost` (14): `str8 vhost`, then one whole record of another kind
//!   (`u8 kind` and its payload) whose queue names are in that vhost.
//!   Records of vhost `/` are written without it, as before vhosts
//!   existed, so every record without it is of `/`.
//!
//! A header of eight zero bytes is `RecordError::Zeroes`: the clean end of the
//! written part of a preallocated segment. Anything else that does not check
//! out (length past the end, bad CRC, unknown kind, malformed payload) is an
//! error; the decoder never panics and never allocates from a length field
//! (decoded fields are zero-copy slices of the input `Bytes`).
//!
//! The parts: the records, borrowed and owned (here), `encode`, `decode`
//! (with `check`) and their errors (`error`).

mod decode;
mod encode;
mod error;

pub use decode::{check, decode};
pub use encode::encode;
pub use error::{EncodeError, RecordError};

use crate::protocol::types::ShortStr;
use bytes::Bytes;

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
    /// When this copy expires (ms since the Unix epoch), if it has a TTL.
    pub expires: Option<u64>,
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

/// A decoded delayed message (`Delayed` record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delayed {
    pub id: u64,
    pub deliver_at: u64,
    pub durable: bool,
    pub exchange: ShortStr,
    pub routing_key: ShortStr,
    pub raw_properties: Bytes,
    pub body: Bytes,
}

/// A borrowed delayed message, the form the broker appends.
#[derive(Clone, Copy, Debug)]
pub struct DelayedRef<'a> {
    pub id: u64,
    pub deliver_at: u64,
    pub durable: bool,
    pub exchange: &'a ShortStr,
    pub routing_key: &'a ShortStr,
    pub raw_properties: &'a [u8],
    pub body: &'a [Bytes],
}

/// A decoded (owned, zero-copy) record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Message(Message),
    Paged(Message),
    /// A compaction copy of a `Message` record (kinds 15 / 16).
    Copy(Message),
    Ack {
        queue: ShortStr,
        msg_id: u64,
    },
    Delivered {
        queue: ShortStr,
        msg_id: u64,
    },
    Purge {
        queue: ShortStr,
        up_to_msg_id: u64,
    },
    PurgeReady {
        queue: ShortStr,
        up_to_msg_id: u64,
        spared: Vec<(u64, u64)>,
    },
    Returned {
        queue: ShortStr,
        msg_id: u64,
        delivery_count: u32,
    },
    QueueDelete {
        queue: ShortStr,
    },
    Metadata {
        payload: Bytes,
    },
    Delayed(Delayed),
    DelayedDone {
        id: u64,
    },
    /// A record of a queue in a vhost other than `/` (never nested).
    InVhost {
        vhost: ShortStr,
        inner: Box<Record>,
    },
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
    /// A compaction copy of a stored message.
    Copy(MessageRef<'a>),
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
    PurgeReady {
        queue: &'a ShortStr,
        up_to_msg_id: u64,
        spared: &'a [(u64, u64)],
    },
    Returned {
        queue: &'a ShortStr,
        msg_id: u64,
        delivery_count: u32,
    },
    QueueDelete {
        queue: &'a ShortStr,
    },
    Metadata {
        payload: &'a [u8],
    },
    Delayed(DelayedRef<'a>),
    DelayedDone {
        id: u64,
    },
    /// `inner` names queues of `vhost` (not `/`; never nested).
    InVhost {
        vhost: &'a ShortStr,
        inner: &'a RecordRef<'a>,
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
    Delayed = 8,
    DelayedDone = 9,
    TimedMessage = 10,
    TimedPaged = 11,
    PurgeReady = 12,
    Returned = 13,
    InVhost = 14,
    Copy = 15,
    TimedCopy = 16,
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
            8 => RecordKind::Delayed,
            9 => RecordKind::DelayedDone,
            10 => RecordKind::TimedMessage,
            11 => RecordKind::TimedPaged,
            12 => RecordKind::PurgeReady,
            13 => RecordKind::Returned,
            14 => RecordKind::InVhost,
            15 => RecordKind::Copy,
            16 => RecordKind::TimedCopy,
            _ => return None,
        })
    }
}

impl MessageRef<'_> {
    /// Whether a copy has a deadline (the record is written timed).
    pub fn is_timed(&self) -> bool {
        self.targets.iter().any(|t| t.expires.is_some())
    }
}

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
            Record::Copy(m) => RecordRef::Copy(m.as_ref()),
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
            Record::PurgeReady {
                queue,
                up_to_msg_id,
                spared,
            } => RecordRef::PurgeReady {
                queue,
                up_to_msg_id: *up_to_msg_id,
                spared,
            },
            Record::Returned {
                queue,
                msg_id,
                delivery_count,
            } => RecordRef::Returned {
                queue,
                msg_id: *msg_id,
                delivery_count: *delivery_count,
            },
            Record::QueueDelete { queue } => RecordRef::QueueDelete { queue },
            Record::Metadata { payload } => RecordRef::Metadata { payload },
            Record::Delayed(d) => RecordRef::Delayed(DelayedRef {
                id: d.id,
                deliver_at: d.deliver_at,
                durable: d.durable,
                exchange: &d.exchange,
                routing_key: &d.routing_key,
                raw_properties: &d.raw_properties,
                body: std::slice::from_ref(&d.body),
            }),
            Record::DelayedDone { id } => RecordRef::DelayedDone { id: *id },
            // The borrowed wrapper must point at a borrowed inner record
            // that lives elsewhere: build it with `RecordRef::InVhost` from
            // `split_vhost`'s parts. Only tests re-encode decoded records;
            // the broker appends what it builds.
            Record::InVhost { inner, .. } => {
                debug_assert!(false, "Record::as_ref of an InVhost record");
                Record::as_ref(inner)
            }
        }
    }

    /// The vhost a record's queue names are in (`None`: `/`) and the
    /// record itself.
    pub fn split_vhost(self) -> (Option<ShortStr>, Record) {
        match self {
            Record::InVhost { vhost, inner } => (Some(vhost), *inner),
            other => (None, other),
        }
    }

    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Message(_) => RecordKind::Message,
            Record::Paged(_) => RecordKind::Paged,
            Record::Copy(_) => RecordKind::Copy,
            Record::Ack { .. } => RecordKind::Ack,
            Record::Delivered { .. } => RecordKind::Delivered,
            Record::Purge { .. } => RecordKind::Purge,
            Record::PurgeReady { .. } => RecordKind::PurgeReady,
            Record::Returned { .. } => RecordKind::Returned,
            Record::QueueDelete { .. } => RecordKind::QueueDelete,
            Record::Metadata { .. } => RecordKind::Metadata,
            Record::Delayed(_) => RecordKind::Delayed,
            Record::DelayedDone { .. } => RecordKind::DelayedDone,
            Record::InVhost { .. } => RecordKind::InVhost,
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

impl<'a> RecordRef<'a> {
    /// The record an `InVhost` wrapper holds, or the record itself: what
    /// it says about messages and their references.
    pub fn content(&self) -> &RecordRef<'a> {
        match self {
            RecordRef::InVhost { inner, .. } => inner,
            other => other,
        }
    }

    /// The kind byte written: the timed form of a message record when one
    /// of its copies has a deadline.
    pub fn wire_kind(&self) -> RecordKind {
        match self {
            RecordRef::Message(m) if m.is_timed() => RecordKind::TimedMessage,
            RecordRef::Paged(m) if m.is_timed() => RecordKind::TimedPaged,
            RecordRef::Copy(m) if m.is_timed() => RecordKind::TimedCopy,
            other => other.kind(),
        }
    }

    pub fn kind(&self) -> RecordKind {
        match self {
            RecordRef::Message(_) => RecordKind::Message,
            RecordRef::Paged(_) => RecordKind::Paged,
            RecordRef::Copy(_) => RecordKind::Copy,
            RecordRef::Ack { .. } => RecordKind::Ack,
            RecordRef::Delivered { .. } => RecordKind::Delivered,
            RecordRef::Purge { .. } => RecordKind::Purge,
            RecordRef::PurgeReady { .. } => RecordKind::PurgeReady,
            RecordRef::Returned { .. } => RecordKind::Returned,
            RecordRef::QueueDelete { .. } => RecordKind::QueueDelete,
            RecordRef::Metadata { .. } => RecordKind::Metadata,
            RecordRef::Delayed(_) => RecordKind::Delayed,
            RecordRef::DelayedDone { .. } => RecordKind::DelayedDone,
            RecordRef::InVhost { .. } => RecordKind::InVhost,
        }
    }
}

#[cfg(test)]
mod tests;
