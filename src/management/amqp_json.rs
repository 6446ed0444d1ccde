//! AMQP values in and out of the management API's JSON, as RabbitMQ's
//! `rabbit_mgmt_format` converts them: arguments and headers (a JSON
//! object ↔ a field table: integers are `long`, other numbers `double`),
//! message properties (`to_basic_properties` / `basic_properties`) and
//! payloads (`string` / `base64`). Pure.

use crate::protocol::properties::BasicProperties;
use crate::protocol::types::{FieldTable, FieldValue, ShortStr};
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Map, Value};

/// The deepest nesting of tables and arrays taken from a request.
const MAX_DEPTH: usize = 32;

/// A JSON object as a field table (`arguments`, `headers`); `null` is an
/// empty one. Errors are RabbitMQ's reasons.
pub fn table_from_json(v: Option<&Value>) -> Result<FieldTable, String> {
    match v {
        None | Some(Value::Null) => Ok(FieldTable::default()),
        Some(Value::Object(o)) => object(o, 0),
        Some(_) => Err("arguments must be an object".into()),
    }
}

fn object(o: &Map<String, Value>, depth: usize) -> Result<FieldTable, String> {
    let mut t = FieldTable::default();
    for (k, v) in o {
        let key = ShortStr::try_from_string(k.clone())
            .ok_or_else(|| format!("argument name too long: '{k}'"))?;
        t.0.push((key, value(v, depth + 1)?));
    }
    Ok(t)
}

fn value(v: &Value, depth: usize) -> Result<FieldValue, String> {
    if depth > MAX_DEPTH {
        return Err("arguments nested too deeply".into());
    }
    Ok(match v {
        Value::Null => FieldValue::Void,
        Value::Bool(b) => FieldValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => FieldValue::I64(i),
            None => FieldValue::F64(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => FieldValue::LongStr(Bytes::from(s.clone().into_bytes())),
        Value::Array(a) => FieldValue::Array(
            a.iter()
                .map(|v| value(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => FieldValue::Table(object(o, depth)?),
    })
}

/// A field `name` of a request body as a boolean (RabbitMQ's `parse_bool`:
/// `true`, `false` or their strings); absent: `default`.
pub fn bool_field(body: &Map<String, Value>, name: &str, default: bool) -> Result<bool, String> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" => Ok(true),
        Some(Value::String(s)) if s == "false" => Ok(false),
        Some(other) => Err(format!("{name} must be true or false, got {other}")),
    }
}

/// A field as a string (absent: `default`).
pub fn str_field<'a>(
    body: &'a Map<String, Value>,
    name: &str,
    default: &'a str,
) -> Result<&'a str, String> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("{name} must be a string, got {other}")),
    }
}

/// A field as an integer (RabbitMQ's `parse_int`: a number or its string).
pub fn int_field(body: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{name} must be an integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} must be an integer")),
        Some(_) => Err(format!("{name} must be an integer")),
    }
}

/// A publish's `properties` as basic properties (RabbitMQ's
/// `to_basic_properties`): `headers` a table, `delivery_mode`, `priority`
/// and `timestamp` integers, the others strings; unknown keys are not
/// properties and are left out, as RabbitMQ does.
pub fn properties_from_json(v: &Value) -> Result<BasicProperties, Value> {
    let empty = Map::new();
    let o = match v {
        Value::Object(o) => o,
        Value::Null => &empty,
        _ => return Err(json!("properties must be an object")),
    };
    let mut p = BasicProperties::default();
    for (key, v) in o {
        let not_string = || json!(["not_string", key]);
        let not_int = || json!(["not_int", key]);
        let string = || -> Result<ShortStr, Value> {
            v.as_str()
                .and_then(|s| ShortStr::try_from_string(s.to_string()))
                .ok_or_else(not_string)
        };
        let octet = || -> Result<u8, Value> {
            v.as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(not_int)
        };
        match key.as_str() {
            "content_type" => p.content_type = Some(string()?),
            "content_encoding" => p.content_encoding = Some(string()?),
            "headers" => p.headers = Some(table_from_json(Some(v)).map_err(|e| json!(e))?),
            "delivery_mode" => p.delivery_mode = Some(octet()?),
            "priority" => p.priority = Some(octet()?),
            "correlation_id" => p.correlation_id = Some(string()?),
            "reply_to" => p.reply_to = Some(string()?),
            "expiration" => p.expiration = Some(string()?),
            "message_id" => p.message_id = Some(string()?),
            "timestamp" => p.timestamp = Some(v.as_u64().ok_or_else(not_int)?),
            "type" => p.kind = Some(string()?),
            "user_id" => p.user_id = Some(string()?),
            "app_id" => p.app_id = Some(string()?),
            "cluster_id" => p.cluster_id = Some(string()?),
            _ => {}
        }
    }
    Ok(p)
}

