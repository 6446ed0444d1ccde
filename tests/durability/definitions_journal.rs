//! The definitions journal: rotation, crashes at each step of it, SIGKILL at random moments.

use super::*;

// ------------------------------------------------- definitions journal ----
//
// Durable definitions are journaled (`definitions.journal`, one entry per
// change, group-committed) next to the `definitions` snapshot, which is
// rewritten only when the journal outgrows it. These tests check that after
// a SIGKILL exactly the definitions whose -ok was sent come back (plus, at
// most, the change in flight on each connection), also when the crash hits
// a rotation.

use std::collections::BTreeSet;

/// A binding as the admin listing shows it: source, destination kind,
/// destination, routing key.
type BindingRow = (String, String, String, String);

/// The durable definitions of one test (its names share a prefix).
#[derive(Clone, Debug, Default, PartialEq)]
struct DefsState {
    queues: BTreeSet<String>,
    exchanges: BTreeSet<String>,
    bindings: BTreeSet<BindingRow>,
}

impl DefsState {
    fn delete_queue(&mut self, q: &str) {
        self.queues.remove(q);
        self.bindings.retain(|b| !(b.1 == "queue" && b.2 == q));
    }

    fn delete_exchange(&mut self, x: &str) {
        self.exchanges.remove(x);
        self.bindings
            .retain(|b| b.0 != x && !(b.1 == "exchange" && b.2 == x));
    }

    fn extend(&mut self, other: DefsState) {
        self.queues.extend(other.queues);
        self.exchanges.extend(other.exchanges);
        self.bindings.extend(other.bindings);
    }
}

fn binding_row(source: &str, kind: &str, dest: &str, key: &str) -> BindingRow {
    (source.into(), kind.into(), dest.into(), key.into())
}

/// `GET /<what>` on the admin endpoint (plain HTTP/1.0): the listing.
fn admin_listing(admin: &str, what: &str) -> String {
    let response = admin_request(
        admin,
        &format!("GET /{what} HTTP/1.0\r\nHost: localhost\r\n\r\n"),
    );
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("bad admin response: {response:?}"));
    assert!(head.starts_with("HTTP/1.0 200"), "GET /{what}: {head}");
    body.to_string()
}

/// The durable definitions whose names (queues, exchanges; either end of a
/// binding) start with `prefix`, as the broker at `admin` lists them (the
/// admin endpoint's listings with columns: one JSON array per row).
fn listed_state(admin: &str, prefix: &str) -> DefsState {
    let rows = |what: &str| -> Vec<Vec<String>> {
        admin_listing(admin, what)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let row: Vec<serde_json::Value> = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("a listing row of {what}: {l:?}: {e}"));
                row.iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect()
    };
    let mut st = DefsState::default();
    for r in rows("queues?columns=name,durable") {
        if r[0].starts_with(prefix) {
            assert_eq!(r[1], "true", "a transient queue after a restart: {r:?}");
            st.queues.insert(r[0].clone());
        }
    }
    for r in rows("exchanges?columns=name,durable") {
        if r[0].starts_with(prefix) {
            assert_eq!(r[1], "true", "a transient exchange after a restart: {r:?}");
            st.exchanges.insert(r[0].clone());
        }
    }
    for r in rows("bindings?columns=source_name,destination_kind,destination_name,routing_key") {
        // The default exchange's implicit bindings are listed (as in
        // rabbitmqctl) but are no definitions.
        if !r[0].is_empty() && (r[0].starts_with(prefix) || r[2].starts_with(prefix)) {
            st.bindings.insert(binding_row(&r[0], &r[1], &r[2], &r[3]));
        }
    }
    st
}

fn durable_exchange_options() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

