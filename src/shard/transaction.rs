//! The queue-owner side of tx.commit: applies one channel's committed
//! transaction to the queues this shard owns — all of it at once, in the
//! order it was issued (its publishes, then its settlements) — and answers
//! once it is applied and, for persistent messages in durable queues, once
//! the fsync covering their records completed (the confirm contract of
//! `shard::confirm`: RabbitMQ answers tx.commit-ok after the fsync too).

use crate::broker::error::{code, AmqpError};
use crate::shard::confirm::ConfirmOutcome;
use crate::shard::envelope::{Reply, TxOp};
use crate::shard::{owner, Shard};
use std::rc::Rc;

/// Applies `ops` in order and says what the committer must wait for.
pub fn apply(shard: &Rc<Shard>, ops: Vec<TxOp>) -> ConfirmOutcome {
    let mut outcome = ConfirmOutcome::Now;
    for op in ops {
        match op {
            TxOp::Enqueue { queues, message } => {
                outcome = outcome.and(owner::enqueue(shard, queues, message, None));
            }
            TxOp::Settle {
                queue,
                msg_ids,
                how,
            } => owner::settle(shard, &queue, &msg_ids, how),
        }
    }
    outcome
}

/// Request `TxCommit` from shard `from`: applied now, answered (`Done`)
/// now or once the log's fsync covers the durable copies; a copy the log
/// refused, or a failed fsync, answers 541 INTERNAL_ERROR.
pub fn commit(shard: &Rc<Shard>, from: u16, token: u64, ops: Vec<TxOp>) {
    match apply(shard, ops) {
        ConfirmOutcome::Now => shard.reply(from, token, Reply::Done(Ok(()))),
        ConfirmOutcome::Failed(reason) => {
            tracing::error!(shard = shard.id, "tx.commit failed: {reason}");
            shard.reply(from, token, Reply::Done(Err(not_stored(&reason))));
        }
        ConfirmOutcome::AfterSync(lsn) => {
            let synced = shard
                .log
                .as_ref()
                .expect("only a log append yields an lsn")
                .sync(lsn);
            let shard = shard.clone();
            glommio::spawn_local(async move {
                let reply = match synced.await {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        tracing::error!(shard = shard.id, "tx.commit: log sync failed: {e}");
                        Err(not_stored(&e.to_string()))
                    }
                };
                shard.reply(from, token, Reply::Done(reply));
                shard.pump();
            })
            .detach();
        }
    }
}

/// The 541 of a commit whose messages could not be stored.
pub fn not_stored(reason: &str) -> AmqpError {
    AmqpError::new(
        code::INTERNAL_ERROR,
        format!("tx.commit: the transaction's messages could not be stored: {reason}"),
    )
}
