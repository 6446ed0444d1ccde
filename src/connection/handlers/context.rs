//! What every channel-method handler works with: `Ctx` (the shard, the
//! connection and the channel a method came on) and the steps handlers
//! share — the channel's state, the resolution of a queue name and the
//! access check on it, requests to the leader and to queue owners and the
//! shape of their replies, and server-generated names.

use crate::broker::error::{code, AmqpError, AmqpResult};
use crate::broker::vhost::{QueueName, VhostId};
use crate::connection::channel::Channel;
use crate::connection::ConnShared;
use crate::protocol::methods::Method;
use crate::protocol::types::ShortStr;
use crate::shard::envelope::{QueueStats, Reply, Request};
use crate::shard::{leader, Shard};
use std::rc::Rc;

/// One method's context: where it came from.
pub struct Ctx<'a> {
    pub shard: &'a Rc<Shard>,
    pub conn: &'a Rc<ConnShared>,
    pub channel: u16,
}

impl Ctx<'_> {
    /// Runs `f` on the channel's state; `None` when the channel is gone.
    /// Never hold it across an await.
    pub fn with_channel<R>(&self, f: impl FnOnce(&mut Channel) -> R) -> Option<R> {
        self.conn
            .channels
            .borrow_mut()
            .get_mut(&self.channel)
            .map(f)
    }

    /// Queues a method on this channel.
    pub fn send(&self, method: impl Into<Method>) {
        self.conn.send_method(self.channel, method);
    }

    /// Queues an -ok unless the client asked for no-wait.
    pub fn reply(&self, no_wait: bool, ok: impl Into<Method>) {
        if !no_wait {
            self.send(ok);
        }
    }

    /// The vhost the connection opened.
    pub fn vhost(&self) -> VhostId {
        self.conn.negotiated.vhost
    }

    /// A queue of the connection's vhost.
    pub fn queue_name(&self, name: ShortStr) -> QueueName {
        QueueName::new(self.vhost(), name)
    }

    /// The queue a method names (see `Channel::resolve_queue`: an empty
    /// name is the queue last declared on the channel).
    pub fn resolve_queue(&self, name: ShortStr) -> ShortStr {
        match self.conn.channels.borrow().get(&self.channel) {
            Some(ch) => ch.resolve_queue(name),
            None => name,
        }
    }

    /// A request to shard `to`, awaited.
    pub async fn request(&self, to: u16, request: Request) -> Reply {
        self.shard.request(to, request).await
    }

    /// A metadata change through the leader; the -ok (unless `no_wait`)
    /// once every shard applied it.
    pub async fn leader_op(
        &self,
        request: Request,
        no_wait: bool,
        ok: impl Into<Method>,
    ) -> AmqpResult<()> {
        done(self.request(leader::LEADER, request).await)?;
        self.reply(no_wait, ok);
        Ok(())
    }
}

pub fn done(r: Reply) -> AmqpResult<()> {
    match r {
        Reply::Done(r) => r,
        other => Err(unexpected_reply(other)),
    }
}

pub fn count(r: Reply) -> AmqpResult<u32> {
    match r {
        Reply::Count(r) => r,
        other => Err(unexpected_reply(other)),
    }
}

pub fn stats(r: Reply) -> AmqpResult<QueueStats> {
    match r {
        Reply::Stats(r) => r,
        other => Err(unexpected_reply(other)),
    }
}

pub fn unexpected_reply(r: Reply) -> AmqpError {
    debug_assert!(false, "unexpected reply {r:?}");
    AmqpError::new(code::INTERNAL_ERROR, "unexpected internal reply")
}

/// A server-generated name, `prefix` then 22 characters of base64url, like
/// RabbitMQ's (`amq.gen-…` queues, `amq.ctag-…` consumer tags).
pub fn generated_name(prefix: &str) -> ShortStr {
    ShortStr::try_from_string(format!("{prefix}{}", random_suffix())).expect("short")
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut seed = {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let c = NAME_COUNTER.with(|c| {
            let v = c.get().wrapping_add(1);
            c.set(v);
            v
        });
        t ^ c.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (std::process::id() as u64) << 32
    };
    (0..22)
        .map(|_| {
            // xorshift64*
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            let v = seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
            ALPHABET[(v >> 58) as usize] as char
        })
        .collect()
}

thread_local! {
    static NAME_COUNTER: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}
