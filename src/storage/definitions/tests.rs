//! Unit tests of the durable definitions: snapshot and journal codecs, the
//! catalog against a naive model, replay, and the files on disk.

use super::fields::{entry, word};
use super::journal::ENTRY_HEADER_LEN;
use super::*;
use crate::broker::auth::{AuthChange, PermissionDef};
use crate::broker::exchange::{Destination, ExchangeKind};
use crate::broker::vhost::VhostLimits;
use crate::protocol::types::FieldValue;
use crate::protocol::wire::{get_table, put_table};
use bytes::{Bytes, BytesMut};

fn sample() -> Definitions {
    let mut args = FieldTable::new();
    args.insert(
        ShortStr::from("x-queue-type"),
        FieldValue::LongStr(Bytes::from_static(b"quorum")),
    );
    Definitions {
        shards: 2,
        exchanges: vec![ExchangeDef {
            name: ShortStr::from("logs"),
            kind: ExchangeKind::Topic,
            durable: true,
            auto_delete: false,
            internal: true,
            arguments: FieldTable::new(),
        }],
        queues: vec![QueueDef {
            name: ShortStr::from("tasks"),
            owner: 1,
            auto_delete: false,
            arguments: args,
        }],
        bindings: vec![
            BindingDef {
                source: ShortStr::from("logs"),
                destination: Destination::Queue(ShortStr::from("tasks")),
                routing_key: ShortStr::from("a.#"),
                arguments: FieldTable::new(),
            },
            BindingDef {
                source: ShortStr::from("amq.topic"),
                destination: Destination::Exchange(ShortStr::from("logs")),
                routing_key: ShortStr::from("*"),
                arguments: FieldTable::new(),
            },
        ],
        policies: vec![super::PolicyDef {
            name: "ttl".into(),
            pattern: "^tasks$".into(),
            apply_to: "queues".into(),
            priority: 2,
            definition: FieldTable(vec![(ShortStr::from("message-ttl"), FieldValue::I64(1000))]),
        }],
        limits: VhostLimits::default(),
        vhosts: Vec::new(),
        auth: Some(crate::broker::auth::AuthDefs::initial(
            "guest",
            "UmdEupYZJDYhVToXF7tWXJi3wvc7L8GxCDxJNyYYt9mHfG3e",
        )),
        default_vhost_deleted: false,
    }
}

/// `/` deleted: its definitions go, the other vhosts and the users stay,
/// the snapshot says so (and a restart does not recreate it); added again,
/// it is an empty `/`.
#[test]
fn the_default_vhost_can_be_deleted_and_added_again() {
    let mut d = sample();
    d.vhosts.push(VhostDef {
        name: ShortStr::from("v1"),
        defs: Definitions {
            queues: vec![queue("kept")],
            auth: None,
            ..Definitions::default()
        },
    });
    let mut c = Catalog::from_definitions(&d);
    c.apply(&Change::VhostGone(ShortStr::from("/")));
    let gone = c.to_definitions();
    assert!(gone.default_vhost_deleted);
    assert!(gone.queues.is_empty() && gone.exchanges.is_empty() && gone.bindings.is_empty());
    assert!(gone.policies.is_empty());
    assert_eq!(gone.vhosts.len(), 1, "other vhosts stay");
    assert_eq!(gone.auth, d.auth, "users stay");
    let back = Definitions::decode(gone.encode()).unwrap();
    assert_eq!(back, gone);
    assert!(
        !Definitions::decode(d.encode())
            .unwrap()
            .default_vhost_deleted
    );
    c.apply(&Change::Vhost {
        name: ShortStr::from("/"),
        limits: VhostLimits::default(),
    });
    let again = c.to_definitions();
    assert!(!again.default_vhost_deleted && again.queues.is_empty());
}

fn queue(name: &str) -> QueueDef {
    QueueDef {
        name: ShortStr::from(name),
        owner: 0,
        auto_delete: false,
        arguments: FieldTable::new(),
    }
}

fn exchange(name: &str, auto_delete: bool) -> ExchangeDef {
    ExchangeDef {
        name: ShortStr::from(name),
        kind: ExchangeKind::Direct,
        durable: true,
        auto_delete,
        internal: false,
        arguments: FieldTable::new(),
    }
}

