//! Sender-selected distribution, RabbitMQ's `CC` and `BCC` headers: the
//! routing keys a message adds with them (`rabbit_basic:header_routes/1`:
//! the long strings of the `CC` array, then those of the `BCC` array;
//! a `CC` or `BCC` of any other type refuses the publish with 406
//! `invalid message: {unacceptable_type_in_header,"CC",longstr}`), and
//! the `BCC` header kept from every client that receives the message.
//!
//! Warren keeps the `BCC` header in the message as stored (so its keys
//! route a dead-lettered or delayed copy as RabbitMQ's routing-key
//! annotation does, and survive a restart) and strips it where a message
//! leaves for a client (`delivered_properties`). Messages without a
//! `headers` property pay one flag test on either path.

use super::{Origin, RouteResult, Topology};
use crate::broker::error::AmqpError;
use crate::broker::exchange::headers::type_name;
use crate::protocol::properties::BasicProperties;
use crate::protocol::types::{FieldTable, FieldValue, LongStr, ShortStr};
use bytes::Bytes;
use std::borrow::Cow;

/// Property flag of the `headers` property in the first flags word.
const HEADERS_FLAG: u16 = 1 << 13;

/// The headers that add routing keys, in RabbitMQ's order.
const ROUTING_HEADERS: [&str; 2] = ["CC", "BCC"];

/// The keys the first `key` header adds: its long strings (other element
/// types are skipped), none without the header; `Err(type)` when it is
/// not an array.
pub fn header_routes(
    headers: Option<&FieldTable>,
    key: &str,
) -> Result<Vec<LongStr>, &'static str> {
    match headers.and_then(|h| h.get(key)) {
        None => Ok(Vec::new()),
        Some(FieldValue::Array(values)) => Ok(values
            .iter()
            .filter_map(|v| match v {
                FieldValue::LongStr(s) => Some(s.clone()),
                _ => None,
            })
            .collect()),
        Some(other) => Err(type_name(other)),
    }
}

/// The routing keys a publish with `headers` adds to its routing key: the
/// `CC` keys, then the `BCC` keys; or RabbitMQ's 406 for a `CC` / `BCC`
/// header that is not an array.
pub fn extra_keys(headers: Option<&FieldTable>) -> Result<Vec<LongStr>, AmqpError> {
    let mut keys = Vec::new();
    for key in ROUTING_HEADERS {
        match header_routes(headers, key) {
            Ok(routes) => keys.extend(routes),
            Err(kind) => {
                return Err(AmqpError::precondition_failed(format!(
                    "invalid message: {{unacceptable_type_in_header,\"{key}\",{kind}}}"
                )))
            }
        }
    }
    Ok(keys)
}

/// `headers` less its first `BCC` entry, if it has one
/// (`rabbit_basic:strip_bcc/1`): what header routing sees.
pub fn without_bcc(headers: &FieldTable) -> Option<FieldTable> {
    let i = headers.0.iter().position(|(k, _)| k == "BCC")?;
    let mut t = headers.clone();
    t.0.remove(i);
    Some(t)
}

/// The properties a client gets for a message stored with
/// `raw_properties`: the same bytes, or, when they hold a `BCC` header, the
/// properties re-encoded without it.
pub fn delivered_properties(raw_properties: &[u8]) -> Cow<'_, [u8]> {
    if !may_hold_bcc(raw_properties) {
        return Cow::Borrowed(raw_properties);
    }
    let Ok(mut props) = BasicProperties::decode(Bytes::copy_from_slice(raw_properties)) else {
        return Cow::Borrowed(raw_properties);
    };
    match props.headers.as_ref().and_then(without_bcc) {
        Some(headers) => {
            props.headers = Some(headers);
            Cow::Owned(props.to_bytes().to_vec())
        }
        None => Cow::Borrowed(raw_properties),
    }
}

impl Topology {
    /// Routes a message the broker republishes (a delayed message at its
    /// time): its routing key plus the `CC` and `BCC` keys of its
    /// `headers`, header routing without `BCC`, as its publish would have
    /// been routed. A header of the wrong type (refused at publish, so only
    /// in a message stored before that check) adds no keys.
    pub fn route_stored(
        &self,
        exchange: &str,
        routing_key: &ShortStr,
        headers: Option<&FieldTable>,
        origin: Origin,
        out: &mut Vec<ShortStr>,
    ) -> RouteResult {
        let extra = extra_keys(headers).unwrap_or_default();
        let stripped = headers.and_then(without_bcc);
        let headers = stripped.as_ref().or(headers);
        self.route_keys(exchange, routing_key, &extra, headers, origin, out)
    }
}

/// A cheap test: the properties have headers and the bytes of a `BCC`
/// field name (a short string of length 3) somewhere.
fn may_hold_bcc(raw: &[u8]) -> bool {
    let flags = match raw {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    flags & HEADERS_FLAG != 0 && raw.windows(4).any(|w| w == b"\x03BCC")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> FieldValue {
        FieldValue::LongStr(Bytes::copy_from_slice(v.as_bytes()))
    }

    fn headers(entries: Vec<(&str, FieldValue)>) -> FieldTable {
        FieldTable(
            entries
                .into_iter()
                .map(|(k, v)| (ShortStr::from(k), v))
                .collect(),
        )
    }

    #[test]
    fn cc_then_bcc_keys_and_other_elements_are_skipped() {
        let h = headers(vec![
            ("BCC", FieldValue::Array(vec![s("b1")])),
            (
                "CC",
                FieldValue::Array(vec![s("c1"), FieldValue::I32(3), s("c2")]),
            ),
        ]);
        let keys = extra_keys(Some(&h)).unwrap();
        assert_eq!(
            keys,
            vec![Bytes::from("c1"), Bytes::from("c2"), Bytes::from("b1")]
        );
        assert!(extra_keys(None).unwrap().is_empty());
    }

    #[test]
    fn a_header_that_is_not_an_array_is_refused_as_rabbitmq_refuses_it() {
        let h = headers(vec![("CC", s("b"))]);
        let e = extra_keys(Some(&h)).unwrap_err();
        assert_eq!(
            e.text,
            "PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,\"CC\",longstr}"
        );
        assert_eq!(e.code, 406);
        let h = headers(vec![("BCC", FieldValue::I64(1))]);
        assert!(extra_keys(Some(&h))
            .unwrap_err()
            .text
            .ends_with("{unacceptable_type_in_header,\"BCC\",long}"));
    }

    #[test]
    fn delivered_properties_lose_bcc_only() {
        let props = BasicProperties {
            headers: Some(headers(vec![
                ("CC", FieldValue::Array(vec![s("c")])),
                ("BCC", FieldValue::Array(vec![s("b")])),
                ("other", FieldValue::I32(1)),
            ])),
            ..Default::default()
        };
        let raw = props.to_bytes();
        let out =
            BasicProperties::decode(Bytes::from(delivered_properties(&raw).into_owned())).unwrap();
        let h = out.headers.unwrap();
        assert!(h.get("BCC").is_none());
        assert!(h.get("CC").is_some() && h.get("other").is_some());
        // Without BCC: the same bytes, not a copy.
        let plain = BasicProperties {
            headers: Some(headers(vec![("CC", FieldValue::Array(vec![s("c")]))])),
            ..Default::default()
        }
        .to_bytes();
        assert!(matches!(delivered_properties(&plain), Cow::Borrowed(_)));
        let none = BasicProperties::default().to_bytes();
        assert!(matches!(delivered_properties(&none), Cow::Borrowed(b) if b == &none[..]));
    }
}
