//! Content headers: `ContentHeader` (the payload of a header frame, with its
//! property flags + list kept as raw bytes) and `BasicProperties`, the decoded
//! form of the basic class's 14 properties.
//!
//! The broker forwards `raw_properties` verbatim to consumers and only
//! decodes them when it needs a field; `ContentHeader::delivery_mode` reads
//! the one field the publish path always needs without allocating.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::types::{FieldTable, ShortStr};
use crate::wire::{self, DecodeError};

/// Class id of `basic`, the only class with content.
pub const BASIC_CLASS_ID: u16 = 60;

// Property flag bits of the basic class, highest bit first (spec order).
const CONTENT_TYPE: u16 = 1 << 15;
const CONTENT_ENCODING: u16 = 1 << 14;
const HEADERS: u16 = 1 << 13;
const DELIVERY_MODE: u16 = 1 << 12;
const PRIORITY: u16 = 1 << 11;
const CORRELATION_ID: u16 = 1 << 10;
const REPLY_TO: u16 = 1 << 9;
const EXPIRATION: u16 = 1 << 8;
const MESSAGE_ID: u16 = 1 << 7;
const TIMESTAMP: u16 = 1 << 6;
const KIND: u16 = 1 << 5;
const USER_ID: u16 = 1 << 4;
const APP_ID: u16 = 1 << 3;
const CLUSTER_ID: u16 = 1 << 2;
/// Set in a flag word when another flag word follows.
const CONTINUATION: u16 = 1;

/// How each property of the basic class is encoded, in flag-bit order.
#[derive(Clone, Copy)]
enum PropType {
    ShortStr,
    Table,
    Octet,
    Timestamp,
}

const LAYOUT: [(u16, PropType); 14] = [
    (CONTENT_TYPE, PropType::ShortStr),
    (CONTENT_ENCODING, PropType::ShortStr),
    (HEADERS, PropType::Table),
    (DELIVERY_MODE, PropType::Octet),
    (PRIORITY, PropType::Octet),
    (CORRELATION_ID, PropType::ShortStr),
    (REPLY_TO, PropType::ShortStr),
    (EXPIRATION, PropType::ShortStr),
    (MESSAGE_ID, PropType::ShortStr),
    (TIMESTAMP, PropType::Timestamp),
    (KIND, PropType::ShortStr),
    (USER_ID, PropType::ShortStr),
    (APP_ID, PropType::ShortStr),
    (CLUSTER_ID, PropType::ShortStr),
];

/// The properties of a basic-class message. `kind` is the spec's `type`;
/// `cluster_id` is the spec's (deprecated) `reserved` property.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BasicProperties {
    pub content_type: Option<ShortStr>,
    pub content_encoding: Option<ShortStr>,
    pub headers: Option<FieldTable>,
    pub delivery_mode: Option<u8>,
    pub priority: Option<u8>,
    pub correlation_id: Option<ShortStr>,
    pub reply_to: Option<ShortStr>,
    pub expiration: Option<ShortStr>,
    pub message_id: Option<ShortStr>,
    pub timestamp: Option<u64>,
    pub kind: Option<ShortStr>,
    pub user_id: Option<ShortStr>,
    pub app_id: Option<ShortStr>,
    pub cluster_id: Option<ShortStr>,
}

/// Reads the flag words at the front of `buf`, returning the first one (the
/// only one the basic class uses). Later words may only carry the
/// continuation bit. The unused bit 1 of the first word is ignored, as
/// RabbitMQ ignores it.
fn get_flags(buf: &mut Bytes) -> Result<u16, DecodeError> {
    let mut cursor: &[u8] = buf;
    let first = get_flags_slice(&mut cursor)?;
    let consumed = buf.len() - cursor.len();
    buf.advance(consumed);
    Ok(first)
}

fn skip_slice(buf: &mut &[u8], len: usize) -> Result<(), DecodeError> {
    if buf.len() < len {
        return Err(DecodeError::Truncated {
            needed: len,
            available: buf.len(),
        });
    }
    *buf = &buf[len..];
    Ok(())
}

