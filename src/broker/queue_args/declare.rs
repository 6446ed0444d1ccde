//! The typed arguments of a `queue.declare` ([`QueueArguments`]) and their
//! validation, step for step as RabbitMQ 3.10.8 validates a new queue:
//!
//! 1. `rabbit_channel`: `x-dead-letter-exchange` must be a longstr
//!    (`invalid type '<type>' for arg 'x-dead-letter-exchange' in queue ...`);
//! 2. `x-queue-type` must name a known type;
//! 3. the validators of `rabbit_amqqueue:declare_args/0`, in that list's
//!    order, for the arguments the queue's type owns;
//! 4. any argument another queue type owns is refused
//!    (`... of queue type rabbit_classic_queue`), in the table's order;
//! 5. (quorum only, [`QueueArguments::validate_new_queue`]) the queue
//!    properties: auto-delete, then exclusive, then non-durable.
//!
//! RabbitMQ runs these only when the queue does not exist yet; redeclaring
//! an existing queue runs the equivalence check instead
//! (`check_equivalent_arguments`). Every text was probed on RabbitMQ 3.10.8
//! (see the table in `queue_args/tests.rs`).

use super::capabilities::is_foreign_queue_arg;
use super::text::{
    expected_integer, foreign_arg, formatted_reason, invalid_arg, precondition_failed,
    queue_resource, unacceptable_type,
};
use super::QueueType;
use crate::broker::error::{AmqpError, AmqpResult};
use crate::broker::exchange::headers::type_name;
use crate::protocol::types::{FieldTable, FieldValue, LongStr};

/// The largest `x-message-ttl` / `x-expires` RabbitMQ accepts, in ms
/// (`rabbit_misc:check_expiry/1`: ten years; larger is `{value_too_large,N}`).
pub const MAX_EXPIRY_MS: u64 = 315_360_000_000;

/// The largest `x-max-priority` (`?MAX_SUPPORTED_PRIORITY`).
pub const MAX_SUPPORTED_PRIORITY: u8 = 255;

/// The delivery limit RabbitMQ **4.x** gives a quorum queue that has none
/// (`-define(DEFAULT_DELIVERY_LIMIT, 20)` in `rabbit_quorum_queue.erl`, applied
/// by `gather_policy_config/2` with the log line "delivery_limit not set,
/// defaulting to 20"; 4.x also reads a negative limit as "unlimited").
/// RabbitMQ 3.10.8 has no default: an unset limit means unlimited there.
pub const RABBITMQ4_DEFAULT_DELIVERY_LIMIT: u64 = 20;

/// `x-overflow`: what a queue at its length limit does with a new message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop (or dead-letter) the oldest message (the default).
    #[default]
    DropHead,
    /// Refuse the new message (basic.nack with confirms).
    RejectPublish,
    /// Refuse it and dead-letter it (classic queues only; quorum queues
    /// accept the value and run drop-head, logging a warning).
    RejectPublishDlx,
}

impl Overflow {
    pub fn from_name(name: &[u8]) -> Option<Overflow> {
        Some(match name {
            b"drop-head" => Overflow::DropHead,
            b"reject-publish" => Overflow::RejectPublish,
            b"reject-publish-dlx" => Overflow::RejectPublishDlx,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Overflow::DropHead => "drop-head",
            Overflow::RejectPublish => "reject-publish",
            Overflow::RejectPublishDlx => "reject-publish-dlx",
        }
    }
}

/// `x-queue-mode` (classic queues).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum QueueMode {
    #[default]
    Default,
    Lazy,
}

impl QueueMode {
    pub fn from_name(name: &[u8]) -> Option<QueueMode> {
        match name {
            b"default" => Some(QueueMode::Default),
            b"lazy" => Some(QueueMode::Lazy),
            _ => None,
        }
    }
}

/// `x-dead-letter-strategy` (quorum queues).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeadLetterStrategy {
    #[default]
    AtMostOnce,
    AtLeastOnce,
}

impl DeadLetterStrategy {
    pub fn from_name(name: &[u8]) -> Option<DeadLetterStrategy> {
        match name {
            b"at-most-once" => Some(DeadLetterStrategy::AtMostOnce),
            b"at-least-once" => Some(DeadLetterStrategy::AtLeastOnce),
            _ => None,
        }
    }
}

/// `x-queue-leader-locator` (quorum queues).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaderLocator {
    ClientLocal,
    Balanced,
    Random,
    LeastLeaders,
}

impl LeaderLocator {
    pub fn from_name(name: &[u8]) -> Option<LeaderLocator> {
        Some(match name {
            b"client-local" => LeaderLocator::ClientLocal,
            b"balanced" => LeaderLocator::Balanced,
            b"random" => LeaderLocator::Random,
            b"least-leaders" => LeaderLocator::LeastLeaders,
            _ => return None,
        })
    }
}

