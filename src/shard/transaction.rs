//! The queue-owner side of tx.commit: applies one channel's committed
//! transaction to the queues this shard owns — in the order it was issued
//! (its publishes, then its settlements), a large one a few operations per
//! turn of the shard — and answers
//! once it is applied and, for persistent messages in durable queues, once
//! the fsync covering their records completed (the confirm contract of
//! `shard::confirm`: RabbitMQ answers tx.commit-ok after the fsync too).

use crate::broker::error::{code, AmqpError};
use crate::shard::confirm::ConfirmOutcome;
use crate::shard::envelope::{Reply, TxOp};
use crate::shard::{owner, Shard};
use std::rc::Rc;

/// Operations a commit applies in one go, inside the shard's pump. A
/// larger transaction (a commit may carry up to the connection's
/// transaction bound, 128 MiB) is applied by a task that lets the rest of
/// the shard run between operations whenever the preemption timer asks,
/// so one commit never holds the shard (and its heartbeat) for long.
const APPLY_AT_ONCE: usize = 8;

/// Applies one operation and says what the committer must wait for.
fn apply(shard: &Rc<Shard>, op: TxOp) -> ConfirmOutcome {
    match op {
        TxOp::Enqueue { queues, message } => owner::enqueue(shard, queues, message, None),
        TxOp::Settle {
            queue,
            msg_ids,
            how,
        } => {
            owner::settle(shard, &queue, &msg_ids, how);
            ConfirmOutcome::Now
        }
    }
}

/// Request `TxCommit` from shard `from`: applied in order, answered
/// (`Done`) once applied and, where durable copies were written, once the
/// log's fsync covers them; a copy the log refused, or a failed fsync,
/// answers 541 INTERNAL_ERROR. The committing channel waits for the
/// answer, so its next operations never overtake this commit's.
pub fn commit(shard: &Rc<Shard>, from: u16, token: u64, ops: Vec<TxOp>) {
    if ops.len() <= APPLY_AT_ONCE {
        let outcome = ops
            .into_iter()
            .fold(ConfirmOutcome::Now, |o, op| o.and(apply(shard, op)));
        answer(shard, from, token, outcome);
        return;
    }
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let mut outcome = ConfirmOutcome::Now;
        for op in ops {
            outcome = outcome.and(apply(&shard, op));
            glommio::yield_if_needed().await;
        }
        answer(&shard, from, token, outcome);
        shard.pump();
    })
    .detach();
}

/// Answers a commit whose operations were applied with `outcome`.
fn answer(shard: &Rc<Shard>, from: u16, token: u64, outcome: ConfirmOutcome) {
    match outcome {
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
