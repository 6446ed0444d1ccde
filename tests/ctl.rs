//! `warren ctl` speaks rabbitmqctl: the columns of every listing in the
//! order asked, rabbitmqctl's defaults, its table and JSON formatters,
//! `--quiet` / `--silent` / `--no-table-headers`, `-p VHOST`, an unknown
//! column (64), no broker (69), `delete_queue` / `purge_queue`; and (opt-in,
//! `--ignored`) the time to list 100 k queues. Each behaviour test runs
//! with 1 and 2 shards; the formats are compared with what rabbitmqctl
//! 3.10.8 printed for the same commands (`tests/fixtures/rabbitmqctl/`).

mod common;

use common::raw::{Args, RawConn};
use common::*;
use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use std::process::Output;
use std::time::{Duration, Instant};

const NEEDS_CTL: &str = "it drives `warren ctl` against a local warren";

/// `warren ctl` with exactly these words (no columns added).
fn exact(b: &Broker, words: &[&str]) -> Output {
    ctl_output(b, words)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[track_caller]
fn ok(b: &Broker, words: &[&str]) -> String {
    let o = exact(b, words);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{words:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_queues_prints_the_columns_asked_in_order_as_rabbitmqctl() {
    if skip_if_external(NEEDS_CTL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            let q = unique_name("ctl-q");
            let mut args = FieldTable::default();
            args.insert("x-max-length".into(), AMQPValue::LongInt(10));
            ch.queue_declare(
                q.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                args,
            )
            .await
            .expect("declare");
            let pubch = confirm_channel(&conn).await;
            publish_confirmed(&pubch, &q, &["a".into(), "b".into()], Default::default()).await;
            let consumed = unique_name("ctl-consumed");
            ch.queue_declare(
                consumed.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("declare");
            let _consumer = ch
                .basic_consume(
                    consumed.as_str().into(),
                    "ctl-tag".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("consume");

            // rabbitmqctl's defaults and informational lines.
            let out = ok(&b, &["list_queues"]);
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(
                lines[..3],
                [
                    "Timeout: 60.0 seconds ...",
                    "Listing queues for vhost / ...",
                    "name\tmessages"
                ],
                "{out}"
            );
            assert!(lines.contains(&format!("{q}\t2").as_str()), "{out}");

            // The columns in the order asked.
            let out = ok(
                &b,
                &[
                    "list_queues",
                    "consumers",
                    "name",
                    "durable",
                    "arguments",
                    "messages_ready",
                    "type",
                ],
            );
            assert!(
                out.contains("consumers\tname\tdurable\targuments\tmessages_ready\ttype\n"),
                "{out}"
            );
            assert!(
                out.contains(&format!(
                    "0\t{q}\ttrue\t[{{\"x-max-length\",10}}]\t2\tclassic\n"
                )),
                "{out}"
            );
            assert!(out.contains(&format!("1\t{consumed}\tfalse\t[]\t0\tclassic\n")));

            // --quiet drops the informational lines, --silent the header
            // row too, --no-table-headers the header row only.
            let quiet = ok(&b, &["-q", "list_queues", "name", "messages"]);
            assert!(quiet.starts_with("name\tmessages\n"), "{quiet}");
            let silent = ok(&b, &["list_queues", "--silent", "name", "messages"]);
            assert!(!silent.contains("name\tmessages") && !silent.contains("Listing"));
            assert!(silent.contains(&format!("{q}\t2\n")), "{silent}");
            let bare = ok(&b, &["list_queues", "--no-table-headers"]);
            assert!(bare.starts_with("Timeout: 60.0 seconds ...\nListing queues"));
            assert!(!bare.contains("name\tmessages"), "{bare}");

            // JSON: parses, the keys asked, in order, and no other lines.
            let json = ok(
                &b,
                &[
                    "list_queues",
                    "name",
                    "messages",
                    "arguments",
                    "--formatter",
                    "json",
                ],
            );
            assert!(json.starts_with("[\n{\"name\":"), "{json}");
            let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
            let row = v
                .as_array()
                .expect("an array")
                .iter()
                .find(|r| r["name"] == q.as_str())
                .expect("the queue");
            assert_eq!(row["messages"], 2);
            assert_eq!(
                row["arguments"],
                serde_json::json!([["x-max-length", "signedint", 10]])
            );
            assert_eq!(row.as_object().unwrap().len(), 3);

            // An unknown column: rabbitmqctl's message and 64.
            let bad = exact(&b, &["list_queues", "name", "bogus", "nope"]);
            assert_eq!(bad.status.code(), Some(64));
            assert!(String::from_utf8_lossy(&bad.stderr)
                .contains("Error (argument validation): Info key(s) bogus,nope are not supported"));
            assert!(bad.stdout.is_empty());

            // Other listings' columns.
            let x = ok(&b, &["list_exchanges", "-q", "name", "type", "internal"]);
            assert!(x.contains("amq.topic\ttopic\tfalse\n"), "{x}");
            let consumers = ok(
                &b,
                &["list_consumers", "consumer_tag", "queue_name", "active"],
            );
            assert!(
                consumers.contains(&format!("ctl-tag\t{consumed}\ttrue\n")),
                "{consumers}"
            );
            let bindings = ok(
                &b,
                &["list_bindings", "-s", "source_name", "destination_name"],
            );
            assert!(
                bindings.contains(&format!("\t{q}\n")),
                "the default exchange's: {bindings}"
            );
            let conns = ok(
                &b,
                &["list_connections", "user", "vhost", "channels", "state"],
            );
            assert!(conns.contains("guest\t/\t2\trunning\n"), "{conns}");
            let channels = ok(
                &b,
                &["list_channels", "-q", "number", "consumer_count", "confirm"],
            );
            assert!(channels.contains("1\t1\tfalse\n"), "{channels}");
            assert!(channels.contains("2\t0\ttrue\n"), "{channels}");
            let defaults = ok(&b, &["list_connections", "-q"]);
            assert!(
                defaults.starts_with("user\tpeer_host\tpeer_port\tstate\n"),
                "{defaults}"
            );
            let _ = conn.close(200, "".into()).await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p_names_the_vhost_and_queues_are_deleted_and_purged() {
    if skip_if_external(NEEDS_CTL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let v = unique_name("ctl-vhost");
        ok(&b, &["add_vhost", &v]);
        ok(
            &b,
            &["set_permissions", "-p", &v, "guest", ".*", ".*", ".*"],
        );
        let mut c = RawConn::connect(&b.addr());
        let opened = c.open_vhost("guest", "guest", &v);
        assert_eq!((opened.class, opened.method), (10, 41), "{opened:?}");
        c.channel_open(1);
        let only = unique_name("ctl-only");
        c.queue_declare(1, &only);
        let body = b"x";
        c.basic_publish(1, "", &only, body, 131_072);
        c.queue_declare(1, &only);

        let listed = ok(&b, &["list_queues", "-p", &v, "name", "messages"]);
        assert!(
            listed.contains(&format!("Listing queues for vhost {v} ...\n")),
            "{listed}"
        );
        assert!(listed.contains(&format!("{only}\t1\n")), "{listed}");
        assert!(!ok(&b, &["list_queues"]).contains(&only));
        // An unknown vhost lists nothing, as in rabbitmqctl.
        let none = ok(&b, &["list_queues", "-p", "no-such-vhost"]);
        assert_eq!(
            none,
            "Timeout: 60.0 seconds ...\nListing queues for vhost no-such-vhost ...\n"
        );

        // purge_queue and delete_queue, with rabbitmqctl's lines and codes.
        let purged = ok(&b, &["purge_queue", "-p", &v, &only]);
        assert_eq!(
            purged,
            format!("Purging queue '{only}' in vhost '{v}' ...\n")
        );
        let listed = ok(&b, &["list_queues", "-p", &v, "-s", "name", "messages"]);
        assert_eq!(listed, format!("{only}\t0\n"));
        let missing = exact(&b, &["purge_queue", "nope"]);
        assert_eq!(missing.status.code(), Some(69));
        assert!(String::from_utf8_lossy(&missing.stderr).contains("Error:\nnot_found"));
        let missing = exact(&b, &["delete_queue", "nope"]);
        assert_eq!(missing.status.code(), Some(64));
        assert!(String::from_utf8_lossy(&missing.stderr).contains("Error:\nQueue not found"));
        c.basic_publish(1, "", &only, body, 131_072);
        c.queue_declare(1, &only);
        let refused = exact(&b, &["delete_queue", "-p", &v, &only, "--if-empty"]);
        assert_eq!(refused.status.code(), Some(64));
        assert_eq!(
            stdout(&refused),
            format!("Deleting queue '{only}' on vhost '{v}' if queue is empty ...\n")
        );
        assert!(String::from_utf8_lossy(&refused.stderr).contains("Queue is not empty"));
        let deleted = ok(&b, &["delete_queue", "-q", "-p", &v, &only]);
        assert_eq!(
            deleted,
            "Queue was successfully deleted with 1 ready messages\n"
        );
        assert!(!ok(&b, &["list_queues", "-p", &v]).contains(&only));
        c.drop_socket();
        ok(&b, &["delete_vhost", &v]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_connection_closes_it_with_320_and_the_reason() {
    if skip_if_external(NEEDS_CTL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (mut c, _) = RawConn::open(&b.addr());
        let names = ok(&b, &["list_connections", "-s", "name"]);
        let name = names.lines().next().expect("one connection").to_string();
        let out = ok(&b, &["close_connection", &name, "go away"]);
        assert_eq!(
            out,
            format!("Closing connection {name}, reason: go away...\n")
        );
        let close = c.expect_method();
        assert_eq!(
            close.close_reason(),
            (320, "CONNECTION_FORCED - go away".to_string())
        );
        // As rabbitmqctl: a name that matches nothing is no error.
        ok(&b, &["close_connection", "127.0.0.1:1", "nobody"]);
        assert!(
            eventually(20, || ok(&b, &["list_connections", "-s"]).is_empty()).await,
            "the connection is gone"
        );
    }
}

#[test]
fn no_broker_is_69_with_the_address_tried() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let node = format!("127.0.0.1:{port}");
    for target in [["-n", node.as_str()], ["--admin", node.as_str()]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
            .arg("ctl")
            .args(target)
            .arg("list_queues")
            .output()
            .expect("run warren ctl");
        assert_eq!(out.status.code(), Some(69));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!(
                "Error: unable to perform an operation on node '{node}'."
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!("attempted to contact: [{node}]")),
            "{err}"
        );
    }
    // Usage errors come before any connection: 64.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["ctl", "-n", &node, "list_queues", "bogus"])
        .output()
        .expect("run warren ctl");
    assert_eq!(out.status.code(), Some(64));
}

/// The table and JSON output of `list_queues name messages`, byte for
/// byte as rabbitmqctl 3.10.8 printed them for two queues (the fixtures).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_matches_rabbitmqctl_byte_for_byte() {
    if skip_if_external(NEEDS_CTL) {
        return;
    }
    let fixture = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/rabbitmqctl/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture")
    };
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let mut c = RawConn::open(&b.addr()).0;
        c.channel_open(1);
        // The fixture's queues, on one shard so they list in name order.
        for (q, n) in [("ctlref-q1", 2), ("ctlref-q2", 0)] {
            let args = Args::new()
                .short(0)
                .shortstr(q)
                .bits(&[false, false, false, false, false])
                .table(&placement_entry(0))
                .done();
            c.send_method(1, 50, 10, &args);
            let m = c.expect_method();
            assert_eq!((m.class, m.method), (50, 11), "{m:?}");
            for _ in 0..n {
                c.basic_publish(1, "", q, b"hello", 131_072);
            }
        }
        c.queue_declare(1, "ctlref-q1");
        for (words, name) in [
            (&["list_queues", "name", "messages"][..], "list_queues.txt"),
            (
                &["list_queues", "name", "messages", "--formatter", "json"],
                "list_queues.json",
            ),
            (
                &["-q", "list_queues", "name", "messages"],
                "list_queues_quiet.txt",
            ),
        ] {
            assert_eq!(ok(&b, words), fixture(name), "{words:?}");
        }
        c.drop_socket();
    }
}

/// The `x-warren-shard` table entry placing a queue on `shard`.
fn placement_entry(shard: i32) -> Vec<u8> {
    let key = b"x-warren-shard";
    let mut t = vec![key.len() as u8];
    t.extend_from_slice(key);
    t.push(b'I');
    t.extend_from_slice(&shard.to_be_bytes());
    t
}

/// 100 k queues declared (no-wait, pipelined on several channels), then
/// `warren ctl list_queues` timed. Opt-in (`--ignored`): the target, under
/// 2 s, is for a release build (`cargo test --release --test ctl --
/// --ignored`); a debug build is only checked to finish.
#[test]
#[ignore]
fn list_queues_with_100k_queues_is_fast() {
    const N: usize = 100_000;
    const CHANNELS: u16 = 8;
    if skip_if_external(NEEDS_CTL) {
        return;
    }
    let b = Broker::start(2);
    let mut c = RawConn::open(&b.addr()).0;
    for ch in 1..=CHANNELS {
        c.channel_open(ch);
    }
    let started = Instant::now();
    let mut batch = Vec::new();
    for i in 0..N {
        let ch = 1 + (i % CHANNELS as usize) as u16;
        let args = Args::new()
            .short(0)
            .shortstr(&format!("speed-{i:06}"))
            .bits(&[false, false, false, false, true])
            .empty_table()
            .done();
        batch.extend_from_slice(&RawConn::method_bytes(ch, 50, 10, &args));
        if batch.len() > 256 * 1024 {
            c.send_bytes(&batch);
            batch.clear();
        }
    }
    c.send_bytes(&batch);
    // A declare that waits, on every channel: the no-wait ones before it
    // on that channel are done. Declaring 100 k queues takes minutes on a
    // loaded machine: the declare-oks are awaited for up to 15 minutes.
    for ch in 1..=CHANNELS {
        let args = Args::new()
            .short(0)
            .shortstr("speed-last")
            .bits(&[false, false, false, false, false])
            .empty_table()
            .done();
        c.send_method(ch, 50, 10, &args);
    }
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut oks = 0;
    while oks < CHANNELS {
        match c.read_method() {
            Ok(m) => {
                assert_eq!((m.class, m.method), (50, 11), "declare-ok: {m:?}");
                oks += 1;
            }
            Err(e) if Instant::now() < deadline && e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("waiting for the declares: {e}"),
        }
    }
    let declared = started.elapsed();
    let run = || {
        let t = Instant::now();
        let out = ok(&b, &["list_queues", "-q"]);
        (t.elapsed(), out.lines().count())
    };
    let _warm = run();
    let (took, lines) = run();
    // The header row, every queue and speed-last.
    assert_eq!(lines, N + 2);
    eprintln!(
        "100k queues: declared in {declared:?}; warren ctl list_queues took {took:?} ({})",
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        }
    );
    let limit = if cfg!(debug_assertions) {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(2)
    };
    assert!(took < limit, "list_queues took {took:?}");
    c.drop_socket();
}

/// `memory`, `message_bytes`, `message_bytes_ready`,
/// `message_bytes_unacknowledged` and `pid` in `warren ctl list_queues`
/// and `/api/queues/{vhost}/{name}`: three 10-byte messages ready and two
/// delivered unacked. `consumer_utilisation` is refused with why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_queues_shows_message_bytes_memory_and_pid() {
    if skip_if_external(NEEDS_CTL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            let q = unique_name("ctl-bytes");
            declare_queue(&ch, &q, false, None).await;
            let bodies: Vec<String> = (0..5).map(|i| format!("ten-bytes{i}")).collect();
            publish_confirmed(&ch, &q, &bodies, Default::default()).await;
            let consumer = conn.create_channel().await.expect("channel");
            consumer
                .basic_qos(2, Default::default())
                .await
                .expect("qos");
            let _c = consumer
                .basic_consume(
                    q.as_str().into(),
                    "bytes".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("consume");
            let columns = [
                "list_queues",
                "name",
                "messages_ready",
                "messages_unacknowledged",
                "message_bytes",
                "message_bytes_ready",
                "message_bytes_unacknowledged",
                "memory",
                "pid",
                "shard",
            ];
            assert!(
                eventually(20, || {
                    let l = ok(&b, &columns);
                    cell_num(&l, &q, "messages_unacknowledged") == 2
                })
                .await
            );
            let listing = ok(&b, &columns);
            let num = |c: &str| cell_num(&listing, &q, c);
            assert_eq!(num("messages_ready"), 3, "{listing}");
            assert_eq!(
                (
                    num("message_bytes"),
                    num("message_bytes_ready"),
                    num("message_bytes_unacknowledged")
                ),
                (50, 30, 20),
                "{listing}"
            );
            // Each message is charged its body, properties and a fixed
            // overhead (`broker::queue::MESSAGE_OVERHEAD`, 448 bytes).
            let memory = num("memory");
            assert!(
                (5 * (448 + 10)..5 * (448 + 10 + 64)).contains(&memory),
                "{listing}"
            );
            let node = api_get(&b, "/api/overview")["node"]
                .as_str()
                .expect("node")
                .to_string();
            let shard = cell(&listing, &q, "shard");
            assert_eq!(cell(&listing, &q, "pid"), format!("<{node}.{shard}>"));
            if shards == 1 {
                assert_eq!(shard, "0");
            }

            // The same figures in the API.
            let api_q = api_get(&b, &format!("/api/queues/%2F/{q}"));
            for (field, want) in [
                ("message_bytes", 50),
                ("message_bytes_ready", 30),
                ("message_bytes_unacknowledged", 20),
                ("memory", memory),
            ] {
                assert_eq!(api_q[field], want, "{field}: {api_q}");
            }

            // Settled: nothing unacked, no bytes, no memory held.
            drop(_c);
            let _ = consumer.close(200, "".into()).await;
            assert!(
                eventually(20, || {
                    let l = ok(&b, &columns);
                    cell_num(&l, &q, "messages_ready") == 5
                })
                .await
            );
            let listing = ok(&b, &columns);
            assert_eq!(cell_num(&listing, &q, "message_bytes"), 50, "{listing}");
            assert_eq!(cell_num(&listing, &q, "message_bytes_unacknowledged"), 0);
            assert_eq!(cell_num(&listing, &q, "memory"), memory, "{listing}");

            // No consumers: utilisation 0, as rabbitmqctl prints it.
            let listing = ok(&b, &["list_queues", "name", "consumer_utilisation"]);
            assert_eq!(cell(&listing, &q, "consumer_utilisation"), "0", "{listing}");
            let refused = exact(&b, &["list_queues", "name", "no_such_column"]);
            assert_eq!(refused.status.code(), Some(64));
            let err = String::from_utf8_lossy(&refused.stderr);
            assert!(
                err.contains("Info key(s) no_such_column are not supported"),
                "{err}"
            );
            let _ = conn.close(200, "".into()).await;
        })
        .await;
    }
}
