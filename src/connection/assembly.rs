//! Publish assembly for one channel: a basic.publish method, then its
//! content header, then body frames until the announced size, checked as
//! RabbitMQ checks them (content out of order and a body longer than
//! announced are connection errors, 505; a body over the maximum message
//! size is a channel error, 406). Pure: frames in, a whole `Publish` out.

use crate::broker::error::{code, AmqpError};
use crate::broker::message::Body;
use crate::connection::HardError;
use crate::protocol::methods::BasicPublish;
use crate::protocol::properties::{ContentHeader, BASIC_CLASS_ID};
use bytes::Bytes;

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
    /// A channel error (the announced body is over the maximum message size): the
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

/// RabbitMQ's texts for content out of order (`rabbit_command_assembler`).
const EXPECTED_METHOD: &str = "expected method frame, got non method frame instead";
const EXPECTED_HEADER: &str =
    "expected content header for class 60, got non content header frame instead";
const EXPECTED_BODY: &str = "expected content body, got non content body frame instead";

/// The class and method ids RabbitMQ names when content is out of order:
/// the basic.publish waiting for it.
const PUBLISH_IDS: (u16, u16) = (BasicPublish::CLASS_ID, BasicPublish::METHOD_ID);

impl PublishAssembly {
    /// Whether a basic.publish waits for its content.
    pub fn in_progress(&self) -> bool {
        self.pending.is_some()
    }

    /// Every method (basic.publish included) is refused while a publish
    /// waits for its content (505, a connection error naming the publish).
    pub fn check_method(&self) -> Result<(), HardError> {
        match &self.pending {
            None => Ok(()),
            Some(p) if p.header.is_none() => Err(out_of_order(EXPECTED_HEADER.into())),
            Some(_) => Err(out_of_order(EXPECTED_BODY.into())),
        }
    }

    /// basic.publish: its content frames follow.
    pub fn start(&mut self, method: BasicPublish) -> Result<(), HardError> {
        self.check_method()?;
        if method.immediate {
            // RabbitMQ dropped `immediate` (3.0) and closes the connection.
            return Err((
                AmqpError::new(code::NOT_IMPLEMENTED, "immediate=true"),
                PUBLISH_IDS.0,
                PUBLISH_IDS.1,
            ));
        }
        self.pending = Some(Pending {
            method,
            header: None,
            body: Body::new(),
        });
        Ok(())
    }

