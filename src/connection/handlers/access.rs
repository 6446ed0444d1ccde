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
use crate::connection::channel::Channel;
use crate::connection::handlers::context::Ctx;
use crate::connection::ConnShared;
use crate::protocol::properties::BasicProperties;
use crate::protocol::types::{FieldTable, ShortStr};
use crate::shard::Shard;
use bytes::Bytes;

/// Property flag of `user-id` in the first flags word.
const USER_ID_FLAG: u16 = 1 << 4;

impl Ctx<'_> {
    /// `access` on a queue or exchange, for this connection's user.
    pub fn authorize(&self, access: Access, resource: Resource, name: &str) -> AmqpResult<()> {
        let n = &self.conn.negotiated;
        self.shard
            .meta
            .borrow()
            .auth
            .check(&n.user, &n.vhost_name, access, resource, name)
    }

    /// Topic permissions on `routing_key` if `exchange` is a topic exchange.
    pub fn authorize_topic(
        &self,
        access: Access,
        exchange: &str,
        routing_key: &str,
    ) -> AmqpResult<()> {
        let meta = self.shard.meta.borrow();
        if !is_topic(meta.topology(self.conn.negotiated.vhost), exchange) {
            return Ok(());
        }
        let n = &self.conn.negotiated;
        meta.auth
            .check_topic(&n.user, &n.vhost_name, access, exchange, routing_key)
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
    let flags = match raw_properties.as_ref() {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    if flags & USER_ID_FLAG != 0 {
        let user_id = BasicProperties::decode(raw_properties.clone())
            .ok()
            .and_then(|p| p.user_id);
        if let Some(id) = user_id {
            // RabbitMQ's `impersonator` tag (as the user had at login)
            // lets a user publish as another.
            let impersonator = n.tags.iter().any(|t| t == "impersonator");
            if id.as_str() != n.user && !impersonator {
                return Err(AmqpError::precondition_failed(format!(
                    "user_id property set to '{id}' but authenticated user was '{}'",
                    n.user
                )));
            }
        }
    }
    Ok(())
}
