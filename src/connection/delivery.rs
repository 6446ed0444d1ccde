//! The one encoder of a message on its way to a client: the method that
//! carries it (basic.deliver to a consumer, basic.get-ok to a basic.get,
//! basic.return to a publisher whose mandatory publish reached no queue)
//! followed by its content header and body frames, appended to the
//! connection's write queue. Every delivery, get-ok and return goes
//! through `write`.

use crate::broker::message::Message;
use crate::broker::topology::sender_selected;
use crate::connection::outbound::{BorrowedDeliver, Outbound};
use crate::protocol::methods::{BasicDeliver, BasicGetOk, BasicReturn, Method};
use crate::protocol::properties::BASIC_CLASS_ID;
use crate::protocol::types::ShortStr;

/// The method that carries a message, less the exchange and routing key
/// (those are the message's own).
#[derive(Debug, Clone)]
pub enum Carrier {
    /// basic.deliver to a consumer.
    Deliver {
        consumer_tag: ShortStr,
        delivery_tag: u64,
        redelivered: bool,
    },
    /// basic.get-ok.
    GetOk {
        delivery_tag: u64,
        redelivered: bool,
        message_count: u32,
    },
    /// basic.return of an unroutable mandatory publish.
    Return {
        reply_code: u16,
        reply_text: ShortStr,
    },
}

/// Queues the carrier method and the message's content (header frame and
/// body frames split at the peer's frame_max) on `channel`.
pub fn write(out: &mut Outbound, channel: u16, carrier: Carrier, message: &Message) {
    if let Carrier::Deliver {
        consumer_tag,
        delivery_tag,
        redelivered,
    } = &carrier
    {
        deliver(
            out,
            channel,
            consumer_tag,
            *delivery_tag,
            *redelivered,
            message,
        );
        return;
    }
    let exchange = message.exchange.clone();
    let routing_key = message.routing_key.clone();
    let method: Method = match carrier {
        Carrier::Deliver {
            consumer_tag,
            delivery_tag,
            redelivered,
        } => BasicDeliver {
            consumer_tag,
            delivery_tag,
            redelivered,
            exchange,
            routing_key,
        }
        .into(),
        Carrier::GetOk {
            delivery_tag,
            redelivered,
            message_count,
        } => BasicGetOk {
            delivery_tag,
            redelivered,
            exchange,
            routing_key,
            message_count,
        }
        .into(),
        Carrier::Return {
            reply_code,
            reply_text,
        } => BasicReturn {
            reply_code,
            reply_text,
            exchange,
            routing_key,
        }
        .into(),
    };
    out.method(channel, &method);
    content(out, channel, message);
}

/// basic.deliver of `message` to `consumer_tag`, encoded from borrowed
/// fields (the hottest path: no strings cloned per delivery).
pub fn deliver(
    out: &mut Outbound,
    channel: u16,
    consumer_tag: &ShortStr,
    delivery_tag: u64,
    redelivered: bool,
    message: &Message,
) {
    out.deliver_method(
        channel,
        &BorrowedDeliver {
            consumer_tag,
            delivery_tag,
            redelivered,
            exchange: &message.exchange,
            routing_key: &message.routing_key,
        },
    );
    content(out, channel, message);
}

