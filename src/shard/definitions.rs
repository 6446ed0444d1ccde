//! The durable definitions seen from the metadata: loading the stored
//! definitions of a vhost into a shard's copy at start (`apply`), the
//! durable part of a copy (`definitions_of`: vhost `/` at the top, the
//! other vhosts in `vhosts`), and what a metadata change the leader made
//! does to them (`durable_changes`, the journal entry's changes).

use crate::broker::auth::AuthChange;
use crate::broker::exchange::{BindingDef, Destination};
use crate::broker::queue::QueueConfig;
use crate::broker::topology::strip_cr_lf;
use crate::broker::vhost::{QueueName, VhostId};
use crate::protocol::types::ShortStr;
use crate::shard::envelope::{MetaChange, QueueMeta};
use crate::shard::metadata::Metadata;
use crate::storage::definitions::{Catalog, Change, Definitions, QueueDef, VhostDef};

/// Loads one vhost's stored definitions into a metadata copy (start-up).
pub fn apply(meta: &mut Metadata, vhost: VhostId, defs: &Definitions) {
    let Some(v) = meta.vhosts.get_mut(&vhost) else {
        return;
    };
    v.limits = defs.limits;
    for p in &defs.policies {
        match crate::shard::policies::compile(p) {
            Ok(p) => v.policies.push(p),
            Err(e) => tracing::warn!("stored policy '{}' not restored: {e}", p.name),
        }
    }
    let policies: Vec<_> = v.policies.iter().map(|p| p.policy.clone()).collect();
    v.topology.set_policies(&policies);
    for x in &defs.exchanges {
        let r = v.topology.declare_exchange(
            &x.name,
            x.kind.as_str(),
            false,
            true,
            x.auto_delete,
            x.internal,
            &x.arguments,
        );
        if let Err(e) = r {
            tracing::warn!("stored exchange '{}' not restored: {}", x.name, e.text);
        }
    }
    for q in &defs.queues {
        let name = QueueName::new(vhost, q.name.clone());
        meta.queues.insert(std::sync::Arc::new(QueueMeta {
            name,
            owner: q.owner,
            config: QueueConfig {
                durable: true,
                exclusive: false,
                auto_delete: q.auto_delete,
                arguments: q.arguments.clone(),
            },
            exclusive_to: None,
        }));
    }
    for b in &defs.bindings {
        if !meta.destination_exists(vhost, &b.destination) {
            continue;
        }
        let Some(topology) = meta.topology_mut(vhost) else {
            return;
        };
        let r = topology.bind(
            &b.source,
            b.destination.clone(),
            &b.routing_key,
            &b.arguments,
        );
        if let Err(e) = r {
            tracing::warn!(
                "stored binding from '{}' not restored: {}",
                b.source,
                e.text
            );
        }
    }
}

fn is_predeclared(name: &str) -> bool {
    name.is_empty() || name.starts_with("amq.")
}

fn durable_queue(meta: &Metadata, vhost: VhostId, name: &ShortStr) -> bool {
    meta.queues
        .get(&QueueName::new(vhost, name.clone()))
        .is_some_and(|q| q.config.durable && !q.config.exclusive)
}

fn durable_exchange(meta: &Metadata, vhost: VhostId, name: &str) -> bool {
    meta.topology(vhost)
        .and_then(|t| t.exchange(name))
        .is_some_and(|x| x.durable)
}

fn durable_destination(meta: &Metadata, vhost: VhostId, d: &Destination) -> bool {
    match d {
        Destination::Queue(q) => durable_queue(meta, vhost, q),
        Destination::Exchange(x) => durable_exchange(meta, vhost, x),
    }
}

fn queue_def(q: &QueueMeta) -> QueueDef {
    QueueDef {
        name: q.name.name.clone(),
        owner: q.owner,
        auto_delete: q.config.auto_delete,
        arguments: q.config.arguments.clone(),
    }
}

