//! Queue declaration arguments: the combinations RabbitMQ refuses (quorum
//! queues must be durable and neither exclusive nor auto-delete), the
//! arguments whose values must match on redeclare, and Warren's own
//! `x-warren-shard` placement pin. Unknown `x-` arguments are kept, not
//! refused, as RabbitMQ does.

use crate::broker::error::{AmqpError, AmqpResult};
use crate::broker::exchange::headers::type_name;
use crate::protocol::types::{FieldTable, FieldValue};

/// Queue argument pinning a queue to a shard (tests force placement with it).
pub const SHARD_ARG: &str = "x-warren-shard";

/// Arguments RabbitMQ compares when a queue is declared again.
const EQUIVALENCE_CHECKED: &[&str] = &[
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-message-ttl",
    "x-overflow",
    "x-queue-mode",
    "x-queue-type",
    "x-queue-version",
    "x-single-active-consumer",
    "x-quorum-initial-group-size",
    "x-delivery-limit",
];

/// The queue type named by `x-queue-type` (classic when absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueType {
    Classic,
    Quorum,
}

/// Checks a declaration's flags and arguments the way RabbitMQ does.
pub fn validate_declare(
    name: &str,
    durable: bool,
    exclusive: bool,
    auto_delete: bool,
    args: &FieldTable,
) -> AmqpResult<QueueType> {
    let queue_type = match args.get("x-queue-type") {
        None => QueueType::Classic,
        Some(FieldValue::LongStr(t)) if &t[..] == b"classic" => QueueType::Classic,
        Some(FieldValue::LongStr(t)) if &t[..] == b"quorum" => QueueType::Quorum,
        Some(other) => {
            return Err(AmqpError::precondition_failed(format!(
                "invalid arg 'x-queue-type' for queue '{name}' in vhost '/': \
                 {{unsupported_queue_type, {}}}",
                show_value(other)
            )))
        }
    };
    if queue_type == QueueType::Quorum {
        let invalid = |property: &str| {
            Err(AmqpError::precondition_failed(format!(
                "invalid property '{property}' for queue '{name}' in vhost '/'"
            )))
        };
        if !durable {
            return invalid("non-durable");
        }
        if exclusive {
            return invalid("exclusive-owner");
        }
        if auto_delete {
            return invalid("auto-delete");
        }
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

/// RabbitMQ's argument equivalence check on redeclare.
pub fn check_equivalent_arguments(
    name: &str,
    current: &FieldTable,
    received: &FieldTable,
) -> AmqpResult<()> {
    for key in EQUIVALENCE_CHECKED {
        let (now, new) = (current.get(key), received.get(key));
        if now == new {
            continue;
        }
        let describe = |v: Option<&FieldValue>| match v {
            None => "none".to_string(),
            Some(v) => format!("the value '{}' of type '{}'", show_value(v), type_name(v)),
        };
        return Err(AmqpError::precondition_failed(format!(
            "inequivalent arg '{key}' for queue '{name}' in vhost '/': received {} but current is {}",
            describe(new),
            describe(now)
        )));
    }
    Ok(())
}

fn show_value(v: &FieldValue) -> String {
    match v {
        FieldValue::LongStr(b) | FieldValue::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        FieldValue::Bool(b) => b.to_string(),
        FieldValue::F32(f) => f.to_string(),
        FieldValue::F64(f) => f.to_string(),
        other => match other.as_i64() {
            Some(n) => n.to_string(),
            None => format!("{other:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::ShortStr;
    use bytes::Bytes;

    fn args(pairs: &[(&str, FieldValue)]) -> FieldTable {
        FieldTable(
            pairs
                .iter()
                .map(|(k, v)| (ShortStr::from(*k), v.clone()))
                .collect(),
        )
    }

    fn quorum() -> FieldTable {
        args(&[(
            "x-queue-type",
            FieldValue::LongStr(Bytes::from_static(b"quorum")),
        )])
    }

    #[test]
    fn quorum_queues_must_be_durable_and_shared() {
        assert_eq!(
            validate_declare("q", true, false, false, &quorum()),
            Ok(QueueType::Quorum)
        );
        let e = validate_declare("q", true, true, false, &quorum()).unwrap_err();
        assert_eq!(e.code, 406);
        assert_eq!(
            e.text,
            "PRECONDITION_FAILED - invalid property 'exclusive-owner' for queue 'q' in vhost '/'"
        );
        assert_eq!(
            validate_declare("q", false, false, false, &quorum())
                .unwrap_err()
                .code,
            406
        );
        assert_eq!(
            validate_declare("q", true, false, true, &quorum())
                .unwrap_err()
                .code,
            406
        );
    }

    #[test]
    fn unknown_arguments_are_accepted() {
        let a = args(&[("x-whatever", FieldValue::I32(3))]);
        assert_eq!(
            validate_declare("q", false, false, false, &a),
            Ok(QueueType::Classic)
        );
    }

    #[test]
    fn redeclare_with_other_checked_argument_is_refused() {
        let e = check_equivalent_arguments("q", &FieldTable::new(), &quorum()).unwrap_err();
        assert_eq!(
            e.text,
            "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': \
             received the value 'quorum' of type 'longstr' but current is none"
        );
        let unchecked = args(&[("x-custom", FieldValue::I32(1))]);
        assert!(check_equivalent_arguments("q", &FieldTable::new(), &unchecked).is_ok());
    }

    #[test]
    fn shard_pin_is_bounded() {
        let a = args(&[(SHARD_ARG, FieldValue::I64(1))]);
        assert_eq!(pinned_shard("q", &a, 2), Ok(Some(1)));
        assert_eq!(pinned_shard("q", &a, 1).unwrap_err().code, 406);
        assert_eq!(pinned_shard("q", &FieldTable::new(), 2), Ok(None));
    }
}
