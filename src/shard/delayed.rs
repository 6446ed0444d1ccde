//! Delayed messages (the `x-delayed-message` exchange type) on the shard
//! that received their publish: each one is a `Delayed` log record, and
//! the shard keeps only a timing index of them — per message its deadline,
//! id and log position (`Entry`, 32 bytes, in a binary heap) — so a
//! million pending 1 KiB messages cost ~32 MB of index (worst case twice
//! that while the heap's vector grows), never their bodies. A timer task
//! sleeps until the earliest deadline, reads the due records back, routes
//! each through its exchange's bindings as they are *then* (as the plugin
//! does), and enqueues the copies with their owners.
//!
//! Durability: a persistent message published to a durable exchange is a
//! durable record (its publisher's confirm waits for the fsync) and comes
//! back after a restart; its removal (`DelayedDone`) is written only once
//! every owner confirmed the copies it routed (so a crash in between
//! delivers it twice rather than never). Other delayed messages are
//! transient records, ignored by recovery, released once routed.
//!
//! Compaction: a long delay would pin its record's segment, and with it
//! every later segment holding kill records for an older one. When the
//! oldest live segment holds only pending delayed records and stored
//! messages in memory, compaction (`shard::durability::compact`) has
//! `relocate` append those delayed records again (same id; recovery keeps
//! the latest record of an id and counts the older one dead) and release
//! the old ones.
//!
//! Where the delayed-message plugin differs from an ordinary exchange (and
//! Warren follows it): a mandatory publish with a delay is returned
//! (312 NO_ROUTE) at once, whatever the bindings, and nothing is returned
//! at delivery time; a message whose exchange is gone at its time is
//! dropped.

use crate::broker::message::{Body, Message};
use crate::broker::topology::Origin;
use crate::broker::vhost::VhostId;
use crate::protocol::properties::BasicProperties;
use crate::protocol::types::{FieldTable, ShortStr};
use crate::shard::confirm::ConfirmOutcome;
use crate::shard::envelope::{ConfirmTicket, Envelope};
use crate::shard::{FastMap, Shard};
use crate::storage::record;
use crate::storage::{Delayed, DelayedRef, Record, RecordKind, RecordPos, RecordRef};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The connection id of the confirm tickets the scheduler hands to owners
/// with the copies of a durable delayed message (no client connection
/// has it: ids count up from 1).
pub const CONFIRM_CONN: u64 = u64::MAX;

/// Due messages read back and routed per timer turn.
const BATCH: usize = 4096;

/// Due records of a turn are read back with one log read per run of
/// records in the same segment no further apart than this…
const READ_GAP: u32 = 64 << 10;
/// …and spanning at most this many bytes (a larger record is read alone).
const READ_SPAN: u32 = 1 << 20;

/// One pending delayed message: ordered by deadline, then publish order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    at: u64,
    id: u64,
    segment: u32,
    offset: u32,
    len: u32,
    durable: bool,
}

impl Entry {
    fn pos(&self) -> RecordPos {
        RecordPos {
            segment: self.segment,
            offset: self.offset,
            len: self.len,
        }
    }
}

/// A durable delayed message routed and waiting for its owners' confirms.
struct InFlight {
    owners: u32,
    pos: RecordPos,
}

/// One shard's pending delayed messages.
pub struct Scheduler {
    heap: RefCell<BinaryHeap<Reverse<Entry>>>,
    next_id: Cell<u64>,
    /// Pending messages per exchange of a vhost (`warren ctl
    /// list_exchanges`).
    counts: RefCell<FastMap<(VhostId, ShortStr), u64>>,
    in_flight: RefCell<FastMap<u64, InFlight>>,
    /// Compaction is moving records forward (`relocate`).
    moving: Cell<bool>,
    wake: LocalSender<()>,
    woken: RefCell<Option<LocalReceiver<()>>>,
}

impl Default for Scheduler {
    fn default() -> Scheduler {
        let (wake, woken) = local_channel::new_bounded(1);
        Scheduler {
            heap: RefCell::new(BinaryHeap::new()),
            next_id: Cell::new(1),
            counts: RefCell::new(FastMap::default()),
            in_flight: RefCell::new(FastMap::default()),
            moving: Cell::new(false),
            wake,
            woken: RefCell::new(Some(woken)),
        }
    }
}

