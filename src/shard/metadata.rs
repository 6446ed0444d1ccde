//! The metadata every shard holds a copy of: the vhosts (each with its own
//! exchanges and bindings — the routing tables, so a publish is routed on
//! the shard that read it — its policies and its limits) and the queue
//! catalog (vhost and name → owner shard and declared shape,
//! `QueueCatalog`). `shard::replica` keeps it in step with the leader's.

use crate::broker::exchange::Destination;
use crate::broker::topology::Topology;
use crate::broker::vhost::{QueueName, QueueNames, VhostId, VhostLimits, DEFAULT_VHOST};
use crate::protocol::types::ShortStr;
use crate::shard::envelope::QueueMeta;
use crate::shard::FastMap;
use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A publish's queues grouped by owner shard (`Metadata::group_by_owner`):
/// nearly always one queue on one owner, kept inline, so routing a publish
/// allocates nothing for its destinations.
pub type ByOwner = smallvec::SmallVec<[(u16, QueueNames); 1]>;

/// One vhost on a shard: its name, exchanges and bindings, policies and
/// limits.
pub struct VhostMeta {
    pub name: ShortStr,
    pub topology: Topology,
    /// Policies, in the order they were first set (`shard::policies`).
    pub policies: Vec<crate::shard::policies::StoredPolicy>,
    pub limits: VhostLimits,
}

impl VhostMeta {
    pub fn new(name: ShortStr) -> VhostMeta {
        VhostMeta {
            topology: Topology::for_vhost(name.clone()),
            name,
            policies: Vec::new(),
            limits: VhostLimits::default(),
        }
    }
}

/// One shard's copy of the metadata.
pub struct Metadata {
    pub vhosts: FastMap<VhostId, VhostMeta>,
    /// The id the leader gives the next vhost added (never reused).
    pub next_vhost: u32,
    pub queues: QueueCatalog,
    /// Users and permissions, compiled (`shard::users`).
    pub auth: crate::broker::auth::AuthStore,
}

impl Metadata {
    /// The metadata of a fresh broker: vhost `/` with its predeclared
    /// exchanges.
    pub fn new() -> Metadata {
        let mut vhosts = FastMap::default();
        vhosts.insert(
            VhostId::DEFAULT,
            VhostMeta::new(ShortStr::from_static(DEFAULT_VHOST)),
        );
        Metadata {
            vhosts,
            next_vhost: 1,
            queues: Default::default(),
            auth: Default::default(),
        }
    }

    /// The id of the vhost called `name`.
    pub fn vhost_id(&self, name: &str) -> Option<VhostId> {
        self.vhosts
            .iter()
            .find(|(_, v)| v.name.as_str() == name)
            .map(|(id, _)| *id)
    }

    /// The name of a vhost (`/` for one deleted meanwhile, which only
    /// words an error).
    pub fn vhost_name(&self, id: VhostId) -> ShortStr {
        self.vhosts
            .get(&id)
            .map_or_else(|| ShortStr::from_static(DEFAULT_VHOST), |v| v.name.clone())
    }

    /// The vhost's exchanges and bindings (`None`: deleted meanwhile).
    pub fn topology(&self, vhost: VhostId) -> Option<&Topology> {
        self.vhosts.get(&vhost).map(|v| &v.topology)
    }

    pub fn topology_mut(&mut self, vhost: VhostId) -> Option<&mut Topology> {
        self.vhosts.get_mut(&vhost).map(|v| &mut v.topology)
    }

    /// Queues in `vhost`.
    pub fn queue_count(&self, vhost: VhostId) -> usize {
        self.queues.keys().filter(|q| q.vhost == vhost).count()
    }

    /// The queues that exist, grouped by owner shard (in order of first
    /// appearance): one `Enqueue` envelope per group.
    pub fn group_by_owner(
        &self,
        vhost: VhostId,
        queues: impl IntoIterator<Item = ShortStr>,
    ) -> ByOwner {
        let mut by_owner = ByOwner::new();
        for queue in queues {
            let queue = QueueName::new(vhost, queue);
            let Some(q) = self.queues.get(&queue) else {
                continue;
            };
            match by_owner.iter_mut().find(|(o, _)| *o == q.owner) {
                Some(entry) => entry.1.push(queue),
                None => by_owner.push((q.owner, smallvec::smallvec![queue])),
            }
        }
        by_owner
    }

    /// Whether a binding destination exists in the catalog / topology.
    pub fn destination_exists(&self, vhost: VhostId, d: &Destination) -> bool {
        match d {
            Destination::Queue(q) => self.queues.contains_key(&QueueName::new(vhost, q.clone())),
            Destination::Exchange(e) => self
                .topology(vhost)
                .is_some_and(|t| t.exchange(e).is_some()),
        }
    }
}

