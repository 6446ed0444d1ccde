//! The metadata leader (shard 0). It orders every change to exchanges,
//! bindings and the queue catalog: validates the request against its copy,
//! applies it, replicates it to every other shard and answers only once all
//! of them acknowledged — so a client that got bind-ok can publish on any
//! connection and the binding is in force. Changes run one at a time (a
//! local semaphore); the message path never waits for any of this.
//!
//! Durable changes are journaled (`storage::definitions`): as the leader
//! replicates a change it adds the change's effect on the durable
//! definitions to a pending buffer as one journal entry, and a writer task
//! appends the buffer with one fdatasync (glommio async I/O, so shard 0's
//! executor never blocks on the disk). Entries added while a sync is in
//! flight go in the next one (group commit). The semaphore is released
//! before the sync; the answer is held until the sync covering the
//! change's entry (and every entry before it) completes, and held answers
//! go out in the order the changes were made. When the journal outgrows the
//! snapshot (1 MiB at least) the writer starts a new generation: a snapshot
//! of everything, then an empty journal.
//!
//! A batch that cannot be stored (the append fails, and so does the new
//! generation tried instead) is never answered as done: the writer first
//! rolls back, under the semaphore, what the batch created (durable queues,
//! exchanges and bindings: deleted again, as if the declare never
//! happened, unless a later change already redefined them), then answers
//! each change whose own entry was in the batch with 541 INTERNAL_ERROR
//! (the connection closes). Deletions stay in force in memory (their
//! messages are gone); the disk may hold the entity until the next write
//! succeeds, which is a new snapshot of the catalog, without it.
//!
//! The parts: `requests` (each metadata request validated and applied),
//! `journal` (the leader's journal state and its test knobs),
//! `journal_writer` (changes journaled, the writer task, generations),
//! `answers` (answers held until their entry is on disk) and `rollback`
//! (undoing a batch that could not be stored). This file holds the
//! leader's state, the task per request, and replication to the other
//! shards.

mod answers;
mod journal;
mod journal_writer;
mod requests;
mod rollback;
mod vhosts;

pub use crate::shard::LEADER;
pub use journal::{CRASH_ENV, FAIL_AFTER_ENV, JOURNAL_MAX_ENV};

use crate::shard::envelope::{Envelope, MetaChange, Request};
use crate::shard::{oneshot, replica, Shard};
use answers::answer_when_durable;
use glommio::sync::Semaphore;
use journal::{ensure_catalog, Journal};
use journal_writer::journal_change;
use requests::handle;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// A replicated change waiting for the other shards' acks.
struct PendingAcks {
    missing: u16,
    done: Option<oneshot::Sender<()>>,
}

pub struct LeaderState {
    lock: Semaphore,
    next_token: Cell<u64>,
    acks: RefCell<HashMap<u64, PendingAcks>>,
    journal: RefCell<Journal>,
}

impl LeaderState {
    pub fn new() -> LeaderState {
        LeaderState {
            lock: Semaphore::new(1),
            next_token: Cell::new(1),
            acks: RefCell::new(HashMap::new()),
            journal: RefCell::new(Journal::default()),
        }
    }
}

impl Default for LeaderState {
    fn default() -> LeaderState {
        LeaderState::new()
    }
}

pub fn is_leader_request(r: &Request) -> bool {
    matches!(
        r,
        Request::DeclareQueue { .. }
            | Request::DeleteQueue { .. }
            | Request::ForgetQueue { .. }
            | Request::DeclareExchange { .. }
            | Request::DeleteExchange { .. }
            | Request::Bind { .. }
            | Request::Unbind { .. }
            | Request::SetPolicy { .. }
            | Request::ClearPolicy { .. }
            | Request::AddVhost { .. }
            | Request::DeleteVhost { .. }
            | Request::SetVhostLimits { .. }
            | Request::Auth(_)
    )
}

pub fn spawn(shard: Rc<Shard>, from: u16, token: u64, request: Request) {
    assert_eq!(shard.id, LEADER, "metadata requests go to the leader");
    glommio::spawn_local(async move {
        let state = shard.leader.as_ref().expect("leader state");
        let (reply, seq, own) = {
            let _permit = state.lock.acquire_permit(1).await;
            ensure_catalog(&shard);
            let before = state.journal.borrow().added;
            let reply = handle(&shard, request).await;
            // The change's own entry, if it had one, is the last added.
            let seq = state.journal.borrow().added;
            (reply, seq, seq > before)
        };
        answer_when_durable(&shard, seq, own, from, token, reply);
    })
    .detach();
}

pub fn meta_ack(shard: &Rc<Shard>, token: u64) {
    let state = shard.leader.as_ref().expect("acks go to the leader");
    let mut acks = state.acks.borrow_mut();
    let complete = match acks.get_mut(&token) {
        Some(entry) => {
            entry.missing -= 1;
            entry.missing == 0
        }
        None => false,
    };
    if complete {
        let entry = acks.remove(&token).expect("present");
        drop(acks);
        if let Some(w) = entry.done {
            w.send(());
        }
    }
}

/// Journals a change the leader already applied (if it touches durable
/// definitions), replicates it to every other shard and waits until all of
/// them have applied it.
async fn replicate(shard: &Rc<Shard>, change: MetaChange) {
    journal_change(shard, &change);
    if shard.count == 1 {
        return;
    }
    let state = shard.leader.as_ref().expect("leader");
    let token = state.next_token.get();
    state.next_token.set(token + 1);
    let (tx, rx) = oneshot::channel();
    state.acks.borrow_mut().insert(
        token,
        PendingAcks {
            missing: shard.count - 1,
            done: Some(tx),
        },
    );
    for dest in 0..shard.count {
        if dest != shard.id {
            shard.send(
                dest,
                Envelope::Meta {
                    change: change.clone(),
                    token,
                },
            );
        }
    }
    shard.pump();
    rx.await;
}

/// Applies on the leader, then replicates.
async fn commit(shard: &Rc<Shard>, change: MetaChange) {
    replica::apply(shard, &change);
    replicate(shard, change).await;
}
