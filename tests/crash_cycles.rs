//! Crash consistency by message identity: cycles of SIGKILL at a random
//! moment (seeded; the seed is printed, `WARREN_TEST_SEED` replays it)
//! against one channel that publishes persistent messages in confirm mode
//! and consumes them with manual acks, then a restart on the same data dir.
//! After the last cycle a final life drains every queue.
//!
//! Every message carries a unique `message-id`. The invariant checked over
//! all lives together, by id:
//!
//! 1. every message the broker confirmed is delivered at least once;
//! 2. nothing is delivered that was not published;
//! 3. within one broker life, an id delivered again was not acked before
//!    and its repeat has `redelivered` set;
//! 4. across a crash, an id is delivered again only if no earlier delivery
//!    of it had a *durable* ack (its repeat may then lack `redelivered`: a
//!    crash can lose the record that it was delivered). An ack counts as
//!    durable once a publish to the same queue, sent on the same channel
//!    after the ack, was confirmed: the broker handles a channel's methods
//!    in order, appends one shard's records in order and confirms only after
//!    an fsync covering them.
//!
//! CI runs a few cycles per shard count (1 and 2); `scripts/crash-cycles.sh
//! N` runs N in release (`WARREN_CRASH_CYCLES`, `WARREN_CRASH_SHARDS`) and
//! prints the figure.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Cycles per shard count unless `WARREN_CRASH_CYCLES` says otherwise.
const CI_CYCLES: usize = 4;

/// Confirms outstanding at once.
const WINDOW: usize = 64;

/// Ids of one life are `life * LIFE_IDS + n`.
const LIFE_IDS: u64 = 10_000_000;

/// One delivery as the consumer saw it.
#[derive(Clone, Debug)]
struct Delivery {
    life: usize,
    redelivered: bool,
    /// Acked (the ack sent): the queue and the number of publishes to it
    /// started before the ack was (publishes from then on come after it).
    ack_mark: Option<(usize, u64)>,
}

/// What one run saw, all lives together.
#[derive(Default)]
struct Seen {
    /// Ids published (handed to the client).
    sent: HashSet<u64>,
    /// Ids the broker confirmed.
    confirmed: HashSet<u64>,
    nacked: u64,
    /// Per id, its deliveries in order.
    deliveries: HashMap<u64, Vec<Delivery>>,
    /// Per queue: publishes started (all lives together: a sequence
    /// number per queue).
    started: Vec<u64>,
    /// Per (life, queue): the highest sequence number confirmed in that
    /// life (a confirm proves only what its own broker life wrote).
    confirmed_seq: HashMap<(usize, usize), u64>,
}

impl Seen {
    fn new(queues: usize) -> Seen {
        Seen {
            started: vec![0; queues],
            ..Seen::default()
        }
    }

    /// Whether the ack of `d` is known durable: a publish to its queue
    /// started after it was confirmed in the same life.
    fn ack_durable(&self, d: &Delivery) -> bool {
        d.ack_mark.is_some_and(|(queue, mark)| {
            self.confirmed_seq
                .get(&(d.life, queue))
                .is_some_and(|&s| s >= mark)
        })
    }
}

