//! The tx class, with RabbitMQ's semantics. tx.select makes the channel
//! transactional for good (a second select is fine; a channel in confirm
//! mode cannot switch, nor the other way round: 406). From then on its
//! publishes are routed but their copies wait, and its acks / nacks /
//! rejects take their tags but do not reach the queues
//! (`connection::transaction`). tx.commit hands each owner shard its part
//! as one request (`shard::transaction`), publishes then settlements in
//! issue order, and answers commit-ok once every owner applied its part and
//! the persistent messages in durable queues are on disk; delayed
//! publishes are held by this shard's scheduler at the commit (durable
//! ones on disk before commit-ok), never before; mandatory
//! publishes that reached no queue are returned at the commit, before the
//! commit-ok. tx.rollback drops the publishes and makes the settled
//! deliveries unacked again (nothing is requeued or redelivered). commit /
//! rollback on a channel that is not transactional: 406.

use crate::broker::error::{AmqpError, AmqpResult};
use crate::connection::handlers::context::{done, Ctx};
use crate::connection::handlers::publish::write_return;
use crate::connection::transaction::TxBuffer;
use crate::protocol::methods::{TxCommitOk, TxRollbackOk, TxSelectOk};
use crate::shard::confirm::ConfirmOutcome;
use crate::shard::counters::Counters;
use crate::shard::delayed;
use crate::shard::envelope::Request;

pub fn select(cx: &Ctx<'_>) -> AmqpResult<()> {
    let connection_bytes = cx.conn.tx_bytes.clone();
    let selected = cx.with_channel(|ch| {
        if ch.confirming() {
            return Err(AmqpError::precondition_failed(
                "cannot switch from confirm to tx mode",
            ));
        }
        ch.tx.get_or_insert_with(|| TxBuffer::new(connection_bytes));
        Ok(())
    });
    if let Some(r) = selected {
        r?;
        cx.send(TxSelectOk);
    }
    Ok(())
}

pub async fn commit(cx: &Ctx<'_>) -> AmqpResult<()> {
    let Some(commit) = cx.with_channel(|ch| ch.tx.as_mut().map(|t| t.into_commit())) else {
        return Ok(());
    };
    let commit = commit.ok_or_else(not_transactional)?;
    // Delayed publishes are held now, by this shard's scheduler.
    let mut held = ConfirmOutcome::Now;
    for (message, hold) in &commit.delayed {
        held = held.and(delayed::hold(
            cx.shard,
            cx.vhost(),
            &message.exchange,
            &message.routing_key,
            &message.raw_properties,
            &message.body,
            hold.delay_ms,
            hold.durable,
        ));
    }
    // Every owner's part goes out now (one request each), then we wait
    // for all of them.
    let replies: Vec<_> = commit
        .by_owner
        .into_iter()
        .map(|(owner, ops)| cx.shard.request(owner, Request::TxCommit { ops }))
        .collect();
    let mut failed = None;
    for reply in replies {
        if let Err(e) = done(reply.await) {
            failed.get_or_insert(e);
        }
    }
    if let Err(e) = held_on_disk(cx, held).await {
        failed.get_or_insert(e);
    }
    Counters::add(&cx.shard.counters.routed_copies, commit.routed_copies);
    Counters::add(&cx.shard.counters.unroutable, commit.unroutable);
    if let Some(e) = failed {
        return Err(e);
    }
    // Committed: the exchanges count them now, as RabbitMQ's channel does.
    for (exchange, routed) in &commit.exchanges {
        cx.shard
            .stats
            .exchange_publish(cx.vhost(), exchange, *routed);
    }
    for message in &commit.returns {
        write_return(cx.conn, cx.channel, message);
    }
    cx.send(TxCommitOk);
    // The committed settlements no longer count against a global prefetch.
    cx.conn.release_held(cx.channel);
    Ok(())
}

pub fn rollback(cx: &Ctx<'_>) -> AmqpResult<()> {
    match cx.with_channel(|ch| ch.rollback_tx()) {
        Some(false) => Err(not_transactional()),
        Some(true) => {
            cx.send(TxRollbackOk);
            Ok(())
        }
        None => Ok(()),
    }
}

/// Waits until the durable delayed messages a commit held are on disk
/// (the confirm contract, as for the owners' copies).
async fn held_on_disk(cx: &Ctx<'_>, held: ConfirmOutcome) -> AmqpResult<()> {
    let stored = match held {
        ConfirmOutcome::Now => return Ok(()),
        ConfirmOutcome::Failed(reason) => Err(reason),
        ConfirmOutcome::AfterSync(lsn) => match cx.shard.log.as_ref() {
            Some(log) => log.sync(lsn).await.map_err(|e| e.to_string()),
            None => Err("no log".to_string()),
        },
    };
    stored.map_err(|reason| {
        tracing::error!(shard = cx.shard.id, "tx.commit failed: {reason}");
        crate::shard::transaction::not_stored(&reason)
    })
}

fn not_transactional() -> AmqpError {
    AmqpError::precondition_failed("channel is not transactional")
}