fn get_u16_slice(buf: &mut &[u8]) -> Result<u16, DecodeError> {
    let b = *buf;
    skip_slice(buf, 2)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

/// `get_flags` on a slice cursor.
fn get_flags_slice(buf: &mut &[u8]) -> Result<u16, DecodeError> {
    let first = get_u16_slice(buf)?;
    let mut word = first;
    let mut index = 0;
    while word & CONTINUATION != 0 {
        word = get_u16_slice(buf)?;
        index += 1;
        if word & !CONTINUATION != 0 {
            return Err(DecodeError::BadPropertyFlags {
                word: index,
                flags: word,
            });
        }
    }
    Ok(first)
}

impl BasicProperties {
    /// Decodes property flags (with any continuation words) and the property
    /// list. Bytes after the last property are an error.
    pub fn decode(mut raw: Bytes) -> Result<BasicProperties, DecodeError> {
        let buf = &mut raw;
        let flags = get_flags(buf)?;
        let str_if = |buf: &mut Bytes, bit: u16| -> Result<Option<ShortStr>, DecodeError> {
            if flags & bit != 0 {
                wire::get_shortstr(buf).map(Some)
            } else {
                Ok(None)
            }
        };
        let content_type = str_if(buf, CONTENT_TYPE)?;
        let content_encoding = str_if(buf, CONTENT_ENCODING)?;
        let headers = if flags & HEADERS != 0 {
            Some(wire::get_table(buf)?)
        } else {
            None
        };
        let delivery_mode = if flags & DELIVERY_MODE != 0 {
            Some(wire::get_u8(buf)?)
        } else {
            None
        };
        let priority = if flags & PRIORITY != 0 {
            Some(wire::get_u8(buf)?)
        } else {
            None
        };
        let correlation_id = str_if(buf, CORRELATION_ID)?;
        let reply_to = str_if(buf, REPLY_TO)?;
        let expiration = str_if(buf, EXPIRATION)?;
        let message_id = str_if(buf, MESSAGE_ID)?;
        let timestamp = if flags & TIMESTAMP != 0 {
            Some(wire::get_u64(buf)?)
        } else {
            None
        };
        let kind = str_if(buf, KIND)?;
        let user_id = str_if(buf, USER_ID)?;
        let app_id = str_if(buf, APP_ID)?;
        let cluster_id = str_if(buf, CLUSTER_ID)?;
        if !raw.is_empty() {
            return Err(DecodeError::TrailingBytes { count: raw.len() });
        }
        Ok(BasicProperties {
            content_type,
            content_encoding,
            headers,
            delivery_mode,
            priority,
            correlation_id,
            reply_to,
            expiration,
            message_id,
            timestamp,
            kind,
            user_id,
            app_id,
            cluster_id,
        })
    }

    /// Checks that `raw` would decode, without allocating or touching the
    /// reference count of `raw`.
    pub fn validate(raw: &[u8]) -> Result<(), DecodeError> {
        let mut buf = raw;
        let flags = get_flags_slice(&mut buf)?;
        for (bit, ty) in LAYOUT {
            if flags & bit == 0 {
                continue;
            }
            match ty {
                PropType::ShortStr => wire::skip_shortstr_checked(&mut buf)?,
                PropType::Table => wire::skip_table(&mut buf)?,
                PropType::Octet => skip_slice(&mut buf, 1)?,
                PropType::Timestamp => skip_slice(&mut buf, 8)?,
            }
        }
        if !buf.is_empty() {
            return Err(DecodeError::TrailingBytes { count: buf.len() });
        }
        Ok(())
    }

    /// The property flag word for the properties that are set.
    fn flags(&self) -> u16 {
        let mut flags = 0;
        let mut set = |present: bool, bit: u16| {
            if present {
                flags |= bit;
            }
        };
        set(self.content_type.is_some(), CONTENT_TYPE);
        set(self.content_encoding.is_some(), CONTENT_ENCODING);
        set(self.headers.is_some(), HEADERS);
        set(self.delivery_mode.is_some(), DELIVERY_MODE);
        set(self.priority.is_some(), PRIORITY);
        set(self.correlation_id.is_some(), CORRELATION_ID);
        set(self.reply_to.is_some(), REPLY_TO);
        set(self.expiration.is_some(), EXPIRATION);
        set(self.message_id.is_some(), MESSAGE_ID);
        set(self.timestamp.is_some(), TIMESTAMP);
        set(self.kind.is_some(), KIND);
        set(self.user_id.is_some(), USER_ID);
        set(self.app_id.is_some(), APP_ID);
        set(self.cluster_id.is_some(), CLUSTER_ID);
        flags
    }

    /// Appends the flag word and the property list.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u16(self.flags());
        let put_str = |buf: &mut BytesMut, s: &Option<ShortStr>| {
            if let Some(s) = s {
                wire::put_shortstr(buf, s);
            }
        };
        put_str(buf, &self.content_type);
        put_str(buf, &self.content_encoding);
        if let Some(h) = &self.headers {
            wire::put_table(buf, h);
        }
        if let Some(d) = self.delivery_mode {
            buf.put_u8(d);
        }
        if let Some(p) = self.priority {
            buf.put_u8(p);
        }
        put_str(buf, &self.correlation_id);
        put_str(buf, &self.reply_to);
        put_str(buf, &self.expiration);
        put_str(buf, &self.message_id);
        if let Some(t) = self.timestamp {
            buf.put_u64(t);
        }
        put_str(buf, &self.kind);
        put_str(buf, &self.user_id);
        put_str(buf, &self.app_id);
        put_str(buf, &self.cluster_id);
    }

    /// The encoded flags + property list, as `ContentHeader::raw_properties`.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::new();
        self.encode(&mut buf);
        buf.freeze()
    }
}

