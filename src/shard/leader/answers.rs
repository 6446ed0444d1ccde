//! Answers held until the journal entries they depend on are on disk, and
//! sent in the order the changes were made (as errors when the entries
//! could not be stored).

use super::journal::Held;
use crate::broker::error::AmqpError;
use crate::shard::envelope::Reply;
use crate::shard::Shard;
use std::rc::Rc;

/// Sends the answer once every journal entry added so far (`seq`) is on
/// disk, after the answers held before it.
pub(super) fn answer_when_durable(
    shard: &Rc<Shard>,
    seq: u64,
    own: bool,
    to: u16,
    token: u64,
    reply: Reply,
) {
    let state = shard.leader.as_ref().expect("leader state");
    {
        let mut j = state.journal.borrow_mut();
        if !j.held.is_empty() || j.durable < seq {
            debug_assert!(j.writing, "an answer held with no writer to release it");
            j.held.push_back(Held {
                seq,
                own,
                to,
                token,
                reply,
            });
            return;
        }
    }
    shard.reply(to, token, reply);
    shard.pump();
}

/// Records that entries up to `upto` are on disk (or, with `failed`, will
/// never be: those after `from`) and sends the answers that waited for
/// them; with `failed`, a change whose own entry is in `(from, upto]` is
/// answered with that error instead.
pub(super) fn release(shard: &Rc<Shard>, upto: u64, failed: Option<(u64, &AmqpError)>) {
    let state = shard.leader.as_ref().expect("leader state");
    let ready: Vec<Held> = {
        let mut j = state.journal.borrow_mut();
        j.durable = j.durable.max(upto);
        let n = j.held.iter().take_while(|h| h.seq <= upto).count();
        j.held.drain(..n).collect()
    };
    if ready.is_empty() {
        return;
    }
    for h in ready {
        let reply = match failed {
            Some((from, e)) if h.own && h.seq > from => failed_reply(h.reply, e),
            _ => h.reply,
        };
        shard.reply(h.to, h.token, reply);
    }
    shard.pump();
}

/// The error answer of the same kind as `reply`.
fn failed_reply(reply: Reply, e: &AmqpError) -> Reply {
    match reply {
        Reply::Done(_) => Reply::Done(Err(e.clone())),
        Reply::Count(_) => Reply::Count(Err(e.clone())),
        Reply::Stats(_) => Reply::Stats(Err(e.clone())),
        Reply::Got(_) => Reply::Got(Err(e.clone())),
        other @ (Reply::Snapshot(_) | Reply::Picked(_)) => other,
    }
}
