//! Permission checks of the channel methods, where RabbitMQ's
//! access-control table puts them: configure to declare or delete a queue
//! or exchange, write on the destination and read on the source to bind,
//! read to consume, get or purge, write on the exchange to publish; topic
//! permissions on the routing keys of topic exchanges; read on the queue
//! and write on its dead-letter exchange to declare it with one, read on
//! the exchange and write on its alternate exchange likewise. Passive
//! declares need nothing. Each check answers with RabbitMQ's 403, which
//! closes the channel. The publish path's own check, cached per channel,
//! is `publish_allowed` (see `broker::auth::publish`).

use crate::broker::auth::publish::Publisher;
use crate::broker::auth::{Access, Resource};
use crate::broker::error::{AmqpError, AmqpResult};
use crate::broker::exchange::ExchangeKind;
use crate::broker::vhost::{QueueName, VhostId};
use crate::connection::channel::Channel;
use crate::connection::handlers::context::Ctx;
use crate::connection::ConnShared;
use crate::protocol::properties::BasicProperties;
use crate::protocol::types::{FieldTable, ShortStr};
use crate::shard::envelope::{ConnKey, QueueMeta};
use crate::shard::Shard;
use bytes::Bytes;

/// Property flag of `user-id` in the first flags word.
const USER_ID_FLAG: u16 = 1 << 4;

/// Who does something: a user in a vhost. A connection's methods act as
/// its user in the vhost it opened; the management API acts as the user
/// of an HTTP request, in the vhost the path names, with the same checks.
#[derive(Clone, Copy)]
pub struct Actor<'a> {
    pub shard: &'a Shard,
    pub user: &'a str,
    pub vhost: VhostId,
    pub vhost_name: &'a str,
    /// The acting connection (None: the management API, for which every
    /// exclusive queue is another connection's, as for RabbitMQ's).
    pub conn: Option<ConnKey>,
}

impl Actor<'_> {
    /// The queue's catalog entry, refusing another connection's exclusive
    /// queue (405) and a queue that does not exist (404).
    pub fn queue_access(&self, queue: &ShortStr) -> AmqpResult<QueueMeta> {
        let meta = self.shard.meta.borrow();
        let vhost = self.vhost_name;
        let Some(m) = meta.queues.get(&QueueName::new(self.vhost, queue.clone())) else {
            return Err(AmqpError::not_found(format!(
                "no queue '{queue}' in vhost '{vhost}'"
            )));
        };
        if let Some(owner) = m.exclusive_to {
            if Some(owner) != self.conn {
                return Err(AmqpError::resource_locked(format!(
                    "cannot obtain exclusive access to locked queue '{queue}' in vhost '{vhost}'. It could be \
                     originally declared on another connection or the exclusive property value does not \
                     match that of the original declaration."
                )));
            }
        }
        Ok(m.clone())
    }

    /// `access` on a queue or exchange.
    pub fn authorize(&self, access: Access, resource: Resource, name: &str) -> AmqpResult<()> {
        self.shard
            .meta
            .borrow()
            .auth
            .check(self.user, self.vhost_name, access, resource, name)
    }

    /// Topic permissions on `routing_key` if `exchange` is a topic exchange.
    pub fn authorize_topic(
        &self,
        access: Access,
        exchange: &str,
        routing_key: &str,
    ) -> AmqpResult<()> {
        let meta = self.shard.meta.borrow();
        if !is_topic(meta.topology(self.vhost), exchange) {
            return Ok(());
        }
        meta.auth
            .check_topic(self.user, self.vhost_name, access, exchange, routing_key)
    }

    /// A binding from `source` to a queue or exchange: write on the
    /// destination, read on the source, topic read on the key. The default
    /// exchange is left to the leader's own refusal.
    pub fn authorize_binding(
        &self,
        source: &str,
        destination: Resource,
        destination_name: &str,
        routing_key: &str,
    ) -> AmqpResult<()> {
        if source.is_empty() || destination_name.is_empty() {
            return Ok(());
        }
        self.authorize(Access::Write, destination, destination_name)?;
        self.authorize(Access::Read, Resource::Exchange, source)?;
        self.authorize_topic(Access::Read, source, routing_key)
    }

    /// Declaring a new entity whose argument `key` names another exchange
    /// (a dead-letter or alternate exchange): read on the entity, write on
    /// that exchange.
    pub fn authorize_target_argument(
        &self,
        resource: Resource,
        name: &str,
        arguments: &FieldTable,
        key: &str,
    ) -> AmqpResult<()> {
        let Some(target) = arguments.get(key).and_then(|v| v.as_str()) else {
            return Ok(());
        };
        self.authorize(Access::Read, resource, name)?;
        self.authorize(Access::Write, Resource::Exchange, target)
    }
}

impl Ctx<'_> {
    /// The connection's user in its vhost.
    pub fn actor(&self) -> Actor<'_> {
        let n = &self.conn.negotiated;
        Actor {
            shard: self.shard,
            user: &n.user,
            vhost: n.vhost,
            vhost_name: &n.vhost_name,
            conn: Some(self.conn.key),
        }
    }

    /// See [`Actor::queue_access`].
    pub fn queue_access(&self, queue: &ShortStr) -> AmqpResult<QueueMeta> {
        self.actor().queue_access(queue)
    }

    /// `access` on a queue or exchange, for this connection's user.
    pub fn authorize(&self, access: Access, resource: Resource, name: &str) -> AmqpResult<()> {
        self.actor().authorize(access, resource, name)
    }
}

fn is_topic(topology: Option<&crate::broker::topology::Topology>, exchange: &str) -> bool {
    topology
        .and_then(|t| t.exchange(exchange))
        .is_some_and(|x| x.kind == ExchangeKind::Topic)
}

/// The publish path's checks, before anything else of a publish: write on
/// the exchange and topic write on the routing key (cached per channel
/// until users or permissions change), then RabbitMQ's `user_id` check
/// (unless the user has the `impersonator` tag).
pub fn publish_allowed(
    shard: &Shard,
    conn: &ConnShared,
    ch: &mut Channel,
    exchange: &ShortStr,
    routing_key: &ShortStr,
    raw_properties: &Bytes,
) -> AmqpResult<()> {
    let n = &conn.negotiated;
    let meta = shard.meta.borrow();
    ch.grants.check(
        &meta.auth,
        Publisher {
            user: &n.user,
            vhost: &n.vhost_name,
        },
        exchange,
        routing_key.as_str(),
        || is_topic(meta.topology(n.vhost), exchange.as_str()),
    )?;
    check_user_id(&n.user, &n.tags, raw_properties)
}

/// RabbitMQ's `user_id` check: a publish whose `user-id` property names
/// another user is refused (406) unless the publisher has the
/// `impersonator` tag (as the user had at login).
pub fn check_user_id(user: &str, tags: &[String], raw_properties: &Bytes) -> AmqpResult<()> {
    let flags = match raw_properties.as_ref() {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    if flags & USER_ID_FLAG != 0 {
        let user_id = BasicProperties::decode(raw_properties.clone())
            .ok()
            .and_then(|p| p.user_id);
        if let Some(id) = user_id {
            let impersonator = tags.iter().any(|t| t == "impersonator");
            if id.as_str() != user && !impersonator {
                return Err(AmqpError::precondition_failed(format!(
                    "user_id property set to '{id}' but authenticated user was '{}'",
                    user
                )));
            }
        }
    }
    Ok(())
}
