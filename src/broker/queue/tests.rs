//! Unit tests of a queue: round-robin and fair dispatch, prefetch and the
//! transit window, unacked memory and the consumers' shares of it, requeue
//! order, exclusivity, paging out and back in, purge, compaction, restore
//! and auto-delete.

use super::*;
use crate::broker::message::{Body, Message};
use crate::protocol::types::FieldTable;
use bytes::Bytes;
use std::sync::Arc;

fn msg(n: u32) -> MessageRef {
    Arc::new(Message {
        exchange: ShortStr::EMPTY,
        routing_key: ShortStr::from("q"),
        raw_properties: Bytes::from_static(&[0, 0]),
        body: Body::from(Bytes::from(n.to_string())),
        persistent: false,
    })
}

fn body(d: &Delivery) -> String {
    String::from_utf8(d.message.body.to_bytes().to_vec()).unwrap()
}

fn key(tag: &str) -> ConsumerKey {
    ConsumerKey {
        shard: 0,
        conn: 1,
        channel: 1,
        tag: ShortStr::from(tag),
    }
}

fn consumer(tag: &str, prefetch: u32, no_ack: bool) -> ConsumerSpec {
    ConsumerSpec {
        key: key(tag),
        no_ack,
        exclusive: false,
        prefetch,
        priority: 0,
    }
}

fn add(q: &mut Queue, spec: ConsumerSpec) {
    let key = spec.key.clone();
    q.add_consumer(spec).unwrap();
    q.activate(&key);
}

fn queue() -> Queue {
    Queue::new(
        ShortStr::from("q"),
        QueueConfig {
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: FieldTable::new(),
        },
    )
}

#[test]
fn round_robin_between_consumers() {
    let mut q = queue();
    add(&mut q, consumer("a", 0, true));
    add(&mut q, consumer("b", 0, true));
    for i in 0..4 {
        q.publish(msg(i));
    }
    let tags: Vec<String> = std::iter::from_fn(|| q.next_delivery())
        .map(|d| d.consumer.tag.to_string())
        .collect();
    assert_eq!(tags, ["a", "b", "a", "b"]);
    assert_eq!(q.message_count(), 0);
}

#[test]
fn prefetch_limits_unacked_and_ack_frees_credit() {
    let mut q = queue();
    add(&mut q, consumer("a", 1, false));
    q.publish(msg(1));
    q.publish(msg(2));
    let d = q.next_delivery().expect("first delivery");
    assert!(q.next_delivery().is_none(), "prefetch 1 holds the second");
    q.settle(&[d.msg_id], Settle::Remove);
    let d2 = q.next_delivery().expect("second after ack");
    assert_eq!(body(&d2), "2");
}

#[test]
fn fair_dispatch_skips_busy_consumer() {
    let mut q = queue();
    add(&mut q, consumer("slow", 1, false));
    add(&mut q, consumer("fast", 1, false));
    for i in 0..3 {
        q.publish(msg(i));
    }
    let d1 = q.next_delivery().unwrap();
    let d2 = q.next_delivery().unwrap();
    assert_eq!(
        (d1.consumer.tag.as_str(), d2.consumer.tag.as_str()),
        ("slow", "fast")
    );
    assert!(q.next_delivery().is_none());
    q.settle(&[d2.msg_id], Settle::Remove);
    let d3 = q.next_delivery().unwrap();
    assert_eq!(d3.consumer.tag.as_str(), "fast");
}

#[test]
fn requeue_restores_original_order_with_redelivered() {
    let mut q = queue();
    add(&mut q, consumer("a", 0, false));
    for i in 1..=5 {
        q.publish(msg(i));
    }
    let ds: Vec<Delivery> = (0..3).map(|_| q.next_delivery().unwrap()).collect();
    q.remove_consumer(&key("a"));
    // Requeue out of order; they must come back as 1, 2, 3 then 4, 5.
    q.settle(&[ds[2].msg_id], Settle::Requeue);
    q.settle(&[ds[0].msg_id, ds[1].msg_id], Settle::Requeue);
    add(&mut q, consumer("b", 0, true));
    let got: Vec<(String, bool)> = std::iter::from_fn(|| q.next_delivery())
        .map(|d| (body(&d), d.redelivered))
        .collect();
    assert_eq!(
        got,
        [
            ("1".into(), true),
            ("2".into(), true),
            ("3".into(), true),
            ("4".into(), false),
            ("5".into(), false)
        ]
    );
}