/// The message's content header and body frames.
fn content(out: &mut Outbound, channel: u16, message: &Message) {
    // A `BCC` header is never shown to a client (sender-selected
    // distribution); other properties go out as stored.
    out.content(
        channel,
        BASIC_CLASS_ID,
        &sender_selected::delivered_properties(&message.raw_properties),
        &message.body,
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::broker::message::Body;
    use crate::protocol::frame::{Frame, FrameDecoder};
    use bytes::{Bytes, BytesMut};

    /// Everything queued on `out`, decoded back into frames.
    pub(crate) fn frames(out: &mut Outbound, frame_max: u32) -> Vec<Frame> {
        let (bufs, _) = out.take();
        let mut buf = BytesMut::new();
        for b in bufs {
            buf.extend_from_slice(&b);
        }
        let mut decoder = FrameDecoder::new(frame_max);
        let mut frames = Vec::new();
        while let Some(f) = decoder.decode(&mut buf).expect("well-formed frames") {
            frames.push(f);
        }
        assert!(buf.is_empty(), "no partial frame left");
        frames
    }

    pub(crate) fn message(body: &[u8]) -> Message {
        Message {
            exchange: ShortStr::from("x"),
            routing_key: ShortStr::from("rk"),
            raw_properties: Bytes::from_static(&[0, 0]),
            body: Body::from(Bytes::copy_from_slice(body)),
            persistent: false,
        }
    }

    #[test]
    fn a_borrowed_deliver_is_the_codec_s_basic_deliver() {
        let msg = message(b"hello");
        let tag = ShortStr::from("amq.ctag-0123456789");
        let mut borrowed = Outbound::new(4096);
        deliver(&mut borrowed, 9, &tag, u64::MAX - 1, true, &msg);
        let mut owned = Outbound::new(4096);
        let method: Method = BasicDeliver {
            consumer_tag: tag.clone(),
            delivery_tag: u64::MAX - 1,
            redelivered: true,
            exchange: msg.exchange.clone(),
            routing_key: msg.routing_key.clone(),
        }
        .into();
        owned.method(9, &method);
        content(&mut owned, 9, &msg);
        let bytes = |out: &mut Outbound| -> Vec<u8> {
            out.take().0.iter().flat_map(|b| b.to_vec()).collect()
        };
        assert_eq!(bytes(&mut borrowed), bytes(&mut owned));
    }

    #[test]
    fn each_carrier_is_followed_by_the_content() {
        let body = vec![7u8; 10_000];
        let msg = message(&body);
        let carriers = [
            Carrier::Deliver {
                consumer_tag: ShortStr::from("ctag"),
                delivery_tag: 3,
                redelivered: true,
            },
            Carrier::GetOk {
                delivery_tag: 4,
                redelivered: false,
                message_count: 9,
            },
            Carrier::Return {
                reply_code: 312,
                reply_text: ShortStr::from("NO_ROUTE"),
            },
        ];
        for carrier in carriers {
            // frame_max 4096: the body goes out in three frames.
            let mut out = Outbound::new(4096);
            write(&mut out, 5, carrier.clone(), &msg);
            let frames = frames(&mut out, 4096);
            assert_eq!(frames.len(), 5, "{carrier:?}: method, header, 3 bodies");
            match (&carrier, &frames[0]) {
                (
                    Carrier::Deliver { .. },
                    Frame::Method {
                        channel: 5,
                        method: Method::BasicDeliver(m),
                    },
                ) => {
                    assert_eq!(
                        (m.consumer_tag.as_str(), m.delivery_tag, m.redelivered),
                        ("ctag", 3, true)
                    );
                    assert_eq!((m.exchange.as_str(), m.routing_key.as_str()), ("x", "rk"));
                }
                (
                    Carrier::GetOk { .. },
                    Frame::Method {
                        channel: 5,
                        method: Method::BasicGetOk(m),
                    },
                ) => {
                    assert_eq!(
                        (m.delivery_tag, m.redelivered, m.message_count),
                        (4, false, 9)
                    );
                    assert_eq!((m.exchange.as_str(), m.routing_key.as_str()), ("x", "rk"));
                }
                (
                    Carrier::Return { .. },
                    Frame::Method {
                        channel: 5,
                        method: Method::BasicReturn(m),
                    },
                ) => {
                    assert_eq!((m.reply_code, m.reply_text.as_str()), (312, "NO_ROUTE"));
                    assert_eq!((m.exchange.as_str(), m.routing_key.as_str()), ("x", "rk"));
                }
                (c, f) => panic!("{c:?} encoded as {f:?}"),
            }
            let Frame::Header { channel: 5, header } = &frames[1] else {
                panic!("a content header second: {:?}", frames[1]);
            };
            assert_eq!(
                (header.class_id, header.body_size),
                (BASIC_CLASS_ID, 10_000)
            );
            let mut got = Vec::new();
            for f in &frames[2..] {
                let Frame::Body {
                    channel: 5,
                    payload,
                } = f
                else {
                    panic!("body frames last: {f:?}");
                };
                assert!(payload.len() <= 4096 - 8);
                got.extend_from_slice(payload);
            }
            assert_eq!(got, body);
        }
    }

    #[test]
    fn an_empty_body_has_no_body_frame() {
        let mut out = Outbound::new(131_072);
        write(
            &mut out,
            1,
            Carrier::GetOk {
                delivery_tag: 1,
                redelivered: false,
                message_count: 0,
            },
            &message(b""),
        );
        let frames = frames(&mut out, 131_072);
        assert_eq!(frames.len(), 2, "{frames:?}");
    }
}
