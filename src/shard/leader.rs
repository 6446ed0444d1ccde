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

use crate::broker::error::{code, AmqpError, AmqpResult};
use crate::broker::exchange::{BindingDef, Destination, ExchangeDef, ExchangeKind};
use crate::protocol::types::ShortStr;
use crate::shard::durability::{definitions_of, durable_changes};
use crate::shard::envelope::{ConnKey, Envelope, MetaChange, QueueMeta, Reply, Request};
use crate::shard::{oneshot, replica, Shard};
use crate::storage::definitions::{self as stored, Catalog, Change, CrashPoint, JournalWriter};
use glommio::sync::Semaphore;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::rc::Rc;

pub use crate::shard::LEADER;

/// A journal smaller than this is never rotated, whatever the snapshot's
/// size.
const JOURNAL_MIN_ROTATE: u64 = 1 << 20;

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

/// The leader's side of the definitions journal.
#[derive(Default)]
struct Journal {
    /// The durable definitions with every journaled change applied (what a
    /// new snapshot holds); built from the metadata before the first
    /// change this process makes.
    catalog: Option<Catalog>,
    /// Framed entries the writer has not taken yet, and each one's
    /// sequence number and changes (to roll back if they cannot be stored).
    pending: Vec<u8>,
    pending_changes: Vec<(u64, Vec<Change>)>,
    /// Definitions writes tried (for `FAIL_AFTER_ENV`).
    writes: u64,
    /// Sequence number of the last entry added, and of the last one on disk.
    added: u64,
    durable: u64,
    /// Answers waiting for `durable` to reach their sequence, in order.
    held: VecDeque<Held>,
    /// Whether the writer task runs.
    writing: bool,
    /// The open journal: None before the first write, after a failure and
    /// while the writer has it.
    file: Option<JournalWriter>,
    /// Generations this process started, and the last one.
    started: u32,
    generation: u64,
    /// Size of the last snapshot written.
    snapshot_len: u64,
    /// Read from the environment on first use.
    config: Option<JournalConfig>,
}

struct Held {
    seq: u64,
    /// Whether the change added an entry of its own (`seq` is it); if not,
    /// it only waits for the entries before it and never fails with them.
    own: bool,
    to: u16,
    token: u64,
    reply: Reply,
}

#[derive(Clone, Copy, Debug)]
struct JournalConfig {
    max: Option<u64>,
    crash: Option<(CrashPoint, u32)>,
    fail_after: Option<u64>,
}

