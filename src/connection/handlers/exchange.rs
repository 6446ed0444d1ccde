//! The exchange class: declare, delete, bind and unbind, each checked
//! against the user's permissions (`access`) and then a metadata change
//! ordered by the leader shard; the -ok goes out once every shard applied
//! it.

use crate::broker::auth::{Access, Resource};
use crate::broker::error::AmqpResult;
use crate::broker::exchange::Destination;
use crate::connection::handlers::access::Actor;
use crate::connection::handlers::context::Ctx;
use crate::protocol::methods::{
    ExchangeBind, ExchangeBindOk, ExchangeDeclare, ExchangeDeclareOk, ExchangeDelete,
    ExchangeDeleteOk, ExchangeUnbind, ExchangeUnbindOk,
};
use crate::protocol::types::{FieldTable, ShortStr};
use crate::shard::envelope::Request;

pub async fn declare(cx: &Ctx<'_>, m: ExchangeDeclare) -> AmqpResult<()> {
    if !m.passive {
        check_declare(&cx.actor(), &m.exchange, &m.arguments)?;
    }
    let request = Request::DeclareExchange {
        vhost: cx.vhost(),
        name: m.exchange,
        kind: m.kind,
        passive: m.passive,
        durable: m.durable,
        auto_delete: m.auto_delete,
        internal: m.internal,
        arguments: m.arguments,
    };
    cx.leader_op(request, m.no_wait, ExchangeDeclareOk {}).await
}

pub async fn delete(cx: &Ctx<'_>, m: ExchangeDelete) -> AmqpResult<()> {
    check_delete(&cx.actor(), &m.exchange)?;
    let request = Request::DeleteExchange {
        vhost: cx.vhost(),
        name: m.exchange,
        if_unused: m.if_unused,
    };
    cx.leader_op(request, m.no_wait, ExchangeDeleteOk {}).await
}

/// The checks of an exchange.declare that is not passive, as `actor`:
/// configure permission and, for a new exchange, the alternate
/// exchange's permissions. The default exchange is the leader's to
/// refuse. The management API's PUT makes the same checks.
pub fn check_declare(actor: &Actor<'_>, name: &ShortStr, arguments: &FieldTable) -> AmqpResult<()> {
    if name.is_empty() {
        return Ok(());
    }
    actor.authorize(Access::Configure, Resource::Exchange, name)?;
    let exists = actor
        .shard
        .meta
        .borrow()
        .topology(actor.vhost)
        .and_then(|t| t.exchange(name))
        .is_some();
    if !exists {
        actor.authorize_target_argument(
            Resource::Exchange,
            name,
            arguments,
            "alternate-exchange",
        )?;
    }
    Ok(())
}

/// The checks of exchange.delete: configure permission; the default and
/// `amq.*` exchanges are the leader's to refuse first.
pub fn check_delete(actor: &Actor<'_>, name: &str) -> AmqpResult<()> {
    if name.is_empty() || name.starts_with("amq.") {
        return Ok(());
    }
    actor.authorize(Access::Configure, Resource::Exchange, name)
}

pub async fn bind(cx: &Ctx<'_>, m: ExchangeBind) -> AmqpResult<()> {
    cx.actor().authorize_binding(
        &m.source,
        Resource::Exchange,
        &m.destination,
        &m.routing_key,
    )?;
    let request = Request::Bind {
        vhost: cx.vhost(),
        source: m.source,
        destination: Destination::Exchange(m.destination),
        routing_key: m.routing_key,
        arguments: m.arguments,
        conn: cx.conn.key,
    };
    cx.leader_op(request, m.no_wait, ExchangeBindOk {}).await
}

pub async fn unbind(cx: &Ctx<'_>, m: ExchangeUnbind) -> AmqpResult<()> {
    cx.actor().authorize_binding(
        &m.source,
        Resource::Exchange,
        &m.destination,
        &m.routing_key,
    )?;
    let request = Request::Unbind {
        vhost: cx.vhost(),
        source: m.source,
        destination: Destination::Exchange(m.destination),
        routing_key: m.routing_key,
        arguments: m.arguments,
        conn: cx.conn.key,
    };
    cx.leader_op(request, m.no_wait, ExchangeUnbindOk {}).await
}
