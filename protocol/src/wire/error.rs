//! `DecodeError`: why a method, table, property list or header payload
//! could not be decoded, with the reply code and text RabbitMQ answers.

use super::{MAX_NESTING_DEPTH, MAX_TABLE_VALUES};
use crate::code;
use std::fmt;

/// Why a method, table, property list or header payload could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before a fixed-size value or a length-prefixed value
    /// (whose length field said `needed` bytes) was complete.
    Truncated { needed: usize, available: usize },
    /// A field table or array value had a type tag RabbitMQ does not know.
    BadFieldType(u8),
    /// A shortstr (method argument, property, or table key) was not UTF-8.
    InvalidUtf8,
    /// Tables/arrays were nested deeper than [`MAX_NESTING_DEPTH`].
    NestingTooDeep,
    /// A table held more than [`MAX_TABLE_VALUES`] values, nested ones included.
    TooManyValues,
    /// A method frame named a class/method pair that AMQP 0-9-1 (with
    /// RabbitMQ's extensions) does not define.
    UnknownMethod { class_id: u16, method_id: u16 },
    /// Bytes were left over after the last argument or property.
    TrailingBytes { count: usize },
    /// A property flag word set a bit for a property the class does not have.
    BadPropertyFlags { word: usize, flags: u16 },
    /// The arguments of a known method were malformed; `source` says how.
    InMethod {
        class_id: u16,
        method_id: u16,
        name: &'static str,
        source: Box<DecodeError>,
    },
}

impl DecodeError {
    /// The AMQP reply code to close the connection with.
    ///
    /// RabbitMQ reports undecodable method arguments, malformed tables and
    /// malformed UTF-8 as `FRAME_ERROR` (501, `rabbit_misc:frame_error/2`),
    /// so Warren does too. An unknown class/method id makes RabbitMQ's
    /// reader crash and drop the socket; Warren closes politely with
    /// `NOT_IMPLEMENTED` (540) instead.
    pub fn reply_code(&self) -> u16 {
        match self {
            DecodeError::UnknownMethod { .. } => code::NOT_IMPLEMENTED,
            DecodeError::InMethod { source, .. } => source.reply_code(),
            _ => code::FRAME_ERROR,
        }
    }

    /// Whether a shortstr was not UTF-8 (in a method or not).
    fn is_bad_utf8(&self) -> bool {
        match self {
            DecodeError::InvalidUtf8 => true,
            DecodeError::InMethod { source, .. } => source.is_bad_utf8(),
            _ => false,
        }
    }

    /// The reply text, prefixed with the code's name as RabbitMQ does.
    pub fn reply_text(&self) -> String {
        format!("{} - {}", code::name(self.reply_code()), self)
    }

    /// The class and method ids of the method being decoded, if known (for
    /// the `class-id`/`method-id` fields of `connection.close`).
    pub fn method_ids(&self) -> Option<(u16, u16)> {
        if self.is_bad_utf8() {
            return None;
        }
        match *self {
            DecodeError::UnknownMethod {
                class_id,
                method_id,
            }
            | DecodeError::InMethod {
                class_id,
                method_id,
                ..
            } => Some((class_id, method_id)),
            _ => None,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { needed, available } => write!(
                f,
                "truncated input: needed {needed} octets, {available} available"
            ),
            DecodeError::BadFieldType(t) => {
                if t.is_ascii_graphic() {
                    write!(f, "unknown field value type '{}'", *t as char)
                } else {
                    write!(f, "unknown field value type {t}")
                }
            }
            DecodeError::InvalidUtf8 => f.write_str("Malformed UTF-8 in shortstr"),
            DecodeError::NestingTooDeep => write!(
                f,
                "field tables nested deeper than {MAX_NESTING_DEPTH} levels"
            ),
            DecodeError::TooManyValues => {
                write!(f, "field table holds more than {MAX_TABLE_VALUES} values")
            }
            DecodeError::UnknownMethod {
                class_id,
                method_id,
            } => write!(f, "unknown method: class {class_id}, method {method_id}"),
            DecodeError::TrailingBytes { count } => {
                write!(f, "{count} unexpected trailing octets")
            }
            DecodeError::BadPropertyFlags { word, flags } => write!(
                f,
                "property flags word {word} ({flags:#06x}) names unknown properties"
            ),
            // RabbitMQ says only this, naming no method (`rabbit_binary_parser`).
            DecodeError::InMethod { source, .. } if source.is_bad_utf8() => {
                fmt::Display::fmt(source, f)
            }
            DecodeError::InMethod { name, source, .. } => {
                write!(f, "cannot decode '{name}': {source}")
            }
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::InMethod { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}
