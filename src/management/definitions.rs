//! RabbitMQ's definitions format (what `GET /api/definitions` and
//! `rabbitmqctl export_definitions` write): the broker's definitions copied
//! out of shard 0 (`Snapshot`), rendered as RabbitMQ 3.10's management
//! export (`export`, every vhost; `export_vhost`, one vhost's objects
//! without the `vhost` fields), and a file read back into typed entries
//! (`parse`), each error naming the entry (`users[2] "bob": …`). What an
//! import then does with the entries is `import`'s. Field tables travel as
//! JSON objects (`json_field`; the other way is `amqp_json::table_json`).

use super::amqp_json::table_json;
use crate::broker::auth::{AuthDefs, PermissionDef, TopicPermissionDef, UserDef};
use crate::broker::exchange::{BindingDef, Destination, ExchangeDef};
use crate::broker::vhost::VhostLimits;
use crate::protocol::types::{FieldTable, FieldValue, ShortStr};
use crate::shard::metadata::Metadata;
use crate::storage::definitions::PolicyDef;
use bytes::Bytes;
use serde_json::{json, Map, Value};

/// The RabbitMQ version the export claims (tools read it to pick a format).
pub const RABBIT_VERSION: &str = "3.10.8";

/// A queue as the definitions hold it.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueEntry {
    pub vhost: String,
    pub name: String,
    pub durable: bool,
    pub auto_delete: bool,
    pub exclusive: bool,
    pub arguments: FieldTable,
}

/// The definitions of the broker, copied from shard 0's metadata.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every vhost with its limits, by name.
    pub vhosts: Vec<(String, VhostLimits)>,
    pub auth: AuthDefs,
    /// (vhost, policy).
    pub policies: Vec<(String, PolicyDef)>,
    /// (vhost, exchange), the predeclared ones included.
    pub exchanges: Vec<(String, ExchangeDef)>,
    pub queues: Vec<QueueEntry>,
    /// (vhost, binding).
    pub bindings: Vec<(String, BindingDef)>,
}

impl Snapshot {
    /// Copies the definitions out of a shard's metadata.
    pub fn of(meta: &Metadata) -> Snapshot {
        let mut s = Snapshot {
            auth: meta.auth.defs().clone(),
            ..Snapshot::default()
        };
        for v in meta.vhosts.values() {
            let name = v.name.to_string();
            s.vhosts.push((name.clone(), v.limits));
            s.policies
                .extend(v.policies.iter().map(|p| (name.clone(), p.def.clone())));
            s.exchanges
                .extend(v.topology.exchanges().map(|x| (name.clone(), x.clone())));
            s.bindings
                .extend(v.topology.bindings().into_iter().map(|b| (name.clone(), b)));
        }
        s.queues = meta
            .queues
            .values()
            .map(|q| QueueEntry {
                vhost: meta.vhost_name(q.name.vhost).to_string(),
                name: q.name.name.to_string(),
                durable: q.config.durable,
                auto_delete: q.config.auto_delete,
                exclusive: q.config.exclusive,
                arguments: q.config.arguments.clone(),
            })
            .collect();
        s.vhosts.sort_by(|a, b| a.0.cmp(&b.0));
        s.policies
            .sort_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
        s.exchanges
            .sort_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
        s.queues
            .sort_by(|a, b| (&a.vhost, &a.name).cmp(&(&b.vhost, &b.name)));
        s
    }

    pub fn has_vhost(&self, name: &str) -> bool {
        self.vhosts.iter().any(|(v, _)| v == name)
    }

    pub fn limits(&self, vhost: &str) -> Option<VhostLimits> {
        self.vhosts
            .iter()
            .find(|(v, _)| v == vhost)
            .map(|(_, l)| *l)
    }
}

/// A JSON value as a field value (integers as signed 64-bit, other numbers
/// as doubles, as RabbitMQ's `to_amqp_table`).
pub fn json_field(v: &Value) -> Result<FieldValue, String> {
    Ok(match v {
        Value::Null => FieldValue::Void,
        Value::Bool(b) => FieldValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => FieldValue::I64(i),
            None => FieldValue::F64(n.as_f64().ok_or("number out of range")?),
        },
        Value::String(s) => FieldValue::LongStr(Bytes::from(s.clone())),
        Value::Array(a) => FieldValue::Array(a.iter().map(json_field).collect::<Result<_, _>>()?),
        Value::Object(_) => FieldValue::Table(json_table(v)?),
    })
}

