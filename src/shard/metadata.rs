//! The metadata every shard holds a copy of: the vhosts (each with its own
//! exchanges and bindings — the routing tables, so a publish is routed on
//! the shard that read it — its policies and its limits) and the queue
//! catalog (vhost and name → owner shard and declared shape).
//! `shard::replica` keeps it in step with the leader's.

use crate::broker::exchange::Destination;
use crate::broker::topology::Topology;
use crate::broker::vhost::{QueueName, VhostId, VhostLimits, DEFAULT_VHOST};
use crate::protocol::types::ShortStr;
use crate::shard::envelope::QueueMeta;
use crate::shard::FastMap;

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
    pub queues: FastMap<QueueName, QueueMeta>,
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
    ) -> Vec<(u16, Vec<QueueName>)> {
        let mut by_owner: Vec<(u16, Vec<QueueName>)> = Vec::new();
        for queue in queues {
            let queue = QueueName::new(vhost, queue);
            let Some(q) = self.queues.get(&queue) else {
                continue;
            };
            match by_owner.iter_mut().find(|(o, _)| *o == q.owner) {
                Some(entry) => entry.1.push(queue),
                None => by_owner.push((q.owner, vec![queue])),
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

impl Default for Metadata {
    fn default() -> Metadata {
        Metadata::new()
    }
}