#[test]
fn requeue_merges_into_middle() {
    let mut q = queue();
    add(&mut q, consumer("a", 0, false));
    for i in 1..=4 {
        q.publish(msg(i));
    }
    let d1 = q.next_delivery().unwrap();
    let d2 = q.next_delivery().unwrap();
    q.settle(&[d2.msg_id], Settle::Requeue); // ready: 2,3,4
    let d2b = q.next_delivery().unwrap(); // 2 again
    assert_eq!(body(&d2b), "2");
    q.settle(&[d1.msg_id], Settle::Requeue); // ready: 1,3,4
    q.remove_consumer(&key("a"));
    assert_eq!(q.get(true).map(|m| m.id), Some(d1.msg_id));
    assert_eq!(q.message_count(), 2);
}

#[test]
fn requeues_one_at_a_time_and_in_batches_keep_id_order() {
    let mut q = queue();
    add(&mut q, consumer("a", 0, false));
    for i in 1..=100 {
        q.publish(msg(i));
    }
    let ds: Vec<Delivery> = (0..80).map(|_| q.next_delivery().unwrap()).collect();
    q.remove_consumer(&key("a"));
    // One at a time, oldest first (2, 4, …, 80): each after the one before.
    for d in ds.iter().skip(1).step_by(2) {
        q.settle(&[d.msg_id], Settle::Requeue);
    }
    // The other 40 (1, 3, …, 79) in one batch, between them.
    let batch: Vec<u64> = ds.iter().step_by(2).map(|d| d.msg_id).collect();
    q.settle(&batch, Settle::Requeue);
    add(&mut q, consumer("b", 0, true));
    let got: Vec<String> = std::iter::from_fn(|| q.next_delivery())
        .map(|d| body(&d))
        .collect();
    let want: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
}

#[test]
fn exclusive_consumer_refuses_others() {
    let mut q = queue();
    let mut spec = consumer("a", 0, false);
    spec.exclusive = true;
    add(&mut q, spec);
    let err = q.add_consumer(consumer("b", 0, false)).unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(
        err.text,
        "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use"
    );
}

#[test]
fn transit_window_bounds_no_ack_consumer_until_credit() {
    let mut q = queue();
    add(&mut q, consumer("a", 0, true));
    for i in 0..(TRANSIT_WINDOW + 10) {
        q.publish(msg(i));
    }
    let n = std::iter::from_fn(|| q.next_delivery()).count() as u32;
    assert_eq!(n, TRANSIT_WINDOW);
    q.credit(&key("a"), 10);
    assert_eq!(std::iter::from_fn(|| q.next_delivery()).count(), 10);
}

#[test]
fn get_in_ack_mode_keeps_message_unacked_until_settled() {
    let mut q = queue();
    q.publish(msg(1));
    let m = q.get(false).unwrap();
    assert_eq!(q.unacked_count(), 1);
    assert_eq!(q.message_count(), 0);
    q.settle(&[m.id], Settle::Requeue);
    assert_eq!(q.message_count(), 1);
    assert!(q.get(true).unwrap().redelivered);
}

/// Pages `n` messages out as if written back to back in segment 1
/// (record i at offset 100 * i); returns their ids.
fn page_out(q: &mut Queue, n: u32) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let id = q.reserve_id();
            q.push_paged(id, 1, 100 * id as u32, 100, None);
            id
        })
        .collect()
}

fn paged_back(ids: &[u64]) -> Vec<PagedMessage> {
    ids.iter()
        .map(|&id| PagedMessage {
            id,
            message: msg(id as u32),
            stored: None,
            expires: None,
        })
        .collect()
}

