//! The checks of each kind of entry of a definitions file (vhosts,
//! users, permissions, parameters, policies, exchanges, queues, bindings),
//! adding what changes to the plan; also the bodies of `PUT
//! /api/users/{name}` and `PUT /api/policies/{vhost}/{name}`, read as the
//! same entries.

use super::{amqp_text, entries, Entry, Known, Plan};
use crate::broker::auth::permissions::{CompiledPermission, CompiledTopic};
use crate::broker::auth::{password, PermissionDef, TopicPermissionDef, UserDef};
use crate::broker::exchange::{BindingDef, Destination, ExchangeDef, ExchangeKind};
use crate::broker::queue_args::{self, QueueArguments};
use crate::broker::topology::Topology;
use crate::broker::vhost::{in_vhost, valid_name};
use crate::management::definitions::QueueEntry;
use crate::protocol::types::ShortStr;
use crate::storage::definitions::PolicyDef;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

pub(super) fn vhosts(
    doc: &Map<String, Value>,
    known: &mut Known,
    plan: &mut Plan,
) -> Result<(), String> {
    for e in entries(doc, "vhosts", None)? {
        let name = e.string("name")?;
        valid_name(&name).map_err(|why| e.err(why))?;
        if let Some(l) = vhost_limits(&e)? {
            let limits =
                crate::admin::vhosts::parse_limits(&l.to_string()).map_err(|w| e.err(w))?;
            if known.snap.limits(&name) != Some(limits) {
                plan.limits.push((name.clone(), limits));
            }
        }
        if !known.vhosts.contains(&name) && !plan.vhosts.contains(&name) {
            plan.vhosts.push(name.clone());
        }
        known.add_vhost(&name);
    }
    Ok(())
}

/// A vhost entry's limits: an object, or the list of pairs `rabbitmqctl
/// export_definitions` writes (`[["max-queues", 100]]`); None when empty.
fn vhost_limits(e: &Entry) -> Result<Option<Value>, String> {
    match e.o.get("limits") {
        Some(Value::Object(o)) if !o.is_empty() => Ok(Some(Value::Object(o.clone()))),
        Some(Value::Array(pairs)) if !pairs.is_empty() => pairs
            .iter()
            .map(|p| match p.as_array().map(Vec::as_slice) {
                Some([Value::String(k), v]) => Ok((k.clone(), v.clone())),
                _ => Err(e.err("'limits' must be an object or a list of [name, value] pairs")),
            })
            .collect::<Result<Map<_, _>, _>>()
            .map(|m| Some(Value::Object(m))),
        _ => Ok(None),
    }
}

/// Tags as RabbitMQ takes them: a list, or one comma-separated string.
fn tags(e: &Entry) -> Result<Vec<String>, String> {
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect()
    };
    match e.o.get("tags") {
        Some(Value::String(s)) => Ok(split(s)),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| {
                t.as_str()
                    .map(|t| t.trim().to_string())
                    .ok_or_else(|| e.err("'tags' must be strings"))
            })
            .collect(),
        None | Some(Value::Null) => Err(e.err("tags_not_present")),
        Some(_) => Err(e.err("'tags' must be a list or a string")),
    }
}

/// A user entry (a definitions file's, or the body of `PUT
/// /api/users/{name}`), as RabbitMQ's `put_user` takes it.
fn user(e: &Entry, name: String) -> Result<UserDef, String> {
    if name.is_empty() {
        return Err(e.err("'name' must not be empty"));
    }
    let algorithm = match e.o.get("hashing_algorithm") {
        None | Some(Value::Null) => password::SHA256.to_string(),
        Some(_) => e.string("hashing_algorithm")?,
    };
    if !password::supported(&algorithm) {
        return Err(e.err(format!(
            "unsupported hashing_algorithm '{algorithm}' (Warren verifies {} and {})",
            password::SHA256,
            password::SHA512
        )));
    }
    let hash = match (e.o.get("password_hash"), e.o.get("password")) {
        (Some(_), Some(_)) => return Err(e.err("both_password_and_password_hash_are_provided")),
        (Some(_), None) => e.string("password_hash")?,
        (None, Some(_)) if algorithm == password::SHA256 => password::hash(&e.string("password")?),
        (None, Some(_)) => {
            return Err(e.err("a 'password' is hashed with SHA-256: leave out 'hashing_algorithm'"))
        }
        (None, None) => String::new(),
    };
    if !password::well_formed(&algorithm, &hash) {
        return Err(e.err("'password_hash' is not a base64 salted hash of that algorithm"));
    }
    if e.o
        .get("limits")
        .is_some_and(|l| l.as_object().is_some_and(|o| !o.is_empty()))
    {
        return Err(e.err("user limits are not supported by Warren"));
    }
    Ok(UserDef {
        name,
        password_hash: hash,
        hashing_algorithm: algorithm,
        tags: tags(e)?,
    })
}