fn binding(source: &str, dest: Destination, key: &str, args: &[(&str, i64)]) -> BindingDef {
    BindingDef {
        source: ShortStr::from(source),
        destination: dest,
        routing_key: ShortStr::from(key),
        arguments: FieldTable(
            args.iter()
                .map(|(k, v)| (ShortStr::from(*k), FieldValue::I64(*v)))
                .collect(),
        ),
    }
}

fn q(n: &str) -> Destination {
    Destination::Queue(ShortStr::from(n))
}

fn x(n: &str) -> Destination {
    Destination::Exchange(ShortStr::from(n))
}

fn framed(entries: &[Vec<Change>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        encode_entry(e, &mut out);
    }
    out
}

fn journal(generation: u64, entries: &[Vec<Change>]) -> Vec<u8> {
    let mut out = journal_header(generation).to_vec();
    out.extend(framed(entries));
    out
}

fn some_entries() -> Vec<Vec<Change>> {
    vec![
        vec![Change::Queue(queue("a"))],
        vec![Change::Exchange(exchange("ex", false))],
        vec![Change::Bind(binding(
            "ex",
            q("a"),
            "k",
            &[("y", 1), ("x", 2)],
        ))],
        vec![
            Change::QueueGone(ShortStr::from("tasks")),
            Change::ExchangeGone(ShortStr::from("gone")),
        ],
        vec![Change::Unbind(binding("logs", q("tasks"), "a.#", &[]))],
    ]
}

#[test]
fn round_trips() {
    let d = sample();
    assert_eq!(Definitions::decode(d.encode()).unwrap(), d);
    assert_eq!(
        Definitions::decode_snapshot(d.encode_snapshot(7)).unwrap(),
        (d, 7)
    );
}

/// Vhosts round-trip through the snapshot and the journal; a snapshot
/// written before vhosts existed is all vhost `/` (tested above: its
/// fields are the top level).
#[test]
fn vhosts_round_trip() {
    let mut d = sample();
    d.limits.max_queues = Some(3);
    d.vhosts.push(VhostDef {
        name: ShortStr::from("v/1"),
        defs: Definitions {
            queues: vec![queue("tasks")],
            limits: VhostLimits {
                max_connections: Some(2),
                max_queues: None,
            },
            auth: None,
            ..sample()
        },
    });
    d.vhosts[0].defs.shards = 0;
    assert_eq!(Definitions::decode(d.encode()).unwrap(), d);
    let entries = vec![
        vec![Change::Vhost {
            name: ShortStr::from("v2"),
            limits: VhostLimits::default(),
        }],
        vec![Change::In(
            ShortStr::from("v2"),
            Box::new(Change::Queue(queue("a"))),
        )],
        // A permission names its vhost in a field of its own: it must not
        // read back as a change inside that vhost.
        vec![Change::Auth(AuthChange::Permission(PermissionDef {
            user: "guest".into(),
            vhost: "v2".into(),
            configure: ".*".into(),
            write: "".into(),
            read: ".*".into(),
        }))],
        vec![Change::Auth(AuthChange::PermissionGone {
            user: "guest".into(),
            vhost: "v/1".into(),
        })],
        vec![Change::VhostGone(ShortStr::from("v/1"))],
    ];
    let scan = scan_journal(&journal(1, &entries)).unwrap();
    assert_eq!(scan.entries, entries);
    let mut c = Catalog::from_definitions(&d);
    for e in entries.iter().flatten() {
        c.apply(e);
    }
    let got = c.to_definitions();
    assert_eq!(got.vhosts.len(), 1);
    assert_eq!(got.vhosts[0].name.as_str(), "v2");
    assert_eq!(got.vhosts[0].defs.queues, vec![queue("a")]);
    assert_eq!(got.limits.max_queues, Some(3));
    let auth = got.auth.expect("auth");
    assert!(auth.permission("guest", "v2").is_some());
    assert!(auth.permission("guest", "/").is_some());
}

#[test]
fn corruption_is_detected() {
    let mut raw = d_bytes();
    let last = raw.len() - 1;
    raw[last] ^= 0xff;
    assert!(Definitions::decode(Bytes::from(raw)).is_err());
    assert!(Definitions::decode(Bytes::from_static(b"short")).is_err());
}

fn d_bytes() -> Vec<u8> {
    sample().encode().to_vec()
}

