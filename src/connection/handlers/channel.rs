//! The channel class: channel.open (once, within channel_max), the client's
//! channel.close (what the channel holds is given back, then close-ok),
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

/// Channel lifecycle, before any other handling: opens and closes the
/// channel, and refuses methods on a channel that is not open.
pub fn lifecycle(cx: &Ctx<'_>, method: &Method) -> Result<Lifecycle, HardError> {
    let (conn, channel) = (cx.conn, cx.channel);
    let hard = |e: AmqpError| (e, method.class_id(), method.method_id());
    let phase = conn.channels.borrow().get(&channel).map(|c| c.phase());
    match (method, phase) {
        (Method::ChannelOpen(_), None) => {
            if channel > conn.negotiated.channel_max {
                return Err(hard(AmqpError::new(
                    code::CHANNEL_ERROR,
                    format!(
                        "channel id {channel} exceeds channel_max {}",
                        conn.negotiated.channel_max
                    ),
                )));
            }
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
            let ch = conn.channels.borrow_mut().remove(&channel);
            if let Some(mut ch) = ch {
                release(cx.shard, conn.key, &mut ch);
            }
            cx.send(ChannelCloseOk {});
        }
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
    // Its counts stay in the shard's totals (taken: a second release
    // counts nothing twice).
    shard.stats.retire(&std::mem::take(&mut ch.stats));
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