/// The body of `PUT /api/users/{name}`.
pub fn parse_user(body: &Value, name: &str) -> Result<UserDef, String> {
    let o = body.as_object().ok_or("not_json")?;
    user(
        &Entry {
            o,
            at: String::new(),
            scope: None,
        },
        name.to_string(),
    )
}

pub(super) fn users(
    doc: &Map<String, Value>,
    known: &mut Known,
    plan: &mut Plan,
) -> Result<(), String> {
    for e in entries(doc, "users", None)? {
        let u = user(&e, e.string("name")?)?;
        if known.snap.auth.user(&u.name) != Some(&u) {
            plan.users.retain(|p| p.name != u.name);
            plan.users.push(u.clone());
        }
        known.users.insert(u.name);
    }
    Ok(())
}

pub(super) fn permissions(
    doc: &Map<String, Value>,
    known: &Known,
    plan: &mut Plan,
) -> Result<(), String> {
    let user_known = |e: &Entry, user: &str| {
        if known.users.contains(user) {
            Ok(())
        } else {
            Err(e.err(format!(
                "user \"{user}\" does not exist and is not in the file"
            )))
        }
    };
    for e in entries(doc, "permissions", None)? {
        let p = PermissionDef {
            user: e.string("user")?,
            vhost: e.string("vhost")?,
            configure: e.string("configure")?,
            write: e.string("write")?,
            read: e.string("read")?,
        };
        user_known(&e, &p.user)?;
        known.vhost(&e, &p.vhost)?;
        CompiledPermission::compile(&p).map_err(|w| e.err(w))?;
        if known.snap.auth.permission(&p.user, &p.vhost) != Some(&p) {
            plan.permissions.push(p);
        }
    }
    for e in entries(doc, "topic_permissions", None)? {
        let t = TopicPermissionDef {
            user: e.string("user")?,
            vhost: e.string("vhost")?,
            exchange: e.string("exchange")?,
            write: e.string("write")?,
            read: e.string("read")?,
        };
        user_known(&e, &t.user)?;
        known.vhost(&e, &t.vhost)?;
        CompiledTopic::compile(&t).map_err(|w| e.err(w))?;
        if known
            .snap
            .auth
            .topic_permission(&t.user, &t.vhost, &t.exchange)
            != Some(&t)
        {
            plan.topic_permissions.push(t);
        }
    }
    Ok(())
}

/// RabbitMQ's own global parameters are accepted and not applied (Warren
/// is one node and has no settable cluster name); any other is refused.
pub(super) fn global_parameters(doc: &Map<String, Value>, plan: &mut Plan) -> Result<(), String> {
    for e in entries(doc, "global_parameters", None)? {
        let name = e.string("name")?;
        match name.as_str() {
            "cluster_name" | "internal_cluster_id" => plan.notes.push(format!(
                "{}: not applied (Warren has no cluster parameters)",
                e.at
            )),
            _ => {
                return Err(e.err(format!(
                    "global parameter '{name}' is not supported by Warren"
                )))
            }
        }
    }
    Ok(())
}

pub(super) fn parameters(
    doc: &Map<String, Value>,
    scope: Option<&str>,
    known: &Known,
    plan: &mut Plan,
) -> Result<(), String> {
    for e in entries(doc, "parameters", scope)? {
        let vhost = e.vhost()?;
        let component = e.string("component")?;
        let name = e.string("name")?;
        match component.as_str() {
            "vhost-limits" if name == "limits" => {}
            "vhost-limits" => return Err(e.err("a vhost-limits parameter is named 'limits'")),
            "policy" => return Err(e.err("policies may not be set using this method")),
            _ => return Err(e.err(format!("component {component} not found"))),
        }
        known.vhost(&e, &vhost)?;
        let value =
            e.o.get("value")
                .ok_or_else(|| e.err("'value' is missing"))?;
        let limits =
            crate::admin::vhosts::parse_limits(&value.to_string()).map_err(|w| e.err(w))?;
        plan.limits.retain(|(v, _)| *v != vhost);
        if known.snap.limits(&vhost) != Some(limits) {
            plan.limits.push((vhost, limits));
        }
    }
    Ok(())
}

