//! The management API's writes on the HTTP side: reading a request's body
//! (bounded), turning it into an `actions::Action` for shard 0, and its
//! answer or refusal into RabbitMQ's status codes and bodies —
//! `rabbit_mgmt_util:direct_request` for declares, deletes and bindings
//! (404 `not_found`, 401 `Access refused.`, 400 `bad_request` with the
//! explanation), `with_channel` for publish, get and the aliveness test
//! (the whole `CODE - text`), 201 / 204 for a declare that created / found
//! its object, 201 and a `Location` for a binding. Also closing a
//! connection (`DELETE /api/connections/{name}`).

use super::actions::{AckMode, Action, Outcome, Refusal};
use super::amqp_json::{self, bool_field, int_field, str_field};
use super::api::{self, Resource};
use super::{ask, auth, bridge, json_response, listing, Context};
use crate::broker::error::{code, AmqpError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};

/// The largest request body taken (RabbitMQ's default
/// `management.http.max_body_size`, 20 MiB).
pub const MAX_BODY: usize = 20 * 1024 * 1024;

/// What RabbitMQ's connection close says unless `X-Reason` says otherwise.
const DEFAULT_CLOSE_REASON: &str = "Closed via management plugin";

type Answer = Response<Full<Bytes>>;

/// A PUT, POST or DELETE of `resource` as `user`.
pub async fn handle(
    ctx: &Context,
    user: &auth::User,
    resource: Resource,
    query: &[(String, String)],
    req: Request<hyper::body::Incoming>,
) -> Answer {
    if let Err(reason) = auth::may_read(user, &resource) {
        return not_authorised(reason);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let reason_header = req
        .headers()
        .get("x-reason")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(reason) => return bad_request(reason),
    };
    let flag = |k: &str| listing::param(query, k) == Some("true");
    // A DELETE of something in a vhost that does not exist finds no object
    // (RabbitMQ's resource check), a write names the missing vhost.
    let deleting = method == Method::DELETE;
    let (vhost, action) = match (method, resource) {
        (Method::DELETE, Resource::Connection(name)) => {
            return close_connection(ctx, user, &name, reason_header).await
        }
        (Method::PUT, Resource::Queue(v, name)) => match queue_declare(name, &body) {
            Ok(a) => (v, a),
            Err(reason) => return bad_request(reason),
        },
        (Method::DELETE, Resource::Queue(v, name)) => (
            v,
            Action::DeleteQueue {
                name,
                if_unused: flag("if-unused"),
                if_empty: flag("if-empty"),
            },
        ),
        (Method::DELETE, Resource::QueueContents(v, name)) => (v, Action::Purge { name }),
        (Method::PUT, Resource::Exchange(v, name)) => match exchange_declare(name, &body) {
            Ok(a) => (v, a),
            Err(reason) => return bad_request(reason),
        },
        (Method::DELETE, Resource::Exchange(v, name)) => (
            v,
            Action::DeleteExchange {
                name,
                if_unused: flag("if-unused"),
            },
        ),
        (Method::POST, Resource::BindingsBetween(v, source, dest)) => {
            let action = match binding(&source, &dest, &body) {
                Ok(a) => a,
                Err(reason) => return bad_request(reason),
            };
            let props = match &action {
                Action::Bind {
                    routing_key,
                    arguments,
                    ..
                } => super::binding_keys::properties_key(routing_key, arguments),
                _ => String::new(),
            };
            let answer = act(ctx, user, &v, action).await;
            return match answer {
                Ok(_) => {
                    let location =
                        super::binding_keys::binding_location(&path, &v, &source, &dest, &props);
                    let mut r = empty(StatusCode::CREATED);
                    if let Ok(h) = hyper::header::HeaderValue::from_str(&location) {
                        r.headers_mut().insert(hyper::header::LOCATION, h);
                    }
                    r
                }
                Err(r) => r,
            };
        }
        (Method::DELETE, Resource::Binding(v, source, dest, props)) => {
            let Some(destination) = dest.to_destination() else {
                return object_not_found();
            };
            (
                v,
                Action::Unbind {
                    source,
                    destination,
                    props,
                },
            )
        }
        (Method::POST, Resource::ExchangePublish(v, exchange)) => match publish(exchange, &body) {
            Ok(a) => (v, a),
            Err(reason) => return bad_request(reason),
        },
        (Method::POST, Resource::QueueGet(v, queue)) => match get(queue, &body) {
            Ok((a, truncate, base64)) => {
                return match act(ctx, user, &v, a).await {
                    Ok(Outcome::Messages(got)) => json_response(
                        StatusCode::OK,
                        &Value::Array(got.iter().map(|m| got_json(m, truncate, base64)).collect()),
                    ),
                    Ok(_) => json_response(StatusCode::OK, &json!([])),
                    Err(r) => r,
                };
            }
            Err(reason) => return bad_request(reason),
        },
        (method, _) => {
            return json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({"error": "Method Not Allowed", "reason": format!("{method} is not served here")}),
            )
        }
    };
    let answer = match act(ctx, user, &vhost, action).await {
        Err(r) if deleting && r.status() == StatusCode::NOT_FOUND => Err(object_not_found()),
        other => other,
    };
    match answer {
        Ok(Outcome::Created(true)) => empty(StatusCode::CREATED),
        Ok(Outcome::Routed(routed)) => json_response(StatusCode::OK, &json!({"routed": routed})),
        Ok(_) => empty(StatusCode::NO_CONTENT),
        Err(r) => r,
    }
}

