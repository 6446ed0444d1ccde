//! Definitions export and import (`/api/definitions`, `warren ctl
//! export_definitions` / `import_definitions`) against the real binary,
//! with 1 and 2 shards: a file exported by RabbitMQ 3.10.8
//! (`tests/fixtures/rabbitmq_definitions.json`: a vhost with limits, a
//! user with tags, permissions, topic permissions, a policy, a classic and
//! a quorum queue with arguments, a topic and a headers exchange, queue,
//! headers and exchange-to-exchange bindings) imports into the same
//! objects and its user logs in over AMQP with its password; a file with
//! one bad entry changes nothing and the error names the entry; importing
//! twice is importing once; export → fresh broker → import → export gives
//! the same document; imported definitions survive a restart. They need
//! Warren's management port, so they skip against an external broker.

mod common;

use common::*;
use lapin::options::QueueDeclareOptions;
use serde_json::{json, Value};

const NEEDS_API: &str = "it needs Warren's management port";

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/rabbitmq_definitions.json"))
        .expect("the RabbitMQ fixture is JSON")
}

fn import(b: &Broker, path: &str, file: &Value) -> ApiResponse {
    api_json(b, "POST", path, file)
}

fn export(b: &Broker) -> Value {
    api_get(b, "/api/definitions")
}

/// The objects of a definitions document, each list sorted, without the
/// fields one side writes and the other does not (RabbitMQ's
/// `rabbitmqctl` export writes a queue's `type` and a vhost's metadata;
/// the management export an exchange's `internal`).
fn objects(doc: &Value, keep: impl Fn(&Value) -> bool) -> Value {
    let mut out = serde_json::Map::new();
    for key in [
        "users",
        "vhosts",
        "permissions",
        "topic_permissions",
        "parameters",
        "policies",
        "queues",
        "exchanges",
        "bindings",
    ] {
        let mut items: Vec<Value> = doc[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key} in {doc}"))
            .iter()
            .filter(|v| keep(v))
            .map(|v| {
                let mut v = v.clone();
                let o = v.as_object_mut().expect("an object");
                if key == "queues" {
                    o.remove("type");
                }
                if key == "vhosts" {
                    o.retain(|k, _| k == "name");
                }
                if key == "exchanges" {
                    o.remove("internal");
                }
                v
            })
            .collect();
        items.sort_by_key(|v| v.to_string());
        out.insert(key.into(), Value::Array(items));
    }
    Value::Object(out)
}

/// Whether an entry is one of the fixture's own (not guest, not `/`).
fn ours(v: &Value) -> bool {
    ["name", "vhost", "user"]
        .iter()
        .any(|k| v[*k].as_str().is_some_and(|s| s.starts_with("defs_")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_export_imports_into_the_same_objects_and_its_user_logs_in() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let r = import(&b, "/api/definitions", &fixture());
            assert_eq!(r.status, 204, "import: {}", r.body);
            assert_eq!(
                objects(&export(&b), ours),
                objects(&fixture(), ours),
                "shards {shards}"
            );
            // The user logs in with the password it had in RabbitMQ, and
            // its permissions apply in the imported vhost.
            let uri = format!(
                "amqp://defs_user:defs_pass@{}:{}/defs_vh",
                b.host(),
                b.port()
            );
            let conn = lapin::Connection::connect(&uri, lapin::ConnectionProperties::default())
                .await
                .expect("the imported user logs in with its RabbitMQ password");
            let ch = conn.create_channel().await.expect("channel");
            for q in ["defs_q1", "defs_q2"] {
                ch.queue_declare(q.into(), passive(), Default::default())
                    .await
                    .unwrap_or_else(|e| panic!("{q} exists: {e}"));
            }
            let wrong = format!("amqp://defs_user:nope@{}:{}/defs_vh", b.host(), b.port());
            assert!(
                lapin::Connection::connect(&wrong, lapin::ConnectionProperties::default())
                    .await
                    .is_err(),
                "a wrong password is refused"
            );
            // The policy and the limits are in force: warren ctl shows them.
            let policies = ctl_with(&b, &["list_policies", "-p", "defs_vh"]);
            assert!(policies.contains("defs_policy"), "{policies}");
            let limits = ctl_with(&b, &["list_vhost_limits", "-p", "defs_vh"]);
            assert!(limits.contains("\"max-queues\":100"), "{limits}");
        })
        .await;
    }
}

