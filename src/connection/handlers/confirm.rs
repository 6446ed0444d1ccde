//! The confirm class: confirm.select puts the channel in confirm mode (its
//! publishes are numbered from 1 and acked or nacked as their owners
//! report them: see `Channel::confirm_publish` and `connection::confirms`).
//! A transactional channel cannot switch to confirm mode (406, as RabbitMQ).

use crate::broker::error::{AmqpError, AmqpResult};
use crate::connection::handlers::context::Ctx;
use crate::protocol::methods::{ConfirmSelect, ConfirmSelectOk};

pub fn select(cx: &Ctx<'_>, m: ConfirmSelect) -> AmqpResult<()> {
    let selected = cx.with_channel(|ch| {
        if ch.tx.is_some() {
            // As RabbitMQ: a transactional channel stays one.
            return Err(AmqpError::precondition_failed(
                "cannot switch from tx to confirm mode",
            ));
        }
        ch.select_confirms();
        Ok(())
    });
    selected.transpose()?;
    cx.reply(m.nowait, ConfirmSelectOk {});
    Ok(())
}
