//! The management API's users, vhosts, permissions, topic permissions,
//! policies, parameters and vhost limits against the real binary, with 1
//! and 2 shards: each endpoint allowed and refused (401 for a bad password
//! and for missing tags, as RabbitMQ 3.10's `not_authorised`), RabbitMQ's
//! status codes (201 created, 204 updated or deleted, 400, 404) and JSON,
//! and the changes in force over AMQP (a user made over the API logs in; a
//! deleted one is refused; a policy applies). They need Warren's
//! management port, so they skip against an external broker.

mod common;

use common::*;
use serde_json::{json, Value};

const NEEDS_API: &str = "it needs Warren's management port";

fn put(b: &Broker, path: &str, body: Value) -> u16 {
    let r = api_json(b, "PUT", path, &body);
    assert!(
        r.body.is_null() || r.status >= 400,
        "PUT {path}: {}",
        r.body
    );
    r.status
}

fn delete(b: &Broker, path: &str, auth: &str) -> ApiResponse {
    api_body(b, "DELETE", path, auth, "application/json", b"")
}

fn get_as(b: &Broker, path: &str, auth: &str) -> ApiResponse {
    api(b, "GET", path, Some(auth))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_created_updated_listed_and_deleted() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            assert_eq!(put(&b, "/api/users/u1", json!({"password": "pw1", "tags": "management"})), 201);
            assert_eq!(put(&b, "/api/users/u1", json!({"password": "pw2", "tags": ["monitoring"]})), 204);
            let u = api_get(&b, "/api/users/u1");
            assert_eq!(u["tags"], json!(["monitoring"]));
            assert_eq!(u["hashing_algorithm"], "rabbit_password_hashing_sha256");
            assert_eq!(u["limits"], json!({}));
            let names: Vec<String> = api_get(&b, "/api/users")
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["name"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(names, ["guest", "u1"]);
            let without = api_get(&b, "/api/users/without-permissions");
            assert_eq!(without.as_array().unwrap().len(), 1, "{without}");
            // A pre-hashed password, as RabbitMQ exports it.
            let hash = api_get(&b, "/api/users/u1")["password_hash"].clone();
            let r = api_json(&b, "PUT", "/api/users/u2", &json!({"password_hash": hash, "tags": ""}));
            assert_eq!(r.status, 201);
            assert_eq!(put(&b, "/api/permissions/%2F/u2", json!({"configure": ".*", "write": ".*", "read": ".*"})), 201);
            lapin_connect_as(&b, "u2", "pw2").await.expect("a pre-hashed password logs in");
            // Refusals as RabbitMQ's put_user words them.
            let r = api_json(&b, "PUT", "/api/users/u3", &json!({"password": "x"}));
            assert_eq!((r.status, r.body["reason"].clone()), (400, json!("tags_not_present")));
            let r = api_json(&b, "PUT", "/api/users/u3", &json!({"password_hash": "abc", "hashing_algorithm": "rabbit_password_hashing_md5", "tags": ""}));
            assert_eq!(r.status, 400, "{}", r.body);
            let r = api_body(&b, "PUT", "/api/users/u3", "guest:guest", "application/json", b"{nope");
            assert_eq!((r.status, r.body["reason"].clone()), (400, json!("not_json")));
            assert_eq!(api(&b, "GET", "/api/users/u3", Some("guest:guest")).status, 404);
            // Deleting a user closes its connections and refuses its logins.
            assert_eq!(delete(&b, "/api/users/u2", "guest:guest").status, 204);
            assert_eq!(delete(&b, "/api/users/u2", "guest:guest").status, 404);
            assert!(lapin_connect_as(&b, "u2", "pw2").await.is_err());
            // Only administrators; a bad password is 401 Login failed.
            assert_eq!(put(&b, "/api/users/mon", json!({"password": "m", "tags": "monitoring"})), 201);
            for (path, auth, reason) in [
                ("/api/users", "mon:m", "Not administrator user"),
                ("/api/users/u1", "mon:m", "Not administrator user"),
                ("/api/users", "guest:bad", "Login failed"),
            ] {
                let r = get_as(&b, path, auth);
                assert_eq!((r.status, r.body["reason"].as_str()), (401, Some(reason)), "{path} {auth}");
            }
            let r = api_body(&b, "PUT", "/api/users/x", "mon:m", "application/json", b"{}");
            assert_eq!(r.status, 401);
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhosts_and_permissions_are_put_and_deleted() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            assert_eq!(put(&b, "/api/vhosts/v1", json!({})), 201);
            assert_eq!(put(&b, "/api/vhosts/v1", json!({"description": "d"})), 204);
            assert_eq!(put(&b, "/api/users/u1", json!({"password": "pw", "tags": ""})), 201);
            let perm = json!({"configure": "^u1", "write": ".*", "read": ".*"});
            assert_eq!(put(&b, "/api/permissions/v1/u1", perm.clone()), 201);
            assert_eq!(put(&b, "/api/permissions/v1/u1", perm), 204);
            let r = api_json(&b, "PUT", "/api/permissions/v9/u1", &json!({"configure": "", "write": "", "read": ""}));
            assert_eq!((r.status, r.body["reason"].clone()), (400, json!("vhost_or_user_not_found")));
            let r = api_json(&b, "PUT", "/api/permissions/v1/u1", &json!({"configure": ".*"}));
            assert_eq!(r.status, 400, "{}", r.body);
            let p = api_get(&b, "/api/permissions/v1/u1");
            assert_eq!(p, json!({"user": "u1", "vhost": "v1", "configure": "^u1", "write": ".*", "read": ".*"}));
            assert_eq!(api_get(&b, "/api/users/u1/permissions").as_array().unwrap().len(), 1);
            assert_eq!(api_get(&b, "/api/vhosts/v1/permissions").as_array().unwrap().len(), 1);
            assert_eq!(api_get(&b, "/api/permissions").as_array().unwrap().len(), 2);
            assert_eq!(api(&b, "GET", "/api/vhosts/v9/permissions", Some("guest:guest")).status, 404);
            // In force over AMQP: u1 opens v1 and declares only u1* queues.
            let uri = format!("amqp://u1:pw@{}:{}/v1", b.host(), b.port());
            let conn = lapin::Connection::connect(&uri, Default::default()).await.expect("u1 opens v1");
            let ch = conn.create_channel().await.expect("channel");
            ch.queue_declare("u1.q".into(), Default::default(), Default::default()).await.expect("allowed");
            let refused = ch.queue_declare("other".into(), Default::default(), Default::default()).await;
            assert_lapin_code(refused, 403);
            // Topic permissions.
            let tp = json!({"exchange": "amq.topic", "write": "^u1", "read": ".*"});
            assert_eq!(put(&b, "/api/topic-permissions/v1/u1", tp.clone()), 201);
            assert_eq!(put(&b, "/api/topic-permissions/v1/u1", tp), 204);
            let t = api_get(&b, "/api/topic-permissions/v1/u1");
            assert_eq!(t[0]["write"], "^u1");
            assert_eq!(api_get(&b, "/api/topic-permissions").as_array().unwrap().len(), 1);
            assert_eq!(api_get(&b, "/api/users/u1/topic-permissions").as_array().unwrap().len(), 1);
            assert_eq!(api_get(&b, "/api/vhosts/v1/topic-permissions").as_array().unwrap().len(), 1);
            assert_eq!(delete(&b, "/api/topic-permissions/v1/u1/amq.topic", "guest:guest").status, 204);
            assert_eq!(api(&b, "GET", "/api/topic-permissions/v1/u1", Some("guest:guest")).status, 404);
            assert_eq!(delete(&b, "/api/permissions/v1/u1", "guest:guest").status, 204);
            assert_eq!(delete(&b, "/api/permissions/v1/u1", "guest:guest").status, 404);
            // Deleting the vhost takes everything in it and closes its connections.
            assert_eq!(delete(&b, "/api/vhosts/v1", "guest:guest").status, 204);
            assert_eq!(delete(&b, "/api/vhosts/v1", "guest:guest").status, 404);
            let list = ctl(&b, "list_vhosts");
            assert!(!list.lines().any(|l| l == "v1"), "{list}");
            // Administrators only.
            assert_eq!(put(&b, "/api/users/m", json!({"password": "m", "tags": "management"})), 201);
            for path in ["/api/permissions", "/api/topic-permissions", "/api/permissions/%2F/guest"] {
                let r = get_as(&b, path, "m:m");
                assert_eq!((r.status, r.body["error"].as_str()), (401, Some("not_authorised")), "{path}");
            }
            assert_eq!(api_body(&b, "PUT", "/api/vhosts/v2", "m:m", "application/json", b"").status, 401);
        })
        .await;
    }
}

