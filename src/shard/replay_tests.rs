//! Recovery's view of a queue against compaction, by model: a model log
//! takes publishes (originals, ids in order), acks, compaction rounds (the
//! live records of the oldest segment copied forward in ascending id
//! order, the originals released), other traffic and segment deletions
//! (only of dead segments whose kill-records' targets are gone, at a
//! moment everything appended is durable), then a crash cuts it anywhere
//! after the last deletion. Replaying what is left must give back exactly
//! the messages live at the cut, each once, each from its latest record,
//! and the copies (in memory) all before the originals (paged), so the
//! queue is restored in id order.

use super::tests::message;
use super::QueueReplay;
use crate::storage::RecordPos;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rec {
    Original(u64),
    /// A compaction copy, marked (`Record::Copy`) or, as logs written
    /// before the mark, a plain message record.
    Copy(u64),
    Ack(u64),
    /// Another queue's traffic, dead at once.
    Other,
}

#[derive(Clone, Debug)]
enum Op {
    /// Publish; `true`: the message stays paged (its segment is never
    /// compacted while it lives).
    Publish(bool),
    /// Ack the n-th live message (modulo).
    Ack(usize),
    /// Page the n-th paged message in (modulo).
    PageIn(usize),
    Compact,
    Other(u8),
    /// Everything appended is durable; dead segments go.
    Delete,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<bool>().prop_map(Op::Publish),
        3 => any::<usize>().prop_map(Op::Ack),
        1 => any::<usize>().prop_map(Op::PageIn),
        2 => Just(Op::Compact),
        1 => (1u8..6).prop_map(Op::Other),
        2 => Just(Op::Delete),
    ]
}

/// The model broker's log of one shard with one queue.
struct Model {
    /// (segment, record), in append order.
    log: Vec<(u32, Rec)>,
    per_segment: usize,
    active: u32,
    in_active: usize,
    /// Live references per segment on disk.
    live: BTreeMap<u32, u64>,
    /// Segments each segment holds kill-records for (`Log::release`).
    pins: BTreeMap<u32, BTreeSet<u32>>,
    deleted: BTreeSet<u32>,
    next_id: u64,
    /// Live id → segment of its latest record.
    at: BTreeMap<u64, u32>,
    paged: BTreeSet<u64>,
    /// A crash keeps at least this much of the log (the last deletion).
    durable: usize,
}

impl Model {
    fn new(per_segment: usize) -> Model {
        Model {
            log: Vec::new(),
            per_segment,
            active: 1,
            in_active: 0,
            live: BTreeMap::from([(1, 0)]),
            pins: BTreeMap::new(),
            deleted: BTreeSet::new(),
            next_id: 1,
            at: BTreeMap::new(),
            paged: BTreeSet::new(),
            durable: 0,
        }
    }

    fn append(&mut self, rec: Rec) -> u32 {
        if self.in_active == self.per_segment {
            self.active += 1;
            self.in_active = 0;
            self.live.insert(self.active, 0);
        }
        self.in_active += 1;
        self.log.push((self.active, rec));
        self.active
    }

    fn release(&mut self, segment: u32, by: u32) {
        *self.live.get_mut(&segment).expect("a live segment") -= 1;
        if by != segment {
            self.pins.entry(by).or_default().insert(segment);
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Publish(paged) => {
                let id = self.next_id;
                self.next_id += 1;
                let seg = self.append(Rec::Original(id));
                *self.live.get_mut(&seg).unwrap() += 1;
                self.at.insert(id, seg);
                if paged {
                    self.paged.insert(id);
                }
            }
            Op::Ack(n) if !self.at.is_empty() => {
                let id = *self.at.keys().nth(n % self.at.len()).unwrap();
                let by = self.append(Rec::Ack(id));
                let seg = self.at.remove(&id).unwrap();
                self.paged.remove(&id);
                self.release(seg, by);
            }
            Op::PageIn(n) if !self.paged.is_empty() => {
                let id = *self.paged.iter().nth(n % self.paged.len()).unwrap();
                self.paged.remove(&id);
            }
            Op::Compact => {
                let Some((&oldest, _)) = self.live.iter().find(|(_, &n)| n > 0) else {
                    return;
                };
                let ids: Vec<u64> = self
                    .at
                    .iter()
                    .filter(|(_, &s)| s == oldest)
                    .map(|(&id, _)| id)
                    .collect();
                if self.active - oldest < 2 || ids.iter().any(|id| self.paged.contains(id)) {
                    return;
                }
                // Ascending ids (`at` is ordered), as `relocate_stored`.
                for id in ids {
                    let seg = self.append(Rec::Copy(id));
                    *self.live.get_mut(&seg).unwrap() += 1;
                    self.release(oldest, seg);
                    self.at.insert(id, seg);
                }
            }
            Op::Other(n) => {
                for _ in 0..n {
                    self.append(Rec::Other);
                }
            }
            Op::Delete => {
                self.durable = self.log.len();
                loop {
                    let gone = |s: &u32, d: &BTreeSet<u32>| d.contains(s);
                    let next = self.live.iter().find(|(&s, &n)| {
                        s < self.active
                            && n == 0
                            && self
                                .pins
                                .get(&s)
                                .is_none_or(|p| p.iter().all(|p| gone(p, &self.deleted)))
                    });
                    let Some((&s, _)) = next else { break };
                    self.live.remove(&s);
                    self.deleted.insert(s);
                }
            }
            _ => {}
        }
    }
}

