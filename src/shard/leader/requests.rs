//! The metadata requests the leader serves: declaring and deleting queues
//! and exchanges, binding and unbinding — each validated against the
//! leader's copy (exclusivity, equivalence, existence) and, if it changes
//! anything, applied and replicated.

use super::{commit, replicate};
use crate::broker::error::{AmqpError, AmqpResult};
use crate::broker::exchange::{BindingDef, Destination, ExchangeDef, ExchangeKind};
use crate::broker::vhost::{QueueName, VhostId};
use crate::protocol::types::ShortStr;
use crate::shard::envelope::{ConnKey, MetaChange, QueueMeta, Reply, Request};
use crate::shard::Shard;
use std::rc::Rc;

fn locked_queue(name: &str, vhost: &str) -> AmqpError {
    AmqpError::resource_locked(format!(
        "cannot obtain exclusive access to locked queue '{name}' in vhost '{vhost}'. It could be \
         originally declared on another connection or the exclusive property value does not \
         match that of the original declaration."
    ))
}

fn check_exclusive(shard: &Shard, meta: &QueueMeta, conn: Option<ConnKey>) -> AmqpResult<()> {
    match (meta.exclusive_to, conn) {
        (Some(owner), Some(c)) if owner != c => Err(locked_queue(
            &meta.name,
            &shard.meta.borrow().vhost_name(meta.name.vhost),
        )),
        _ => Ok(()),
    }
}

/// The vhost a request names is gone (deleted while the request was on
/// its way): its connection is being closed.
fn vhost_gone() -> AmqpError {
    AmqpError::new(
        crate::broker::error::code::CONNECTION_FORCED,
        "vhost is deleted",
    )
}

pub(super) async fn handle(shard: &Rc<Shard>, request: Request) -> Reply {
    match request {
        Request::DeclareQueue {
            name,
            config,
            owner,
            conn,
        } => Reply::Done(declare_queue(shard, name, config, owner, conn).await),
        Request::DeleteQueue {
            name,
            if_unused,
            if_empty,
            conn,
        } => Reply::Count(delete_queue(shard, name, if_unused, if_empty, conn).await),
        Request::AddVhost { name } => Reply::Done(super::vhosts::add(shard, name).await),
        Request::DeleteVhost { name } => Reply::Done(super::vhosts::delete(shard, name).await),
        Request::SetVhostLimits { name, limits } => {
            Reply::Done(super::vhosts::set_limits(shard, name, limits).await)
        }
        Request::ForgetQueue { name } => {
            if shard.meta.borrow().queues.contains_key(&name) {
                commit(shard, MetaChange::QueueDeleted(name)).await;
            }
            Reply::Done(Ok(()))
        }
        Request::DeclareExchange {
            vhost,
            name,
            kind,
            passive,
            durable,
            auto_delete,
            internal,
            arguments,
        } => {
            let result = match shard.meta.borrow_mut().topology_mut(vhost) {
                Some(t) => t.declare_exchange(
                    &name,
                    &kind,
                    passive,
                    durable,
                    auto_delete,
                    internal,
                    &arguments,
                ),
                None => Err(vhost_gone()),
            };
            if result == Ok(true) && !passive {
                let def = ExchangeDef {
                    name,
                    kind: ExchangeKind::parse(&kind).expect("validated by declare"),
                    durable,
                    auto_delete,
                    internal,
                    arguments,
                };
                replicate(shard, MetaChange::ExchangeDeclared(vhost, def)).await;
            }
            Reply::Done(result.map(|_| ()))
        }
        Request::DeleteExchange {
            vhost,
            name,
            if_unused,
        } => {
            let (existed, result) = match shard.meta.borrow_mut().topology_mut(vhost) {
                Some(t) => (
                    t.exchange(&name).is_some(),
                    t.delete_exchange(&name, if_unused),
                ),
                None => (false, Err(vhost_gone())),
            };
            if result.is_ok() && existed {
                replicate(shard, MetaChange::ExchangeDeleted(vhost, name)).await;
            }
            Reply::Done(result.map(|_| ()))
        }
        Request::Bind {
            vhost,
            source,
            destination,
            routing_key,
            arguments,
            conn,
        } => Reply::Done(
            bind(
                shard,
                true,
                vhost,
                source,
                destination,
                routing_key,
                arguments,
                conn,
            )
            .await,
        ),
        Request::Unbind {
            vhost,
            source,
            destination,
            routing_key,
            arguments,
            conn,
        } => Reply::Done(
            bind(
                shard,
                false,
                vhost,
                source,
                destination,
                routing_key,
                arguments,
                conn,
            )
            .await,
        ),
        Request::SetPolicy { vhost, def } => {
            Reply::Done(match crate::shard::policies::compile(&def) {
                Ok(_) if !shard.meta.borrow().vhosts.contains_key(&vhost) => Err(vhost_gone()),
                Ok(_) => {
                    commit(shard, MetaChange::PolicySet(vhost, def)).await;
                    Ok(())
                }
                Err(text) => Err(crate::shard::policies::refusal(text)),
            })
        }
        Request::ClearPolicy { vhost, name } => {
            let exists = shard
                .meta
                .borrow()
                .vhosts
                .get(&vhost)
                .is_some_and(|v| v.policies.iter().any(|p| p.def.name == name));
            Reply::Done(if exists {
                commit(shard, MetaChange::PolicyCleared(vhost, name)).await;
                Ok(())
            } else {
                Err(AmqpError::not_found("Parameter does not exist"))
            })
        }
        Request::Auth(r) => Reply::Done(match crate::shard::users::changes_of(shard, r) {
            Ok(changes) => {
                for change in changes {
                    commit(shard, MetaChange::Auth(change)).await;
                }
                Ok(())
            }
            Err(e) => Err(e),
        }),
        other => {
            debug_assert!(false, "owner request reached the leader task: {other:?}");
            Reply::Done(Err(AmqpError::new(
                crate::broker::error::code::INTERNAL_ERROR,
                "misrouted request",
            )))
        }
    }
}

