//! `FrameDecoder`: splits whole frames off the front of a read buffer,
//! zero-copy, checking sizes against the negotiated `frame_max` from the
//! header alone.

use super::error::{snippet, FrameError};
use super::{
    Frame, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEADER_SIZE, FRAME_HEARTBEAT, FRAME_METHOD,
    FRAME_OVERHEAD, FRAME_PAYLOAD_HARD_CAP, FRAME_SIZE_FUDGE,
};
use crate::methods::Method;
use crate::properties::ContentHeader;
use bytes::{Buf, Bytes, BytesMut};

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
            FRAME_METHOD if payload.len() < 4 => {
                // No room for the class and method ids: RabbitMQ's reader
                // does not recognise the frame.
                return Err(FrameError::UnknownFrameType {
                    frame_type,
                    channel,
                    snippet: snippet(&payload),
                });
            }
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
