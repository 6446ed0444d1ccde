//! Queue declaration and consume arguments, modelled on RabbitMQ 3.10.8:
//! the typed, validated `x-` arguments of a declare ([`QueueArguments`])
//! and of a consume ([`ConsumerArguments`]), the combinations RabbitMQ
//! refuses (quorum queues must be durable and neither exclusive nor
//! auto-delete), the arguments whose values must match on redeclare,
//! policies and how they combine with arguments ([`policy`]), and Warren's
//! own `x-warren-shard` placement pin. Unknown `x-` arguments are kept, not
//! refused, as RabbitMQ does.

mod capabilities;
mod consumer;
mod declare;
mod equivalence;
pub mod policy;
mod text;

#[cfg(test)]
mod tests;

pub use consumer::ConsumerArguments;
pub use declare::{
    DeadLetterStrategy, LeaderLocator, Overflow, QueueArguments, QueueMode, MAX_EXPIRY_MS,
    MAX_SUPPORTED_PRIORITY, RABBITMQ4_DEFAULT_DELIVERY_LIMIT,
};
pub use policy::{effective, select, ApplyTo, Policy, PolicyDefinition, PolicyTarget};

use crate::broker::error::{AmqpError, AmqpResult};
use crate::protocol::types::FieldTable;

/// Queue argument pinning a queue to a shard (tests force placement with it).
pub const SHARD_ARG: &str = "x-warren-shard";

/// The queue type named by `x-queue-type` (classic when absent). RabbitMQ's
/// third type, `stream`, is refused: Warren has no streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum QueueType {
    #[default]
    Classic,
    Quorum,
}

/// Checks a declaration's queue type and, for quorum queues, its flags the
/// way RabbitMQ does (the properties in `rabbit_quorum_queue`'s order:
/// auto-delete, exclusive, non-durable). It does not validate the other
/// arguments: [`QueueArguments::validate_new_queue`] checks everything
/// RabbitMQ checks when a declare creates a queue.
pub fn validate_declare(
    name: &str,
    durable: bool,
    exclusive: bool,
    auto_delete: bool,
    args: &FieldTable,
) -> AmqpResult<QueueType> {
    let queue_type = declare::queue_type_of(name, args)?;
    if queue_type == QueueType::Quorum {
        declare::check_quorum_properties(name, durable, exclusive, auto_delete)?;
    }
    Ok(queue_type)
}

/// The shard named by `x-warren-shard`, checked against the shard count.
pub fn pinned_shard(name: &str, args: &FieldTable, shards: u16) -> AmqpResult<Option<u16>> {
    let Some(value) = args.get(SHARD_ARG) else {
        return Ok(None);
    };
    match value.as_i64() {
        Some(n) if n >= 0 && n < shards as i64 => Ok(Some(n as u16)),
        _ => Err(AmqpError::precondition_failed(format!(
            "invalid arg '{SHARD_ARG}' for queue '{name}' in vhost '/': \
             must be an integer shard number below {shards}"
        ))),
    }
}

/// RabbitMQ's argument equivalence check on redeclare: `current` is the
/// existing queue's arguments, `received` the redeclare's. The arguments
/// compared are those the existing queue's type owns, in RabbitMQ's order;
/// integers compare by value whatever their width (see `equivalence.rs`).
pub fn check_equivalent_arguments(
    name: &str,
    current: &FieldTable,
    received: &FieldTable,
) -> AmqpResult<()> {
    equivalence::check(name, current, received)
}
