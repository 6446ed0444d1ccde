//! What RabbitMQ 3.10.8 answered (`amqp://127.0.0.1:5680`, probed with pika
//! by Warren's issue 11 work): every `queue.declare`, `basic.consume` and
//! redeclare below was sent to the real broker and its `channel.close`
//! reply text recorded byte for byte (`None`: it accepted the method).
//! Queues were created fresh for each row and deleted afterwards. The
//! tests in `mod.rs` replay every row through Warren. Do not edit a reply
//! by hand: probe again.

use super::{s, table, Consume, Declare, Redeclare};
use crate::broker::queue_args::QueueType;
use crate::protocol::types::{Decimal, FieldValue};
use bytes::Bytes;

/// `queue.declare`s sent to RabbitMQ 3.10.8 and what it answered (`None`: declare-ok).
pub(super) fn declares() -> Vec<Declare> {
    vec![
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::I32(0))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::I32(60000))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::I64(4294967296))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::I64(315360000000))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::I64(315360000001))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_too_large,315360000001}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-1}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::I64(-9223372036854775808))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-9223372036854775808}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::I64(9223372036854775807))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_too_large,9223372036854775807}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::I8(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-1}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::U8(200))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::I16(-5))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-5}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::U16(5))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::U32(5))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", s("abc"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got longstr""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::Bool(true))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got bool""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::F64(1.5))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got double""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::F32(1.5))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got float""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::Decimal(Decimal { scale: 1, value: 15 }))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got decimal""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::Void)]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got void""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::Array(vec![FieldValue::I32(1)]))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got array""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::Table(table(&[("a", FieldValue::I32(1))])))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got table""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::Bytes(Bytes::from_static(b"xx")))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got binary""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::Timestamp(5))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got timestamp""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-expires", FieldValue::I32(1))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-expires", FieldValue::I64(315360000000))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-expires", FieldValue::I32(0))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'q' in vhost '/': {value_zero,0}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-expires", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'q' in vhost '/': {value_negative,-1}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-expires", FieldValue::I64(315360000001))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'q' in vhost '/': {value_too_large,315360000001}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-expires", s("x"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'q' in vhost '/': "expected integer, got longstr""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-expires", FieldValue::Bool(true))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'q' in vhost '/': "expected integer, got bool""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-length", FieldValue::I32(0))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-length", FieldValue::I64(9223372036854775807))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-length", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-length", s("x"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q' in vhost '/': "expected integer, got longstr""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-length", FieldValue::F64(2.0))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q' in vhost '/': "expected integer, got double""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-length-bytes", FieldValue::I32(0))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-length-bytes", FieldValue::I32(1048576))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-length-bytes", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-length-bytes' for queue 'q' in vhost '/': {value_negative,-1}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-length-bytes", s("x"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-length-bytes' for queue 'q' in vhost '/': "expected integer, got longstr""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-length-bytes", FieldValue::Bool(false))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-length-bytes' for queue 'q' in vhost '/': "expected integer, got bool""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-overflow", s("drop-head"))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-overflow", s("reject-publish"))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-overflow", s("reject-publish-dlx"))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-overflow", s("bogus"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-overflow' for queue 'q' in vhost '/': invalid_overflow"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-overflow", s(""))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-overflow' for queue 'q' in vhost '/': invalid_overflow"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-overflow", s("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-overflow' for queue 'q' in vhost '/': invalid_overflow"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-overflow", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,signedint}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-overflow", FieldValue::Bytes(Bytes::from_static(b"drop-head")))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,binary}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-exchange", s(""))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-exchange", s("dlx"))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-exchange", s("no-such-exchange"))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-exchange", s("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-exchange", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-exchange", FieldValue::Bytes(Bytes::from_static(b"dlx")))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid type 'binary' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-routing-key", s("rk"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue 'q' in vhost '/': routing_key_but_no_dlx_defined"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-routing-key", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue 'q' in vhost '/': {unacceptable_type,signedint}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-exchange", s("dlx")), ("x-dead-letter-routing-key", s("rk"))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-exchange", s("dlx")), ("x-dead-letter-routing-key", s(""))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-routing-key", s("rk")), ("x-dead-letter-exchange", s("dlx"))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-exchange", s("dlx")), ("x-dead-letter-routing-key", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue 'q' in vhost '/': {unacceptable_type,signedint}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-routing-key", s("rk")), ("x-dead-letter-exchange", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-routing-key", s("rk")), ("x-dead-letter-exchange", FieldValue::Void)]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid type 'void' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-priority", FieldValue::I32(0))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-priority", FieldValue::I32(10))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-priority", FieldValue::I32(255))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-priority", FieldValue::I32(256))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'q' in vhost '/': {max_value_exceeded,256}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-priority", FieldValue::I64(1000000000000))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'q' in vhost '/': {max_value_exceeded,1000000000000}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-priority", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'q' in vhost '/': {value_negative,-1}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-priority", s("x"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'q' in vhost '/': "expected integer, got longstr""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-priority", FieldValue::U8(255))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-single-active-consumer", FieldValue::Bool(true))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-single-active-consumer", FieldValue::Bool(false))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-single-active-consumer", s("true"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' for queue 'q' in vhost '/': {unacceptable_type,longstr}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-single-active-consumer", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' for queue 'q' in vhost '/': {unacceptable_type,signedint}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("lazy"))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("default"))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("bogus"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'q' in vhost '/': "unsupported queue mode 'bogus'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s(""))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'q' in vhost '/': "unsupported queue mode ''""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'q' in vhost '/': {unacceptable_type,signedint}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("x\"y\\z"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'q' in vhost '/': "unsupported queue mode 'x\"y\\z'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("tab\there"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'q' in vhost '/': "unsupported queue mode 'tab\there'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("nl\nhere"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'q' in vhost '/': "unsupported queue mode 'nl\nhere'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("a\x1bb\x0b\x08\x0c\r"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'q' in vhost '/': "unsupported queue mode 'a\eb\v\b\f\r'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("é"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'q' in vhost '/': "unsupported queue mode 'é'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("日本"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'q' in vhost '/': [117,110,115,117,112,112,111,114,116,101,100,32,113,117,101,117,101,32,109,111,100,101,32,39,230,151,165,230,156,172,39]"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("日日日日日日日日日日日日日日日日日日日日"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'q' in vhost '/': [117,110,115,117,112,112,111,114,116,101,100,32,113,117,101,117,101,32,109,111,100,101,32,39,230,151,165,230,151,165,230,151,165,230,151,165,230,151,165,230,151,165,230,151,16..."#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("\x01"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'q' in vhost '/': [117,110,115,117,112,112,111,114,116,101,100,32,113,117,101,117,101,32,109,111,100,101,32,39,1,39]"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("a\x7fb"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'q' in vhost '/': [117,110,115,117,112,112,111,114,116,101,100,32,113,117,101,117,101,32,109,111,100,101,32,39,97,127,98,39]"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'q' in vhost '/': "unsupported queue mode 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'q' in vhost '/': "unsupported queue mode 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..."#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-version", FieldValue::I32(1))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-version", FieldValue::I32(2))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-version", FieldValue::I32(3))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-version' for queue 'q' in vhost '/': "unsupported queue version '3'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-version", FieldValue::I32(0))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-version' for queue 'q' in vhost '/': "unsupported queue version '0'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-version", FieldValue::I64(1099511627776))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-version' for queue 'q' in vhost '/': "unsupported queue version '1099511627776'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-version", FieldValue::I64(-5))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-version' for queue 'q' in vhost '/': {value_negative,-5}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-version", s("x"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-version' for queue 'q' in vhost '/': "expected integer, got longstr""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("classic"))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("bogus"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': "unsupported queue type 'bogus'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("Quorum"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': "unsupported queue type 'Quorum'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s(""))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': "unsupported queue type ''""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("é"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': "unsupported queue type 'é'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("日"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': [117,110,115,117,112,112,111,114,116,101,100,32,113,117,101,117,101,32,116,121,112,101,32,39,230,151,165,39]"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': "unsupported queue type 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb..."#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': {unacceptable_type,signedint}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", FieldValue::Bytes(Bytes::from_static(b"classic")))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': {unacceptable_type,binary}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", FieldValue::Void)]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': {unacceptable_type,void}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", FieldValue::Bool(true))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': {unacceptable_type,bool}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-delivery-limit", FieldValue::I32(5))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-delivery-limit' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-delivery-limit", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-delivery-limit' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-delivery-limit", s("x"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-delivery-limit' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-in-memory-length", FieldValue::I32(5))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-in-memory-length' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-in-memory-bytes", FieldValue::I32(5))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-in-memory-bytes' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-strategy", s("at-least-once"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-dead-letter-strategy' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-quorum-initial-group-size", FieldValue::I32(3))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-quorum-initial-group-size' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-age", s("1D"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-age' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-leader-locator", s("balanced"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-leader-locator' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-stream-max-segment-size-bytes", FieldValue::I32(5))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-stream-max-segment-size-bytes' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-initial-cluster-size", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-initial-cluster-size' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-master-locator", s("min-masters"))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-ha-policy", s("all"))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-stream-filter-size-bytes", FieldValue::I32(20))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-priority", FieldValue::I32(3))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-whatever", FieldValue::I32(1))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-warren-shard", FieldValue::I32(0))]), rabbitmq: None },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::I32(-1)), ("x-expires", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'q' in vhost '/': {value_negative,-1}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-priority", FieldValue::I32(256)), ("x-message-ttl", s("x"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got longstr""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-overflow", s("bogus")), ("x-max-length", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("bogus")), ("x-expires", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': "unsupported queue type 'bogus'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-expires", FieldValue::I32(-1)), ("x-queue-type", s("bogus"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': "unsupported queue type 'bogus'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", FieldValue::I32(1)), ("x-message-ttl", s("x"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': {unacceptable_type,signedint}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-single-active-consumer", FieldValue::I32(1)), ("x-queue-type", s("bogus"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': "unsupported queue type 'bogus'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("bogus")), ("x-queue-version", FieldValue::I32(3))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'q' in vhost '/': "unsupported queue mode 'bogus'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-version", FieldValue::I32(3)), ("x-single-active-consumer", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-version' for queue 'q' in vhost '/': "unsupported queue version '3'""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-overflow", s("bogus")), ("x-max-priority", FieldValue::I32(256))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'q' in vhost '/': {max_value_exceeded,256}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::I32(1)), ("x-expires", s("x")), ("x-max-length", s("y"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'q' in vhost '/': "expected integer, got longstr""#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("bogus")), ("x-dead-letter-exchange", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-delivery-limit", FieldValue::I32(5)), ("x-max-length", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-max-in-memory-length", FieldValue::I32(1)), ("x-delivery-limit", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-in-memory-length' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"#) },
        Declare { queue: "q", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-message-ttl", FieldValue::I32(1000)), ("x-expires", FieldValue::I32(60000)), ("x-max-length", FieldValue::I32(10)), ("x-max-length-bytes", FieldValue::I32(1000)), ("x-overflow", s("reject-publish")), ("x-dead-letter-exchange", s("dlx")), ("x-dead-letter-routing-key", s("dead")), ("x-max-priority", FieldValue::I32(9)), ("x-single-active-consumer", FieldValue::Bool(true)), ("x-queue-mode", s("lazy")), ("x-queue-version", FieldValue::I32(2))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum"))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-message-ttl", FieldValue::I32(1000))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-expires", FieldValue::I32(1000))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-max-length", FieldValue::I32(5))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-max-length-bytes", FieldValue::I32(5))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-overflow", s("drop-head"))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-overflow", s("reject-publish"))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-overflow", s("reject-publish-dlx"))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-overflow", s("bogus"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-overflow' for queue 'qq' in vhost '/': invalid_overflow"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-single-active-consumer", FieldValue::Bool(true))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-dead-letter-exchange", s("dlx"))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-dead-letter-exchange", s("dlx")), ("x-dead-letter-routing-key", s("k"))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-dead-letter-strategy", s("at-least-once"))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-dead-letter-strategy", s("at-most-once"))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-dead-letter-strategy", s("bogus"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-dead-letter-strategy' for queue 'qq' in vhost '/': invalid_dlx_strategy"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-dead-letter-strategy", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-dead-letter-strategy' for queue 'qq' in vhost '/': {unacceptable_type,signedint}"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-delivery-limit", FieldValue::I32(5))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-delivery-limit", FieldValue::I32(0))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-delivery-limit", FieldValue::I32(-1))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-delivery-limit", s("x"))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-delivery-limit", FieldValue::Bool(true))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-delivery-limit", FieldValue::I64(1099511627776))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-max-in-memory-length", FieldValue::I32(5))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-max-in-memory-bytes", FieldValue::I32(5))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-max-in-memory-length", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-in-memory-length' for queue 'qq' in vhost '/': {value_negative,-1}"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-max-in-memory-bytes", s("x"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-in-memory-bytes' for queue 'qq' in vhost '/': "expected integer, got longstr""#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-quorum-initial-group-size", FieldValue::I32(3))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-quorum-initial-group-size", FieldValue::I32(0))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-quorum-initial-group-size' for queue 'qq' in vhost '/': {value_zero,0}"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-quorum-initial-group-size", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-quorum-initial-group-size' for queue 'qq' in vhost '/': {value_negative,-1}"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-queue-leader-locator", s("balanced"))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-queue-leader-locator", s("client-local"))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-queue-leader-locator", s("bogus"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-leader-locator' for queue 'qq' in vhost '/': invalid_queue_locator_arg"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-queue-leader-locator", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-leader-locator' for queue 'qq' in vhost '/': {unacceptable_type,signedint}"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-max-priority", FieldValue::I32(5))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'qq' in vhost '/' of queue type rabbit_quorum_queue"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-max-priority", FieldValue::I32(256))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'qq' in vhost '/' of queue type rabbit_quorum_queue"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-max-priority", s("x"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'qq' in vhost '/' of queue type rabbit_quorum_queue"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-queue-mode", s("lazy"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'qq' in vhost '/' of queue type rabbit_quorum_queue"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-queue-mode", s("bogus"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'qq' in vhost '/' of queue type rabbit_quorum_queue"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-queue-version", FieldValue::I32(2))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-version' for queue 'qq' in vhost '/' of queue type rabbit_quorum_queue"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-max-age", s("1D"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-age' for queue 'qq' in vhost '/' of queue type rabbit_quorum_queue"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-stream-max-segment-size-bytes", FieldValue::I32(5))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-stream-max-segment-size-bytes' for queue 'qq' in vhost '/' of queue type rabbit_quorum_queue"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-initial-cluster-size", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-initial-cluster-size' for queue 'qq' in vhost '/' of queue type rabbit_quorum_queue"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-queue-master-locator", s("min-masters"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-master-locator' for queue 'qq' in vhost '/' of queue type rabbit_quorum_queue"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-whatever", FieldValue::I32(1))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-max-priority", FieldValue::I32(5)), ("x-queue-mode", s("lazy"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'qq' in vhost '/' of queue type rabbit_quorum_queue"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-queue-mode", s("lazy")), ("x-max-priority", FieldValue::I32(5))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'qq' in vhost '/' of queue type rabbit_quorum_queue"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-message-ttl", FieldValue::I32(-1)), ("x-max-priority", FieldValue::I32(5))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'qq' in vhost '/': {value_negative,-1}"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-delivery-limit", FieldValue::I32(5)), ("x-max-priority", FieldValue::I32(5))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'qq' in vhost '/' of queue type rabbit_quorum_queue"#) },
        Declare { queue: "qq", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid property 'non-durable' for queue 'qq' in vhost '/'"#) },
        Declare { queue: "qq", durable: false, exclusive: false, auto_delete: true, args: table(&[("x-queue-type", s("quorum"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid property 'auto-delete' for queue 'qq' in vhost '/'"#) },
        Declare { queue: "qq", durable: false, exclusive: true, auto_delete: false, args: table(&[("x-queue-type", s("quorum"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid property 'exclusive-owner' for queue 'qq' in vhost '/'"#) },
        Declare { queue: "qq", durable: false, exclusive: true, auto_delete: true, args: table(&[("x-queue-type", s("quorum"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid property 'auto-delete' for queue 'qq' in vhost '/'"#) },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum"))]), rabbitmq: None },
        Declare { queue: "qq", durable: true, exclusive: false, auto_delete: true, args: table(&[("x-queue-type", s("quorum"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid property 'auto-delete' for queue 'qq' in vhost '/'"#) },
        Declare { queue: "qq", durable: true, exclusive: true, auto_delete: false, args: table(&[("x-queue-type", s("quorum"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid property 'exclusive-owner' for queue 'qq' in vhost '/'"#) },
        Declare { queue: "qq", durable: true, exclusive: true, auto_delete: true, args: table(&[("x-queue-type", s("quorum"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid property 'auto-delete' for queue 'qq' in vhost '/'"#) },
        Declare { queue: "qq", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-max-priority", FieldValue::I32(5))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'qq' in vhost '/' of queue type rabbit_quorum_queue"#) },
        Declare { queue: "qq", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-message-ttl", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'qq' in vhost '/': {value_negative,-1}"#) },
        Declare { queue: "qq", durable: true, exclusive: true, auto_delete: false, args: table(&[("x-queue-type", s("quorum")), ("x-max-priority", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'qq' in vhost '/' of queue type rabbit_quorum_queue"#) },
        Declare { queue: "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-expires", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn..."#) },
        Declare { queue: "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-dead-letter-exchange", FieldValue::I32(1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn..."#) },
        Declare { queue: "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("bogus"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn..."#) },
        Declare { queue: "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn' in vhost '/': "unsupported queue mode 'a..."#) },
        Declare { queue: "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-queue-mode", s("日日日日日"))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn' in vhost '/': [117,110,115,117,112,112,1..."#) },
        Declare { queue: "q\"x", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-expires", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'q"x' in vhost '/': {value_negative,-1}"#) },
        Declare { queue: "qé", durable: false, exclusive: false, auto_delete: false, args: table(&[("x-expires", FieldValue::I32(-1))]), rabbitmq: Some(r#"PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'qé' in vhost '/': {value_negative,-1}"#) },
    ]
}

/// `basic.consume`s on queue `probe-consume-q` of the given type, and the replies.
pub(super) fn consumes() -> Vec<Consume> {
    vec![
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-priority", FieldValue::I32(5))]),
            rabbitmq: None,
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-priority", FieldValue::I32(-5))]),
            rabbitmq: None,
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-priority", FieldValue::I32(0))]),
            rabbitmq: None,
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-priority", FieldValue::I64(1099511627776))]),
            rabbitmq: None,
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-priority", FieldValue::I64(-1099511627776))]),
            rabbitmq: None,
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-priority", FieldValue::I8(-3))]),
            rabbitmq: None,
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-priority", FieldValue::U32(7))]),
            rabbitmq: None,
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-priority", s("x"))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'probe-consume-q' in vhost '/': "expected integer, got longstr""#,
            ),
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-priority", FieldValue::Bool(true))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'probe-consume-q' in vhost '/': "expected integer, got bool""#,
            ),
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-priority", FieldValue::F64(1.0))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'probe-consume-q' in vhost '/': "expected integer, got double""#,
            ),
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-priority", FieldValue::Void)]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'probe-consume-q' in vhost '/': "expected integer, got void""#,
            ),
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[(
                "x-priority",
                FieldValue::Decimal(Decimal { scale: 0, value: 1 }),
            )]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'probe-consume-q' in vhost '/': "expected integer, got decimal""#,
            ),
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-priority", FieldValue::Bytes(Bytes::from_static(b"x")))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'probe-consume-q' in vhost '/': "expected integer, got binary""#,
            ),
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-priority", FieldValue::Array(vec![FieldValue::I32(1)]))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'probe-consume-q' in vhost '/': "expected integer, got array""#,
            ),
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-cancel-on-ha-failover", FieldValue::Bool(true))]),
            rabbitmq: None,
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-cancel-on-ha-failover", FieldValue::I32(1))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - invalid arg 'x-cancel-on-ha-failover' for queue 'probe-consume-q' in vhost '/': {unacceptable_type,signedint}"#,
            ),
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-stream-offset", FieldValue::I32(1))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - invalid arg 'x-stream-offset' for queue 'probe-consume-q' in vhost '/' of queue type rabbit_classic_queue"#,
            ),
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[("x-whatever", s("x"))]),
            rabbitmq: None,
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[
                ("x-priority", s("x")),
                ("x-cancel-on-ha-failover", FieldValue::I32(1)),
            ]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'probe-consume-q' in vhost '/': "expected integer, got longstr""#,
            ),
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[
                ("x-cancel-on-ha-failover", FieldValue::I32(1)),
                ("x-priority", s("x")),
            ]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'probe-consume-q' in vhost '/': "expected integer, got longstr""#,
            ),
        },
        Consume {
            queue_type: QueueType::Classic,
            args: table(&[
                ("x-stream-offset", FieldValue::I32(1)),
                ("x-priority", s("x")),
            ]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'probe-consume-q' in vhost '/': "expected integer, got longstr""#,
            ),
        },
        Consume {
            queue_type: QueueType::Quorum,
            args: table(&[("x-priority", FieldValue::I32(5))]),
            rabbitmq: None,
        },
        Consume {
            queue_type: QueueType::Quorum,
            args: table(&[("x-priority", s("x"))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'probe-consume-q' in vhost '/': "expected integer, got longstr""#,
            ),
        },
        Consume {
            queue_type: QueueType::Quorum,
            args: table(&[("x-cancel-on-ha-failover", FieldValue::Bool(true))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - invalid arg 'x-cancel-on-ha-failover' for queue 'probe-consume-q' in vhost '/' of queue type rabbit_quorum_queue"#,
            ),
        },
        Consume {
            queue_type: QueueType::Quorum,
            args: table(&[("x-stream-offset", s("first"))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - invalid arg 'x-stream-offset' for queue 'probe-consume-q' in vhost '/' of queue type rabbit_quorum_queue"#,
            ),
        },
        Consume {
            queue_type: QueueType::Quorum,
            args: table(&[("x-whatever", FieldValue::I32(1))]),
            rabbitmq: None,
        },
    ]
}

/// A queue `probe-eq-q` declared with `first`, then declared again with `second`, and the reply.
pub(super) fn redeclares() -> Vec<Redeclare> {
    vec![
        Redeclare {
            first: table(&[("x-max-length", FieldValue::I32(5))]),
            second: table(&[("x-max-length", FieldValue::I64(5))]),
            rabbitmq: None,
        },
        Redeclare {
            first: table(&[("x-max-length", FieldValue::I32(5))]),
            second: table(&[("x-max-length", FieldValue::I16(5))]),
            rabbitmq: None,
        },
        Redeclare {
            first: table(&[("x-max-length", FieldValue::I32(5))]),
            second: table(&[("x-max-length", FieldValue::I32(6))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'probe-eq-q' in vhost '/': received '6' but current is '5'"#,
            ),
        },
        Redeclare {
            first: table(&[("x-max-length", FieldValue::I32(5))]),
            second: table(&[("x-max-length", FieldValue::I64(6))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'probe-eq-q' in vhost '/': received '6' but current is '5'"#,
            ),
        },
        Redeclare {
            first: table(&[("x-max-length", FieldValue::I32(5))]),
            second: table(&[]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'probe-eq-q' in vhost '/': received none but current is the value '5' of type 'signedint'"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-max-length", FieldValue::I32(5))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'probe-eq-q' in vhost '/': received the value '5' of type 'signedint' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[("x-max-length", FieldValue::I32(5))]),
            second: table(&[("x-max-length", s("5"))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'probe-eq-q' in vhost '/': received '5' but current is '5'"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-queue-type", s("classic"))]),
            rabbitmq: None,
        },
        Redeclare {
            first: table(&[("x-queue-type", s("classic"))]),
            second: table(&[]),
            rabbitmq: None,
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-delivery-limit", FieldValue::I32(5))]),
            rabbitmq: None,
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-max-in-memory-length", FieldValue::I32(5))]),
            rabbitmq: None,
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-queue-master-locator", s("min-masters"))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-queue-master-locator' for queue 'probe-eq-q' in vhost '/': received the value 'min-masters' of type 'longstr' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-queue-version", FieldValue::I32(2))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-queue-version' for queue 'probe-eq-q' in vhost '/': received the value '2' of type 'signedint' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-whatever", FieldValue::I32(1))]),
            rabbitmq: None,
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-max-length", FieldValue::I32(-1))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'probe-eq-q' in vhost '/': received the value '-1' of type 'signedint' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-queue-mode", s("bogus"))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-queue-mode' for queue 'probe-eq-q' in vhost '/': received the value 'bogus' of type 'longstr' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-dead-letter-routing-key", s("k"))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-routing-key' for queue 'probe-eq-q' in vhost '/': received the value 'k' of type 'longstr' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-single-active-consumer", FieldValue::Bool(true))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-single-active-consumer' for queue 'probe-eq-q' in vhost '/': received the value 'true' of type 'bool' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[("x-single-active-consumer", FieldValue::Bool(false))]),
            second: table(&[("x-single-active-consumer", FieldValue::Bool(true))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-single-active-consumer' for queue 'probe-eq-q' in vhost '/': received 'true' but current is 'false'"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-max-priority", FieldValue::F64(1.5))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'probe-eq-q' in vhost '/': received the value '1.5' of type 'double' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[(
                "x-max-priority",
                FieldValue::Decimal(Decimal {
                    scale: 1,
                    value: 15,
                }),
            )]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'probe-eq-q' in vhost '/': received the value '{1,15}' of type 'decimal' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[(
                "x-max-priority",
                FieldValue::Array(vec![FieldValue::I32(1), s("a")]),
            )]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'probe-eq-q' in vhost '/': received the value '[{signedint,1},{longstr,<<"a">>}]' of type 'array' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[(
                "x-max-priority",
                FieldValue::Table(table(&[("a", FieldValue::I32(1))])),
            )]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'probe-eq-q' in vhost '/': received the value '[{<<"a">>,signedint,1}]' of type 'table' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-max-priority", FieldValue::Void)]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'probe-eq-q' in vhost '/': received the value 'undefined' of type 'void' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[(
                "x-max-priority",
                FieldValue::Bytes(Bytes::from_static(b"bin")),
            )]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'probe-eq-q' in vhost '/': received the value 'bin' of type 'binary' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-max-priority", FieldValue::Timestamp(5))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'probe-eq-q' in vhost '/': received the value '5' of type 'timestamp' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-max-priority", FieldValue::F64(1.0))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'probe-eq-q' in vhost '/': received the value '1.0' of type 'double' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[]),
            second: table(&[("x-max-priority", FieldValue::F32(0.1))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'probe-eq-q' in vhost '/': received the value '0.10000000149011612' of type 'float' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[
                ("x-message-ttl", FieldValue::I32(1)),
                ("x-max-length", FieldValue::I32(1)),
            ]),
            second: table(&[
                ("x-max-length", FieldValue::I32(2)),
                ("x-message-ttl", FieldValue::I32(2)),
            ]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'probe-eq-q' in vhost '/': received '2' but current is '1'"#,
            ),
        },
        Redeclare {
            first: table(&[
                ("x-dead-letter-exchange", s("a")),
                ("x-expires", FieldValue::I32(1000)),
            ]),
            second: table(&[
                ("x-dead-letter-exchange", s("b")),
                ("x-expires", FieldValue::I32(2000)),
            ]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-expires' for queue 'probe-eq-q' in vhost '/': received '2000' but current is '1000'"#,
            ),
        },
        Redeclare {
            first: table(&[("x-max-length", FieldValue::I32(1))]),
            second: table(&[
                ("x-max-length", FieldValue::I32(1)),
                ("x-whatever", FieldValue::I32(2)),
            ]),
            rabbitmq: None,
        },
        Redeclare {
            first: table(&[("x-queue-type", s("quorum"))]),
            second: table(&[
                ("x-queue-type", s("quorum")),
                ("x-delivery-limit", FieldValue::I32(5)),
            ]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue 'probe-eq-q' in vhost '/': received the value '5' of type 'signedint' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[("x-queue-type", s("quorum"))]),
            second: table(&[
                ("x-queue-type", s("quorum")),
                ("x-max-in-memory-length", FieldValue::I32(5)),
            ]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-max-in-memory-length' for queue 'probe-eq-q' in vhost '/': received the value '5' of type 'signedint' but current is none"#,
            ),
        },
        Redeclare {
            first: table(&[("x-queue-type", s("quorum"))]),
            second: table(&[
                ("x-queue-type", s("quorum")),
                ("x-queue-version", FieldValue::I32(2)),
            ]),
            rabbitmq: None,
        },
        Redeclare {
            first: table(&[("x-queue-type", s("quorum"))]),
            second: table(&[
                ("x-queue-type", s("quorum")),
                ("x-max-priority", FieldValue::I32(1)),
            ]),
            rabbitmq: None,
        },
        Redeclare {
            first: table(&[("x-queue-type", s("quorum"))]),
            second: table(&[("x-queue-type", s("classic"))]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'probe-eq-q' in vhost '/': received 'classic' but current is 'quorum'"#,
            ),
        },
        Redeclare {
            first: table(&[("x-queue-type", s("quorum"))]),
            second: table(&[]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'probe-eq-q' in vhost '/': received none but current is the value 'quorum' of type 'longstr'"#,
            ),
        },
        Redeclare {
            first: table(&[
                ("x-queue-type", s("quorum")),
                ("x-delivery-limit", FieldValue::I32(3)),
            ]),
            second: table(&[
                ("x-queue-type", s("quorum")),
                ("x-delivery-limit", FieldValue::I64(3)),
            ]),
            rabbitmq: None,
        },
        Redeclare {
            first: table(&[
                ("x-queue-type", s("quorum")),
                ("x-delivery-limit", FieldValue::I32(3)),
            ]),
            second: table(&[
                ("x-queue-type", s("quorum")),
                ("x-delivery-limit", FieldValue::I32(4)),
            ]),
            rabbitmq: Some(
                r#"PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue 'probe-eq-q' in vhost '/': received '4' but current is '3'"#,
            ),
        },
    ]
}