#[test]
fn a_snapshot_without_a_generation_is_generation_zero() {
    // The snapshot format before the journal: no "generation" key.
    let d = sample();
    let mut raw = d.encode_snapshot(3).to_vec();
    let mut body = Bytes::copy_from_slice(&raw[12..]);
    let mut table = get_table(&mut body).unwrap();
    table.0.retain(|(k, _)| k.as_str() != "generation");
    let mut body = BytesMut::new();
    put_table(&mut body, &table);
    raw.truncate(8);
    raw.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    raw.extend_from_slice(&body);
    assert_eq!(
        Definitions::decode_snapshot(Bytes::from(raw)).unwrap(),
        (d, 0)
    );
}

#[test]
fn journal_entries_round_trip() {
    let entries = some_entries();
    let raw = journal(5, &entries);
    let scan = scan_journal(&raw).unwrap();
    assert_eq!(scan.generation, Some(5));
    assert_eq!(scan.entries, entries);
    assert_eq!((scan.valid_len, scan.torn_bytes), (raw.len(), 0));
    // An empty journal is a header.
    let scan = scan_journal(&journal_header(9)).unwrap();
    assert_eq!(
        (scan.generation, scan.entries.len(), scan.torn_bytes),
        (Some(9), 0, 0)
    );
}

#[test]
fn a_torn_tail_is_ignored_wherever_it_is_cut() {
    let entries = some_entries();
    let raw = journal(1, &entries);
    let whole_but_last = journal(1, &entries[..entries.len() - 1]).len();
    for cut in whole_but_last..raw.len() {
        let scan = scan_journal(&raw[..cut]).unwrap();
        assert_eq!(scan.entries, entries[..entries.len() - 1], "cut at {cut}");
        assert_eq!(scan.valid_len, whole_but_last);
        assert_eq!(scan.torn_bytes, cut - whole_but_last);
    }
    // Zeroes after the last entry (a preallocated or torn block), and
    // garbage: the entries before are kept.
    for tail in [vec![0u8; 100], vec![0xa5u8; 37], vec![1, 0, 0, 0]] {
        let mut torn = raw.clone();
        torn.extend_from_slice(&tail);
        let scan = scan_journal(&torn).unwrap();
        assert_eq!(scan.entries, entries);
        assert_eq!(scan.torn_bytes, tail.len());
    }
    // A flipped bit in the second entry: only the first one is kept.
    let first = journal(1, &entries[..1]).len();
    let mut flipped = raw.clone();
    flipped[first + ENTRY_HEADER_LEN + 3] ^= 0x10;
    let scan = scan_journal(&flipped).unwrap();
    assert_eq!(scan.entries, entries[..1]);
    assert_eq!(scan.valid_len, first);
    // A torn header: no generation, nothing replayed.
    for cut in 0..JOURNAL_HEADER_LEN {
        let scan = scan_journal(&raw[..cut]).unwrap();
        assert_eq!((scan.generation, scan.entries.len()), (None, 0));
    }
    let mut bad_header = raw.clone();
    bad_header[9] ^= 1;
    assert_eq!(scan_journal(&bad_header).unwrap().generation, None);
}

#[test]
fn an_entry_with_a_good_checksum_but_an_unknown_change_is_an_error() {
    let table = FieldTable(vec![(
        ShortStr::from_static("changes"),
        FieldValue::Array(vec![entry(vec![("op", word("rename"))])]),
    )]);
    let mut payload = BytesMut::new();
    put_table(&mut payload, &table);
    let mut raw = journal_header(1).to_vec();
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &payload);
    raw.extend_from_slice(&len);
    raw.extend_from_slice(&crc.to_le_bytes());
    raw.extend_from_slice(&payload);
    assert!(scan_journal(&raw).is_err());
}

