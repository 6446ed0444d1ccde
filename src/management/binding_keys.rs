//! How RabbitMQ's management API names a binding: its properties key
//! (`rabbit_mgmt_format:pack_binding_props`, the last segment of
//! `/api/bindings/{vhost}/e/{source}/{q|e}/{destination}/{props}`), the
//! `quote_plus` encoding it uses, and the relative `Location` a binding
//! made by `POST` answers with. Pure.

use super::amqp_json::table_json;
use crate::broker::exchange::Destination;
use crate::protocol::types::{FieldTable, ShortStr};

/// A binding's destination in a path: `q/{name}` or `e/{name}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Dest {
    Queue(String),
    Exchange(String),
}

impl Dest {
    pub fn parse(kind: &str, name: &str) -> Option<Dest> {
        match kind {
            "q" => Some(Dest::Queue(name.to_string())),
            "e" => Some(Dest::Exchange(exchange_id(name).to_string())),
            _ => None,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Dest::Queue(n) | Dest::Exchange(n) => n,
        }
    }

    /// `q` or `e`, as in the path.
    pub fn letter(&self) -> &'static str {
        match self {
            Dest::Queue(_) => "q",
            Dest::Exchange(_) => "e",
        }
    }

    pub fn to_destination(&self) -> Option<Destination> {
        let name = ShortStr::try_from_string(self.name().to_string())?;
        Some(match self {
            Dest::Queue(_) => Destination::Queue(name),
            Dest::Exchange(_) => Destination::Exchange(name),
        })
    }

    pub fn matches(&self, d: &Destination) -> bool {
        match (self, d) {
            (Dest::Queue(a), Destination::Queue(b)) => a == b.as_str(),
            (Dest::Exchange(a), Destination::Exchange(b)) => a == b.as_str(),
            _ => false,
        }
    }
}

/// An exchange name in a path: `amq.default` is the default exchange, as
/// RabbitMQ's `rabbit_mgmt_util:id`.
pub fn exchange_id(name: &str) -> &str {
    if name == "amq.default" {
        ""
    } else {
        name
    }
}

/// A binding's properties key, as RabbitMQ's `pack_binding_props`: `~`
/// for an empty key without arguments, else the key quoted (and, with
/// arguments, `~` and a hash of them). Deliberate difference: RabbitMQ
/// hashes the arguments with Erlang's `phash2`; Warren takes the CRC32C
/// of their JSON, written the same way (4 bytes in unpadded base64url).
/// Clients take the key from listings or the `Location` header.
pub fn properties_key(key: &str, args: &FieldTable) -> String {
    if args.0.is_empty() {
        return if key.is_empty() {
            "~".into()
        } else {
            quote_binding(key)
        };
    }
    use base64::Engine;
    let hash = crc32c::crc32c(table_json(args).to_string().as_bytes());
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.to_be_bytes());
    format!("{}~{}", quote_binding(key), quote_binding(&encoded))
}

fn quote_binding(s: &str) -> String {
    quote_plus(s).replace('~', "%7E")
}

/// RabbitMQ's `quote_plus` (mochiweb's): letters, digits and `.-~_` stay,
/// a space is `+`, every other byte `%XX`.
pub fn quote_plus(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'~' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The `Location` of a binding made by `POST` to `from` (the request's
/// path as sent): RabbitMQ's binding URL made relative to it
/// (`rabbit_web_dispatch_util:relativise`).
pub fn binding_location(from: &str, vhost: &str, source: &str, dest: &Dest, props: &str) -> String {
    let to = format!(
        "/api/bindings/{}/e/{}/{}/{}/{}",
        quote_plus(vhost),
        quote_plus(source),
        dest.letter(),
        quote_plus(dest.name()),
        quote_plus(props)
    );
    let from: Vec<&str> = from.split('/').filter(|s| !s.is_empty()).collect();
    let to: Vec<&str> = to.split('/').filter(|s| !s.is_empty()).collect();
    let mut i = 0;
    while i + 1 < from.len() && i < to.len() && from[i] == to[i] {
        i += 1;
    }
    let rest = &to[i..];
    let mut parts: Vec<&str> = Vec::new();
    if from.len() == i + 1 && rest.first() == Some(&from[i]) {
        parts.extend(rest);
    } else {
        let ups = from.len().saturating_sub(i + 1);
        parts.extend(std::iter::repeat_n("..", ups));
        parts.extend(rest);
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::FieldValue;

    #[test]
    fn properties_keys_are_rabbitmqs() {
        let none = FieldTable::default();
        assert_eq!(properties_key("", &none), "~");
        assert_eq!(properties_key("a.b-c_d", &none), "a.b-c_d");
        assert_eq!(properties_key("a b/c~d%", &none), "a+b%2Fc%7Ed%25");
        let mut args = FieldTable::default();
        args.0.push((ShortStr::from("x"), FieldValue::I64(1)));
        let key = properties_key("k", &args);
        let (k, hash) = key.split_once('~').unwrap();
        assert_eq!(k, "k");
        // 4 bytes in unpadded base64url, as RabbitMQ's.
        assert_eq!(hash.len(), 6, "{key}");
        assert_eq!(properties_key("k", &args), key, "stable");
    }

    #[test]
    fn locations_are_relative_to_the_request() {
        let q = Dest::Queue("q1".into());
        assert_eq!(
            binding_location(
                "/api/bindings/%2F/e/amq.direct/q/q1",
                "/",
                "amq.direct",
                &q,
                "k"
            ),
            "q1/k"
        );
        assert_eq!(
            binding_location("/api/bindings/v/e/x/q/q1", "v", "x", &q, "~"),
            "q1/~"
        );
        // Encoded differently by the client: up and down again.
        assert_eq!(
            binding_location("/api/bindings/%2f/e/x/q/q1", "/", "x", &q, "~"),
            "../../../../%2F/e/x/q/q1/~"
        );
    }
}