/// The payload of a content header frame. The weight field is read and
/// ignored (it must be zero; RabbitMQ refuses non-zero weights with an
/// UNEXPECTED_FRAME, which the connection layer decides, not the codec).
#[derive(Clone, Debug, PartialEq)]
pub struct ContentHeader {
    pub class_id: u16,
    pub body_size: u64,
    /// Property flags + property list, a slice of the frame.
    pub raw_properties: Bytes,
}

impl ContentHeader {
    /// Decodes a header frame payload: class id, weight, body size, then the
    /// properties. For the basic class the properties are validated (without
    /// allocating); for any other class id they are kept unchecked, since
    /// the connection rejects such a header as an unexpected frame anyway.
    pub fn decode(mut payload: Bytes) -> Result<ContentHeader, DecodeError> {
        let class_id = wire::get_u16(&mut payload)?;
        let _weight = wire::get_u16(&mut payload)?;
        let body_size = wire::get_u64(&mut payload)?;
        if class_id == BASIC_CLASS_ID {
            BasicProperties::validate(&payload)?;
        }
        Ok(ContentHeader {
            class_id,
            body_size,
            raw_properties: payload,
        })
    }

    /// A header for the basic class with the given properties.
    pub fn new(body_size: u64, properties: &BasicProperties) -> ContentHeader {
        ContentHeader {
            class_id: BASIC_CLASS_ID,
            body_size,
            raw_properties: properties.to_bytes(),
        }
    }

    /// Decodes the properties.
    pub fn properties(&self) -> Result<BasicProperties, DecodeError> {
        BasicProperties::decode(self.raw_properties.clone())
    }

    /// The delivery-mode property (2 = persistent), read in place without
    /// decoding the rest. `None` if absent (or if the properties are
    /// malformed, which `decode` has already ruled out).
    pub fn delivery_mode(&self) -> Option<u8> {
        delivery_mode_of(&self.raw_properties)
    }
}

/// The delivery-mode property of encoded basic properties (flags + list),
/// read in place. `None` if absent or malformed.
pub fn delivery_mode_of(raw: &[u8]) -> Option<u8> {
    let flags = u16::from_be_bytes([*raw.first()?, *raw.get(1)?]);
    if flags & DELIVERY_MODE == 0 {
        return None;
    }
    let mut pos = 2usize;
    // Skip continuation words (they carry no basic-class properties).
    let mut word = flags;
    while word & CONTINUATION != 0 {
        word = u16::from_be_bytes([*raw.get(pos)?, *raw.get(pos + 1)?]);
        pos += 2;
    }
    if flags & CONTENT_TYPE != 0 {
        pos += 1 + *raw.get(pos)? as usize;
    }
    if flags & CONTENT_ENCODING != 0 {
        pos += 1 + *raw.get(pos)? as usize;
    }
    if flags & HEADERS != 0 {
        let len = raw.get(pos..pos.checked_add(4)?)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        pos = pos.checked_add(4)?.checked_add(len)?;
    }
    raw.get(pos).copied()
}