/// `GET /api/aliveness-test/{vhost}`.
pub async fn aliveness(ctx: &Context, user: &auth::User, vhost: &str) -> Answer {
    match act(ctx, user, vhost, Action::Aliveness).await {
        Ok(Outcome::Messages(got)) if !got.is_empty() => {
            json_response(StatusCode::OK, &json!({"status": "ok"}))
        }
        Ok(_) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "failed", "reason": "aliveness-test queue is empty"}),
        ),
        // A missing vhost: RabbitMQ's resource check.
        Err(r) if r.status() == StatusCode::NOT_FOUND => object_not_found(),
        Err(r) => r,
    }
}

/// Sends an action over the bridge; its refusal as RabbitMQ's answer.
async fn act(
    ctx: &Context,
    user: &auth::User,
    vhost: &str,
    action: Action,
) -> Result<Outcome, Answer> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job = bridge::Job::Act {
        user: user.name.clone(),
        vhost: vhost.to_string(),
        action,
        reply,
    };
    match ask(ctx, job, answer).await {
        Some(Ok(outcome)) => Ok(outcome),
        Some(Err(refusal)) => Err(refused(refusal)),
        None => Err(busy()),
    }
}

/// A refusal as RabbitMQ's management plugin answers it.
fn refused(refusal: Refusal) -> Answer {
    match refusal {
        Refusal::VhostNotFound => not_found_because("vhost_not_found"),
        Refusal::NotFound => object_not_found(),
        Refusal::VhostAccess => not_authorised("User not authorised to access virtual host"),
        Refusal::Method(e) => match e.code {
            code::NOT_FOUND => not_found_because(explanation(&e)),
            code::ACCESS_REFUSED | code::NOT_ALLOWED => not_authorised("Access refused."),
            _ => bad_request(json!(explanation(&e))),
        },
        Refusal::Channel(e) => match e.code {
            code::NOT_FOUND => not_found_because(&e.text),
            code::ACCESS_REFUSED => not_authorised(&e.text),
            c => bad_request(json!(format!("{c} {}", e.text))),
        },
        Refusal::Rejected(why) => bad_request(json!(format!("rejected {why}"))),
    }
}

/// The text of an AMQP error without its `NAME - ` prefix.
fn explanation(e: &AmqpError) -> &str {
    e.text.split_once(" - ").map_or(e.text.as_str(), |(_, t)| t)
}

