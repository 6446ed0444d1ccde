//! Read buffers and retained messages: a message that waits in a queue must
//! not keep alive the (much larger) read buffer it arrived in. A publisher
//! sends, over and over, hundreds of messages nobody keeps (unroutable) and
//! one for a queue without consumers; the queued ones are a few hundred KB,
//! but each arrived in its own 64 KiB read buffer, and holding those would
//! cost over 100 MB. Runs with 1 and 2 shards.

mod common;

use common::hostile::{body, header, publish};
use common::raw::RawConn;
use common::*;

/// Queued messages, and messages nobody keeps between two queued ones
/// (about 64 KiB of frames: one read buffer's worth).
const QUEUED: usize = 2000;
const DROPPED_BETWEEN: usize = 400;
const BODY: usize = 100;

/// What the broker may grow by: the queued messages' charge is under 2 MB,
/// the rest is allocator slack and socket buffers. Holding each queued
/// message's read buffer would add QUEUED * 64 KiB = 125 MiB.
const GROWTH_LIMIT: u64 = 40 << 20;

fn message(routing_key: &str, fill: u8) -> Vec<u8> {
    let mut m = publish(1, routing_key);
    m.extend(header(1, 60, BODY as u64));
    m.extend(body(1, &[fill; BODY]));
    m
}

#[test]
fn queued_messages_do_not_pin_the_read_buffers_they_arrived_in() {
    if skip_if_external("it reads a local warren's RSS") {
        return;
    }
    for shards in [1, 2] {
        let b = Broker::start(shards);
        let pid = b.pid().expect("a local broker has a pid");
        let (mut c, _) = RawConn::open(&b.addr());
        c.channel_open(1);
        let queue = unique_name("kept");
        c.queue_declare(1, &queue);
        let nowhere = unique_name("no-such-queue");
        let before = rss_bytes(pid);
        let mut batch = Vec::new();
        for _ in 0..DROPPED_BETWEEN {
            batch.extend(message(&nowhere, b'd'));
        }
        batch.extend(message(&queue, b'k'));
        for _ in 0..QUEUED {
            c.send_bytes(&batch);
        }
        // declare-ok comes after every publish before it was handled.
        let (_, count, _) = c.queue_declare(1, &queue);
        assert_eq!(count as usize, QUEUED, "shards {shards}");
        let grown = rss_bytes(pid).saturating_sub(before);
        assert!(
            grown < GROWTH_LIMIT,
            "shards {shards}: RSS grew by {} MiB for {QUEUED} queued {BODY}-byte messages",
            grown >> 20
        );
    }
}