/// A queue's declared `x-` arguments, validated and typed. `None` / `false`
/// means "not declared"; the queue type's default then applies (and a
/// policy may fill it in: see `policy::effective`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct QueueArguments {
    /// `x-queue-type` (classic when absent).
    pub queue_type: QueueType,
    /// `x-message-ttl`, ms (0 ..= [`MAX_EXPIRY_MS`]; 0 is allowed).
    pub message_ttl: Option<u64>,
    /// `x-expires`, ms (1 ..= [`MAX_EXPIRY_MS`]).
    pub expires: Option<u64>,
    /// `x-max-length`, messages (0 allowed).
    pub max_length: Option<u64>,
    /// `x-max-length-bytes`, body bytes (0 allowed).
    pub max_length_bytes: Option<u64>,
    /// `x-overflow` (drop-head when absent: [`QueueArguments::overflow_or_default`]).
    pub overflow: Option<Overflow>,
    /// `x-dead-letter-exchange` as declared. RabbitMQ accepts any longstr
    /// here without looking the exchange up (`""` is the default exchange);
    /// see [`QueueArguments::dead_letter_exchange_name`].
    pub dead_letter_exchange: Option<LongStr>,
    /// `x-dead-letter-routing-key` (only with a dead-letter exchange).
    pub dead_letter_routing_key: Option<LongStr>,
    /// `x-max-priority` (classic queues; 0 ..= 255).
    pub max_priority: Option<u8>,
    /// `x-single-active-consumer`.
    pub single_active_consumer: bool,
    /// `x-queue-mode` (classic queues).
    pub queue_mode: Option<QueueMode>,
    /// `x-queue-version` (classic queues; 1 or 2).
    pub queue_version: Option<u8>,
    /// `x-delivery-limit` (quorum queues). RabbitMQ 3.10.8 does not validate
    /// it at all (a string or a negative number is accepted); only integer
    /// values are kept here. Unset means unlimited on 3.10.8 and
    /// [`RABBITMQ4_DEFAULT_DELIVERY_LIMIT`] on 4.x, where a negative limit
    /// means unlimited.
    pub delivery_limit: Option<i64>,
    /// `x-dead-letter-strategy` (quorum queues).
    pub dead_letter_strategy: Option<DeadLetterStrategy>,
    /// `x-max-in-memory-length` (quorum queues).
    pub max_in_memory_length: Option<u64>,
    /// `x-max-in-memory-bytes` (quorum queues).
    pub max_in_memory_bytes: Option<u64>,
    /// `x-quorum-initial-group-size` (quorum queues; at least 1).
    pub quorum_initial_group_size: Option<u64>,
    /// `x-queue-leader-locator` (quorum queues).
    pub queue_leader_locator: Option<LeaderLocator>,
    /// `x-max-unacked` (Warren's own, every queue type; at least 1): the
    /// queue stops delivering while it has this many unacknowledged
    /// deliveries.
    pub max_unacked: Option<u64>,
    /// `x-consumer-timeout` (ms; every queue type): RabbitMQ 3.12+'s
    /// per-queue consumer timeout, validated as its `check_non_neg_int_arg`
    /// (RabbitMQ 3.10.8 ignores the argument and has only the global
    /// `consumer_timeout`).
    pub consumer_timeout: Option<u64>,
}

/// A validator's verdict: the reason RabbitMQ prints (already `~p`) on refusal.
type Check = Result<(), String>;

impl QueueArguments {
    /// Validates and types the arguments of a declare that creates queue
    /// `queue`, refusing what RabbitMQ refuses with its exact 406 text.
    /// Unknown arguments (`x-whatever`, Warren's `x-warren-shard`) are kept
    /// in the table and ignored here, as RabbitMQ does.
    pub fn parse(queue: &str, args: &FieldTable) -> AmqpResult<QueueArguments> {
        if let Some(v) = args.get("x-dead-letter-exchange") {
            if !matches!(v, FieldValue::LongStr(_)) {
                return Err(precondition_failed(&format!(
                    "invalid type '{}' for arg 'x-dead-letter-exchange' in {}",
                    type_name(v),
                    queue_resource(queue)
                )));
            }
        }
        let queue_type = queue_type_of(queue, args)?;
        let mut parsed = QueueArguments {
            queue_type,
            ..QueueArguments::default()
        };
        for (key, check) in DECLARE_VALIDATORS {
            if !queue_type.queue_arguments().contains(key) {
                continue;
            }
            if let Some(v) = args.get(key) {
                check(&mut parsed, v, args).map_err(|reason| invalid_arg(key, queue, &reason))?;
            }
        }
        for (key, check) in WARREN_VALIDATORS {
            if let Some(v) = args.get(key) {
                check(&mut parsed, v, args).map_err(|reason| invalid_arg(key, queue, &reason))?;
            }
        }
        for (key, _) in args.iter() {
            if is_foreign_queue_arg(queue_type, key) {
                return Err(foreign_arg(key, queue, queue_type.rabbit_module()));
            }
        }
        if queue_type == QueueType::Quorum {
            parsed.delivery_limit = args.get("x-delivery-limit").and_then(FieldValue::as_i64);
        }
        Ok(parsed)
    }

