//! Direct reply-to (RabbitMQ's `amq.rabbitmq.reply-to`): an RPC client
//! consumes the pseudo-queue in no-ack mode and publishes requests with
//! `reply_to = amq.rabbitmq.reply-to`; the broker rewrites that into a name
//! that addresses the requesting channel, and a reply published to that name
//! through the default exchange goes straight to that channel — no queue.
//!
//! The rewritten name is `amq.rabbitmq.reply-to.<shard>.<conn>.<channel>.<secret>`:
//! the secret (128 random bits, base64url) is drawn when the channel starts
//! consuming the pseudo-queue, and a reply is delivered only when its whole
//! name matches the channel's current address, so a client cannot forge a
//! reply into another connection by guessing (RabbitMQ's name carries a
//! random key the same way and drops replies whose key is wrong). Replies
//! for a connection whose write queue is over its high-water mark are
//! dropped (no-ack deliveries have no other bound), with a log line.

use crate::broker::error::{AmqpError, AmqpResult};
use crate::broker::message::MessageRef;
use crate::connection::ConnShared;
use crate::protocol::properties::BasicProperties;
use crate::protocol::types::ShortStr;
use crate::shard::envelope::ConnKey;
use bytes::Bytes;
use std::cell::Cell;
use std::time::{Duration, Instant};

/// The pseudo-queue clients consume from and name in reply_to.
pub const PSEUDO_QUEUE: &str = "amq.rabbitmq.reply-to";
const PREFIX: &str = "amq.rabbitmq.reply-to.";

/// Property flag of `reply_to` in the first flags word.
const REPLY_TO_FLAG: u16 = 1 << 9;

/// Replies are dropped while the requester's write queue holds more.
const REPLY_QUEUE_LIMIT: usize = super::OUTBOUND_HIGH_WATER;

/// At most one "reply dropped" log line per shard this often.
const DROP_LOG_EVERY: Duration = Duration::from_secs(5);

thread_local! {
    static LAST_DROP_LOG: Cell<Option<Instant>> = const { Cell::new(None) };
    static DROPPED: Cell<u64> = const { Cell::new(0) };
}

/// A fresh, unguessable address for one reply consumer of a channel.
pub fn new_address(conn: ConnKey, channel: u16) -> ShortStr {
    address(conn, channel, &secret())
}

fn address(conn: ConnKey, channel: u16, secret: &str) -> ShortStr {
    ShortStr::try_from_string(format!(
        "{PREFIX}{}.{}.{channel}.{secret}",
        conn.shard, conn.id
    ))
    .expect("short name")
}

/// 128 bits from the kernel's CSPRNG as 22 characters of base64url.
fn secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; 16];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: writes at most the remaining length into our buffer.
        let n = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if n > 0 {
            filled += n as usize;
        } else {
            let e = std::io::Error::last_os_error();
            assert!(
                e.kind() == std::io::ErrorKind::Interrupted,
                "getrandom failed: {e}"
            );
        }
    }
    let bits = u128::from_be_bytes(bytes);
    (0..22)
        .map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char)
        .collect()
}

/// Parses a reply address into (shard, conn, channel); the secret is
/// checked by the channel on delivery.
pub fn parse(routing_key: &str) -> Option<(u16, u64, u16)> {
    let rest = routing_key.strip_prefix(PREFIX)?;
    let mut parts = rest.split('.');
    let shard = parts.next()?.parse().ok()?;
    let conn = parts.next()?.parse().ok()?;
    let channel = parts.next()?.parse().ok()?;
    let _secret = parts.next()?;
    parts.next().is_none().then_some((shard, conn, channel))
}

pub fn is_reply_address(routing_key: &str) -> bool {
    routing_key.starts_with(PREFIX)
}

/// If the properties ask for direct reply-to, returns them rewritten to
/// the channel's reply address (`None` when it is not consuming the
/// pseudo-queue: refused with 406, as RabbitMQ does).
pub fn rewrite_reply_to(raw: &Bytes, address: Option<&ShortStr>) -> AmqpResult<Option<Bytes>> {
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
    let Some(address) = address else {
        return Err(AmqpError::precondition_failed(
            "fast reply consumer does not exist",
        ));
    };
    props.reply_to = Some(address.clone());
    Ok(Some(props.to_bytes()))
}

/// A reply for a channel of this shard: delivered with no ack, under the
/// channel's reply consumer tag. Dropped when the requester went away or
/// stopped consuming, when the address's secret is wrong, and when the
/// requester's write queue is full.
pub fn deliver(conn: &ConnShared, channel: u16, message: MessageRef) {
    let mut channels = conn.channels.borrow_mut();
    let Some(ch) = channels.get_mut(&channel) else {
        return;
    };
    let Some(tag) = ch.reply_consumer_for(&message.routing_key) else {
        return;
    };
    if conn.out.borrow().queued_bytes() > REPLY_QUEUE_LIMIT {
        log_dropped(conn.key.shard, conn.key.id);
        return;
    }
    ch.write_reply(&mut conn.out.borrow_mut(), tag, &message);
    drop(channels);
    conn.notify_writer();
}

/// Counts a reply dropped for a full write queue; logs now and then.
fn log_dropped(shard: u16, conn: u64) {
    let dropped = DROPPED.with(|d| {
        d.set(d.get() + 1);
        d.get()
    });
    let now = Instant::now();
    let due = LAST_DROP_LOG.with(|l| match l.get() {
        Some(t) if now.duration_since(t) < DROP_LOG_EVERY => false,
        _ => {
            l.set(Some(now));
            true
        }
    });
    if due {
        tracing::warn!(
            shard,
            conn,
            dropped,
            "dropped a direct reply-to reply: the connection's write queue is over {} MiB \
             ({dropped} dropped on this shard so far)",
            REPLY_QUEUE_LIMIT >> 20
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_are_unguessable() {
        let key = ConnKey { shard: 1, id: 42 };
        let a = new_address(key, 7);
        let b = new_address(key, 7);
        assert_ne!(a, b, "two addresses of one channel differ");
        let secret = a
            .as_str()
            .strip_prefix("amq.rabbitmq.reply-to.1.42.7.")
            .unwrap();
        assert_eq!(secret.len(), 22);
        assert_eq!(parse(&a), Some((1, 42, 7)));
        assert_eq!(parse("amq.rabbitmq.reply-to.1.42.7"), None, "no secret");
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
        let addr = address(ConnKey { shard: 0, id: 3 }, 2, "s3cret");
        assert_eq!(rewrite_reply_to(&raw, None).unwrap_err().code, 406);
        let new = rewrite_reply_to(&raw, Some(&addr)).unwrap().unwrap();
        let decoded = BasicProperties::decode(new).unwrap();
        assert_eq!(
            decoded.reply_to.unwrap().as_str(),
            "amq.rabbitmq.reply-to.0.3.2.s3cret"
        );
        assert_eq!(decoded.correlation_id.unwrap().as_str(), "c1");
        let plain = BasicProperties::default().to_bytes();
        assert_eq!(rewrite_reply_to(&plain, Some(&addr)).unwrap(), None);
    }
}
