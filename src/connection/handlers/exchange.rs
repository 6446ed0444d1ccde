//! The exchange class: declare, delete, bind and unbind, each checked
//! against the user's permissions (`access`) and then a metadata change
//! ordered by the leader shard; the -ok goes out once every shard applied
//! it.

use crate::broker::auth::{Access, Resource};
use crate::broker::error::AmqpResult;
use crate::broker::exchange::Destination;
use crate::connection::handlers::context::Ctx;
use crate::protocol::methods::{
    ExchangeBind, ExchangeBindOk, ExchangeDeclare, ExchangeDeclareOk, ExchangeDelete,
    ExchangeDeleteOk, ExchangeUnbind, ExchangeUnbindOk,
};
use crate::shard::envelope::Request;

pub async fn declare(cx: &Ctx<'_>, m: ExchangeDeclare) -> AmqpResult<()> {
    // Passive declares need no permission; the default exchange is the
    // leader's to refuse.
    if !m.passive && !m.exchange.is_empty() {
        cx.authorize(Access::Configure, Resource::Exchange, &m.exchange)?;
        if cx
            .shard
            .meta
            .borrow()
            .topology(cx.vhost())
            .and_then(|t| t.exchange(&m.exchange))
            .is_none()
        {
            cx.authorize_target_argument(
                Resource::Exchange,
                &m.exchange,
                &m.arguments,
                "alternate-exchange",
            )?;
        }
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
    // The default and `amq.*` exchanges are the leader's to refuse first.
    if !m.exchange.is_empty() && !m.exchange.starts_with("amq.") {
        cx.authorize(Access::Configure, Resource::Exchange, &m.exchange)?;
    }
    let request = Request::DeleteExchange {
        vhost: cx.vhost(),
        name: m.exchange,
        if_unused: m.if_unused,
    };
    cx.leader_op(request, m.no_wait, ExchangeDeleteOk {}).await
}

pub async fn bind(cx: &Ctx<'_>, m: ExchangeBind) -> AmqpResult<()> {
    cx.authorize_binding(
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
    cx.authorize_binding(
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
