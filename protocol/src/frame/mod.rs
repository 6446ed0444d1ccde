//! AMQP 0-9-1 framing: frame constants, `Frame`, the incremental
//! `FrameDecoder` that splits whole frames off a read buffer, `FrameError`
//! with RabbitMQ-worded reply texts, and the frame encoders.
//!
//! A frame is `type:u8 channel:u16 size:u32 payload[size] 0xCE`. Decoding is
//! zero-copy: each frame is `split_to` + `freeze` off the read buffer, so
//! body payloads are slices of it.
//!
//! The parts: the constants and `Frame` (here), `error` (`FrameError`),
//! `decoder` (`FrameDecoder`) and `encode` (the frame encoders).

mod decoder;
mod encode;
mod error;

pub use decoder::FrameDecoder;
pub use encode::{
    encode_body_frame, encode_body_frame_header, encode_header_frame, encode_heartbeat,
    encode_message_frames, encode_method_frame,
};
pub use error::FrameError;

use crate::methods::Method;
use crate::properties::ContentHeader;
use bytes::{BufMut, Bytes, BytesMut};

pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xCE;
/// The smallest `frame_max` a peer may negotiate (and the limit before tuning).
pub const FRAME_MIN_SIZE: u32 = 4096;
/// type + channel + size.
pub const FRAME_HEADER_SIZE: usize = 7;
/// Header plus the frame-end octet: what `frame_max` counts on top of the payload.
pub const FRAME_OVERHEAD: usize = 8;
/// The protocol header a client opens with (AMQP 0-9-1).
pub const PROTOCOL_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";
/// Largest payload accepted whatever `frame_max` says (also the limit when
/// `frame_max` is 0, "no limit"), so a size field cannot make us buffer
/// gigabytes.
pub const FRAME_PAYLOAD_HARD_CAP: u32 = 128 * 1024 * 1024;
/// RabbitMQ tolerates payloads up to 8 octets over `frame_max - 8`, since
/// clients commonly get the overhead off by one frame header; so do we.
pub const FRAME_SIZE_FUDGE: u32 = FRAME_OVERHEAD as u32;

/// One decoded frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Method {
        channel: u16,
        method: Method,
    },
    Header {
        channel: u16,
        header: ContentHeader,
    },
    /// A body fragment: a zero-copy slice of the read buffer.
    Body {
        channel: u16,
        payload: Bytes,
    },
    Heartbeat {
        channel: u16,
    },
}

impl Frame {
    pub fn channel(&self) -> u16 {
        match *self {
            Frame::Method { channel, .. }
            | Frame::Header { channel, .. }
            | Frame::Body { channel, .. }
            | Frame::Heartbeat { channel } => channel,
        }
    }

    /// Appends the frame as it goes on the wire.
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            Frame::Method { channel, method } => encode_method_frame(buf, *channel, method),
            Frame::Header { channel, header } => encode_header_frame(
                buf,
                *channel,
                header.class_id,
                header.body_size,
                &header.raw_properties,
            ),
            Frame::Body { channel, payload } => encode_body_frame(buf, *channel, payload),
            Frame::Heartbeat { channel } => {
                buf.put_u8(FRAME_HEARTBEAT);
                buf.put_u16(*channel);
                buf.put_u32(0);
                buf.put_u8(FRAME_END);
            }
        }
    }
}

#[cfg(test)]
mod tests;
