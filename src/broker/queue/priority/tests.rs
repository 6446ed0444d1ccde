//! Unit tests of the priority levels and their paged tail.

use super::tail::LevelTail;
use super::*;
use crate::broker::message::{Body, Message, MessageRef};
use crate::protocol::properties::BasicProperties;
use crate::protocol::types::FieldValue;
use std::sync::Arc;

fn message(priority: Option<u8>) -> MessageRef {
    let props = BasicProperties {
        priority,
        ..Default::default()
    };
    Arc::new(Message {
        exchange: "".into(),
        routing_key: "q".into(),
        raw_properties: props.to_bytes(),
        body: Body::from(bytes::Bytes::from_static(b"x")),
        persistent: false,
    })
}

fn queued(id: u64, priority: Option<u8>) -> QueuedMessage {
    QueuedMessage {
        id,
        message: message(priority),
        redelivered: false,
        stored: None,
        expires: None,
        delivery_count: 0,
        slice_generation: None,
    }
}

#[test]
fn max_priority_reads_integers_from_1_to_255() {
    let mut args = FieldTable::new();
    assert_eq!(max_priority(&args), None);
    args.insert("x-max-priority".into(), FieldValue::I32(10));
    assert_eq!(max_priority(&args), Some(10));
    for bad in [
        FieldValue::I32(0),
        FieldValue::I64(256),
        FieldValue::Bool(true),
    ] {
        let mut args = FieldTable::new();
        args.insert("x-max-priority".into(), bad);
        assert_eq!(max_priority(&args), None);
    }
}

#[test]
fn highest_level_first_fifo_within_and_requeue_in_place() {
    let mut l = Levels::new(3);
    for (id, p) in [
        (1, None),
        (2, Some(9)),
        (3, Some(1)),
        (4, Some(3)),
        (5, Some(0)),
    ] {
        l.push(queued(id, p));
    }
    let order: Vec<u64> = std::iter::from_fn(|| l.pop_front()).map(|m| m.id).collect();
    assert_eq!(order, vec![2, 4, 3, 1, 5]);
    for (id, p) in [(6, Some(2)), (7, Some(2)), (8, None)] {
        l.push(queued(id, p));
    }
    let first = l.pop_front().unwrap();
    assert_eq!(first.id, 6);
    l.requeue_sorted(vec![first]);
    let order: Vec<u64> = std::iter::from_fn(|| l.pop_front()).map(|m| m.id).collect();
    assert_eq!(order, vec![6, 7, 8]);
    assert_eq!((l.len(), l.bytes()), (0, 0));
}

#[test]
fn a_paged_level_is_waited_for_not_skipped() {
    let mut l = Levels::new(2);
    l.push(queued(1, None));
    // Message 2 (level 2) is paged out.
    l.reserved(2, &message(Some(2)));
    l.push_paged(2, 7, 0, 100, None);
    assert!(!l.has_ready(), "level 2 must come first");
    assert!(l.needs_page_in_for_get());
    let read = l.start_page_in(1 << 20).unwrap();
    let found = vec![PagedMessage {
        id: 2,
        message: message(Some(2)),
        stored: None,
        expires: None,
    }];
    assert_eq!(
        l.finish_page_in(&read, found, 100, |_| 0),
        (1, 1, 1),
        "a paged-only copy released, one message of 1 body byte back"
    );
    let order: Vec<u64> = std::iter::from_fn(|| l.pop_front()).map(|m| m.id).collect();
    assert_eq!(order, vec![2, 1]);
}

#[test]
fn interleaved_levels_cost_one_range_per_segment() {
    let mut t = LevelTail::new(4);
    for id in 1..=10_000u64 {
        t.push(id, (id % 4) as usize, 3, (id * 10) as u32, 10, None);
    }
    assert_eq!(t.count(), 10_000);
    assert_eq!(t.segments(), vec![(3, 10_000)]);
    // Reading level 3 skips the other levels' records in the same bytes.
    let read = t.start_read(3, u32::MAX).unwrap();
    let found = (1..=10_000u64)
        .map(|id| (id, (id % 4) as usize, ()))
        .collect();
    let (level, got, lost) = t.finish_read(&read, found, read.len);
    assert_eq!((level, got.len(), lost), (3, 2_500, 0));
    assert_eq!(t.count(), 7_500);
    assert!(!t.has(3) && t.has(0));
    // Once no level has a span left in a segment, unfound ids are counted out.
    for level in [0, 1, 2] {
        let read = t.start_read(level, u32::MAX).unwrap();
        let (_, got, lost) = t.finish_read(&read, Vec::<(u64, usize, ())>::new(), read.len);
        assert!(got.is_empty());
        assert_eq!(lost, if level == 2 { 7_500 } else { 0 });
    }
    assert!(t.is_empty() && t.segments().is_empty());
}

#[test]
fn a_purge_makes_an_outstanding_read_stale() {
    let mut t = LevelTail::new(2);
    t.push(1, 1, 4, 0, 100, None);
    let read = t.start_read(1, 1 << 20).unwrap();
    assert_eq!(t.clear(), vec![(4, 1)]);
    t.push(2, 1, 4, 100, 100, None);
    let (_, got, _) = t.finish_read(&read, vec![(1, 1, ())], 100);
    assert!(got.is_empty());
    assert_eq!(t.count(), 1);
    assert!(t.start_read(1, 1 << 20).is_some());
}

#[test]
fn message_ttl_drops_or_scans_paged_segments_of_every_level() {
    let mut t = LevelTail::new(3);
    // Segment 5: every level, all expired by 100. Segment 6: one expires at
    // 150, the other never.
    for id in 1..=3u64 {
        t.push(id, id as usize - 1, 5, (id * 10) as u32, 10, Some(100));
    }
    t.push(4, 2, 6, 0, 10, Some(150));
    t.push(5, 0, 6, 10, 10, None);
    assert_eq!(t.next_deadline(), Some(100));
    // Before anything is due: nothing.
    assert_eq!(t.expire(99, true), (vec![], vec![]));
    // Segment 5 is dropped unread, with every level's span in it.
    let (dropped, scans) = t.expire(100, true);
    assert_eq!((dropped, scans.len()), (vec![(5, 3)], 0));
    assert_eq!(t.count(), 2);
    assert!(t.has(0) && !t.has(1) && t.has(2));
    // Segment 6 holds one expired message: scanned, and only it goes.
    let (dropped, scans) = t.expire(150, true);
    assert!(dropped.is_empty());
    assert_eq!(scans.len(), 1);
    assert_eq!(t.next_deadline(), None, "being scanned");
    let expired = t.scan_chunk(&scans[0], vec![(4, Some(150)), (5, None)], 150);
    assert_eq!(expired, vec![4]);
    t.end_scan(&scans[0], None);
    assert_eq!(t.count(), 1);
    // Level 0 still reads its message back; level 2's span finds nothing.
    let read = t.start_read(0, 1 << 20).unwrap();
    let (_, got, lost) = t.finish_read(&read, vec![(5, 0, ())], read.len);
    assert_eq!((got.len(), lost), (1, 0));
    let read = t.start_read(2, 1 << 20).unwrap();
    let (_, got, lost) = t.finish_read(&read, Vec::<(u64, usize, ())>::new(), read.len);
    assert_eq!((got.len(), lost, t.count()), (0, 0, 0));
    // With a dead-letter exchange (drop_unread false) a segment all expired
    // is scanned instead: its bodies are needed.
    t.push(6, 1, 7, 0, 10, Some(200));
    let (dropped, scans) = t.expire(200, false);
    assert!(dropped.is_empty() && scans.len() == 1);
}
