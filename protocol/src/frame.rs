//! AMQP 0-9-1 framing: frame constants, `Frame`, the incremental
//! `FrameDecoder` that splits whole frames off a read buffer, `FrameError`
//! with RabbitMQ-worded reply texts, and the frame encoders.
//!
//! A frame is `type:u8 channel:u16 size:u32 payload[size] 0xCE`. Decoding is
//! zero-copy: each frame is `split_to` + `freeze` off the read buffer, so
//! body payloads are slices of it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::fmt;

use crate::code;
use crate::methods::Method;
use crate::properties::ContentHeader;
use crate::wire::DecodeError;

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
fn snippet(payload: &[u8]) -> Bytes {
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

/// Splits frames off the front of a read buffer, one at a time.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    frame_max: u32,
}

impl FrameDecoder {
    /// `frame_max` counts the 8 octets of overhead, as negotiated in
    /// `connection.tune`; 0 means no limit beyond `FRAME_PAYLOAD_HARD_CAP`.
    pub fn new(frame_max: u32) -> FrameDecoder {
        FrameDecoder { frame_max }
    }

    pub fn set_frame_max(&mut self, frame_max: u32) {
        self.frame_max = frame_max;
    }

    pub fn frame_max(&self) -> u32 {
        self.frame_max
    }

    /// The largest payload reported in errors: `frame_max - 8`.
    fn reported_max(&self) -> u32 {
        if self.frame_max == 0 {
            FRAME_PAYLOAD_HARD_CAP
        } else {
            self.frame_max
                .saturating_sub(FRAME_OVERHEAD as u32)
                .min(FRAME_PAYLOAD_HARD_CAP)
        }
    }

    /// The largest payload accepted (RabbitMQ's fudge included).
    fn accepted_max(&self) -> u32 {
        if self.frame_max == 0 {
            FRAME_PAYLOAD_HARD_CAP
        } else {
            (self.reported_max() + FRAME_SIZE_FUDGE).min(FRAME_PAYLOAD_HARD_CAP)
        }
    }

    /// Splits exactly one whole frame off the front of `buf`. Returns
    /// `Ok(None)` (and reserves room for the rest of the frame) when the
    /// frame is not complete yet. The size field is checked against
    /// `frame_max` as soon as the 7-octet header is there. After an error
    /// the stream is out of sync and the connection must be closed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buf.len() < FRAME_HEADER_SIZE {
            return Ok(None);
        }
        let frame_type = buf[0];
        let channel = u16::from_be_bytes([buf[1], buf[2]]);
        let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]);
        if size > self.accepted_max() {
            return Err(FrameError::TooLarge {
                frame_type,
                channel,
                size,
                max: self.reported_max(),
            });
        }
        let payload_len = size as usize;
        let total = FRAME_OVERHEAD + payload_len;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let found = buf[total - 1];
        if found != FRAME_END {
            return Err(FrameError::BadFrameEnd {
                frame_type,
                channel,
                found,
                snippet: snippet(&buf[FRAME_HEADER_SIZE..total - 1]),
            });
        }
        let mut payload = buf.split_to(total).freeze();
        payload.advance(FRAME_HEADER_SIZE);
        payload.truncate(payload_len);
        debug_assert_eq!(payload.len(), payload_len);
        let frame = match frame_type {
            FRAME_METHOD => {
                // Metadata methods (declare, bind, consume…) get a copy of
                // their few bytes: the names they carry can live as long as
                // a queue or a binding and must not pin the read buffer they
                // arrived in. The per-message basic methods stay zero-copy.
                let payload = if is_per_message_method(&payload) {
                    payload
                } else {
                    Bytes::copy_from_slice(&payload)
                };
                Frame::Method {
                    channel,
                    method: Method::decode(payload)?,
                }
            }
            FRAME_HEADER => Frame::Header {
                channel,
                header: ContentHeader::decode(payload)?,
            },
            FRAME_BODY => Frame::Body { channel, payload },
            FRAME_HEARTBEAT if payload.is_empty() => Frame::Heartbeat { channel },
            FRAME_HEARTBEAT => {
                return Err(FrameError::BadHeartbeat {
                    channel,
                    snippet: snippet(&payload),
                })
            }
            _ => {
                return Err(FrameError::UnknownFrameType {
                    frame_type,
                    channel,
                    snippet: snippet(&payload),
                })
            }
        };
        Ok(Some(frame))
    }
}