#[test]
fn policies_follow_rabbitmq_s_tag_and_vhost_rules() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        assert_eq!(put(&b, "/api/vhosts/v1", json!({})), 201);
        assert_eq!(
            put(
                &b,
                "/api/users/pm",
                json!({"password": "p", "tags": "policymaker"})
            ),
            201
        );
        assert_eq!(
            put(
                &b,
                "/api/users/mg",
                json!({"password": "g", "tags": "management"})
            ),
            201
        );
        let all = json!({"configure": ".*", "write": ".*", "read": ".*"});
        assert_eq!(put(&b, "/api/permissions/v1/pm", all.clone()), 201);
        assert_eq!(put(&b, "/api/permissions/v1/mg", all), 201);
        let policy = json!({"pattern": "^lim", "definition": {"max-length": 1}, "priority": 3, "apply-to": "queues"});
        let as_user = |auth: &str, method: &str, path: &str, body: &Value| {
            api_body(
                &b,
                method,
                path,
                auth,
                "application/json",
                body.to_string().as_bytes(),
            )
        };
        assert_eq!(
            as_user("pm:p", "PUT", "/api/policies/v1/p1", &policy).status,
            201
        );
        assert_eq!(
            as_user("pm:p", "PUT", "/api/policies/v1/p1", &policy).status,
            204
        );
        // A policymaker without access to the vhost, a management user, a bad password.
        let r = as_user("pm:p", "PUT", "/api/policies/%2F/p1", &policy);
        assert_eq!(
            (r.status, r.body["reason"].as_str()),
            (401, Some("User not authorised to access object"))
        );
        let r = as_user("mg:g", "PUT", "/api/policies/v1/p2", &policy);
        assert_eq!(r.status, 401);
        assert_eq!(
            as_user("pm:x", "GET", "/api/policies", &Value::Null).status,
            401
        );
        // RabbitMQ's refusals.
        let bad = json!({"pattern": "^x", "definition": {"ha-mode": "all"}});
        let r = as_user("guest:guest", "PUT", "/api/policies/v1/p3", &bad);
        assert_eq!(r.status, 400, "{}", r.body);
        let r = as_user("guest:guest", "PUT", "/api/policies/v9/p3", &policy);
        assert_eq!(
            (r.status, r.body["reason"].clone()),
            (404, json!("vhost_not_found"))
        );
        // Reads: the management user sees its vhost's policies, filtered lists.
        let p = api_get(&b, "/api/policies/v1/p1");
        assert_eq!(
            p,
            json!({"vhost": "v1", "name": "p1", "pattern": "^lim", "apply-to": "queues", "definition": {"max-length": 1}, "priority": 3})
        );
        assert_eq!(
            get_as(&b, "/api/policies/v1", "mg:g")
                .body
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            get_as(&b, "/api/policies", "mg:g")
                .body
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(get_as(&b, "/api/policies/%2F", "mg:g").status, 401);
        assert_eq!(
            api(&b, "GET", "/api/policies/v9", Some("guest:guest")).status,
            404
        );
        // Policies as parameters (component `policy`), read-only there.
        let params = api_get(&b, "/api/parameters/policy");
        assert_eq!(params[0]["component"], "policy");
        assert_eq!(params[0]["value"]["pattern"], "^lim");
        let r = as_user(
            "guest:guest",
            "PUT",
            "/api/parameters/policy/v1/p1",
            &json!({"value": {}}),
        );
        assert_eq!(
            (r.status, r.body["reason"].clone()),
            (400, json!("policies may not be set using this method"))
        );
        assert_eq!(
            api_get(&b, "/api/parameters/federation-upstream"),
            json!([])
        );
        assert_eq!(get_as(&b, "/api/parameters", "mg:g").status, 401);
        assert_eq!(api_get(&b, "/api/global-parameters"), json!([]));
        // The policy is in force: warren ctl shows it on a matching queue.
        assert!(ctl_with(&b, &["list_policies", "-p", "v1"]).contains("p1"));
        assert_eq!(delete(&b, "/api/policies/v1/p1", "pm:p").status, 204);
        assert_eq!(delete(&b, "/api/policies/v1/p1", "pm:p").status, 404);
        assert!(!ctl_with(&b, &["list_policies", "-p", "v1"]).contains("p1"));
    }
}

