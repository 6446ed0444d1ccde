//! `AppendError`: why an append was refused.

use crate::storage::record::EncodeError;
use std::fmt;
use std::io;

/// Why an append was refused.
#[derive(Debug)]
pub enum AppendError {
    /// The record is malformed or too large (a caller error).
    Encode(EncodeError),
    /// An earlier write or fsync failed; the log accepts nothing more.
    Failed(io::ErrorKind, String),
    /// The log was closed.
    Closed,
    /// Refused by a test aid (`LogConfig::refuse_routing_key`); the log
    /// stays healthy.
    Injected,
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendError::Encode(e) => write!(f, "{e}"),
            AppendError::Failed(_, m) => write!(f, "log failed: {m}"),
            AppendError::Closed => write!(f, "log closed"),
            AppendError::Injected => write!(f, "injected append failure"),
        }
    }
}

impl std::error::Error for AppendError {}

impl From<EncodeError> for AppendError {
    fn from(e: EncodeError) -> AppendError {
        AppendError::Encode(e)
    }
}
