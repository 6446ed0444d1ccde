//! Unit tests of length limits: reading the arguments, drop-head in
//! memory and from the paged tail (also while it is being read), the
//! bytes limit, and what reject-publish refuses.

use super::*;
use crate::broker::message::{Body, Message, MessageRef};
use crate::broker::queue::QueueConfig;
use crate::protocol::types::{FieldValue, LongStr, ShortStr};
use bytes::Bytes;
use std::sync::Arc;

fn msg(body: &str) -> MessageRef {
    Arc::new(Message {
        exchange: ShortStr::EMPTY,
        routing_key: ShortStr::from("q"),
        raw_properties: Bytes::from_static(&[0, 0]),
        body: Body::from(Bytes::from(body.to_string())),
        persistent: false,
    })
}

fn queue(args: &[(&str, FieldValue)]) -> Queue {
    let mut arguments = FieldTable::new();
    for (k, v) in args {
        arguments.insert(ShortStr::from(*k), v.clone());
    }
    Queue::new(
        ShortStr::from("q"),
        QueueConfig {
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments,
        },
    )
}

fn overflow(mode: &str) -> (&'static str, FieldValue) {
    (
        "x-overflow",
        FieldValue::LongStr(LongStr::from(Bytes::from(mode.to_string()))),
    )
}

fn ids(dropped: &[Dropped]) -> Vec<u64> {
    dropped
        .iter()
        .map(|d| match d {
            Dropped::Memory(m) => m.id,
            Dropped::Paged { id, .. } => *id,
        })
        .collect()
}

#[test]
fn arguments_are_read_with_drop_head_by_default() {
    let q = queue(&[("x-max-length", FieldValue::I32(5))]);
    assert_eq!(
        q.limits(),
        Limits {
            max_length: Some(5),
            max_bytes: None,
            overflow: Overflow::DropHead,
        }
    );
    let q = queue(&[
        ("x-max-length-bytes", FieldValue::I64(0)),
        overflow("reject-publish-dlx"),
    ]);
    assert_eq!(q.limits().max_bytes, Some(0));
    assert_eq!(q.limits().overflow, Overflow::RejectPublishDlx);
    assert!(queue(&[]).limits().is_none());
}

#[test]
fn drop_head_takes_the_oldest_in_memory_then_paged() {
    let mut q = queue(&[("x-max-length", FieldValue::I32(2))]);
    for b in ["a", "b", "c"] {
        q.publish(msg(b));
    }
    // Two more paged out (records in segment 7).
    for (i, offset) in [(0u32, 0u32), (1, 100)] {
        let id = q.reserve_id();
        q.push_paged(id, 7, offset, 100, None);
        q.paged_body(2 + i as u64);
    }
    assert_eq!(q.message_count(), 5);
    assert_eq!(q.ready_body_bytes(), 3 + 2 + 3);
    let dropped = q.drop_over_limit();
    assert_eq!(ids(&dropped), [1, 2, 3]);
    assert!(dropped[..3].iter().all(|d| matches!(d, Dropped::Memory(_))));
    assert_eq!(q.message_count(), 2);
    // Now the head is paged.
    let id = q.reserve_id();
    q.push_paged(id, 7, 200, 100, None);
    q.paged_body(4);
    let dropped = q.drop_over_limit();
    assert!(matches!(
        dropped[..],
        [Dropped::Paged { id: 4, segment: 7 }]
    ));
    assert_eq!((q.message_count(), q.paged_count()), (2, 2));
    assert_eq!(q.ready_body_bytes(), 3 + 4);
}

#[test]
fn a_paged_head_dropped_during_a_read_is_not_read_back() {
    let mut q = queue(&[("x-max-length", FieldValue::I32(1))]);
    for offset in [0u32, 100] {
        let id = q.reserve_id();
        q.push_paged(id, 3, offset, 100, None);
        q.paged_body(1);
    }
    let read = q.start_page_in(1 << 20).expect("a read");
    assert_eq!(ids(&q.drop_over_limit()), [1]);
    let found = vec![
        super::super::PagedMessage {
            id: 1,
            message: msg("x"),
            stored: None,
            expires: None,
        },
        super::super::PagedMessage {
            id: 2,
            message: msg("y"),
            stored: None,
            expires: None,
        },
    ];
    // Only id 2 comes back (one paged-only copy to release).
    assert_eq!(q.finish_page_in(&read, found, 200), 1);
    assert_eq!((q.message_count(), q.paged_count()), (1, 0));
    assert_eq!(q.ready_body_bytes(), 1);
}

#[test]
fn the_bytes_limit_drops_until_the_bodies_fit() {
    let mut q = queue(&[("x-max-length-bytes", FieldValue::I32(5))]);
    for b in ["aa", "bb", "cc", "d"] {
        q.publish(msg(b));
    }
    assert_eq!(ids(&q.drop_over_limit()), [1]);
    assert_eq!(q.ready_body_bytes(), 5);
    q.publish(msg("e"));
    assert_eq!(ids(&q.drop_over_limit()), [2]);
    assert_eq!(q.ready_body_bytes(), 4);
}

