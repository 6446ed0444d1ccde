//! Direct reply-to (RabbitMQ's `amq.rabbitmq.reply-to`): an RPC client
//! consumes the pseudo-queue in no-ack mode and publishes requests with
//! `reply_to = amq.rabbitmq.reply-to`; the broker rewrites that into a name
//! that addresses the requesting channel, and a reply published to that name
//! through the default exchange goes straight to that channel — no queue.
//!
//! The rewritten name is `amq.rabbitmq.reply-to.<shard>.<conn>.<channel>`.

use crate::broker::error::{AmqpError, AmqpResult};
use crate::broker::message::MessageRef;
use crate::connection::ConnShared;
use crate::protocol::methods::BasicDeliver;
use crate::protocol::properties::{BasicProperties, BASIC_CLASS_ID};
use crate::protocol::types::ShortStr;
use crate::shard::envelope::ConnKey;
use bytes::Bytes;

/// The pseudo-queue clients consume from and name in reply_to.
pub const PSEUDO_QUEUE: &str = "amq.rabbitmq.reply-to";
const PREFIX: &str = "amq.rabbitmq.reply-to.";

/// Property flag of `reply_to` in the first flags word.
const REPLY_TO_FLAG: u16 = 1 << 9;

/// The routing key that addresses one channel.
pub fn address(conn: ConnKey, channel: u16) -> ShortStr {
    ShortStr::try_from_string(format!("{PREFIX}{}.{}.{channel}", conn.shard, conn.id))
        .expect("short name")
}

/// Parses a reply address back into (shard, conn, channel).
pub fn parse(routing_key: &str) -> Option<(u16, u64, u16)> {
    let rest = routing_key.strip_prefix(PREFIX)?;
    let mut parts = rest.split('.');
    let shard = parts.next()?.parse().ok()?;
    let conn = parts.next()?.parse().ok()?;
    let channel = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((shard, conn, channel))
}

pub fn is_reply_address(routing_key: &str) -> bool {
    routing_key.starts_with(PREFIX)
}

/// If the properties ask for direct reply-to, returns them rewritten to
/// this channel's address; refuses (406) when the channel is not consuming
/// the pseudo-queue, as RabbitMQ does.
pub fn rewrite_reply_to(
    raw: &Bytes,
    conn: ConnKey,
    channel: u16,
    consuming: bool,
) -> AmqpResult<Option<Bytes>> {
    let flags = match raw.as_ref() {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    if flags & REPLY_TO_FLAG == 0 {
        return Ok(None);
    }
    let Ok(mut props) = BasicProperties::decode(raw.clone()) else {
        return Ok(None);
    };
    if props.reply_to.as_deref() != Some(PSEUDO_QUEUE) {
        return Ok(None);
    }
    if !consuming {
        return Err(AmqpError::precondition_failed(
            "fast reply consumer does not exist",
        ));
    }
    props.reply_to = Some(address(conn, channel));
    Ok(Some(props.to_bytes()))
}

/// A reply for a channel of this shard: delivered with no ack, under the
/// channel's reply consumer tag. Dropped when the requester went away.
pub fn deliver(conn: &ConnShared, channel: u16, message: MessageRef) {
    let mut channels = conn.channels.borrow_mut();
    let Some(ch) = channels.get_mut(&channel).filter(|c| c.is_open()) else {
        return;
    };
    let Some(tag) = ch.reply_to_consumer.clone() else {
        return;
    };
    let delivery_tag = ch.next_delivery_tag(None);
    let mut out = conn.out.borrow_mut();
    out.method(
        channel,
        &BasicDeliver {
            consumer_tag: tag,
            delivery_tag,
            redelivered: false,
            exchange: message.exchange.clone(),
            routing_key: message.routing_key.clone(),
        }
        .into(),
    );
    out.content(
        channel,
        BASIC_CLASS_ID,
        &message.raw_properties,
        &message.body,
    );
    drop(out);
    drop(channels);
    conn.notify_writer();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_round_trips() {
        let a = address(ConnKey { shard: 1, id: 42 }, 7);
        assert_eq!(a.as_str(), "amq.rabbitmq.reply-to.1.42.7");
        assert_eq!(parse(&a), Some((1, 42, 7)));
        assert_eq!(parse("amq.rabbitmq.reply-to.x"), None);
        assert_eq!(parse("other"), None);
    }

    #[test]
    fn rewrite_only_when_asked_and_consuming() {
        let props = BasicProperties {
            reply_to: Some(ShortStr::from(PSEUDO_QUEUE)),
            correlation_id: Some(ShortStr::from("c1")),
            ..Default::default()
        };
        let raw = props.to_bytes();
        let key = ConnKey { shard: 0, id: 3 };
        assert_eq!(rewrite_reply_to(&raw, key, 2, false).unwrap_err().code, 406);
        let new = rewrite_reply_to(&raw, key, 2, true).unwrap().unwrap();
        let decoded = BasicProperties::decode(new).unwrap();
        assert_eq!(
            decoded.reply_to.unwrap().as_str(),
            "amq.rabbitmq.reply-to.0.3.2"
        );
        assert_eq!(decoded.correlation_id.unwrap().as_str(), "c1");
        let plain = BasicProperties::default().to_bytes();
        assert_eq!(rewrite_reply_to(&plain, key, 2, true).unwrap(), None);
    }
}
