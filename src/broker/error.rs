//! The error every broker operation returns: an AMQP reply code and text,
//! exactly as RabbitMQ words them. The connection layer decides, from the
//! code, whether it closes the channel (soft) or the connection (hard), and
//! fills in the class and method ids of the offending method.

use std::fmt;

/// AMQP reply codes (from the spec's constants) used by Warren.
pub mod code {
    pub const REPLY_SUCCESS: u16 = 200;
    pub const CONTENT_TOO_LARGE: u16 = 311;
    pub const NO_ROUTE: u16 = 312;
    pub const NO_CONSUMERS: u16 = 313;
    pub const CONNECTION_FORCED: u16 = 320;
    pub const INVALID_PATH: u16 = 402;
    pub const ACCESS_REFUSED: u16 = 403;
    pub const NOT_FOUND: u16 = 404;
    pub const RESOURCE_LOCKED: u16 = 405;
    pub const PRECONDITION_FAILED: u16 = 406;
    pub const FRAME_ERROR: u16 = 501;
    pub const SYNTAX_ERROR: u16 = 502;
    pub const COMMAND_INVALID: u16 = 503;
    pub const CHANNEL_ERROR: u16 = 504;
    pub const UNEXPECTED_FRAME: u16 = 505;
    pub const RESOURCE_ERROR: u16 = 506;
    pub const NOT_ALLOWED: u16 = 530;
    pub const NOT_IMPLEMENTED: u16 = 540;
    pub const INTERNAL_ERROR: u16 = 541;

    /// The symbolic name RabbitMQ prefixes reply texts with, e.g. `NOT_FOUND`.
    pub fn name(code: u16) -> &'static str {
        match code {
            REPLY_SUCCESS => "REPLY_SUCCESS",
            CONTENT_TOO_LARGE => "CONTENT_TOO_LARGE",
            NO_ROUTE => "NO_ROUTE",
            NO_CONSUMERS => "NO_CONSUMERS",
            CONNECTION_FORCED => "CONNECTION_FORCED",
            INVALID_PATH => "INVALID_PATH",
            ACCESS_REFUSED => "ACCESS_REFUSED",
            NOT_FOUND => "NOT_FOUND",
            RESOURCE_LOCKED => "RESOURCE_LOCKED",
            PRECONDITION_FAILED => "PRECONDITION_FAILED",
            FRAME_ERROR => "FRAME_ERROR",
            SYNTAX_ERROR => "SYNTAX_ERROR",
            COMMAND_INVALID => "COMMAND_INVALID",
            CHANNEL_ERROR => "CHANNEL_ERROR",
            UNEXPECTED_FRAME => "UNEXPECTED_FRAME",
            RESOURCE_ERROR => "RESOURCE_ERROR",
            NOT_ALLOWED => "NOT_ALLOWED",
            NOT_IMPLEMENTED => "NOT_IMPLEMENTED",
            INTERNAL_ERROR => "INTERNAL_ERROR",
            _ => "UNKNOWN",
        }
    }

    /// Hard errors close the whole connection; soft ones only the channel.
    pub fn is_hard(code: u16) -> bool {
        !matches!(
            code,
            CONTENT_TOO_LARGE
                | NO_ROUTE
                | NO_CONSUMERS
                | ACCESS_REFUSED
                | NOT_FOUND
                | RESOURCE_LOCKED
                | PRECONDITION_FAILED
        )
    }
}

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