/// The durable delayed messages recovery found still pending.
#[derive(Default)]
pub struct RecoveredDelayed {
    entries: FastMap<u64, (Entry, (VhostId, ShortStr))>,
    max_id: u64,
}

impl RecoveredDelayed {
    /// A `Delayed` record in the log (transient ones are ignored), of
    /// exchange `x` in `vhost`. A later record of the same id is a copy
    /// compaction moved forward: it supersedes the earlier one, whose
    /// segment is returned (its reference is dead).
    #[allow(clippy::too_many_arguments)]
    pub fn delayed(
        &mut self,
        pos: RecordPos,
        id: u64,
        at: u64,
        durable: bool,
        vhost: VhostId,
        x: &ShortStr,
    ) -> Option<u32> {
        self.max_id = self.max_id.max(id);
        if !durable {
            return None;
        }
        let e = Entry {
            at,
            id,
            segment: pos.segment,
            offset: pos.offset,
            len: pos.len,
            durable,
        };
        self.entries
            .insert(id, (e, (vhost, x.clone())))
            .map(|(old, _)| old.segment)
    }

    /// A `DelayedDone` record: returns the segment of the record it kills.
    pub fn done(&mut self, id: u64) -> Option<u32> {
        self.entries.remove(&id).map(|(e, _)| e.segment)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Scheduler {
    /// Restores what recovery found (before serving).
    pub fn restore(&self, recovered: RecoveredDelayed) {
        self.next_id
            .set(self.next_id.get().max(recovered.max_id + 1));
        let mut heap = self.heap.borrow_mut();
        let mut counts = self.counts.borrow_mut();
        for (_, (e, x)) in recovered.entries {
            heap.push(Reverse(e));
            *counts.entry(x).or_default() += 1;
        }
    }

    /// Pending messages per exchange of a vhost.
    pub fn counts(&self) -> Vec<(VhostId, ShortStr, u64)> {
        self.counts
            .borrow()
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|((v, x), n)| (*v, x.clone(), *n))
            .collect()
    }

    /// A vhost was deleted: its exchanges' counts go (its messages are
    /// dropped when due, as for a deleted exchange).
    pub fn forget_vhost(&self, vhost: VhostId) {
        self.counts.borrow_mut().retain(|(v, _), _| *v != vhost);
    }

    /// Pending messages on this shard.
    pub fn pending(&self) -> usize {
        self.heap.borrow().len()
    }

    fn uncount(&self, vhost: VhostId, exchange: &ShortStr) {
        let mut counts = self.counts.borrow_mut();
        let key = (vhost, exchange.clone());
        if let Some(n) = counts.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&key);
            }
        }
    }
}

/// A publish to a delayed exchange, to be routed `delay_ms` from now:
/// written to the log (durable when the message is persistent and the
/// exchange durable) and indexed. The outcome is the publisher's confirm.
#[allow(clippy::too_many_arguments)]
pub fn hold(
    shard: &Shard,
    vhost: VhostId,
    exchange: &ShortStr,
    routing_key: &ShortStr,
    raw_properties: &[u8],
    body: &Body,
    delay_ms: u64,
    durable: bool,
) -> ConfirmOutcome {
    let Some(log) = shard.log.as_ref() else {
        return ConfirmOutcome::Failed("delayed messages need the shard's log".into());
    };
    let s = &shard.delayed;
    let id = s.next_id.get();
    // Rounded up: never routed before `delay_ms` has passed.
    let at = now_us().div_ceil(1000).saturating_add(delay_ms);
    let record = RecordRef::Delayed(DelayedRef {
        id,
        deliver_at: at,
        durable,
        exchange,
        routing_key,
        raw_properties,
        body: body.chunks(),
    });
    let pos = match shard.append_in(log, vhost, record) {
        Ok(pos) => pos,
        Err(e) => return ConfirmOutcome::Failed(format!("delayed message not stored: {e}")),
    };
    s.next_id.set(id + 1);
    let entry = Entry {
        at,
        id,
        segment: pos.segment,
        offset: pos.offset,
        len: pos.len,
        durable,
    };
    let mut heap = s.heap.borrow_mut();
    let earliest = heap.peek().is_none_or(|Reverse(e)| entry < *e);
    heap.push(Reverse(entry));
    drop(heap);
    *s.counts
        .borrow_mut()
        .entry((vhost, exchange.clone()))
        .or_default() += 1;
    if earliest {
        let _ = s.wake.try_send(());
    }
    if durable {
        ConfirmOutcome::AfterSync(pos.lsn())
    } else {
        ConfirmOutcome::Now
    }
}

