//! The tx class. Transactions are not implemented: tx.select, tx.commit and
//! tx.rollback are answered 540 NOT_IMPLEMENTED, a connection error.
//!
//! Where they will go: tx.select puts a `TxBuffer` in `Channel::tx`; while
//! it is there, a publish the channel completes (`handlers::publish`, before
//! routing) and a settlement (`handlers::basic::settle`, before
//! `Channel::settle`) go into the buffer instead of to their owners;
//! tx.commit applies them in order and tx.rollback drops them.

use crate::broker::error::{code, AmqpError, AmqpResult};
use crate::connection::handlers::context::Ctx;

pub fn select(_cx: &Ctx<'_>) -> AmqpResult<()> {
    Err(not_implemented())
}

pub fn commit(_cx: &Ctx<'_>) -> AmqpResult<()> {
    Err(not_implemented())
}

pub fn rollback(_cx: &Ctx<'_>) -> AmqpResult<()> {
    Err(not_implemented())
}

fn not_implemented() -> AmqpError {
    AmqpError::new(
        code::NOT_IMPLEMENTED,
        "transactions (tx.*) are not implemented",
    )
}
