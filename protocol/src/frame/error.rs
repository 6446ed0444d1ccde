//! `FrameError`: why the byte stream could not be split into valid frames,
//! with RabbitMQ's reply codes and texts (payload snippets printed the way
//! Erlang prints a binary).

use super::FRAME_HEARTBEAT;
use crate::code;
use crate::wire::DecodeError;
use bytes::Bytes;
use std::fmt;

/// Why the byte stream could not be split into valid frames. All of these
/// are connection errors.
#[derive(Clone, Debug, PartialEq)]
pub enum FrameError {
    /// The size field exceeds the negotiated `frame_max` (`max` is the
    /// largest payload it allows, `frame_max - 8`, as RabbitMQ reports it).
    TooLarge {
        frame_type: u8,
        channel: u16,
        size: u32,
        max: u32,
    },
    /// The octet after the payload was not 0xCE: the stream is out of sync.
    BadFrameEnd {
        frame_type: u8,
        channel: u16,
        found: u8,
        /// Up to the first 16 octets of the payload, for the reply text.
        snippet: Bytes,
    },
    /// A frame type other than method, header, body or heartbeat.
    UnknownFrameType {
        frame_type: u8,
        channel: u16,
        snippet: Bytes,
    },
    /// A heartbeat frame with a non-empty payload.
    BadHeartbeat { channel: u16, snippet: Bytes },
    /// A method or header payload that does not decode.
    Decode(DecodeError),
}

/// Up to 16 octets, as RabbitMQ's `payload_snippet` keeps.
pub(super) fn snippet(payload: &[u8]) -> Bytes {
    Bytes::copy_from_slice(&payload[..payload.len().min(16)])
}

/// Formats bytes the way Erlang's `~p` prints a binary.
fn erlang_binary(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    if !bytes.is_empty() && bytes.iter().all(|b| (0x20..0x7F).contains(b)) {
        f.write_str("<<\"")?;
        for &b in bytes {
            if b == b'"' || b == b'\\' {
                f.write_str("\\")?;
            }
            write!(f, "{}", b as char)?;
        }
        return f.write_str("\">>");
    }
    f.write_str("<<")?;
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{b}")?;
    }
    f.write_str(">>")
}

impl FrameError {
    /// 501 FRAME_ERROR for framing problems; the decode error's own code
    /// (see `DecodeError::reply_code`) otherwise.
    pub fn reply_code(&self) -> u16 {
        match self {
            FrameError::Decode(e) => e.reply_code(),
            _ => code::FRAME_ERROR,
        }
    }

    /// The full reply text, worded like RabbitMQ's reader, e.g.
    /// `FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,200000,131064}`.
    pub fn reply_text(&self) -> String {
        let mut text = format!("{} - {}", code::name(self.reply_code()), self);
        if text.len() > 255 {
            let mut cut = 255;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        text
    }

    /// The class and method ids of the method that failed to decode, for the
    /// `class-id`/`method-id` fields of `connection.close` (else `None`: 0, 0).
    pub fn method_ids(&self) -> Option<(u16, u16)> {
        match self {
            FrameError::Decode(e) => e.method_ids(),
            _ => None,
        }
    }

    /// The channel of the offending frame, where known.
    pub fn channel(&self) -> Option<u16> {
        match *self {
            FrameError::TooLarge { channel, .. }
            | FrameError::BadFrameEnd { channel, .. }
            | FrameError::UnknownFrameType { channel, .. }
            | FrameError::BadHeartbeat { channel, .. } => Some(channel),
            FrameError::Decode(_) => None,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let octets = |f: &mut fmt::Formatter<'_>, t: u8, s: &Bytes, full: bool| {
            write!(
                f,
                "type {t}, {} octets = ",
                if full { "all" } else { "first 16" }
            )?;
            erlang_binary(f, s)
        };
        match self {
            FrameError::TooLarge {
                frame_type,
                size,
                max,
                ..
            } => {
                octets(f, *frame_type, &Bytes::new(), true)?;
                write!(f, ": {{frame_too_large,{size},{max}}}")
            }
            FrameError::BadFrameEnd {
                frame_type,
                found,
                snippet,
                ..
            } => {
                octets(f, *frame_type, snippet, snippet.len() < 16)?;
                write!(f, ": {{invalid_frame_end_marker,{found}}}")
            }
            FrameError::UnknownFrameType {
                frame_type,
                snippet,
                ..
            } => {
                octets(f, *frame_type, snippet, snippet.len() < 16)?;
                f.write_str(": unknown_frame")
            }
            FrameError::BadHeartbeat { snippet, .. } => {
                octets(f, FRAME_HEARTBEAT, snippet, snippet.len() < 16)?;
                f.write_str(": unknown_frame")
            }
            FrameError::Decode(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Decode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DecodeError> for FrameError {
    fn from(e: DecodeError) -> FrameError {
        FrameError::Decode(e)
    }
}