/// A JSON object (or null / `[]`, RabbitMQ's empty table) as a field table.
pub fn json_table(v: &Value) -> Result<FieldTable, String> {
    match v {
        Value::Null => Ok(FieldTable::new()),
        Value::Array(a) if a.is_empty() => Ok(FieldTable::new()),
        Value::Object(o) => {
            let mut t = FieldTable::new();
            for (k, v) in o {
                let key = ShortStr::try_from_string(k.clone())
                    .ok_or_else(|| format!("key '{k}' longer than 255 bytes"))?;
                t.0.push((key, json_field(v)?));
            }
            Ok(t)
        }
        _ => Err("expected a JSON object".into()),
    }
}

fn metadata(product_version: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("rabbit_version".into(), json!(RABBIT_VERSION));
    m.insert("rabbitmq_version".into(), json!(RABBIT_VERSION));
    m.insert("product_name".into(), json!("Warren"));
    m.insert("product_version".into(), json!(product_version));
    m
}

/// A user as RabbitMQ 3.10 exports it (`tags` a list).
pub fn user_json(u: &UserDef) -> Value {
    json!({
        "name": u.name, "password_hash": u.password_hash,
        "hashing_algorithm": u.hashing_algorithm, "tags": u.tags, "limits": {},
    })
}

pub fn permission_json(p: &PermissionDef) -> Value {
    json!({"user": p.user, "vhost": p.vhost, "configure": p.configure, "write": p.write, "read": p.read})
}

pub fn topic_permission_json(t: &TopicPermissionDef) -> Value {
    json!({"user": t.user, "vhost": t.vhost, "exchange": t.exchange, "write": t.write, "read": t.read})
}

/// A vhost's limits as RabbitMQ writes them (`{"max-connections": 10}`).
pub fn limits_json(l: &VhostLimits) -> Value {
    let mut m = Map::new();
    if let Some(n) = l.max_connections {
        m.insert("max-connections".into(), json!(n));
    }
    if let Some(n) = l.max_queues {
        m.insert("max-queues".into(), json!(n));
    }
    Value::Object(m)
}

/// A vhost's limits as the runtime parameter RabbitMQ keeps them in.
pub fn limits_parameter(vhost: &str, l: &VhostLimits) -> Value {
    json!({"vhost": vhost, "component": "vhost-limits", "name": "limits", "value": limits_json(l)})
}

pub fn policy_json(vhost: &str, p: &PolicyDef) -> Value {
    json!({
        "vhost": vhost, "name": p.name, "pattern": p.pattern, "apply-to": p.apply_to,
        "definition": table_json(&p.definition), "priority": p.priority,
    })
}

fn queue_json(q: &QueueEntry) -> Value {
    json!({
        "name": q.name, "vhost": q.vhost, "durable": q.durable,
        "auto_delete": q.auto_delete, "arguments": table_json(&q.arguments),
    })
}

fn exchange_json(vhost: &str, x: &ExchangeDef) -> Value {
    json!({
        "name": x.name.as_str(), "vhost": vhost, "type": x.kind.as_str(), "durable": x.durable,
        "auto_delete": x.auto_delete, "internal": x.internal, "arguments": table_json(&x.arguments),
    })
}

fn binding_json(vhost: &str, b: &BindingDef) -> Value {
    let (kind, dest) = match &b.destination {
        Destination::Queue(q) => ("queue", q.as_str()),
        Destination::Exchange(x) => ("exchange", x.as_str()),
    };
    json!({
        "source": b.source.as_str(), "vhost": vhost, "destination": dest,
        "destination_type": kind, "routing_key": b.routing_key.as_str(),
        "arguments": table_json(&b.arguments),
    })
}

/// What RabbitMQ exports: not the default and `amq.*` exchanges, not
/// exclusive queues, not bindings of the default exchange or to a queue
/// left out.
fn exported(s: &Snapshot, vhost: Option<&str>) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let in_scope = |v: &str| vhost.is_none_or(|w| w == v);
    let queues: Vec<&QueueEntry> = s
        .queues
        .iter()
        .filter(|q| !q.exclusive && in_scope(&q.vhost))
        .collect();
    let kept: std::collections::HashSet<(&str, &str)> = queues
        .iter()
        .map(|q| (q.vhost.as_str(), q.name.as_str()))
        .collect();
    let exchanges = s
        .exchanges
        .iter()
        .filter(|(v, x)| in_scope(v) && !x.name.is_empty() && !x.name.starts_with("amq."))
        .map(|(v, x)| exchange_json(v, x))
        .collect();
    let bindings = s
        .bindings
        .iter()
        .filter(|(v, b)| in_scope(v) && !b.source.is_empty())
        .filter(|(v, b)| match &b.destination {
            Destination::Queue(q) => kept.contains(&(v.as_str(), q.as_str())),
            Destination::Exchange(x) => !x.is_empty(),
        })
        .map(|(v, b)| binding_json(v, b))
        .collect();
    (
        queues.into_iter().map(queue_json).collect(),
        exchanges,
        bindings,
    )
}

