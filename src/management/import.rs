//! Importing a definitions file, atomically per file: `plan` reads every
//! entry of the file and checks it against the broker's definitions (a
//! `definitions::Snapshot` taken on shard 0 just before) — types, names,
//! hashes, regexes, policies, queue and exchange arguments, what bindings
//! and permissions refer to, vhost queue limits — and answers the first
//! wrong entry by name (`queues[3] (name "q", vhost "/"): …`) before
//! anything changes. A valid file becomes a `Plan` of only what changes
//! (what exists already is skipped, as RabbitMQ's import skips an existing
//! queue or exchange), which `apply` carries out through the leader's own
//! requests, phase by phase (vhosts, users, permissions, limits,
//! exchanges, policies, queues, bindings), many requests in flight at once
//! so one journal sync covers many. Importing a file twice changes nothing
//! the second time.

use super::definitions::{json_table, QueueEntry, Snapshot};
use crate::broker::auth::permissions::{CompiledPermission, CompiledTopic};
use crate::broker::auth::{password, AuthRequest, PermissionDef, TopicPermissionDef, UserDef};
use crate::broker::exchange::{BindingDef, Destination, ExchangeDef, ExchangeKind};
use crate::broker::queue::QueueConfig;
use crate::broker::queue_args::{self, QueueArguments};
use crate::broker::topology::Topology;
use crate::broker::vhost::{in_vhost, valid_name, QueueName, VhostLimits};
use crate::protocol::types::ShortStr;
use crate::shard::envelope::{ConnKey, Reply, Request};
use crate::shard::leader::LEADER;
use crate::shard::Shard;
use crate::storage::definitions::PolicyDef;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

/// Requests in flight at once while applying.
const WINDOW: usize = 256;

/// What an import changes, every entry checked.
#[derive(Debug, Default)]
pub struct Plan {
    pub vhosts: Vec<String>,
    pub users: Vec<UserDef>,
    pub permissions: Vec<PermissionDef>,
    pub topic_permissions: Vec<TopicPermissionDef>,
    pub limits: Vec<(String, VhostLimits)>,
    pub exchanges: Vec<(String, ExchangeDef)>,
    pub policies: Vec<(String, PolicyDef)>,
    pub queues: Vec<QueueEntry>,
    pub bindings: Vec<(String, BindingDef)>,
    /// Entries left out on purpose, for the log (as RabbitMQ logs them).
    pub notes: Vec<String>,
}

impl Plan {
    pub fn changes(&self) -> usize {
        self.vhosts.len()
            + self.users.len()
            + self.permissions.len()
            + self.topic_permissions.len()
            + self.limits.len()
            + self.exchanges.len()
            + self.policies.len()
            + self.queues.len()
            + self.bindings.len()
    }
}

/// One entry of the file, named for errors.
struct Entry<'a> {
    o: &'a Map<String, Value>,
    at: String,
    /// The vhost of a per-vhost import (the entries' own is ignored).
    scope: Option<&'a str>,
}

impl<'a> Entry<'a> {
    fn err(&self, why: impl std::fmt::Display) -> String {
        if self.at.is_empty() {
            why.to_string()
        } else {
            format!("{}: {why}", self.at)
        }
    }

    fn string(&self, key: &str) -> Result<String, String> {
        match self.o.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(self.err(format!("'{key}' must be a string"))),
            None => Err(self.err(format!("'{key}' is missing"))),
        }
    }

    fn short(&self, key: &str) -> Result<ShortStr, String> {
        ShortStr::try_from_string(self.string(key)?)
            .ok_or_else(|| self.err(format!("'{key}' is longer than 255 bytes")))
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.o.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
            Some(_) => Err(self.err(format!("'{key}' must be true or false"))),
        }
    }

    fn vhost(&self) -> Result<String, String> {
        match self.scope {
            Some(v) => Ok(v.to_string()),
            None => self.string("vhost"),
        }
    }

    fn table(&self, key: &str) -> Result<crate::protocol::types::FieldTable, String> {
        json_table(self.o.get(key).unwrap_or(&Value::Null))
            .map_err(|e| self.err(format!("'{key}': {e}")))
    }
}

/// The entries of list `key` (missing or null: none).
fn entries<'a>(
    doc: &'a Map<String, Value>,
    key: &str,
    scope: Option<&'a str>,
) -> Result<Vec<Entry<'a>>, String> {
    let list = match doc.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(format!("'{key}' must be a list")),
    };
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            let o = v
                .as_object()
                .ok_or_else(|| format!("{key}[{i}]: must be an object"))?;
            let mut at = format!("{key}[{i}]");
            let name = ["name", "user", "source"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Value::as_str).map(|n| (*k, n)));
            match (name, o.get("vhost").and_then(Value::as_str).or(scope)) {
                (Some((k, n)), Some(v)) => at.push_str(&format!(" ({k} \"{n}\", vhost \"{v}\")")),
                (Some((k, n)), None) => at.push_str(&format!(" ({k} \"{n}\")")),
                (None, _) => {}
            }
            Ok(Entry { o, at, scope })
        })
        .collect()
}

