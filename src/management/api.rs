//! The management API's resources as RabbitMQ's JSON: routing a request's
//! path to a resource and rendering it from a `View` (pure, so it runs on
//! the management thread and is unit-tested alone). Field names, status
//! codes and error bodies follow RabbitMQ 3.10's management plugin.

pub use super::amqp_json::table_json;
use super::binding_keys::{exchange_id, Dest};
use super::bridge::View;
use crate::broker::binding::BindingDef;
use crate::broker::exchange::{Destination, ExchangeDef};
use crate::broker::vhost::VhostId;
use crate::protocol::types::{FieldTable, FieldValue, ShortStr};
use crate::shard::envelope::{ConnectionSnapshot, QueueSnapshot};
use serde_json::{json, Value};

/// What the API knows about the node that is not shard state.
pub struct Node {
    pub name: String,
    pub amqp_bind: String,
    pub amqp_port: u16,
    pub management_port: u16,
    /// The data directory (its file system's free space is `disk_free`).
    pub data_dir: std::path::PathBuf,
    /// When the broker started (`uptime`).
    pub started: std::time::Instant,
}

/// A resource of the API (what a path names).
#[derive(Debug, PartialEq)]
pub enum Resource {
    Overview,
    Whoami,
    Vhosts,
    Vhost(String),
    Queues(Option<String>),
    Queue(String, String),
    QueueBindings(String, String),
    QueueContents(String, String),
    QueueGet(String, String),
    Exchanges(Option<String>),
    Exchange(String, String),
    ExchangePublish(String, String),
    /// The bindings from (`true`) or to (`false`) an exchange.
    ExchangeBindings(String, String, bool),
    Bindings(Option<String>),
    /// The bindings between a source exchange and a destination.
    BindingsBetween(String, String, Dest),
    /// One binding: source, destination, properties key.
    Binding(String, String, Dest, String),
    Connections,
    Connection(String),
    Channels,
    Consumers(Option<String>),
    Nodes,
    Node(String),
    AlivenessTest(String),
    AlarmsCheck,
    LocalAlarmsCheck,
}

impl Resource {
    /// The vhost the path names, if it names one.
    pub fn vhost(&self) -> Option<&str> {
        use Resource as R;
        match self {
            R::Queues(v) | R::Exchanges(v) | R::Bindings(v) | R::Consumers(v) => v.as_deref(),
            R::Queue(v, _)
            | R::QueueBindings(v, _)
            | R::QueueContents(v, _)
            | R::QueueGet(v, _)
            | R::Exchange(v, _)
            | R::ExchangePublish(v, _)
            | R::ExchangeBindings(v, _, _)
            | R::BindingsBetween(v, _, _)
            | R::Binding(v, _, _, _)
            | R::AlivenessTest(v) => Some(v),
            _ => None,
        }
    }
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
        ["queues"] => Resource::Queues(None),
        ["queues", v] => Resource::Queues(Some(own(v))),
        ["queues", v, q] => Resource::Queue(own(v), own(q)),
        ["queues", v, q, "bindings"] => Resource::QueueBindings(own(v), own(q)),
        ["queues", v, q, "contents"] => Resource::QueueContents(own(v), own(q)),
        ["queues", v, q, "get"] => Resource::QueueGet(own(v), own(q)),
        ["exchanges"] => Resource::Exchanges(None),
        ["exchanges", v] => Resource::Exchanges(Some(own(v))),
        ["exchanges", v, x] => Resource::Exchange(own(v), exchange_id(x).to_string()),
        ["exchanges", v, x, "publish"] => {
            Resource::ExchangePublish(own(v), exchange_id(x).to_string())
        }
        ["exchanges", v, x, "bindings", "source"] => {
            Resource::ExchangeBindings(own(v), exchange_id(x).to_string(), true)
        }
        ["exchanges", v, x, "bindings", "destination"] => {
            Resource::ExchangeBindings(own(v), exchange_id(x).to_string(), false)
        }
        ["bindings"] => Resource::Bindings(None),
        ["bindings", v] => Resource::Bindings(Some(own(v))),
        ["bindings", v, "e", x, kind, d] => {
            Resource::BindingsBetween(own(v), exchange_id(x).to_string(), Dest::parse(kind, d)?)
        }
        ["bindings", v, "e", x, kind, d, props] => Resource::Binding(
            own(v),
            exchange_id(x).to_string(),
            Dest::parse(kind, d)?,
            own(props),
        ),
        ["connections"] => Resource::Connections,
        ["connections", c] => Resource::Connection(own(c)),
        ["channels"] => Resource::Channels,
        ["consumers"] => Resource::Consumers(None),
        ["consumers", v] => Resource::Consumers(Some(own(v))),
        ["nodes"] => Resource::Nodes,
        ["nodes", n] => Resource::Node(own(n)),
        ["aliveness-test", v] => Resource::AlivenessTest(own(v)),
        ["health", "checks", "alarms"] => Resource::AlarmsCheck,
        ["health", "checks", "local-alarms"] => Resource::LocalAlarmsCheck,
        _ => return None,
    })
}

