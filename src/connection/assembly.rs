//! Publish assembly for one channel: a basic.publish method, then its
//! content header, then body frames until the announced size, checked as
//! RabbitMQ checks them (content out of order and a body longer than
//! announced are connection errors, 505; a body over the maximum message
//! size is a channel error, 406). Pure: frames in, a whole `Publish` out.

use crate::broker::error::{code, AmqpError, AmqpResult};
use crate::broker::message::Body;
use crate::connection::HardError;
use crate::protocol::methods::{BasicPublish, Method};
use crate::protocol::properties::{ContentHeader, BASIC_CLASS_ID};
use bytes::Bytes;

/// Largest message body accepted (RabbitMQ's default max_message_size).
pub const MAX_MESSAGE_SIZE: u64 = 128 * 1024 * 1024;

/// A whole publish, ready to route.
#[derive(Debug)]
pub struct Publish {
    pub method: BasicPublish,
    pub header: ContentHeader,
    pub body: Body,
}

/// What a content frame did to the publish being assembled.
#[derive(Debug)]
pub enum Assembly {
    /// More body frames are to come.
    Pending,
    /// The message is whole.
    Complete(Publish),
    /// The channel is closing: the frame is dropped.
    Dropped,
    /// A channel error (the announced body is over `MAX_MESSAGE_SIZE`): the
    /// publish is discarded and the channel is to be closed with it.
    Refused(AmqpError),
}

/// A publish whose content is still arriving.
#[derive(Debug)]
struct Pending {
    method: BasicPublish,
    header: Option<ContentHeader>,
    body: Body,
}

/// The publish a channel is receiving, if any.
#[derive(Debug, Default)]
pub struct PublishAssembly {
    pending: Option<Pending>,
}

impl PublishAssembly {
    /// Whether a basic.publish waits for its content.
    pub fn in_progress(&self) -> bool {
        self.pending.is_some()
    }

    /// Every method is refused while a publish waits for its content (505,
    /// a connection error).
    pub fn check_method(&self, method: &Method) -> AmqpResult<()> {
        if self.pending.is_none() {
            return Ok(());
        }
        Err(content_expected(method.name()))
    }

    /// basic.publish: its content frames follow.
    pub fn start(&mut self, method: BasicPublish) -> Result<(), HardError> {
        let ids = (BasicPublish::CLASS_ID, BasicPublish::METHOD_ID);
        if self.pending.is_some() {
            return Err((content_expected(BasicPublish::NAME), ids.0, ids.1));
        }
        if method.immediate {
            // RabbitMQ dropped `immediate` (3.0) and closes the connection.
            return Err((
                AmqpError::new(code::NOT_IMPLEMENTED, "immediate=true"),
                ids.0,
                ids.1,
            ));
        }
        self.pending = Some(Pending {
            method,
            header: None,
            body: Body::new(),
        });
        Ok(())
    }

    /// A content header frame on channel `channel`.
    pub fn on_header(
        &mut self,
        channel: u16,
        header: ContentHeader,
    ) -> Result<Assembly, HardError> {
        let Some(p) = self.pending.as_mut().filter(|p| p.header.is_none()) else {
            return Err(unexpected_frame(format!(
                "unexpected content header for class {} on channel {channel}",
                header.class_id
            )));
        };
        if header.class_id != BASIC_CLASS_ID {
            return Err(unexpected_frame(format!(
                "expected content header for class 60, got class {}",
                header.class_id
            )));
        }
        if header.body_size > MAX_MESSAGE_SIZE {
            self.pending = None;
            return Ok(Assembly::Refused(AmqpError::precondition_failed(format!(
                "message size {} is larger than configured max size {MAX_MESSAGE_SIZE}",
                header.body_size
            ))));
        }
        let complete = header.body_size == 0;
        p.header = Some(header);
        Ok(if complete {
            self.take()
        } else {
            Assembly::Pending
        })
    }