#[test]
fn reject_publish_refuses_what_would_go_over() {
    let mut q = queue(&[
        ("x-max-length", FieldValue::I32(2)),
        ("x-max-length-bytes", FieldValue::I32(10)),
        overflow("reject-publish"),
    ]);
    assert!(!q.rejects(10));
    assert!(q.rejects(11));
    q.publish(msg("12345"));
    assert!(!q.rejects(5));
    assert!(q.rejects(6));
    q.publish(msg("1"));
    assert!(q.rejects(0));
    // Refusing is all it does: nothing is dropped.
    assert!(q.drop_over_limit().is_empty());
    // drop-head never refuses.
    let q = queue(&[("x-max-length", FieldValue::I32(0))]);
    assert!(!q.rejects(1));
}

fn recovered_run(
    segment: u32,
    ids: &[u64],
    end: u32,
    bytes: u64,
) -> crate::broker::paged::PagedRun {
    let mut run = crate::broker::paged::PagedRun::new(segment, 0);
    for &id in ids {
        run.ids.insert(id);
    }
    run.end = end;
    run.bytes = bytes;
    run
}

#[test]
fn a_recovered_tail_counts_its_bytes_read_back_or_not() {
    use crate::broker::paged::{IdRanges, PagedTail};
    let mut q = queue(&[("x-max-length-bytes", FieldValue::I32(100))]);
    // Two runs as recovery summed them: ids 1, 2 (10 + 15 bytes), id 3 (7).
    let runs = vec![
        recovered_run(1, &[1, 2], 200, 25),
        recovered_run(2, &[3], 100, 7),
    ];
    q.restore(Vec::new(), PagedTail::from_runs(runs, IdRanges::new()), 3);
    assert_eq!(q.ready_body_bytes(), 32);
    // A newer paged message's size is kept after the recovered ones.
    let id = q.reserve_id();
    q.push_paged(id, 3, 0, 100, None);
    q.paged_body(60);
    assert_eq!(q.ready_body_bytes(), 92);
    assert_eq!(ids_of(q.drop_over_limit()), Vec::<u64>::new());
    // Read back, each message counts its own size: exact, sizes unequal.
    let read = q.start_page_in(1 << 20).expect("a read");
    let found = [(1, "0123456789"), (2, "0123456789abcde")]
        .into_iter()
        .map(|(id, body)| super::super::PagedMessage {
            id,
            message: msg(body),
            stored: Some(1),
            expires: None,
        })
        .collect();
    q.finish_page_in(&read, found, 200);
    assert_eq!(q.ready_body_bytes(), 25 + 7 + 60);
    // Over the limit once 9 more bytes come: drop-head drops in memory
    // first (exact sizes), then the recovered run unread (its sum).
    let id = q.reserve_id();
    q.push_paged(id, 3, 100, 100, None);
    q.paged_body(9);
    assert_eq!(q.ready_body_bytes(), 101);
    assert_eq!(ids_of(q.drop_over_limit()), vec![1]);
    assert_eq!(q.ready_body_bytes(), 91);
}

#[test]
fn a_recovered_run_dropped_unread_leaves_exactly_its_sum() {
    use crate::broker::paged::{IdRanges, PagedTail};
    let mut q = queue(&[("x-max-length-bytes", FieldValue::I32(0))]);
    let runs = vec![recovered_run(1, &[1, 2, 3], 300, 31)];
    q.restore(Vec::new(), PagedTail::from_runs(runs, IdRanges::new()), 3);
    assert_eq!(q.ready_body_bytes(), 31);
    // Sizes unknown one by one: each unread drop takes the run's average,
    // the last what is left, so the count ends at 0 exactly.
    assert_eq!(ids_of(q.drop_over_limit()), vec![1, 2, 3]);
    assert_eq!(q.ready_body_bytes(), 0);
}

fn ids_of(dropped: Vec<Dropped>) -> Vec<u64> {
    ids(&dropped)
}

#[test]
fn message_ttl_dropping_a_newer_recovered_run_forgets_its_own_sum() {
    use crate::broker::paged::{IdRanges, PagedTail};
    let mut q = queue(&[("x-max-length-bytes", FieldValue::I32(1000))]);
    // The older run never expires; the newer one (3 messages, 90 bytes)
    // expired at 50.
    let mut newer = recovered_run(2, &[3, 4, 5], 300, 90);
    newer.note_expiry(Some(50));
    let mut older = recovered_run(1, &[1, 2], 200, 11);
    older.note_expiry(None);
    q.restore(
        Vec::new(),
        PagedTail::from_runs(vec![older, newer], IdRanges::new()),
        5,
    );
    assert_eq!(q.ready_body_bytes(), 101);
    let out = q.expire(100, true);
    assert_eq!(out.dropped, vec![(2, 3)]);
    assert_eq!(q.ready_body_bytes(), 11, "the older run's sum is left");
}