#[test]
fn a_file_with_one_bad_entry_changes_nothing_and_names_the_entry() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let before = export(&b);
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "/queues/1/arguments",
                json!({"x-queue-type": "quorum", "x-max-priority": 5}),
                "queues[1] (name \"defs_q2\", vhost \"defs_vh\")",
            ),
            (
                "/exchanges/0/type",
                json!("x-consistent-hash"),
                "exchanges[0] (name \"defs_x\", vhost \"defs_vh\")",
            ),
            (
                "/users/0/hashing_algorithm",
                json!("rabbit_password_hashing_md5"),
                "users[0] (name \"defs_user\")",
            ),
            (
                "/policies/0/definition",
                json!({"ha-mode": "all"}),
                "policies[0] (name \"defs_policy\", vhost \"defs_vh\")",
            ),
            (
                "/bindings/2/destination",
                json!("defs_missing"),
                "no queue 'defs_missing' in vhost 'defs_vh'",
            ),
            (
                "/permissions/0/vhost",
                json!("defs_other"),
                "virtual host \"defs_other\" does not exist",
            ),
        ];
        for (pointer, value, named) in cases {
            let mut file = fixture();
            *file.pointer_mut(pointer).expect("pointer") = value;
            let r = import(&b, "/api/definitions", &file);
            assert_eq!(r.status, 400, "{pointer}: {}", r.body);
            assert_eq!(r.body["error"], "bad_request");
            let reason = r.body["reason"].as_str().expect("a reason");
            assert!(reason.contains(named), "{pointer}: {reason}");
            assert_eq!(export(&b), before, "{pointer}: the broker changed");
        }
        let r = api_body(
            &b,
            "POST",
            "/api/definitions",
            "guest:guest",
            "application/json",
            b"{",
        );
        assert_eq!(
            (r.status, r.body["reason"].clone()),
            (400, json!("failed_to_parse_json"))
        );
        // The same through warren ctl: exit status 65, nothing changed.
        let dir = temp_dir("defs-bad");
        let path = dir.path().join("bad.json");
        let mut file = fixture();
        file["queues"][0]["arguments"]["x-max-length"] = json!("lots");
        std::fs::write(&path, file.to_string()).expect("write");
        let out = ctl_output(&b, &["import_definitions", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(65), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("queues[0] (name \"defs_q1\""), "{err}");
        assert_eq!(export(&b), before, "ctl import changed the broker");
    }
}