/// The scheduler's timer task: runs until the shard shuts down.
pub async fn run(shard: Rc<Shard>) {
    let Some(woken) = shard.delayed.woken.borrow_mut().take() else {
        return;
    };
    while !shard.shutting_down.get() {
        let due = take_due(&shard);
        if !due.is_empty() {
            let records = read_due(&shard, &due).await;
            for (e, d) in due.into_iter().zip(records) {
                deliver(&shard, e, d);
            }
            shard.pump();
            continue;
        }
        let next = shard.delayed.heap.borrow().peek().map(|Reverse(e)| e.at);
        // At most 1 s, so a clock step or a shutdown is seen.
        let wait = match next {
            Some(at) => Duration::from_micros((at * 1000).saturating_sub(now_us())),
            None => Duration::from_secs(1),
        }
        .min(Duration::from_secs(1));
        futures_lite::future::or(
            async {
                glommio::timer::sleep(wait).await;
            },
            async {
                let _ = woken.recv().await;
            },
        )
        .await;
    }
}

fn take_due(shard: &Shard) -> Vec<Entry> {
    let now = now_ms();
    let mut heap = shard.delayed.heap.borrow_mut();
    let mut due = Vec::new();
    while due.len() < BATCH {
        match heap.peek() {
            Some(Reverse(e)) if e.at <= now => {
                due.push(*e);
                heap.pop();
            }
            _ => break,
        }
    }
    due
}

/// Reads a turn's due records back (in the order of `due`): one read per
/// run of nearby records of a segment (`READ_GAP`, `READ_SPAN`), sorted by
/// position; a record that read or decode fails gets its own `read`, with
/// its retries.
async fn read_due(shard: &Shard, due: &[Entry]) -> Vec<Option<ReadBack>> {
    let mut out: Vec<Option<ReadBack>> = due.iter().map(|_| None).collect();
    let Some(log) = shard.log.as_ref() else {
        return out;
    };
    let max = log.max_record_len();
    let mut order: Vec<usize> = (0..due.len()).collect();
    order.sort_unstable_by_key(|&i| (due[i].segment, due[i].offset));
    let mut k = 0;
    while k < order.len() {
        let first = due[order[k]];
        let start = first.offset;
        let mut end = first.offset.saturating_add(first.len);
        let mut j = k + 1;
        while let Some(&i) = order.get(j) {
            let e = due[i];
            let e_end = e.offset.saturating_add(e.len);
            if e.segment != first.segment
                || e.offset > end.saturating_add(READ_GAP)
                || e_end - start > READ_SPAN
            {
                break;
            }
            end = end.max(e_end);
            j += 1;
        }
        let run = &order[k..j];
        if run.len() > 1 {
            if let Ok(data) = log.read_range(first.segment, start, end - start).await {
                for &i in run {
                    let at = (due[i].offset - start) as usize;
                    // A copy per record: a body must not pin the whole run.
                    let bytes = data.get(at..at + due[i].len as usize);
                    out[i] = bytes.and_then(|b| decode_delayed(shard, b, max));
                }
            }
        }
        for &i in run {
            if out[i].is_none() {
                out[i] = read(shard, due[i].pos()).await;
            }
        }
        k = j;
    }
    out
}

/// A delayed message read back and the vhost it was published in (`None`:
/// one deleted meanwhile).
type ReadBack = (Option<VhostId>, Delayed);

/// A record read back as a delayed message (unwrapped from its vhost), or
/// the kind of record it is instead.
fn delayed_of(shard: &Shard, record: Record) -> Result<ReadBack, RecordKind> {
    match record.split_vhost() {
        (vhost, Record::Delayed(d)) => {
            let vhost = match vhost {
                None => Some(VhostId::DEFAULT),
                Some(name) => shard.meta.borrow().vhost_id(&name),
            };
            Ok((vhost, d))
        }
        (_, other) => Err(other.kind()),
    }
}

/// One whole delayed record, copied out of a run read back.
fn decode_delayed(shard: &Shard, bytes: &[u8], max: u32) -> Option<ReadBack> {
    let bytes = bytes::Bytes::copy_from_slice(bytes);
    match record::decode(&bytes, max) {
        Ok((r, n)) if n == bytes.len() => delayed_of(shard, r).ok(),
        _ => None,
    }
}

