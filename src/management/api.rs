//! The management API's resources as RabbitMQ's JSON: routing a request's
//! path to a resource and rendering it from a `View` (pure, so it runs on
//! the management thread and is unit-tested alone). Field names, status
//! codes and error bodies follow RabbitMQ 3.10's management plugin.

use super::bridge::View;
use crate::broker::binding::BindingDef;
use crate::broker::exchange::{Destination, ExchangeDef};
use crate::protocol::types::{FieldTable, FieldValue};
use crate::shard::envelope::QueueSnapshot;
use serde_json::{json, Value};

/// The one virtual host until vhosts land.
pub const VHOST: &str = "/";

/// What the API knows about the node that is not shard state.
pub struct Node {
    pub name: String,
    pub amqp_bind: String,
    pub amqp_port: u16,
    pub management_port: u16,
}

/// A resource the API serves with GET.
#[derive(Debug, PartialEq)]
pub enum Resource {
    Overview,
    Whoami,
    Vhosts,
    Vhost(String),
    Users,
    User(String),
    Queues(Option<String>),
    Queue(String, String),
    QueueBindings(String, String),
    QueueContents(String, String),
    Exchanges(Option<String>),
    Exchange(String, String),
    Bindings(Option<String>),
    Connections,
    Channels,
    Consumers(Option<String>),
    AlarmsCheck,
    LocalAlarmsCheck,
}

/// Maps `/api/...` segments (percent-decoded) to a resource.
pub fn route(segments: &[String]) -> Option<Resource> {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let own = |v: &&str| v.to_string();
    Some(match s.as_slice() {
        ["overview"] => Resource::Overview,
        ["whoami"] => Resource::Whoami,
        ["vhosts"] => Resource::Vhosts,
        ["vhosts", v] => Resource::Vhost(own(v)),
        ["users"] => Resource::Users,
        ["users", u] => Resource::User(own(u)),
        ["queues"] => Resource::Queues(None),
        ["queues", v] => Resource::Queues(Some(own(v))),
        ["queues", v, q] => Resource::Queue(own(v), own(q)),
        ["queues", v, q, "bindings"] => Resource::QueueBindings(own(v), own(q)),
        ["queues", v, q, "contents"] => Resource::QueueContents(own(v), own(q)),
        ["exchanges"] => Resource::Exchanges(None),
        ["exchanges", v] => Resource::Exchanges(Some(own(v))),
        ["exchanges", v, x] => Resource::Exchange(own(v), own(x)),
        ["bindings"] => Resource::Bindings(None),
        ["bindings", v] => Resource::Bindings(Some(own(v))),
        ["connections"] => Resource::Connections,
        ["channels"] => Resource::Channels,
        ["consumers"] => Resource::Consumers(None),
        ["consumers", v] => Resource::Consumers(Some(own(v))),
        ["health", "checks", "alarms"] => Resource::AlarmsCheck,
        ["health", "checks", "local-alarms"] => Resource::LocalAlarmsCheck,
        _ => return None,
    })
}

/// RabbitMQ's 404 body.
pub fn not_found() -> Value {
    json!({"error": "Object Not Found", "reason": "Not Found"})
}

/// A FieldTable as JSON (through the policy module's JSON writer).
pub fn table_json(t: &FieldTable) -> Value {
    serde_json::from_str(&crate::admin::policy::to_json(&FieldValue::Table(
        t.clone(),
    )))
    .unwrap_or_else(|_| json!({}))
}

