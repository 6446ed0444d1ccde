//! Confirmed persistent messages survive SIGKILL at random moments (also paged out).

use super::*;

// --------------------------------------------------------------- crash ----

/// Confirms outstanding at once in the crash publisher.
const WINDOW: usize = 128;

/// Upper bound of messages one crash cycle publishes.
const MAX_PER_CYCLE: u64 = 50_000;

/// What a crash-cycle publisher saw.
#[derive(Default)]
struct Published {
    /// Ids the broker confirmed (ack).
    confirmed: Mutex<Vec<u64>>,
    /// Ids below this were handed to the client library.
    sent: AtomicU64,
    /// Nacks received (never expected).
    nacked: AtomicU64,
}

/// Publishes `c{cycle}-{id}` to `queues[id % len]` with confirms until the
/// connection dies or `MAX_PER_CYCLE` is reached.
async fn crash_publisher(ch: Channel, cycle: usize, queues: Vec<String>, out: Arc<Published>) {
    let mut window: VecDeque<(u64, lapin::PublisherConfirm)> = VecDeque::new();
    let settle = |id: u64, r: Result<Confirmation, lapin::Error>| match r {
        Ok(c) if c.is_ack() => {
            out.confirmed.lock().unwrap().push(id);
            true
        }
        Ok(_) => {
            out.nacked.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(_) => false,
    };
    for id in 0..MAX_PER_CYCLE {
        let q = &queues[(id % queues.len() as u64) as usize];
        let body = format!("c{cycle}-{id}");
        let r = ch
            .basic_publish(
                "".into(),
                q.as_str().into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                persistent(),
            )
            .await;
        out.sent.store(id + 1, Ordering::Relaxed);
        match r {
            Ok(c) => window.push_back((id, c)),
            Err(_) => break,
        }
        if window.len() >= WINDOW {
            let (id, c) = window.pop_front().expect("non-empty window");
            if !settle(id, c.await) {
                break;
            }
        }
    }
    // Whatever is left resolves (ack, or an error once the connection died).
    for (id, c) in window {
        match tokio::time::timeout(Duration::from_secs(5), c).await {
            Ok(r) => {
                settle(id, r);
            }
            Err(_) => break,
        }
    }
}

/// Parses `c{cycle}-{id}`.
fn parse_crash_body(body: &str) -> Option<(usize, u64)> {
    let (c, id) = body.strip_prefix('c')?.split_once('-')?;
    Some((c.parse().ok()?, id.parse().ok()?))
}

/// Consumes (no-ack) exactly `n` messages from `queue`; their bodies.
async fn consume_n(conn: &Connection, queue: &str, n: u32) -> Vec<String> {
    let ch = conn.create_channel().await.expect("channel.open");
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("basic.consume");
    let mut out = Vec::with_capacity(n as usize);
    while out.len() < n as usize {
        let d = within_secs(20, consumer.next())
            .await
            .unwrap_or_else(|| panic!("consumer of {queue} ended after {} of {n}", out.len()))
            .expect("delivery");
        out.push(String::from_utf8(d.data).expect("utf-8 body"));
    }
    ch.basic_cancel(
        consumer.tag().as_str().into(),
        BasicCancelOptions::default(),
    )
    .await
    .expect("basic.cancel");
    let _ = ch.close(200, "".into()).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_every_confirmed_message() {
    crash_cycles(&[]).await;
}

/// The same with a memory budget so small that nearly every message is
/// paged out, read back and (for the ones left in memory) compacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_every_confirmed_message_while_paging() {
    crash_cycles(&["--memory-budget", "4096"]).await;
}

/// Cycles of: publish persistent messages in confirm mode, SIGKILL at a
/// random moment, restart, check every confirmed message is there once and
/// in order, consume them all.
async fn crash_cycles(args: &'static [&'static str]) {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    const CYCLES: usize = 3;
    let mut rng = Rng::seeded();
    for shards in SHARD_COUNTS {
        let mut node = Node::start_with(shards, args);
        let queue_placements: Vec<Option<usize>> = if shards == 1 {
            vec![None]
        } else {
            (0..shards).map(Some).collect()
        };
        let queues: Vec<String> = queue_placements
            .iter()
            .map(|p| unique_name(&format!("crash-{p:?}")))
            .collect();
        // Ids sent per cycle, for judging extras.
        let mut sent_per_cycle: Vec<u64> = Vec::new();
        let mut total_confirmed = 0usize;
        for cycle in 0..CYCLES {
            let delay = rng.range(100, 800);
            let published = Arc::new(Published::default());
            within_secs(60, async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                for (q, p) in queues.iter().zip(&queue_placements) {
                    declare_queue(&ch, q, true, *p).await;
                }
                let task = tokio::spawn(crash_publisher(
                    ch,
                    cycle,
                    queues.clone(),
                    Arc::clone(&published),
                ));
                // Start the clock at the first confirm so every cycle has
                // something to lose.
                let first =
                    eventually(20, || !published.confirmed.lock().unwrap().is_empty()).await;
                assert!(
                    first,
                    "no confirm within 20 s (cycle {cycle}, {shards} shards)"
                );
                tokio::time::sleep(Duration::from_millis(delay)).await;
                node.down(Down::Kill);
                within_secs(20, task)
                    .await
                    .expect("publisher task did not panic");
                drop(conn);
            })
            .await;
            let confirmed: Vec<u64> = published.confirmed.lock().unwrap().clone();
            let sent = published.sent.load(Ordering::Relaxed);
            assert_eq!(
                published.nacked.load(Ordering::Relaxed),
                0,
                "the broker nacked persistent publishes"
            );
            eprintln!(
                "crash cycle {cycle} ({shards} shards): killed after {delay} ms, \
                 {} confirmed, {sent} sent",
                confirmed.len()
            );
            total_confirmed += confirmed.len();
            sent_per_cycle.push(sent);

            node.up();
            within_secs(60, async {
                let conn = lapin_connect(&node.broker).await;
                let nq = queues.len() as u64;
                for (qi, q) in queues.iter().enumerate() {
                    let n = ready_count(&conn, q).await;
                    let got = consume_n(&conn, q, n).await;
                    assert_eq!(ready_count(&conn, q).await, 0, "{q} drained");
                    let mut present = HashSet::new();
                    let mut last_this_cycle: Option<u64> = None;
                    for body in &got {
                        let (c, id) = parse_crash_body(body)
                            .unwrap_or_else(|| panic!("unexpected body {body:?} in {q}"));
                        assert!(
                            c <= cycle && id < sent_per_cycle[c] && id % nq == qi as u64,
                            "{q} holds {body:?}, which was never published to it"
                        );
                        // Earlier cycles' messages were consumed and their
                        // acks made durable (barrier below): never back.
                        assert_eq!(c, cycle, "{q}: consumed message {body:?} came back");
                        if let Some(prev) = last_this_cycle {
                            assert!(prev <= id, "{q}: c{c}-{id} came after c{c}-{prev}");
                        }
                        last_this_cycle = Some(id);
                        present.insert(id);
                    }
                    let missing: Vec<u64> = confirmed
                        .iter()
                        .copied()
                        .filter(|id| id % nq == qi as u64 && !present.contains(id))
                        .collect();
                    assert!(
                        missing.is_empty(),
                        "cycle {cycle}, {shards} shards, queue {q}: {} confirmed messages lost \
                         after SIGKILL (first: {:?}); {} recovered",
                        missing.len(),
                        &missing[..missing.len().min(10)],
                        got.len()
                    );
                }
                // The no-ack deliveries above were recorded as acks; make
                // them durable before the next crash.
                let ch = confirm_channel(&conn).await;
                for p in &queue_placements {
                    barrier(&ch, *p).await;
                }
            })
            .await;
        }
        assert!(total_confirmed > 0, "nothing was confirmed");
    }
}
