//! The protocol-level fuzzer: several raw connections send random but
//! well-framed sequences of AMQP methods (valid ones with random fields and
//! flags, and methods out of place) to the real broker binary, and the test
//! checks the invariants: the broker never panics, what it sends decodes
//! (methods, content headers; bodies as published), every connection is
//! answered (each synchronous method gets its reply, a channel.close or a
//! connection.close within `ANSWER_WAIT`), a fresh well-behaved client
//! still works afterwards, and the message counts of the "ledger" queues —
//! which only lock-step, checkable steps touch — equal what was published
//! and not consumed. The seed is printed (replay with `WARREN_TEST_SEED`);
//! `PROTOCOL_FUZZ_STEPS` sets the steps per connection (default 300),
//! `PROTOCOL_FUZZ_VERBOSE=1` prints every connection.close received.

#[path = "../common/mod.rs"]
mod common;
mod fuzzer;
mod steps;

use common::raw::{Args, RawConn};
use common::*;
use fuzzer::{Fuzzer, Names};
use std::time::Duration;

/// Raw connections fuzzing at once.
const CONNECTIONS: usize = 4;
/// Ledger queues (counts checked at the end).
const LEDGERS: usize = 2;
/// The channels random steps use (1..=4); the ledger steps use their own.
const CHANNELS: u16 = 4;
const LEDGER_CHANNEL: u16 = 9;
/// The frame_max the fuzzing connections negotiate (bodies span frames).
const FRAME_MAX: u32 = 4096;
/// How long a connection may wait for any answer.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