/// Publishes persistent messages of life `life` round-robin to `queues`
/// with at most `WINDOW` confirms outstanding, until the channel fails.
async fn publisher(ch: lapin::Channel, life: usize, queues: Vec<String>, seen: Arc<Mutex<Seen>>) {
    let mut window: VecDeque<(u64, usize, u64, lapin::PublisherConfirm)> = VecDeque::new();
    let settle = |id: u64, q: usize, seq: u64, r: Result<Confirmation, lapin::Error>| {
        let mut s = seen.lock().unwrap();
        match r {
            Ok(c) if c.is_ack() => {
                s.confirmed.insert(id);
                let best = s.confirmed_seq.entry((life, q)).or_insert(seq);
                *best = (*best).max(seq);
                true
            }
            Ok(_) => {
                s.nacked += 1;
                true
            }
            Err(_) => false,
        }
    };
    for n in 0.. {
        let id = life as u64 * LIFE_IDS + n;
        let q = (n % queues.len() as u64) as usize;
        let seq = {
            let mut s = seen.lock().unwrap();
            s.sent.insert(id);
            s.started[q] += 1;
            s.started[q] - 1
        };
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(id.to_string().into());
        let r = ch
            .basic_publish(
                "".into(),
                queues[q].as_str().into(),
                BasicPublishOptions::default(),
                format!("m{id}").as_bytes(),
                props,
            )
            .await;
        match r {
            Ok(c) => window.push_back((id, q, seq, c)),
            Err(_) => break,
        }
        if window.len() >= WINDOW {
            let (id, q, seq, c) = window.pop_front().expect("non-empty window");
            let settled = match tokio::time::timeout(Duration::from_secs(30), c).await {
                Ok(r) => settle(id, q, seq, r),
                Err(_) if ch.status().connected() => {
                    panic!("no confirm for message {id} within 30 s on a live channel")
                }
                Err(_) => false,
            };
            if !settled {
                return;
            }
        }
    }
    for (id, q, seq, c) in window {
        match tokio::time::timeout(Duration::from_secs(5), c).await {
            Ok(r) => {
                settle(id, q, seq, r);
            }
            Err(_) => break,
        }
    }
}

