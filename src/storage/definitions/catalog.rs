//! The durable definitions indexed for applying changes: the journal
//! replay at load and the leader's running copy.

use super::fields::sorted_args;
use super::{Change, Definitions, PolicyDef, QueueDef, VhostDef};
use crate::broker::exchange::{BindingDef, Destination, ExchangeDef};
use crate::broker::vhost::{VhostLimits, DEFAULT_VHOST};
use crate::protocol::types::ShortStr;
use std::collections::{BTreeSet, HashMap};

/// The durable definitions indexed so that a [`Change`] costs about the
/// size of what it touches: the journal replay at load and the leader's
/// running copy (what the next snapshot will hold).
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    shards: u16,
    exchanges: HashMap<ShortStr, ExchangeDef>,
    queues: HashMap<ShortStr, QueueDef>,
    /// Bindings by destination.
    to: HashMap<Destination, Vec<BindingDef>>,
    /// Per source exchange: the destinations it has bindings to, counted.
    from: HashMap<ShortStr, HashMap<Destination, usize>>,
    /// The auto-delete exchanges (they can disappear as a side effect).
    auto_delete: BTreeSet<ShortStr>,
    policies: HashMap<String, PolicyDef>,
    limits: VhostLimits,
    /// At the top level (vhost `/`): the other vhosts, each a catalog of
    /// its own.
    vhosts: HashMap<ShortStr, Catalog>,
    /// None until the definitions hold users (see `Definitions::auth`).
    auth: Option<crate::broker::auth::AuthDefs>,
    /// At the top level: `/` was deleted (`Definitions::default_vhost_deleted`).
    default_gone: bool,
}

impl Catalog {
    pub fn from_definitions(defs: &Definitions) -> Catalog {
        let mut c = Catalog {
            shards: defs.shards,
            auth: defs.auth.clone(),
            default_gone: defs.default_vhost_deleted,
            ..Catalog::default()
        };
        for x in &defs.exchanges {
            c.apply(&Change::Exchange(x.clone()));
        }
        for q in &defs.queues {
            c.apply(&Change::Queue(q.clone()));
        }
        for b in &defs.bindings {
            c.apply(&Change::Bind(b.clone()));
        }
        for p in &defs.policies {
            c.apply(&Change::Policy(p.clone()));
        }
        c.limits = defs.limits;
        for v in &defs.vhosts {
            c.vhosts
                .insert(v.name.clone(), Catalog::from_definitions(&v.defs));
        }
        c
    }

    /// The catalog of a vhost other than `/`.
    pub fn vhost(&self, name: &str) -> Option<&Catalog> {
        self.vhosts.get(name)
    }

    /// The definitions, sorted as the snapshot stores them (exchanges and
    /// queues by name, bindings by source, destination and routing key).
    pub fn to_definitions(&self) -> Definitions {
        let mut exchanges: Vec<ExchangeDef> = self.exchanges.values().cloned().collect();
        exchanges.sort_by(|a, b| a.name.cmp(&b.name));
        let mut queues: Vec<QueueDef> = self.queues.values().cloned().collect();
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        let mut bindings: Vec<BindingDef> = self.to.values().flatten().cloned().collect();
        bindings.sort_by(|a, b| {
            (&a.source, &a.destination, &a.routing_key).cmp(&(
                &b.source,
                &b.destination,
                &b.routing_key,
            ))
        });
        let mut policies: Vec<PolicyDef> = self.policies.values().cloned().collect();
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        let mut vhosts: Vec<VhostDef> = self
            .vhosts
            .iter()
            .map(|(name, c)| VhostDef {
                name: name.clone(),
                defs: c.to_definitions(),
            })
            .collect();
        vhosts.sort_by(|a, b| a.name.cmp(&b.name));
        Definitions {
            shards: self.shards,
            exchanges,
            queues,
            bindings,
            policies,
            limits: self.limits,
            vhosts,
            auth: self.auth.clone(),
            default_vhost_deleted: self.default_gone,
        }
    }

    pub fn set_shards(&mut self, shards: u16) {
        self.shards = shards;
    }

    pub fn queue(&self, name: &str) -> Option<&QueueDef> {
        self.queues.get(name)
    }

    pub fn policy(&self, name: &str) -> Option<&PolicyDef> {
        self.policies.get(name)
    }

    /// The stored auth records (None before the first user).
    pub fn auth(&self) -> Option<&crate::broker::auth::AuthDefs> {
        self.auth.as_ref()
    }

    pub fn exchange(&self, name: &str) -> Option<&ExchangeDef> {
        self.exchanges.get(name)
    }

