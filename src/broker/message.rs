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

/// Messages up to this size (body and properties) are copied out of the
/// read buffer when a queue keeps them waiting (`Message::detached`); larger
/// ones stay slices of it, pinning at most a few times their own size.
pub const DETACH_AT_MOST: u64 = 16 * 1024;

impl Message {
    /// The same message with every field in one allocation of its own size.
    ///
    /// A message's slices keep the whole read buffer they point into alive
    /// (64 KiB, shared with the messages read alongside). A small message
    /// that waits in a queue while its neighbours are delivered or paged out
    /// would otherwise hold that buffer for itself: a queue of 100-byte
    /// messages could pin hundreds of times the memory it is charged.
    pub fn detached(&self) -> Message {
        let exchange = self.exchange.as_bytes();
        let routing_key = self.routing_key.as_bytes();
        let mut all = Vec::with_capacity(
            exchange.len()
                + routing_key.len()
                + self.raw_properties.len()
                + self.body.len() as usize,
        );
        all.extend_from_slice(exchange);
        all.extend_from_slice(routing_key);
        all.extend_from_slice(&self.raw_properties);
        for chunk in self.body.chunks() {
            all.extend_from_slice(chunk);
        }
        let all = Bytes::from(all);
        let mut at = 0;
        let mut next = |len: usize| {
            let part = all.slice(at..at + len);
            at += len;
            part
        };
        let exchange = ShortStr::from_bytes(next(exchange.len())).expect("a copy of a shortstr");
        let routing_key =
            ShortStr::from_bytes(next(routing_key.len())).expect("a copy of a shortstr");
        let raw_properties = next(self.raw_properties.len());
        let body = Body::from(next(self.body.len() as usize));
        Message {
            exchange,
            routing_key,
            raw_properties,
            body,
            persistent: self.persistent,
        }
    }
}

/// A message body: usually one chunk (one body frame), sometimes several.
/// One chunk is held inline: no allocation besides the chunk's own.
#[derive(Debug, Default, Clone)]
pub struct Body {
    chunks: Chunks,
    len: u64,
}

#[derive(Debug, Default, Clone)]
enum Chunks {
    #[default]
    Empty,
    One(Bytes),
    Many(Vec<Bytes>),
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
        self.chunks = match std::mem::take(&mut self.chunks) {
            Chunks::Empty => Chunks::One(chunk),
            Chunks::One(first) => Chunks::Many(vec![first, chunk]),
            Chunks::Many(mut all) => {
                all.push(chunk);
                Chunks::Many(all)
            }
        };
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn chunks(&self) -> &[Bytes] {
        match &self.chunks {
            Chunks::Empty => &[],
            Chunks::One(one) => std::slice::from_ref(one),
            Chunks::Many(all) => all,
        }
    }

    /// The body as one contiguous `Bytes` (copies only if it has several chunks).
    pub fn to_bytes(&self) -> Bytes {
        match &self.chunks {
            Chunks::Empty => Bytes::new(),
            Chunks::One(one) => one.clone(),
            Chunks::Many(all) => {
                let mut v = Vec::with_capacity(self.len as usize);
                for c in all {
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

#[cfg(test)]
impl Message {
    /// A small message as a connection's reader makes one: its routing key
    /// (1 byte), properties (2) and body (16) are slices of `buffer` from
    /// `at` on; the exchange is the default one.
    pub(crate) fn sliced_for_tests(buffer: &Bytes, at: usize) -> Message {
        Message {
            exchange: ShortStr::EMPTY,
            routing_key: ShortStr::from_bytes(buffer.slice(at..at + 1)).expect("one ASCII byte"),
            raw_properties: buffer.slice(at + 1..at + 3),
            body: Body::from(buffer.slice(at + 3..at + 19)),
            persistent: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_message_is_equal_and_owns_one_allocation() {
        let read_buffer = Bytes::from(vec![b'r'; 64 * 1024]);
        let mut body = Body::new();
        body.push(read_buffer.slice(100..150));
        body.push(read_buffer.slice(200..210));
        let m = Message {
            exchange: ShortStr::from("amq.direct"),
            routing_key: ShortStr::from("key"),
            raw_properties: read_buffer.slice(10..20),
            body,
            persistent: true,
        };
        let d = m.detached();
        assert_eq!(&*d.exchange, "amq.direct");
        assert_eq!(&*d.routing_key, "key");
        assert_eq!(d.raw_properties, m.raw_properties);
        assert_eq!(d.body.to_bytes(), m.body.to_bytes());
        assert_eq!(d.body.chunks().len(), 1);
        assert_eq!(m.body.chunks().len(), 2);
        assert_eq!(&m.body.chunks()[1][..], &read_buffer[200..210]);
        assert!(d.persistent);
        // Nothing of the read buffer is referenced any more.
        let range = read_buffer.as_ptr_range();
        for part in [&d.raw_properties, &d.body.chunks()[0]] {
            assert!(!range.contains(&part.as_ptr()));
        }
    }
}