/// A policy entry (a definitions file's, or the body of `PUT
/// /api/policies/{vhost}/{name}`), checked as `set_policy` checks it.
fn policy(e: &Entry, name: String) -> Result<PolicyDef, String> {
    let priority = match e.o.get("priority") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) if n.is_i64() => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| e.err("'priority' must be an integer"))?,
        Some(_) => return Err(e.err("'priority' must be an integer")),
    };
    let apply_to = match e.o.get("apply-to") {
        None | Some(Value::Null) => "all".to_string(),
        Some(_) => e.string("apply-to")?,
    };
    let def = PolicyDef {
        name,
        pattern: e.string("pattern")?,
        apply_to,
        priority,
        definition: e.table("definition")?,
    };
    crate::shard::policies::compile(&def).map_err(|w| e.err(w))?;
    Ok(def)
}

/// The body of `PUT /api/policies/{vhost}/{name}`.
pub fn parse_policy(body: &Value, name: &str) -> Result<PolicyDef, String> {
    let o = body.as_object().ok_or("not_json")?;
    policy(
        &Entry {
            o,
            at: String::new(),
            scope: None,
        },
        name.to_string(),
    )
}

pub(super) fn policies(
    doc: &Map<String, Value>,
    scope: Option<&str>,
    known: &Known,
    plan: &mut Plan,
) -> Result<(), String> {
    for e in entries(doc, "policies", scope)? {
        let vhost = e.vhost()?;
        known.vhost(&e, &vhost)?;
        let def = policy(&e, e.string("name")?)?;
        let same = known
            .snap
            .policies
            .iter()
            .any(|(v, p)| *v == vhost && *p == def);
        if !same {
            plan.policies.push((vhost, def));
        }
    }
    Ok(())
}

pub(super) fn exchanges(
    doc: &Map<String, Value>,
    scope: Option<&str>,
    known: &mut Known,
    plan: &mut Plan,
) -> Result<(), String> {
    let mut scratch: HashMap<String, Topology> = HashMap::new();
    for e in entries(doc, "exchanges", scope)? {
        let vhost = e.vhost()?;
        let name = e.short("name")?;
        known.vhost(&e, &vhost)?;
        if name.is_empty() || name.starts_with("amq.") {
            plan.notes.push(format!(
                "{}: skipped, as RabbitMQ skips the default and amq.* exchanges",
                e.at
            ));
            continue;
        }
        if known.exchange(&vhost, &name).is_some() {
            continue;
        }
        let kind = e.string("type")?;
        let (durable, auto_delete, internal) = (
            e.flag("durable", true)?,
            e.flag("auto_delete", false)?,
            e.flag("internal", false)?,
        );
        let arguments = e.table("arguments")?;
        let topology = scratch.entry(vhost.clone()).or_insert_with(|| {
            Topology::for_vhost(ShortStr::try_from_string(vhost.clone()).unwrap_or_default())
        });
        topology
            .declare_exchange(
                &name,
                &kind,
                false,
                durable,
                auto_delete,
                internal,
                &arguments,
            )
            .map_err(|x| e.err(amqp_text(x)))?;
        let kind = ExchangeKind::parse(&kind).ok_or_else(|| e.err("unknown exchange type"))?;
        known
            .exchanges
            .insert((vhost.clone(), name.to_string()), kind);
        plan.exchanges.push((
            vhost,
            ExchangeDef {
                name,
                kind,
                durable,
                auto_delete,
                internal,
                arguments,
            },
        ));
    }
    Ok(())
}