/// RabbitMQ's 404 body.
pub fn not_found() -> Value {
    json!({"error": "Object Not Found", "reason": "Not Found"})
}

/// The fields of a queue that are plain values of its snapshot (what a
/// listing can sort on without rendering every queue: `queue_list`).
pub const QUEUE_SCALARS: &[&str] = &[
    "name",
    "vhost",
    "node",
    "type",
    "durable",
    "auto_delete",
    "exclusive",
    "consumers",
    "messages",
    "messages_ready",
    "messages_unacknowledged",
    "messages_ram",
    "messages_ready_ram",
    "messages_paged_out",
    "message_bytes",
    "message_bytes_ready",
    "message_bytes_unacknowledged",
    "memory",
    "oldest_ready_age_seconds",
    "oldest_unacked_age_seconds",
    "state",
    "policy",
    "exclusive_consumer_tag",
    "single_active_consumer_tag",
    "operator_policy",
    "recoverable_slaves",
];

/// Field `field` (one of `QUEUE_SCALARS`) of queue `q` in `vhost` on node
/// `node`; None for any other name.
pub fn queue_scalar(q: &QueueSnapshot, vhost: &str, node: &str, field: &str) -> Option<Value> {
    Some(match field {
        "name" => json!(q.name.as_str()),
        "vhost" => json!(vhost),
        "node" => json!(node),
        "type" => json!("classic"),
        "durable" => json!(q.durable),
        "auto_delete" => json!(q.auto_delete),
        "exclusive" => json!(q.exclusive),
        "consumers" => json!(q.consumers.len()),
        "messages" => json!(q.messages as u64 + q.unacked as u64),
        "messages_ready" => json!(q.messages),
        "messages_unacknowledged" => json!(q.unacked),
        "messages_ram" | "messages_ready_ram" => json!(q.messages_ram),
        "messages_paged_out" => json!(q.messages_paged_out),
        "message_bytes" => json!(q.message_bytes_ready + q.message_bytes_unacknowledged),
        "message_bytes_ready" => json!(q.message_bytes_ready),
        "message_bytes_unacknowledged" => json!(q.message_bytes_unacknowledged),
        // The messages' memory by Warren's accounting (not the queue's own
        // structures): see `QueueSnapshot::memory`.
        "memory" => json!(q.memory),
        // Beyond RabbitMQ: see `broker::queue::ages`.
        "oldest_ready_age_seconds" => json!(q.oldest_ready_age_seconds),
        "oldest_unacked_age_seconds" => json!(q.oldest_unacked_age_seconds),
        "state" => json!(q.state),
        "policy" if q.policy.is_empty() => Value::Null,
        "policy" => json!(q.policy),
        "single_active_consumer_tag" => {
            json!(q.single_active_consumer.as_ref().map(|k| k.tag.as_str()))
        }
        "exclusive_consumer_tag" | "operator_policy" | "recoverable_slaves" => Value::Null,
        _ => return None,
    })
}

