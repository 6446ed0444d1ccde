//! The `x-delayed-message` exchange type (RabbitMQ's
//! `rabbitmq_delayed_message_exchange` plugin, as its users write it): the
//! `x-delayed-type` argument names the type whose routing the exchange
//! uses once a message's time has come, and the `x-delay` header (ms) of a
//! message says how long it is held. Pure: declare validation, reading
//! `x-delay`. Holding and releasing the messages is `shard::delayed`'s.

use crate::broker::error::AmqpError;
use crate::broker::exchange::ExchangeKind;
use crate::protocol::types::{FieldTable, FieldValue};

/// The exchange type's name in `exchange.declare`.
pub const TYPE_NAME: &str = "x-delayed-message";
/// The declare argument naming the routing type.
pub const DELAYED_TYPE_ARG: &str = "x-delayed-type";
/// The message header holding the delay in milliseconds.
pub const DELAY_HEADER: &str = "x-delay";

/// The routing type of an `x-delayed-message` exchange declared with these
/// arguments, or the plugin's error: 406 when `x-delayed-type` is absent or
/// not a string, or names `x-delayed-message` itself; 503 (as
/// `exchange.declare` with that type) when it names an unknown type.
pub fn delayed_type(arguments: &FieldTable) -> Result<ExchangeKind, AmqpError> {
    let name = match arguments.get(DELAYED_TYPE_ARG) {
        Some(FieldValue::LongStr(s)) => String::from_utf8_lossy(s).into_owned(),
        _ => {
            return Err(AmqpError::precondition_failed(
                "Invalid argument, 'x-delayed-type' must be an existing exchange type",
            ))
        }
    };
    if name == TYPE_NAME {
        return Err(AmqpError::precondition_failed(
            "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'",
        ));
    }
    match ExchangeKind::parse(&name) {
        Some(kind) if kind != ExchangeKind::DelayedMessage => Ok(kind),
        _ => Err(AmqpError::new(
            crate::broker::error::code::COMMAND_INVALID,
            format_args!("unknown exchange type '{name}'"),
        )),
    }
}

/// The routing type of a declared (validated) delayed exchange; direct if
/// the arguments somehow do not name one.
pub fn routing_kind(arguments: &FieldTable) -> ExchangeKind {
    delayed_type(arguments).unwrap_or(ExchangeKind::Direct)
}

/// The delay a message asks for, in ms: `x-delay` as an integer of any
/// AMQP width. Absent, zero, negative or not an integer: none (the message
/// is routed at once, as the plugin does).
pub fn delay_ms(headers: Option<&FieldTable>) -> Option<u64> {
    let v = headers?.get(DELAY_HEADER)?.as_i64()?;
    (v > 0).then_some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::error::code;
    use crate::protocol::types::LongStr;

    fn args(t: &str) -> FieldTable {
        let mut a = FieldTable::new();
        a.insert(
            DELAYED_TYPE_ARG.into(),
            FieldValue::LongStr(LongStr::from(t.as_bytes().to_vec())),
        );
        a
    }

    #[test]
    fn the_delayed_type_is_required_and_must_be_known() {
        assert_eq!(delayed_type(&args("topic")).unwrap(), ExchangeKind::Topic);
        assert_eq!(
            delayed_type(&args("headers")).unwrap(),
            ExchangeKind::Headers
        );
        let e = delayed_type(&FieldTable::new()).unwrap_err();
        assert_eq!(e.code, code::PRECONDITION_FAILED);
        assert_eq!(
            e.text.as_str(),
            "PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be an existing exchange type"
        );
        assert_eq!(
            delayed_type(&args("x-delayed-message")).unwrap_err().code,
            406
        );
        let e = delayed_type(&args("nope")).unwrap_err();
        assert_eq!(e.code, code::COMMAND_INVALID);
    }

    #[test]
    fn x_delay_is_a_positive_integer_or_nothing() {
        let mut h = FieldTable::new();
        assert_eq!(delay_ms(None), None);
        assert_eq!(delay_ms(Some(&h)), None);
        h.insert(DELAY_HEADER.into(), FieldValue::I32(1500));
        assert_eq!(delay_ms(Some(&h)), Some(1500));
        h.insert(DELAY_HEADER.into(), FieldValue::I64(-5));
        assert_eq!(delay_ms(Some(&h)), None);
        h.insert(DELAY_HEADER.into(), FieldValue::I16(0));
        assert_eq!(delay_ms(Some(&h)), None);
    }
}