pub(super) fn queues(
    doc: &Map<String, Value>,
    scope: Option<&str>,
    known: &mut Known,
    plan: &mut Plan,
    shards: u16,
) -> Result<(), String> {
    let mut added: HashMap<String, usize> = HashMap::new();
    for e in entries(doc, "queues", scope)? {
        let vhost = e.vhost()?;
        let name = e.short("name")?;
        known.vhost(&e, &vhost)?;
        if name.is_empty() {
            return Err(e.err("'name' must not be empty"));
        }
        if name.starts_with("amq.") {
            plan.notes.push(format!(
                "{}: skipped, as RabbitMQ skips queues named amq.*",
                e.at
            ));
            continue;
        }
        if known
            .queues
            .contains_key(&(vhost.clone(), name.to_string()))
        {
            continue;
        }
        let (durable, auto_delete) = (e.flag("durable", true)?, e.flag("auto_delete", false)?);
        let arguments = e.table("arguments")?;
        let checked = queue_args::validate_declare(&name, durable, false, auto_delete, &arguments)
            .and_then(|_| {
                QueueArguments::validate_new_queue(&name, durable, false, auto_delete, &arguments)
            })
            .and_then(|_| queue_args::pinned_shard(&name, &arguments, shards));
        checked.map_err(|x| e.err(amqp_text(in_vhost(x, &vhost))))?;
        if let Some(kind) = e.o.get("type").and_then(Value::as_str) {
            let declared = arguments
                .get("x-queue-type")
                .and_then(|t| t.as_str())
                .unwrap_or("classic");
            if kind != declared {
                return Err(e.err(format!(
                    "'type' {kind} does not match the queue's x-queue-type {declared}"
                )));
            }
        }
        known
            .queues
            .insert((vhost.clone(), name.to_string()), false);
        *added.entry(vhost.clone()).or_default() += 1;
        plan.queues.push(QueueEntry {
            vhost,
            name: name.to_string(),
            durable,
            auto_delete,
            exclusive: false,
            arguments,
        });
    }
    // As RabbitMQ: the vhost's queue limit (the file's, else the broker's)
    // is checked for the whole file first.
    for (vhost, count) in added {
        let limit = plan
            .limits
            .iter()
            .find(|(v, _)| *v == vhost)
            .map(|(_, l)| *l)
            .or_else(|| known.snap.limits(&vhost))
            .and_then(|l| l.max_queues);
        let existing = known
            .snap
            .queues
            .iter()
            .filter(|q| q.vhost == vhost)
            .count();
        if let Some(limit) = limit.filter(|l| existing + count > *l as usize) {
            return Err(format!(
                "Adding {count} queue(s) to virtual host \"{vhost}\" would exceed the limit of {limit} queue(s).\n\nThis virtual host currently has {existing} queue(s) defined.\n\nImport aborted!"
            ));
        }
    }
    Ok(())
}

pub(super) fn bindings(
    doc: &Map<String, Value>,
    scope: Option<&str>,
    known: &Known,
    plan: &mut Plan,
) -> Result<(), String> {
    let mut seen: HashSet<String> = known
        .snap
        .bindings
        .iter()
        .map(|(v, b)| binding_key(v, b))
        .collect();
    for e in entries(doc, "bindings", scope)? {
        let vhost = e.vhost()?;
        known.vhost(&e, &vhost)?;
        let source = e.short("source")?;
        let dest = e.short("destination")?;
        let routing_key = e.short("routing_key")?;
        let arguments = e.table("arguments")?;
        if source.is_empty() {
            return Err(e.err("operation not permitted on the default exchange"));
        }
        let kind = known.exchange(&vhost, &source).ok_or_else(|| {
            e.err(format!(
                "no exchange '{source}' in vhost '{vhost}', in the broker or the file"
            ))
        })?;
        let destination = match e.string("destination_type")?.as_str() {
            "queue" => match known.queues.get(&(vhost.clone(), dest.to_string())) {
                None => {
                    return Err(e.err(format!(
                        "no queue '{dest}' in vhost '{vhost}', in the broker or the file"
                    )))
                }
                Some(true) => {
                    return Err(e.err(format!(
                        "queue '{dest}' in vhost '{vhost}' is exclusive to a connection"
                    )))
                }
                Some(false) => Destination::Queue(dest),
            },
            "exchange" if dest.is_empty() => {
                return Err(e.err("operation not permitted on the default exchange"))
            }
            "exchange" => {
                known.exchange(&vhost, &dest).ok_or_else(|| {
                    e.err(format!(
                        "no exchange '{dest}' in vhost '{vhost}', in the broker or the file"
                    ))
                })?;
                Destination::Exchange(dest)
            }
            other => {
                return Err(e.err(format!(
                    "'destination_type' must be queue or exchange, not '{other}'"
                )))
            }
        };
        if kind == ExchangeKind::Headers {
            crate::broker::exchange::headers::validate_binding(&arguments)
                .map_err(|x| e.err(amqp_text(x)))?;
        }
        let def = BindingDef {
            source,
            destination,
            routing_key,
            arguments,
        };
        // Binding twice is binding once: only what is new is planned.
        if seen.insert(binding_key(&vhost, &def)) {
            plan.bindings.push((vhost, def));
        }
    }
    Ok(())
}

/// A binding's identity (its arguments by their debug form, which tells
/// values of different types apart as the binding index does).
fn binding_key(vhost: &str, b: &BindingDef) -> String {
    format!(
        "{vhost}\0{}\0{:?}\0{}\0{:?}",
        b.source, b.destination, b.routing_key, b.arguments
    )
}