#[test]
fn a_queue_over_its_limit_pages_and_keeps_order_and_counts() {
    let mut q = queue();
    let cost = resident_cost(&msg(1));
    let limit = 2 * cost;
    let mut ids = Vec::new();
    for i in 1..=2 {
        assert!(!q.pages_new_messages(limit));
        ids.push(q.publish(msg(i)));
    }
    assert_eq!(q.resident_bytes(), limit);
    assert!(q.pages_new_messages(limit));
    let paged = page_out(&mut q, 3);
    assert_eq!(
        (q.message_count(), q.resident_count(), q.paged_count()),
        (5, 2, 3)
    );
    // Once something is paged, new messages follow it even if memory frees up.
    add(&mut q, consumer("a", 0, true));
    let first: Vec<u64> = std::iter::from_fn(|| q.next_delivery())
        .map(|d| d.msg_id)
        .collect();
    assert_eq!(first, ids);
    assert_eq!(q.resident_bytes(), 0);
    assert!(
        q.pages_new_messages(limit),
        "order: new messages go behind the tail"
    );
    assert!(q.wants_page_in());
    let read = q.start_page_in(1 << 20).unwrap();
    assert!(!q.wants_page_in(), "one read at a time");
    let release = q.finish_page_in(&read, paged_back(&paged), read.len);
    assert_eq!(release, 3, "paged-only copies release their log references");
    let rest: Vec<u64> = std::iter::from_fn(|| q.next_delivery())
        .map(|d| d.msg_id)
        .collect();
    assert_eq!(rest, paged);
    assert_eq!(q.message_count(), 0);
    assert!(!q.pages_new_messages(limit), "tail drained: back to memory");
}

#[test]
fn requeued_messages_go_ahead_of_the_paged_tail() {
    let mut q = queue();
    add(&mut q, consumer("a", 0, false));
    q.publish(msg(1));
    let d = q.next_delivery().unwrap();
    let paged = page_out(&mut q, 2);
    q.settle(&[d.msg_id], Settle::Requeue);
    assert_eq!(q.message_count(), 3);
    let again = q.next_delivery().unwrap();
    assert_eq!((again.msg_id, again.redelivered), (d.msg_id, true));
    let read = q.start_page_in(1 << 20).unwrap();
    q.finish_page_in(&read, paged_back(&paged), read.len);
    let ids: Vec<u64> = std::iter::from_fn(|| q.next_delivery())
        .map(|d| d.msg_id)
        .collect();
    assert_eq!(ids, paged);
}

#[test]
fn purge_drops_the_tail_and_voids_a_read_in_flight() {
    let mut q = queue();
    q.publish(msg(1));
    let paged = page_out(&mut q, 4);
    let read = q.start_page_in(1 << 20).unwrap();
    let purged = q.purge();
    assert_eq!(purged.count, 5);
    assert_eq!(purged.paged, vec![(1, 4)]);
    assert_eq!(purged.max_id, paged.last().copied());
    assert_eq!(q.finish_page_in(&read, paged_back(&paged), read.len), 0);
    assert_eq!((q.message_count(), q.resident_bytes()), (0, 0));
}

#[test]
fn basic_get_needs_a_page_in_only_when_memory_is_empty() {
    let mut q = queue();
    q.publish(msg(1));
    let paged = page_out(&mut q, 1);
    assert!(!q.needs_page_in_for_get());
    assert_eq!(q.get(true).unwrap().id, 1);
    assert!(q.needs_page_in_for_get());
    let read = q.start_page_in(1 << 20).unwrap();
    q.finish_page_in(&read, paged_back(&paged), read.len);
    assert_eq!(q.get(true).unwrap().id, paged[0]);
}

#[test]
fn durable_copies_paged_back_keep_their_segment() {
    let mut q = queue();
    let paged = page_out(&mut q, 2);
    let read = q.start_page_in(1 << 20).unwrap();
    let found = paged
        .iter()
        .map(|&id| PagedMessage {
            id,
            message: msg(id as u32),
            stored: Some(1),
            expires: None,
        })
        .collect();
    assert_eq!(q.finish_page_in(&read, found, read.len), 0);
    assert_eq!(q.stored_segments(), vec![(1, 1), (1, 1)]);
}

#[test]
fn compaction_relocates_stored_messages_in_memory_ready_or_unacked() {
    let mut q = queue();
    add(&mut q, consumer("a", 0, false));
    for i in 1..=3 {
        let id = q.publish(msg(i));
        q.record_written(id, if i == 3 { 8 } else { 7 }, 0, 10, None);
    }
    let d = q.next_delivery().unwrap(); // id 1: unacked
    q.remove_consumer(&key("a"));
    assert_eq!((q.stored_in(7), q.stored_in(8)), (2, 1));
    let mut moved = Vec::new();
    q.relocate_stored(7, |id, _, delivered, _, _| {
        assert_eq!(delivered, id == 1, "only the unacked one was delivered");
        moved.push(id);
        Some(9)
    });
    // In id order, the unacked one (1) before the ready one (2): a crash
    // in the middle of a round leaves no copy above an original.
    assert_eq!(moved, vec![1, 2]);
    assert_eq!((q.stored_in(7), q.stored_in(9)), (0, 2));
    assert_eq!(q.settle(&[d.msg_id], Settle::Remove), vec![(1, 9)]);
}