#[test]
fn importing_twice_is_importing_once() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let dir = temp_dir("defs-twice");
        let path = dir.path().join("defs.json");
        std::fs::write(&path, fixture().to_string()).expect("write");
        let first = ctl_output(&b, &["import_definitions", path.to_str().unwrap()]);
        assert!(first.status.success(), "{first:?}");
        let once = export(&b);
        let second = ctl_output(&b, &["import_definitions", path.to_str().unwrap()]);
        assert!(second.status.success(), "{second:?}");
        assert!(
            String::from_utf8_lossy(&second.stdout).contains("Imported definitions: 0 change(s)"),
            "{second:?}"
        );
        assert_eq!(export(&b), once, "shards {shards}");
        let r = import(&b, "/api/definitions", &fixture());
        assert_eq!(r.status, 204);
        assert_eq!(export(&b), once);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_into_a_fresh_broker_gives_the_same_definitions() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let a = Broker::start(shards);
        within(async {
            assert_eq!(import(&a, "/api/definitions", &fixture()).status, 204);
            // Objects made over AMQP are exported too; an exclusive queue is not.
            let conn = lapin_connect(&a).await;
            let ch = conn.create_channel().await.expect("channel");
            let mut args = lapin::types::FieldTable::default();
            args.insert(
                "x-message-ttl".into(),
                lapin::types::AMQPValue::LongLongInt(5000),
            );
            ch.queue_declare("rt_q".into(), durable(), args)
                .await
                .expect("declare");
            let excl = QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            };
            ch.queue_declare("rt_excl".into(), excl, Default::default())
                .await
                .expect("declare");
            bind_queue(&ch, "rt_q", "amq.topic", "rt.#").await;
            let first = export(&a);
            let names: Vec<&str> = first["queues"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|q| q["name"].as_str())
                .collect();
            assert!(
                names.contains(&"rt_q") && !names.contains(&"rt_excl"),
                "{names:?}"
            );
            let b = Broker::start(shards);
            assert_eq!(import(&b, "/api/definitions", &first).status, 204);
            assert_eq!(objects(&export(&b), |_| true), objects(&first, |_| true));
            // Per vhost: that vhost's objects only, without vhost fields.
            let v = api_get(&a, "/api/definitions/defs_vh");
            assert!(
                v.get("users").is_none() && v["queues"][0].get("vhost").is_none(),
                "{v}"
            );
            assert_eq!(v["queues"].as_array().unwrap().len(), 2);
            let c = Broker::start(shards);
            assert_eq!(
                api_json(&c, "PUT", "/api/vhosts/defs_vh", &json!({})).status,
                201
            );
            assert_eq!(import(&c, "/api/definitions/defs_vh", &v).status, 204);
            assert_eq!(api_get(&c, "/api/definitions/defs_vh"), v);
            let r = api(&c, "GET", "/api/definitions/defs_none", Some("guest:guest"));
            assert_eq!(
                (r.status, r.body["reason"].clone()),
                (400, json!("vhost_not_found"))
            );
            assert_eq!(import(&c, "/api/definitions/defs_none", &v).status, 404);
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_definitions_survive_a_restart() {
    if skip_if_external("it restarts the broker") {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("defs-restart");
        let mut b = Broker::start_in(shards, dir.path());
        let r = import(&b, "/api/definitions", &fixture());
        assert_eq!(r.status, 204, "{}", r.body);
        let before = export(&b);
        b.stop();
        let b = Broker::start_in(shards, dir.path());
        within(async {
            assert_eq!(export(&b), before, "shards {shards}");
            let uri = format!(
                "amqp://defs_user:defs_pass@{}:{}/defs_vh",
                b.host(),
                b.port()
            );
            lapin::Connection::connect(&uri, lapin::ConnectionProperties::default())
                .await
                .expect("the imported user logs in after a restart");
        })
        .await;
    }
}

#[test]
fn warren_ctl_exports_to_a_file_or_stdout_and_imports_from_a_file() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let a = Broker::start(shards);
        assert_eq!(import(&a, "/api/definitions", &fixture()).status, 204);
        let dir = temp_dir("defs-ctl");
        let path = dir.path().join("out.json");
        let out = ctl_output(&a, &["export_definitions", path.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout)
            .starts_with("Exporting definitions in JSON to a file at"));
        let file: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
        assert_eq!(file, export(&a));
        let stdout = ctl_output(&a, &["export_definitions", "-"]);
        let piped: Value =
            serde_json::from_slice(&stdout.stdout).expect("stdout is the JSON alone");
        assert_eq!(piped, file);
        let b = Broker::start(shards);
        let out = ctl_output(&b, &["import_definitions", path.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(objects(&export(&b), |_| true), objects(&file, |_| true));
        let usage = ctl_output(&b, &["export_definitions"]);
        assert_eq!(usage.status.code(), Some(64));
    }
}

#[test]
fn definitions_are_for_administrators() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    let b = Broker::start(1);
    let r = api_json(
        &b,
        "PUT",
        "/api/users/mgmt_only",
        &json!({"password": "pw", "tags": "management"}),
    );
    assert_eq!(r.status, 201);
    for method in ["GET", "POST"] {
        let r = api_body(
            &b,
            method,
            "/api/definitions",
            "mgmt_only:pw",
            "application/json",
            b"{}",
        );
        assert_eq!(r.status, 401, "{method}");
        assert_eq!(
            r.body,
            json!({"error": "not_authorised", "reason": "Not administrator user"})
        );
        let r = api_body(
            &b,
            method,
            "/api/definitions",
            "guest:wrong",
            "application/json",
            b"{}",
        );
        assert_eq!(r.status, 401, "{method}");
        assert_eq!(r.body["reason"], "Login failed");
    }
    // The RabbitMQ UI's upload: a multipart form with the file in `file`.
    let file = fixture().to_string();
    let body = format!(
        "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.json\"\r\nContent-Type: application/json\r\n\r\n{file}\r\n--b0undary--\r\n"
    );
    let r = api_body(
        &b,
        "POST",
        "/api/definitions",
        "guest:guest",
        "multipart/form-data; boundary=b0undary",
        body.as_bytes(),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(objects(&export(&b), ours), objects(&fixture(), ours));
}