#[test]
fn catalog_changes_set_state() {
    let mut c = Catalog::from_definitions(&sample());
    assert!(c.has_binding(&binding("logs", q("tasks"), "a.#", &[])));
    // Arguments compare in sorted form; binding twice is one binding.
    let b = binding("logs", q("tasks"), "k", &[("b", 1), ("a", 2)]);
    c.apply(&Change::Bind(b.clone()));
    c.apply(&Change::Bind(binding(
        "logs",
        q("tasks"),
        "k",
        &[("a", 2), ("b", 1)],
    )));
    assert_eq!(c.to_definitions().bindings.len(), 3);
    c.apply(&Change::Unbind(binding(
        "logs",
        q("tasks"),
        "k",
        &[("a", 2), ("b", 1)],
    )));
    assert!(!c.has_binding(&b));
    assert_eq!(c.to_definitions().bindings.len(), 2);
    // A queue going drops the bindings to it.
    c.apply(&Change::QueueGone(ShortStr::from("tasks")));
    assert_eq!(c.to_definitions().bindings.len(), 1);
    assert!(c.queue("tasks").is_none());
    // An exchange going drops the bindings from and to it.
    c.apply(&Change::Queue(queue("q2")));
    c.apply(&Change::Bind(binding("logs", q("q2"), "", &[])));
    c.apply(&Change::ExchangeGone(ShortStr::from("logs")));
    let d = c.to_definitions();
    assert!(d.bindings.is_empty(), "{d:?}");
    assert!(d.exchanges.is_empty());
    assert_eq!(d.queues, vec![queue("q2")]);
    // Auto-delete exchanges are tracked.
    c.apply(&Change::Exchange(exchange("ad", true)));
    assert_eq!(c.auto_delete_exchanges().count(), 1);
    c.apply(&Change::Exchange(exchange("ad", false)));
    assert_eq!(c.auto_delete_exchanges().count(), 0);
    c.apply(&Change::Exchange(exchange("ad", true)));
    c.apply(&Change::ExchangeGone(ShortStr::from("ad")));
    assert_eq!(c.auto_delete_exchanges().count(), 0);
    // q2, the sample's policy, its user and the user's permissions.
    assert_eq!(c.size(), 4);
}

#[test]
fn auth_changes_round_trip_through_journal_and_snapshot() {
    use crate::broker::auth::{TopicPermissionDef, UserDef};
    let changes = vec![
        Change::Auth(AuthChange::User(UserDef {
            name: "u".into(),
            password_hash: "UmdEupYZJDYhVToXF7tWXJi3wvc7L8GxCDxJNyYYt9mHfG3e".into(),
            hashing_algorithm: "rabbit_password_hashing_sha256".into(),
            tags: vec!["monitoring".into(), "management".into()],
        })),
        Change::Auth(AuthChange::Permission(PermissionDef {
            user: "u".into(),
            vhost: "/".into(),
            configure: "".into(),
            write: "^w".into(),
            read: ".*".into(),
        })),
        Change::Auth(AuthChange::TopicPermission(TopicPermissionDef {
            user: "u".into(),
            vhost: "/".into(),
            exchange: "amq.topic".into(),
            write: "^{username}".into(),
            read: "".into(),
        })),
        Change::Auth(AuthChange::PermissionGone {
            user: "guest".into(),
            vhost: "/".into(),
        }),
        Change::Auth(AuthChange::TopicPermissionGone {
            user: "u".into(),
            vhost: "/".into(),
            exchange: "x".into(),
        }),
        Change::Auth(AuthChange::UserGone("nobody".into())),
    ];
    let mut bytes = journal_header(1).to_vec();
    encode_entry(&changes, &mut bytes);
    let scan = scan_journal(&bytes).unwrap();
    assert_eq!(scan.entries, vec![changes.clone()]);
    let mut d = sample();
    let mut c = Catalog::from_definitions(&d);
    for ch in &changes {
        c.apply(ch);
        apply_naively(&mut d, ch);
    }
    let after = c.to_definitions();
    assert_eq!(after.canonical(), d.canonical());
    let auth = after.auth.clone().unwrap();
    assert!(auth.user("u").is_some() && auth.permission("guest", "/").is_none());
    let back = Definitions::decode(after.encode()).unwrap();
    assert_eq!(back, after);
    // Files from before users had none: the broker creates its default.
    let none = Definitions {
        auth: None,
        ..after
    };
    assert_eq!(Definitions::decode(none.encode()).unwrap().auth, None);
}