/// Routes one due message (read back, or `None`: unreadable, already
/// logged) and hands its copies over.
fn deliver(shard: &Rc<Shard>, e: Entry, d: Option<ReadBack>) {
    let log = shard.log.as_ref().expect("delayed messages are in the log");
    let pos = e.pos();
    let Some((vhost, d)) = d else {
        return;
    };
    // A vhost deleted meanwhile routes nothing.
    let vhost = vhost.unwrap_or(VhostId(u32::MAX));
    shard.delayed.uncount(vhost, &d.exchange);
    let props = BasicProperties::decode(d.raw_properties.clone()).ok();
    let persistent = props.as_ref().and_then(|p| p.delivery_mode) == Some(2);
    let headers: Option<FieldTable> = props.and_then(|p| p.headers);
    let mut queues = Vec::new();
    {
        let meta = shard.meta.borrow();
        // Gone exchange (or vhost): dropped, as the plugin does.
        // With its `CC` / `BCC` keys, as its publish would have been.
        if let Some(t) = meta.topology(vhost) {
            let _ = t.route_stored(
                &d.exchange,
                &d.routing_key,
                headers.as_ref(),
                Origin::Broker,
                &mut queues,
            );
        }
        let message = Arc::new(Message {
            exchange: d.exchange.clone(),
            routing_key: d.routing_key.clone(),
            raw_properties: d.raw_properties.clone(),
            body: Body::from(d.body.clone()),
            persistent,
        });
        let by_owner = meta.group_by_owner(vhost, queues.drain(..));
        let owners = by_owner.len() as u32;
        let confirm = (e.durable && owners > 0).then_some(ConfirmTicket {
            shard: shard.id,
            conn: CONFIRM_CONN,
            channel: 0,
            seq: e.id,
        });
        if confirm.is_some() {
            shard
                .delayed
                .in_flight
                .borrow_mut()
                .insert(e.id, InFlight { owners, pos });
        }
        for (owner, queues) in by_owner {
            shard.send(
                owner,
                Envelope::Enqueue {
                    queues,
                    message: message.clone(),
                    confirm,
                    publisher: None,
                },
            );
        }
        if confirm.is_some() {
            return;
        }
    }
    if e.durable {
        done(shard, e.id, pos);
    } else {
        log.release(pos.segment, pos.segment);
    }
}

/// Reads the delayed record at `pos` back (the message and the vhost it
/// was published in), retrying a failed read a few times.
async fn read(shard: &Shard, pos: RecordPos) -> Option<ReadBack> {
    let log = shard.log.as_ref()?;
    let mut backoff = Duration::from_millis(10);
    for attempt in 1..=6 {
        match log.read_record(pos).await.map(|r| delayed_of(shard, r)) {
            Ok(Ok(read_back)) => return Some(read_back),
            Ok(Err(kind)) => {
                tracing::error!(shard = shard.id, "delayed record at {pos:?} is a {kind:?}");
                return None;
            }
            Err(e) => {
                tracing::warn!(
                    shard = shard.id,
                    "cannot read delayed message at {pos:?} (attempt {attempt}): {e}"
                );
                glommio::timer::sleep(backoff).await;
                backoff *= 2;
            }
        }
    }
    tracing::error!(
        shard = shard.id,
        "delayed message at {pos:?} lost: unreadable"
    );
    None
}

/// How many of this shard's delayed records in `segment` are live: pending
/// ones (which compaction can move, `relocate`) and routed ones waiting for
/// their owners' confirms (which it cannot: their `DelayedDone` comes
/// soon). Looks at every pending message: compaction asks once per
/// candidate segment.
pub fn held_in(shard: &Shard, segment: u32) -> (u64, u64) {
    let s = &shard.delayed;
    let pending = s
        .heap
        .borrow()
        .iter()
        .filter(|Reverse(e)| e.segment == segment)
        .count() as u64;
    let routed = s
        .in_flight
        .borrow()
        .values()
        .filter(|f| f.pos.segment == segment)
        .count() as u64;
    (pending, routed)
}