/// A queue, with the fields RabbitMQ shows for a classic queue that Warren
/// has figures for.
pub fn queue_json(q: &QueueSnapshot, args: Option<&FieldTable>, node: &Node) -> Value {
    let mut v = json!({
        "name": q.name.as_str(),
        "vhost": VHOST,
        "node": node.name,
        "type": "classic",
        "durable": q.durable,
        "auto_delete": q.auto_delete,
        "exclusive": q.exclusive,
        "arguments": args.map_or_else(|| json!({}), table_json),
        "consumers": q.consumers.len(),
        "messages": q.messages as u64 + q.unacked as u64,
        "messages_ready": q.messages,
        "messages_unacknowledged": q.unacked,
        "messages_ram": q.messages_ram,
        "messages_ready_ram": q.messages_ram,
        "messages_paged_out": q.messages_paged_out,
        "message_bytes_ready": q.message_bytes_ready,
        // Beyond RabbitMQ: see `broker::queue::ages`.
        "oldest_ready_age_seconds": q.oldest_ready_age_seconds,
        "oldest_unacked_age_seconds": q.oldest_unacked_age_seconds,
        "state": q.state,
        "policy": if q.policy.is_empty() { Value::Null } else { json!(q.policy) },
        "exclusive_consumer_tag": Value::Null,
        "single_active_consumer_tag": q.single_active_consumer.as_ref().map(|k| k.tag.as_str()),
        "operator_policy": Value::Null,
        "effective_policy_definition": {},
        "recoverable_slaves": Value::Null,
    });
    if q.consumers.is_empty() {
        v["consumer_utilisation"] = Value::Null;
    }
    v
}

pub fn exchange_json(x: &ExchangeDef, policy: &str) -> Value {
    let mut v = json!({
        "name": x.name.as_str(),
        "vhost": VHOST,
        "type": x.kind.as_str(),
        "durable": x.durable,
        "auto_delete": x.auto_delete,
        "internal": x.internal,
        "arguments": table_json(&x.arguments),
        "user_who_performed_action": "rmq-internal",
    });
    if !policy.is_empty() {
        v["policy"] = json!(policy);
    }
    v
}

pub fn binding_json(b: &BindingDef) -> Value {
    let (kind, dest) = match &b.destination {
        Destination::Queue(q) => ("queue", q.as_str()),
        Destination::Exchange(x) => ("exchange", x.as_str()),
    };
    binding(
        b.source.as_str(),
        kind,
        dest,
        b.routing_key.as_str(),
        &b.arguments,
    )
}

fn binding(source: &str, kind: &str, dest: &str, key: &str, args: &FieldTable) -> Value {
    let arguments = table_json(args);
    let props = match (key, arguments.as_object().is_some_and(|o| o.is_empty())) {
        ("", true) => "~".to_string(),
        (k, true) => k.replace('%', "%25").replace('~', "%7E"),
        (k, false) => format!(
            "{}~{:08x}",
            k.replace('%', "%25").replace('~', "%7E"),
            crc32c::crc32c(arguments.to_string().as_bytes())
        ),
    };
    json!({
        "source": source, "vhost": VHOST, "destination": dest, "destination_type": kind,
        "routing_key": key, "arguments": arguments, "properties_key": props,
    })
}

/// The default exchange's implicit binding of a queue, as RabbitMQ lists it.
fn default_binding(queue: &str) -> Value {
    binding("", "queue", queue, queue, &FieldTable::default())
}

fn queue_args<'a>(view: &'a View, name: &str) -> Option<&'a FieldTable> {
    view.queue_arguments.get(name)
}

fn queues(view: &View) -> impl Iterator<Item = &QueueSnapshot> {
    view.snapshots.iter().flat_map(|s| s.queues.iter())
}