/// The same changes applied one by one to the definitions (the slow,
/// obvious way).
fn apply_naively(d: &mut Definitions, change: &Change) {
    let same = |a: &BindingDef, b: &BindingDef| {
        a.source == b.source
            && a.destination == b.destination
            && a.routing_key == b.routing_key
            && sorted_args(&a.arguments) == sorted_args(&b.arguments)
    };
    match change {
        Change::Policy(p) => {
            d.policies.retain(|x| x.name != p.name);
            d.policies.push(p.clone());
        }
        Change::PolicyGone(n) => d.policies.retain(|x| x.name != *n),
        Change::Auth(a) => d.auth.get_or_insert_with(Default::default).apply(a),
        Change::Queue(q) => {
            d.queues.retain(|x| x.name != q.name);
            d.queues.push(q.clone());
        }
        Change::QueueGone(n) => {
            d.queues.retain(|x| x.name != *n);
            d.bindings
                .retain(|b| b.destination != Destination::Queue(n.clone()));
        }
        Change::Exchange(x) => {
            d.exchanges.retain(|e| e.name != x.name);
            d.exchanges.push(x.clone());
        }
        Change::ExchangeGone(n) => {
            d.exchanges.retain(|e| e.name != *n);
            d.bindings
                .retain(|b| b.source != *n && b.destination != Destination::Exchange(n.clone()));
        }
        Change::Bind(b) => {
            if !d.bindings.iter().any(|x| same(x, b)) {
                d.bindings.push(b.clone());
            }
        }
        Change::Unbind(b) => d.bindings.retain(|x| !same(x, b)),
        Change::Vhost { name, limits } if name.as_str() == "/" => d.limits = *limits,
        Change::Vhost { name, limits } => match d.vhosts.iter_mut().find(|v| v.name == *name) {
            Some(v) => v.defs.limits = *limits,
            None => d.vhosts.push(VhostDef {
                name: name.clone(),
                defs: Definitions {
                    limits: *limits,
                    ..Definitions::default()
                },
            }),
        },
        Change::VhostGone(name) => d.vhosts.retain(|v| v.name != *name),
        Change::In(name, inner) => {
            if let Some(v) = d.vhosts.iter_mut().find(|v| v.name == *name) {
                apply_naively(&mut v.defs, inner);
            }
        }
    }
}

/// A deterministic pseudo-random change over a small name space.
fn random_change(r: &mut u64) -> Change {
    let mut next = |n: u64| {
        *r ^= *r << 13;
        *r ^= *r >> 7;
        *r ^= *r << 17;
        *r % n
    };
    let name = |i: u64| format!("n{i}");
    let dest = |kind: u64, i: u64| match kind {
        0 => q(&name(i)),
        _ => x(&name(i)),
    };
    match next(9) {
        // The same changes in another vhost, which comes and goes.
        6 => {
            let mut inner = random_change(r);
            while matches!(
                inner,
                Change::In(..) | Change::Vhost { .. } | Change::VhostGone(_)
            ) {
                inner = random_change(r);
            }
            Change::In(ShortStr::from("v1"), Box::new(inner))
        }
        7 => Change::Vhost {
            name: ShortStr::from(["/", "v1"][next(2) as usize]),
            limits: VhostLimits {
                max_connections: Some(next(3) as u32),
                max_queues: None,
            },
        },
        8 => Change::VhostGone(ShortStr::from("v1")),
        0 => Change::Queue(queue(&name(next(5)))),
        1 => Change::QueueGone(ShortStr::from(name(next(5)).as_str())),
        2 => Change::Exchange(exchange(&name(next(5)), next(2) == 0)),
        3 => Change::ExchangeGone(ShortStr::from(name(next(5)).as_str())),
        k => {
            let b = binding(
                &name(next(5)),
                dest(next(2), next(5)),
                &format!("k{}", next(2)),
                &[("a", next(2) as i64), ("b", 1)][..next(3) as usize],
            );
            if k == 4 {
                Change::Bind(b)
            } else {
                Change::Unbind(b)
            }
        }
    }
}

#[test]
fn catalog_matches_the_naive_model_and_replay_is_idempotent() {
    let mut r = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..200 {
        let changes: Vec<Change> = (0..60).map(|_| random_change(&mut r)).collect();
        let mut naive = Definitions::default();
        let mut catalog = Catalog::default();
        for c in &changes {
            apply_naively(&mut naive, c);
            catalog.apply(c);
        }
        let got = catalog.to_definitions();
        assert_eq!(got.canonical(), naive.canonical());
        // Replaying any suffix on the result changes nothing: a
        // snapshot that already holds entries of the journal after it
        // loads the same.
        for start in [0, 10, 30, 59] {
            let mut again = Catalog::from_definitions(&got);
            for c in &changes[start..] {
                again.apply(c);
            }
            assert_eq!(again.to_definitions().canonical(), got.canonical());
        }
    }
}

