//! How RabbitMQ words argument errors: the `PRECONDITION_FAILED` texts of
//! `rabbit_amqqueue:check_arguments_type_and_value/3` and friends, the
//! Erlang terms they print (`~p` of a reason), and RabbitMQ's cut of an
//! over-long reply text (252 bytes then `...`).

use crate::broker::error::{code, AmqpError};
use crate::broker::exchange::headers::{erlang_term, type_name};
use crate::protocol::types::FieldValue;

/// A 406 whose text is `PRECONDITION_FAILED - <detail>`, cut the way
/// RabbitMQ cuts reply texts over 255 bytes (`rabbit_binary_generator`:
/// the first 252 bytes followed by `...`; probed on 3.10.8 with long queue
/// names and values).
pub(crate) fn precondition_failed(detail: &str) -> AmqpError {
    let mut text = format!("{} - {detail}", code::name(code::PRECONDITION_FAILED));
    if text.len() > 255 {
        let mut cut = 252;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    AmqpError {
        code: code::PRECONDITION_FAILED,
        text,
    }
}

/// `rabbit_misc:rs/1` of a queue in the default vhost.
pub(crate) fn queue_resource(queue: &str) -> String {
    format!("queue '{queue}' in vhost '/'")
}

/// `invalid arg '<key>' for queue '<q>' in vhost '/': <reason>` — the text
/// of a failed argument validator (the reason already printed as `~p`).
pub(crate) fn invalid_arg(key: &str, queue: &str, reason: &str) -> AmqpError {
    precondition_failed(&format!(
        "invalid arg '{key}' for {}: {reason}",
        queue_resource(queue)
    ))
}

/// `invalid arg '<key>' for queue '<q>' in vhost '/' of queue type <module>`
/// — an argument another queue type owns.
pub(crate) fn foreign_arg(key: &str, queue: &str, module: &str) -> AmqpError {
    precondition_failed(&format!(
        "invalid arg '{key}' for {} of queue type {module}",
        queue_resource(queue)
    ))
}

/// `{unacceptable_type,<type>}`.
pub(crate) fn unacceptable_type(v: &FieldValue) -> String {
    format!("{{unacceptable_type,{}}}", type_name(v))
}

/// `check_int_arg`'s reason for a non-integer: the string
/// `expected integer, got <type>`, printed by `~p` (so quoted).
pub(crate) fn expected_integer(v: &FieldValue) -> String {
    format!("\"expected integer, got {}\"", type_name(v))
}

/// Erlang's `~p` of a flat character list whose characters are the given
/// bytes — what RabbitMQ prints for reasons built with
/// `rabbit_misc:format("... '~s'", [Binary])`. A list io_lib considers
/// printable Latin-1 (32..=126, 160..=255 and `\n \r \t \v \b \f \e`) prints
/// as a quoted string with escapes; any other list prints as integers
/// (`[117,110,...]`). RabbitMQ then sends the characters as Latin-1 bytes,
/// so UTF-8 input comes back unchanged; bytes that are not UTF-8 are
/// replaced here (a Rust `String` cannot hold them).
pub(crate) fn erlang_chars(bytes: &[u8]) -> String {
    let printable = bytes
        .iter()
        .all(|&b| matches!(b, 32..=126 | 160..=255 | b'\n' | b'\r' | b'\t' | 8 | 11 | 12 | 27));
    if !printable {
        let items: Vec<String> = bytes.iter().map(u8::to_string).collect();
        return format!("[{}]", items.join(","));
    }
    let mut escaped = Vec::with_capacity(bytes.len() + 2);
    escaped.push(b'"');
    for &b in bytes {
        match b {
            b'"' => escaped.extend_from_slice(b"\\\""),
            b'\\' => escaped.extend_from_slice(b"\\\\"),
            b'\n' => escaped.extend_from_slice(b"\\n"),
            b'\r' => escaped.extend_from_slice(b"\\r"),
            b'\t' => escaped.extend_from_slice(b"\\t"),
            11 => escaped.extend_from_slice(b"\\v"),
            8 => escaped.extend_from_slice(b"\\b"),
            12 => escaped.extend_from_slice(b"\\f"),
            27 => escaped.extend_from_slice(b"\\e"),
            other => escaped.push(other),
        }
    }
    escaped.push(b'"');
    String::from_utf8_lossy(&escaped).into_owned()
}

/// `~p` of a reason built as `rabbit_misc:format(prefix ++ "'~s'", [Bin])`.
pub(crate) fn formatted_reason(prefix: &str, value: &[u8]) -> String {
    let mut chars = prefix.as_bytes().to_vec();
    chars.push(b'\'');
    chars.extend_from_slice(value);
    chars.push(b'\'');
    erlang_chars(&chars)
}

/// How `rabbit_misc:val/1` shows an argument value in an equivalence error:
/// binaries with `~s` (their bytes), everything else with `~p`.
pub(crate) fn show_value(v: &FieldValue) -> String {
    match v {
        FieldValue::LongStr(b) | FieldValue::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => erlang_term(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_like_rabbitmq() {
        let e = precondition_failed(&"n".repeat(300));
        assert_eq!(e.text.len(), 255);
        assert!(e.text.ends_with("n..."));
        let short = precondition_failed("x");
        assert_eq!(short.text, "PRECONDITION_FAILED - x");
        // A multi-byte character straddling byte 252 is dropped whole.
        let e = precondition_failed(&format!("{}é{}", "a".repeat(229), "b".repeat(40)));
        assert!(e.text.len() <= 255 && e.text.ends_with("a..."));
    }

    #[test]
    fn erlang_char_lists_print_like_io_lib() {
        assert_eq!(erlang_chars(b"ab"), "\"ab\"");
        assert_eq!(erlang_chars(b"x\"y\\z"), "\"x\\\"y\\\\z\"");
        assert_eq!(
            erlang_chars(b"a\x1bb\x0b\x08\x0c\r"),
            "\"a\\eb\\v\\b\\f\\r\""
        );
        assert_eq!(erlang_chars("é".as_bytes()), "\"é\"");
        assert_eq!(erlang_chars(b"a\x7fb"), "[97,127,98]");
        assert_eq!(erlang_chars("日".as_bytes()), "[230,151,165]");
    }
}