#[test]
fn vhost_limits_are_set_listed_and_cleared() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        assert_eq!(put(&b, "/api/vhosts/v1", json!({})), 201);
        assert_eq!(api_get(&b, "/api/vhost-limits"), json!([]));
        assert_eq!(
            put(&b, "/api/vhost-limits/v1/max-queues", json!({"value": 2})),
            204
        );
        assert_eq!(
            put(
                &b,
                "/api/vhost-limits/v1/max-connections",
                json!({"value": 5})
            ),
            204
        );
        let expected = json!([{"vhost": "v1", "value": {"max-connections": 5, "max-queues": 2}}]);
        assert_eq!(api_get(&b, "/api/vhost-limits"), expected);
        assert_eq!(api_get(&b, "/api/vhost-limits/v1"), expected);
        assert_eq!(
            api_get(&b, "/api/parameters/vhost-limits")[0]["value"]["max-queues"],
            2
        );
        assert!(ctl_with(&b, &["list_vhost_limits", "-p", "v1"]).contains("\"max-queues\":2"));
        let r = api_json(
            &b,
            "PUT",
            "/api/vhost-limits/v1/max-channels",
            &json!({"value": 1}),
        );
        assert_eq!(r.status, 400, "{}", r.body);
        let r = api_json(
            &b,
            "PUT",
            "/api/vhost-limits/v1/max-queues",
            &json!({"value": "x"}),
        );
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(
            api_json(
                &b,
                "PUT",
                "/api/vhost-limits/v9/max-queues",
                &json!({"value": 1})
            )
            .status,
            404
        );
        assert_eq!(
            api(&b, "GET", "/api/vhost-limits/v9", Some("guest:guest")).status,
            404
        );
        assert_eq!(
            put(
                &b,
                "/api/users/m",
                json!({"password": "m", "tags": "management"})
            ),
            201
        );
        let r = api_body(
            &b,
            "PUT",
            "/api/vhost-limits/v1/max-queues",
            "m:m",
            "application/json",
            b"{\"value\":1}",
        );
        assert_eq!(r.status, 401);
        assert_eq!(
            get_as(&b, "/api/vhost-limits", "m:m").body,
            json!([]),
            "m sees no vhost"
        );
        assert_eq!(
            delete(&b, "/api/vhost-limits/v1/max-queues", "guest:guest").status,
            204
        );
        assert_eq!(
            api_get(&b, "/api/vhost-limits/v1")[0]["value"],
            json!({"max-connections": 5})
        );
        assert_eq!(
            delete(&b, "/api/parameters/vhost-limits/v1/limits", "guest:guest").status,
            204
        );
        assert_eq!(api_get(&b, "/api/vhost-limits/v1"), json!([]));
    }
}