/// The durable part of a metadata copy: vhost `/` at the top, the other
/// vhosts in `vhosts`.
pub fn definitions_of(meta: &Metadata, shards: u16) -> Definitions {
    let mut defs = vhost_definitions_of(meta, VhostId::DEFAULT);
    defs.shards = shards;
    defs.auth = Some(meta.auth.defs().clone());
    defs.default_vhost_deleted = !meta.vhosts.contains_key(&VhostId::DEFAULT);
    defs.vhosts = meta
        .vhosts
        .iter()
        .filter(|(id, _)| **id != VhostId::DEFAULT)
        .map(|(id, v)| VhostDef {
            name: v.name.clone(),
            defs: vhost_definitions_of(meta, *id),
        })
        .collect();
    defs.vhosts.sort_by(|a, b| a.name.cmp(&b.name));
    defs
}

fn vhost_definitions_of(meta: &Metadata, vhost: VhostId) -> Definitions {
    let Some(v) = meta.vhosts.get(&vhost) else {
        return Definitions::default();
    };
    let mut exchanges: Vec<_> = v
        .topology
        .exchanges()
        .filter(|x| x.durable && !is_predeclared(&x.name))
        .cloned()
        .collect();
    exchanges.sort_by(|a, b| a.name.cmp(&b.name));
    let mut queues: Vec<QueueDef> = meta
        .queues
        .values()
        .filter(|q| q.name.vhost == vhost && durable_queue(meta, vhost, &q.name.name))
        .map(queue_def)
        .collect();
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    let bindings = v
        .topology
        .bindings()
        .into_iter()
        .filter(|b| {
            durable_exchange(meta, vhost, &b.source)
                && durable_destination(meta, vhost, &b.destination)
        })
        .collect();
    let mut policies: Vec<_> = v.policies.iter().map(|p| p.def.clone()).collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    Definitions {
        shards: 0,
        exchanges,
        queues,
        policies,
        bindings,
        limits: v.limits,
        vhosts: Vec::new(),
        auth: None,
        default_vhost_deleted: false,
    }
}

/// Leader: what a metadata change the leader just applied to its copy
/// `meta` did to the durable definitions, as journal changes, given the
/// definitions before it (`stored`). Looks only at what the change names,
/// plus the auto-delete exchanges `stored` holds (any change that removes a
/// binding can delete one of those as a side effect), so it costs about the
/// size of the change, not of the definitions. A change in a vhost other
/// than `/` is computed against that vhost's part of `stored` and comes
/// out wrapped in `Change::In`. Users and permissions are not per vhost:
/// their changes stay at the top.
pub fn durable_changes(stored: &Catalog, meta: &Metadata, change: &MetaChange) -> Vec<Change> {
    let mut out = Vec::new();
    if stored.auth().is_none() {
        // After a first start: the first change stores every user and
        // permission (the default user among them) with it.
        let d = meta.auth.defs();
        let all = (d.users.values().cloned().map(AuthChange::User))
            .chain(d.permissions.values().cloned().map(AuthChange::Permission))
            .chain(
                d.topic_permissions
                    .values()
                    .cloned()
                    .map(AuthChange::TopicPermission),
            );
        out.extend(all.map(Change::Auth));
    }
    out.extend(changes_of(stored, meta, change));
    out
}

fn changes_of(stored: &Catalog, meta: &Metadata, change: &MetaChange) -> Vec<Change> {
    let vhost = match change {
        MetaChange::Auth(a) => {
            if stored.auth().is_some_and(|d| d.holds(a)) {
                return Vec::new();
            }
            return vec![Change::Auth(a.clone())];
        }
        MetaChange::VhostAdded(_, name) => {
            return vec![Change::Vhost {
                name: name.clone(),
                limits: Default::default(),
            }]
        }
        MetaChange::VhostDeleted(_, name) => {
            // Its permissions go with it (as in RabbitMQ).
            let mut out: Vec<Change> = stored
                .auth()
                .map(|d| d.of_vhost(name))
                .unwrap_or_default()
                .into_iter()
                .map(Change::Auth)
                .collect();
            out.push(Change::VhostGone(name.clone()));
            return out;
        }
        MetaChange::VhostLimitsSet(id, limits) => {
            return vec![Change::Vhost {
                name: meta.vhost_name(*id),
                limits: *limits,
            }]
        }
        MetaChange::QueueCreated(q) => q.name.vhost,
        MetaChange::QueueDeleted(q) => q.vhost,
        MetaChange::ExchangeDeclared(v, _)
        | MetaChange::ExchangeDeleted(v, _)
        | MetaChange::Bound(v, _)
        | MetaChange::Unbound(v, _)
        | MetaChange::PolicySet(v, _)
        | MetaChange::PolicyCleared(v, _) => *v,
    };
    if vhost == VhostId::DEFAULT {
        return vhost_durable_changes(stored, meta, vhost, change);
    }
    let Some(name) = meta.vhosts.get(&vhost).map(|v| v.name.clone()) else {
        return Vec::new();
    };
    let Some(sub) = stored.vhost(&name) else {
        return Vec::new();
    };
    vhost_durable_changes(sub, meta, vhost, change)
        .into_iter()
        .map(|c| Change::In(name.clone(), Box::new(c)))
        .collect()
}