async fn declare_queue(
    shard: &Rc<Shard>,
    name: QueueName,
    config: crate::broker::queue::QueueConfig,
    owner: u16,
    conn: ConnKey,
) -> AmqpResult<()> {
    let existing = shard.meta.borrow().queues.get(&name).cloned();
    let Some((vhost, limits)) = shard
        .meta
        .borrow()
        .vhosts
        .get(&name.vhost)
        .map(|v| (v.name.clone(), v.limits))
    else {
        return Err(vhost_gone());
    };
    if let Some(meta) = existing {
        check_exclusive(shard, &meta, Some(conn))?;
        return check_equivalent(&meta, &vhost, &config);
    }
    // As RabbitMQ: the limit is checked before the arguments. Counting
    // walks every queue, so only a vhost with a limit pays for it.
    if limits.max_queues.is_some() {
        let count = shard.meta.borrow().queue_count(name.vhost);
        limits.check_queue(&vhost, &name, count)?;
    }
    // As RabbitMQ: arguments are validated when the declare creates the
    // queue; a redeclare is only checked for equivalence.
    crate::broker::queue_args::QueueArguments::validate_new_queue(
        &name,
        config.durable,
        config.exclusive,
        config.auto_delete,
        &config.arguments,
    )
    .map_err(|e| crate::broker::vhost::in_vhost(e, &vhost))?;
    let meta = QueueMeta {
        name,
        owner,
        exclusive_to: config.exclusive.then_some(conn),
        config,
    };
    commit(shard, MetaChange::QueueCreated(std::sync::Arc::new(meta))).await;
    Ok(())
}

