//! Unit tests of the import plan: valid files, the first wrong entry
//! named, what exists left out.
use super::*;
use crate::broker::auth::password;
use crate::management::definitions::QueueEntry;
use crate::shard::metadata::Metadata;
use serde_json::json;

fn snapshot() -> Snapshot {
    let mut meta = Metadata::new();
    meta.auth = crate::broker::auth::AuthStore::new(crate::broker::auth::AuthDefs::initial(
        "guest",
        &password::hash("guest"),
    ));
    Snapshot::of(&meta)
}

fn file() -> Value {
    json!({
        "users": [{"name": "u1", "password_hash": password::hash("p"),
                   "hashing_algorithm": password::SHA256, "tags": "management,policymaker"}],
        "vhosts": [{"name": "v1"}],
        "permissions": [{"user": "u1", "vhost": "v1", "configure": ".*", "write": ".*", "read": ".*"}],
        "parameters": [{"vhost": "v1", "component": "vhost-limits", "name": "limits", "value": {"max-queues": 10}}],
        "global_parameters": [{"name": "cluster_name", "value": "rabbit@x"}],
        "policies": [{"vhost": "v1", "name": "ttl", "pattern": "^q", "apply-to": "queues",
                      "definition": {"message-ttl": 1000}, "priority": 1}],
        "queues": [{"name": "q1", "vhost": "v1", "durable": true, "auto_delete": false,
                    "arguments": {"x-max-length": 5}},
                   {"name": "amq.skipped", "vhost": "v1", "durable": true, "auto_delete": false, "arguments": {}}],
        "exchanges": [{"name": "x1", "vhost": "v1", "type": "topic", "durable": true,
                       "auto_delete": false, "internal": false, "arguments": {}}],
        "bindings": [{"source": "x1", "vhost": "v1", "destination": "q1", "destination_type": "queue",
                      "routing_key": "a.#", "arguments": {}},
                     {"source": "amq.fanout", "vhost": "v1", "destination": "x1",
                      "destination_type": "exchange", "routing_key": "", "arguments": {}}],
    })
}

#[test]
fn a_valid_file_plans_every_change() {
    let p = plan(&file(), &snapshot(), None, 2).unwrap();
    assert_eq!(p.vhosts, ["v1"]);
    assert_eq!(p.users[0].tags, ["management", "policymaker"]);
    assert_eq!(p.limits[0].1.max_queues, Some(10));
    assert_eq!(
        (p.queues.len(), p.exchanges.len(), p.bindings.len()),
        (1, 1, 2)
    );
    assert_eq!(p.notes.len(), 2, "{:?}", p.notes);
    assert_eq!(p.changes(), 9);
}

#[test]
fn the_first_wrong_entry_is_named() {
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/queues/0/arguments",
            json!({"x-max-length": "many"}),
            "queues[0] (name \"q1\", vhost \"v1\")",
        ),
        (
            "/exchanges/0/type",
            json!("x-no-such-type"),
            "exchanges[0] (name \"x1\", vhost \"v1\")",
        ),
        (
            "/users/0/hashing_algorithm",
            json!("rabbit_password_hashing_md5"),
            "unsupported hashing_algorithm",
        ),
        (
            "/policies/0/definition",
            json!({"ha-mode": "all"}),
            "policies[0] (name \"ttl\", vhost \"v1\")",
        ),
        (
            "/bindings/0/destination",
            json!("nowhere"),
            "no queue 'nowhere' in vhost 'v1'",
        ),
        (
            "/permissions/0/vhost",
            json!("v9"),
            "virtual host \"v9\" does not exist",
        ),
        (
            "/parameters/0/component",
            json!("federation-upstream"),
            "component federation-upstream not found",
        ),
    ];
    for (pointer, value, expected) in cases {
        let mut f = file();
        *f.pointer_mut(pointer).unwrap() = value;
        let e = plan(&f, &snapshot(), None, 2).unwrap_err();
        assert!(e.contains(expected), "{pointer}: {e}");
    }
    let mut f = file();
    f["parameters"][0]["value"]["max-queues"] = json!(0);
    let e = plan(&f, &snapshot(), None, 2).unwrap_err();
    assert!(
        e.starts_with("Adding 1 queue(s) to virtual host \"v1\""),
        "{e}"
    );
}

#[test]
fn what_exists_is_not_planned_again() {
    let mut meta = Metadata::new();
    let mut v1 = crate::shard::metadata::VhostMeta::new(ShortStr::from_static("v1"));
    v1.limits.max_queues = Some(10);
    meta.vhosts.insert(crate::broker::vhost::VhostId(1), v1);
    let mut s = Snapshot::of(&meta);
    s.auth = snapshot().auth;
    s.queues.push(QueueEntry {
        vhost: "v1".into(),
        name: "q1".into(),
        durable: false,
        auto_delete: false,
        exclusive: false,
        arguments: Default::default(),
    });
    let p = plan(&file(), &s, None, 2).unwrap();
    assert!(p.vhosts.is_empty() && p.queues.is_empty() && p.limits.is_empty());
    // A per-vhost import reads neither users nor the entries' vhosts.
    let mut f = file();
    f["exchanges"][0]["vhost"] = json!("elsewhere");
    let p = plan(&f, &s, Some("v1"), 2).unwrap();
    assert!(p.users.is_empty() && p.permissions.is_empty());
    assert_eq!(p.exchanges[0].0, "v1");
}