fn vhost_durable_changes(
    stored: &Catalog,
    meta: &Metadata,
    vhost: VhostId,
    change: &MetaChange,
) -> Vec<Change> {
    let stripped = |name: &ShortStr| match strip_cr_lf(name) {
        std::borrow::Cow::Borrowed(_) => name.clone(),
        std::borrow::Cow::Owned(s) => ShortStr::try_from_string(s).unwrap_or_default(),
    };
    let mut out = Vec::new();
    let removes_bindings = match change {
        MetaChange::PolicySet(_, p) => {
            if stored.policy(&p.name) != Some(p) {
                out.push(Change::Policy(p.clone()));
            }
            false
        }
        MetaChange::PolicyCleared(_, name) => {
            if stored.policy(name).is_some() {
                out.push(Change::PolicyGone(name.clone()));
            }
            false
        }
        MetaChange::QueueCreated(q) => {
            if durable_queue(meta, vhost, &q.name) && stored.queue(&q.name).is_none() {
                out.push(Change::Queue(queue_def(&meta.queues[&q.name])));
            }
            false
        }
        MetaChange::QueueDeleted(name) => {
            if stored.queue(name).is_some() && !durable_queue(meta, vhost, name) {
                out.push(Change::QueueGone(name.name.clone()));
            }
            true
        }
        MetaChange::ExchangeDeclared(_, def) => {
            let name = stripped(&def.name);
            if let Some(x) = meta.topology(vhost).and_then(|t| t.exchange(&name)) {
                if x.durable && !is_predeclared(&name) && stored.exchange(&name) != Some(x) {
                    out.push(Change::Exchange(x.clone()));
                }
            }
            false
        }
        MetaChange::ExchangeDeleted(..) => true,
        MetaChange::VhostAdded(..)
        | MetaChange::VhostDeleted(..)
        | MetaChange::VhostLimitsSet(..)
        | MetaChange::Auth(_) => false,
        MetaChange::Bound(_, b) | MetaChange::Unbound(_, b) => {
            let b = BindingDef {
                source: stripped(&b.source),
                destination: match &b.destination {
                    Destination::Queue(q) => Destination::Queue(stripped(q)),
                    Destination::Exchange(x) => Destination::Exchange(stripped(x)),
                },
                routing_key: b.routing_key.clone(),
                arguments: b.arguments.clone(),
            };
            if matches!(change, MetaChange::Bound(..)) {
                if durable_exchange(meta, vhost, &b.source)
                    && durable_destination(meta, vhost, &b.destination)
                    && !stored.has_binding(&b)
                {
                    out.push(Change::Bind(b));
                }
                false
            } else {
                if stored.has_binding(&b) {
                    out.push(Change::Unbind(b));
                }
                true
            }
        }
    };
    if removes_bindings {
        // The exchange deleted, and auto-delete exchanges that went with a
        // binding they lost (possibly a binding to a transient queue).
        let gone = |name: &str| !durable_exchange(meta, vhost, name);
        if let MetaChange::ExchangeDeleted(_, name) = change {
            let name = stripped(name);
            if stored.exchange(&name).is_some() && gone(&name) {
                out.push(Change::ExchangeGone(name));
            }
        }
        for name in stored.auto_delete_exchanges() {
            if gone(name)
                && !out
                    .iter()
                    .any(|c| matches!(c, Change::ExchangeGone(n) if n == name))
            {
                out.push(Change::ExchangeGone(name.clone()));
            }
        }
    }
    out
}