/// The items of a list resource (before `listing::apply`), or the body of
/// a single one; None for a 404.
pub fn render(resource: &Resource, view: &View, node: &Node) -> Option<Value> {
    let vhost_ok = |v: &Option<String>| v.as_deref().is_none_or(|v| v == VHOST);
    Some(match resource {
        Resource::Queues(v) if vhost_ok(v) => Value::Array(
            queues(view)
                .map(|q| with_stats(queue_json(q, queue_args(view, &q.name), node), view.stats.queue_json(q)))
                .collect(),
        ),
        Resource::Queue(v, name) if v == VHOST => {
            let q = queues(view).find(|q| q.name.as_str() == name)?;
            let mut body = queue_json(q, queue_args(view, name), node);
            body = with_stats(body, view.stats.queue_json(q));
            body["consumer_details"] = consumers(view, Some(name));
            body
        }
        Resource::QueueBindings(v, name) if v == VHOST => {
            queues(view).find(|q| q.name.as_str() == name)?;
            let mut out = vec![default_binding(name)];
            out.extend(
                view.bindings
                    .iter()
                    .filter(
                        |b| matches!(&b.destination, Destination::Queue(q) if q.as_str() == name),
                    )
                    .map(binding_json),
            );
            Value::Array(out)
        }
        Resource::Exchanges(v) if vhost_ok(v) => Value::Array(
            view.exchanges
                .iter()
                .map(|(x, p)| with_stats(exchange_json(x, p), view.stats.exchange_json(crate::broker::vhost::VhostId::DEFAULT, &x.name)))
                .collect(),
        ),
        Resource::Exchange(v, name) if v == VHOST => {
            let name = if name == "amq.default" { "" } else { name };
            let (x, p) = view
                .exchanges
                .iter()
                .find(|(x, _)| x.name.as_str() == name)?;
            with_stats(exchange_json(x, p), view.stats.exchange_json(crate::broker::vhost::VhostId::DEFAULT, &x.name))
        }
        Resource::Bindings(v) if vhost_ok(v) => {
            let mut out: Vec<Value> = queues(view).map(|q| default_binding(&q.name)).collect();
            out.extend(view.bindings.iter().map(binding_json));
            Value::Array(out)
        }
        Resource::Connections => Value::Array(
            view.snapshots
                .iter()
                .flat_map(|s| s.connections.iter())
                .map(|c| {
                    let (host, port) = split_peer(&c.peer);
                    let mut conn = json!({
                        "name": connection_name(&c.peer, node),
                        "node": node.name, "vhost": c.vhost_name, "user": c.user,
                        "peer_host": host, "peer_port": port,
                        "host": node.amqp_bind, "port": node.amqp_port,
                        "channels": c.channels.len(), "state": "running",
                        "protocol": "AMQP 0-9-1", "type": "network",
                        "ssl": c.tls.is_some(),
                    });
                    if let Some(t) = &c.tls {
                        conn["ssl_protocol"] = json!(t.protocol);
                        conn["ssl_cipher"] = json!(t.cipher);
                        conn["peer_cert_subject"] = json!(t.peer_cert_subject);
                    }
                    conn
                })
                .collect(),
        ),
        Resource::Channels => Value::Array(
            view.snapshots
                .iter()
                .flat_map(|s| s.connections.iter())
                .flat_map(|c| c.channels.iter().map(move |ch| (c, ch)))
                .map(|(c, ch)| {
                    let conn = connection_name(&c.peer, node);
                    let (host, port) = split_peer(&c.peer);
                    with_stats(json!({
                        "name": format!("{conn} ({})", ch.id), "number": ch.id,
                        "node": node.name, "vhost": VHOST, "user": c.user,
                        "connection_details": {"name": conn, "peer_host": host, "peer_port": port},
                        "consumer_count": ch.consumers,
                        "messages_unacknowledged": ch.unacked,
                        "prefetch_count": ch.prefetch, "confirm": ch.confirm,
                        "state": "running",
                    }), view.stats.channel_json(c.key, ch))
                })
                .collect(),
        ),
        Resource::Consumers(v) if vhost_ok(v) => consumers(view, None),
        Resource::Vhosts => Value::Array(vec![vhost_json(view)]),
        Resource::Users => Value::Array(view.users.iter().map(user_json).collect()),
        Resource::User(name) => user_json(view.users.iter().find(|u| &u.name == name)?),
        Resource::Vhost(v) if v == VHOST => vhost_json(view),
        _ => return None,
    })
}

/// `v` with its `message_stats` (`super::stats`), when it has any.
fn with_stats(mut v: Value, stats: Option<Value>) -> Value {
    if let Some(s) = stats {
        v["message_stats"] = s;
    }
    v
}

/// A user as RabbitMQ 3.10 shows one (`tags` a list).
fn user_json(u: &crate::broker::auth::UserDef) -> Value {
    json!({
        "name": u.name, "password_hash": u.password_hash,
        "hashing_algorithm": u.hashing_algorithm, "tags": u.tags, "limits": {},
    })
}

