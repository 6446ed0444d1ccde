//! The properties the coverage-guided fuzzers check (`fuzz/`, see
//! `docs/fuzzing.md`): one entry point per fuzz target — [`frame`],
//! [`method`], [`content_header`] — that decodes arbitrary bytes the way
//! the broker does and panics if an invariant breaks. The fuzz targets call
//! these functions and `tests/fuzz_corpus.rs` replays the committed corpus
//! and every crash input through the same functions, so the two cannot
//! drift apart.
//!
//! The invariants: decoding never panics; every error has a reply text that
//! fits a `shortstr` (it goes into `connection.close`); what decodes
//! re-encodes to bytes that decode again to the same bytes (a fixpoint:
//! decode → encode → decode → encode gives the same bytes twice, which also
//! holds for NaN floats in tables, where `==` on values would not); frames
//! split off a buffer fed in small pieces are the frames split off the
//! whole buffer; the allocation-free validators (`BasicProperties::validate`,
//! `wire::skip_table`) accept exactly what the decoders accept.

use bytes::{BufMut, Bytes, BytesMut};

use crate::frame::{Frame, FrameDecoder, FrameError, FRAME_HEADER, FRAME_MIN_SIZE, FRAME_OVERHEAD};
use crate::methods::Method;
use crate::properties::{priority_of, BasicProperties, ContentHeader, BASIC_CLASS_ID};
use crate::types::ShortStr;
use crate::wire::{self, DecodeError};

/// The `frame_max` the frame target decodes with: RabbitMQ's default.
pub const FUZZ_FRAME_MAX: u32 = 131_072;

/// The frame splitter on a byte stream (the bytes after the protocol
/// header): split whole, split as the bytes arrive in pieces, and split
/// with the smallest `frame_max`; every frame re-encoded and decoded again.
pub fn frame(data: &[u8]) {
    let whole = split_stream(data, FUZZ_FRAME_MAX, &[data.len().max(1)]);
    let pieces = split_stream(data, FUZZ_FRAME_MAX, &piece_sizes(data.len()));
    assert_eq!(
        whole, pieces,
        "frames split off the whole buffer differ from frames split as it arrives in pieces"
    );

    // With the smallest frame_max the same frames come off until a frame
    // is too large for it; any other error is the same error.
    let small = split_stream(data, FRAME_MIN_SIZE, &[data.len().max(1)]);
    assert!(
        whole.frames.starts_with(&small.frames),
        "frame_max {FRAME_MIN_SIZE} split different frames than frame_max {FUZZ_FRAME_MAX}"
    );
    match (&small.end, &whole.end) {
        (Err(FrameError::TooLarge { .. }), _) => {}
        (small_end, whole_end) if small.frames.len() == whole.frames.len() => assert_eq!(
            small_end, whole_end,
            "frame_max {FRAME_MIN_SIZE} ended otherwise than frame_max {FUZZ_FRAME_MAX}"
        ),
        (small_end, _) => panic!(
            "frame_max {FRAME_MIN_SIZE} stopped early without a frame_too_large: {small_end:?}"
        ),
    }
}

/// A method frame payload (class id, method id, arguments), and the same
/// bytes as a field table.
pub fn method(data: &[u8]) {
    match Method::decode(Bytes::copy_from_slice(data)) {
        Ok(m) => {
            assert_eq!(
                [m.class_id().to_be_bytes(), m.method_id().to_be_bytes()].concat(),
                data[..4],
                "{} decoded from other ids",
                m.name()
            );
            let first = encode_method(&m);
            assert_eq!(first[..4], data[..4], "{} re-encoded other ids", m.name());
            let again = Method::decode(first.clone())
                .unwrap_or_else(|e| panic!("{} re-encoded does not decode: {e}", m.name()));
            assert_eq!(
                encode_method(&again),
                first,
                "{} does not survive decode → encode → decode",
                m.name()
            );
            let _ = m.carries_content();
        }
        Err(e) => check_decode_error(&e),
    }
    table(data);
}

