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

/// Handles one method on channel `channel` (not 0).
pub async fn handle(
    shard: &Rc<Shard>,
    conn: &Rc<ConnShared>,
    channel: u16,
    method: Method,
) -> Result<(), HardError> {
    let (class_id, method_id) = (method.class_id(), method.method_id());
    let _handling = Handling::of(conn, channel);
    let cx = Ctx {
        shard,
        conn,
        channel,
    };
    if let Lifecycle::Done = channel::lifecycle(&cx, &method)? {
        return Ok(());
    }
    // Between a basic.publish and its content only content frames may come.
    if let Some(Err(e)) = cx.with_channel(|ch| ch.check_no_content_expected()) {
        return Err(e);
    }
    let result = match method {
        Method::BasicPublish(m) => return publish::on_method(&cx, m),
        Method::BasicAck(m) => basic::settle(
            &cx,
            Settlement {
                tag: m.delivery_tag,
                multiple: m.multiple,
                requeue: false,
                rejected: false,
            },
        ),
        Method::BasicNack(m) => basic::settle(
            &cx,
            Settlement {
                tag: m.delivery_tag,
                multiple: m.multiple,
                requeue: m.requeue,
                rejected: true,
            },
        ),
        Method::BasicReject(m) => basic::settle(
            &cx,
            Settlement {
                tag: m.delivery_tag,
                multiple: false,
                requeue: m.requeue,
                rejected: true,
            },
        ),
        Method::BasicQos(m) => basic::qos(&cx, m),
        Method::BasicConsume(m) => basic::consume(&cx, m).await,
        Method::BasicCancel(m) => basic::cancel(&cx, m).await,
        Method::BasicGet(m) => basic::get(&cx, m).await,
        Method::BasicRecover(m) => basic::recover(&cx, m.requeue, true),
        Method::BasicRecoverAsync(m) => basic::recover(&cx, m.requeue, false),
        Method::ChannelFlow(m) => channel::flow(&cx, m),
        Method::ChannelFlowOk(_) | Method::ChannelCloseOk(_) => Ok(()),
        Method::ExchangeDeclare(m) => exchange::declare(&cx, m).await,
        Method::ExchangeDelete(m) => exchange::delete(&cx, m).await,
        Method::ExchangeBind(m) => exchange::bind(&cx, m).await,
        Method::ExchangeUnbind(m) => exchange::unbind(&cx, m).await,
        Method::QueueDeclare(m) => queue::declare(&cx, m).await,
        Method::QueueBind(m) => queue::bind(&cx, m).await,
        Method::QueueUnbind(m) => queue::unbind(&cx, m).await,
        Method::QueuePurge(m) => queue::purge(&cx, m).await,
        Method::QueueDelete(m) => queue::delete(&cx, m).await,
        Method::ConfirmSelect(m) => confirm::select(&cx, m),
        Method::TxSelect(_) => tx::select(&cx),
        Method::TxCommit(_) => tx::commit(&cx).await,
        Method::TxRollback(_) => tx::rollback(&cx),
        // RabbitMQ's catch-all (`rabbit_channel:handle_method/3`).
        _ => Err(AmqpError::new(
            code::COMMAND_INVALID,
            "unimplemented method",
        )),
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.is_hard() => Err((e, class_id, method_id)),
        Err(e) => {
            close_with_error(shard, conn, channel, &e, class_id, method_id);
            Ok(())
        }
    }
}
