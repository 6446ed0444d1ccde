//! Importing a definitions file, atomically per file: `plan` reads every
//! entry of the file and checks it against the broker's definitions (a
//! `definitions::Snapshot` taken on shard 0 just before) — types, names,
//! hashes, regexes, policies, queue and exchange arguments, what bindings
//! and permissions refer to, vhost queue limits — and answers the first
//! wrong entry by name (`queues[3] (name "q", vhost "/"): …`) before
//! anything changes. A valid file becomes a `Plan` of only what changes
//! (what exists already is skipped, as RabbitMQ's import skips an existing
//! queue or exchange), which `apply` carries out through the leader's own
//! requests (`apply`), phase by phase (vhosts, users, permissions, limits,
//! exchanges, policies, queues, bindings), many requests in flight at once
//! so one journal sync covers many. Importing a file twice changes nothing
//! the second time.

mod apply;
mod entries;
#[cfg(test)]
mod tests;

pub use apply::apply;
pub use entries::{parse_policy, parse_user};

use super::definitions::{json_table, QueueEntry, Snapshot};
use crate::broker::auth::{PermissionDef, TopicPermissionDef, UserDef};
use crate::broker::exchange::{BindingDef, ExchangeDef, ExchangeKind};
use crate::broker::topology::Topology;
use crate::broker::vhost::VhostLimits;
use crate::protocol::types::ShortStr;
use crate::storage::definitions::PolicyDef;
use entries::{
    bindings, exchanges, global_parameters, parameters, permissions, policies, queues, users,
    vhosts,
};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

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