/// The queue catalog: every queue of every vhost, its owner shard and its
/// declared shape. An idle queue costs one entry per shard, so an entry is
/// small: one `Arc<QueueMeta>`, the very allocation the leader made and
/// replicated (every shard's copy shares it; entries never change, a
/// redefinition replaces one), in a set keyed by the name the entry holds
/// (no second copy of the name as a map key). The methods are a map's.
#[derive(Default)]
pub struct QueueCatalog {
    entries: HashSet<QueueKey, ahash::RandomState>,
}

/// A queue's key in the catalog and in its owner's queue map
/// (`Shard::queues`): the catalog's `Arc<QueueMeta>`, hashed and compared
/// by the name it holds, so both are looked up by `&QueueName` and neither
/// keeps a second copy of the name (an 8-byte slot instead of a 40-byte
/// `QueueName`; issue 15's idle queue size).
#[derive(Clone)]
pub struct QueueKey(Arc<QueueMeta>);

impl QueueKey {
    pub fn new(meta: Arc<QueueMeta>) -> QueueKey {
        QueueKey(meta)
    }
}

impl std::ops::Deref for QueueKey {
    type Target = QueueName;

    fn deref(&self) -> &QueueName {
        &self.0.name
    }
}

impl Borrow<QueueName> for QueueKey {
    fn borrow(&self) -> &QueueName {
        &self.0.name
    }
}

impl Hash for QueueKey {
    // As `QueueName`'s own hash (what `Borrow` requires).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name.hash(state)
    }
}

impl PartialEq for QueueKey {
    fn eq(&self, other: &QueueKey) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for QueueKey {}

impl std::fmt::Debug for QueueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.name.fmt(f)
    }
}

impl QueueCatalog {
    pub fn get(&self, name: &QueueName) -> Option<&QueueMeta> {
        self.entries.get(name).map(|e| &*e.0)
    }

    /// The queue's key, for its owner's queue map.
    pub fn key(&self, name: &QueueName) -> Option<QueueKey> {
        self.entries.get(name).cloned()
    }

    pub fn contains_key(&self, name: &QueueName) -> bool {
        self.entries.contains(name)
    }

    /// Adds a queue, or replaces the entry of the same name.
    pub fn insert(&mut self, meta: Arc<QueueMeta>) {
        self.entries.replace(QueueKey(meta));
    }

    pub fn remove(&mut self, name: &QueueName) -> Option<Arc<QueueMeta>> {
        self.entries.take(name).map(|e| e.0)
    }

    /// Keeps only the queues `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&QueueMeta) -> bool) {
        self.entries.retain(|e| keep(&e.0));
    }

    pub fn keys(&self) -> impl Iterator<Item = &QueueName> {
        self.entries.iter().map(|e| &e.0.name)
    }

    pub fn values(&self) -> impl Iterator<Item = &QueueMeta> {
        self.entries.iter().map(|e| &*e.0)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl std::ops::Index<&QueueName> for QueueCatalog {
    type Output = QueueMeta;

    /// Panics if there is no such queue (as a map's index).
    fn index(&self, name: &QueueName) -> &QueueMeta {
        self.get(name).expect("queue in the catalog")
    }
}

impl Default for Metadata {
    fn default() -> Metadata {
        Metadata::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::queue::QueueConfig;

    fn meta(vhost: u32, name: &str, owner: u16) -> Arc<QueueMeta> {
        Arc::new(QueueMeta {
            name: QueueName::new(
                VhostId(vhost),
                ShortStr::try_from_string(name.into()).unwrap(),
            ),
            owner,
            config: QueueConfig::default(),
            exclusive_to: None,
        })
    }

    /// Issue 15: a catalog slot is one pointer (each shard holds one per
    /// queue), the entry itself shared.
    #[test]
    fn a_catalog_slot_is_one_pointer() {
        assert_eq!(std::mem::size_of::<QueueKey>(), 8);
    }

    #[test]
    fn the_catalog_is_a_map_by_vhost_and_name() {
        let mut c = QueueCatalog::default();
        let q = meta(0, "q", 1);
        c.insert(q.clone());
        c.insert(meta(1, "q", 0));
        assert_eq!(c.len(), 2);
        assert_eq!(c[&q.name].owner, 1);
        assert_eq!(
            c.get(&QueueName::new(VhostId(1), q.name.name.clone()))
                .map(|m| m.owner),
            Some(0)
        );
        // A redefinition replaces the entry.
        c.insert(meta(0, "q", 0));
        assert_eq!(c.len(), 2);
        assert_eq!(c[&q.name].owner, 0);
        // Every shard's copy shares the leader's allocation.
        let shared = meta(0, "shared", 0);
        c.insert(shared.clone());
        assert!(std::ptr::eq(c.get(&shared.name).unwrap(), &*shared));
        c.retain(|m| m.name.vhost != VhostId(1));
        assert_eq!(c.keys().count(), 2);
        assert!(c.remove(&q.name).is_some());
        assert!(!c.contains_key(&q.name));
        assert_eq!(
            c.values().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            ["shared"]
        );
    }
}