/// Consumes `queues[q]` on `ch` with manual acks, recording every delivery
/// and its ack, until the channel fails (the broker was killed) or the
/// task is aborted.
async fn consumer(
    ch: lapin::Channel,
    life: usize,
    q: usize,
    queue: String,
    seen: Arc<Mutex<Seen>>,
) {
    let Ok(mut stream) = ch
        .basic_consume(
            queue.as_str().into(),
            format!("crash-{q}").as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
    else {
        return;
    };
    loop {
        let d = match tokio::time::timeout(Duration::from_secs(2), stream.next()).await {
            Ok(Some(Ok(d))) => d,
            Ok(_) => break,
            // lapin may leave the stream open after the connection died.
            Err(_) if ch.status().connected() => continue,
            Err(_) => break,
        };
        let id: u64 = d
            .properties
            .message_id()
            .as_ref()
            .and_then(|m| m.as_str().parse().ok())
            .expect("a numeric message id");
        let acked = d.ack(BasicAckOptions::default()).await.is_ok();
        let mut s = seen.lock().unwrap();
        let ack_mark = acked.then_some((q, s.started[q]));
        s.deliveries.entry(id).or_default().push(Delivery {
            life,
            redelivered: d.redelivered,
            ack_mark,
        });
        if !acked {
            break;
        }
    }
}

/// Opens the shared channel: confirm mode, prefetch 100, queues declared.
async fn open(b: &Broker, queues: &[String]) -> (lapin::Connection, lapin::Channel) {
    let conn = lapin_connect(b).await;
    let ch = confirm_channel(&conn).await;
    ch.basic_qos(100, BasicQosOptions::default())
        .await
        .expect("basic.qos");
    for (q, p) in queues.iter().zip(placements(b)) {
        declare_queue(&ch, q, true, p).await;
    }
    (conn, ch)
}

/// Checks the invariant of the module docs; returns the duplicate counts
/// (flagged, unflagged after a crash).
fn check(seen: &Seen) -> (u64, u64) {
    let lost: Vec<&u64> = seen
        .confirmed
        .iter()
        .filter(|id| !seen.deliveries.contains_key(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} confirmed messages never delivered (first: {:?})",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let (mut flagged, mut unflagged) = (0, 0);
    for (id, ds) in &seen.deliveries {
        assert!(seen.sent.contains(id), "message {id} was never published");
        for (i, d) in ds.iter().enumerate().skip(1) {
            let prev = &ds[i - 1];
            if d.life == prev.life {
                assert!(
                    prev.ack_mark.is_none() && d.redelivered,
                    "message {id} delivered twice in life {}: {ds:?}",
                    d.life
                );
            }
            let durable = ds[..i].iter().any(|p| seen.ack_durable(p));
            assert!(
                !durable,
                "message {id} delivered again after a durable ack: {ds:?}"
            );
            if d.redelivered {
                flagged += 1;
            } else {
                unflagged += 1;
            }
        }
    }
    (flagged, unflagged)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_cycles_keep_every_confirmed_message_by_identity() {
    if skip_if_external("it kills and restarts a local warren process") {
        return;
    }
    let cycles: usize = std::env::var("WARREN_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_CYCLES);
    let shard_counts: Vec<usize> = std::env::var("WARREN_CRASH_SHARDS")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| SHARD_COUNTS.to_vec());
    let mut rng = Rng::seeded();
    for shards in shard_counts {
        let dir = temp_dir("warren-crash-cycles-");
        let queues: Vec<String> = (0..shards)
            .map(|i| unique_name(&format!("crash-cycles-{i}")))
            .collect();
        let seen = Arc::new(Mutex::new(Seen::new(queues.len())));
        for life in 0..cycles {
            let mut broker = Broker::start_in(shards, dir.path());
            let delay = rng.range(50, 1500);
            within_secs(120, async {
                let (conn, ch) = open(&broker, &queues).await;
                let mut tasks = vec![tokio::spawn(publisher(
                    ch.clone(),
                    life,
                    queues.clone(),
                    seen.clone(),
                ))];
                for (q, name) in queues.iter().enumerate() {
                    tasks.push(tokio::spawn(consumer(
                        ch.clone(),
                        life,
                        q,
                        name.clone(),
                        seen.clone(),
                    )));
                }
                // The clock starts at this life's first confirm, so every
                // cycle has something to lose.
                let first = life as u64 * LIFE_IDS;
                let started = eventually(30, || {
                    let s = seen.lock().unwrap();
                    s.confirmed.iter().any(|&id| id >= first)
                })
                .await;
                assert!(started, "no confirm within 30 s (life {life})");
                tokio::time::sleep(Duration::from_millis(delay)).await;
                broker.kill();
                // The client tasks end when lapin sees the connection die;
                // on a loaded machine it may not notice for a long time.
                // Stopping a task then loses nothing: the broker is gone,
                // and a confirm or delivery not yet recorded only makes
                // the check stricter.
                for mut t in tasks {
                    match tokio::time::timeout(Duration::from_secs(20), &mut t).await {
                        Ok(r) => r.expect("client task"),
                        Err(_) => t.abort(),
                    }
                }
                drop(conn);
            })
            .await;
        }
        // The last life: drain every queue, acking.
        let broker = Broker::start_in(shards, dir.path());
        let life = cycles;
        within_secs(120, async {
            let (conn, ch) = open(&broker, &queues).await;
            let mut tasks = Vec::new();
            for (q, name) in queues.iter().enumerate() {
                tasks.push(tokio::spawn(consumer(
                    ch.clone(),
                    life,
                    q,
                    name.clone(),
                    seen.clone(),
                )));
            }
            // Every queue empty, nothing unacked: the broker has nothing left.
            let drained = async {
                loop {
                    let listing = ctl(&broker, "list_queues");
                    let left: u64 = queues
                        .iter()
                        .map(|q| {
                            cell_num(&listing, q, "messages_ready")
                                + cell_num(&listing, q, "messages_unacknowledged")
                        })
                        .sum();
                    if left == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            within_secs(90, drained).await;
            for t in tasks {
                t.abort();
            }
            drop(ch);
            drop(conn);
        })
        .await;
        let s = seen.lock().unwrap();
        assert_eq!(s.nacked, 0, "the broker nacked persistent publishes");
        let (flagged, unflagged) = check(&s);
        let delivered: usize = s.deliveries.values().map(Vec::len).sum();
        eprintln!(
            "crash-cycles result: shards={shards} cycles={cycles} seed={} published={} \
             confirmed={} delivered={delivered} distinct={} lost=0 \
             repeats_flagged={flagged} repeats_unflagged_after_crash={unflagged} violations=0",
            rng.seed(),
            s.sent.len(),
            s.confirmed.len(),
            s.deliveries.len(),
        );
    }
}