fn amqp_text(e: crate::broker::error::AmqpError) -> String {
    e.text
        .split_once(" - ")
        .map_or(e.text.as_str(), |(_, t)| t)
        .to_string()
}

/// The state a plan is checked against: the broker's, plus what the file
/// adds before the entry being checked.
struct Known<'a> {
    snap: &'a Snapshot,
    vhosts: HashSet<String>,
    users: HashSet<String>,
    /// (vhost, exchange) → kind, the broker's, the file's and each new
    /// vhost's predeclared ones.
    exchanges: HashMap<(String, String), ExchangeKind>,
    /// (vhost, queue) → exclusive.
    queues: HashMap<(String, String), bool>,
    predeclared: Vec<(String, ExchangeKind)>,
}

impl<'a> Known<'a> {
    fn new(snap: &'a Snapshot) -> Known<'a> {
        let predeclared = Topology::for_vhost(ShortStr::from_static("/"))
            .exchanges()
            .map(|x| (x.name.to_string(), x.kind))
            .collect();
        Known {
            snap,
            vhosts: snap.vhosts.iter().map(|(v, _)| v.clone()).collect(),
            users: snap.auth.users.keys().cloned().collect(),
            exchanges: snap
                .exchanges
                .iter()
                .map(|(v, x)| ((v.clone(), x.name.to_string()), x.kind))
                .collect(),
            queues: snap
                .queues
                .iter()
                .map(|q| ((q.vhost.clone(), q.name.clone()), q.exclusive))
                .collect(),
            predeclared,
        }
    }

    fn add_vhost(&mut self, v: &str) {
        if self.vhosts.insert(v.to_string()) {
            for (name, kind) in &self.predeclared {
                self.exchanges.insert((v.to_string(), name.clone()), *kind);
            }
        }
    }

    fn vhost(&self, e: &Entry, v: &str) -> Result<(), String> {
        if self.vhosts.contains(v) {
            Ok(())
        } else {
            Err(e.err(format!(
                "virtual host \"{v}\" does not exist and is not in the file"
            )))
        }
    }

    fn exchange(&self, v: &str, x: &str) -> Option<ExchangeKind> {
        self.exchanges.get(&(v.to_string(), x.to_string())).copied()
    }
}

/// Reads and checks a definitions file (`scope`: the vhost of a per-vhost
/// import, whose entries' own `vhost` fields are not read, nor users,
/// vhosts and permissions, as RabbitMQ). `shards` is the broker's shard
/// count (for `x-warren-shard`).
pub fn plan(
    doc: &Value,
    snap: &Snapshot,
    scope: Option<&str>,
    shards: u16,
) -> Result<Plan, String> {
    let doc = doc
        .as_object()
        .ok_or("a definitions file is a JSON object")?;
    let mut plan = Plan::default();
    let mut known = Known::new(snap);
    if scope.is_none() {
        vhosts(doc, &mut known, &mut plan)?;
        users(doc, &mut known, &mut plan)?;
        permissions(doc, &known, &mut plan)?;
        global_parameters(doc, &mut plan)?;
    }
    parameters(doc, scope, &known, &mut plan)?;
    exchanges(doc, scope, &mut known, &mut plan)?;
    policies(doc, scope, &known, &mut plan)?;
    queues(doc, scope, &mut known, &mut plan, shards)?;
    bindings(doc, scope, &known, &mut plan)?;
    Ok(plan)
}

fn vhosts(doc: &Map<String, Value>, known: &mut Known, plan: &mut Plan) -> Result<(), String> {
    for e in entries(doc, "vhosts", None)? {
        let name = e.string("name")?;
        valid_name(&name).map_err(|why| e.err(why))?;
        if let Some(l) =
            e.o.get("limits")
                .filter(|l| l.as_object().is_some_and(|o| !o.is_empty()))
        {
            let limits =
                crate::admin::vhosts::parse_limits(&l.to_string()).map_err(|w| e.err(w))?;
            plan.limits.push((name.clone(), limits));
        }
        if !known.vhosts.contains(&name) && !plan.vhosts.contains(&name) {
            plan.vhosts.push(name.clone());
        }
        known.add_vhost(&name);
    }
    Ok(())
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

fn users(doc: &Map<String, Value>, known: &mut Known, plan: &mut Plan) -> Result<(), String> {
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

fn permissions(doc: &Map<String, Value>, known: &Known, plan: &mut Plan) -> Result<(), String> {
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
fn global_parameters(doc: &Map<String, Value>, plan: &mut Plan) -> Result<(), String> {
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

fn parameters(
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

fn policies(
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

fn exchanges(
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

fn queues(
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

fn bindings(
    doc: &Map<String, Value>,
    scope: Option<&str>,
    known: &Known,
    plan: &mut Plan,
) -> Result<(), String> {
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
        plan.bindings.push((
            vhost,
            BindingDef {
                source,
                destination,
                routing_key,
                arguments,
            },
        ));
    }
    Ok(())
}

/// Carries out a checked plan on shard 0 through the leader's requests;
/// answers the number of changes, or what failed (a change the leader
/// refused although the plan was checked: something changed meanwhile,
/// or the definitions could not be stored).
pub async fn apply(shard: &Rc<Shard>, plan: Plan) -> Result<usize, String> {
    for note in &plan.notes {
        tracing::info!("definitions import: {note}");
    }
    let total = plan.changes();
    let short = |s: &str| ShortStr::try_from_string(s.to_string()).unwrap_or_default();
    let phase = plan
        .vhosts
        .iter()
        .map(|v| (format!("vhost {v}"), Request::AddVhost { name: short(v) }));
    run(shard, phase.collect()).await?;
    let users = plan.users.into_iter().map(|u| {
        (
            format!("user {}", u.name),
            Request::Auth(AuthRequest::PutUser(u)),
        )
    });
    run(shard, users.collect()).await?;
    let perms = plan.permissions.into_iter().map(|p| {
        (
            format!("permissions of {} in {}", p.user, p.vhost),
            Request::Auth(AuthRequest::SetPermissions(p)),
        )
    });
    let topics = plan.topic_permissions.into_iter().map(|t| {
        (
            format!("topic permissions of {} in {}", t.user, t.vhost),
            Request::Auth(AuthRequest::SetTopicPermissions(t)),
        )
    });
    let limits = plan.limits.into_iter().map(|(v, limits)| {
        (
            format!("limits of {v}"),
            Request::SetVhostLimits {
                name: short(&v),
                limits,
            },
        )
    });
    run(shard, perms.chain(topics).chain(limits).collect()).await?;
    let id = |v: &str| {
        shard
            .meta
            .borrow()
            .vhost_id(v)
            .ok_or_else(|| format!("virtual host \"{v}\" was deleted during the import"))
    };
    let mut requests = Vec::new();
    for (v, x) in plan.exchanges {
        requests.push((
            format!("exchange {} in {v}", x.name),
            Request::DeclareExchange {
                vhost: id(&v)?,
                kind: ShortStr::from_static(x.kind.as_str()),
                name: x.name,
                passive: false,
                durable: x.durable,
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments: x.arguments,
            },
        ));
    }
    run(shard, requests).await?;
    let mut requests = Vec::new();
    for (v, def) in plan.policies {
        requests.push((
            format!("policy {} in {v}", def.name),
            Request::SetPolicy {
                vhost: id(&v)?,
                def,
            },
        ));
    }
    run(shard, requests).await?;
    // Queues and bindings are the leader's, as if declared by no connection.
    let conn = ConnKey {
        shard: shard.id,
        id: 0,
    };
    let mut requests = Vec::new();
    for q in plan.queues {
        let owner = queue_args::pinned_shard(&q.name, &q.arguments, shard.count)
            .ok()
            .flatten()
            .unwrap_or_else(|| shard.owner_by_hash(&q.vhost, &q.name));
        requests.push((
            format!("queue {} in {}", q.name, q.vhost),
            Request::DeclareQueue {
                name: QueueName::new(id(&q.vhost)?, short(&q.name)),
                config: QueueConfig {
                    durable: q.durable,
                    exclusive: false,
                    auto_delete: q.auto_delete,
                    arguments: q.arguments,
                },
                owner,
                conn,
            },
        ));
    }
    run(shard, requests).await?;
    let mut requests = Vec::new();
    for (v, b) in plan.bindings {
        requests.push((
            format!("binding of {} in {v}", b.source),
            Request::Bind {
                vhost: id(&v)?,
                source: b.source,
                destination: b.destination,
                routing_key: b.routing_key,
                arguments: b.arguments,
                conn,
            },
        ));
    }
    run(shard, requests).await?;
    Ok(total)
}

/// Sends every request to the leader, at most `WINDOW` at once; the first
/// refusal, once every request sent has been answered.
async fn run(shard: &Rc<Shard>, requests: Vec<(String, Request)>) -> Result<(), String> {
    let mut pending = VecDeque::new();
    let mut first_error = None;
    let mut check = |label: String, reply: Reply| {
        let failed = match reply {
            Reply::Done(Err(e)) | Reply::Count(Err(e)) => Some(amqp_text(e)),
            Reply::Done(Ok(())) | Reply::Count(Ok(_)) => None,
            other => Some(format!("unexpected reply {other:?}")),
        };
        if let Some(why) = failed {
            first_error.get_or_insert(format!("{label}: {why}"));
        }
    };
    for (label, request) in requests {
        if pending.len() >= WINDOW {
            let (label, reply) = pending.pop_front().expect("full");
            check(label, reply.await);
        }
        pending.push_back((label, shard.request(LEADER, request)));
    }
    while let Some((label, reply)) = pending.pop_front() {
        check(label, reply.await);
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