/// A queue, with the fields RabbitMQ shows for a classic queue that Warren
/// has figures for.
pub fn queue_json(q: &QueueSnapshot, vhost: &str, args: Option<&FieldTable>, node: &Node) -> Value {
    let mut v = serde_json::Map::new();
    for field in QUEUE_SCALARS {
        if let Some(value) = queue_scalar(q, vhost, &node.name, field) {
            v.insert(field.to_string(), value);
        }
    }
    v.insert(
        "arguments".into(),
        args.map_or_else(|| json!({}), table_json),
    );
    v.insert("effective_policy_definition".into(), json!({}));
    // As RabbitMQ's fixture: 0 without consumers.
    v.insert(
        "consumer_utilisation".into(),
        json!(q.consumer_utilisation.unwrap_or(0.0)),
    );
    Value::Object(v)
}

/// A queue of a listing: its fields and its `message_stats`.
pub fn queue_item(
    q: &QueueSnapshot,
    vhost: &str,
    args: Option<&FieldTable>,
    node: &Node,
    stats: &super::stats::Stats,
) -> Value {
    with_stats(queue_json(q, vhost, args, node), stats.queue_json(q))
}

/// `/api/queues[/{vhost}]` (None: every vhost `scope` shows) with the
/// query applied: sorted, filtered and paged on the snapshots before any
/// queue is rendered, so a page of 100 k queues renders only its page.
/// The order is RabbitMQ's (`rabbit_mgmt_util`'s default sort): by vhost,
/// then name; a `sort` field comes first, ties keeping that order. A sort
/// on a field outside `QUEUE_SCALARS` (`message_stats.…`, `arguments.…`)
/// renders every queue to read it.
pub fn queue_list(
    view: &View,
    node: &Node,
    scope: &Scope<'_>,
    vhost: Option<&str>,
    query: &[(String, String)],
) -> Result<Value, super::listing::BadQuery> {
    let mut list: Vec<(&str, &QueueSnapshot)> = queues(view)
        .map(|q| (view.vhost_name(q.name.vhost), q))
        .filter(|(v, _)| match vhost {
            Some(wanted) => v == &wanted,
            None => scope.shows(view, v),
        })
        .collect();
    // Stable: each shard's snapshot is sorted by name already, and a
    // merge sort joins such runs in about one pass.
    list.sort_by(|a, b| (a.0, a.1.name.as_str()).cmp(&(b.0, b.1.name.as_str())));
    let render = |(v, q): (&str, &QueueSnapshot)| {
        queue_item(q, v, view.queue_arguments.get(&q.name), node, &view.stats)
    };
    let selection = super::listing::plan(
        list.len(),
        query,
        |i| Some(list[i].1.name.as_str()),
        |i, field| {
            let (v, q) = list[i];
            if QUEUE_SCALARS.contains(&field) {
                queue_scalar(q, v, &node.name, field)
            } else {
                super::listing::field(&render(list[i]), field).cloned()
            }
        },
    )?;
    let items = selection.order.iter().map(|&i| render(list[i])).collect();
    Ok(selection.finish(items, query))
}