    /// Whether the binding (arguments compared in sorted form) exists.
    pub fn has_binding(&self, b: &BindingDef) -> bool {
        let args = sorted_args(&b.arguments);
        self.to.get(&b.destination).is_some_and(|list| {
            list.iter().any(|x| {
                x.source == b.source && x.routing_key == b.routing_key && x.arguments == args
            })
        })
    }

    /// The auto-delete exchanges.
    pub fn auto_delete_exchanges(&self) -> impl Iterator<Item = &ShortStr> {
        self.auto_delete.iter()
    }

    /// Number of policies, exchanges, queues and bindings.
    pub fn size(&self) -> usize {
        self.policies.len()
            + self.auth.as_ref().map_or(0, |a| a.len())
            + self.exchanges.len()
            + self.queues.len()
            + self.to.values().map(Vec::len).sum::<usize>()
            + self.vhosts.values().map(|c| 1 + c.size()).sum::<usize>()
    }

    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Vhost { name, limits } => {
                if name.as_str() == DEFAULT_VHOST {
                    self.limits = *limits;
                    self.default_gone = false;
                } else {
                    self.vhosts.entry(name.clone()).or_default().limits = *limits;
                }
            }
            Change::VhostGone(name) if name.as_str() == DEFAULT_VHOST => {
                // `/` and everything in it; the other vhosts and the users
                // stay.
                *self = Catalog {
                    shards: self.shards,
                    vhosts: std::mem::take(&mut self.vhosts),
                    auth: self.auth.take(),
                    default_gone: true,
                    ..Catalog::default()
                };
            }
            Change::VhostGone(name) => {
                self.vhosts.remove(name.as_str());
            }
            Change::In(name, inner) => {
                if let Some(c) = self.vhosts.get_mut(name.as_str()) {
                    c.apply(inner);
                }
            }
            Change::Auth(a) => self.auth.get_or_insert_with(Default::default).apply(a),
            Change::Policy(p) => {
                self.policies.insert(p.name.clone(), p.clone());
            }
            Change::PolicyGone(name) => {
                self.policies.remove(name);
            }
            Change::Queue(q) => {
                self.queues.insert(q.name.clone(), q.clone());
            }
            Change::QueueGone(name) => {
                self.queues.remove(name.as_str());
                self.drop_bindings_to(&Destination::Queue(name.clone()));
            }
            Change::Exchange(x) => {
                if x.auto_delete {
                    self.auto_delete.insert(x.name.clone());
                } else {
                    self.auto_delete.remove(x.name.as_str());
                }
                self.exchanges.insert(x.name.clone(), x.clone());
            }
            Change::ExchangeGone(name) => {
                self.exchanges.remove(name.as_str());
                self.auto_delete.remove(name.as_str());
                self.drop_bindings_to(&Destination::Exchange(name.clone()));
                self.drop_bindings_from(name);
            }
            Change::Bind(b) => {
                if self.has_binding(b) {
                    return;
                }
                let b = BindingDef {
                    arguments: sorted_args(&b.arguments),
                    ..b.clone()
                };
                *self
                    .from
                    .entry(b.source.clone())
                    .or_default()
                    .entry(b.destination.clone())
                    .or_insert(0) += 1;
                self.to.entry(b.destination.clone()).or_default().push(b);
            }
            Change::Unbind(b) => {
                let args = sorted_args(&b.arguments);
                let Some(list) = self.to.get_mut(&b.destination) else {
                    return;
                };
                let Some(i) = list.iter().position(|x| {
                    x.source == b.source && x.routing_key == b.routing_key && x.arguments == args
                }) else {
                    return;
                };
                list.remove(i);
                if list.is_empty() {
                    self.to.remove(&b.destination);
                }
                self.forget_from(&b.source, &b.destination, 1);
            }
        }
    }

    fn forget_from(&mut self, source: &ShortStr, dest: &Destination, n: usize) {
        if let Some(dests) = self.from.get_mut(source.as_str()) {
            if let Some(count) = dests.get_mut(dest) {
                *count = count.saturating_sub(n);
                if *count == 0 {
                    dests.remove(dest);
                }
            }
            if dests.is_empty() {
                self.from.remove(source.as_str());
            }
        }
    }

    fn drop_bindings_to(&mut self, dest: &Destination) {
        let Some(list) = self.to.remove(dest) else {
            return;
        };
        for b in list {
            self.forget_from(&b.source, dest, 1);
        }
    }

    fn drop_bindings_from(&mut self, source: &ShortStr) {
        let Some(dests) = self.from.remove(source.as_str()) else {
            return;
        };
        for dest in dests.keys() {
            if let Some(list) = self.to.get_mut(dest) {
                list.retain(|b| b.source != *source);
                if list.is_empty() {
                    self.to.remove(dest);
                }
            }
        }
    }
}
