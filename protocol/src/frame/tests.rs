//! Unit and property tests of framing: decoding across partial reads,
//! zero-copy bodies, size limits, malformed frames and their reply texts,
//! and the encoders.

use super::encode::put_frame_header;
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
    let Some(Frame::Body { payload, .. }) = FrameDecoder::new(0).decode(&mut buf).unwrap() else {
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
