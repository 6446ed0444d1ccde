//! The leader's side of the definitions journal: its state (the catalog,
//! pending entries, held answers, the open file), the environment knobs
//! (rotation bound, test crash points and injected failures), and the
//! catalog built from the metadata before the first change.

use crate::shard::definitions::definitions_of;
use crate::shard::envelope::Reply;
use crate::shard::Shard;
use crate::storage::definitions::{Catalog, Change, CrashPoint, JournalWriter};
use std::collections::VecDeque;

/// A journal smaller than this is never rotated, whatever the snapshot's
/// size.
pub(super) const JOURNAL_MIN_ROTATE: u64 = 1 << 20;

/// Environment: rotate the definitions journal once it holds more than
/// this many bytes, instead of when it outgrows the snapshot (tests use a
/// small bound to rotate often).
pub const JOURNAL_MAX_ENV: &str = "WARREN_DEFINITIONS_JOURNAL_MAX";

/// Environment, tests only: `<point>[:<n>]` makes the process SIGKILL
/// itself at `point` (`snapshot-written`, `snapshot-renamed`,
/// `journal-truncated`) while it starts its `n`-th journal generation
/// (default 2: the first rotation after the one at start-up).
pub const CRASH_ENV: &str = "WARREN_TEST_DEFINITIONS_CRASH";

/// Environment, tests only: `N` makes every definitions write (a journal
/// append, a new generation) after the first `N` fail, as a broken disk
/// would.
pub const FAIL_AFTER_ENV: &str = "WARREN_TEST_DEFINITIONS_FAIL_AFTER";

/// The leader's side of the definitions journal.
#[derive(Default)]
pub(super) struct Journal {
    /// The durable definitions with every journaled change applied (what a
    /// new snapshot holds); built from the metadata before the first
    /// change this process makes.
    pub(super) catalog: Option<Catalog>,
    /// Framed entries the writer has not taken yet, and each one's
    /// sequence number and changes (to roll back if they cannot be stored).
    pub(super) pending: Vec<u8>,
    pub(super) pending_changes: Vec<(u64, Vec<Change>)>,
    /// Definitions writes tried (for `FAIL_AFTER_ENV`).
    pub(super) writes: u64,
    /// Sequence number of the last entry added, and of the last one on disk.
    pub(super) added: u64,
    pub(super) durable: u64,
    /// Answers waiting for `durable` to reach their sequence, in order.
    pub(super) held: VecDeque<Held>,
    /// Whether the writer task runs.
    pub(super) writing: bool,
    /// The open journal: None before the first write, after a failure and
    /// while the writer has it.
    pub(super) file: Option<JournalWriter>,
    /// Generations this process started, and the last one.
    pub(super) started: u32,
    pub(super) generation: u64,
    /// Size of the last snapshot written.
    pub(super) snapshot_len: u64,
    /// Read from the environment on first use.
    pub(super) config: Option<JournalConfig>,
}

pub(super) struct Held {
    pub(super) seq: u64,
    /// Whether the change added an entry of its own (`seq` is it); if not,
    /// it only waits for the entries before it and never fails with them.
    pub(super) own: bool,
    pub(super) to: u16,
    pub(super) token: u64,
    pub(super) reply: Reply,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct JournalConfig {
    pub(super) max: Option<u64>,
    pub(super) crash: Option<(CrashPoint, u32)>,
    pub(super) fail_after: Option<u64>,
}

impl JournalConfig {
    pub(super) fn from_env() -> JournalConfig {
        let max = std::env::var(JOURNAL_MAX_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok());
        let crash = std::env::var(CRASH_ENV).ok().and_then(|v| {
            let (point, n) = match v.split_once(':') {
                Some((p, n)) => (p.to_string(), n.trim().parse().ok()?),
                None => (v.clone(), 2),
            };
            Some((CrashPoint::parse(point.trim())?, n))
        });
        let fail_after = std::env::var(FAIL_AFTER_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok());
        JournalConfig {
            max,
            crash,
            fail_after,
        }
    }
}

/// Builds the journal's copy of the durable definitions from the metadata,
/// once, before the first change.
pub(super) fn ensure_catalog(shard: &Shard) {
    let state = shard.leader.as_ref().expect("leader state");
    let mut j = state.journal.borrow_mut();
    if j.catalog.is_none() {
        let mut defs = definitions_of(&shard.meta.borrow(), shard.count);
        if !shard.meta.borrow().auth.persisted() {
            // A first start's default user is not stored yet.
            defs.auth = None;
        }
        j.catalog = Some(Catalog::from_definitions(&defs));
        j.config = Some(JournalConfig::from_env());
    }
}
