//! A published message as the broker keeps it: where it was published, its
//! encoded properties and its body, all `Bytes` slices of the buffer the
//! connection read them into. One `Arc<Message>` is shared by every queue a
//! publish was routed to, so a fan-out never copies a body.

use crate::protocol::types::ShortStr;
use bytes::Bytes;
use std::sync::Arc;

/// A message shared between queues (and shards).
pub type MessageRef = Arc<Message>;

#[derive(Debug)]
pub struct Message {
    pub exchange: ShortStr,
    pub routing_key: ShortStr,
    /// The content header's property flags and list, exactly as received.
    pub raw_properties: Bytes,
    /// The body as the body frames carried it: one chunk per frame.
    pub body: Body,
    /// delivery_mode == 2.
    pub persistent: bool,
}

/// A message body: usually one chunk (one body frame), sometimes several.
#[derive(Debug, Default, Clone)]
pub struct Body {
    chunks: Vec<Bytes>,
    len: u64,
}

impl Body {
    pub fn new() -> Body {
        Body::default()
    }

    pub fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.len += chunk.len() as u64;
        self.chunks.push(chunk);
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// The body as one contiguous `Bytes` (copies only if it has several chunks).
    pub fn to_bytes(&self) -> Bytes {
        match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks[0].clone(),
            _ => {
                let mut v = Vec::with_capacity(self.len as usize);
                for c in &self.chunks {
                    v.extend_from_slice(c);
                }
                Bytes::from(v)
            }
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        let mut body = Body::new();
        body.push(b);
        body
    }
}