#[test]
fn restore_puts_moved_messages_ahead_of_the_tail() {
    let mut q = queue();
    let mut tail = PagedTail::new();
    tail.push(5, 3, 0, 100);
    let head = vec![QueuedMessage {
        id: 2,
        message: msg(2),
        redelivered: true,
        stored: Some(4),
        expires: None,
        delivery_count: 0,
        slice_generation: None,
    }];
    q.restore(head, tail, 9);
    assert_eq!(
        (q.message_count(), q.resident_count(), q.paged_count()),
        (2, 1, 1)
    );
    assert_eq!(q.resident_bytes(), resident_cost(&msg(2)));
    let m = q.get(true).unwrap();
    assert_eq!((m.id, m.redelivered), (2, true));
    assert_eq!(q.reserve_id(), 10, "ids continue above every id seen");
}

#[test]
fn auto_delete_only_after_a_consumer_left() {
    let mut q = queue();
    q.config.auto_delete = true;
    assert!(!q.should_auto_delete());
    add(&mut q, consumer("a", 0, true));
    assert!(!q.should_auto_delete());
    q.remove_consumers_of(0, 1, Some(1));
    assert!(q.should_auto_delete());
}

#[test]
fn message_stats_count_deliveries_gets_acks_and_redeliveries() {
    use crate::broker::stats::Stat;
    let mut q = queue();
    for n in 0..4 {
        let id = q.publish(msg(n));
        q.enqueued(id, 1_000);
    }
    add(&mut q, consumer("a", 2, false));
    let first: Vec<u64> = std::iter::from_fn(|| q.next_delivery())
        .map(|d| d.msg_id)
        .collect();
    assert_eq!(first.len(), 2);
    q.settle(&first[..1], Settle::Remove);
    q.settle(&first[1..], Settle::Requeue);
    assert!(q.get(true).is_some(), "the requeued message, redelivered");
    let s = q.stats();
    assert_eq!(s.get(Stat::Publish), 4);
    assert_eq!(s.get(Stat::Deliver), 2);
    assert_eq!(s.get(Stat::Ack), 1);
    assert_eq!(s.get(Stat::GetNoAck), 1);
    assert_eq!(s.get(Stat::Redeliver), 1);
    assert_eq!(s.deliver_get(), 3);
}

#[test]
fn ages_of_ready_unacked_and_paged_messages() {
    let mut q = queue();
    let a = q.publish(msg(1));
    q.enqueued(a, 10_000);
    let b = q.publish(msg(2));
    q.enqueued(b, 12_000);
    assert_eq!(q.ages(15_000), (Some(5.0), None));
    let got = q.get(false).expect("the head");
    assert_eq!(got.id, a);
    assert_eq!(q.ages(15_000), (Some(3.0), Some(5.0)));
    q.settle(&[a], Settle::Remove);
    assert_eq!(q.ages(15_000), (Some(3.0), None));
    // Only paged messages left: their ids give their ages.
    assert!(q.get(true).is_some());
    let c = q.reserve_id();
    q.push_paged(c, 1, 0, 100, None);
    q.enqueued(c, 14_000);
    assert_eq!(q.resident_count(), 0);
    assert_eq!(q.ages(15_000), (Some(1.0), None));
}