/// `DELETE /api/connections/{name}`: administrators close any connection,
/// other users their own (RabbitMQ's `is_authorized_user`).
async fn close_connection(
    ctx: &Context,
    user: &auth::User,
    name: &str,
    reason: Option<String>,
) -> Answer {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let Some(view) = ask(
        ctx,
        bridge::Job::View {
            user: user.name.clone(),
            reply,
        },
        answer,
    )
    .await
    else {
        return busy();
    };
    let Some(conn) = api::find_connection(&view, name, &ctx.node) else {
        return object_not_found();
    };
    if !user.tags.iter().any(|t| t == "administrator") && conn.user != user.name {
        return not_authorised("User not authorised to access object");
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job = bridge::Job::CloseConnection {
        key: conn.key,
        reason: reason.unwrap_or_else(|| DEFAULT_CLOSE_REASON.to_string()),
        reply,
    };
    match ask(ctx, job, answer).await {
        // Gone meanwhile: RabbitMQ answers 204 all the same.
        Some(_) => empty(StatusCode::NO_CONTENT),
        None => busy(),
    }
}

/// A request body as RabbitMQ's `decode`: empty or `null` is `{}`, a
/// JSON string is refused (doubly encoded), anything else not an object
/// is `not_json`.
async fn read_body(req: Request<hyper::body::Incoming>) -> Result<Map<String, Value>, Value> {
    let collected = http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await;
    let bytes = match collected {
        Ok(c) => c.to_bytes(),
        Err(_) => return Err(json!(format!("the request body is over {MAX_BODY} bytes"))),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| json!("not_json"))?;
    match text.trim() {
        "" | "null" | "undefined" => return Ok(Map::new()),
        _ => {}
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(Value::String(_)) => Err(json!(
            "invalid payload: the request body JSON-decoded to a string. Is the input doubly-JSON-encoded?"
        )),
        Ok(Value::Bool(_)) => Ok(Map::new()),
        _ => Err(json!("not_json")),
    }
}

fn queue_declare(name: String, body: &Map<String, Value>) -> Result<Action, Value> {
    if name.len() > 255 {
        return Err(json!("Queue name is too long"));
    }
    // The management API acts without a connection: an exclusive queue
    // would be nobody's (RabbitMQ makes it a plain one); refused here.
    if bool_field(body, "exclusive", false).map_err(Value::String)? {
        return Err(json!(
            "exclusive queues cannot be declared over HTTP (they belong to a connection)"
        ));
    }
    Ok(Action::DeclareQueue {
        name,
        durable: bool_field(body, "durable", false).map_err(Value::String)?,
        auto_delete: bool_field(body, "auto_delete", false).map_err(Value::String)?,
        arguments: amqp_json::table_from_json(body.get("arguments")).map_err(Value::String)?,
    })
}

fn exchange_declare(name: String, body: &Map<String, Value>) -> Result<Action, Value> {
    Ok(Action::DeclareExchange {
        name,
        kind: str_field(body, "type", "direct")
            .map_err(Value::String)?
            .to_string(),
        durable: bool_field(body, "durable", false).map_err(Value::String)?,
        auto_delete: bool_field(body, "auto_delete", false).map_err(Value::String)?,
        internal: bool_field(body, "internal", false).map_err(Value::String)?,
        arguments: amqp_json::table_from_json(body.get("arguments")).map_err(Value::String)?,
    })
}

fn binding(
    source: &str,
    dest: &super::binding_keys::Dest,
    body: &Map<String, Value>,
) -> Result<Action, Value> {
    Ok(Action::Bind {
        source: source.to_string(),
        destination: dest
            .to_destination()
            .ok_or_else(|| json!("name too long"))?,
        routing_key: str_field(body, "routing_key", "")
            .map_err(Value::String)?
            .to_string(),
        arguments: amqp_json::table_from_json(body.get("arguments")).map_err(Value::String)?,
    })
}

/// The keys a body must have, as RabbitMQ's `with_decode` refuses it.
fn require(body: &Map<String, Value>, keys: &[&str]) -> Result<(), Value> {
    let missing: Vec<String> = keys
        .iter()
        .filter(|k| body.get(**k).is_none_or(Value::is_null))
        .map(|k| format!("{{key_missing,{k}}}"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(json!(format!("[{}]", missing.join(","))))
    }
}

fn publish(exchange: String, body: &Map<String, Value>) -> Result<Action, Value> {
    require(
        body,
        &["routing_key", "properties", "payload", "payload_encoding"],
    )?;
    let payload = body["payload"]
        .as_str()
        .ok_or_else(|| json!("payload_not_string"))?;
    let encoding = str_field(body, "payload_encoding", "string").map_err(Value::String)?;
    Ok(Action::Publish {
        exchange,
        routing_key: str_field(body, "routing_key", "")
            .map_err(Value::String)?
            .to_string(),
        properties: Box::new(amqp_json::properties_from_json(&body["properties"])?),
        payload: amqp_json::decode_payload(payload, encoding)?,
    })
}

/// A get's action, its truncation and whether it answers base64 only.
fn get(queue: String, body: &Map<String, Value>) -> Result<(Action, Option<usize>, bool), Value> {
    require(body, &["ackmode", "count", "encoding"])?;
    let mode = str_field(body, "ackmode", "").map_err(Value::String)?;
    let mode =
        AckMode::parse(mode).ok_or_else(|| json!(format!("Unsupported ackmode '{mode}'")))?;
    let count = int_field(body, "count")
        .map_err(Value::String)?
        .unwrap_or(0);
    let count = u32::try_from(count.max(0)).unwrap_or(u32::MAX);
    let base64 = match str_field(body, "encoding", "").map_err(Value::String)? {
        "auto" => false,
        "base64" => true,
        _ => return Err(json!("Unsupported encoding. Please use auto or base64.")),
    };
    let truncate = int_field(body, "truncate")
        .map_err(Value::String)?
        .map(|t| usize::try_from(t.max(0)).unwrap_or(usize::MAX));
    Ok((Action::Get { queue, count, mode }, truncate, base64))
}

fn got_json(m: &super::actions::Got, truncate: Option<usize>, base64: bool) -> Value {
    let (payload, encoding) = amqp_json::payload_json(&m.payload, truncate, base64);
    json!({
        "payload_bytes": m.payload.len(),
        "redelivered": m.redelivered,
        "exchange": m.exchange,
        "routing_key": m.routing_key,
        "message_count": m.message_count,
        "properties": amqp_json::properties_json(&m.raw_properties),
        "payload": payload,
        "payload_encoding": encoding,
    })
}

fn empty(status: StatusCode) -> Answer {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

fn bad_request(reason: Value) -> Answer {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": "bad_request", "reason": reason}),
    )
}

/// RabbitMQ's `not_authorised` (a tag or permission refusal after a good
/// login: 401, spelt so).
pub fn not_authorised(reason: &str) -> Answer {
    json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "not_authorised", "reason": reason}),
    )
}

fn not_found_because(reason: &str) -> Answer {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": "not_found", "reason": reason}),
    )
}

fn object_not_found() -> Answer {
    json_response(StatusCode::NOT_FOUND, &api::not_found())
}

pub fn busy() -> Answer {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"error": "service_unavailable", "reason": "the broker is busy; try again"}),
    )
}