    /// A content header frame; `max_size` is the largest body accepted
    /// (`--max-message-size`, RabbitMQ's `max_message_size`).
    pub fn on_header(
        &mut self,
        header: ContentHeader,
        max_size: u64,
    ) -> Result<Assembly, HardError> {
        let Some(p) = self.pending.as_mut() else {
            return Err((
                AmqpError::new(code::UNEXPECTED_FRAME, EXPECTED_METHOD),
                0,
                0,
            ));
        };
        if p.header.is_some() {
            return Err(out_of_order(EXPECTED_BODY.into()));
        }
        if header.class_id != BASIC_CLASS_ID {
            return Err(out_of_order(format!(
                "expected content header for class 60, got one for class {} instead",
                header.class_id
            )));
        }
        if header.body_size > max_size {
            // RabbitMQ refuses once the whole body is in; Warren at the
            // header, with the same reply (what follows of it is dropped
            // with the closing channel).
            self.pending = None;
            return Ok(Assembly::Refused(AmqpError::precondition_failed(format!(
                "message size {} is larger than configured max size {max_size}",
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

    /// A content body frame.
    pub fn on_body(&mut self, payload: Bytes) -> Result<Assembly, HardError> {
        let Some(p) = self.pending.as_mut() else {
            return Err((
                AmqpError::new(code::UNEXPECTED_FRAME, EXPECTED_METHOD),
                0,
                0,
            ));
        };
        let Some(size) = p.header.as_ref().map(|h| h.body_size) else {
            return Err(out_of_order(EXPECTED_HEADER.into()));
        };
        if p.body.len() + payload.len() as u64 > size {
            // RabbitMQ waits for more body and fails at the next frame
            // that is not one; Warren refuses the overrun at once.
            return Err(out_of_order(format!(
                "content body longer than the {size} bytes its header announced"
            )));
        }
        p.body.push(payload);
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

fn out_of_order(text: String) -> HardError {
    (
        AmqpError::new(code::UNEXPECTED_FRAME, text),
        PUBLISH_IDS.0,
        PUBLISH_IDS.1,
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::types::ShortStr;

    /// RabbitMQ's default max_message_size.
    pub(crate) const MAX_MESSAGE_SIZE: u64 = 128 << 20;

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
            ch.on_header(header(60, 5), MAX_MESSAGE_SIZE).unwrap(),
            Assembly::Pending
        ));
        assert!(matches!(
            ch.on_body(Bytes::from_static(b"abc")).unwrap(),
            Assembly::Pending
        ));
        let p = complete(ch.on_body(Bytes::from_static(b"de")).unwrap());
        assert_eq!(p.method.routing_key.as_str(), "rk");
        assert_eq!(p.header.body_size, 5);
        assert_eq!(p.body.to_bytes(), Bytes::from_static(b"abcde"));
        assert_eq!(p.body.chunks().len(), 2, "body frames are kept, not copied");
        // The channel is ready for the next publish, and only that.
        assert_eq!(hard(ch.on_body(Bytes::from_static(b"x"))).0, 505);
        ch.start(publish("next")).unwrap();
        let p = complete(ch.on_header(header(60, 0), MAX_MESSAGE_SIZE).unwrap());
        assert_eq!(p.method.routing_key.as_str(), "next");
    }

    #[test]
    fn an_empty_body_completes_at_the_header() {
        let mut ch = PublishAssembly::default();
        ch.start(publish("rk")).unwrap();
        let p = complete(ch.on_header(header(60, 0), MAX_MESSAGE_SIZE).unwrap());
        assert!(p.body.is_empty());
        // A stray empty body frame afterwards is out of order.
        assert_eq!(hard(ch.on_body(Bytes::new())).0, 505);
    }

    #[test]
    fn a_body_longer_than_announced_closes_the_connection() {
        let mut ch = PublishAssembly::default();
        ch.start(publish("rk")).unwrap();
        ch.on_header(header(60, 4), MAX_MESSAGE_SIZE).unwrap();
        assert_eq!(
            hard(ch.on_body(Bytes::from_static(b"12345"))),
            (
                505,
                "UNEXPECTED_FRAME - content body longer than the 4 bytes its header announced"
                    .into(),
                60,
                40
            )
        );
    }

    #[test]
    fn a_body_over_the_maximum_size_closes_the_channel() {
        let mut ch = PublishAssembly::default();
        ch.start(publish("rk")).unwrap();
        match ch
            .on_header(header(60, MAX_MESSAGE_SIZE + 1), MAX_MESSAGE_SIZE)
            .unwrap()
        {
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
        assert_eq!(hard(ch.on_body(Bytes::from_static(b"x"))).0, 505);
        // Exactly the maximum is accepted.
        ch.start(publish("rk")).unwrap();
        assert!(matches!(
            ch.on_header(header(60, MAX_MESSAGE_SIZE), MAX_MESSAGE_SIZE)
                .unwrap(),
            Assembly::Pending
        ));
    }

    #[test]
    fn content_out_of_order_is_an_unexpected_frame_with_rabbitmqs_texts() {
        let expected_method = (
            505,
            "UNEXPECTED_FRAME - expected method frame, got non method frame instead".into(),
            0,
            0,
        );
        let expected_header = (
            505,
            "UNEXPECTED_FRAME - expected content header for class 60, got non content header \
             frame instead"
                .into(),
            60,
            40,
        );
        let expected_body = (
            505,
            "UNEXPECTED_FRAME - expected content body, got non content body frame instead".into(),
            60,
            40,
        );
        // A header or a body with no basic.publish before it.
        let mut ch = PublishAssembly::default();
        assert_eq!(
            hard(ch.on_header(header(60, 1), MAX_MESSAGE_SIZE)),
            expected_method
        );
        assert_eq!(hard(ch.on_body(Bytes::from_static(b"x"))), expected_method);
        // A body, or a method, before the header.
        ch.start(publish("rk")).unwrap();
        assert_eq!(hard(ch.on_body(Bytes::from_static(b"x"))), expected_header);
        let e = ch.check_method().unwrap_err();
        assert_eq!((e.0.code, e.0.text, e.1, e.2), expected_header);
        // A header of another class.
        assert_eq!(
            hard(ch.on_header(header(50, 1), MAX_MESSAGE_SIZE)).1,
            "UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead"
        );
        // A second header, a method, or another publish where body is expected.
        ch.on_header(header(60, 2), MAX_MESSAGE_SIZE).unwrap();
        assert_eq!(
            hard(ch.on_header(header(60, 2), MAX_MESSAGE_SIZE)),
            expected_body
        );
        let e = ch.check_method().unwrap_err();
        assert_eq!((e.0.code, e.0.text, e.1, e.2), expected_body);
        let e = ch.start(publish("again")).unwrap_err();
        assert_eq!((e.0.code, e.0.text, e.1, e.2), expected_body);
    }

    #[test]
    fn the_maximum_size_is_the_one_given() {
        let mut ch = PublishAssembly::default();
        ch.start(publish("rk")).unwrap();
        match ch.on_header(header(60, 1001), 1000).unwrap() {
            Assembly::Refused(e) => assert_eq!(
                e.text,
                "PRECONDITION_FAILED - message size 1001 is larger than configured max size 1000"
            ),
            other => panic!("expected a refusal, got {other:?}"),
        }
        ch.start(publish("rk")).unwrap();
        assert!(matches!(
            ch.on_header(header(60, 1000), 1000).unwrap(),
            Assembly::Pending
        ));
    }

    #[test]
    fn immediate_is_refused() {
        let mut ch = PublishAssembly::default();
        let mut m = publish("rk");
        m.immediate = true;
        let (e, class, method) = ch.start(m).unwrap_err();
        assert_eq!((e.code, class, method), (540, 60, 40));
        assert!(ch.check_method().is_ok());
    }
}
