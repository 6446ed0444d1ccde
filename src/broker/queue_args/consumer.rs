//! The typed arguments of a `basic.consume` ([`ConsumerArguments`]),
//! validated like `rabbit_amqqueue:check_consume_arguments/3` (3.10.8): the
//! validators of `consume_args/0` (`x-priority`, `x-cancel-on-ha-failover`)
//! for the arguments the queue's type owns, then any argument another
//! type owns is refused. The texts name the queue, so parsing needs it.
//! `x-consumer-timeout` is RabbitMQ 4.x's (validated as its
//! `consume_args/0` does, after `x-priority`); Warren takes it on every
//! queue type, as it takes the queue argument (RabbitMQ 4.3 only on
//! quorum queues; 3.10.8 ignores it).

use super::capabilities::is_foreign_consumer_arg;
use super::declare::{int, non_neg};
use super::text::{foreign_arg, invalid_arg, unacceptable_type};
use super::QueueType;
use crate::broker::error::AmqpResult;
use crate::protocol::types::{FieldTable, FieldValue};

/// A consumer's `x-` arguments. Unknown ones are ignored, as in RabbitMQ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConsumerArguments {
    /// `x-priority`: any integer, negative included (RabbitMQ does not bound
    /// it); 0 when absent. Higher-priority consumers get messages first.
    pub priority: i64,
    /// `x-cancel-on-ha-failover` (classic queues; meaningless without
    /// mirroring, accepted and kept for completeness).
    pub cancel_on_ha_failover: bool,
    /// `x-consumer-timeout` (ms, at least 0): how long this consumer may
    /// leave a delivery unacked before its channel is closed. It wins over
    /// the queue's timeout (argument and policy) and `--consumer-timeout`,
    /// as in RabbitMQ 4.x (`rabbit_queue_type:consume/3`).
    pub timeout: Option<u64>,
}

/// Warren's consumer arguments, owned by every queue type.
const WARREN_CONSUMER_ARGS: &[&str] = &["x-consumer-timeout"];

type Validator = fn(&mut ConsumerArguments, &FieldValue) -> Result<(), String>;

/// `rabbit_amqqueue:consume_args/0`, in its order (`x-stream-offset` is a
/// stream argument: refused on the types Warren has; `x-consumer-timeout`
/// is 4.x's, `check_non_neg_int_arg`).
const CONSUME_VALIDATORS: &[(&str, Validator)] = &[
    ("x-priority", |c, v| {
        c.priority = int(v)?;
        Ok(())
    }),
    ("x-consumer-timeout", |c, v| {
        c.timeout = Some(non_neg(v)?);
        Ok(())
    }),
    ("x-cancel-on-ha-failover", |c, v| match v {
        FieldValue::Bool(b) => {
            c.cancel_on_ha_failover = *b;
            Ok(())
        }
        other => Err(unacceptable_type(other)),
    }),
];

impl ConsumerArguments {
    /// Validates the arguments of a consume on queue `queue` of type
    /// `queue_type`, with RabbitMQ's exact 406 texts, e.g.
    /// `PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'q' in vhost '/': "expected integer, got longstr"`.
    pub fn parse(
        queue: &str,
        queue_type: QueueType,
        args: &FieldTable,
    ) -> AmqpResult<ConsumerArguments> {
        let mut parsed = ConsumerArguments::default();
        for (key, check) in CONSUME_VALIDATORS {
            if !queue_type.consumer_arguments().contains(key) && !WARREN_CONSUMER_ARGS.contains(key)
            {
                continue;
            }
            if let Some(v) = args.get(key) {
                check(&mut parsed, v).map_err(|reason| invalid_arg(key, queue, &reason))?;
            }
        }
        for (key, _) in args.iter() {
            if is_foreign_consumer_arg(queue_type, key) {
                return Err(foreign_arg(key, queue, queue_type.rabbit_module()));
            }
        }
        Ok(parsed)
    }
}
