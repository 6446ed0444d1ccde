//! The reply texts of the topology's errors, worded as RabbitMQ 3.12 words
//! them (`rabbit_channel`, `rabbit_exchange`, `rabbit_misc`), each built by
//! one function so the wording lives in one place: missing exchange,
//! publish to an internal exchange, the default exchange and `amq.*`
//! refusals, `if_unused`, and the "inequivalent arg" family with RabbitMQ's
//! rendering of the values it compares. Texts naming a vhost take its name.

use crate::broker::error::{code, AmqpError};
use crate::broker::exchange::headers::{erlang_term, type_name};
use crate::broker::exchange::ExchangeKind;
use crate::protocol::types::FieldValue;

const DEFAULT_EXCHANGE_REFUSED: &str = "operation not permitted on the default exchange";

/// "NOT_FOUND - no exchange 'x' in vhost 'v'" (404).
pub fn exchange_not_found(name: &str, vhost: &str) -> AmqpError {
    AmqpError::not_found(format_args!("no exchange '{name}' in vhost '{vhost}'"))
}

/// "ACCESS_REFUSED - cannot publish to internal exchange 'x' in vhost '/'"
/// (403), for basic.publish to an exchange whose `internal` flag is set.
pub fn publish_to_internal(name: &str, vhost: &str) -> AmqpError {
    AmqpError::access_refused(format_args!(
        "cannot publish to internal exchange '{name}' in vhost '{vhost}'"
    ))
}

/// 403 for declare, delete, bind or unbind naming the default exchange.
pub(super) fn default_exchange_refused() -> AmqpError {
    AmqpError::access_refused(DEFAULT_EXCHANGE_REFUSED)
}

/// 503 for exchange.declare with a type Warren does not know.
pub(super) fn unknown_exchange_type(kind: &str) -> AmqpError {
    AmqpError::new(
        code::COMMAND_INVALID,
        format_args!("unknown exchange type '{kind}'"),
    )
}

/// 403 for declaring a new exchange whose name starts with `amq.`.
pub(super) fn reserved_prefix(name: &str) -> AmqpError {
    AmqpError::access_refused(format_args!(
        "exchange name '{name}' contains reserved prefix 'amq.*'"
    ))
}

/// 403 for deleting an exchange whose name starts with `amq.`.
pub(super) fn system_exchange_deletion(name: &str, vhost: &str) -> AmqpError {
    AmqpError::access_refused(format_args!(
        "deletion of system exchange '{name}' in vhost '{vhost}' not allowed"
    ))
}

/// 406 for exchange.delete `if_unused` of an exchange with bindings.
pub(super) fn exchange_in_use(name: &str, vhost: &str) -> AmqpError {
    AmqpError::precondition_failed(format_args!("exchange '{name}' in vhost '{vhost}' in use"))
}

/// 406 for a new exchange whose argument `arg` has a type RabbitMQ refuses.
pub(super) fn invalid_arg_type(
    arg: &str,
    name: &str,
    vhost: &str,
    value: &FieldValue,
) -> AmqpError {
    AmqpError::precondition_failed(format_args!(
        "invalid type '{}' for arg '{arg}' in exchange '{name}' in vhost '{vhost}'",
        type_name(value)
    ))
}

/// 406 "inequivalent arg" for redeclaring `name` with `field` different;
/// `received` and `current` are already rendered.
pub(super) fn inequivalent(
    field: &str,
    name: &str,
    vhost: &str,
    received: &str,
    current: &str,
) -> AmqpError {
    AmqpError::precondition_failed(format_args!(
        "inequivalent arg '{field}' for exchange '{name}' in vhost '{vhost}': \
         received {received} but current is {current}"
    ))
}

/// "inequivalent arg 'type'": the kinds quoted.
pub(super) fn inequivalent_kind(
    name: &str,
    vhost: &str,
    received: ExchangeKind,
    current: ExchangeKind,
) -> AmqpError {
    let received = format!("'{}'", received.as_str());
    let current = format!("'{}'", current.as_str());
    inequivalent("type", name, vhost, &received, &current)
}

/// "inequivalent arg" for a boolean flag (`durable`, `auto_delete`,
/// `internal`): `'true'` / `'false'`.
pub(super) fn inequivalent_flag(
    field: &str,
    name: &str,
    vhost: &str,
    received: bool,
    current: bool,
) -> AmqpError {
    let flag = |b: bool| if b { "'true'" } else { "'false'" };
    inequivalent(field, name, vhost, flag(received), flag(current))
}

/// "inequivalent arg" for an argument present on both sides with different
/// values: the bare values quoted.
pub(super) fn inequivalent_value(
    field: &str,
    name: &str,
    vhost: &str,
    received: &FieldValue,
    current: &FieldValue,
) -> AmqpError {
    let received = format!("'{}'", bare_val(received));
    let current = format!("'{}'", bare_val(current));
    inequivalent(field, name, vhost, &received, &current)
}

/// "inequivalent arg" for an argument present on one side only: `none`, or
/// the value with its type.
pub(super) fn inequivalent_presence(
    field: &str,
    name: &str,
    vhost: &str,
    received: Option<&FieldValue>,
    current: Option<&FieldValue>,
) -> AmqpError {
    inequivalent(
        field,
        name,
        vhost,
        &typed_val(received),
        &typed_val(current),
    )
}

/// RabbitMQ's rendering of a value in "inequivalent arg" texts when only
/// the bare value is shown.
fn bare_val(v: &FieldValue) -> String {
    match v {
        FieldValue::LongStr(b) | FieldValue::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => erlang_term(other),
    }
}

fn typed_val(v: Option<&FieldValue>) -> String {
    match v {
        None => "none".to_string(),
        Some(v) => format!("the value '{}' of type '{}'", bare_val(v), type_name(v)),
    }
}