impl JournalConfig {
    fn from_env() -> JournalConfig {
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

/// Builds the journal's copy of the durable definitions from the metadata,
/// once, before the first change.
fn ensure_catalog(shard: &Shard) {
    let state = shard.leader.as_ref().expect("leader state");
    let mut j = state.journal.borrow_mut();
    if j.catalog.is_none() {
        let defs = definitions_of(&shard.meta.borrow(), shard.count);
        j.catalog = Some(Catalog::from_definitions(&defs));
        j.config = Some(JournalConfig::from_env());
    }
}

/// Adds what `change` (already applied to the leader's copy) did to the
/// durable definitions to the journal, and makes sure the writer runs.
fn journal_change(shard: &Rc<Shard>, change: &MetaChange) {
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

/// Sends the answer once every journal entry added so far (`seq`) is on
/// disk, after the answers held before it.
fn answer_when_durable(shard: &Rc<Shard>, seq: u64, own: bool, to: u16, token: u64, reply: Reply) {
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
fn release(shard: &Rc<Shard>, upto: u64, failed: Option<(u64, &AmqpError)>) {
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

/// The error answer of the same kind as `reply`.
fn failed_reply(reply: Reply, e: &AmqpError) -> Reply {
    match reply {
        Reply::Done(_) => Reply::Done(Err(e.clone())),
        Reply::Count(_) => Reply::Count(Err(e.clone())),
        Reply::Stats(_) => Reply::Stats(Err(e.clone())),
        Reply::Got(_) => Reply::Got(Err(e.clone())),
        other @ Reply::Snapshot(_) => other,
    }
}

/// Undoes what a batch that could not be stored created (durable queues,
/// exchanges, bindings still in the catalog as it made them), newest
/// first, through the ordinary changes (replicated to every shard),
/// holding the semaphore. Something a later change (still pending) names
/// again is left to that change. Deletions are not undone.
async fn roll_back(shard: &Rc<Shard>, changes: &[(u64, Vec<Change>)]) {
    let state = shard.leader.as_ref().expect("leader state");
    let _permit = state.lock.acquire_permit(1).await;
    for c in changes.iter().rev().flat_map(|(_, cs)| cs.iter().rev()) {
        let still = {
            let j = state.journal.borrow();
            let redefined = j
                .pending_changes
                .iter()
                .flat_map(|(_, cs)| cs.iter())
                .any(|later| same_entity(c, later));
            let catalog = j.catalog.as_ref().expect("catalog");
            !redefined
                && match c {
                    Change::Queue(q) => catalog.queue(&q.name).is_some(),
                    Change::Exchange(x) => catalog.exchange(&x.name).is_some(),
                    Change::Bind(b) => catalog.has_binding(b),
                    _ => false,
                }
        };
        if !still {
            continue;
        }
        match c {
            Change::Queue(q) => {
                if let Err(e) = delete_queue(shard, q.name.clone(), false, false, None).await {
                    tracing::error!("cannot roll back queue '{}': {e}", q.name);
                }
            }
            Change::Exchange(x) => {
                let deleted = shard
                    .meta
                    .borrow_mut()
                    .topology
                    .delete_exchange(&x.name, false);
                match deleted {
                    Ok(_) => replicate(shard, MetaChange::ExchangeDeleted(x.name.clone())).await,
                    Err(e) => tracing::error!("cannot roll back exchange '{}': {e}", x.name),
                }
            }
            Change::Bind(b) => {
                let unbound = shard.meta.borrow_mut().topology.unbind(
                    &b.source,
                    &b.destination,
                    &b.routing_key,
                    &b.arguments,
                );
                match unbound {
                    Ok(_) => replicate(shard, MetaChange::Unbound(b.clone())).await,
                    Err(e) => tracing::error!("cannot roll back a binding: {e}"),
                }
            }
            _ => {}
        }
    }
}

/// Whether two changes name the same queue, exchange or binding.
fn same_entity(a: &Change, b: &Change) -> bool {
    let queue = |c: &Change| match c {
        Change::Queue(q) => Some(q.name.clone()),
        Change::QueueGone(n) => Some(n.clone()),
        _ => None,
    };
    let exchange = |c: &Change| match c {
        Change::Exchange(x) => Some(x.name.clone()),
        Change::ExchangeGone(n) => Some(n.clone()),
        _ => None,
    };
    let binding = |c: &Change| match c {
        Change::Bind(b) | Change::Unbind(b) => Some(b.clone()),
        _ => None,
    };
    (queue(a).is_some() && queue(a) == queue(b))
        || (exchange(a).is_some() && exchange(a) == exchange(b))
        || (binding(a).is_some() && binding(a) == binding(b))
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

fn locked_queue(name: &str) -> AmqpError {
    AmqpError::resource_locked(format!(
        "cannot obtain exclusive access to locked queue '{name}' in vhost '/'. It could be \
         originally declared on another connection or the exclusive property value does not \
         match that of the original declaration."
    ))
}

fn check_exclusive(meta: &QueueMeta, conn: Option<ConnKey>) -> AmqpResult<()> {
    match (meta.exclusive_to, conn) {
        (Some(owner), Some(c)) if owner != c => Err(locked_queue(&meta.name)),
        _ => Ok(()),
    }
}

async fn handle(shard: &Rc<Shard>, request: Request) -> Reply {
    match request {
        Request::DeclareQueue {
            name,
            config,
            owner,
            conn,
        } => Reply::Done(declare_queue(shard, name, config, owner, conn).await),
        Request::DeleteQueue {
            name,
            if_unused,
            if_empty,
            conn,
        } => Reply::Count(delete_queue(shard, name, if_unused, if_empty, conn).await),
        Request::ForgetQueue { name } => {
            if shard.meta.borrow().queues.contains_key(&name) {
                commit(shard, MetaChange::QueueDeleted(name)).await;
            }
            Reply::Done(Ok(()))
        }
        Request::DeclareExchange {
            name,
            kind,
            passive,
            durable,
            auto_delete,
            internal,
            arguments,
        } => {
            let result = shard.meta.borrow_mut().topology.declare_exchange(
                &name,
                &kind,
                passive,
                durable,
                auto_delete,
                internal,
                &arguments,
            );
            if result == Ok(true) && !passive {
                let def = ExchangeDef {
                    name,
                    kind: ExchangeKind::parse(&kind).expect("validated by declare"),
                    durable,
                    auto_delete,
                    internal,
                    arguments,
                };
                replicate(shard, MetaChange::ExchangeDeclared(def)).await;
            }
            Reply::Done(result.map(|_| ()))
        }
        Request::DeleteExchange { name, if_unused } => {
            let existed = shard.meta.borrow().topology.exchange(&name).is_some();
            let result = shard
                .meta
                .borrow_mut()
                .topology
                .delete_exchange(&name, if_unused);
            if result.is_ok() && existed {
                replicate(shard, MetaChange::ExchangeDeleted(name)).await;
            }
            Reply::Done(result.map(|_| ()))
        }
        Request::Bind {
            source,
            destination,
            routing_key,
            arguments,
            conn,
        } => Reply::Done(
            bind(
                shard,
                true,
                source,
                destination,
                routing_key,
                arguments,
                conn,
            )
            .await,
        ),
        Request::Unbind {
            source,
            destination,
            routing_key,
            arguments,
            conn,
        } => Reply::Done(
            bind(
                shard,
                false,
                source,
                destination,
                routing_key,
                arguments,
                conn,
            )
            .await,
        ),
        other => {
            debug_assert!(false, "owner request reached the leader task: {other:?}");
            Reply::Done(Err(AmqpError::new(
                crate::broker::error::code::INTERNAL_ERROR,
                "misrouted request",
            )))
        }
    }
}

async fn declare_queue(
    shard: &Rc<Shard>,
    name: ShortStr,
    config: crate::broker::queue::QueueConfig,
    owner: u16,
    conn: ConnKey,
) -> AmqpResult<()> {
    let existing = shard.meta.borrow().queues.get(&name).cloned();
    if let Some(meta) = existing {
        check_exclusive(&meta, Some(conn))?;
        return check_equivalent(&meta, &config);
    }
    let meta = QueueMeta {
        name,
        owner,
        exclusive_to: config.exclusive.then_some(conn),
        config,
    };
    commit(shard, MetaChange::QueueCreated(meta)).await;
    Ok(())
}

/// RabbitMQ's equivalence check on redeclare (durable, auto-delete,
/// exclusive, arguments), with its wording.
fn check_equivalent(
    meta: &QueueMeta,
    config: &crate::broker::queue::QueueConfig,
) -> AmqpResult<()> {
    let name = &meta.name;
    let current = &meta.config;
    let inequivalent = |field: &str, received: String, now: String| {
        Err(AmqpError::precondition_failed(format!(
            "inequivalent arg '{field}' for queue '{name}' in vhost '/': received '{received}' but current is '{now}'"
        )))
    };
    if current.durable != config.durable {
        return inequivalent(
            "durable",
            config.durable.to_string(),
            current.durable.to_string(),
        );
    }
    if current.auto_delete != config.auto_delete {
        return inequivalent(
            "auto_delete",
            config.auto_delete.to_string(),
            current.auto_delete.to_string(),
        );
    }
    if current.exclusive != config.exclusive {
        return inequivalent(
            "exclusive",
            config.exclusive.to_string(),
            current.exclusive.to_string(),
        );
    }
    crate::broker::queue_args::check_equivalent_arguments(
        name,
        &current.arguments,
        &config.arguments,
    )
}

async fn delete_queue(
    shard: &Rc<Shard>,
    name: ShortStr,
    if_unused: bool,
    if_empty: bool,
    conn: Option<ConnKey>,
) -> AmqpResult<u32> {
    let Some(meta) = shard.meta.borrow().queues.get(&name).cloned() else {
        return Ok(0);
    };
    check_exclusive(&meta, conn)?;
    let reply = shard
        .request(
            meta.owner,
            Request::DropQueue {
                name: name.clone(),
                if_unused,
                if_empty,
            },
        )
        .await;
    let count = match reply {
        Reply::Count(r) => r?,
        other => panic!("DropQueue answered with {other:?}"),
    };
    commit(shard, MetaChange::QueueDeleted(name)).await;
    Ok(count)
}

fn unbind_targets_exist(shard: &Shard, source: &str, destination: &Destination) -> bool {
    let meta = shard.meta.borrow();
    meta.topology.exchange(source).is_some() && meta.destination_exists(destination)
}

async fn bind(
    shard: &Rc<Shard>,
    bind: bool,
    source: ShortStr,
    destination: Destination,
    routing_key: ShortStr,
    arguments: crate::protocol::types::FieldTable,
    conn: ConnKey,
) -> AmqpResult<()> {
    if !bind && !unbind_targets_exist(shard, &source, &destination) {
        // RabbitMQ answers unbind-ok when the binding cannot exist.
        return Ok(());
    }
    // RabbitMQ's order: the exchanges first, then the queue.
    shard
        .meta
        .borrow()
        .topology
        .check_bind(&source, &destination)?;
    if let Destination::Queue(q) = &destination {
        let meta = shard.meta.borrow().queues.get(q).cloned();
        match meta {
            None => {
                return Err(AmqpError::not_found(format!("no queue '{q}' in vhost '/'")));
            }
            Some(m) => check_exclusive(&m, Some(conn))?,
        }
    }
    let def = BindingDef {
        source,
        destination,
        routing_key,
        arguments,
    };
    let result = {
        let mut meta = shard.meta.borrow_mut();
        if bind {
            meta.topology
                .bind(
                    &def.source,
                    def.destination.clone(),
                    &def.routing_key,
                    &def.arguments,
                )
                .map(|_| ())
        } else {
            meta.topology
                .unbind(
                    &def.source,
                    &def.destination,
                    &def.routing_key,
                    &def.arguments,
                )
                .map(|_| ())
        }
    };
    result?;
    let change = if bind {
        MetaChange::Bound(def)
    } else {
        MetaChange::Unbound(def)
    };
    replicate(shard, change).await;
    Ok(())
}