pub fn exchange_json(x: &ExchangeDef, vhost: &str, policy: &str) -> Value {
    let mut v = json!({
        "name": x.name.as_str(),
        "vhost": vhost,
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

pub fn binding_json(b: &BindingDef, vhost: &str) -> Value {
    let (kind, dest) = match &b.destination {
        Destination::Queue(q) => ("queue", q.as_str()),
        Destination::Exchange(x) => ("exchange", x.as_str()),
    };
    json!({
        "source": b.source.as_str(), "vhost": vhost, "destination": dest,
        "destination_type": kind, "routing_key": b.routing_key.as_str(),
        "arguments": table_json(&b.arguments),
        "properties_key": super::binding_keys::properties_key(&b.routing_key, &b.arguments),
    })
}

/// The default exchange's implicit binding of a queue, as RabbitMQ lists it.
fn default_binding(queue: &str, vhost: &str) -> Value {
    let b = BindingDef {
        source: ShortStr::from_static(""),
        destination: Destination::Queue(ShortStr::from(queue)),
        routing_key: ShortStr::from(queue),
        arguments: FieldTable::default(),
    };
    binding_json(&b, vhost)
}

/// Which vhosts and connections a user's listings show, as RabbitMQ's
/// `rabbit_mgmt_util`: administrators every vhost, other users the vhosts
/// they have permissions in (`filter_vhost`); `/api/vhosts` also every
/// vhost to monitors (`list_visible_vhosts`); connections and channels
/// every user's to monitors, their own to others (`filter_user`).
pub struct Scope<'a> {
    pub user: &'a str,
    pub admin: bool,
    pub monitor: bool,
}

impl Scope<'_> {
    fn shows(&self, view: &View, vhost: &str) -> bool {
        self.admin || view.login_vhosts.iter().any(|v| v == vhost)
    }

    fn shows_vhost(&self, view: &View, vhost: &str) -> bool {
        self.monitor || self.shows(view, vhost)
    }

    fn shows_user(&self, user: &str) -> bool {
        self.monitor || self.user == user
    }
}

fn queues(view: &View) -> impl Iterator<Item = &QueueSnapshot> {
    view.snapshots.iter().flat_map(|s| s.queues.iter())
}

fn find_queue<'a>(view: &'a View, vhost: &str, name: &str) -> Option<&'a QueueSnapshot> {
    let id = view.vhost_id(vhost)?;
    queues(view).find(|q| q.name.vhost == id && q.name.as_str() == name)
}

fn queue_entry(view: &View, q: &QueueSnapshot, node: &Node) -> Value {
    queue_json(
        q,
        view.vhost_name(q.name.vhost),
        view.queue_arguments.get(&q.name),
        node,
    )
}

/// The bindings of one vhost, with the default exchange's implicit ones
/// first (as RabbitMQ lists them).
fn vhost_bindings(view: &View, vhost: &str) -> Vec<Value> {
    let Some(id) = view.vhost_id(vhost) else {
        return Vec::new();
    };
    let mut out: Vec<Value> = queues(view)
        .filter(|q| q.name.vhost == id)
        .map(|q| default_binding(&q.name, vhost))
        .collect();
    out.extend(
        view.bindings
            .iter()
            .filter(|(v, _)| *v == id)
            .map(|(_, b)| binding_json(b, vhost)),
    );
    out
}

