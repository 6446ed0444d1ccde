//! RabbitMQ's argument equivalence check on redeclare
//! (`rabbit_amqqueue:assert_args_equivalence/2` and
//! `rabbit_misc:assert_args_equivalence/4`, 3.10.8): the arguments the
//! *existing* queue's type owns are compared, in that type's order; values
//! of the same type class compare by value (a `signedint` 5 equals a `long`
//! 5, a `float` equals an equal `double`); an absent `x-queue-type` equals
//! `classic`; anything else that differs is refused with the first
//! differing key. Warren's own arguments (`x-max-unacked`) are compared
//! after those, the same way.

use super::capabilities::{CLASSIC_ARGS, QUORUM_ARGS, WARREN_ARGS};
use super::text::{precondition_failed, queue_resource, show_value};
use crate::broker::error::AmqpResult;
use crate::broker::exchange::headers::type_name;
use crate::protocol::types::{FieldTable, FieldValue};

/// Compares a redeclare's arguments (`received`) with the queue's
/// (`current`), the queue's type read from `current`.
pub fn check(name: &str, current: &FieldTable, received: &FieldTable) -> AmqpResult<()> {
    let keys = match current.get("x-queue-type") {
        Some(FieldValue::LongStr(t)) if &t[..] == b"quorum" => QUORUM_ARGS,
        _ => CLASSIC_ARGS,
    };
    for key in keys.iter().chain(WARREN_ARGS) {
        let (now, new) = (current.get(key), received.get(key));
        let detail = match (now, new) {
            (None, None) => continue,
            (Some(a), Some(b)) if equivalent(a, b) => continue,
            // Both present: RabbitMQ shows the bare values.
            (Some(a), Some(b)) => format!(
                "received '{}' but current is '{}'",
                show_value(b),
                show_value(a)
            ),
            (None, Some(v)) | (Some(v), None) if *key == "x-queue-type" && is_classic(v) => {
                continue
            }
            _ => format!(
                "received {} but current is {}",
                describe(new),
                describe(now)
            ),
        };
        return Err(precondition_failed(&format!(
            "inequivalent arg '{key}' for {}: {detail}",
            queue_resource(name)
        )));
    }
    Ok(())
}

fn is_classic(v: &FieldValue) -> bool {
    matches!(v, FieldValue::LongStr(t) if &t[..] == b"classic")
}

fn describe(v: Option<&FieldValue>) -> String {
    match v {
        None => "none".to_string(),
        Some(v) => format!("the value '{}' of type '{}'", show_value(v), type_name(v)),
    }
}

/// `rabbit_misc:type_class/1`: the integer types and `decimal` are `int`,
/// `float` and `double` are `float`, every other type is its own class.
enum Class {
    Int,
    Float,
    Other,
}

fn class(v: &FieldValue) -> Class {
    match v {
        FieldValue::Decimal(_) => Class::Int,
        FieldValue::F32(_) | FieldValue::F64(_) => Class::Float,
        v if v.as_i64().is_some() => Class::Int,
        _ => Class::Other,
    }
}

/// Same type and value, or same class and `==` values (Erlang's `==`, so an
/// integer never equals a decimal's `{Scale, Value}` tuple).
fn equivalent(a: &FieldValue, b: &FieldValue) -> bool {
    if a == b {
        return true;
    }
    match (class(a), class(b)) {
        (Class::Int, Class::Int) => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => x == y,
            // A decimal is `{Scale, Value}`: only ever equal to itself.
            _ => false,
        },
        (Class::Float, Class::Float) => float(a) == float(b),
        // Same type, other value (or other types).
        _ => false,
    }
}

fn float(v: &FieldValue) -> f64 {
    match *v {
        FieldValue::F32(f) => f as f64,
        FieldValue::F64(f) => f,
        _ => f64::NAN,
    }
}
