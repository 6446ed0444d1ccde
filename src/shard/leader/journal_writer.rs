//! Journaling: each change's effect on the durable definitions added as
//! an entry, and the writer task that appends pending entries with one
//! fdatasync (group commit), releases the answers they cover, rotates to a
//! new generation when the journal is big, and rolls back a batch that
//! cannot be stored.

use super::answers::release;
use super::journal::JOURNAL_MIN_ROTATE;
use super::rollback::roll_back;
use super::LeaderState;
use crate::broker::error::{code, AmqpError};
use crate::shard::definitions::{definitions_of, durable_changes};
use crate::shard::envelope::MetaChange;
use crate::shard::Shard;
use crate::storage::definitions::{self as stored, Catalog, JournalWriter};
use std::io;
use std::rc::Rc;

/// Adds what `change` (already applied to the leader's copy) did to the
/// durable definitions to the journal, and makes sure the writer runs.
pub(super) fn journal_change(shard: &Rc<Shard>, change: &MetaChange) {
    let state = shard.leader.as_ref().expect("leader state");
    let mut guard = state.journal.borrow_mut();
    let j = &mut *guard;
    let Some(catalog) = j.catalog.as_mut() else {
        debug_assert!(false, "a change before the catalog was built");
        return;
    };
    let changes = durable_changes(catalog, &shard.meta.borrow(), change);
    for c in &changes {
        catalog.apply(c);
    }
    // Debug builds (the tests): the journal's copy must be exactly the
    // durable part of the metadata after every change, durable or not.
    if cfg!(debug_assertions)
        && catalog.size() <= 2_000
        && shard.meta.borrow().queues.len() <= 2_000
    {
        let journaled = catalog.to_definitions().canonical();
        let expected = definitions_of(&shard.meta.borrow(), shard.count).canonical();
        debug_assert!(
            journaled == expected,
            "journaled definitions diverged from the metadata after {change:?} \
             ({changes:?}):\njournaled {journaled:?}\nmetadata {expected:?}"
        );
    }
    if changes.is_empty() {
        return;
    }
    stored::encode_entry(&changes, &mut j.pending);
    j.added += 1;
    let seq = j.added;
    j.pending_changes.push((seq, changes));
    let start_writer = !j.writing;
    j.writing = true;
    drop(guard);
    if start_writer {
        // (glommio may run a new task at once: no borrow held here.)
        glommio::spawn_local(write_journal(shard.clone())).detach();
    }
}

/// The writer: appends whatever is pending with one fdatasync, releases the
/// answers it covers, rotates when the journal is big; until nothing is
/// pending.
async fn write_journal(shard: Rc<Shard>) {
    let state = shard.leader.as_ref().expect("leader state");
    loop {
        let (batch, changes, from, upto, file) = {
            let mut j = state.journal.borrow_mut();
            if j.pending.is_empty() {
                j.writing = false;
                return;
            }
            (
                std::mem::take(&mut j.pending),
                std::mem::take(&mut j.pending_changes),
                j.durable,
                j.added,
                j.file.take(),
            )
        };
        let file = match append(&shard, file, batch).await {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::error!(
                    "cannot append to the definitions journal: {e}; writing a new snapshot"
                );
                match new_generation(&shard).await {
                    Ok(f) => Some(f),
                    Err(e) => {
                        // Not on disk: undo what the batch created, then
                        // fail its changes (the next change tries again).
                        tracing::error!(
                            "cannot store definitions: {e}; rolling back what the \
                             failed changes created and closing their connections with 541"
                        );
                        roll_back(&shard, &changes).await;
                        let error = AmqpError::new(
                            code::INTERNAL_ERROR,
                            format!("cannot store the durable definitions: {e}"),
                        );
                        release(&shard, upto, Some((from, &error)));
                        state.journal.borrow_mut().file = None;
                        continue;
                    }
                }
            }
        };
        release(&shard, upto, None);
        let file = match file {
            Some(f) if should_rotate(state, &f) => {
                f.close().await;
                match new_generation(&shard).await {
                    Ok(f) => Some(f),
                    Err(e) => {
                        tracing::error!("cannot rotate the definitions journal: {e}");
                        None
                    }
                }
            }
            other => other,
        };
        state.journal.borrow_mut().file = file;
    }
}

/// Counts a definitions write; fails it once `FAIL_AFTER_ENV` writes were
/// made (tests).
fn injected_failure(state: &LeaderState) -> io::Result<()> {
    let mut j = state.journal.borrow_mut();
    j.writes += 1;
    match j.config.and_then(|c| c.fail_after) {
        Some(n) if j.writes > n => Err(io::Error::other("injected definitions write error (test)")),
        _ => Ok(()),
    }
}

/// Appends a batch to the open journal; with none open, starts a new
/// generation, whose snapshot already holds the batch.
async fn append(
    shard: &Rc<Shard>,
    file: Option<JournalWriter>,
    batch: Vec<u8>,
) -> io::Result<JournalWriter> {
    match file {
        Some(mut f) => match async {
            injected_failure(shard.leader.as_ref().expect("leader state"))?;
            f.append(batch).await
        }
        .await
        {
            Ok(()) => Ok(f),
            Err(e) => {
                f.close().await;
                Err(e)
            }
        },
        None => new_generation(shard).await,
    }
}

fn should_rotate(state: &LeaderState, f: &JournalWriter) -> bool {
    let j = state.journal.borrow();
    let bound = match j.config.and_then(|c| c.max) {
        Some(max) => max,
        None => j.snapshot_len.max(JOURNAL_MIN_ROTATE),
    };
    !f.is_empty() && f.len() > bound
}

/// Writes a snapshot of the catalog (every change added so far) as a new
/// generation and opens its empty journal.
async fn new_generation(shard: &Rc<Shard>) -> io::Result<JournalWriter> {
    let state = shard.leader.as_ref().expect("leader state");
    injected_failure(state)?;
    let dir = shard.settings.data_dir.clone();
    let on_disk = stored::journal_generation(&dir).await?;
    let (defs, generation, crash) = {
        let mut j = state.journal.borrow_mut();
        j.started += 1;
        let generation = j.generation.max(on_disk) + 1;
        let crash = j
            .config
            .and_then(|c| c.crash)
            .filter(|&(_, n)| n == j.started)
            .map(|(point, _)| point);
        let defs = j
            .catalog
            .as_ref()
            .map(Catalog::to_definitions)
            .unwrap_or_default();
        (defs, generation, crash)
    };
    let (journal, snapshot_len) = stored::start_generation(&dir, &defs, generation, crash).await?;
    let mut j = state.journal.borrow_mut();
    j.generation = generation;
    j.snapshot_len = snapshot_len;
    Ok(journal)
}
