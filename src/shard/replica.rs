//! How a shard's copy of the metadata (`shard::metadata`) follows the
//! leader: the leader changes its copy first and replicates each change;
//! `apply` applies one to a replica, creating or dropping the queue state
//! where this shard owns the queue.

use crate::broker::queue::{Queue, QueueConfig};
use crate::protocol::types::ShortStr;
use crate::shard::envelope::MetaChange;
use crate::shard::{owner, Shard};
use std::rc::Rc;

/// Applies a replicated change to this shard's copy (and creates or drops
/// the queue state when this shard owns the queue).
pub fn apply(shard: &Rc<Shard>, change: &MetaChange) {
    match change {
        MetaChange::QueueCreated(meta) => {
            shard
                .meta
                .borrow_mut()
                .queues
                .insert(meta.name.clone(), meta.clone());
            if meta.owner == shard.id {
                create_queue_state(shard, &meta.name, &meta.config);
            }
        }
        MetaChange::QueueDeleted(name) => {
            let owner = {
                let mut meta = shard.meta.borrow_mut();
                meta.topology.remove_queue(name);
                meta.queues.remove(name).map(|m| m.owner)
            };
            if owner == Some(shard.id) {
                owner::drop_queue(shard, name);
            }
        }
        MetaChange::ExchangeDeclared(def) => {
            let result = shard.meta.borrow_mut().topology.declare_exchange(
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
        MetaChange::ExchangeDeleted(name) => {
            let _ = shard
                .meta
                .borrow_mut()
                .topology
                .delete_exchange(name, false);
        }
        MetaChange::Bound(b) => {
            let result = shard.meta.borrow_mut().topology.bind(
                &b.source,
                b.destination.clone(),
                &b.routing_key,
                &b.arguments,
            );
            debug_assert!(result.is_ok(), "replicated bind failed: {result:?}");
        }
        MetaChange::PolicySet(p) => crate::shard::policies::set(shard, p),
        MetaChange::PolicyCleared(name) => crate::shard::policies::clear(shard, name),
        MetaChange::Auth(a) => crate::shard::users::apply(shard, a),
        MetaChange::Unbound(b) => {
            let _ = shard.meta.borrow_mut().topology.unbind(
                &b.source,
                &b.destination,
                &b.routing_key,
                &b.arguments,
            );
        }
    }
}

pub fn create_queue_state(shard: &Rc<Shard>, name: &ShortStr, config: &QueueConfig) {
    let created = {
        let mut queues = shard.queues.borrow_mut();
        let created = !queues.contains_key(name);
        queues
            .entry(name.clone())
            .or_insert_with(|| Box::new(Queue::new(name.clone(), config.clone())));
        created
    };
    if created {
        crate::shard::policies::apply_to_queue(shard, name);
        crate::shard::expiry::start(shard, name);
    }
}
