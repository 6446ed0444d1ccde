//! Policies on the shards: every shard's copy of the policies (per vhost,
//! in `Metadata`), the leader's handling of `set_policy` / `clear_policy`
//! (validated with RabbitMQ's texts, journaled, replicated), and applying
//! them: each owner shard re-selects the policy of every queue it owns
//! when a replicated change arrives, and selects one for each queue it
//! creates or recovers; every shard re-selects the policy of every
//! exchange in its routing tables (`Topology::set_policies`, which also
//! gives an exchange declared later its policy).

use crate::broker::error::AmqpError;
use crate::broker::queue::Queue;
use crate::broker::queue_args::policy::{select, ApplyTo, Policy, PolicyDefinition, PolicyTarget};
use crate::broker::queue_args::QueueArguments;
use crate::broker::vhost::{QueueName, VhostId};
use crate::shard::Shard;
use crate::storage::definitions::PolicyDef;
use std::rc::Rc;

/// A policy as set (kept for listing and storing) and compiled.
#[derive(Clone, Debug)]
pub struct StoredPolicy {
    pub def: PolicyDef,
    pub policy: Policy,
}

/// Validates a policy as `rabbitmqctl set_policy` does; the error is
/// RabbitMQ's text.
pub fn compile(def: &PolicyDef) -> Result<StoredPolicy, String> {
    let apply_to =
        ApplyTo::from_name(&def.apply_to).ok_or_else(|| ApplyTo::invalid(&def.apply_to))?;
    let definition = PolicyDefinition::parse(&def.definition)?;
    refuse_unapplied(&definition)?;
    let policy = Policy::new(
        def.name.clone(),
        &def.pattern,
        apply_to,
        def.priority,
        definition,
    )?;
    Ok(StoredPolicy {
        def: def.clone(),
        policy,
    })
}

/// The policy keys Warren applies: to classic and quorum queues (the
/// first seven, `max-unacked` and `consumer-timeout`), quorum queues (`delivery-limit`), classic queues
/// (`queue-mode`: `default` and `lazy` are accepted and change nothing, as
/// in RabbitMQ 3.12+, because every Warren queue pages to disk past its
/// share of the memory budget — what `lazy` asked for), and exchanges
/// (`alternate-exchange`).
pub const APPLIED_KEYS: &[&str] = &[
    "message-ttl",
    "expires",
    "max-length",
    "max-length-bytes",
    "overflow",
    "dead-letter-exchange",
    "dead-letter-routing-key",
    "delivery-limit",
    "queue-mode",
    "alternate-exchange",
    "max-unacked",
    "consumer-timeout",
];

/// Keys RabbitMQ accepts that Warren does not act on are refused, never
/// accepted and ignored. As in RabbitMQ, a key that does not fit the
/// policy's `apply-to` (a queue key in an exchanges policy) is accepted
/// and has no effect there.
fn refuse_unapplied(d: &PolicyDefinition) -> Result<(), String> {
    for k in &d.keys {
        if !APPLIED_KEYS.contains(&k.as_str()) {
            return Err(format!(
                "policy key '{k}' is not supported by Warren (supported: {})",
                APPLIED_KEYS.join(", ")
            ));
        }
    }
    Ok(())
}

/// The policy that applies to queue `name` on this shard's copy.
fn select_for<'a>(policies: &'a [Policy], queue: &Queue) -> Option<&'a Policy> {
    let args =
        QueueArguments::parse(queue.name().as_str(), &queue.config().arguments).unwrap_or_default();
    select(
        policies,
        queue.name().as_str(),
        PolicyTarget::Queue(args.queue_type),
    )
}

/// Selects and applies the policy of one queue this shard owns (a new
/// or recovered one, or after a change); starts its expiry timer when
/// the policy made it expire.
pub fn apply_to_queue(shard: &Rc<Shard>, name: &QueueName) {
    let policies: Vec<Policy> = shard
        .meta
        .borrow()
        .vhosts
        .get(&name.vhost)
        .map(|v| v.policies.iter().map(|p| p.policy.clone()).collect())
        .unwrap_or_default();
    let started = match shard.queues.borrow_mut().get_mut(name) {
        Some(q) => {
            let chosen = select_for(&policies, q);
            if chosen.is_none() && q.policy().is_none() {
                return;
            }
            q.apply_policy(chosen)
        }
        None => return,
    };
    // A cap on unacked deliveries may have gone up or away.
    shard.mark_dirty(name);
    if started {
        crate::shard::expiry::start(shard, name);
    }
}

/// Re-applies the policies of `vhost` to its exchanges (this shard's
/// routing tables) and to every queue of it this shard owns.
pub fn apply_to_all(shard: &Rc<Shard>, vhost: VhostId) {
    {
        let mut meta = shard.meta.borrow_mut();
        if let Some(v) = meta.vhosts.get_mut(&vhost) {
            let policies: Vec<Policy> = v.policies.iter().map(|p| p.policy.clone()).collect();
            v.topology.set_policies(&policies);
        }
    }
    let names: Vec<QueueName> = shard
        .queues
        .borrow()
        .keys()
        .filter(|q| q.vhost == vhost)
        .map(|q| QueueName::clone(q))
        .collect();
    for name in names {
        apply_to_queue(shard, &name);
    }
}

/// This shard's copy after a policy was set: replaced in place, or added
/// last (the order decides between equal priorities).
pub fn set(shard: &Rc<Shard>, vhost: VhostId, def: &PolicyDef) {
    let p = match compile(def) {
        Ok(p) => p,
        Err(e) => {
            // Validated by the leader with the same code.
            tracing::warn!("replicated policy '{}' refused: {e}", def.name);
            return;
        }
    };
    {
        let mut meta = shard.meta.borrow_mut();
        let Some(v) = meta.vhosts.get_mut(&vhost) else {
            return;
        };
        match v.policies.iter_mut().find(|x| x.def.name == p.def.name) {
            Some(x) => *x = p,
            None => v.policies.push(p),
        }
    }
    apply_to_all(shard, vhost);
}

pub fn clear(shard: &Rc<Shard>, vhost: VhostId, name: &str) {
    if let Some(v) = shard.meta.borrow_mut().vhosts.get_mut(&vhost) {
        v.policies.retain(|p| p.def.name != name);
    }
    apply_to_all(shard, vhost);
}

/// The refusal of a set_policy / clear_policy, as the admin reports it.
pub fn refusal(text: String) -> AmqpError {
    AmqpError::precondition_failed(text)
}