fn vhost_json(view: &View) -> Value {
    let (ready, unacked) = queues(view).fold((0u64, 0u64), |(r, u), q| {
        (r + q.messages as u64, u + q.unacked as u64)
    });
    json!({
        "name": VHOST, "description": "Default virtual host", "tags": [],
        "metadata": {"description": "Default virtual host", "tags": []},
        "tracing": false, "messages": ready + unacked, "messages_ready": ready,
        "messages_unacknowledged": unacked,
    })
}

fn consumers(view: &View, queue: Option<&str>) -> Value {
    let mut out = Vec::new();
    for s in &view.snapshots {
        for q in s
            .queues
            .iter()
            .filter(|q| queue.is_none_or(|n| q.name.as_str() == n))
        {
            for (key, no_ack, prefetch, _unacked) in &q.consumers {
                let conn = view
                    .snapshots
                    .iter()
                    .flat_map(|s| s.connections.iter())
                    .find(|c| c.key.shard == key.shard && c.key.id == key.conn);
                let active = q.single_active_consumer.as_ref().is_none_or(|k| k == key);
                let status = match (&q.single_active_consumer, active) {
                    (None, _) => "up",
                    (Some(_), true) => "single_active",
                    (Some(_), false) => "waiting",
                };
                let (peer, user) = conn.map_or(("", ""), |c| (c.peer.as_str(), c.user.as_str()));
                out.push(json!({
                    "consumer_tag": key.tag.as_str(),
                    "queue": {"name": q.name.as_str(), "vhost": VHOST},
                    "ack_required": !no_ack, "prefetch_count": prefetch,
                    "active": active, "activity_status": status, "arguments": {},
                    "channel_details": {"number": key.channel, "connection_name": peer, "user": user},
                }));
            }
        }
    }
    Value::Array(out)
}

fn connection_name(peer: &str, node: &Node) -> String {
    format!("{peer} -> {}:{}", node.amqp_bind, node.amqp_port)
}

fn split_peer(peer: &str) -> (&str, Value) {
    match peer.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_or(Value::Null, |p| json!(p))),
        None => (peer, Value::Null),
    }
}

/// `/api/overview`: totals and counts (`message_stats` with rates, see
/// `super::stats`).
pub fn overview(view: &View, node: &Node, user: &str) -> Value {
    let (ready, unacked) = queues(view).fold((0u64, 0u64), |(r, u), q| {
        (r + q.messages as u64, u + q.unacked as u64)
    });
    let conns: Vec<_> = view
        .snapshots
        .iter()
        .flat_map(|s| s.connections.iter())
        .collect();
    let consumers: usize = queues(view).map(|q| q.consumers.len()).sum();
    use crate::broker::exchange::ExchangeKind as K;
    let exchange_types: Vec<Value> = [
        K::Direct,
        K::Fanout,
        K::Topic,
        K::Headers,
        K::DelayedMessage,
    ]
    .iter()
    .map(|k| json!({"name": k.as_str(), "description": "", "enabled": true}))
    .collect();
    json!({
        "management_version": "3.10.8",
        "rabbitmq_version": "3.10.8",
        "product_name": "Warren",
        "product_version": env!("CARGO_PKG_VERSION"),
        "cluster_name": "warren",
        "node": node.name,
        "rates_mode": "basic",
        "disable_stats": false,
        "enable_queue_totals": true,
        "exchange_types": exchange_types,
        "message_stats": view.stats.overview_json(),
        "queue_totals": {"messages": ready + unacked, "messages_ready": ready, "messages_unacknowledged": unacked},
        "object_totals": {
            "connections": conns.len(),
            "channels": conns.iter().map(|c| c.channels.len()).sum::<usize>(),
            "exchanges": view.exchanges.len(),
            "queues": queues(view).count(),
            "consumers": consumers,
        },
        "listeners": [
            {"node": node.name, "protocol": "amqp", "ip_address": node.amqp_bind, "port": node.amqp_port},
            {"node": node.name, "protocol": "http", "ip_address": "", "port": node.management_port},
        ],
        "contexts": [{"node": node.name, "description": "RabbitMQ Management", "path": "/", "port": node.management_port.to_string()}],
        "user": user,
    })
}
