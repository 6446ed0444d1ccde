//! The confirm class: confirm.select puts the channel in confirm mode (its
//! publishes are numbered from 1 and acked or nacked as their owners
//! report them: see `Channel::confirm_publish` and `connection::confirms`).

use crate::broker::error::AmqpResult;
use crate::connection::handlers::context::Ctx;
use crate::protocol::methods::{ConfirmSelect, ConfirmSelectOk};

pub fn select(cx: &Ctx<'_>, m: ConfirmSelect) -> AmqpResult<()> {
    cx.with_channel(|ch| ch.select_confirms());
    cx.reply(m.nowait, ConfirmSelectOk {});
    Ok(())
}