#[test]
fn unacked_memory_is_counted_and_a_consumer_past_its_share_waits_for_acks() {
    let mut q = queue();
    add(&mut q, consumer("hog", 0, false));
    add(&mut q, consumer("free", 0, true));
    for i in 0..10 {
        q.publish(msg(i));
    }
    let cost = resident_cost(&msg(0));
    // Two consumers share 6 messages' worth: 3 each; no-ack ones hold none.
    q.set_memory_limit(6 * cost);
    let got: Vec<Delivery> = std::iter::from_fn(|| q.next_delivery()).collect();
    let hog: Vec<&Delivery> = got.iter().filter(|d| d.consumer.tag == "hog").collect();
    assert_eq!(hog.len(), 3, "the acking consumer stops at its share");
    assert_eq!(got.len(), 10, "the no-ack one takes the rest");
    assert_eq!(q.unacked_bytes(), 3 * cost);
    assert_eq!(q.memory_bytes(), 3 * cost, "nothing ready left");
    q.publish(msg(10));
    q.remove_consumer(&key("free"));
    // Alone now: the whole limit is its share.
    assert!(q.next_delivery().is_some());
    q.publish(msg(11));
    q.set_memory_limit(4 * cost);
    assert!(q.next_delivery().is_none(), "at its share");
    q.settle(&[hog[0].msg_id], Settle::Remove);
    // "10" has a body one byte longer than the first ten.
    assert_eq!(q.unacked_bytes(), 3 * cost + 1);
    assert_eq!(body(&q.next_delivery().expect("an ack freed room")), "11");
}

#[test]
fn a_channel_getting_without_acks_stops_at_its_share_until_it_settles() {
    let getter = GetterKey {
        shard: 0,
        conn: 1,
        channel: 1,
    };
    let other = GetterKey {
        channel: 2,
        ..getter
    };
    let mut q = queue();
    for i in 0..10 {
        q.publish(msg(i));
    }
    let cost = resident_cost(&msg(0));
    let room = 3 * cost;
    let got: Vec<u64> = std::iter::from_fn(|| q.get_for(&getter, false, room))
        .map(|m| m.id)
        .collect();
    assert_eq!(got.len(), 3, "the room is its share");
    assert!(
        q.get_for(&getter, true, room).is_some(),
        "no-ack gets hold nothing"
    );
    // Another channel may always take one; then both share the room.
    let first = q.get_for(&other, false, room).expect("holds none yet").id;
    assert!(
        q.get_for(&other, false, room).is_some(),
        "1 of half the room"
    );
    assert!(q.get_for(&other, false, room).is_none(), "2 of 1.5");
    assert!(q.get_for(&getter, false, room).is_none());
    // Its acks free room; the other channel's do not count for it.
    q.settle(&[first], Settle::Remove);
    assert!(q.get_for(&getter, false, room).is_none(), "still 3 of 3");
    q.settle(&got[..2], Settle::Remove);
    assert!(q.get_for(&getter, false, room).is_some());
    // Requeued (a channel closing) frees it too.
    q.settle(&[got[2]], Settle::Requeue);
    assert!(q.get_for(&getter, false, room).is_some());
    // The management API's get is not held back.
    assert!(q.get(false).is_some());
}

#[test]
fn consumers_and_getting_channels_share_the_memory_room() {
    let getter = GetterKey {
        shard: 0,
        conn: 1,
        channel: 9,
    };
    let mut q = queue();
    add(&mut q, consumer("c", 0, false));
    for i in 0..10 {
        q.publish(msg(i));
    }
    let cost = resident_cost(&msg(0));
    assert!(q.get_for(&getter, false, 4 * cost).is_some());
    q.set_memory_limit(4 * cost);
    let delivered = std::iter::from_fn(|| q.next_delivery()).count();
    assert_eq!(delivered, 2, "the consumer's half of the room");
    assert!(q.get_for(&getter, false, 4 * cost).is_some(), "1 of 2");
    assert!(q.get_for(&getter, false, 4 * cost).is_none(), "2 of 2");
}

#[test]
fn a_getter_past_its_share_does_not_wait_for_a_page_in() {
    let getter = GetterKey {
        shard: 0,
        conn: 1,
        channel: 1,
    };
    let mut q = queue();
    q.publish(msg(1));
    page_out(&mut q, 2);
    let cost = resident_cost(&msg(0));
    assert!(
        !q.get_waits_for_page_in(&getter, false, cost),
        "one in memory"
    );
    assert_eq!(q.get_for(&getter, false, cost).unwrap().id, 1);
    assert!(q.needs_page_in_for_get());
    assert!(
        !q.get_waits_for_page_in(&getter, false, cost),
        "at its share: answered at once"
    );
    assert!(
        q.get_waits_for_page_in(&getter, true, cost),
        "no-ack: reads"
    );
    assert!(q.get_waits_for_page_in(&getter, false, 2 * cost + 1));
}
