//! Why a record does not decode (`RecordError`) or cannot be encoded
//! (`EncodeError`).

use std::fmt;

/// Why bytes are not a valid record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// Eight zero bytes where a header should be: end of the written data.
    Zeroes,
    /// Fewer bytes than a header, or than the header's `len` announces;
    /// `needed` is the whole record's size when known (else `HEADER_LEN`).
    Truncated { needed: usize },
    /// `len` is 0 or above the configured maximum.
    BadLength(u32),
    /// The CRC32C does not match.
    BadCrc,
    /// Unknown kind byte.
    BadKind(u8),
    /// The CRC matched but the payload does not parse.
    Malformed(&'static str),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Zeroes => write!(f, "zero header (end of data)"),
            RecordError::Truncated { needed } => {
                write!(f, "truncated record ({needed} bytes needed)")
            }
            RecordError::BadLength(l) => write!(f, "bad record length {l}"),
            RecordError::BadCrc => write!(f, "record checksum mismatch"),
            RecordError::BadKind(k) => write!(f, "unknown record kind {k}"),
            RecordError::Malformed(why) => write!(f, "malformed record: {why}"),
        }
    }
}

impl std::error::Error for RecordError {}

/// Why a record cannot be encoded (a caller error, never a panic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The encoded record would exceed the maximum record length.
    TooLarge { len: u64, max: u32 },
    /// A message record needs 1..=65535 targets.
    BadTargetCount(usize),
    /// An `InVhost` record inside another.
    NestedVhost,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLarge { len, max } => {
                write!(f, "record of {len} bytes exceeds the maximum {max}")
            }
            EncodeError::BadTargetCount(n) => write!(f, "message record with {n} targets"),
            EncodeError::NestedVhost => write!(f, "vhost record inside a vhost record"),
        }
    }
}

impl std::error::Error for EncodeError {}