    /// Everything RabbitMQ checks when a declare creates a queue: the
    /// arguments ([`QueueArguments::parse`]) and then, for quorum queues,
    /// the properties (`rabbit_quorum_queue:declare/2`).
    pub fn validate_new_queue(
        queue: &str,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        args: &FieldTable,
    ) -> AmqpResult<QueueArguments> {
        let parsed = QueueArguments::parse(queue, args)?;
        if parsed.queue_type == QueueType::Quorum {
            check_quorum_properties(queue, durable, exclusive, auto_delete)?;
        }
        Ok(parsed)
    }

    /// `x-overflow`, or drop-head when it was not declared.
    pub fn overflow_or_default(&self) -> Overflow {
        self.overflow.unwrap_or_default()
    }

    /// The dead-letter exchange's name, when one is declared and it can name
    /// an exchange at all. A declared name that is not UTF-8 or is longer
    /// than 255 bytes can never match an exchange — like a dead-letter
    /// exchange that does not exist, dead-lettered messages have nowhere to
    /// go — and reads as `None` here.
    pub fn dead_letter_exchange_name(&self) -> Option<&str> {
        exchange_name(self.dead_letter_exchange.as_ref()?)
    }

    /// The dead-letter routing key, when declared and valid UTF-8.
    pub fn dead_letter_routing_key_str(&self) -> Option<&str> {
        std::str::from_utf8(self.dead_letter_routing_key.as_ref()?).ok()
    }
}