/// The items of a list resource (before `listing::apply`), or the body of
/// a single one; None for a 404.
pub fn render(resource: &Resource, view: &View, node: &Node, scope: &Scope<'_>) -> Option<Value> {
    // A vhost in the path must exist.
    if let Some(v) = resource.vhost() {
        view.vhost_id(v)?;
    }
    let visible = |id: VhostId| scope.shows(view, view.vhost_name(id));
    Some(match resource {
        Resource::Queue(v, name) => {
            let q = find_queue(view, v, name)?;
            let mut body = with_stats(queue_entry(view, q, node), view.stats.queue_json(q));
            body["consumer_details"] = consumers(view, scope, Some((v, name)));
            body
        }
        Resource::QueueBindings(v, name) => {
            find_queue(view, v, name)?;
            let id = view.vhost_id(v)?;
            let mut out = vec![default_binding(name, v)];
            out.extend(
                view.bindings
                    .iter()
                    .filter(|(vh, b)| {
                        *vh == id
                            && matches!(&b.destination, Destination::Queue(q) if q.as_str() == name)
                    })
                    .map(|(_, b)| binding_json(b, v)),
            );
            Value::Array(out)
        }
        Resource::Exchanges(v) => Value::Array(
            view.exchanges
                .iter()
                .filter(|(id, _, _)| match v {
                    Some(v) => view.vhost_name(*id) == v,
                    None => visible(*id),
                })
                .map(|(id, x, p)| {
                    with_stats(
                        exchange_json(x, view.vhost_name(*id), p),
                        view.stats.exchange_json(*id, &x.name),
                    )
                })
                .collect(),
        ),
        Resource::Exchange(v, name) => {
            let id = view.vhost_id(v)?;
            let (_, x, p) = view
                .exchanges
                .iter()
                .find(|(vh, x, _)| *vh == id && x.name.as_str() == name)?;
            with_stats(exchange_json(x, v, p), view.stats.exchange_json(id, &x.name))
        }
        Resource::ExchangeBindings(v, name, from) => {
            let id = view.vhost_id(v)?;
            view.exchanges
                .iter()
                .find(|(vh, x, _)| *vh == id && x.name.as_str() == name)?;
            let mut out: Vec<Value> = Vec::new();
            if *from && name.is_empty() {
                out.extend(
                    queues(view)
                        .filter(|q| q.name.vhost == id)
                        .map(|q| default_binding(&q.name, v)),
                );
            }
            out.extend(
                view.bindings
                    .iter()
                    .filter(|(vh, b)| {
                        *vh == id
                            && if *from {
                                b.source.as_str() == name
                            } else {
                                matches!(&b.destination, Destination::Exchange(x) if x.as_str() == name)
                            }
                    })
                    .map(|(_, b)| binding_json(b, v)),
            );
            Value::Array(out)
        }
        Resource::Bindings(Some(v)) => Value::Array(vhost_bindings(view, v)),
        Resource::Bindings(None) => Value::Array(
            view.vhosts
                .iter()
                .filter(|(id, _)| visible(*id))
                .flat_map(|(_, name)| vhost_bindings(view, name))
                .collect(),
        ),
        Resource::BindingsBetween(v, source, dest) => {
            Value::Array(bindings_between(view, v, source, dest))
        }
        Resource::Binding(v, source, dest, props) => bindings_between(view, v, source, dest)
            .into_iter()
            .find(|b| b["properties_key"] == json!(props))?,
        Resource::Connections => Value::Array(
            connections(view, scope)
                .map(|c| connection_json(view, c, node))
                .collect(),
        ),
        Resource::Connection(name) => {
            let c = connections(view, scope).find(|c| connection_name(&c.peer, node) == *name)?;
            connection_json(view, c, node)
        }
        Resource::Channels => Value::Array(
            connections(view, scope)
                .flat_map(|c| c.channels.iter().map(move |ch| (c, ch)))
                .map(|(c, ch)| {
                    let conn = connection_name(&c.peer, node);
                    let (host, port) = split_peer(&c.peer);
                    with_stats(json!({
                        "name": format!("{conn} ({})", ch.id), "number": ch.id,
                        "node": node.name, "vhost": view.vhost_name(c.vhost), "user": c.user,
                        "connection_details": {"name": conn, "peer_host": host, "peer_port": port},
                        "consumer_count": ch.consumers,
                        "messages_unacknowledged": ch.unacked,
                        "prefetch_count": ch.prefetch, "confirm": ch.confirm,
                        "state": "running",
                    }), view.stats.channel_json(c.key, ch))
                })
                .collect(),
        ),
        Resource::Consumers(v) => match v {
            Some(v) => consumers(view, scope, Some((v, ""))),
            None => consumers(view, scope, None),
        },
        Resource::Vhosts => Value::Array(
            view.vhosts
                .iter()
                .filter(|(_, n)| scope.shows_vhost(view, n))
                .map(|(id, n)| vhost_json(view, *id, n))
                .collect(),
        ),
        Resource::Vhost(v) => vhost_json(view, view.vhost_id(v)?, v),
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

fn bindings_between(view: &View, vhost: &str, source: &str, dest: &Dest) -> Vec<Value> {
    let Some(id) = view.vhost_id(vhost) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if source.is_empty() {
        if let Dest::Queue(q) = dest {
            if find_queue(view, vhost, q).is_some() {
                out.push(default_binding(q, vhost));
            }
        }
    }
    out.extend(
        view.bindings
            .iter()
            .filter(|(v, b)| {
                *v == id && b.source.as_str() == source && dest.matches(&b.destination)
            })
            .map(|(_, b)| binding_json(b, vhost)),
    );
    out
}

fn connections<'a>(
    view: &'a View,
    scope: &'a Scope<'_>,
) -> impl Iterator<Item = &'a ConnectionSnapshot> + 'a {
    view.snapshots
        .iter()
        .flat_map(|s| s.connections.iter())
        .filter(move |c| scope.shows_user(&c.user))
}

/// The connection called `name` (whoever's it is).
pub fn find_connection<'a>(
    view: &'a View,
    name: &str,
    node: &Node,
) -> Option<&'a ConnectionSnapshot> {
    view.snapshots
        .iter()
        .flat_map(|s| s.connections.iter())
        .find(|c| connection_name(&c.peer, node) == name)
}

