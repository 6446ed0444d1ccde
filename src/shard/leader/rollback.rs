//! Rolling back a batch of changes that could not be stored: what it
//! created is deleted again through the ordinary, replicated changes.

use super::replicate;
use super::requests::delete_queue;
use crate::broker::vhost::{QueueName, VhostId};
use crate::shard::envelope::MetaChange;
use crate::shard::Shard;
use crate::storage::definitions::Change;
use std::rc::Rc;

/// Undoes what a batch that could not be stored created (durable queues,
/// exchanges, bindings still in the catalog as it made them), newest
/// first, through the ordinary changes (replicated to every shard),
/// holding the semaphore. Something a later change (still pending) names
/// again is left to that change. Deletions are not undone.
pub(super) async fn roll_back(shard: &Rc<Shard>, changes: &[(u64, Vec<Change>)]) {
    let state = shard.leader.as_ref().expect("leader state");
    let _permit = state.lock.acquire_permit(1).await;
    for c in changes.iter().rev().flat_map(|(_, cs)| cs.iter().rev()) {
        let (vhost, inner) = match c {
            Change::In(name, inner) => (shard.meta.borrow().vhost_id(name), &**inner),
            other => (Some(VhostId::DEFAULT), other),
        };
        let Some(vhost) = vhost else {
            continue;
        };
        let still = {
            let j = state.journal.borrow();
            let redefined = j
                .pending_changes
                .iter()
                .flat_map(|(_, cs)| cs.iter())
                .any(|later| same_entity(c, later));
            let root = j.catalog.as_ref().expect("catalog");
            let catalog = match c {
                Change::In(name, _) => root.vhost(name),
                _ => Some(root),
            };
            !redefined
                && catalog.is_some_and(|catalog| match inner {
                    Change::Queue(q) => catalog.queue(&q.name).is_some(),
                    Change::Exchange(x) => catalog.exchange(&x.name).is_some(),
                    Change::Bind(b) => catalog.has_binding(b),
                    _ => false,
                })
        };
        if !still {
            continue;
        }
        match inner {
            Change::Queue(q) => {
                let name = QueueName::new(vhost, q.name.clone());
                if let Err(e) = delete_queue(shard, name, false, false, None).await {
                    tracing::error!("cannot roll back queue '{}': {e}", q.name);
                }
            }
            Change::Exchange(x) => {
                let deleted = match shard.meta.borrow_mut().topology_mut(vhost) {
                    Some(t) => t.delete_exchange(&x.name, false),
                    None => continue,
                };
                match deleted {
                    Ok(_) => {
                        replicate(shard, MetaChange::ExchangeDeleted(vhost, x.name.clone())).await
                    }
                    Err(e) => tracing::error!("cannot roll back exchange '{}': {e}", x.name),
                }
            }
            Change::Bind(b) => {
                let unbound = match shard.meta.borrow_mut().topology_mut(vhost) {
                    Some(t) => t.unbind(&b.source, &b.destination, &b.routing_key, &b.arguments),
                    None => continue,
                };
                match unbound {
                    Ok(_) => replicate(shard, MetaChange::Unbound(vhost, b.clone())).await,
                    Err(e) => tracing::error!("cannot roll back a binding: {e}"),
                }
            }
            _ => {}
        }
    }
}

/// Whether two changes name the same queue, exchange or binding (in the
/// same vhost).
fn same_entity(a: &Change, b: &Change) -> bool {
    match (a, b) {
        (Change::In(va, a), Change::In(vb, b)) => return va == vb && same_entity(a, b),
        (Change::In(..), _) | (_, Change::In(..)) => return false,
        _ => {}
    }
    let queue = |c: &Change| match c {
        Change::Queue(q) => Some(q.name.clone()),
        Change::QueueGone(n) => Some(n.clone()),
        _ => None,
    };
    let exchange = |c: &Change| match c {
        Change::Exchange(x) => Some(x.name.clone()),
        Change::ExchangeGone(n) => Some(n.clone()),
        _ => None,
    };
    let binding = |c: &Change| match c {
        Change::Bind(b) | Change::Unbind(b) => Some(b.clone()),
        _ => None,
    };
    (queue(a).is_some() && queue(a) == queue(b))
        || (exchange(a).is_some() && exchange(a) == exchange(b))
        || (binding(a).is_some() && binding(a) == binding(b))
}