#[test]
fn replay_applies_the_journal_of_the_snapshots_generation_only() {
    let snapshot = sample();
    let entries = some_entries();
    let (got, loaded) = replay(Some((snapshot.clone(), 4)), Some(&journal(4, &entries))).unwrap();
    let mut expect = Catalog::from_definitions(&snapshot);
    for c in entries.iter().flatten() {
        expect.apply(c);
    }
    assert_eq!(got.unwrap(), expect.to_definitions());
    assert_eq!(loaded.entries, entries.len());
    assert_eq!((loaded.generation, loaded.torn_bytes), (4, 0));
    // A stale journal (another generation) is ignored.
    let (got, loaded) = replay(Some((snapshot.clone(), 5)), Some(&journal(4, &entries))).unwrap();
    assert_eq!(got.unwrap(), snapshot);
    assert_eq!((loaded.entries, loaded.stale_generation), (0, Some(4)));
    // No journal, or a journal with a torn header: the snapshot.
    assert_eq!(
        replay(Some((snapshot.clone(), 4)), None)
            .unwrap()
            .0
            .unwrap(),
        snapshot
    );
    let torn = &journal(4, &entries)[..10];
    assert_eq!(
        replay(Some((snapshot.clone(), 4)), Some(torn))
            .unwrap()
            .0
            .unwrap(),
        snapshot
    );
    // No snapshot: nothing, whatever the journal says.
    assert_eq!(replay(None, Some(&journal(4, &entries))).unwrap().0, None);
    assert_eq!(replay(None, None).unwrap().0, None);
    // A torn tail: the entries before it.
    let mut raw = journal(4, &entries);
    raw.truncate(raw.len() - 3);
    let (got, loaded) = replay(Some((snapshot.clone(), 4)), Some(&raw)).unwrap();
    let mut expect = Catalog::from_definitions(&snapshot);
    for c in entries[..entries.len() - 1].iter().flatten() {
        expect.apply(c);
    }
    assert_eq!(got.unwrap(), expect.to_definitions());
    assert!(loaded.torn_bytes > 0);
}

fn run<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(f)
        .expect("spawn executor")
        .join()
        .expect("executor thread");
}

#[test]
fn files_written_then_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    assert_eq!(Definitions::load(&path).unwrap(), None);
    run(move || async move {
        assert_eq!(journal_generation(&path).await.unwrap(), 0);
        let (mut j, len) = start_generation(&path, &sample(), 1, None).await.unwrap();
        assert_eq!(len, std::fs::metadata(super::path(&path)).unwrap().len());
        assert!(j.is_empty());
        assert_eq!(Definitions::load(&path).unwrap(), Some(sample()));
        let entries = some_entries();
        j.append(framed(&entries[..2])).await.unwrap();
        j.append(framed(&entries[2..])).await.unwrap();
        assert_eq!(
            j.len(),
            std::fs::metadata(journal_path(&path)).unwrap().len()
        );
        let mut expect = Catalog::from_definitions(&sample());
        for c in entries.iter().flatten() {
            expect.apply(c);
        }
        let (got, loaded) = Definitions::load_verbose(&path).unwrap();
        assert_eq!(got, Some(expect.to_definitions()));
        assert_eq!((loaded.generation, loaded.entries), (1, entries.len()));
        assert_eq!(journal_generation(&path).await.unwrap(), 1);
        j.close().await;

        // The next generation: a snapshot of everything, a fresh journal.
        let (j, _) = start_generation(&path, &expect.to_definitions(), 2, None)
            .await
            .unwrap();
        let (got, loaded) = Definitions::load_verbose(&path).unwrap();
        assert_eq!(got, Some(expect.to_definitions()));
        assert_eq!((loaded.generation, loaded.entries), (2, 0));
        j.close().await;

        // A crash between the new snapshot and its journal: the old
        // journal is stale and ignored, the new snapshot has it all.
        let newer = Definitions::default();
        write_snapshot(&path, &newer, 3, None).await.unwrap();
        let (got, loaded) = Definitions::load_verbose(&path).unwrap();
        assert_eq!(got, Some(newer));
        assert_eq!(loaded.stale_generation, Some(2));
    });
}