/// A content header frame payload (class id, weight, body size, property
/// flags and list).
pub fn content_header(data: &[u8]) {
    let payload = Bytes::copy_from_slice(data);
    let decoded = ContentHeader::decode(payload.clone());
    if data.len() >= 12 && u16::from_be_bytes([data[0], data[1]]) == BASIC_CLASS_ID {
        properties(&payload.slice(12..), decoded.is_ok());
    }
    let header = match decoded {
        Ok(header) => header,
        Err(e) => return check_decode_error(&e),
    };
    assert_eq!(
        header.raw_properties[..],
        data[12..],
        "properties not kept verbatim"
    );

    // The header frame re-encoded (weight written as 0) splits off a buffer
    // as the same header.
    let mut buf = BytesMut::new();
    crate::frame::encode_header_frame(
        &mut buf,
        1,
        header.class_id,
        header.body_size,
        &header.raw_properties,
    );
    let mut expected = data.to_vec();
    expected[2..4].copy_from_slice(&[0, 0]);
    assert_eq!(
        buf[7..buf.len() - 1],
        expected[..],
        "header frame re-encoded"
    );
    match FrameDecoder::new(0).decode(&mut buf) {
        Ok(Some(Frame::Header {
            channel: 1,
            header: again,
        })) => {
            assert_eq!(again, header, "header does not survive encode → decode")
        }
        other => panic!("re-encoded header frame split as {other:?}"),
    }
    assert!(buf.is_empty(), "re-encoded header frame left bytes behind");
}

/// The basic properties after a header's first 12 octets: the decoder, the
/// validator and the in-place readers agree, and the decoded properties
/// survive encode → decode.
fn properties(raw: &Bytes, header_ok: bool) {
    let decoded = BasicProperties::decode(raw.clone());
    assert_eq!(
        decoded.is_ok(),
        BasicProperties::validate(raw).is_ok(),
        "BasicProperties::validate disagrees with decode: {decoded:?}"
    );
    assert_eq!(decoded.is_ok(), header_ok, "header and properties disagree");
    let props = match decoded {
        Ok(props) => props,
        Err(e) => return check_decode_error(&e),
    };
    let header = ContentHeader {
        class_id: BASIC_CLASS_ID,
        body_size: 0,
        raw_properties: raw.clone(),
    };
    assert_eq!(
        header.delivery_mode(),
        props.delivery_mode,
        "delivery_mode_of"
    );
    assert_eq!(priority_of(raw), props.priority, "priority_of");
    let first = props.to_bytes();
    let again = BasicProperties::decode(first.clone())
        .unwrap_or_else(|e| panic!("re-encoded properties do not decode: {e}"));
    assert_eq!(
        again.to_bytes(),
        first,
        "properties do not survive decode → encode"
    );
}

/// The bytes as a field table: `get_table` and the allocation-free
/// `skip_table` accept the same inputs and consume the same length, and a
/// decoded table survives encode → decode.
fn table(data: &[u8]) {
    let mut bytes = Bytes::copy_from_slice(data);
    let decoded = wire::get_table(&mut bytes);
    let mut slice = data;
    let skipped = wire::skip_table(&mut slice);
    assert_eq!(
        decoded.as_ref().err(),
        skipped.as_ref().err(),
        "skip_table and get_table disagree"
    );
    let table = match decoded {
        Ok(table) => table,
        Err(e) => return check_decode_error(&e),
    };
    assert_eq!(
        bytes.len(),
        slice.len(),
        "skip_table consumed another length"
    );
    let mut first = BytesMut::new();
    wire::put_table(&mut first, &table);
    let first = first.freeze();
    let again = wire::get_table(&mut first.clone())
        .unwrap_or_else(|e| panic!("re-encoded table does not decode: {e}"));
    let mut second = BytesMut::new();
    wire::put_table(&mut second, &again);
    assert_eq!(second, first, "table does not survive decode → encode");
    let _ = table.equivalent(&again);
}

fn encode_method(m: &Method) -> Bytes {
    let mut buf = BytesMut::new();
    m.encode(&mut buf);
    buf.freeze()
}

/// An error's reply text must fit the `shortstr` of `connection.close`.
fn check_decode_error(e: &DecodeError) {
    let _ = e.method_ids();
    check_frame_error(&FrameError::Decode(e.clone()));
}

fn check_frame_error(e: &FrameError) {
    let text = e.reply_text();
    assert!(
        ShortStr::try_from_string(text.clone()).is_some(),
        "reply text does not fit a shortstr: {text:?}"
    );
    assert!((500..600).contains(&e.reply_code()), "reply code of {e:?}");
    let _ = (e.method_ids(), e.channel());
}