fn limit_parameters<'a>(
    s: &'a Snapshot,
    vhost: Option<&'a str>,
) -> impl Iterator<Item = Value> + 'a {
    s.vhosts
        .iter()
        .filter(move |(v, l)| !l.is_empty() && vhost.is_none_or(|w| w == v))
        .map(|(v, l)| limits_parameter(v, l))
}

/// `GET /api/definitions`: everything, as RabbitMQ 3.10's management
/// plugin exports it.
pub fn export(s: &Snapshot, product_version: &str) -> Value {
    let mut m = metadata(product_version);
    let (queues, exchanges, bindings) = exported(s, None);
    m.insert(
        "users".into(),
        s.auth.users.values().map(user_json).collect(),
    );
    m.insert(
        "vhosts".into(),
        s.vhosts.iter().map(|(v, _)| json!({"name": v})).collect(),
    );
    m.insert(
        "permissions".into(),
        s.auth.permissions.values().map(permission_json).collect(),
    );
    m.insert(
        "topic_permissions".into(),
        s.auth
            .topic_permissions
            .values()
            .map(topic_permission_json)
            .collect(),
    );
    m.insert("parameters".into(), limit_parameters(s, None).collect());
    m.insert("global_parameters".into(), json!([]));
    m.insert(
        "policies".into(),
        s.policies.iter().map(|(v, p)| policy_json(v, p)).collect(),
    );
    m.insert("queues".into(), Value::Array(queues));
    m.insert("exchanges".into(), Value::Array(exchanges));
    m.insert("bindings".into(), Value::Array(bindings));
    Value::Object(m)
}

/// `GET /api/definitions/{vhost}`: that vhost's parameters, policies,
/// queues, exchanges and bindings, without their `vhost` fields.
pub fn export_vhost(s: &Snapshot, vhost: &str, product_version: &str) -> Value {
    let strip = |mut v: Value| {
        if let Some(o) = v.as_object_mut() {
            o.remove("vhost");
        }
        v
    };
    let mut m = metadata(product_version);
    let (queues, exchanges, bindings) = exported(s, Some(vhost));
    m.insert(
        "parameters".into(),
        limit_parameters(s, Some(vhost)).map(strip).collect(),
    );
    m.insert(
        "policies".into(),
        s.policies
            .iter()
            .filter(|(v, _)| v == vhost)
            .map(|(v, p)| strip(policy_json(v, p)))
            .collect(),
    );
    for (key, list) in [
        ("queues", queues),
        ("exchanges", exchanges),
        ("bindings", bindings),
    ] {
        m.insert(key.into(), list.into_iter().map(strip).collect());
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_round_trip_through_json() {
        let v = json!({"x-max-length": 5, "x-dead-letter-exchange": "dlx", "f": 1.5,
                       "nested": {"a": [true, "s", 2]}, "n": null});
        let t = json_table(&v).unwrap();
        assert_eq!(t.get("x-max-length"), Some(&FieldValue::I64(5)));
        assert_eq!(table_json(&t), v);
        assert_eq!(json_table(&json!([])).unwrap(), FieldTable::new());
        assert!(json_table(&json!("x")).is_err());
        assert!(json_table(&json!({"k".repeat(300): 1})).is_err());
    }

    #[test]
    fn export_leaves_out_what_rabbitmq_leaves_out() {
        let mut meta = Metadata::new();
        meta.auth = crate::broker::auth::AuthStore::new(AuthDefs::initial("guest", "h"));
        let mut s = Snapshot::of(&meta);
        s.queues.push(QueueEntry {
            vhost: "/".into(),
            name: "excl".into(),
            durable: false,
            auto_delete: false,
            exclusive: true,
            arguments: FieldTable::new(),
        });
        s.queues.push(QueueEntry {
            vhost: "/".into(),
            name: "q".into(),
            durable: true,
            auto_delete: false,
            exclusive: false,
            arguments: FieldTable::new(),
        });
        let e = export(&s, "0");
        assert_eq!(e["rabbit_version"], json!(RABBIT_VERSION));
        assert_eq!(e["queues"].as_array().unwrap().len(), 1);
        // Only the predeclared exchanges: none exported.
        assert_eq!(e["exchanges"], json!([]));
        assert_eq!(e["users"][0]["tags"], json!(["administrator"]));
        assert_eq!(e["vhosts"], json!([{"name": "/"}]));
        let v = export_vhost(&s, "/", "0");
        assert_eq!(
            v["queues"],
            json!([{"name": "q", "durable": true, "auto_delete": false, "arguments": {}}])
        );
        assert!(v.get("users").is_none());
    }
}