/// One connection's share of the big workload: 15 durable exchanges (some
/// bound to each other), 75 durable queues each bound to two of them, and
/// transient queues and exchanges bound to and from them; then unbinds,
/// queue deletions, redeclarations and exchange deletions. Returns the
/// durable state it should leave.
async fn definitions_workload(
    conn: Connection,
    prefix: String,
    w: usize,
    placements: Vec<Option<usize>>,
) -> DefsState {
    let ch = conn.create_channel().await.expect("channel.open");
    let mut st = DefsState::default();
    let kinds = [
        ExchangeKind::Direct,
        ExchangeKind::Fanout,
        ExchangeKind::Topic,
    ];
    let xn = |i: usize| format!("{prefix}-x{w}-{i}");
    let qn = |i: usize| format!("{prefix}-q{w}-{i}");
    for i in 0..15 {
        ch.exchange_declare(
            xn(i).as_str().into(),
            kinds[i % 3].clone(),
            durable_exchange_options(),
            FieldTable::default(),
        )
        .await
        .expect("declare durable exchange");
        st.exchanges.insert(xn(i));
    }
    let tx = format!("{prefix}-tx{w}");
    ch.exchange_declare(
        tx.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("declare transient exchange");
    for i in 0..5 {
        let key = format!("e{i}");
        ch.exchange_bind(
            xn(i + 1).as_str().into(),
            xn(i).as_str().into(),
            key.as_str().into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("exchange.bind");
        st.bindings
            .insert(binding_row(&xn(i), "exchange", &xn(i + 1), &key));
    }
    // Durable exchange to transient exchange: not durable.
    ch.exchange_bind(
        tx.as_str().into(),
        xn(0).as_str().into(),
        "to-transient".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.bind to a transient exchange");
    let bind = |q: String, x: String, key: String| {
        let ch = ch.clone();
        async move {
            ch.queue_bind(
                q.as_str().into(),
                x.as_str().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("bind {q} to {x}: {e}"))
        }
    };
    for i in 0..75 {
        let q = qn(i);
        let placement = placements[i % placements.len()];
        declare_queue(&ch, &q, true, placement).await;
        st.queues.insert(q.clone());
        for (x, key) in [
            (xn(i % 15), format!("k{i}")),
            (xn((i + 1) % 15), format!("k{i}-b")),
        ] {
            bind(q.clone(), x.clone(), key.clone()).await;
            st.bindings.insert(binding_row(&x, "queue", &q, &key));
        }
        // From a transient exchange: not durable.
        bind(q.clone(), tx.clone(), "t".into()).await;
        if i % 15 == 0 {
            let tq = format!("{prefix}-tq{w}-{i}");
            ch.queue_declare(
                tq.as_str().into(),
                QueueDeclareOptions::default(),
                lapin_placement_args(placement),
            )
            .await
            .expect("declare transient queue");
            bind(tq, xn(i % 15), "tq".into()).await;
        }
    }
    for i in (0..75).filter(|i| i % 4 == 1) {
        let (q, x, key) = (qn(i), xn((i + 1) % 15), format!("k{i}-b"));
        ch.queue_unbind(
            q.as_str().into(),
            x.as_str().into(),
            key.as_str().into(),
            FieldTable::default(),
        )
        .await
        .expect("unbind");
        st.bindings.remove(&binding_row(&x, "queue", &q, &key));
    }
    for i in (0..75).filter(|i| i % 3 == 0) {
        ch.queue_delete(qn(i).as_str().into(), QueueDeleteOptions::default())
            .await
            .expect("queue.delete");
        st.delete_queue(&qn(i));
    }
    // Declared again: it comes back without its old bindings.
    for i in (0..75).filter(|i| i % 6 == 0) {
        declare_queue(&ch, &qn(i), true, placements[i % placements.len()]).await;
        st.queues.insert(qn(i));
    }
    for i in [4, 9, 14] {
        ch.exchange_delete(xn(i).as_str().into(), ExchangeDeleteOptions::default())
            .await
            .expect("exchange.delete");
        st.delete_exchange(&xn(i));
    }
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_journaled_definitions_come_back_exactly_after_sigkill() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let mut node = Node::start(shards);
        let prefix = unique_name("jd");
        let placements = placements(&node.broker);
        let expected = within_secs(120, async {
            let mut tasks = Vec::new();
            for w in 0..4 {
                let conn = lapin_connect(&node.broker).await;
                tasks.push(tokio::spawn(definitions_workload(
                    conn,
                    prefix.clone(),
                    w,
                    placements.clone(),
                )));
            }
            let mut st = DefsState::default();
            for t in tasks {
                st.extend(t.await.expect("workload task"));
            }
            st
        })
        .await;
        assert_eq!(expected.queues.len(), 4 * (75 - 25 + 13));
        assert_eq!(expected.exchanges.len(), 4 * 12);
        let journal = node.path().join("definitions.journal");
        let journaled = std::fs::metadata(&journal).map_or(0, |m| m.len());
        assert!(
            journaled > 4 * 75 * 100,
            "the changes went to the journal ({journaled} bytes)"
        );
        // Every -ok above has been received: SIGKILL at once.
        node.restart(Down::Kill);
        let admin = admin_addr(&node.broker);
        let got = listed_state(&admin, &prefix);
        assert_eq!(got.queues, expected.queues, "queues, {shards} shards");
        assert_eq!(
            got.exchanges, expected.exchanges,
            "exchanges, {shards} shards"
        );
        assert_eq!(got.bindings, expected.bindings, "bindings, {shards} shards");
        // The bindings route, and queues are on the shard they were pinned to.
        within(async {
            let conn = lapin_connect(&node.broker).await;
            let ch = confirm_channel(&conn).await;
            let q = format!("{prefix}-q0-1");
            publish_ok(&ch, &format!("{prefix}-x0-1"), "k1", "routed", persistent()).await;
            // x0-0 -> x0-1 (exchange-to-exchange), then k1 to q0-1.
            publish_ok(&ch, &format!("{prefix}-x0-0"), "e0", "e2e", persistent()).await;
            wait_ready(&conn, &q, 2).await;
        })
        .await;
        if shards > 1 {
            let queues = admin_listing(&admin, "queues?columns=name,shard");
            let want = format!("[\"{prefix}-q0-1\",");
            let r = queues
                .lines()
                .find(|l| l.starts_with(&want))
                .unwrap_or_else(|| panic!("no row {want} in {queues}"));
            assert!(r.ends_with(",1]"), "q0-1 was pinned to shard 1: {r}");
        }
        // A clean restart after the recovery (which starts a new journal
        // generation on the first change) keeps everything too.
        within(async {
            let conn = lapin_connect(&node.broker).await;
            let ch = conn.create_channel().await.expect("channel.open");
            declare_queue(&ch, &format!("{prefix}-after"), true, None).await;
        })
        .await;
        node.restart(Down::Kill);
        let mut expected = expected;
        expected.queues.insert(format!("{prefix}-after"));
        let got = listed_state(&admin_addr(&node.broker), &prefix);
        assert_eq!(got, expected, "after a second SIGKILL, {shards} shards");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_deleted_durable_exchanges_stay_deleted() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let mut node = Node::start(shards);
        let prefix = unique_name("ad");
        let ad = format!("{prefix}-ad");
        let ad2 = format!("{prefix}-ad2");
        let x = format!("{prefix}-x");
        let kept = format!("{prefix}-kept");
        let dq = format!("{prefix}-dq");
        let tq = format!("{prefix}-tq");
        within(async {
            let conn = lapin_connect(&node.broker).await;
            let ch = conn.create_channel().await.expect("channel.open");
            let auto_delete = ExchangeDeclareOptions {
                durable: true,
                auto_delete: true,
                ..Default::default()
            };
            for name in [&ad, &ad2, &kept] {
                ch.exchange_declare(
                    name.as_str().into(),
                    ExchangeKind::Direct,
                    auto_delete,
                    FieldTable::default(),
                )
                .await
                .expect("declare durable auto-delete exchange");
            }
            ch.exchange_declare(
                x.as_str().into(),
                ExchangeKind::Direct,
                durable_exchange_options(),
                FieldTable::default(),
            )
            .await
            .expect("declare durable exchange");
            declare_queue(&ch, &dq, true, None).await;
            ch.queue_declare(
                tq.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("declare transient queue");
            for (q, key) in [(&dq, "d"), (&tq, "t")] {
                ch.queue_bind(
                    q.as_str().into(),
                    ad.as_str().into(),
                    key.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("bind");
            }
            ch.queue_bind(
                dq.as_str().into(),
                kept.as_str().into(),
                "k".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
            ch.exchange_bind(
                x.as_str().into(),
                ad2.as_str().into(),
                "".into(),
                ExchangeBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("exchange.bind");
            // `ad` keeps its binding to the transient queue: it stays.
            ch.queue_unbind(
                dq.as_str().into(),
                ad.as_str().into(),
                "d".into(),
                FieldTable::default(),
            )
            .await
            .expect("unbind");
            // Its last binding goes with a transient queue: `ad` is deleted.
            ch.queue_delete(tq.as_str().into(), QueueDeleteOptions::default())
                .await
                .expect("delete transient queue");
            // Its only binding's destination is deleted: `ad2` is deleted.
            ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
                .await
                .expect("exchange.delete");
            assert_no_exchange(&conn, &ad).await;
            assert_no_exchange(&conn, &ad2).await;
        })
        .await;
        node.restart(Down::Kill);
        let expected = DefsState {
            queues: [dq.clone()].into(),
            exchanges: [kept.clone()].into(),
            bindings: [binding_row(&kept, "queue", &dq, "k")].into(),
        };
        assert_eq!(
            listed_state(&admin_addr(&node.broker), &prefix),
            expected,
            "{shards} shards"
        );
    }
}

/// What one client of the crash workload saw: the queues whose
/// declare-ok and delete-ok it got, and the operation that was in flight
/// when the connection died.
#[derive(Debug, Default)]
struct ClientLog {
    declared: Vec<String>,
    deleted: Vec<String>,
    in_flight: Option<String>,
}

/// Declares durable queues `<prefix>-c<client>-<i>` (and deletes every
/// third one again) until the connection fails or `max` operations were
/// done.
async fn declare_until_the_broker_dies(
    uri: String,
    prefix: String,
    client: usize,
    max: usize,
) -> ClientLog {
    let mut log = ClientLog::default();
    let Ok(conn) = lapin::Connection::connect(&uri, lapin::ConnectionProperties::default()).await
    else {
        return log;
    };
    let Ok(ch) = conn.create_channel().await else {
        return log;
    };
    for i in 0..max {
        let q = format!("{prefix}-c{client}-{i}");
        log.in_flight = Some(q.clone());
        let declared = ch
            .queue_declare(q.as_str().into(), durable(), FieldTable::default())
            .await;
        if declared.is_err() {
            return log;
        }
        log.declared.push(q.clone());
        if i % 3 == 2 {
            let deleted = ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
            if deleted.is_err() {
                return log;
            }
            log.deleted.push(q);
        }
        log.in_flight = None;
    }
    log
}

/// Checks the durable queues of `prefix` after a crash against what the
/// clients saw: everything declared and not deleted is there, nothing
/// deleted is, and nothing else is except an operation in flight.
fn check_after_crash(admin: &str, prefix: &str, logs: &[ClientLog], what: &str) {
    let got = listed_state(admin, prefix).queues;
    let mut must: BTreeSet<String> = BTreeSet::new();
    let mut gone: BTreeSet<String> = BTreeSet::new();
    let mut maybe: BTreeSet<String> = BTreeSet::new();
    for l in logs {
        must.extend(l.declared.iter().cloned());
        for d in &l.deleted {
            must.remove(d);
            gone.insert(d.clone());
        }
        maybe.extend(l.in_flight.iter().cloned());
    }
    for q in &must {
        if !maybe.contains(q) {
            assert!(got.contains(q), "{what}: declared queue {q} is missing");
        }
    }
    for q in &gone {
        assert!(!got.contains(q), "{what}: deleted queue {q} came back");
    }
    for q in &got {
        assert!(
            must.contains(q) || maybe.contains(q),
            "{what}: queue {q} was never declared (or its delete-ok was sent)"
        );
    }
}

/// Runs four crash-workload clients against `uri`.
async fn crash_clients(uri: &str, prefix: &str, max: usize) -> Vec<ClientLog> {
    let tasks: Vec<_> = (0..4)
        .map(|c| {
            tokio::spawn(declare_until_the_broker_dies(
                uri.to_string(),
                prefix.to_string(),
                c,
                max,
            ))
        })
        .collect();
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(t.await.expect("client task"));
    }
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_journal_rotation_loses_nothing_acknowledged() {
    if skip_if_external(
        "it makes a local warren crash mid-rotation (test-only environment variables)",
    ) {
        return;
    }
    // The broker kills itself while it starts its fourth journal generation
    // (start-up, then rotations every ~2 KiB of entries), at each step of
    // the switch in turn.
    for shards in SHARD_COUNTS {
        for point in ["snapshot-written", "snapshot-renamed", "journal-truncated"] {
            let dir = temp_dir("warren-defs-rotation-");
            let prefix = unique_name(&format!("rot-{point}"));
            let crash = format!("{point}:4");
            let mut broker = Broker::start_in_with_env(
                shards,
                dir.path(),
                &["--admin-port", "off"],
                &[
                    ("WARREN_DEFINITIONS_JOURNAL_MAX", "2048"),
                    ("WARREN_TEST_DEFINITIONS_CRASH", &crash),
                ],
            );
            let logs = within(crash_clients(&broker.uri(), &prefix, 2_000)).await;
            let status = broker.wait_exit(20);
            assert!(
                status.is_some_and(|s| !s.success()),
                "{point}: the broker did not crash at its rotation (status {status:?}); stderr:\n{}",
                broker.log().join("\n")
            );
            assert!(
                broker.logs_within("test crash point"),
                "{point}: crashed elsewhere; stderr:\n{}",
                broker.log().join("\n")
            );
            let declared: usize = logs.iter().map(|l| l.declared.len()).sum();
            assert!(
                declared > 20,
                "{point}: only {declared} declares before the crash"
            );
            drop(broker);
            let what = format!("{point}, {shards} shards");
            let mut b = Broker::start_in(shards, dir.path());
            check_after_crash(&admin_addr(&b), &prefix, &logs, &what);
            if point == "snapshot-renamed" {
                assert!(
                    b.logs_within("interrupted rotation"),
                    "{what}: the stale journal was not reported: {:?}",
                    b.log()
                );
            }
            // The next generation after the crash is consistent too: more
            // changes, another SIGKILL.
            let more = within(async {
                let conn = lapin_connect(&b).await;
                let ch = conn.create_channel().await.expect("channel.open");
                let q = format!("{prefix}-more");
                declare_queue(&ch, &q, true, None).await;
                q
            })
            .await;
            b.kill();
            let b = Broker::start_in(shards, dir.path());
            let mut logs = logs;
            logs.push(ClientLog {
                declared: vec![more],
                ..ClientLog::default()
            });
            check_after_crash(&admin_addr(&b), &prefix, &logs, &format!("{what}, again"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_while_the_journal_rotates_constantly() {
    if skip_if_external(
        "it SIGKILLs a local warren that rotates its journal constantly (test-only environment variable)",
    ) {
        return;
    }
    let mut rng = Rng::seeded();
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-defs-random-");
        let prefix = unique_name("rnd");
        let mut all: Vec<ClientLog> = Vec::new();
        for cycle in 0..3 {
            // A new journal generation after (about) every group commit.
            let mut broker = Broker::start_in_with_env(
                shards,
                dir.path(),
                &[],
                &[("WARREN_DEFINITIONS_JOURNAL_MAX", "256")],
            );
            let uri = broker.uri();
            let admin = admin_addr(&broker);
            let cycle_prefix = format!("{prefix}-{cycle}");
            let clients = tokio::spawn({
                let cycle_prefix = cycle_prefix.clone();
                async move { crash_clients(&uri, &cycle_prefix, 100_000).await }
            });
            // The random moment is counted from the first declare the
            // broker made durable, not from the start: on a loaded machine
            // the clients may need seconds to get going.
            let started = {
                let (admin, cycle_prefix) = (admin.clone(), cycle_prefix.clone());
                eventually(60, move || {
                    !listed_state(&admin, &cycle_prefix).queues.is_empty()
                })
                .await
            };
            assert!(started, "cycle {cycle}: no durable declare within 60 s");
            let delay = rng.range(0, 600);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            broker.kill();
            let logs = within(clients).await.expect("clients");
            all.extend(logs);
            drop(broker);
            let b = Broker::start_in(shards, dir.path());
            check_after_crash(
                &admin_addr(&b),
                &prefix,
                &all,
                &format!("cycle {cycle} (killed after {delay} ms), {shards} shards"),
            );
            // A queue in flight at the crash may or may not have come
            // back; either is fine, but from now on it is what it is.
            let now = listed_state(&admin_addr(&b), &prefix).queues;
            for l in &mut all {
                if let Some(q) = l.in_flight.take() {
                    if now.contains(&q) {
                        if !l.declared.contains(&q) {
                            l.declared.push(q);
                        } else {
                            // Its delete was in flight and did not happen.
                        }
                    } else if l.declared.contains(&q) {
                        l.deleted.push(q);
                    }
                }
            }
        }
    }
}