/// Writes a 7-octet frame header.
#[inline]
fn put_frame_header(buf: &mut BytesMut, frame_type: u8, channel: u16, size: u32) {
    buf.put_u8(frame_type);
    buf.put_u16(channel);
    buf.put_u32(size);
}

/// Appends a method frame. The payload is encoded in place and the size
/// field patched afterwards (no intermediate buffer).
pub fn encode_method_frame(buf: &mut BytesMut, channel: u16, method: &Method) {
    let start = buf.len();
    put_frame_header(buf, FRAME_METHOD, channel, 0);
    method.encode(buf);
    let size = buf.len() - start - FRAME_HEADER_SIZE;
    let size = u32::try_from(size).expect("method frame larger than u32::MAX");
    buf[start + 3..start + 7].copy_from_slice(&size.to_be_bytes());
    buf.put_u8(FRAME_END);
}

/// Appends a content header frame; `raw_properties` is the flags + property
/// list (e.g. `ContentHeader::raw_properties` forwarded verbatim).
pub fn encode_header_frame(
    buf: &mut BytesMut,
    channel: u16,
    class_id: u16,
    body_size: u64,
    raw_properties: &[u8],
) {
    let size = u32::try_from(12 + raw_properties.len()).expect("properties larger than u32::MAX");
    buf.reserve(FRAME_OVERHEAD + size as usize);
    put_frame_header(buf, FRAME_HEADER, channel, size);
    buf.put_u16(class_id);
    buf.put_u16(0); // weight
    buf.put_u64(body_size);
    buf.put_slice(raw_properties);
    buf.put_u8(FRAME_END);
}

/// Appends only the 7-octet header of a body frame of `len` octets. The
/// caller then writes the body bytes and `FRAME_END` (for vectored I/O that
/// sends the stored body `Bytes` without copying).
pub fn encode_body_frame_header(buf: &mut BytesMut, channel: u16, len: u32) {
    put_frame_header(buf, FRAME_BODY, channel, len);
}

/// Appends a whole body frame, copying `body` (for small bodies).
pub fn encode_body_frame(buf: &mut BytesMut, channel: u16, body: &[u8]) {
    let len = u32::try_from(body.len()).expect("body frame larger than u32::MAX");
    buf.reserve(FRAME_OVERHEAD + body.len());
    put_frame_header(buf, FRAME_BODY, channel, len);
    buf.put_slice(body);
    buf.put_u8(FRAME_END);
}

