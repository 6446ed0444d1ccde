//! Read buffers and retained messages: a message that waits in a queue must
//! not keep alive the (much larger) read buffer it arrived in. A publisher
//! sends, over and over, hundreds of messages nobody keeps (unroutable) and
//! one for a queue without consumers; the queued ones are a few hundred KB,
//! but each arrived in its own 64 KiB read buffer, and holding those would
//! cost over 100 MB. The same for what the broker keeps of a publish to
//! count it: the name of an exchange in the per-exchange statistics. Runs
//! with 1 and 2 shards.

mod common;

use common::hostile::{body, header, method, publish};
use common::raw::{Args, RawConn};
use common::*;
use std::time::Duration;

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
    with_content(publish(1, routing_key), fill)
}

fn with_content(mut publish: Vec<u8>, fill: u8) -> Vec<u8> {
    publish.extend(header(1, 60, BODY as u64));
    publish.extend(body(1, &[fill; BODY]));
    publish
}

/// A basic.publish on channel 1 to `exchange` with an empty routing key.
fn publish_to(exchange: &str) -> Vec<u8> {
    let args = Args::new()
        .short(0)
        .shortstr(exchange)
        .shortstr("")
        .bits(&[false, false]);
    method(1, 60, 40, args)
}

/// `DROPPED_BETWEEN` publishes to a queue that does not exist (dropped:
/// the default exchange routes them nowhere), about one read buffer.
fn dropped_publishes() -> Vec<u8> {
    let nowhere = unique_name("no-such-queue");
    (0..DROPPED_BETWEEN)
        .flat_map(|_| message(&nowhere, b'd'))
        .collect()
}

/// The broker's RSS grew by less than `GROWTH_LIMIT` since `before`
/// (printed either way); `what` names what it was flooded with.
fn assert_growth_within_limit(pid: u32, before: u64, shards: usize, what: &str) {
    let grown = rss_bytes(pid).saturating_sub(before);
    eprintln!(
        "shards {shards}: RSS grew by {} MiB for {what}",
        grown >> 20
    );
    assert!(
        grown < GROWTH_LIMIT,
        "shards {shards}: RSS grew by {} MiB for {what}",
        grown >> 20
    );
}

/// How long a sync (queue.declare-ok) after a flood may take: it comes
/// after every method before it was handled, and on a 2-CPU CI machine
/// running a debug broker beside the test, 2,000 exchange declares (each a
/// round trip to the leader shard) once took over the 10 s read timeout.
const SYNC_WAIT: Duration = Duration::from_secs(120);

/// A raw connection whose reads wait up to `SYNC_WAIT`, with channel 1 open.
fn flooding_connection(b: &Broker) -> RawConn {
    let (mut c, _) = RawConn::open(&b.addr());
    c.stream
        .set_read_timeout(Some(SYNC_WAIT))
        .expect("set read timeout");
    c.channel_open(1);
    c
}

/// exchange.declare of a fanout exchange on channel 1, no-wait.
fn declare_fanout(exchange: &str) -> Vec<u8> {
    let args = Args::new()
        .short(0)
        .shortstr(exchange)
        .shortstr("fanout")
        .bits(&[false, false, true, false, true])
        .empty_table();
    method(1, 40, 10, args)
}

/// Every exchange's first publish is counted under its name
/// (`shard::stats`); that name arrived in a read buffer, and a key that
/// kept the slice would keep the buffer as long as the exchange. Each of
/// `QUEUED` exchanges (fanouts without bindings: the publishes are
/// dropped) gets one publish, after a read buffer's worth of other ones.
fn exchange_statistics_do_not_pin_the_read_buffers_names_arrived_in(b: &Broker, shards: usize) {
    let pid = b.pid().expect("a local broker has a pid");
    let mut c = flooding_connection(b);
    let prefix = unique_name("counted");
    let exchanges: Vec<String> = (0..QUEUED).map(|i| format!("{prefix}-{i}")).collect();
    let declares: Vec<u8> = exchanges.iter().flat_map(|x| declare_fanout(x)).collect();
    c.send_bytes(&declares);
    let sync = unique_name("sync");
    c.queue_declare(1, &sync);
    let before = rss_bytes(pid);
    let dropped = dropped_publishes();
    for x in &exchanges {
        c.send_bytes(&dropped);
        c.send_bytes(&with_content(publish_to(x), b'x'));
    }
    // declare-ok comes after every publish before it was handled.
    c.queue_declare(1, &sync);
    assert_growth_within_limit(
        pid,
        before,
        shards,
        &format!("{QUEUED} exchanges published to once"),
    );
}

fn queued_messages_do_not_pin_the_read_buffers_they_arrived_in(b: &Broker, shards: usize) {
    let pid = b.pid().expect("a local broker has a pid");
    let mut c = flooding_connection(b);
    let queue = unique_name("kept");
    c.queue_declare(1, &queue);
    let before = rss_bytes(pid);
    let mut batch = dropped_publishes();
    batch.extend(message(&queue, b'k'));
    for _ in 0..QUEUED {
        c.send_bytes(&batch);
    }
    // declare-ok comes after every publish before it was handled.
    let (_, count, _) = c.queue_declare(1, &queue);
    assert_eq!(count as usize, QUEUED, "shards {shards}");
    assert_growth_within_limit(
        pid,
        before,
        shards,
        &format!("{QUEUED} queued {BODY}-byte messages"),
    );
}

/// Both cases one after the other (each floods a broker with 125 MiB of
/// publishes; two floods at once on a 2-CPU CI machine starve everything
/// else), each on a fresh broker: pages the allocator kept from one flood
/// would hide what the next one pins.
#[test]
fn what_the_broker_keeps_does_not_pin_read_buffers() {
    if skip_if_external("it reads a local warren's RSS") {
        return;
    }
    for shards in [1, 2] {
        queued_messages_do_not_pin_the_read_buffers_they_arrived_in(&Broker::start(shards), shards);
        exchange_statistics_do_not_pin_the_read_buffers_names_arrived_in(
            &Broker::start(shards),
            shards,
        );
    }
}
