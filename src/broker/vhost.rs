//! Virtual hosts as the broker names them: `VhostId` (a small id the
//! metadata leader hands out when a vhost is added, never reused while the
//! broker runs; `/` is always `VhostId::DEFAULT`), `QueueName` (a queue is
//! its vhost and its name: `q` in two vhosts is two queues) and
//! `VhostLimits` (`set_vhost_limits`, with RabbitMQ's refusal texts).

use crate::broker::error::{code, AmqpError};
use crate::protocol::types::ShortStr;
use std::fmt;
use std::ops::Deref;

/// The name of the vhost every broker has from its first start.
pub const DEFAULT_VHOST: &str = "/";

/// A vhost, interned: ids are assigned by the metadata leader and
/// replicated with the vhost, so every shard agrees on them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VhostId(pub u32);

impl VhostId {
    /// `/`.
    pub const DEFAULT: VhostId = VhostId(0);
}

/// A queue: the vhost it lives in and its name there. Derefs to the name
/// (what error texts and the wire show); equality and hashing include the
/// vhost.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueName {
    pub vhost: VhostId,
    pub name: ShortStr,
}

/// The queues of one owner shard that a publish reaches: nearly always
/// one, kept inline (no allocation per publish); derefs to a slice.
pub type QueueNames = smallvec::SmallVec<[QueueName; 1]>;

impl QueueName {
    pub fn new(vhost: VhostId, name: ShortStr) -> QueueName {
        QueueName { vhost, name }
    }

    /// A queue of `/` (tests, and records written before vhosts existed).
    pub fn default_vhost(name: impl Into<ShortStr>) -> QueueName {
        QueueName::new(VhostId::DEFAULT, name.into())
    }
}

impl Deref for QueueName {
    type Target = ShortStr;
    fn deref(&self) -> &ShortStr {
        &self.name
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.name, f)
    }
}

/// A vhost's limits (`rabbitmqctl set_vhost_limits`); `None`: no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VhostLimits {
    pub max_connections: Option<u32>,
    pub max_queues: Option<u32>,
}

impl VhostLimits {
    pub fn is_empty(&self) -> bool {
        self.max_connections.is_none() && self.max_queues.is_none()
    }

    /// connection.open refused at `max-connections`, as RabbitMQ 3.10.
    pub fn connection_refused(&self, vhost: &str, user: &str) -> AmqpError {
        let max = self.max_connections.unwrap_or(0);
        AmqpError::new(
            code::NOT_ALLOWED,
            format!(
                "access to vhost '{vhost}' refused for user '{user}': connection limit ({max}) is reached"
            ),
        )
    }

    /// queue.declare refused at `max-queues`, as RabbitMQ 3.10.
    pub fn check_queue(&self, vhost: &str, queue: &str, existing: usize) -> Result<(), AmqpError> {
        match self.max_queues {
            Some(max) if existing as u64 >= max as u64 => Err(AmqpError::precondition_failed(
                format!("cannot declare queue '{queue}': queue limit in vhost '{vhost}' ({max}) is reached"),
            )),
            _ => Ok(()),
        }
    }
}

/// The pure layers word their errors about a queue as for vhost `/`
/// (RabbitMQ's `rs/1`: `queue 'q' in vhost '/'`, in the queue-argument
/// texts and the exclusive consumer's 403); the layer that knows the
/// queue's vhost names it here. The text keeps RabbitMQ's cut at 255 bytes
/// (252 and `...`).
pub fn in_vhost(mut e: AmqpError, vhost: &str) -> AmqpError {
    const SLASH: &str = " in vhost '/'";
    if vhost == DEFAULT_VHOST {
        return e;
    }
    if let Some(i) = e.text.find(SLASH) {
        e.text
            .replace_range(i..i + SLASH.len(), &format!(" in vhost '{vhost}'"));
        if e.text.len() > 255 {
            let mut cut = 252;
            while !e.text.is_char_boundary(cut) {
                cut -= 1;
            }
            e.text.truncate(cut);
            e.text.push_str("...");
        }
    }
    e
}

/// connection.open to a vhost that does not exist (530), as RabbitMQ.
pub fn not_found(vhost: &str) -> AmqpError {
    AmqpError::new(code::NOT_ALLOWED, format!("vhost {vhost} not found"))
}

/// A vhost name as `rabbitmqctl add_vhost` accepts it: a shortstr (it
/// travels in connection.open), not empty.
pub fn valid_name(name: &str) -> Result<ShortStr, String> {
    if name.is_empty() {
        return Err("vhost name must not be empty".into());
    }
    ShortStr::try_from_string(name.to_string())
        .ok_or_else(|| "vhost name longer than 255 bytes".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One queue inline costs what a `Vec`'s header and a queue name would
    /// have cost apart: `QueueNames` rides in every `Enqueue` envelope.
    #[test]
    fn one_queue_name_is_kept_inline_in_48_bytes() {
        assert_eq!(std::mem::size_of::<QueueName>(), 40);
        assert_eq!(std::mem::size_of::<QueueNames>(), 48);
        let one: QueueNames = smallvec::smallvec![QueueName::default_vhost(ShortStr::from("q"))];
        assert!(!one.spilled());
    }

    #[test]
    fn errors_name_the_queue_s_vhost() {
        let e = AmqpError::access_refused("queue 'q' in vhost '/' in exclusive use");
        assert_eq!(
            in_vhost(e.clone(), "v1").text,
            "ACCESS_REFUSED - queue 'q' in vhost 'v1' in exclusive use"
        );
        assert_eq!(in_vhost(e.clone(), "/"), e);
        let long = AmqpError::new(
            code::PRECONDITION_FAILED,
            format!("x in vhost '/' {}", "y".repeat(300)),
        );
        let named = in_vhost(long, "v1");
        assert_eq!(named.text.len(), 255);
        assert!(named.text.ends_with("..."));
        assert!(named.text.contains("in vhost 'v1'"));
    }
}