/// What splitting a stream gave: each frame as it re-encodes, then how it
/// ended (`Ok(left)`: octets of an incomplete frame left over).
#[derive(Debug, PartialEq)]
struct Split {
    frames: Vec<Bytes>,
    end: Result<usize, FrameError>,
}

/// Splits `data` into frames, appending it to the read buffer in pieces of
/// the given sizes (cycled), as a socket's reads would.
fn split_stream(data: &[u8], frame_max: u32, sizes: &[usize]) -> Split {
    let mut decoder = FrameDecoder::new(frame_max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    let mut consumed = 0;
    for &size in sizes.iter().cycle() {
        let next = (fed + size).min(data.len());
        buf.put_slice(&data[fed..next]);
        fed = next;
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let len = before - buf.len();
                    check_frame(&frame, &data[consumed..consumed + len]);
                    consumed += len;
                    frames.push(encode_frame(&frame));
                }
                Ok(None) => break,
                Err(e) => {
                    check_frame_error(&e);
                    return Split {
                        frames,
                        end: Err(e),
                    };
                }
            }
        }
        if fed == data.len() {
            break;
        }
    }
    Split {
        frames,
        end: Ok(buf.len()),
    }
}

/// Piece sizes from 1 to 17 octets, varied by the input length.
fn piece_sizes(len: usize) -> Vec<usize> {
    let mut x = len as u32 | 1;
    (0..16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            1 + (x % 17) as usize
        })
        .collect()
}

fn encode_frame(frame: &Frame) -> Bytes {
    let mut buf = BytesMut::new();
    frame.encode(&mut buf);
    buf.freeze()
}

/// One frame split off `wire` (its exact octets): its size field matches
/// what was consumed, body and heartbeat frames re-encode to the same
/// octets, header frames too but for the weight, and every frame survives
/// encode → decode → encode.
fn check_frame(frame: &Frame, wire: &[u8]) {
    let size = u32::from_be_bytes([wire[3], wire[4], wire[5], wire[6]]) as usize;
    assert_eq!(wire.len(), size + FRAME_OVERHEAD, "frame length");
    assert_eq!(
        frame.channel(),
        u16::from_be_bytes([wire[1], wire[2]]),
        "channel"
    );
    let first = encode_frame(frame);
    match frame {
        Frame::Body { .. } | Frame::Heartbeat { .. } => {
            assert_eq!(first[..], wire[..], "body or heartbeat frame re-encoded")
        }
        Frame::Header { .. } => {
            assert_eq!(wire[0], FRAME_HEADER);
            let mut expected = wire.to_vec();
            expected[9..11].copy_from_slice(&[0, 0]);
            assert_eq!(first[..], expected[..], "header frame re-encoded");
        }
        Frame::Method { method, .. } => {
            assert_eq!(
                [
                    method.class_id().to_be_bytes(),
                    method.method_id().to_be_bytes()
                ]
                .concat(),
                wire[7..11],
                "method frame ids"
            );
        }
    }
    let mut buf = BytesMut::from(&first[..]);
    let again = match FrameDecoder::new(0).decode(&mut buf) {
        Ok(Some(again)) => again,
        other => panic!("re-encoded frame splits as {other:?}"),
    };
    assert!(buf.is_empty(), "re-encoded frame left bytes behind");
    assert_eq!(
        encode_frame(&again),
        first,
        "frame does not survive encode → decode"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_stream_passes_every_check() {
        let mut buf = BytesMut::new();
        let publish =
            Method::decode(Bytes::from_static(&[0, 60, 0, 40, 0, 0, 0, 1, b'q', 0])).unwrap();
        let props = BasicProperties {
            delivery_mode: Some(2),
            ..Default::default()
        };
        crate::frame::encode_message_frames(&mut buf, 1, &publish, &props.to_bytes(), b"hi", 0);
        crate::frame::encode_heartbeat(&mut buf);
        frame(&buf);
        method(&buf[7..7 + 10]);
        let header_payload = &buf[8 + 10 + 7..8 + 10 + 7 + 15];
        content_header(header_payload);
        assert!(ContentHeader::decode(Bytes::copy_from_slice(header_payload)).is_ok());
    }

    #[test]
    fn truncated_and_garbage_inputs_are_errors_not_panics() {
        for data in [
            &b""[..],
            b"\x01",
            b"\x01\x00\x00\x00\x00\x00\x01\x00",
            b"\x00\x3c",
        ] {
            frame(data);
            method(data);
            content_header(data);
        }
    }
}