    /// A content body frame on channel `channel`.
    pub fn on_body(&mut self, channel: u16, payload: Bytes) -> Result<Assembly, HardError> {
        let Some((p, size)) = self
            .pending
            .as_mut()
            .and_then(|p| p.header.as_ref().map(|h| h.body_size).map(|s| (p, s)))
        else {
            return Err(unexpected_frame(format!(
                "unexpected content body on channel {channel}"
            )));
        };
        p.body.push(payload);
        if p.body.len() > size {
            return Err(unexpected_frame(format!(
                "content body longer than the {size} bytes its header announced"
            )));
        }
        Ok(if p.body.len() < size {
            Assembly::Pending
        } else {
            self.take()
        })
    }

    /// Drops a publish half received (its channel goes away).
    pub fn clear(&mut self) {
        self.pending = None;
    }

    fn take(&mut self) -> Assembly {
        let p = self.pending.take().expect("publish in progress");
        Assembly::Complete(Publish {
            method: p.method,
            header: p.header.expect("header"),
            body: p.body,
        })
    }
}

fn content_expected(method: &str) -> AmqpError {
    AmqpError::new(
        code::UNEXPECTED_FRAME,
        format!(
            "expected content header for class 60, got non content header frame instead (method {method})"
        ),
    )
}

fn unexpected_frame(text: String) -> HardError {
    (AmqpError::new(code::UNEXPECTED_FRAME, text), 0, 0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::methods::QueueDeclare;
    use crate::protocol::types::ShortStr;

    /// The channel the frames come on.
    const CH: u16 = 2;

    pub(crate) fn publish(routing_key: &str) -> BasicPublish {
        BasicPublish {
            exchange: ShortStr::from(""),
            routing_key: ShortStr::from(routing_key),
            mandatory: false,
            immediate: false,
        }
    }

    pub(crate) fn header(class_id: u16, body_size: u64) -> ContentHeader {
        ContentHeader {
            class_id,
            body_size,
            raw_properties: Bytes::from_static(&[0, 0]),
        }
    }

    fn complete(a: Assembly) -> Publish {
        match a {
            Assembly::Complete(p) => p,
            other => panic!("expected a complete publish, got {other:?}"),
        }
    }

    /// The hard error's code, text and class/method ids.
    fn hard(r: Result<Assembly, HardError>) -> (u16, String, u16, u16) {
        match r {
            Err((e, class, method)) => (e.code, e.text, class, method),
            Ok(a) => panic!("expected a connection error, got {a:?}"),
        }
    }

    // ---- publish assembly ----

    #[test]
    fn method_header_and_bodies_assemble_one_publish() {
        let mut ch = PublishAssembly::default();
        ch.start(publish("rk")).unwrap();
        assert!(matches!(
            ch.on_header(CH, header(60, 5)).unwrap(),
            Assembly::Pending
        ));
        assert!(matches!(
            ch.on_body(CH, Bytes::from_static(b"abc")).unwrap(),
            Assembly::Pending
        ));
        let p = complete(ch.on_body(CH, Bytes::from_static(b"de")).unwrap());
        assert_eq!(p.method.routing_key.as_str(), "rk");
        assert_eq!(p.header.body_size, 5);
        assert_eq!(p.body.to_bytes(), Bytes::from_static(b"abcde"));
        assert_eq!(p.body.chunks().len(), 2, "body frames are kept, not copied");
        // The channel is ready for the next publish, and only that.
        assert_eq!(hard(ch.on_body(CH, Bytes::from_static(b"x"))).0, 505);
        ch.start(publish("next")).unwrap();
        let p = complete(ch.on_header(CH, header(60, 0)).unwrap());
        assert_eq!(p.method.routing_key.as_str(), "next");
    }

    #[test]
    fn an_empty_body_completes_at_the_header() {
        let mut ch = PublishAssembly::default();
        ch.start(publish("rk")).unwrap();
        let p = complete(ch.on_header(CH, header(60, 0)).unwrap());
        assert!(p.body.is_empty());
        // A stray empty body frame afterwards is out of order.
        assert_eq!(hard(ch.on_body(CH, Bytes::new())).0, 505);
    }

    #[test]
    fn a_body_longer_than_announced_closes_the_connection() {
        let mut ch = PublishAssembly::default();
        ch.start(publish("rk")).unwrap();
        ch.on_header(CH, header(60, 4)).unwrap();
        assert_eq!(
            hard(ch.on_body(CH, Bytes::from_static(b"12345"))),
            (
                505,
                "UNEXPECTED_FRAME - content body longer than the 4 bytes its header announced"
                    .into(),
                0,
                0
            )
        );
    }

    #[test]
    fn a_body_over_the_maximum_size_closes_the_channel() {
        let mut ch = PublishAssembly::default();
        ch.start(publish("rk")).unwrap();
        match ch.on_header(CH, header(60, MAX_MESSAGE_SIZE + 1)).unwrap() {
            Assembly::Refused(e) => {
                assert_eq!(e.code, 406);
                assert_eq!(
                    e.text,
                    format!(
                        "PRECONDITION_FAILED - message size {} is larger than configured max \
                         size {MAX_MESSAGE_SIZE}",
                        MAX_MESSAGE_SIZE + 1
                    )
                );
                assert!(!e.is_hard());
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // The publish is gone: what the client still sends of it is out of order.
        assert_eq!(hard(ch.on_body(CH, Bytes::from_static(b"x"))).0, 505);
        // Exactly the maximum is accepted.
        ch.start(publish("rk")).unwrap();
        assert!(matches!(
            ch.on_header(CH, header(60, MAX_MESSAGE_SIZE)).unwrap(),
            Assembly::Pending
        ));
    }

    #[test]
    fn content_out_of_order_is_an_unexpected_frame() {
        // A header or a body with no basic.publish before it.
        let mut ch = PublishAssembly::default();
        assert_eq!(
            hard(ch.on_header(CH, header(60, 1))),
            (
                505,
                "UNEXPECTED_FRAME - unexpected content header for class 60 on channel 2".into(),
                0,
                0
            )
        );
        assert_eq!(
            hard(ch.on_body(CH, Bytes::from_static(b"x"))).1,
            "UNEXPECTED_FRAME - unexpected content body on channel 2"
        );
        // A body before the header.
        ch.start(publish("rk")).unwrap();
        assert_eq!(
            hard(ch.on_body(CH, Bytes::from_static(b"x"))).1,
            "UNEXPECTED_FRAME - unexpected content body on channel 2"
        );
        // A header of another class.
        assert_eq!(
            hard(ch.on_header(CH, header(50, 1))).1,
            "UNEXPECTED_FRAME - expected content header for class 60, got class 50"
        );
        // A second header.
        ch.on_header(CH, header(60, 2)).unwrap();
        assert_eq!(
            hard(ch.on_header(CH, header(60, 2))).1,
            "UNEXPECTED_FRAME - unexpected content header for class 60 on channel 2"
        );
        // A method where content is expected, basic.publish included.
        let e = ch
            .check_method(&Method::from(QueueDeclare::default()))
            .unwrap_err();
        assert_eq!(e.code, 505);
        assert_eq!(
            e.text,
            "UNEXPECTED_FRAME - expected content header for class 60, got non content header \
             frame instead (method queue.declare)"
        );
        let (e, class, method) = ch.start(publish("again")).unwrap_err();
        assert_eq!((e.code, class, method), (505, 60, 40));
        assert_eq!(
            e.text,
            "UNEXPECTED_FRAME - expected content header for class 60, got non content header \
             frame instead (method basic.publish)"
        );
    }

    #[test]
    fn immediate_is_refused() {
        let mut ch = PublishAssembly::default();
        let mut m = publish("rk");
        m.immediate = true;
        let (e, class, method) = ch.start(m).unwrap_err();
        assert_eq!((e.code, class, method), (540, 60, 40));
        assert!(ch
            .check_method(&Method::from(QueueDeclare::default()))
            .is_ok());
    }
}
