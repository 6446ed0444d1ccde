//! The management API's writes and vhosts against the real binary, with 1
//! and 2 shards: every vhost in the listings (and a user sees the vhosts
//! they have permissions in), PUT queues and exchanges (201 / 204, an
//! inequivalent redeclare 400 with RabbitMQ's text), bindings (POST with
//! `Location`, GET and DELETE by properties key), publish and get,
//! closing a connection, `/api/nodes` and the aliveness test — with the
//! 401s, 404s and 400s RabbitMQ 3.10 answers. Each result is checked over
//! AMQP too (the API and AMQP clients share the broker's checks). These
//! need Warren's management port, so they skip against an external broker.

mod common;

use common::raw::RawConn;
use common::*;
use serde_json::{json, Value};

const NEEDS_API: &str = "it needs Warren's management port";
const GUEST: Option<&str> = Some("guest:guest");

fn send(b: &Broker, method: &str, path: &str, body: Value) -> ApiResponse {
    api_send(b, method, path, GUEST, Some(&body), &[])
}

#[track_caller]
fn ok(b: &Broker, words: &[&str]) {
    let (ok, text) = broker_ctl(b, words);
    assert!(ok, "{words:?}: {text}");
}

fn names(v: &Value, field: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("an array: {v}"))
        .iter()
        .map(|i| i[field].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_vhost_is_listed_and_users_see_the_vhosts_they_may_use() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let v = unique_name("mapi-vh");
        ok(&b, &["add_vhost", &v]);
        ok(
            &b,
            &["set_permissions", "-p", &v, "guest", ".*", ".*", ".*"],
        );
        let ve = v.replace('/', "%2F");
        let q = unique_name("mapi-vq");
        let root_q = unique_name("mapi-rq");
        for (vhost, name) in [(ve.as_str(), &q), ("%2F", &root_q)] {
            let r = send(
                &b,
                "PUT",
                &format!("/api/queues/{vhost}/{name}"),
                json!({"durable": true}),
            );
            assert_eq!(r.status, 201, "{}", r.body);
        }
        // The queue is in the vhost, for AMQP clients too.
        within(async {
            let uri = format!("amqp://guest:guest@{}/{}", b.addr(), ve);
            let conn = lapin::Connection::connect(&uri, Default::default())
                .await
                .expect("connect to the vhost");
            let ch = conn.create_channel().await.expect("channel");
            ch.queue_declare(q.as_str().into(), passive(), Default::default())
                .await
                .expect("the queue exists in the vhost");
            conn.close(200, "bye".into()).await.ok();
        })
        .await;

        let all = api_get(&b, "/api/queues");
        let find = |name: &str| {
            all.as_array()
                .unwrap()
                .iter()
                .find(|i| i["name"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("{name} in {all}"))
        };
        assert_eq!(find(&q)["vhost"], json!(v));
        assert_eq!(find(&root_q)["vhost"], json!("/"));
        assert_eq!(
            names(&api_get(&b, &format!("/api/queues/{ve}")), "name"),
            vec![q.clone()]
        );
        assert_eq!(
            api_get(&b, &format!("/api/queues/{ve}/{q}"))["vhost"],
            json!(v)
        );
        let exchanges = api_get(&b, &format!("/api/exchanges/{ve}"));
        assert!(exchanges
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["vhost"] == json!(v)));
        assert!(names(&exchanges, "name").contains(&"amq.topic".to_string()));
        let bindings = api_get(&b, &format!("/api/bindings/{ve}"));
        assert_eq!(bindings[0]["destination"], json!(q), "{bindings}");
        assert_eq!(bindings[0]["vhost"], json!(v));
        let vhosts = names(&api_get(&b, "/api/vhosts"), "name");
        assert!(
            vhosts.contains(&"/".to_string()) && vhosts.contains(&v),
            "{vhosts:?}"
        );
        assert_eq!(api_get(&b, &format!("/api/vhosts/{ve}"))["name"], json!(v));
        for path in ["/api/queues/no-such-vhost", "/api/exchanges/no-such-vhost"] {
            let r = api(&b, "GET", path, GUEST);
            assert_eq!(r.status, 404, "{path}");
            assert_eq!(
                r.body,
                json!({"error": "Object Not Found", "reason": "Not Found"})
            );
        }

        // A management user with permissions in the new vhost only.
        let user = unique_name("mapi-vu");
        let auth = format!("{user}:pw");
        ok(&b, &["add_user", &user, "pw"]);
        ok(&b, &["set_user_tags", &user, "management"]);
        ok(&b, &["set_permissions", "-p", &v, &user, ".*", ".*", ".*"]);
        let get_as = |path: &str| api(&b, "GET", path, Some(&auth));
        assert_eq!(names(&get_as("/api/queues").body, "name"), vec![q.clone()]);
        assert_eq!(names(&get_as("/api/vhosts").body, "name"), vec![v.clone()]);
        let refused = get_as("/api/queues/%2F");
        assert_eq!(refused.status, 401);
        assert_eq!(
            refused.body,
            json!({"error": "not_authorised", "reason": "User not authorised to access virtual host"})
        );
        let r = api(
            &b,
            "DELETE",
            &format!("/api/queues/%2F/{root_q}"),
            Some(&auth),
        );
        assert_eq!(r.status, 401, "{}", r.body);
        // Its own vhost: purge and delete work.
        let r = api(
            &b,
            "DELETE",
            &format!("/api/queues/{ve}/{q}/contents"),
            Some(&auth),
        );
        assert_eq!(r.status, 204, "{}", r.body);
        let r = api(&b, "DELETE", &format!("/api/queues/{ve}/{q}"), Some(&auth));
        assert_eq!(r.status, 204, "{}", r.body);
        assert_eq!(
            api(&b, "GET", &format!("/api/queues/{ve}/{q}"), GUEST).status,
            404
        );
        // A monitor sees every vhost but lists the queues of its own only
        // (RabbitMQ filters listings to login vhosts unless administrator).
        ok(&b, &["set_user_tags", &user, "monitoring"]);
        let vhosts = names(&get_as("/api/vhosts").body, "name");
        assert!(vhosts.contains(&"/".to_string()), "{vhosts:?}");
        assert!(!names(&get_as("/api/queues").body, "name").contains(&root_q));
        ok(&b, &["delete_user", &user]);
        ok(&b, &["delete_vhost", &v]);
        assert_eq!(
            api(&b, "DELETE", &format!("/api/queues/%2F/{root_q}"), GUEST).status,
            204
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_declares_queues_and_exchanges_with_the_amqp_checks() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let q = unique_name("mapi-put");
        let path = format!("/api/queues/%2F/{q}");
        let body = json!({"durable": true, "auto_delete": false, "arguments": {"x-max-length": 5}});
        assert_eq!(send(&b, "PUT", &path, body.clone()).status, 201);
        assert_eq!(
            send(&b, "PUT", &path, body).status,
            204,
            "an equivalent redeclare"
        );
        let r = send(
            &b,
            "PUT",
            &path,
            json!({"durable": false, "arguments": {"x-max-length": 5}}),
        );
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body,
            json!({"error": "bad_request", "reason": format!(
                "inequivalent arg 'durable' for queue '{q}' in vhost '/': received 'false' but current is 'true'")})
        );
        let queue = api_get(&b, &path);
        assert_eq!(
            (&queue["durable"], &queue["arguments"]),
            (&json!(true), &json!({"x-max-length": 5}))
        );
        // The same checks as queue.declare: a bad argument, a reserved name.
        let r = send(
            &b,
            "PUT",
            &format!("/api/queues/%2F/{q}-bad"),
            json!({"arguments": {"x-max-length": "ten"}}),
        );
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body["error"], "bad_request");
        let amqp_text = within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            let mut args = lapin::types::FieldTable::default();
            args.insert(
                "x-max-length".into(),
                lapin::types::AMQPValue::LongString("ten".into()),
            );
            let e = ch
                .queue_declare(format!("{q}-bad").as_str().into(), Default::default(), args)
                .await
                .expect_err("refused");
            lapin_amqp_error(&e).expect("an AMQP error").1
        })
        .await;
        assert_eq!(
            r.body["reason"].as_str().unwrap(),
            amqp_text.split_once(" - ").unwrap().1,
            "the API says what queue.declare says"
        );
        let r = send(&b, "PUT", "/api/queues/%2F/amq.mine", json!({}));
        assert_eq!(
            (r.status, r.body),
            (
                401,
                json!({"error": "not_authorised", "reason": "Access refused."})
            )
        );
        let r = send(&b, "PUT", "/api/queues/no-such-vhost/q", json!({}));
        assert_eq!(
            (r.status, r.body),
            (
                404,
                json!({"error": "not_found", "reason": "vhost_not_found"})
            )
        );
        let r = send(&b, "PUT", &format!("{path}x"), json!("{\"durable\": true}"));
        assert_eq!(r.status, 400, "a doubly encoded body: {}", r.body);

        // Exchanges.
        let x = unique_name("mapi-putx");
        let xpath = format!("/api/exchanges/%2F/{x}");
        let xbody = json!({"type": "topic", "durable": true, "arguments": {}});
        assert_eq!(send(&b, "PUT", &xpath, xbody.clone()).status, 201);
        assert_eq!(send(&b, "PUT", &xpath, xbody).status, 204);
        let made = api_get(&b, &xpath);
        assert_eq!(
            (&made["type"], &made["durable"]),
            (&json!("topic"), &json!(true))
        );
        let r = send(
            &b,
            "PUT",
            &xpath,
            json!({"type": "fanout", "durable": true}),
        );
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(
            r.body["reason"]
                .as_str()
                .unwrap()
                .contains("inequivalent arg 'type'"),
            "{}",
            r.body
        );
        let r = send(
            &b,
            "PUT",
            &format!("{xpath}2"),
            json!({"type": "no-such-type"}),
        );
        assert_eq!(r.status, 400, "{}", r.body);

        // A user whose configure permission does not match.
        let user = unique_name("mapi-put-u");
        ok(&b, &["add_user", &user, "pw"]);
        ok(&b, &["set_user_tags", &user, "management"]);
        ok(&b, &["set_permissions", &user, "^$", ".*", ".*"]);
        let auth = format!("{user}:pw");
        let as_user = |method: &str, path: &str| {
            api_send(&b, method, path, Some(&auth), Some(&json!({})), &[])
        };
        for (method, path) in [
            ("PUT", format!("{path}-u")),
            ("PUT", format!("{xpath}-u")),
            ("DELETE", path.clone()),
            ("DELETE", xpath.clone()),
        ] {
            let r = as_user(method, &path);
            assert_eq!(
                (r.status, &r.body),
                (
                    401,
                    &json!({"error": "not_authorised", "reason": "Access refused."})
                ),
                "{method} {path}"
            );
        }
        ok(&b, &["delete_user", &user]);
        assert_eq!(api(&b, "DELETE", &path, GUEST).status, 204);
        assert_eq!(api(&b, "DELETE", &xpath, GUEST).status, 204);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_are_posted_read_and_deleted_by_properties_key() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let q = unique_name("mapi-bq");
        let x = unique_name("mapi-bx");
        assert_eq!(
            send(&b, "PUT", &format!("/api/queues/%2F/{q}"), json!({})).status,
            201
        );
        assert_eq!(
            send(
                &b,
                "PUT",
                &format!("/api/exchanges/%2F/{x}"),
                json!({"type": "fanout"})
            )
            .status,
            201
        );
        let between = format!("/api/bindings/%2F/e/amq.direct/q/{q}");
        let r = send(
            &b,
            "POST",
            &between,
            json!({"routing_key": "a key", "arguments": {}}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        // RabbitMQ quotes the properties key again in the URL.
        assert!(
            r.head.contains(&format!("location: {q}/a%2bkey\r\n")),
            "{}",
            r.head
        );
        let r = send(
            &b,
            "POST",
            &between,
            json!({"routing_key": "k2", "arguments": {"x-a": 1}}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let listed = api_get(&b, &between);
        assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
        assert_eq!(listed[0]["properties_key"], "a+key");
        let hashed = listed[1]["properties_key"].as_str().unwrap().to_string();
        assert!(hashed.starts_with("k2~"), "{hashed}");
        assert!(
            r.head
                .contains(&format!("location: {q}/{}\r\n", hashed.to_lowercase())),
            "{}",
            r.head
        );
        let one = api_get(&b, &format!("{between}/{hashed}"));
        assert_eq!(one["arguments"], json!({"x-a": 1}));
        // Exchange to exchange.
        let e2e = format!("/api/bindings/%2F/e/{x}/e/amq.fanout");
        assert_eq!(send(&b, "POST", &e2e, json!({})).status, 201);
        assert_eq!(
            api_get(&b, &format!("{e2e}/~"))["destination_type"],
            "exchange"
        );
        assert_eq!(
            api_get(&b, &format!("/api/exchanges/%2F/{x}/bindings/source"))[0]["destination"],
            "amq.fanout"
        );
        // The binding routes: over AMQP, a publish with the key arrives.
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            publish_to(
                &ch,
                "amq.direct",
                "a key",
                "via the api binding",
                Default::default(),
                false,
            )
            .await;
            wait_ready(&conn, &q, 1).await;
            conn.close(200, "bye".into()).await.ok();
        })
        .await;
        // Delete by key: gone; a second delete finds nothing.
        let path = format!("{between}/a+key");
        assert_eq!(api(&b, "DELETE", &path, GUEST).status, 204);
        assert_eq!(api(&b, "GET", &path, GUEST).status, 404);
        assert_eq!(api(&b, "DELETE", &path, GUEST).status, 404);
        assert_eq!(
            api(&b, "DELETE", &format!("{between}/{hashed}"), GUEST).status,
            204
        );
        assert_eq!(api(&b, "DELETE", &format!("{e2e}/~"), GUEST).status, 204);
        assert_eq!(api_get(&b, &between), json!([]));
        // A missing queue: the leader's 404, with its text.
        let r = send(
            &b,
            "POST",
            "/api/bindings/%2F/e/amq.direct/q/no-such-q",
            json!({}),
        );
        assert_eq!(
            (r.status, r.body),
            (
                404,
                json!({"error": "not_found", "reason": "no queue 'no-such-q' in vhost '/'"})
            )
        );
        assert_eq!(
            api(&b, "DELETE", &format!("/api/queues/%2F/{q}"), GUEST).status,
            204
        );
        assert_eq!(
            api(&b, "DELETE", &format!("/api/exchanges/%2F/{x}"), GUEST).status,
            204
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_published_and_got_through_the_api() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let q = unique_name("mapi-pub");
        let qpath = format!("/api/queues/%2F/{q}");
        assert_eq!(
            send(&b, "PUT", &qpath, json!({"durable": true})).status,
            201
        );
        let publish = |x: &str, body: Value| {
            send(&b, "POST", &format!("/api/exchanges/%2F/{x}/publish"), body)
        };
        let r = publish(
            "amq.default",
            json!({"routing_key": q, "payload": "hello", "payload_encoding": "string",
                   "properties": {"delivery_mode": 2, "headers": {"h": "v"}}}),
        );
        assert_eq!((r.status, &r.body), (200, &json!({"routed": true})));
        let r = publish(
            "amq.default",
            json!({"routing_key": q, "payload": "/wA=", "payload_encoding": "base64", "properties": {}}),
        );
        assert_eq!(r.body, json!({"routed": true}));
        let r = publish(
            "amq.direct",
            json!({"routing_key": "nobody", "payload": "x", "payload_encoding": "string", "properties": {}}),
        );
        assert_eq!(r.body, json!({"routed": false}));
        let r = publish(
            "no-such-x",
            json!({"routing_key": "k", "payload": "x", "payload_encoding": "string", "properties": {}}),
        );
        assert_eq!(
            (r.status, r.body),
            (
                404,
                json!({"error": "not_found", "reason": "NOT_FOUND - no exchange 'no-such-x' in vhost '/'"})
            )
        );
        let r = publish("amq.direct", json!({"payload": "x"}));
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body["reason"],
            "[{key_missing,routing_key},{key_missing,properties},{key_missing,payload_encoding}]"
        );

        // Get, requeueing: both messages, then both still there.
        let get = |body: Value| send(&b, "POST", &format!("{qpath}/get"), body);
        let got = get(json!({"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"}));
        assert_eq!(got.status, 200, "{}", got.body);
        assert_eq!(
            got.body[0],
            json!({"payload_bytes": 5, "redelivered": false, "exchange": "", "routing_key": q,
                   "message_count": 1, "properties": {"delivery_mode": 2, "headers": {"h": "v"}},
                   "payload": "hello", "payload_encoding": "string"})
        );
        assert_eq!(
            (
                &got.body[1]["payload"],
                &got.body[1]["payload_encoding"],
                &got.body[1]["properties"]
            ),
            (&json!("/wA="), &json!("base64"), &json!([]))
        );
        assert!(
            eventually(20, || api_get(&b, &qpath)["messages_ready"] == 2).await,
            "requeued: {}",
            api_get(&b, &qpath)
        );
        // Truncated and in base64; now redelivered. Then taken for good.
        let got = get(
            json!({"count": 1, "ackmode": "ack_requeue_false", "encoding": "base64", "truncate": 2}),
        );
        assert_eq!(
            (
                &got.body[0]["payload"],
                &got.body[0]["redelivered"],
                &got.body[0]["payload_bytes"]
            ),
            (&json!("aGU="), &json!(true), &json!(5))
        );
        let got = get(json!({"count": 3, "ackmode": "reject_requeue_false", "encoding": "auto"}));
        assert_eq!(got.body.as_array().unwrap().len(), 1, "{}", got.body);
        assert!(eventually(20, || api_get(&b, &qpath)["messages"] == 0).await);
        let r = get(json!({"count": 1, "ackmode": "ack_requeue_true", "encoding": "utf-9"}));
        assert_eq!(
            r.body["reason"],
            "Unsupported encoding. Please use auto or base64."
        );
        let r = send(
            &b,
            "POST",
            "/api/queues/%2F/no-such-q/get",
            json!({"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}),
        );
        assert_eq!(
            (r.status, r.body),
            (
                404,
                json!({"error": "not_found", "reason": "NOT_FOUND - no queue 'no-such-q' in vhost '/'"})
            )
        );

        // A user who may not read or write: RabbitMQ's channel errors.
        let user = unique_name("mapi-pub-u");
        ok(&b, &["add_user", &user, "pw"]);
        ok(&b, &["set_user_tags", &user, "management"]);
        ok(&b, &["set_permissions", &user, ".*", "^$", "^$"]);
        let auth = format!("{user}:pw");
        let r = api_send(
            &b,
            "POST",
            &format!("{qpath}/get"),
            Some(&auth),
            Some(&json!({"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"})),
            &[],
        );
        assert_eq!(
            (r.status, r.body),
            (
                401,
                json!({"error": "not_authorised", "reason": format!(
                "ACCESS_REFUSED - access to queue '{q}' in vhost '/' refused for user '{user}'")})
            )
        );
        let r = api_send(
            &b,
            "POST",
            "/api/exchanges/%2F/amq.direct/publish",
            Some(&auth),
            Some(
                &json!({"routing_key": "k", "payload": "x", "payload_encoding": "string", "properties": {}}),
            ),
            &[],
        );
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(r.body["reason"], json!(format!(
            "ACCESS_REFUSED - access to exchange 'amq.direct' in vhost '/' refused for user '{user}'")));
        ok(&b, &["delete_user", &user]);

        // reject-publish: the owner's refusal, as RabbitMQ words it.
        let full = unique_name("mapi-full");
        let r = send(
            &b,
            "PUT",
            &format!("/api/queues/%2F/{full}"),
            json!({"arguments": {"x-max-length": 1, "x-overflow": "reject-publish"}}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let one = json!({"routing_key": full, "payload": "x", "payload_encoding": "string", "properties": {}});
        assert_eq!(
            publish("amq.default", one.clone()).body,
            json!({"routed": true})
        );
        let r = publish("amq.default", one);
        assert_eq!(
            (r.status, r.body),
            (
                400,
                json!({"error": "bad_request", "reason": "rejected Unable to publish message. Check queue limits."})
            )
        );
        for name in [&q, &full] {
            assert_eq!(
                api(&b, "DELETE", &format!("/api/queues/%2F/{name}"), GUEST).status,
                204
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_closes_a_connection_with_the_reason_given() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        // Several connections, so with 2 shards both hold some.
        let mut conns: Vec<RawConn> = (0..4)
            .map(|_| {
                let (mut c, _) = RawConn::open(&b.addr());
                c.channel_open(1);
                c
            })
            .collect();
        let listed = api_get(&b, "/api/connections");
        let names = names(&listed, "name");
        assert_eq!(names.len(), 4, "{listed}");
        // A management user may close only its own.
        let user = unique_name("mapi-conn-u");
        ok(&b, &["add_user", &user, "pw"]);
        ok(&b, &["set_user_tags", &user, "management"]);
        let encoded = |n: &str| n.replace(' ', "%20").replace('>', "%3E");
        let r = api(
            &b,
            "DELETE",
            &format!("/api/connections/{}", encoded(&names[0])),
            Some(&format!("{user}:pw")),
        );
        assert_eq!(
            (r.status, r.body),
            (
                401,
                json!({"error": "not_authorised", "reason": "User not authorised to access object"})
            )
        );
        ok(&b, &["delete_user", &user]);
        for (i, name) in names.iter().enumerate() {
            let headers: &[(&str, &str)] = if i == 0 {
                &[]
            } else {
                &[("X-Reason", "maintenance now")]
            };
            let r = api_send(
                &b,
                "DELETE",
                &format!("/api/connections/{}", encoded(name)),
                GUEST,
                None,
                headers,
            );
            assert_eq!(r.status, 204, "{name}: {}", r.body);
        }
        let mut reasons: Vec<String> = conns
            .iter_mut()
            .map(|c| {
                let m = c.expect_method();
                assert_eq!(
                    (m.channel, m.class, m.method),
                    (0, 10, 50),
                    "connection.close: {m:?}"
                );
                let (code, text) = m.close_reason();
                assert_eq!(code, 320);
                text
            })
            .collect();
        reasons.sort();
        assert_eq!(
            reasons,
            vec![
                "CONNECTION_FORCED - Closed via management plugin".to_string(),
                "CONNECTION_FORCED - maintenance now".into(),
                "CONNECTION_FORCED - maintenance now".into(),
                "CONNECTION_FORCED - maintenance now".into(),
            ]
        );
        assert!(eventually(20, || api_get(&b, "/api/connections") == json!([])).await);
        assert_eq!(
            api(&b, "DELETE", "/api/connections/nobody", GUEST).status,
            404
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_and_the_aliveness_test() {
    if skip_if_external(NEEDS_API) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let nodes = api_get(&b, "/api/nodes");
        assert_eq!(nodes.as_array().unwrap().len(), 1, "{nodes}");
        let node = &nodes[0];
        assert_eq!(
            (&node["name"], &node["running"], &node["type"]),
            (&json!("warren@localhost"), &json!(true), &json!("disc"))
        );
        assert_eq!(
            node["os_pid"],
            json!(b.pid().expect("our broker").to_string())
        );
        for field in [
            "mem_used",
            "mem_limit",
            "disk_free",
            "disk_free_limit",
            "fd_used",
            "fd_total",
            "uptime",
            "processors",
        ] {
            assert!(node[field].as_u64().is_some(), "{field} in {node}");
        }
        assert!(node["mem_used"].as_u64().unwrap() > 0 && node["fd_used"].as_u64().unwrap() > 0);
        assert_eq!(node["mem_alarm"], false);
        assert_eq!(node["sockets_used"], 0);
        // Processes are OS threads against their limit (see `nodes`);
        // sockets are bounded by the descriptors.
        let n = |k: &str| node[k].as_u64().unwrap_or_else(|| panic!("{k} in {node}"));
        assert!(n("proc_used") > shards as u64 && n("proc_total") > n("proc_used"));
        assert_eq!(n("sockets_total"), n("fd_total"));
        // Fields with no Warren counterpart are left out, not made up.
        assert!(node.get("run_queue").is_none() && node.get("gc_num").is_none());
        assert_eq!(
            api_get(&b, "/api/nodes/warren@localhost")["name"],
            "warren@localhost"
        );
        assert_eq!(
            api(&b, "GET", "/api/nodes/rabbit@elsewhere", GUEST).status,
            404
        );
        let user = unique_name("mapi-node-u");
        ok(&b, &["add_user", &user, "pw"]);
        ok(&b, &["set_user_tags", &user, "management"]);
        ok(&b, &["set_permissions", &user, ".*", ".*", ".*"]);
        let r = api(&b, "GET", "/api/nodes", Some(&format!("{user}:pw")));
        assert_eq!(
            (r.status, r.body),
            (
                401,
                json!({"error": "not_authorised", "reason": "Not monitor user"})
            )
        );
        // The aliveness test: for any user with permissions in the vhost.
        for auth in [GUEST, Some(format!("{user}:pw").as_str())] {
            let r = api(&b, "GET", "/api/aliveness-test/%2F", auth);
            assert_eq!(
                (r.status, r.body),
                (200, json!({"status": "ok"})),
                "{auth:?}"
            );
        }
        let q = api_get(&b, "/api/queues/%2F/aliveness-test");
        assert_eq!((&q["durable"], &q["messages"]), (&json!(false), &json!(0)));
        assert_eq!(
            api(&b, "GET", "/api/aliveness-test/no-such-vhost", GUEST).status,
            404
        );
        ok(&b, &["delete_user", &user]);
    }
}
