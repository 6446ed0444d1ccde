//! The channel class: channel.open (once; at most channel_max open, as
//! RabbitMQ counts them), the client's channel.close (what the channel
//! holds is given back, then close-ok; what the client pipelined behind it
//! is dropped),
//! the close Warren starts on a soft error (channel.close, after which
//! everything but close-ok is dropped, and a crossing close is answered),
//! and channel.flow.

use crate::broker::error::{code, AmqpError, AmqpResult};
use crate::connection::channel::{Channel, Phase};
use crate::connection::handlers::context::Ctx;
use crate::connection::{ConnShared, HardError};
use crate::protocol::methods::{
    ChannelClose, ChannelCloseOk, ChannelFlow, ChannelFlowOk, ChannelOpenOk, Method,
};
use crate::protocol::types::ShortStr;
use crate::shard::envelope::ConnKey;
use crate::shard::Shard;
use std::rc::Rc;

/// Whether the lifecycle took care of a method.
pub enum Lifecycle {
    /// Handled (or dropped, on a closing channel).
    Done,
    /// The channel is open: the method goes to its class's handler.
    Open,
}

/// How many channels the client closed are remembered beyond channel_max
/// (each an empty `Channel`, until the end of the read batch), to drop
/// what it pipelined behind its close.
const CLOSED_KEPT: usize = 64;

/// The end of a read batch: the channels the client closed in it are free
/// (RabbitMQ drops frames for a closing channel until its process has
/// gone, which is about as long; a frame that comes later is 504).
pub fn forget_closed(conn: &ConnShared) {
    let closed = std::mem::take(&mut *conn.closed_by_client.borrow_mut());
    if closed.is_empty() {
        return;
    }
    let mut channels = conn.channels.borrow_mut();
    for id in closed {
        if channels
            .get(&id)
            .is_some_and(|c| c.phase() == Phase::ClosedByClient)
        {
            channels.remove(&id);
        }
    }
}

/// Channel lifecycle, before any other handling: opens and closes the
/// channel, and refuses methods on a channel that is not open.
pub fn lifecycle(cx: &Ctx<'_>, method: &Method) -> Result<Lifecycle, HardError> {
    let (conn, channel) = (cx.conn, cx.channel);
    let hard = |e: AmqpError| (e, method.class_id(), method.method_id());
    let phase = conn.channels.borrow().get(&channel).map(|c| c.phase());
    match (method, phase) {
        (Method::ChannelOpen(_), None) => {
            // As RabbitMQ 3.10: channel_max bounds how many channels are
            // open, not their numbers (the spec says numbers; clients are
            // written against RabbitMQ).
            let open = (conn.channels.borrow().values())
                .filter(|c| c.phase() != Phase::ClosedByClient)
                .count();
            let max = usize::from(conn.negotiated.channel_max);
            if open >= max {
                return Err((
                    AmqpError::new(
                        code::NOT_ALLOWED,
                        format!(
                            "number of channels opened ({open}) has reached the \
                             negotiated channel_max ({max})"
                        ),
                    ),
                    0,
                    0,
                ));
            }
            conn.channels
                .borrow_mut()
                .insert(channel, Channel::new(channel));
            cx.send(ChannelOpenOk {});
        }
        (Method::ChannelOpen(_), Some(Phase::ClosedByClient)) => {
            conn.channels
                .borrow_mut()
                .insert(channel, Channel::new(channel));
            cx.send(ChannelOpenOk {});
        }
        (Method::ChannelOpen(_), Some(_)) => {
            return Err(hard(AmqpError::new(
                code::CHANNEL_ERROR,
                "second 'channel.open' seen",
            )));
        }
        (_, None) => {
            return Err(hard(AmqpError::new(
                code::CHANNEL_ERROR,
                "expected 'channel.open'",
            )));
        }
        (Method::ChannelClose(_), Some(Phase::Closing)) => {
            // The client's close crossed ours: answer it, and keep waiting
            // for the close-ok of ours (RabbitMQ does the same).
            cx.send(ChannelCloseOk {});
        }
        (Method::ChannelClose(_), Some(Phase::Open)) => {
            let mut channels = conn.channels.borrow_mut();
            // A marker for what the client pipelined behind its close,
            // while there are not too many (then the id is simply free).
            let keep = channels.len() < usize::from(conn.negotiated.channel_max) + CLOSED_KEPT;
            let ch = if keep {
                conn.closed_by_client.borrow_mut().push(channel);
                channels.insert(channel, Channel::closed_by_client(channel))
            } else {
                channels.remove(&channel)
            };
            drop(channels);
            if let Some(mut ch) = ch {
                release(cx.shard, conn.key, &mut ch);
            }
            cx.send(ChannelCloseOk {});
        }
        (_, Some(Phase::ClosedByClient)) => {} // pipelined behind the close
        (Method::ChannelCloseOk(_), Some(Phase::Closing)) => {
            conn.channels.borrow_mut().remove(&channel);
        }
        (_, Some(Phase::Closing)) => {} // dropped until close-ok
        (_, Some(Phase::Open)) => return Ok(Lifecycle::Open),
    }
    Ok(Lifecycle::Done)
}

/// channel.flow: RabbitMQ never stops a channel's deliveries on request.
pub fn flow(cx: &Ctx<'_>, m: ChannelFlow) -> AmqpResult<()> {
    cx.with_channel(|ch| ch.flow(m.active)).transpose()?;
    cx.send(ChannelFlowOk { active: m.active });
    Ok(())
}

/// Gives back what a channel that goes away holds (see `Channel::release`).
pub fn release(shard: &Shard, conn: ConnKey, ch: &mut Channel) {
    for action in ch.release(conn) {
        action.apply(shard);
    }
}

/// Queues a channel.close for a soft error and gives back the channel's
/// consumers and unacked messages; the channel then waits for close-ok.
pub fn close_with_error(
    shard: &Rc<Shard>,
    conn: &ConnShared,
    channel: u16,
    err: &AmqpError,
    class_id: u16,
    method_id: u16,
) {
    if let Some(ch) = conn.channels.borrow_mut().get_mut(&channel) {
        ch.start_closing();
        release(shard, conn.key, ch);
    }
    conn.send_method(
        channel,
        ChannelClose {
            reply_code: err.code,
            reply_text: ShortStr::try_from_string(err.text.clone()).unwrap_or_default(),
            class_id,
            method_id,
        },
    );
}
