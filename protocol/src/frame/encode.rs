//! The frame encoders: method frames (size patched after encoding in
//! place), header, body and heartbeat frames, and a whole message split to
//! fit `frame_max`.

use super::{
    FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEADER_SIZE, FRAME_HEARTBEAT, FRAME_METHOD,
    FRAME_OVERHEAD,
};
use crate::methods::Method;
use bytes::{BufMut, BytesMut};

/// Writes a 7-octet frame header.
#[inline]
pub(super) fn put_frame_header(buf: &mut BytesMut, frame_type: u8, channel: u16, size: u32) {
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
