//! The error every broker operation returns: an AMQP reply code and text,
//! exactly as RabbitMQ words them. The connection layer decides, from the
//! code, whether it closes the channel (soft) or the connection (hard), and
//! fills in the class and method ids of the offending method.

use std::fmt;

/// AMQP reply codes live in the codec crate; re-exported for the broker.
pub use crate::protocol::code;

/// A failed AMQP operation: reply code plus the full reply text, already
/// prefixed the way RabbitMQ does (`"NOT_FOUND - no queue 'q' in vhost '/'"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmqpError {
    pub code: u16,
    pub text: String,
}

impl AmqpError {
    /// Builds an error whose text is `"<CODE_NAME> - <detail>"`, truncated to
    /// fit a shortstr.
    pub fn new(code: u16, detail: impl fmt::Display) -> AmqpError {
        let mut text = format!("{} - {}", code::name(code), detail);
        if text.len() > 255 {
            let mut cut = 255;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        AmqpError { code, text }
    }

    pub fn not_found(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(code::NOT_FOUND, detail)
    }
    pub fn access_refused(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(code::ACCESS_REFUSED, detail)
    }
    pub fn precondition_failed(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(code::PRECONDITION_FAILED, detail)
    }
    pub fn resource_locked(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(code::RESOURCE_LOCKED, detail)
    }
    pub fn command_invalid(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(code::COMMAND_INVALID, detail)
    }
    pub fn not_allowed(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(code::NOT_ALLOWED, detail)
    }

    pub fn is_hard(&self) -> bool {
        code::is_hard(self.code)
    }
}

impl fmt::Display for AmqpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

impl std::error::Error for AmqpError {}

pub type AmqpResult<T> = Result<T, AmqpError>;
