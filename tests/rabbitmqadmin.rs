//! RabbitMQ's own CLI, rabbitmqadmin v2 (the Rust one, `cargo install
//! rabbitmqadmin`; not the Python v1 in /usr/bin), against the real binary
//! with 1 and 2 shards: declare a queue, an exchange and a binding, list
//! them, publish, get, delete — in `/` and in another vhost — each checked
//! over the API or AMQP too. The binary is `$WARREN_RABBITMQADMIN` or
//! `~/.cargo/bin/rabbitmqadmin`; when it is missing the test fails under
//! `CI=true` (`.ci/run` installs it) and is skipped with a message
//! otherwise. `definitions export --file` from one broker and `definitions
//! import --file` into a fresh one carry a vhost, its permissions, a
//! durable queue with arguments, an exchange and a binding.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;

fn rabbitmqadmin() -> Option<PathBuf> {
    let path = match std::env::var_os("WARREN_RABBITMQADMIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cargo/bin/rabbitmqadmin"),
    };
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "rabbitmqadmin v2 is not at {} (CI=true: `cargo install rabbitmqadmin --locked`, \
         or set WARREN_RABBITMQADMIN)",
        path.display()
    );
    eprintln!(
        "skipped: rabbitmqadmin v2 is not at {} (`cargo install rabbitmqadmin --locked`, or set \
         WARREN_RABBITMQADMIN)",
        path.display()
    );
    None
}

/// Runs rabbitmqadmin against the broker's management port; its stdout,
/// or a panic with what it said.
#[track_caller]
fn run(bin: &PathBuf, b: &Broker, vhost: &str, args: &[&str]) -> String {
    let admin = admin_addr(b);
    let (host, port) = admin.rsplit_once(':').expect("host:port");
    let out = Command::new(bin)
        .args(["--host", host, "--port", port, "--username", "guest"])
        .args(["--password", "guest", "--vhost", vhost, "--non-interactive"])
        .args(args)
        .output()
        .expect("run rabbitmqadmin");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rabbitmqadmin {args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmqadmin_declares_lists_publishes_gets_and_deletes() {
    if skip_if_external("it needs Warren's management port") {
        return;
    }
    let Some(bin) = rabbitmqadmin() else {
        return;
    };
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let other = unique_name("radm-vh");
        ctl_with(&b, &["add_vhost", &other]);
        ctl_with(
            &b,
            &["set_permissions", "-p", &other, "guest", ".*", ".*", ".*"],
        );
        for vhost in ["/", other.as_str()] {
            let encoded = vhost.replace('/', "%2F");
            let q = unique_name("radm-q");
            let x = unique_name("radm-x");
            let admin = |args: &[&str]| run(&bin, &b, vhost, args);
            admin(&["declare", "queue", "--name", &q, "--durable", "true"]);
            admin(&["declare", "exchange", "--name", &x, "--type", "topic"]);
            admin(&[
                "declare",
                "binding",
                "--source",
                &x,
                "--destination-type",
                "queue",
                "--destination",
                &q,
                "--routing-key",
                "a.#",
            ]);
            let queue = api_get(&b, &format!("/api/queues/{encoded}/{q}"));
            assert_eq!(queue["durable"], true, "{queue}");
            assert_eq!(
                api_get(&b, &format!("/api/exchanges/{encoded}/{x}"))["type"],
                "topic"
            );
            assert!(admin(&["list", "queues"]).contains(&q));
            assert!(admin(&["list", "exchanges"]).contains(&x));
            let bindings = admin(&["list", "bindings"]);
            assert!(
                bindings.contains(&x) && bindings.contains("a.#"),
                "{bindings}"
            );

            let published = admin(&[
                "publish",
                "message",
                "-e",
                &x,
                "-k",
                "a.b",
                "-m",
                "from rabbitmqadmin",
            ]);
            assert!(published.contains("routed"), "{published}");
            let path = format!("/api/queues/{encoded}/{q}");
            assert!(eventually(20, || api_get(&b, &path)["messages_ready"] == 1).await);
            let got = admin(&[
                "get",
                "messages",
                "-q",
                &q,
                "-c",
                "1",
                "-a",
                "ack_requeue_false",
            ]);
            assert!(got.contains("from rabbitmqadmin"), "{got}");
            assert!(eventually(20, || api_get(&b, &path)["messages"] == 0).await);

            admin(&["delete", "queue", "--name", &q]);
            admin(&["delete", "exchange", "--name", &x]);
            assert_eq!(api(&b, "GET", &path, Some("guest:guest")).status, 404);
            assert!(!admin(&["list", "queues"]).contains(&q));
        }
        // Read-only commands that go through other endpoints.
        let nodes = run(&bin, &b, "/", &["list", "nodes"]);
        assert!(nodes.contains("warren@localhost"), "{nodes}");
        let vhosts = run(&bin, &b, "/", &["list", "vhosts"]);
        assert!(vhosts.contains(&other), "{vhosts}");
        ctl_with(&b, &["delete_vhost", &other]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmqadmin_exports_and_imports_definitions() {
    if skip_if_external("it needs Warren's management port") {
        return;
    }
    let Some(bin) = rabbitmqadmin() else {
        return;
    };
    for shards in SHARD_COUNTS {
        let dir = temp_dir("radm-defs");
        let file = dir.path().join("definitions.json");
        let file = file.to_str().expect("a UTF-8 path");
        let vhost = unique_name("radm-defs-vh");
        let q = unique_name("radm-defs-q");
        let x = unique_name("radm-defs-x");
        let source = Broker::start(shards);
        ctl_with(&source, &["add_vhost", &vhost]);
        ctl_with(
            &source,
            &["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"],
        );
        let admin = |b: &Broker, args: &[&str]| run(&bin, b, &vhost, args);
        admin(
            &source,
            &[
                "declare",
                "queue",
                "--name",
                &q,
                "--durable",
                "true",
                "--arguments",
                r#"{"x-max-length": 7}"#,
            ],
        );
        admin(
            &source,
            &["declare", "exchange", "--name", &x, "--type", "fanout"],
        );
        admin(
            &source,
            &[
                "declare",
                "binding",
                "--source",
                &x,
                "--destination-type",
                "queue",
                "--destination",
                &q,
                "--routing-key",
                "k",
            ],
        );
        admin(&source, &["definitions", "export", "--file", file]);
        let exported: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).expect("the exported file"))
                .expect("JSON");
        let has = |kind: &str, name: &str| {
            exported[kind]
                .as_array()
                .unwrap_or_else(|| panic!("{kind} in {exported}"))
                .iter()
                .any(|o| o["name"] == name && o["vhost"] == vhost.as_str())
        };
        assert!(has("queues", &q) && has("exchanges", &x), "{exported}");
        drop(source);

        let target = Broker::start(shards);
        run(
            &bin,
            &target,
            "/",
            &["definitions", "import", "--file", file],
        );
        let encoded = vhost.clone();
        let queue = api_get(&target, &format!("/api/queues/{encoded}/{q}"));
        assert_eq!(queue["durable"], true, "{queue}");
        assert_eq!(queue["arguments"]["x-max-length"], 7, "{queue}");
        let exchange = api_get(&target, &format!("/api/exchanges/{encoded}/{x}"));
        assert_eq!(exchange["type"], "fanout", "{exchange}");
        let bindings = api_get(&target, &format!("/api/bindings/{encoded}/e/{x}/q/{q}"));
        assert_eq!(bindings[0]["routing_key"], "k", "{bindings}");
        // The imported permissions let guest into the vhost and its queue.
        assert!(admin(&target, &["list", "queues"]).contains(&q));
    }
}