fn exchange_name(bytes: &[u8]) -> Option<&str> {
    if bytes.len() > 255 {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// The queue type named by `x-queue-type`, checked the way
/// `rabbit_amqqueue:check_queue_type/2` checks it. `stream` is a type
/// RabbitMQ knows but Warren does not implement: it is refused with the
/// text RabbitMQ gives an unknown type.
pub(crate) fn queue_type_of(queue: &str, args: &FieldTable) -> AmqpResult<QueueType> {
    let refuse = |reason: String| Err(invalid_arg("x-queue-type", queue, &reason));
    match args.get("x-queue-type") {
        None => Ok(QueueType::Classic),
        Some(FieldValue::LongStr(t)) => match &t[..] {
            b"classic" => Ok(QueueType::Classic),
            b"quorum" => Ok(QueueType::Quorum),
            other => refuse(formatted_reason("unsupported queue type ", other)),
        },
        Some(other) => refuse(unacceptable_type(other)),
    }
}

/// `rabbit_quorum_queue:declare/2`'s property checks, in its order.
pub(crate) fn check_quorum_properties(
    queue: &str,
    durable: bool,
    exclusive: bool,
    auto_delete: bool,
) -> AmqpResult<()> {
    let invalid = |property: &str| -> AmqpResult<()> { Err(invalid_property(property, queue)) };
    if auto_delete {
        return invalid("auto-delete");
    }
    if exclusive {
        return invalid("exclusive-owner");
    }
    if !durable {
        return invalid("non-durable");
    }
    Ok(())
}

fn invalid_property(property: &str, queue: &str) -> AmqpError {
    precondition_failed(&format!(
        "invalid property '{property}' for {}",
        queue_resource(queue)
    ))
}

type Validator = fn(&mut QueueArguments, &FieldValue, &FieldTable) -> Check;

/// `rabbit_amqqueue:declare_args/0` (3.10.8), in its order. `x-queue-type`
/// was checked first; stream-only arguments never reach a validator here.
const DECLARE_VALIDATORS: &[(&str, Validator)] = &[
    ("x-expires", |a, v, _| {
        let n = int(v)?;
        if n == 0 {
            return Err("{value_zero,0}".to_string());
        }
        a.expires = Some(expiry(n)?);
        Ok(())
    }),
    ("x-message-ttl", |a, v, _| {
        a.message_ttl = Some(expiry(int(v)?)?);
        Ok(())
    }),
    ("x-dead-letter-exchange", |a, v, _| {
        a.dead_letter_exchange = Some(longstr(v)?);
        Ok(())
    }),
    ("x-dead-letter-routing-key", |a, v, args| {
        let key = longstr(v)?;
        if args.get("x-dead-letter-exchange").is_none() {
            return Err("routing_key_but_no_dlx_defined".to_string());
        }
        a.dead_letter_routing_key = Some(key);
        Ok(())
    }),
    ("x-dead-letter-strategy", |a, v, _| {
        let s = longstr(v)?;
        a.dead_letter_strategy =
            Some(DeadLetterStrategy::from_name(&s).ok_or("invalid_dlx_strategy")?);
        Ok(())
    }),
    ("x-max-length", |a, v, _| {
        a.max_length = Some(non_neg(v)?);
        Ok(())
    }),
    ("x-max-length-bytes", |a, v, _| {
        a.max_length_bytes = Some(non_neg(v)?);
        Ok(())
    }),
    ("x-max-in-memory-length", |a, v, _| {
        a.max_in_memory_length = Some(non_neg(v)?);
        Ok(())
    }),
    ("x-max-in-memory-bytes", |a, v, _| {
        a.max_in_memory_bytes = Some(non_neg(v)?);
        Ok(())
    }),
    ("x-max-priority", |a, v, _| {
        let n = non_neg(v)?;
        if n > MAX_SUPPORTED_PRIORITY as u64 {
            return Err(format!("{{max_value_exceeded,{n}}}"));
        }
        a.max_priority = Some(n as u8);
        Ok(())
    }),
    ("x-overflow", |a, v, _| {
        let s = longstr(v)?;
        a.overflow = Some(Overflow::from_name(&s).ok_or("invalid_overflow")?);
        Ok(())
    }),
    ("x-queue-mode", |a, v, _| {
        let s = longstr(v)?;
        a.queue_mode = Some(
            QueueMode::from_name(&s)
                .ok_or_else(|| formatted_reason("unsupported queue mode ", &s))?,
        );
        Ok(())
    }),
    ("x-queue-version", |a, v, _| {
        let n = non_neg(v)?;
        if n != 1 && n != 2 {
            return Err(formatted_reason(
                "unsupported queue version ",
                n.to_string().as_bytes(),
            ));
        }
        a.queue_version = Some(n as u8);
        Ok(())
    }),
    ("x-single-active-consumer", |a, v, _| match v {
        FieldValue::Bool(b) => {
            a.single_active_consumer = *b;
            Ok(())
        }
        other => Err(unacceptable_type(other)),
    }),
    ("x-quorum-initial-group-size", |a, v, _| {
        let n = non_neg(v)?;
        if n == 0 {
            return Err("{value_zero,0}".to_string());
        }
        a.quorum_initial_group_size = Some(n);
        Ok(())
    }),
    ("x-queue-leader-locator", |a, v, _| {
        let s = longstr(v)?;
        a.queue_leader_locator =
            Some(LeaderLocator::from_name(&s).ok_or("invalid_queue_locator_arg")?);
        Ok(())
    }),
];

/// Warren's own declare arguments (every queue type), checked after
/// RabbitMQ's, with the texts of RabbitMQ's numeric validators.
const WARREN_VALIDATORS: &[(&str, Validator)] = &[
    ("x-max-unacked", |a, v, _| {
        let n = non_neg(v)?;
        if n == 0 {
            return Err("{value_zero,0}".to_string());
        }
        a.max_unacked = Some(n);
        Ok(())
    }),
    ("x-consumer-timeout", |a, v, _| {
        a.consumer_timeout = Some(non_neg(v)?);
        Ok(())
    }),
];

/// `check_int_arg`: any of the seven integer types.
pub(crate) fn int(v: &FieldValue) -> Result<i64, String> {
    v.as_i64().ok_or_else(|| expected_integer(v))
}

/// `check_non_neg_int_arg`.
pub(crate) fn non_neg(v: &FieldValue) -> Result<u64, String> {
    let n = int(v)?;
    u64::try_from(n).map_err(|_| format!("{{value_negative,{n}}}"))
}

/// `rabbit_misc:check_expiry/1`.
fn expiry(n: i64) -> Result<u64, String> {
    if n < 0 {
        return Err(format!("{{value_negative,{n}}}"));
    }
    if n as u64 > MAX_EXPIRY_MS {
        return Err(format!("{{value_too_large,{n}}}"));
    }
    Ok(n as u64)
}

fn longstr(v: &FieldValue) -> Result<LongStr, String> {
    match v {
        FieldValue::LongStr(s) => Ok(s.clone()),
        other => Err(unacceptable_type(other)),
    }
}