/// RabbitMQ's equivalence check on redeclare (durable, auto-delete,
/// exclusive, arguments), with its wording.
fn check_equivalent(
    meta: &QueueMeta,
    vhost: &str,
    config: &crate::broker::queue::QueueConfig,
) -> AmqpResult<()> {
    let name = &meta.name;
    let current = &meta.config;
    let inequivalent = |field: &str, received: String, now: String| {
        Err(AmqpError::precondition_failed(format!(
            "inequivalent arg '{field}' for queue '{name}' in vhost '{vhost}': received '{received}' but current is '{now}'"
        )))
    };
    if current.durable != config.durable {
        return inequivalent(
            "durable",
            config.durable.to_string(),
            current.durable.to_string(),
        );
    }
    if current.auto_delete != config.auto_delete {
        return inequivalent(
            "auto_delete",
            config.auto_delete.to_string(),
            current.auto_delete.to_string(),
        );
    }
    if current.exclusive != config.exclusive {
        return inequivalent(
            "exclusive",
            config.exclusive.to_string(),
            current.exclusive.to_string(),
        );
    }
    crate::broker::queue_args::check_equivalent_arguments(
        name,
        &current.arguments,
        &config.arguments,
    )
    .map_err(|e| crate::broker::vhost::in_vhost(e, vhost))
}

pub(super) async fn delete_queue(
    shard: &Rc<Shard>,
    name: QueueName,
    if_unused: bool,
    if_empty: bool,
    conn: Option<ConnKey>,
) -> AmqpResult<u32> {
    let Some(meta) = shard.meta.borrow().queues.get(&name).cloned() else {
        return Ok(0);
    };
    check_exclusive(shard, &meta, conn)?;
    let reply = shard
        .request(
            meta.owner,
            Request::DropQueue {
                name: name.clone(),
                if_unused,
                if_empty,
            },
        )
        .await;
    let count = match reply {
        Reply::Count(r) => r?,
        other => panic!("DropQueue answered with {other:?}"),
    };
    commit(shard, MetaChange::QueueDeleted(name)).await;
    Ok(count)
}

fn unbind_targets_exist(
    shard: &Shard,
    vhost: VhostId,
    source: &str,
    destination: &Destination,
) -> bool {
    let meta = shard.meta.borrow();
    meta.topology(vhost)
        .is_some_and(|t| t.exchange(source).is_some())
        && meta.destination_exists(vhost, destination)
}

#[allow(clippy::too_many_arguments)]
async fn bind(
    shard: &Rc<Shard>,
    bind: bool,
    vhost: VhostId,
    source: ShortStr,
    destination: Destination,
    routing_key: ShortStr,
    arguments: crate::protocol::types::FieldTable,
    conn: ConnKey,
) -> AmqpResult<()> {
    if !bind && !unbind_targets_exist(shard, vhost, &source, &destination) {
        // RabbitMQ answers unbind-ok when the binding cannot exist.
        return Ok(());
    }
    // RabbitMQ's order: the exchanges first, then the queue.
    match shard.meta.borrow().topology(vhost) {
        Some(t) => t.check_bind(&source, &destination)?,
        None => return Err(vhost_gone()),
    }
    if let Destination::Queue(q) = &destination {
        let meta = shard
            .meta
            .borrow()
            .queues
            .get(&QueueName::new(vhost, q.clone()))
            .cloned();
        match meta {
            None => {
                let vname = shard.meta.borrow().vhost_name(vhost);
                return Err(AmqpError::not_found(format!(
                    "no queue '{q}' in vhost '{vname}'"
                )));
            }
            Some(m) => check_exclusive(shard, &m, Some(conn))?,
        }
    }
    let def = BindingDef {
        source,
        destination,
        routing_key,
        arguments,
    };
    let result = {
        let mut meta = shard.meta.borrow_mut();
        let Some(topology) = meta.topology_mut(vhost) else {
            return Err(vhost_gone());
        };
        if bind {
            topology
                .bind(
                    &def.source,
                    def.destination.clone(),
                    &def.routing_key,
                    &def.arguments,
                )
                .map(|_| ())
        } else {
            topology
                .unbind(
                    &def.source,
                    &def.destination,
                    &def.routing_key,
                    &def.arguments,
                )
                .map(|_| ())
        }
    };
    result?;
    let change = if bind {
        MetaChange::Bound(vhost, def)
    } else {
        MetaChange::Unbound(vhost, def)
    };
    replicate(shard, change).await;
    Ok(())
}