/// The `priority` property of raw property bytes, without decoding the
/// rest (priority queues read it on every publish and page-in).
pub fn priority_of(raw: &[u8]) -> Option<u8> {
    let flags = u16::from_be_bytes([*raw.first()?, *raw.get(1)?]);
    if flags & PRIORITY == 0 {
        return None;
    }
    let mut pos = 2usize;
    let mut word = flags;
    while word & CONTINUATION != 0 {
        word = u16::from_be_bytes([*raw.get(pos)?, *raw.get(pos + 1)?]);
        pos += 2;
    }
    if flags & CONTENT_TYPE != 0 {
        pos += 1 + *raw.get(pos)? as usize;
    }
    if flags & CONTENT_ENCODING != 0 {
        pos += 1 + *raw.get(pos)? as usize;
    }
    if flags & HEADERS != 0 {
        let len = raw.get(pos..pos.checked_add(4)?)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        pos = pos.checked_add(4)?.checked_add(len)?;
    }
    if flags & DELIVERY_MODE != 0 {
        pos += 1;
    }
    raw.get(pos).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::FieldValue;
    use proptest::prelude::*;

    #[test]
    fn decodes_hand_written_properties() {
        // content-type "text/plain", delivery-mode 2, priority 5, timestamp.
        let flags: u16 = CONTENT_TYPE | DELIVERY_MODE | PRIORITY | TIMESTAMP;
        let mut raw = flags.to_be_bytes().to_vec();
        raw.push(10);
        raw.extend_from_slice(b"text/plain");
        raw.extend_from_slice(&[2, 5]);
        raw.extend_from_slice(&1_600_000_000u64.to_be_bytes());
        let raw = Bytes::from(raw);
        let props = BasicProperties::decode(raw.clone()).unwrap();
        assert_eq!(
            props,
            BasicProperties {
                content_type: Some("text/plain".into()),
                delivery_mode: Some(2),
                priority: Some(5),
                timestamp: Some(1_600_000_000),
                ..Default::default()
            }
        );
        assert_eq!(props.to_bytes(), raw);
        BasicProperties::validate(&raw).unwrap();
    }

    #[test]
    fn continuation_words_are_consumed() {
        // delivery-mode only, with the continuation bit set and one extra
        // (empty) flag word that itself has no continuation.
        let raw = Bytes::from_static(&[0x10, 0x01, 0x00, 0x00, 0x02]);
        let props = BasicProperties::decode(raw.clone()).unwrap();
        assert_eq!(props.delivery_mode, Some(2));
        BasicProperties::validate(&raw).unwrap();
        let header = ContentHeader {
            class_id: 60,
            body_size: 0,
            raw_properties: raw,
        };
        assert_eq!(header.delivery_mode(), Some(2));

        // Two continuation words.
        let raw = Bytes::from_static(&[0x10, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01]);
        assert_eq!(BasicProperties::decode(raw).unwrap().delivery_mode, Some(1));

        // A continuation word naming a property the class lacks.
        let raw = Bytes::from_static(&[0x10, 0x01, 0x80, 0x00, 0x02]);
        assert_eq!(
            BasicProperties::decode(raw.clone()).unwrap_err(),
            DecodeError::BadPropertyFlags {
                word: 1,
                flags: 0x8000
            }
        );
        assert!(BasicProperties::validate(&raw).is_err());

        // Continuation bit set but the next word is missing.
        let raw = Bytes::from_static(&[0x00, 0x01]);
        assert!(matches!(
            BasicProperties::decode(raw),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn no_properties_and_trailing_bytes() {
        let raw = Bytes::from_static(&[0, 0]);
        assert_eq!(
            BasicProperties::decode(raw).unwrap(),
            BasicProperties::default()
        );
        let raw = Bytes::from_static(&[0, 0, 7]);
        assert_eq!(
            BasicProperties::decode(raw.clone()).unwrap_err(),
            DecodeError::TrailingBytes { count: 1 }
        );
        assert!(BasicProperties::validate(&raw).is_err());
        assert!(BasicProperties::decode(Bytes::new()).is_err());
    }

    #[test]
    fn content_header_decodes_and_keeps_raw_slice() {
        let props = BasicProperties {
            content_type: Some("application/json".into()),
            headers: Some(FieldTable(vec![(
                "x-a".into(),
                FieldValue::LongStr(Bytes::from_static(b"b")),
            )])),
            delivery_mode: Some(2),
            ..Default::default()
        };
        let mut payload = BytesMut::new();
        payload.put_u16(60);
        payload.put_u16(0);
        payload.put_u64(1234);
        props.encode(&mut payload);
        let payload = payload.freeze();
        let header = ContentHeader::decode(payload.clone()).unwrap();
        assert_eq!(header.class_id, 60);
        assert_eq!(header.body_size, 1234);
        assert_eq!(header.raw_properties.as_ptr(), payload[12..].as_ptr());
        assert_eq!(header.properties().unwrap(), props);
        assert_eq!(header.delivery_mode(), Some(2));
        assert_eq!(ContentHeader::new(1234, &props), header);

        // Malformed properties are caught at decode time.
        let mut bad = payload.to_vec();
        bad.push(0);
        assert!(ContentHeader::decode(Bytes::from(bad)).is_err());
        // Header too short for class/weight/size.
        assert!(ContentHeader::decode(Bytes::from_static(&[0, 60, 0, 0, 0])).is_err());
    }

    #[test]
    fn delivery_mode_absent_or_malformed_is_none() {
        let header = ContentHeader::new(0, &BasicProperties::default());
        assert_eq!(header.delivery_mode(), None);
        // Claimed present but the bytes are not there.
        let header = ContentHeader {
            class_id: 60,
            body_size: 0,
            raw_properties: Bytes::from_static(&[0xB0, 0x00, 200]),
        };
        assert_eq!(header.delivery_mode(), None);
    }

    fn opt_str() -> impl Strategy<Value = Option<ShortStr>> {
        proptest::option::of(
            "[a-z/.0-9-]{0,20}".prop_map(|s| ShortStr::try_from_string(s).unwrap()),
        )
    }

    prop_compose! {
        fn properties()(
            content_type in opt_str(),
            content_encoding in opt_str(),
            headers in proptest::option::of(crate::wire::tests::field_table()),
            delivery_mode in proptest::option::of(any::<u8>()),
            priority in proptest::option::of(any::<u8>()),
            correlation_id in opt_str(),
            reply_to in opt_str(),
            expiration in opt_str(),
            message_id in opt_str(),
            timestamp in proptest::option::of(any::<u64>()),
            kind in opt_str(),
            user_id in opt_str(),
            app_id in opt_str(),
            cluster_id in opt_str(),
        ) -> BasicProperties {
            BasicProperties {
                content_type, content_encoding, headers, delivery_mode, priority,
                correlation_id, reply_to, expiration, message_id, timestamp, kind,
                user_id, app_id, cluster_id,
            }
        }
    }

    proptest! {
        #[test]
        fn properties_round_trip(props in properties()) {
            let raw = props.to_bytes();
            BasicProperties::validate(&raw).unwrap();
            prop_assert_eq!(&BasicProperties::decode(raw.clone()).unwrap(), &props);
            let header = ContentHeader { class_id: 60, body_size: 1, raw_properties: raw };
            prop_assert_eq!(header.delivery_mode(), props.delivery_mode);
            prop_assert_eq!(priority_of(&header.raw_properties), props.priority);
        }

        #[test]
        fn arbitrary_properties_never_panic(data in proptest::collection::vec(any::<u8>(), 0..96)) {
            let raw = Bytes::from(data);
            let decoded = BasicProperties::decode(raw.clone());
            prop_assert_eq!(decoded.is_ok(), BasicProperties::validate(&raw).is_ok());
            let header = ContentHeader { class_id: 60, body_size: 0, raw_properties: raw };
            let mode = header.delivery_mode();
            if let Ok(props) = decoded {
                prop_assert_eq!(mode, props.delivery_mode);
            }
        }
    }
}