/// Replays the first `cut` records of `log` found on disk (not in a
/// deleted segment); `marked`: copies are `Record::Copy` (else plain
/// message records, as before the mark).
fn replay(m: &Model, cut: usize, marked: bool) -> QueueReplay {
    let mut q = QueueReplay::default();
    for (i, &(segment, rec)) in m.log[..cut].iter().enumerate() {
        if m.deleted.contains(&segment) {
            continue;
        }
        let pos = RecordPos {
            segment,
            offset: i as u32 * 10,
            len: 10,
        };
        match rec {
            Rec::Original(id) => {
                q.add_record(id, pos, None, 1, message);
            }
            Rec::Copy(id) if marked => {
                q.add_copy(id, pos, None, message);
            }
            Rec::Copy(id) => {
                q.add_record(id, pos, None, 1, message);
            }
            Rec::Ack(id) => {
                q.kill(id);
            }
            Rec::Other => {}
        }
    }
    q
}

/// The messages live after the first `cut` records, with the segment of
/// each one's latest record: what any replay must find.
fn expected(m: &Model, cut: usize) -> BTreeMap<u64, u32> {
    let mut live = BTreeMap::new();
    for &(segment, rec) in &m.log[..cut] {
        match rec {
            Rec::Original(id) | Rec::Copy(id) => {
                live.insert(id, segment);
            }
            Rec::Ack(id) => {
                live.remove(&id);
            }
            Rec::Other => {}
        }
    }
    live
}

/// What the replay found: id → segment, panicking on an id found twice.
fn found(q: &QueueReplay) -> BTreeMap<u64, u32> {
    let mut out = BTreeMap::new();
    for (&id, (_, segment)) in &q.moved {
        out.insert(id, *segment);
    }
    for run in q.runs.values() {
        for id in 0..200 {
            if run.ids.contains(id) {
                assert!(out.insert(id, run.segment).is_none(), "id {id} twice");
            }
        }
    }
    out
}

fn model(ops: &[Op], per_segment: usize) -> Model {
    let mut m = Model::new(per_segment);
    for op in ops {
        m.apply(op);
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn marked_copies_replay_to_the_live_messages_in_id_order(
        ops in proptest::collection::vec(op(), 1..120),
        per_segment in 2usize..6,
        cut in any::<prop::sample::Index>(),
    ) {
        let m = model(&ops, per_segment);
        // A crash anywhere after the last deletion.
        let cut = m.durable + cut.index(m.log.len() - m.durable + 1);
        let q = replay(&m, cut, true);
        prop_assert_eq!(found(&q), expected(&m, cut));
        prop_assert!(q.in_order(), "copies after originals: {:?}", &m.log[..cut]);
        // Every copy comes back in memory, every original in the runs.
        for &id in found(&q).keys() {
            let latest = m.log[..cut].iter().rev().find_map(|&(_, r)| match r {
                Rec::Original(i) | Rec::Copy(i) if i == id => Some(r),
                _ => None,
            });
            let copy = latest == Some(Rec::Copy(id));
            prop_assert_eq!(q.moved.contains_key(&id), copy, "id {}", id);
        }
    }

    #[test]
    fn unmarked_copies_lose_and_repeat_nothing(
        ops in proptest::collection::vec(op(), 1..120),
        per_segment in 2usize..6,
        cut in any::<prop::sample::Index>(),
    ) {
        // A log written before copies were marked: its order may be off
        // (`in_order` tells), never its contents.
        let m = model(&ops, per_segment);
        let cut = m.durable + cut.index(m.log.len() - m.durable + 1);
        let q = replay(&m, cut, false);
        prop_assert_eq!(found(&q), expected(&m, cut));
    }
}

/// Issue 14's sequence: copies of the older live messages written first
/// into a segment, newer originals after them, then the younger live
/// messages copied, the originals' segments gone. Unmarked, the first
/// copies pass for originals and the queue comes back out of order;
/// marked, in order.
#[test]
fn copies_after_newer_originals_with_their_originals_gone() {
    let mut ops = vec![Op::Publish(false); 8];
    // Segments of 2: ids 1-2 | 3-4 | 5-6 | 7-8. Ack 1..=5: 6 in seg 3, 7-8 in seg 4.
    ops.extend((0..5).map(|_| Op::Ack(0)));
    // Acks filled seg 5 (and one in 6): compact seg 3 (6 → copy in 6).
    ops.push(Op::Compact);
    ops.push(Op::Delete);
    // A newer original, then the other traffic makes seg 4 a candidate.
    ops.push(Op::Publish(false));
    ops.push(Op::Other(3));
    ops.push(Op::Compact);
    ops.push(Op::Delete);
    let m = model(&ops, 2);
    assert!(
        m.deleted.contains(&3) && m.deleted.contains(&4),
        "{:?}",
        m.deleted
    );
    let cut = m.log.len();
    let old = replay(&m, cut, false);
    assert!(!old.in_order(), "the old reading: copies 7, 8 ahead of 6");
    let new = replay(&m, cut, true);
    assert!(new.in_order());
    assert_eq!(new.moved.keys().copied().collect::<Vec<_>>(), vec![6, 7, 8]);
    assert_eq!(found(&new), expected(&m, cut));
}