/// Compaction: appends the pending delayed records of `segment` again
/// (same id, deadline and durability) and releases the old ones, so a long
/// delay does not pin the segment (and every later one holding kill
/// records for it). The entries leave the timer's heap while their records
/// are read back and rewritten (they are routed a little late if due
/// meanwhile, never twice); one that cannot be read stays where it is.
/// Recovery keeps the latest record of an id. Returns whether it started.
pub fn relocate(shard: &Rc<Shard>, segment: u32) -> bool {
    let s = &shard.delayed;
    if s.moving.get() {
        return false;
    }
    let taken: Vec<Entry> = {
        let mut heap = s.heap.borrow_mut();
        let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut *heap)
            .into_vec()
            .into_iter()
            .partition(|Reverse(e)| e.segment == segment);
        *heap = BinaryHeap::from(kept);
        taken.into_iter().map(|Reverse(e)| e).collect()
    };
    if taken.is_empty() {
        return false;
    }
    s.moving.set(true);
    let shard = shard.clone();
    glommio::spawn_local(async move {
        for e in taken {
            let moved = rewrite(&shard, e).await;
            let s = &shard.delayed;
            let mut heap = s.heap.borrow_mut();
            let earliest = heap.peek().is_none_or(|Reverse(first)| moved < *first);
            heap.push(Reverse(moved));
            drop(heap);
            if earliest {
                let _ = s.wake.try_send(());
            }
        }
        shard.delayed.moving.set(false);
    })
    .detach();
    true
}

/// Appends `e`'s record again; returns the entry at its new place (or as it
/// was, if the record could not be read or appended).
async fn rewrite(shard: &Shard, e: Entry) -> Entry {
    let Some(log) = shard.log.as_ref() else {
        return e;
    };
    // A message of a vhost deleted meanwhile is left where it is (dropped
    // when due).
    let Some((Some(vhost), d)) = read(shard, e.pos()).await else {
        return e;
    };
    let record = RecordRef::Delayed(DelayedRef {
        id: e.id,
        deliver_at: e.at,
        durable: e.durable,
        exchange: &d.exchange,
        routing_key: &d.routing_key,
        raw_properties: &d.raw_properties,
        body: std::slice::from_ref(&d.body),
    });
    match shard.append_in(log, vhost, record) {
        Ok(pos) => {
            log.release(e.segment, pos.segment);
            Entry {
                segment: pos.segment,
                offset: pos.offset,
                len: pos.len,
                ..e
            }
        }
        Err(err) => {
            tracing::error!(
                shard = shard.id,
                "cannot move delayed message {} forward: {err}",
                e.id
            );
            e
        }
    }
}

/// A durable delayed message was routed and its copies are safe: its
/// record dies.
fn done(shard: &Shard, id: u64, pos: RecordPos) {
    let log = shard.log.as_ref().expect("delayed messages are in the log");
    match log.append(RecordRef::DelayedDone { id }) {
        Ok(by) => log.release(pos.segment, by.segment),
        Err(e) => tracing::error!(
            shard = shard.id,
            "cannot record delayed message {id} done: {e}"
        ),
    }
}

/// Owners confirmed (or failed) the copies of these durable delayed
/// messages (`seqs` are their ids).
pub fn confirmed(shard: &Shard, seqs: &[u64], ok: bool) {
    for &id in seqs {
        let mut in_flight = shard.delayed.in_flight.borrow_mut();
        let Some(f) = in_flight.get_mut(&id) else {
            continue;
        };
        if !ok {
            // Kept in the log: it is routed again after a restart.
            tracing::error!(
                shard = shard.id,
                "delayed message {id}: a copy was not stored"
            );
            in_flight.remove(&id);
            continue;
        }
        f.owners -= 1;
        if f.owners == 0 {
            let pos = f.pos;
            in_flight.remove(&id);
            drop(in_flight);
            done(shard, id, pos);
        }
    }
}

/// Reads the `x-delay` of a publish to `exchange` if it is a delayed
/// exchange: `Some((delay, durable exchange))` when the message is to be
/// held.
pub fn delay_of(
    meta: &crate::shard::metadata::Metadata,
    vhost: VhostId,
    exchange: &str,
    headers: Option<&FieldTable>,
) -> Option<(u64, bool)> {
    use crate::broker::exchange::{delayed, ExchangeKind};
    // The header first: most publishes carry no `x-delay`, and then the
    // publish path pays no exchange lookup for this.
    let delay = delayed::delay_ms(headers)?;
    let x = meta.topology(vhost)?.exchange(exchange)?;
    if x.kind != ExchangeKind::DelayedMessage || x.internal {
        return None;
    }
    Some((delay, x.durable))
}
