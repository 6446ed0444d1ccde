//! The exchange class: declare, delete, bind and unbind, each a metadata
//! change ordered by the leader shard; the -ok goes out once every shard
//! applied it.

use crate::broker::error::AmqpResult;
use crate::broker::exchange::Destination;
use crate::connection::handlers::context::Ctx;
use crate::protocol::methods::{
    ExchangeBind, ExchangeBindOk, ExchangeDeclare, ExchangeDeclareOk, ExchangeDelete,
    ExchangeDeleteOk, ExchangeUnbind, ExchangeUnbindOk,
};
use crate::shard::envelope::Request;

pub async fn declare(cx: &Ctx<'_>, m: ExchangeDeclare) -> AmqpResult<()> {
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
    let request = Request::DeleteExchange {
        vhost: cx.vhost(),
        name: m.exchange,
        if_unused: m.if_unused,
    };
    cx.leader_op(request, m.no_wait, ExchangeDeleteOk {}).await
}

pub async fn bind(cx: &Ctx<'_>, m: ExchangeBind) -> AmqpResult<()> {
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
