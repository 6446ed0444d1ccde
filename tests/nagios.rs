//! The Nagios checks of Debian's `nagios-plugins-rabbitmq` (Perl scripts,
//! `/usr/bin/check_rabbitmq_*`) against the real binary with 1 and 2
//! shards, on its management port: aliveness, overview, objects,
//! connections, queue, watermark and partition answer OK, and the queue
//! check goes WARNING / CRITICAL on a queue holding more messages than its
//! thresholds, so the checks read Warren's figures; the connections
//! check's receive / send rates come from the connection's octets. The node checks ask
//! for `/api/nodes/rabbit@NODE`, so the broker runs with `--node-name
//! rabbit@localhost` and the checks with `--node localhost`.
//! `check_rabbitmq_server` reads memory, "processes" (Warren's threads
//! against their limit: Erlang's process counts have no counterpart),
//! descriptors and sockets from `/api/nodes`, OK and WARNING.
//! The plugins are looked for in `$WARREN_NAGIOS_PLUGINS`, else /usr/bin
//! and /usr/lib/nagios/plugins; when missing the test fails under
//! `CI=true` (`.ci/run` installs them) and is skipped with a message
//! otherwise.

mod common;

use common::*;
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;

/// The folder holding `check_rabbitmq_aliveness`, or None (skipped; a
/// failure under `CI=true`).
fn plugins() -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = match std::env::var_os("WARREN_NAGIOS_PLUGINS") {
        Some(d) => vec![PathBuf::from(d)],
        None => vec!["/usr/bin".into(), "/usr/lib/nagios/plugins".into()],
    };
    if let Some(d) = dirs
        .iter()
        .find(|d| d.join("check_rabbitmq_aliveness").is_file())
    {
        return Some(d.clone());
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the Nagios checks are not in {dirs:?} (CI=true: `apt-get install nagios-plugins-rabbitmq`, \
         or set WARREN_NAGIOS_PLUGINS)"
    );
    eprintln!(
        "skipped: the Nagios checks are not in {dirs:?} (`apt-get install \
         nagios-plugins-rabbitmq`, or set WARREN_NAGIOS_PLUGINS)"
    );
    None
}

