//! A connection's write queue. Frames are encoded into a scratch buffer
//! that is sealed into `Bytes` whenever a body slice must go out as is, so a
//! delivery is written as [deliver + header + body-frame header][body][end]
//! with vectored I/O and the body is never copied (small bodies are copied
//! into the scratch buffer: one iovec less is cheaper than the copy).
//!
//! It also remembers the deliveries queued since the last write, so their
//! owners get transport credit back only once they are on the socket.

use crate::broker::message::Body;
use crate::broker::queue::ConsumerKey;
use crate::broker::vhost::QueueName;
use crate::protocol::frame::{
    encode_body_frame_header, encode_header_frame, encode_heartbeat, encode_method_frame,
    FRAME_END, FRAME_METHOD, FRAME_OVERHEAD,
};
use crate::protocol::methods::{BasicDeliver, Method};
use crate::protocol::types::ShortStr;
use crate::protocol::wire::put_shortstr;
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::VecDeque;

/// Bodies up to this size are copied into the scratch buffer.
const COPY_BODY_BELOW: usize = 512;

/// Scratch buffers are allocated in chunks of this size.
const SCRATCH_CHUNK: usize = 16 * 1024;

/// Deliveries written for one consumer of one queue, not yet credited back.
#[derive(Debug)]
pub struct CreditNote {
    pub owner: u16,
    pub queue: QueueName,
    pub consumer: ConsumerKey,
    pub n: u32,
}

/// basic.deliver's fields, borrowed (`Outbound::deliver_method`).
pub struct BorrowedDeliver<'a> {
    pub consumer_tag: &'a ShortStr,
    pub delivery_tag: u64,
    pub redelivered: bool,
    pub exchange: &'a ShortStr,
    pub routing_key: &'a ShortStr,
}

#[derive(Debug)]
pub struct Outbound {
    sealed: VecDeque<Bytes>,
    scratch: BytesMut,
    queued_bytes: usize,
    credits: Vec<CreditNote>,
    /// Largest frame the peer accepts (tune-ok frame_max; overhead included).
    frame_max: u32,
}

impl Outbound {
    pub fn new(frame_max: u32) -> Outbound {
        Outbound {
            sealed: VecDeque::new(),
            scratch: BytesMut::new(),
            queued_bytes: 0,
            credits: Vec::new(),
            frame_max,
        }
    }

    pub fn set_frame_max(&mut self, frame_max: u32) {
        assert!(frame_max as usize > FRAME_OVERHEAD);
        self.frame_max = frame_max;
    }

    pub fn is_empty(&self) -> bool {
        self.sealed.is_empty() && self.scratch.is_empty()
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes + self.scratch.len()
    }

    fn reserve(&mut self, n: usize) {
        if self.scratch.capacity() - self.scratch.len() < n {
            self.seal();
            self.scratch.reserve(n.max(SCRATCH_CHUNK));
        }
    }

    fn seal(&mut self) {
        if !self.scratch.is_empty() {
            let chunk = self.scratch.split().freeze();
            self.queued_bytes += chunk.len();
            self.sealed.push_back(chunk);
        }
    }

    pub fn method(&mut self, channel: u16, method: &Method) {
        self.reserve(256);
        encode_method_frame(&mut self.scratch, channel, method);
    }

    /// A basic.deliver method frame written from borrowed fields: the
    /// bytes `method` writes for the same `BasicDeliver`, without building
    /// one (no reference counts touched per delivery). The strings are
    /// shortstrs already (at most 255 bytes each).
    pub fn deliver_method(&mut self, channel: u16, d: &BorrowedDeliver<'_>) {
        let shortstrs = [d.consumer_tag, d.exchange, d.routing_key];
        let size = 2
            + 2
            + 8
            + 1
            + shortstrs
                .iter()
                .map(|s| 1 + s.as_bytes().len())
                .sum::<usize>();
        self.reserve(size + FRAME_OVERHEAD);
        let buf = &mut self.scratch;
        buf.put_u8(FRAME_METHOD);
        buf.put_u16(channel);
        buf.put_u32(size as u32);
        buf.put_u16(BasicDeliver::CLASS_ID);
        buf.put_u16(BasicDeliver::METHOD_ID);
        put_shortstr(buf, d.consumer_tag);
        buf.put_u64(d.delivery_tag);
        buf.put_u8(d.redelivered as u8);
        put_shortstr(buf, d.exchange);
        put_shortstr(buf, d.routing_key);
        buf.put_u8(FRAME_END);
    }

    pub fn heartbeat(&mut self) {
        self.reserve(8);
        encode_heartbeat(&mut self.scratch);
    }

    /// A content header and the body frames, split at the peer's frame_max.
    pub fn content(&mut self, channel: u16, class_id: u16, raw_properties: &[u8], body: &Body) {
        self.reserve(raw_properties.len() + 32);
        encode_header_frame(
            &mut self.scratch,
            channel,
            class_id,
            body.len(),
            raw_properties,
        );
        let max_payload = self.frame_max as usize - FRAME_OVERHEAD;
        for chunk in body.chunks() {
            let mut at = 0;
            while at < chunk.len() {
                let end = chunk.len().min(at + max_payload);
                self.body_frame(channel, chunk, at, end);
                at = end;
            }
        }
    }

    /// One body frame carrying `chunk[at..end]`: copied into the scratch
    /// buffer when small (no reference count touched), else queued as a
    /// slice of the chunk.
    fn body_frame(&mut self, channel: u16, chunk: &Bytes, at: usize, end: usize) {
        let len = end - at;
        if len < COPY_BODY_BELOW {
            self.reserve(len + FRAME_OVERHEAD);
            encode_body_frame_header(&mut self.scratch, channel, len as u32);
            self.scratch.put_slice(&chunk[at..end]);
            self.scratch.put_u8(FRAME_END);
        } else {
            self.reserve(FRAME_OVERHEAD);
            encode_body_frame_header(&mut self.scratch, channel, len as u32);
            self.seal();
            self.queued_bytes += len;
            self.sealed.push_back(chunk.slice(at..end));
            self.scratch.put_u8(FRAME_END);
        }
    }

    /// Notes one delivery to credit back to its owner once written.
    pub fn note_delivery(&mut self, owner: u16, queue: &QueueName, consumer: &ConsumerKey) {
        if let Some(last) = self.credits.last_mut() {
            if last.owner == owner && &last.queue == queue && &last.consumer == consumer {
                last.n += 1;
                return;
            }
        }
        self.credits.push(CreditNote {
            owner,
            queue: queue.clone(),
            consumer: consumer.clone(),
            n: 1,
        });
    }

    /// Everything queued so far, for the writer, and the credit it carries.
    pub fn take(&mut self) -> (VecDeque<Bytes>, Vec<CreditNote>) {
        self.seal();
        // The rest of the scratch allocation goes with the sealed chunks: an
        // idle connection keeps no write buffer.
        self.scratch = BytesMut::new();
        self.queued_bytes = 0;
        (
            std::mem::take(&mut self.sealed),
            std::mem::take(&mut self.credits),
        )
    }
}
