//! The metadata requests the leader serves: declaring and deleting queues
//! and exchanges, binding and unbinding — each validated against the
//! leader's copy (exclusivity, equivalence, existence) and, if it changes
//! anything, applied and replicated.

use super::{commit, replicate};
use crate::broker::error::{AmqpError, AmqpResult};
use crate::broker::exchange::{BindingDef, Destination, ExchangeDef, ExchangeKind};
use crate::protocol::types::ShortStr;
use crate::shard::envelope::{ConnKey, MetaChange, QueueMeta, Reply, Request};
use crate::shard::Shard;
use std::rc::Rc;

fn locked_queue(name: &str) -> AmqpError {
    AmqpError::resource_locked(format!(
        "cannot obtain exclusive access to locked queue '{name}' in vhost '/'. It could be \
         originally declared on another connection or the exclusive property value does not \
         match that of the original declaration."
    ))
}

fn check_exclusive(meta: &QueueMeta, conn: Option<ConnKey>) -> AmqpResult<()> {
    match (meta.exclusive_to, conn) {
        (Some(owner), Some(c)) if owner != c => Err(locked_queue(&meta.name)),
        _ => Ok(()),
    }
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
        Request::ForgetQueue { name } => {
            if shard.meta.borrow().queues.contains_key(&name) {
                commit(shard, MetaChange::QueueDeleted(name)).await;
            }
            Reply::Done(Ok(()))
        }
        Request::DeclareExchange {
            name,
            kind,
            passive,
            durable,
            auto_delete,
            internal,
            arguments,
        } => {
            let result = shard.meta.borrow_mut().topology.declare_exchange(
                &name,
                &kind,
                passive,
                durable,
                auto_delete,
                internal,
                &arguments,
            );
            if result == Ok(true) && !passive {
                let def = ExchangeDef {
                    name,
                    kind: ExchangeKind::parse(&kind).expect("validated by declare"),
                    durable,
                    auto_delete,
                    internal,
                    arguments,
                };
                replicate(shard, MetaChange::ExchangeDeclared(def)).await;
            }
            Reply::Done(result.map(|_| ()))
        }
        Request::DeleteExchange { name, if_unused } => {
            let existed = shard.meta.borrow().topology.exchange(&name).is_some();
            let result = shard
                .meta
                .borrow_mut()
                .topology
                .delete_exchange(&name, if_unused);
            if result.is_ok() && existed {
                replicate(shard, MetaChange::ExchangeDeleted(name)).await;
            }
            Reply::Done(result.map(|_| ()))
        }
        Request::Bind {
            source,
            destination,
            routing_key,
            arguments,
            conn,
        } => Reply::Done(
            bind(
                shard,
                true,
                source,
                destination,
                routing_key,
                arguments,
                conn,
            )
            .await,
        ),
        Request::Unbind {
            source,
            destination,
            routing_key,
            arguments,
            conn,
        } => Reply::Done(
            bind(
                shard,
                false,
                source,
                destination,
                routing_key,
                arguments,
                conn,
            )
            .await,
        ),
        Request::SetPolicy { def } => Reply::Done(match crate::shard::policies::compile(&def) {
            Ok(_) => {
                commit(shard, MetaChange::PolicySet(def)).await;
                Ok(())
            }
            Err(text) => Err(crate::shard::policies::refusal(text)),
        }),
        Request::ClearPolicy { name } => {
            let exists = shard
                .meta
                .borrow()
                .policies
                .iter()
                .any(|p| p.def.name == name);
            Reply::Done(if exists {
                commit(shard, MetaChange::PolicyCleared(name)).await;
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
    name: ShortStr,
    config: crate::broker::queue::QueueConfig,
    owner: u16,
    conn: ConnKey,
) -> AmqpResult<()> {
    let existing = shard.meta.borrow().queues.get(&name).cloned();
    if let Some(meta) = existing {
        check_exclusive(&meta, Some(conn))?;
        return check_equivalent(&meta, &config);
    }
    // As RabbitMQ: arguments are validated when the declare creates the
    // queue; a redeclare is only checked for equivalence.
    crate::broker::queue_args::QueueArguments::validate_new_queue(
        &name,
        config.durable,
        config.exclusive,
        config.auto_delete,
        &config.arguments,
    )?;
    let meta = QueueMeta {
        name,
        owner,
        exclusive_to: config.exclusive.then_some(conn),
        config,
    };
    commit(shard, MetaChange::QueueCreated(meta)).await;
    Ok(())
}

/// RabbitMQ's equivalence check on redeclare (durable, auto-delete,
/// exclusive, arguments), with its wording.
fn check_equivalent(
    meta: &QueueMeta,
    config: &crate::broker::queue::QueueConfig,
) -> AmqpResult<()> {
    let name = &meta.name;
    let current = &meta.config;
    let inequivalent = |field: &str, received: String, now: String| {
        Err(AmqpError::precondition_failed(format!(
            "inequivalent arg '{field}' for queue '{name}' in vhost '/': received '{received}' but current is '{now}'"
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
}

pub(super) async fn delete_queue(
    shard: &Rc<Shard>,
    name: ShortStr,
    if_unused: bool,
    if_empty: bool,
    conn: Option<ConnKey>,
) -> AmqpResult<u32> {
    let Some(meta) = shard.meta.borrow().queues.get(&name).cloned() else {
        return Ok(0);
    };
    check_exclusive(&meta, conn)?;
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

fn unbind_targets_exist(shard: &Shard, source: &str, destination: &Destination) -> bool {
    let meta = shard.meta.borrow();
    meta.topology.exchange(source).is_some() && meta.destination_exists(destination)
}

async fn bind(
    shard: &Rc<Shard>,
    bind: bool,
    source: ShortStr,
    destination: Destination,
    routing_key: ShortStr,
    arguments: crate::protocol::types::FieldTable,
    conn: ConnKey,
) -> AmqpResult<()> {
    if !bind && !unbind_targets_exist(shard, &source, &destination) {
        // RabbitMQ answers unbind-ok when the binding cannot exist.
        return Ok(());
    }
    // RabbitMQ's order: the exchanges first, then the queue.
    shard
        .meta
        .borrow()
        .topology
        .check_bind(&source, &destination)?;
    if let Destination::Queue(q) = &destination {
        let meta = shard.meta.borrow().queues.get(q).cloned();
        match meta {
            None => {
                return Err(AmqpError::not_found(format!("no queue '{q}' in vhost '/'")));
            }
            Some(m) => check_exclusive(&m, Some(conn))?,
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
        if bind {
            meta.topology
                .bind(
                    &def.source,
                    def.destination.clone(),
                    &def.routing_key,
                    &def.arguments,
                )
                .map(|_| ())
        } else {
            meta.topology
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
        MetaChange::Bound(def)
    } else {
        MetaChange::Unbound(def)
    };
    replicate(shard, change).await;
    Ok(())
}