/// Runs `check_rabbitmq_NAME` against the broker's management port as
/// guest; its exit status (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) and
/// its output.
fn check(dir: &std::path::Path, b: &Broker, name: &str, args: &[&str]) -> (i32, String) {
    let admin = admin_addr(b);
    let (host, port) = admin.rsplit_once(':').expect("host:port");
    let out = Command::new(dir.join(format!("check_rabbitmq_{name}")))
        .args(["-H", host, "--port", port, "-u", "guest", "-p", "guest"])
        .arg("--noproxy")
        .args(args)
        .output()
        .expect("run the check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Runs a check that must answer OK with `text` in its first line.
#[track_caller]
fn assert_ok(dir: &std::path::Path, b: &Broker, name: &str, args: &[&str], text: &str) {
    let (code, out) = check(dir, b, name, args);
    assert_eq!(code, 0, "check_rabbitmq_{name} {args:?}: {out}");
    assert!(out.contains(text), "check_rabbitmq_{name} {args:?}: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nagios_checks_read_warrens_management_api() {
    if skip_if_external("it needs Warren's management port and --node-name") {
        return;
    }
    let Some(dir) = plugins() else {
        return;
    };
    for shards in SHARD_COUNTS {
        let b = Broker::start_with_args(shards, &["--node-name", "rabbit@localhost"]);
        let node = ["--node", "localhost"];
        assert_ok(
            &dir,
            &b,
            "aliveness",
            &["--vhost", "/"],
            "RABBITMQ_ALIVENESS OK - vhost: /",
        );
        assert_ok(
            &dir,
            &b,
            "watermark",
            &node,
            "RABBITMQ_WATERMARK OK - mem_alarm disk_free_alarm",
        );
        assert_ok(
            &dir,
            &b,
            "partition",
            &node,
            "RABBITMQ_PARTITION OK - No Partitions",
        );
        assert_ok(
            &dir,
            &b,
            "objects",
            &[],
            "RABBITMQ_OBJECTS OK - Gathered Object Counts",
        );

        // A queue holding three messages.
        let q = unique_name("nagios-q");
        let path = format!("/api/queues/%2F/{q}");
        assert_eq!(api_json(&b, "PUT", &path, &json!({})).status, 201);
        for i in 0..3 {
            let publish = json!({"routing_key": q, "payload": format!("m{i}"),
                                 "payload_encoding": "string", "properties": {}});
            let r = api_json(
                &b,
                "POST",
                "/api/exchanges/%2F/amq.default/publish",
                &publish,
            );
            assert_eq!(r.body["routed"], true, "{}", r.body);
        }
        assert!(eventually(20, || api_get(&b, &path)["messages"] == 3).await);
        let queue = ["--queue", q.as_str()];
        assert_ok(
            &dir,
            &b,
            "queue",
            &[&queue[..], &["-w", "10", "-c", "20"]].concat(),
            "messages OK (3) messages_ready OK (3) messages_unacknowledged OK (0) consumers OK (0)",
        );
        let (code, out) = check(
            &dir,
            &b,
            "queue",
            &[&queue[..], &["-w", "2", "-c", "5"]].concat(),
        );
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("RABBITMQ_QUEUE WARNING - messages WARNING (3)"),
            "{out}"
        );
        let (code, out) = check(
            &dir,
            &b,
            "queue",
            &[&queue[..], &["-w", "1", "-c", "2"]].concat(),
        );
        assert_eq!(code, 2, "{out}");
        assert!(
            out.contains("RABBITMQ_QUEUE CRITICAL - messages CRITICAL (3)"),
            "{out}"
        );
        // The overview counts them too (other tests' queues are not here:
        // the broker is this test's own).
        assert_ok(
            &dir,
            &b,
            "overview",
            &[],
            "messages OK (3) messages_ready OK (3) messages_unacknowledged OK (0)",
        );
        let (code, out) = check(&dir, &b, "overview", &["-w", "1,-1,-1", "-c", "2,-1,-1"]);
        assert_eq!(code, 2, "{out}");
        assert!(out.contains("messages CRITICAL (3)"), "{out}");

        // One AMQP connection, listed once the broker has it.
        let conn = lapin_connect(&b).await;
        assert!(
            eventually(20, || {
                check(&dir, &b, "connections", &[])
                    .1
                    .contains("connections OK (1)")
            })
            .await
        );
        assert_ok(
            &dir,
            &b,
            "connections",
            &["--clientuser", "guest"],
            "RABBITMQ_CONNECTIONS OK - connections OK (1) connections_notrunning OK (0)",
        );
        let (code, out) = check(&dir, &b, "connections", &["-w", "0", "-c", "0"]);
        assert_eq!(code, 2, "{out}");
        assert!(out.contains("connections CRITICAL (1)"), "{out}");
        // Octets: 100 KB published on the connection show in its
        // recv_oct, and the next check rates them against the sample the
        // checks above left (Perl warned of undefined rates before).
        let ch = confirm_channel(&conn).await;
        let q2 = unique_name("nagios-oct");
        declare_queue(&ch, &q2, false, None).await;
        let bodies: Vec<String> = (0..10)
            .map(|i| padded_body(&"x".repeat(10_000), i))
            .collect();
        publish_confirmed(&ch, &q2, &bodies, lapin::BasicProperties::default()).await;
        let listed = api_get(&b, "/api/connections");
        assert!(
            listed[0]["recv_oct"].as_u64().unwrap() >= 100_000,
            "{listed}"
        );
        assert!(listed[0]["send_oct"].as_u64().unwrap() > 0, "{listed}");
        let (code, out) = check(&dir, &b, "connections", &[]);
        assert_eq!(code, 0, "{out}");
        assert!(!out.contains("uninitialized"), "{out}");
        let rate = |name: &str| -> u64 {
            let after = out.split(&format!("{name} OK (")).nth(1).expect(name);
            after.split(')').next().unwrap().parse().expect(name)
        };
        assert!(rate("receive_rate") > 0 && rate("send_rate") > 0, "{out}");
        assert_eq!(
            api_json(&b, "DELETE", &format!("/api/queues/%2F/{q2}"), &json!({})).status,
            204
        );
        // The server check, while a connection is open (a 0 reads as
        // "Unable to get values", as it would from RabbitMQ): memory
        // against the high watermark, threads against their limit (Warren's
        // `proc_used` / `proc_total`), descriptors, sockets.
        let node_json = api_get(&b, "/api/nodes/rabbit@localhost");
        let n = |k: &str| {
            node_json[k]
                .as_u64()
                .unwrap_or_else(|| panic!("{k}: {node_json}"))
        };
        assert!(
            n("proc_used") > shards as u64,
            "a thread per shard and more: {node_json}"
        );
        assert!(n("proc_total") > n("proc_used"), "{node_json}");
        assert_eq!(n("sockets_used"), 1, "{node_json}");
        assert_eq!(n("sockets_total"), n("fd_total"), "{node_json}");
        let (code, out) = check(&dir, &b, "server", &node);
        assert_eq!(code, 0, "{out}");
        for part in ["Memory OK (", "Process OK (", "FD OK (", "Sockets OK ("] {
            assert!(out.contains(part), "{part}: {out}");
        }
        let (code, out) = check(
            &dir,
            &b,
            "server",
            &[&node[..], &["-w", "80,80,0,80", "-c", "90,90,90,90"]].concat(),
        );
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("FD WARNING ("), "{out}");
        conn.close(200, "bye".into()).await.ok();
        assert_eq!(api_json(&b, "DELETE", &path, &json!({})).status, 204);
    }
}