/// Basic properties as RabbitMQ's `basic_properties` shows them: the
/// properties that are set (none: RabbitMQ's empty list, `[]`).
pub fn properties_json(raw: &Bytes) -> Value {
    let Ok(p) = BasicProperties::decode(raw.clone()) else {
        return json!([]);
    };
    let mut o = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            o.insert(k.to_string(), v);
        }
    };
    let s = |v: &Option<ShortStr>| v.as_ref().map(|s| json!(s.as_str()));
    put("content_type", s(&p.content_type));
    put("content_encoding", s(&p.content_encoding));
    put("headers", p.headers.as_ref().map(table_json));
    put("delivery_mode", p.delivery_mode.map(|v| json!(v)));
    put("priority", p.priority.map(|v| json!(v)));
    put("correlation_id", s(&p.correlation_id));
    put("reply_to", s(&p.reply_to));
    put("expiration", s(&p.expiration));
    put("message_id", s(&p.message_id));
    put("timestamp", p.timestamp.map(|v| json!(v)));
    put("type", s(&p.kind));
    put("user_id", s(&p.user_id));
    put("app_id", s(&p.app_id));
    put("cluster_id", s(&p.cluster_id));
    if o.is_empty() {
        json!([])
    } else {
        Value::Object(o)
    }
}

/// A publish's payload: `string` as it is, `base64` decoded.
pub fn decode_payload(payload: &str, encoding: &str) -> Result<Bytes, Value> {
    match encoding {
        "string" => Ok(Bytes::from(payload.as_bytes().to_vec())),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(payload)
            .map(Bytes::from)
            .map_err(|_| json!("not_base64")),
        other => Err(json!(["unsupported_encoding", other])),
    }
}

/// A payload got from a queue, cut to `truncate` bytes: with `auto`, as a
/// string when it is UTF-8, otherwise (and with `base64`) in base64.
pub fn payload_json(
    payload: &[u8],
    truncate: Option<usize>,
    base64_only: bool,
) -> (Value, &'static str) {
    let cut = &payload[..truncate.unwrap_or(payload.len()).min(payload.len())];
    match std::str::from_utf8(cut) {
        Ok(s) if !base64_only => (json!(s), "string"),
        _ => (
            json!(base64::engine::general_purpose::STANDARD.encode(cut)),
            "base64",
        ),
    }
}

/// A field table as JSON, as RabbitMQ's management API shows arguments
/// and headers.
pub fn table_json(t: &FieldTable) -> Value {
    Value::Object(
        t.0.iter()
            .map(|(k, v)| (k.as_str().to_string(), field_json(v)))
            .collect(),
    )
}

fn field_json(v: &FieldValue) -> Value {
    match v {
        FieldValue::Bool(b) => json!(b),
        FieldValue::F32(f) => json!(f),
        FieldValue::F64(f) => json!(f),
        FieldValue::Decimal(d) => json!(d.value as f64 / 10f64.powi(d.scale as i32)),
        FieldValue::LongStr(s) | FieldValue::Bytes(s) => json!(String::from_utf8_lossy(s)),
        FieldValue::Array(a) => Value::Array(a.iter().map(field_json).collect()),
        FieldValue::Timestamp(t) => json!(t),
        FieldValue::Table(t) => table_json(t),
        FieldValue::Void => Value::Null,
        other => other.as_i64().map_or(Value::Null, |n| json!(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_become_field_tables() {
        let v: Value = serde_json::from_str(
            r#"{"x-max-length": 10, "x-ratio": 0.5, "x-dead-letter-exchange": "dlx", "list": [true, null], "t": {"a": 1}}"#,
        )
        .unwrap();
        let t = table_from_json(Some(&v)).unwrap();
        assert_eq!(t.get("x-max-length").and_then(|v| v.as_i64()), Some(10));
        assert_eq!(
            t.get("x-dead-letter-exchange").and_then(|v| v.as_str()),
            Some("dlx")
        );
        assert_eq!(super::table_json(&t), v);
        assert!(table_from_json(Some(&json!([1]))).is_err());
        assert_eq!(table_from_json(None).unwrap(), FieldTable::default());
    }

    #[test]
    fn properties_round_trip() {
        let v = json!({"delivery_mode": 2, "content_type": "text/plain",
                       "headers": {"h": "v"}, "priority": 3, "ignored": 1});
        let p = properties_from_json(&v).unwrap();
        let mut raw = bytes::BytesMut::new();
        p.encode(&mut raw);
        assert_eq!(
            properties_json(&raw.freeze()),
            json!({"delivery_mode": 2, "content_type": "text/plain", "headers": {"h": "v"}, "priority": 3})
        );
        assert_eq!(
            properties_from_json(&json!({"content_type": 1})).unwrap_err(),
            json!(["not_string", "content_type"])
        );
        let mut raw = bytes::BytesMut::new();
        BasicProperties::default().encode(&mut raw);
        assert_eq!(properties_json(&raw.freeze()), json!([]));
    }

    #[test]
    fn payloads_are_strings_or_base64() {
        assert_eq!(
            payload_json(b"hello", None, false),
            (json!("hello"), "string")
        );
        assert_eq!(
            payload_json(b"hello", Some(2), false),
            (json!("he"), "string")
        );
        assert_eq!(
            payload_json(&[0xff, 0], None, false),
            (json!("/wA="), "base64")
        );
        assert_eq!(payload_json(b"hi", None, true), (json!("aGk="), "base64"));
        assert_eq!(
            decode_payload("aGk=", "base64").unwrap(),
            Bytes::from_static(b"hi")
        );
        assert!(decode_payload("x", "rot13").is_err());
    }
}
