//! The admin side of policies: `POST /set_policy/NAME/PATTERN/DEFINITION/
//! PRIORITY/APPLY_TO` (each part percent-encoded; DEFINITION is the JSON
//! object `rabbitmqctl set_policy` takes), `POST /clear_policy/NAME` and
//! the `policies` listing, with rabbitmqctl's columns. Parsing the JSON
//! definition into a field table (integers, strings, booleans, arrays and
//! objects) is here too.

use crate::protocol::types::{FieldTable, FieldValue, ShortStr};
use crate::storage::definitions::PolicyDef;
use bytes::Bytes;

/// Percent-encodes every byte but unreserved ones.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A policy request's parts, decoded: name, pattern, definition (JSON),
/// priority, apply-to.
pub fn parse_set(value: &str) -> Result<PolicyDef, String> {
    let parts: Vec<&str> = value.split('/').collect();
    let [name, pattern, definition, priority, apply_to] = parts[..] else {
        return Err("expected NAME/PATTERN/DEFINITION/PRIORITY/APPLY_TO".into());
    };
    let d = |s: &str| decode(s).ok_or_else(|| "bad percent-encoding".to_string());
    let priority = d(priority)?;
    Ok(PolicyDef {
        name: d(name)?,
        pattern: d(pattern)?,
        apply_to: d(apply_to)?,
        priority: priority
            .parse()
            .map_err(|_| format!("priority must be an integer, got '{priority}'"))?,
        definition: parse_json_object(&d(definition)?)?,
    })
}

/// Parses a JSON object into a field table (numbers must be integers).
pub fn parse_json_object(text: &str) -> Result<FieldTable, String> {
    let mut p = Json {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value().and_then(|v| {
        p.ws();
        if p.i == p.s.len() {
            Ok(v)
        } else {
            Err("trailing characters".into())
        }
    });
    match v {
        Ok(FieldValue::Table(t)) => Ok(t),
        Ok(_) => Err("Could not parse JSON document: not an object".into()),
        Err(e) => Err(format!("Could not parse JSON document: {e}")),
    }
}

struct Json<'a> {
    s: &'a [u8],
    i: usize,
}

impl Json<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<FieldValue, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut t = FieldTable::new();
                if self.eat(b'}') {
                    return Ok(FieldValue::Table(t));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    if !self.eat(b':') {
                        return Err("expected ':'".into());
                    }
                    let v = self.value()?;
                    let key = ShortStr::try_from_string(k).ok_or("key too long")?;
                    t.0.push((key, v));
                    if self.eat(b'}') {
                        return Ok(FieldValue::Table(t));
                    }
                    if !self.eat(b',') {
                        return Err("expected ',' or '}'".into());
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                if self.eat(b']') {
                    return Ok(FieldValue::Array(a));
                }
                loop {
                    a.push(self.value()?);
                    if self.eat(b']') {
                        return Ok(FieldValue::Array(a));
                    }
                    if !self.eat(b',') {
                        return Err("expected ',' or ']'".into());
                    }
                }
            }
            Some(b'"') => Ok(FieldValue::LongStr(Bytes::from(self.string()?))),
            Some(b't') if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(FieldValue::Bool(true))
            }
            Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(FieldValue::Bool(false))
            }
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                self.i += 1;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_digit() || b".eE+-".contains(c))
                {
                    self.i += 1;
                }
                let n = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                n.parse::<i64>()
                    .map(FieldValue::I64)
                    .or_else(|_| n.parse::<f64>().map(FieldValue::F64))
                    .map_err(|_| format!("bad number '{n}'"))
            }
            _ => Err(format!("unexpected input at byte {}", self.i)),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if self.s.get(self.i) != Some(&b'"') {
            return Err("expected a string".into());
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.i) {
                None => return Err("unterminated string".into()),
                Some(b'"') => {
                    self.i += 1;
                    return String::from_utf8(out).map_err(|_| "bad UTF-8".into());
                }
                Some(b'\\') => {
                    let c = *self.s.get(self.i + 1).ok_or("unterminated string")?;
                    out.push(match c {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        b'"' | b'\\' | b'/' => c,
                        _ => return Err("unsupported escape".into()),
                    });
                    self.i += 2;
                }
                Some(c) => {
                    out.push(*c);
                    self.i += 1;
                }
            }
        }
    }
}

/// A definition as JSON (for `list_policies`).
pub fn to_json(v: &FieldValue) -> String {
    match v {
        FieldValue::Table(t) => format!(
            "{{{}}}",
            t.iter()
                .map(|(k, v)| format!("\"{}\":{}", k.as_str(), to_json(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        FieldValue::Array(a) => {
            format!("[{}]", a.iter().map(to_json).collect::<Vec<_>>().join(","))
        }
        FieldValue::LongStr(s) => {
            format!("\"{}\"", String::from_utf8_lossy(s).replace('"', "\\\""))
        }
        FieldValue::Bool(b) => b.to_string(),
        other => match other.as_i64() {
            Some(n) => n.to_string(),
            None => format!("{other:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_parse_as_json() {
        let t = parse_json_object(r#"{"message-ttl": 100, "overflow":"drop-head", "x":[1,true]}"#)
            .unwrap();
        assert_eq!(t.get("message-ttl").and_then(|v| v.as_i64()), Some(100));
        assert_eq!(
            to_json(&FieldValue::Table(t)),
            r#"{"message-ttl":100,"overflow":"drop-head","x":[1,true]}"#
        );
        assert!(parse_json_object("{").is_err());
        assert!(parse_json_object("[]").is_err());
    }

    #[test]
    fn requests_round_trip() {
        let path = ["p 1", "^a.*/", r#"{"max-length":1}"#, "-3", "queues"]
            .map(encode)
            .join("/");
        let p = parse_set(&path).unwrap();
        assert_eq!(p.name, "p 1");
        assert_eq!(p.pattern, "^a.*/");
        assert_eq!(p.priority, -3);
        assert_eq!(p.apply_to, "queues");
    }
}
