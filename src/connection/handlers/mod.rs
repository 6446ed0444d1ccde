//! The methods a client sends on a channel, one module per AMQP class (as
//! LavinMQ's channel and mini-redis's file per command): `channel`,
//! `exchange`, `queue`, `basic` (with `publish`, basic.publish and its
//! content frames), `confirm` and `tx`; `context` holds what they share.
//! This file dispatches: the channel's lifecycle first, then each method to
//! its class's handler. Metadata operations go to the leader shard, queue
//! operations to the queue's owner; a handler awaits the reply and writes
//! the -ok. Soft errors close the channel, hard errors the connection, with
//! RabbitMQ's codes and texts.

pub mod access;
mod basic;
mod channel;
mod confirm;
mod context;
pub mod exchange;
pub mod publish;
pub mod queue;
mod tx;

pub use channel::forget_closed;
pub use channel::{close_with_error, release};
pub use publish::{on_body, on_header};

use crate::broker::error::{code, AmqpError};
use crate::connection::channel::Settlement;
use crate::connection::{ConnShared, HardError};
use crate::protocol::methods::Method;
use crate::shard::Shard;
use channel::Lifecycle;
use context::Ctx;
use std::rc::Rc;

/// Marks `ConnShared::handling` while a method of a channel is handled.
struct Handling<'a>(&'a ConnShared);

impl<'a> Handling<'a> {
    fn of(conn: &'a ConnShared, channel: u16) -> Handling<'a> {
        conn.handling.set(Some(channel));
        Handling(conn)
    }
}

impl Drop for Handling<'_> {
    fn drop(&mut self) {
        self.0.handling.set(None);
    }
}

/// The per-message methods (basic.publish, basic.ack, basic.nack,
/// basic.reject) on channel `channel` (not 0), handled here without
/// `handle`'s future (creating it copies the method into it, and
/// `Method` is large): Ok(None) once handled; any other method comes back
/// (Ok(Some)) for `handle`.
pub fn handle_now(
    shard: &Rc<Shard>,
    conn: &Rc<ConnShared>,
    channel: u16,
    method: Method,
) -> Result<Option<Method>, HardError> {
    let settlement = settlement(&method);
    if settlement.is_none() && !matches!(method, Method::BasicPublish(_)) {
        return Ok(Some(method));
    }
    let Some(entered) = enter(shard, conn, channel, &method)? else {
        return Ok(None);
    };
    let cx = &entered.cx;
    let result = match (method, settlement) {
        (Method::BasicPublish(m), _) => return publish::on_method(cx, m).map(|()| None),
        (_, Some(s)) => basic::settle(cx, s),
        (other, None) => unreachable!("not a per-message method: {other:?}"),
    };
    entered.finish(result).map(|()| None)
}

/// Handles one method on channel `channel` (not 0).
pub async fn handle(
    shard: &Rc<Shard>,
    conn: &Rc<ConnShared>,
    channel: u16,
    method: Method,
) -> Result<(), HardError> {
    let Some(entered) = enter(shard, conn, channel, &method)? else {
        return Ok(());
    };
    let cx = &entered.cx;
    if let Some(s) = settlement(&method) {
        return entered.finish(basic::settle(cx, s));
    }
    let result = match method {
        Method::BasicPublish(m) => return publish::on_method(cx, m),
        Method::BasicQos(m) => basic::qos(cx, m),
        Method::BasicConsume(m) => basic::consume(cx, m).await,
        Method::BasicCancel(m) => basic::cancel(cx, m).await,
        Method::BasicGet(m) => basic::get(cx, m).await,
        Method::BasicRecover(m) => basic::recover(cx, m.requeue, true),
        Method::BasicRecoverAsync(m) => basic::recover(cx, m.requeue, false),
        Method::ChannelFlow(m) => channel::flow(cx, m),
        Method::ChannelFlowOk(_) | Method::ChannelCloseOk(_) => Ok(()),
        Method::ExchangeDeclare(m) => exchange::declare(cx, m).await,
        Method::ExchangeDelete(m) => exchange::delete(cx, m).await,
        Method::ExchangeBind(m) => exchange::bind(cx, m).await,
        Method::ExchangeUnbind(m) => exchange::unbind(cx, m).await,
        Method::QueueDeclare(m) => queue::declare(cx, m).await,
        Method::QueueBind(m) => queue::bind(cx, m).await,
        Method::QueueUnbind(m) => queue::unbind(cx, m).await,
        Method::QueuePurge(m) => queue::purge(cx, m).await,
        Method::QueueDelete(m) => queue::delete(cx, m).await,
        Method::ConfirmSelect(m) => confirm::select(cx, m),
        Method::TxSelect(_) => tx::select(cx),
        Method::TxCommit(_) => tx::commit(cx).await,
        Method::TxRollback(_) => tx::rollback(cx),
        // RabbitMQ's catch-all (`rabbit_channel:handle_method/3`).
        _ => Err(AmqpError::new(
            code::COMMAND_INVALID,
            "unimplemented method",
        )),
    };
    entered.finish(result)
}

/// basic.ack, basic.nack and basic.reject as the settlement they ask for.
fn settlement(method: &Method) -> Option<Settlement> {
    Some(match method {
        Method::BasicAck(m) => Settlement {
            tag: m.delivery_tag,
            multiple: m.multiple,
            requeue: false,
            rejected: false,
        },
        Method::BasicNack(m) => Settlement {
            tag: m.delivery_tag,
            multiple: m.multiple,
            requeue: m.requeue,
            rejected: true,
        },
        Method::BasicReject(m) => Settlement {
            tag: m.delivery_tag,
            multiple: false,
            requeue: m.requeue,
            rejected: true,
        },
        _ => return None,
    })
}

/// A channel's method being handled: its context, its class and method
/// ids, and the mark (`ConnShared::handling`) that it is.
struct Entered<'a> {
    cx: Ctx<'a>,
    ids: (u16, u16),
    _handling: Handling<'a>,
}

/// Marks the method as handled; then the channel's lifecycle (channel.open
/// / close, or a method on a channel not open) and, between a basic.publish
/// and its content, the rule that only content frames may come. None: the
/// lifecycle handled the method.
fn enter<'a>(
    shard: &'a Rc<Shard>,
    conn: &'a Rc<ConnShared>,
    channel: u16,
    method: &Method,
) -> Result<Option<Entered<'a>>, HardError> {
    let handling = Handling::of(conn, channel);
    let cx = Ctx {
        shard,
        conn,
        channel,
    };
    if let Lifecycle::Done = channel::lifecycle(&cx, method)? {
        return Ok(None);
    }
    if let Some(Err(e)) = cx.with_channel(|ch| ch.check_no_content_expected()) {
        return Err(e);
    }
    Ok(Some(Entered {
        cx,
        ids: (method.class_id(), method.method_id()),
        _handling: handling,
    }))
}

impl Entered<'_> {
    /// The handler's result: a soft error closes the channel, a hard one
    /// the connection.
    fn finish(&self, result: Result<(), AmqpError>) -> Result<(), HardError> {
        let (class_id, method_id) = self.ids;
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.is_hard() => Err((e, class_id, method_id)),
            Err(e) => {
                let cx = &self.cx;
                close_with_error(cx.shard, cx.conn, cx.channel, &e, class_id, method_id);
                Ok(())
            }
        }
    }
}
