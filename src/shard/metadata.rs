//! The metadata every shard holds a copy of: exchanges and bindings (the
//! routing tables, so a publish is routed on the shard that read it) and the
//! queue catalog (name → owner shard and declared shape), and the policies. `shard::replica`
//! keeps it in step with the leader's.

use crate::broker::exchange::Destination;
use crate::broker::topology::Topology;
use crate::protocol::types::ShortStr;
use crate::shard::envelope::QueueMeta;

/// One shard's copy of the metadata.
pub struct Metadata {
    pub topology: Topology,
    pub queues: crate::shard::FastMap<ShortStr, QueueMeta>,
    /// Policies, in the order they were first set (`shard::policies`).
    pub policies: Vec<crate::shard::policies::StoredPolicy>,
    /// Users and permissions, compiled (`shard::users`).
    pub auth: crate::broker::auth::AuthStore,
}

impl Metadata {
    pub fn new() -> Metadata {
        Metadata {
            topology: Topology::new(),
            queues: Default::default(),
            policies: Vec::new(),
            auth: Default::default(),
        }
    }

    /// The queues that exist, grouped by owner shard (in order of first
    /// appearance): one `Enqueue` envelope per group.
    pub fn group_by_owner(
        &self,
        queues: impl IntoIterator<Item = ShortStr>,
    ) -> Vec<(u16, Vec<ShortStr>)> {
        let mut by_owner: Vec<(u16, Vec<ShortStr>)> = Vec::new();
        for queue in queues {
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
    pub fn destination_exists(&self, d: &Destination) -> bool {
        match d {
            Destination::Queue(q) => self.queues.contains_key(q),
            Destination::Exchange(e) => self.topology.exchange(e).is_some(),
        }
    }
}

impl Default for Metadata {
    fn default() -> Metadata {
        Metadata::new()
    }
}