fn connection_json(view: &View, c: &ConnectionSnapshot, node: &Node) -> Value {
    let (host, port) = split_peer(&c.peer);
    let mut conn = json!({
        "name": connection_name(&c.peer, node),
        "node": node.name, "vhost": view.vhost_name(c.vhost), "user": c.user,
        "peer_host": host, "peer_port": port,
        "host": node.amqp_bind, "port": node.amqp_port,
        "channels": c.channels.len(), "state": "running",
        "protocol": "AMQP 0-9-1", "type": "network",
        "ssl": c.tls.is_some(),
        "client_properties": table_json(&c.client_properties),
        "channel_max": c.channel_max, "frame_max": c.frame_max, "timeout": c.heartbeat,
    });
    // RabbitMQ shows the name a client gave its connection, and only then.
    if let Some(FieldValue::LongStr(name)) = c.client_properties.get("connection_name") {
        conn["user_provided_name"] = json!(String::from_utf8_lossy(name));
    }
    if let (Some(conn), Value::Object(octets)) =
        (conn.as_object_mut(), view.stats.connection_octets(c))
    {
        conn.extend(octets);
    }
    if let Some(t) = &c.tls {
        conn["ssl_protocol"] = json!(t.protocol);
        conn["ssl_cipher"] = json!(t.cipher);
        conn["peer_cert_subject"] = json!(t.peer_cert_subject);
    }
    conn
}

fn vhost_json(view: &View, id: VhostId, name: &str) -> Value {
    let (ready, unacked) = queues(view)
        .filter(|q| q.name.vhost == id)
        .fold((0u64, 0u64), |(r, u), q| {
            (r + q.messages as u64, u + q.unacked as u64)
        });
    let description = if name == crate::broker::vhost::DEFAULT_VHOST {
        "Default virtual host"
    } else {
        ""
    };
    json!({
        "name": name, "description": description, "tags": [],
        "metadata": {"description": description, "tags": []},
        "tracing": false, "messages": ready + unacked, "messages_ready": ready,
        "messages_unacknowledged": unacked,
    })
}

/// The consumers of the visible vhosts, of one vhost (`(vhost, "")`) or
/// of one queue (`(vhost, queue)`).
fn consumers(view: &View, scope: &Scope<'_>, of: Option<(&str, &str)>) -> Value {
    let mut out = Vec::new();
    for q in queues(view) {
        let vhost = view.vhost_name(q.name.vhost);
        let wanted = match of {
            None => scope.shows(view, vhost),
            Some((v, "")) => v == vhost,
            Some((v, name)) => v == vhost && q.name.as_str() == name,
        };
        if !wanted {
            continue;
        }
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
                "queue": {"name": q.name.as_str(), "vhost": vhost},
                "ack_required": !no_ack, "prefetch_count": prefetch,
                "active": active, "activity_status": status, "arguments": {},
                "channel_details": {"number": key.channel, "connection_name": peer, "user": user},
            }));
        }
    }
    Value::Array(out)
}

pub fn connection_name(peer: &str, node: &Node) -> String {
    format!("{peer} -> {}:{}", node.amqp_bind, node.amqp_port)
}

fn split_peer(peer: &str) -> (&str, Value) {
    match peer.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_or(Value::Null, |p| json!(p))),
        None => (peer, Value::Null),
    }
}

/// RabbitMQ's exchange types, as `/api/overview` and `/api/nodes` list
/// them.
pub fn exchange_types() -> Vec<Value> {
    use crate::broker::exchange::ExchangeKind as K;
    [
        K::Direct,
        K::Fanout,
        K::Topic,
        K::Headers,
        K::DelayedMessage,
    ]
    .iter()
    .map(|k| json!({"name": k.as_str(), "description": "", "enabled": true}))
    .collect()
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
    let exchange_types = exchange_types();
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
