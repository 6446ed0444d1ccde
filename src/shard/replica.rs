//! How a shard's copy of the metadata (`shard::metadata`) follows the
//! leader: the leader changes its copy first and replicates each change;
//! `apply` applies one to a replica, creating or dropping the queue state
//! where this shard owns the queue.

use crate::broker::queue::Queue;
use crate::shard::envelope::{MetaChange, QueueMeta};
use crate::shard::metadata::{QueueKey, VhostMeta};
use crate::shard::{owner, Shard};
use std::rc::Rc;
use std::sync::Arc;

/// Applies a replicated change to this shard's copy (and creates or drops
/// the queue state when this shard owns the queue).
pub fn apply(shard: &Rc<Shard>, change: &MetaChange) {
    match change {
        MetaChange::QueueCreated(meta) => {
            // The leader's allocation, shared (`metadata::QueueCatalog`).
            shard.meta.borrow_mut().queues.insert(meta.clone());
            if meta.owner == shard.id {
                create_queue_state(shard, meta);
            }
        }
        MetaChange::QueueDeleted(name) => {
            let owner = {
                let mut meta = shard.meta.borrow_mut();
                if let Some(t) = meta.topology_mut(name.vhost) {
                    t.remove_queue(&name.name);
                }
                meta.queues.remove(name).map(|m| m.owner)
            };
            if owner == Some(shard.id) {
                owner::drop_queue(shard, name);
            }
        }
        MetaChange::ExchangeDeclared(vhost, def) => {
            let mut meta = shard.meta.borrow_mut();
            let Some(topology) = meta.topology_mut(*vhost) else {
                return;
            };
            let result = topology.declare_exchange(
                &def.name,
                def.kind.as_str(),
                false,
                def.durable,
                def.auto_delete,
                def.internal,
                &def.arguments,
            );
            debug_assert!(result.is_ok(), "replicated declare failed: {result:?}");
        }
        MetaChange::ExchangeDeleted(vhost, name) => {
            if let Some(t) = shard.meta.borrow_mut().topology_mut(*vhost) {
                let _ = t.delete_exchange(name, false);
            }
        }
        MetaChange::Bound(vhost, b) => {
            if let Some(t) = shard.meta.borrow_mut().topology_mut(*vhost) {
                let result = t.bind(
                    &b.source,
                    b.destination.clone(),
                    &b.routing_key,
                    &b.arguments,
                );
                debug_assert!(result.is_ok(), "replicated bind failed: {result:?}");
            }
        }
        MetaChange::PolicySet(vhost, p) => crate::shard::policies::set(shard, *vhost, p),
        MetaChange::PolicyCleared(vhost, name) => {
            crate::shard::policies::clear(shard, *vhost, name)
        }
        MetaChange::Unbound(vhost, b) => {
            if let Some(t) = shard.meta.borrow_mut().topology_mut(*vhost) {
                let _ = t.unbind(&b.source, &b.destination, &b.routing_key, &b.arguments);
            }
        }
        MetaChange::VhostAdded(id, name) => {
            let mut meta = shard.meta.borrow_mut();
            meta.vhosts.insert(*id, VhostMeta::new(name.clone()));
            meta.next_vhost = meta.next_vhost.max(id.0 + 1);
        }
        MetaChange::VhostDeleted(id, name) => {
            crate::shard::vhosts::deleted(shard, *id, name);
            let gone = {
                let mut meta = shard.meta.borrow_mut();
                meta.vhosts.remove(id);
                meta.queues.retain(|q| q.name.vhost != *id);
                meta.auth.defs().of_vhost(name)
            };
            // Its permissions go with it, as in RabbitMQ.
            for a in &gone {
                crate::shard::users::apply(shard, a);
            }
        }
        MetaChange::Auth(a) => crate::shard::users::apply(shard, a),
        MetaChange::VhostLimitsSet(id, limits) => {
            if let Some(v) = shard.meta.borrow_mut().vhosts.get_mut(id) {
                v.limits = *limits;
            }
        }
    }
}

pub fn create_queue_state(shard: &Rc<Shard>, meta: &Arc<QueueMeta>) {
    let name = &meta.name;
    let created = {
        let mut queues = shard.queues.borrow_mut();
        let created = !queues.contains_key(name);
        if created {
            let queue = Queue::new(name.name.clone(), meta.config.clone());
            queues.insert(QueueKey::new(meta.clone()), Box::new(queue));
        }
        created
    };
    if created {
        crate::shard::policies::apply_to_queue(shard, name);
        crate::shard::expiry::start(shard, name);
    }
}