fn steps_per_connection() -> usize {
    std::env::var("PROTOCOL_FUZZ_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

/// Messages in queue `q` (a passive declare on a fresh connection).
fn message_count(addr: &str, q: &str) -> u32 {
    let (mut c, _) = RawConn::open(addr);
    c.channel_open(1);
    let a = Args::new()
        .short(0)
        .shortstr(q)
        .bits(&[true, false, false, false, false])
        .empty_table()
        .done();
    c.send_method(1, 50, 10, &a);
    let m = c.expect_method();
    assert_eq!(
        (m.class, m.method),
        (50, 11),
        "passive declare of {q}: {m:?}"
    );
    let mut r = m.reader();
    let _ = r.shortstr();
    let count = r.long();
    c.send_method(
        0,
        10,
        50,
        &Args::new().short(200).shortstr("").short(0).short(0).done(),
    );
    let _ = c.closed_by_server();
    count
}

fn fuzz_one_broker(shards: usize, seed: u64) {
    let b = Broker::start(shards);
    let names = Names::new();
    let (mut setup, _) = RawConn::open(&b.addr());
    setup.channel_open(1);
    for q in names.ledgers.iter().chain(&names.queues) {
        setup.queue_declare(1, q);
    }
    // The chaos exchanges exist at first, bound to the chaos queues (the
    // random steps delete and re-declare them).
    for (x, kind) in names.exchanges.iter().zip(["direct", "topic", "fanout"]) {
        let a = Args::new()
            .short(0)
            .shortstr(x)
            .shortstr(kind)
            .bits(&[false; 5])
            .empty_table()
            .done();
        setup.send_method(1, 40, 10, &a);
        let ok = setup.expect_method();
        assert_eq!(
            (ok.class, ok.method),
            (40, 11),
            "exchange.declare {x}: {ok:?}"
        );
        for q in &names.queues {
            let a = Args::new()
                .short(0)
                .shortstr(q)
                .shortstr(x)
                .shortstr(q)
                .bits(&[false])
                .empty_table()
                .done();
            setup.send_method(1, 50, 20, &a);
            let ok = setup.expect_method();
            assert_eq!(
                (ok.class, ok.method),
                (50, 21),
                "queue.bind {q} {x}: {ok:?}"
            );
        }
    }
    let steps = steps_per_connection();
    let handles: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let (addr, names) = (b.addr(), names.clone());
            let conn_seed = seed
                .wrapping_add(i as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let external = b.is_external();
            std::thread::spawn(move || {
                let mut f = Fuzzer::new(addr, names, conn_seed, external);
                f.run(steps);
                (f.ledger, f.tally)
            })
        })
        .collect();
    let mut ledger = [0i64; LEDGERS];
    for (i, h) in handles.into_iter().enumerate() {
        let (l, tally) = h.join().unwrap_or_else(|_| {
            panic!("fuzzing connection {i} failed (--shards {shards}, WARREN_TEST_SEED={seed})")
        });
        eprintln!("shards {shards} connection {i}: {tally:?}");
        if !b.is_external() {
            assert_eq!(
                tally.drops, 0,
                "connection {i}: sockets ended without a connection.close"
            );
        }
        for (sum, n) in ledger.iter_mut().zip(l) {
            *sum += n;
        }
    }
    let panicked: Vec<String> = b
        .log()
        .into_iter()
        .filter(|l| l.contains("panicked"))
        .collect();
    assert!(
        panicked.is_empty(),
        "the broker panicked (WARREN_TEST_SEED={seed}): {panicked:#?}"
    );

    // Nothing the fuzzing connections held outlives them: one connection
    // and one channel left (the setup's), no consumers.
    if !b.is_external() {
        let rows = |words: &[&str]| ctl_with(&b, words).lines().count();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let left = loop {
            let left = (
                rows(&["list_connections", "-s", "name"]),
                rows(&["list_channels", "-s", "number"]),
                rows(&["list_consumers", "-s", "consumer_tag"]),
            );
            if left == (1, 1, 0) || std::time::Instant::now() > deadline {
                break left;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(
            left,
            (1, 1, 0),
            "connections, channels and consumers left (WARREN_TEST_SEED={seed})"
        );
    }

    // The counts: what the ledger steps published and did not take.
    for (q, want) in names.ledgers.iter().zip(ledger) {
        let want = u32::try_from(want).unwrap_or_else(|_| panic!("{q}: negative ledger {want}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut got = message_count(&b.addr(), q);
        while got != want && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            got = message_count(&b.addr(), q);
        }
        assert_eq!(
            got, want,
            "{q} holds {got} messages; the ledger says {want} (WARREN_TEST_SEED={seed})"
        );
        if !b.is_external() {
            let listing = ctl(&b, "list_queues");
            assert_eq!(
                cell_num(&listing, q, "messages_ready"),
                u64::from(want),
                "{q} in list_queues"
            );
            assert_eq!(
                cell_num(&listing, q, "messages_unacknowledged"),
                0,
                "{q} in list_queues"
            );
        }
    }

    // A fresh, well-behaved client still works.
    let (mut c, tune) = RawConn::open(&b.addr());
    c.channel_open(1);
    let (q, _, _) = c.queue_declare(1, "");
    c.basic_publish(1, "", &q, b"after the fuzz", tune.frame_max);
    c.basic_consume(1, &q, "after");
    assert_eq!(c.read_delivery().body, b"after the fuzz");

    // Tidy up a shared external broker (a fresh Warren goes with its dir).
    if b.is_external() {
        for q in names.queues.iter().chain(&names.ledgers) {
            tidy(
                &b.addr(),
                50,
                40,
                &Args::new()
                    .short(0)
                    .shortstr(q)
                    .bits(&[false, false, false])
                    .done(),
            );
        }
        for x in &names.exchanges {
            tidy(
                &b.addr(),
                40,
                20,
                &Args::new()
                    .short(0)
                    .shortstr(x)
                    .bits(&[false, false])
                    .done(),
            );
        }
    }
    drop(setup);
}

/// Sends one delete on a fresh connection and reads its answer, whatever it is.
fn tidy(addr: &str, class: u16, method: u16, args: &[u8]) {
    let (mut c, _) = RawConn::open(addr);
    c.channel_open(1);
    c.send_method(1, class, method, args);
    let _ = c.read_method();
}

#[test]
fn random_method_sequences_keep_the_broker_whole() {
    let mut rng = Rng::seeded();
    let seed = rng.next();
    for shards in SHARD_COUNTS {
        fuzz_one_broker(shards, seed);
    }
}