/// Appends a heartbeat frame (always on channel 0).
pub fn encode_heartbeat(buf: &mut BytesMut) {
    buf.put_slice(&[FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);
}

/// Appends a whole message: the method frame, a basic-class header frame,
/// then the body split into body frames that fit `frame_max` (0 = one frame).
/// Copies the body; for large bodies use `encode_body_frame_header` and
/// vectored writes instead.
pub fn encode_message_frames(
    buf: &mut BytesMut,
    channel: u16,
    method: &Method,
    raw_properties: &[u8],
    body: &[u8],
    frame_max: u32,
) {
    debug_assert!(method.carries_content(), "{} has no content", method.name());
    encode_method_frame(buf, channel, method);
    encode_header_frame(
        buf,
        channel,
        crate::properties::BASIC_CLASS_ID,
        body.len() as u64,
        raw_properties,
    );
    let chunk = if frame_max == 0 {
        body.len().max(1)
    } else {
        assert!(
            frame_max as usize > FRAME_OVERHEAD,
            "frame_max {frame_max} leaves no room for a body"
        );
        frame_max as usize - FRAME_OVERHEAD
    };
    for part in body.chunks(chunk) {
        encode_body_frame(buf, channel, part);
    }
}

/// basic.publish, basic.ack, basic.reject, basic.nack: the methods sent
/// once per message, decoded without copying.
fn is_per_message_method(payload: &[u8]) -> bool {
    const BASIC: u16 = 60;
    match payload {
        [c0, c1, m0, m1, ..] => {
            u16::from_be_bytes([*c0, *c1]) == BASIC
                && matches!(u16::from_be_bytes([*m0, *m1]), 40 | 80 | 90 | 120)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::{BasicDeliver, BasicPublish, ConnectionStartOk, QueueDeclare};
    use crate::properties::BasicProperties;
    use crate::types::{FieldTable, FieldValue};
    use proptest::prelude::*;

    fn publish_bytes() -> Vec<u8> {
        // basic.publish exchange "" routing key "q" mandatory, on channel 1,
        // then a header (delivery-mode 2, body 5) and a body "hello".
        let mut v = vec![
            1, 0, 1, 0, 0, 0, 10, 0, 60, 0, 40, 0, 0, 0, 1, b'q', 1, 0xCE,
        ];
        v.extend_from_slice(&[2, 0, 1, 0, 0, 0, 15, 0, 60, 0, 0]);
        v.extend_from_slice(&5u64.to_be_bytes());
        v.extend_from_slice(&[0x10, 0x00, 2, 0xCE]);
        v.extend_from_slice(&[3, 0, 1, 0, 0, 0, 5]);
        v.extend_from_slice(b"hello");
        v.push(0xCE);
        v
    }

    #[test]
    fn decodes_publish_header_body_sequence() {
        let mut buf = BytesMut::from(&publish_bytes()[..]);
        let mut dec = FrameDecoder::new(131072);
        let publish = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            publish,
            Frame::Method {
                channel: 1,
                method: BasicPublish {
                    exchange: "".into(),
                    routing_key: "q".into(),
                    mandatory: true,
                    immediate: false,
                }
                .into(),
            }
        );
        let Frame::Header { channel, header } = dec.decode(&mut buf).unwrap().unwrap() else {
            panic!("expected a header frame")
        };
        assert_eq!(channel, 1);
        assert_eq!(header.body_size, 5);
        assert_eq!(header.delivery_mode(), Some(2));
        let body = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            body,
            Frame::Body {
                channel: 1,
                payload: Bytes::from_static(b"hello")
            }
        );
        assert!(buf.is_empty());
        assert_eq!(dec.decode(&mut buf).unwrap(), None);

        // Re-encoding the three frames reproduces the input exactly.
        let mut out = BytesMut::new();
        for f in [publish, Frame::Header { channel, header }, body] {
            f.encode(&mut out);
        }
        assert_eq!(&out[..], &publish_bytes()[..]);
    }

    #[test]
    fn frames_split_across_partial_reads() {
        let all = publish_bytes();
        // Feed the stream one byte at a time; frames come out whole.
        let mut dec = FrameDecoder::new(4096);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for &b in &all {
            buf.put_u8(b);
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 3);
        assert!(buf.is_empty());
        // And in awkward chunks.
        for chunk in [2usize, 6, 7, 8, 13, 17] {
            let mut buf = BytesMut::new();
            let mut again = Vec::new();
            for part in all.chunks(chunk) {
                buf.extend_from_slice(part);
                while let Some(f) = dec.decode(&mut buf).unwrap() {
                    again.push(f);
                }
            }
            assert_eq!(again, frames, "chunk size {chunk}");
        }
    }

    #[test]
    fn body_payload_is_a_slice_of_the_read_buffer() {
        let mut buf = BytesMut::new();
        encode_body_frame(&mut buf, 3, b"0123456789");
        let base = buf.as_ptr() as usize;
        let Some(Frame::Body { payload, .. }) = FrameDecoder::new(0).decode(&mut buf).unwrap()
        else {
            panic!("expected a body frame")
        };
        assert_eq!(payload.as_ptr() as usize, base + FRAME_HEADER_SIZE);
    }

    #[test]
    fn too_large_is_detected_from_the_header_alone() {
        let mut dec = FrameDecoder::new(4096);
        // 4096 - 8 + 8 fudge = 4096 is accepted, 4097 is not.
        let mut ok = BytesMut::from(&[3u8, 0, 1, 0, 0, 0x10, 0x00][..]);
        assert_eq!(dec.decode(&mut ok).unwrap(), None);
        assert!(ok.capacity() >= 4096 + 8);
        let mut buf = BytesMut::from(&[3u8, 0, 1, 0, 0, 0x10, 0x01][..]);
        let err = dec.decode(&mut buf).unwrap_err();
        assert_eq!(
            err,
            FrameError::TooLarge {
                frame_type: 3,
                channel: 1,
                size: 4097,
                max: 4088
            }
        );
        assert_eq!(err.reply_code(), 501);
        assert_eq!(
            err.reply_text(),
            "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,4097,4088}"
        );
        // Raising frame_max after tuning lets it through.
        dec.set_frame_max(131072);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        // frame_max 0 still has a hard cap.
        let mut dec = FrameDecoder::new(0);
        let mut huge = BytesMut::from(&[3u8, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF][..]);
        assert!(matches!(
            dec.decode(&mut huge),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn bad_frame_end_unknown_type_and_bad_heartbeat() {
        let mut dec = FrameDecoder::new(4096);
        let mut buf = BytesMut::from(&[3u8, 0, 1, 0, 0, 0, 2, b'h', b'i', 0xCD][..]);
        let err = dec.decode(&mut buf).unwrap_err();
        assert_eq!(
            err.reply_text(),
            "FRAME_ERROR - type 3, all octets = <<\"hi\">>: {invalid_frame_end_marker,205}"
        );

        let mut buf = BytesMut::from(&[9u8, 0, 0, 0, 0, 0, 2, 1, 2, 0xCE][..]);
        let err = dec.decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            FrameError::UnknownFrameType { frame_type: 9, .. }
        ));
        assert_eq!(
            err.reply_text(),
            "FRAME_ERROR - type 9, all octets = <<1,2>>: unknown_frame"
        );

        let mut buf = BytesMut::from(&[8u8, 0, 0, 0, 0, 0, 1, 7, 0xCE][..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(FrameError::BadHeartbeat { channel: 0, .. })
        ));

        let mut buf = BytesMut::new();
        encode_heartbeat(&mut buf);
        assert_eq!(
            dec.decode(&mut buf).unwrap(),
            Some(Frame::Heartbeat { channel: 0 })
        );
    }

    #[test]
    fn method_decode_errors_carry_ids_and_codes() {
        let mut dec = FrameDecoder::new(4096);
        // basic.publish truncated after the exchange name.
        let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 7, 0, 60, 0, 40, 0, 0, 0, 0xCE][..]);
        let err = dec.decode(&mut buf).unwrap_err();
        let FrameError::Decode(ref d) = err else {
            panic!("expected a decode error")
        };
        assert_eq!(d.method_ids(), Some((60, 40)));
        assert_eq!(err.method_ids(), Some((60, 40)));
        assert_eq!(err.reply_code(), 501);
        assert!(err
            .reply_text()
            .starts_with("FRAME_ERROR - cannot decode 'basic.publish'"));
        // Unknown method.
        let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 4, 0, 60, 0, 99, 0xCE][..]);
        let err = dec.decode(&mut buf).unwrap_err();
        assert_eq!(err.reply_code(), 540);
        assert_eq!(
            err.reply_text(),
            "NOT_IMPLEMENTED - unknown method: class 60, method 99"
        );
    }

    #[test]
    fn message_frames_split_body_by_frame_max() {
        let method: Method = BasicDeliver {
            consumer_tag: "ctag".into(),
            delivery_tag: 7,
            redelivered: true,
            exchange: "ex".into(),
            routing_key: "rk".into(),
        }
        .into();
        let props = BasicProperties {
            delivery_mode: Some(1),
            ..Default::default()
        }
        .to_bytes();
        let body: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut buf = BytesMut::new();
        encode_message_frames(&mut buf, 2, &method, &props, &body, 4096);
        let mut dec = FrameDecoder::new(4096);
        assert_eq!(
            dec.decode(&mut buf).unwrap(),
            Some(Frame::Method { channel: 2, method })
        );
        let Some(Frame::Header { header, .. }) = dec.decode(&mut buf).unwrap() else {
            panic!("expected a header frame")
        };
        assert_eq!(header.body_size, 10_000);
        let mut got = Vec::new();
        let mut frames = 0;
        while let Some(Frame::Body { payload, .. }) = dec.decode(&mut buf).unwrap() {
            assert!(payload.len() <= 4088);
            got.extend_from_slice(&payload);
            frames += 1;
        }
        assert_eq!(frames, 3);
        assert_eq!(got, body);
    }

    #[test]
    fn method_frame_size_is_patched_after_encoding() {
        let mut args = FieldTable::new();
        args.insert("x-max-length".into(), FieldValue::I64(10));
        let m: Method = QueueDeclare {
            queue: "q1".into(),
            durable: true,
            arguments: args,
            ..Default::default()
        }
        .into();
        let mut buf = BytesMut::from(&b"prefix"[..]);
        encode_method_frame(&mut buf, 5, &m);
        let mut payload = BytesMut::new();
        m.encode(&mut payload);
        assert_eq!(&buf[..6], b"prefix");
        assert_eq!(&buf[6..9], &[1, 0, 5]);
        assert_eq!(&buf[9..13], &(payload.len() as u32).to_be_bytes());
        assert_eq!(&buf[13..buf.len() - 1], &payload[..]);
        assert_eq!(buf[buf.len() - 1], FRAME_END);
        let _ = buf.split_to(6);
        assert_eq!(
            FrameDecoder::new(4096).decode(&mut buf).unwrap(),
            Some(Frame::Method {
                channel: 5,
                method: m
            })
        );
    }

    #[test]
    fn metadata_methods_own_their_bytes_publish_stays_a_slice() {
        let declare: Method = QueueDeclare {
            queue: "orders".into(),
            ..Default::default()
        }
        .into();
        let publish: Method = BasicPublish {
            routing_key: "orders".into(),
            ..Default::default()
        }
        .into();
        let mut buf = BytesMut::new();
        encode_method_frame(&mut buf, 1, &declare);
        encode_method_frame(&mut buf, 1, &publish);
        let range = buf.as_ptr_range();
        let inside = |s: &crate::types::ShortStr| range.contains(&s.as_bytes().as_ptr());
        let mut decoder = FrameDecoder::new(4096);
        match decoder.decode(&mut buf).unwrap() {
            Some(Frame::Method {
                method: Method::QueueDeclare(m),
                ..
            }) => assert!(
                !inside(&m.queue),
                "a queue name must not pin the read buffer"
            ),
            other => panic!("{other:?}"),
        }
        match decoder.decode(&mut buf).unwrap() {
            Some(Frame::Method {
                method: Method::BasicPublish(m),
                ..
            }) => assert!(inside(&m.routing_key), "publish stays zero-copy"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn protocol_header_constant() {
        assert_eq!(&PROTOCOL_HEADER, b"AMQP\x00\x00\x09\x01");
        let _ = ConnectionStartOk::default();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Arbitrary bytes never panic the decoder, and whatever it returns
        /// fits in the input it consumed.
        #[test]
        fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200),
                                frame_max in prop_oneof![Just(0u32), Just(4096u32), 8u32..64]) {
            let mut buf = BytesMut::from(&data[..]);
            let mut dec = FrameDecoder::new(frame_max);
            loop {
                let before = buf.len();
                match dec.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        let consumed = before - buf.len();
                        prop_assert!(consumed >= FRAME_OVERHEAD);
                        if let Frame::Body { payload, .. } = &frame {
                            prop_assert_eq!(payload.len() + FRAME_OVERHEAD, consumed);
                        }
                    }
                    Ok(None) | Err(_) => {
                        prop_assert!(buf.len() <= before);
                        break;
                    }
                }
            }
        }

        /// Arbitrary frames with a valid envelope: method/header payloads of
        /// random bytes never panic and errors always have a reply code.
        #[test]
        fn random_payloads_in_valid_envelopes(frame_type in prop_oneof![Just(1u8), Just(2u8)],
                                              class in prop_oneof![Just(10u16), Just(20), Just(40), Just(50), Just(60), Just(85), Just(90)],
                                              method in 0u16..130,
                                              args in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut payload = BytesMut::new();
            payload.put_u16(class);
            payload.put_u16(method);
            payload.put_slice(&args);
            let mut buf = BytesMut::new();
            put_frame_header(&mut buf, frame_type, 1, payload.len() as u32);
            buf.put_slice(&payload);
            buf.put_u8(FRAME_END);
            match FrameDecoder::new(4096).decode(&mut buf) {
                Ok(Some(_)) => prop_assert!(buf.is_empty()),
                Ok(None) => prop_assert!(false, "complete frame reported incomplete"),
                Err(e) => prop_assert!(matches!(e.reply_code(), 501 | 540)),
            }
        }
    }
}
