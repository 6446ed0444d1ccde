//! Dead-lettering, the pure part, as RabbitMQ 3.13 does it (`rabbit_dead_letter`,
//! `mc:record_death/4`, `mc_amqpl`, with the `message_containers_deaths_v2`
//! feature flag on): what a dead-lettered copy's properties become (the
//! `x-death` history, `x-first-death-*`, `x-last-death-*`, `expiration`
//! moved to `original-expiration`, `BCC` stripped), which exchange and
//! routing keys it is republished with, and the cycle check that drops a
//! copy going round a fully automatic dead-letter cycle. No clock, no I/O:
//! the shard runtime passes the time in and does the routing and delivery.
//!
//! RabbitMQ keeps the routing keys of a message (the publish key, then the
//! `CC` keys, then the `BCC` keys) and its `BCC` keys as annotations beside
//! the properties; `Routing` is that state, which the runtime carries with a
//! message from one life to the next (`Routing::from_publish` builds it for
//! a freshly published message).
//!
//! Where RabbitMQ 3.13 would crash on a client-forged `x-death` entry (a
//! field of the wrong type, an `original-expiration` that is not an
//! integer), the entry is dropped instead, as RabbitMQ drops entries that
//! lack a field; strings read back from `x-death` are kept as bytes (RabbitMQ
//! replaces non-UTF-8 ones with a base64 text when a client republishes the
//! header, but keeps its own history in memory and so never re-reads it).

use bytes::Bytes;

use crate::broker::topology::sender_selected;
use crate::protocol::properties::BasicProperties;
use crate::protocol::types::{FieldTable, FieldValue, LongStr, ShortStr};
use crate::protocol::wire::DecodeError;

#[cfg(test)]
mod tests;

/// Why a message was dead-lettered (`rabbit_dead_letter:reason()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeadLetterReason {
    /// `basic.reject` / `basic.nack` with `requeue=false`.
    Rejected,
    /// Per-message or per-queue TTL ran out.
    Expired,
    /// Dropped from the head of a queue over `x-max-length(-bytes)`.
    Maxlen,
    /// Returned to a quorum queue more often than its delivery limit.
    DeliveryLimit,
}

impl DeadLetterReason {
    /// The wire name, as written in `x-death` and `x-*-death-reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::Rejected => "rejected",
            DeadLetterReason::Expired => "expired",
            DeadLetterReason::Maxlen => "maxlen",
            DeadLetterReason::DeliveryLimit => "delivery_limit",
        }
    }

    /// The reason with this wire name.
    pub fn from_wire(name: &[u8]) -> Option<DeadLetterReason> {
        Some(match name {
            b"rejected" => DeadLetterReason::Rejected,
            b"expired" => DeadLetterReason::Expired,
            b"maxlen" => DeadLetterReason::Maxlen,
            b"delivery_limit" => DeadLetterReason::DeliveryLimit,
            _ => return None,
        })
    }
}

/// How a message was last published: RabbitMQ's exchange (`x`), routing
/// keys (`rk`) and `bcc` annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routing {
    /// The exchange the message was published (or dead-lettered) to.
    pub exchange: ShortStr,
    /// Every key it was routed with: the publish routing key, then the `CC`
    /// keys, then the `BCC` keys (after a dead-lettering: the keys it was
    /// republished with).
    pub routing_keys: Vec<LongStr>,
    /// The `BCC` keys it was first published with. The header is stripped,
    /// but RabbitMQ keeps the keys for as long as the message lives, to
    /// route it with them and to leave them out of `x-death`.
    pub bcc: Vec<LongStr>,
}

impl Routing {
    /// The routing of a message as published with `basic.publish` to
    /// `exchange` with `routing_key` and the headers `headers`, as
    /// `mc_amqpl:message/5` computes it: the routing key, then the long
    /// strings of the first `CC` array, then those of the first `BCC` array
    /// (other element types are skipped; a `CC` or `BCC` that is not an
    /// array makes RabbitMQ refuse the publish, and counts as empty here).
    pub fn from_publish(
        exchange: ShortStr,
        routing_key: &ShortStr,
        headers: Option<&FieldTable>,
    ) -> Routing {
        let cc = header_routes(headers, "CC");
        let bcc = header_routes(headers, "BCC");
        let mut routing_keys = Vec::with_capacity(1 + cc.len() + bcc.len());
        routing_keys.push(routing_key.as_bytes().clone());
        routing_keys.extend(cc);
        routing_keys.extend(bcc.iter().cloned());
        Routing {
            exchange,
            routing_keys,
            bcc,
        }
    }
}

/// The long strings of the first `key` header, if it is an array.
fn header_routes(headers: Option<&FieldTable>, key: &str) -> Vec<LongStr> {
    sender_selected::header_routes(headers, key).unwrap_or_default()
}

/// One entry of the `x-death` history: the deaths of a message in one queue
/// for one reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Death {
    /// The queue the message died in.
    pub queue: LongStr,
    /// The reason's wire name. One of `DeadLetterReason`'s for every entry
    /// the broker writes; a client-supplied entry may carry another.
    pub reason: LongStr,
    /// How many times the message died in this queue for this reason.
    pub count: i64,
    /// When it first died there for that reason, in seconds since the epoch.
    pub time: u64,
    /// The exchange it had been published to when it first died there.
    pub exchange: LongStr,
    /// The routing keys it had been published with (with `CC`, without
    /// `BCC` keys) when it first died there.
    pub routing_keys: Vec<LongStr>,
    /// Its `expiration` property at that death, as a decimal integer.
    pub original_expiration: Option<LongStr>,
}

impl Death {
    /// The entry as `mc_amqpl:death_table/7` writes it, keys in its order.
    pub fn to_table(&self) -> FieldTable {
        let mut entries = Vec::with_capacity(7);
        if let Some(exp) = &self.original_expiration {
            entries.push((
                ShortStr::from_static("original-expiration"),
                FieldValue::LongStr(exp.clone()),
            ));
        }
        entries.extend([
            (ShortStr::from_static("count"), FieldValue::I64(self.count)),
            (
                ShortStr::from_static("reason"),
                FieldValue::LongStr(self.reason.clone()),
            ),
            (
                ShortStr::from_static("queue"),
                FieldValue::LongStr(self.queue.clone()),
            ),
            (
                ShortStr::from_static("time"),
                FieldValue::Timestamp(self.time),
            ),
            (
                ShortStr::from_static("exchange"),
                FieldValue::LongStr(self.exchange.clone()),
            ),
            (
                ShortStr::from_static("routing-keys"),
                FieldValue::Array(
                    self.routing_keys
                        .iter()
                        .map(|k| FieldValue::LongStr(k.clone()))
                        .collect(),
                ),
            ),
        ]);
        FieldTable(entries)
    }

    /// Reads an entry back as `mc_amqpl:recover_deaths/2` does: a table
    /// with `exchange`, `queue`, `routing-keys`, `reason`, `count` and an
    /// integer `time` (any integer type, timestamps included), and optionally
    /// `original-expiration`; other keys are dropped; when a key repeats the
    /// last one counts. `None` for an entry RabbitMQ skips (a field missing,
    /// `time` not an integer) or would crash on (`count` not an integer;
    /// `queue`, `exchange`, `reason`, a routing key or `original-expiration`
    /// not a string; `routing-keys` not an array; `original-expiration` not
    /// an integer).
    pub fn from_table(table: &FieldTable) -> Option<Death> {
        let field = |key: &str| last(&table.0, key);
        let exchange = string(field("exchange")?)?;
        let queue = string(field("queue")?)?;
        let routing_keys = match field("routing-keys")? {
            FieldValue::Array(keys) => keys.iter().map(string).collect::<Option<Vec<_>>>()?,
            _ => return None,
        };
        let reason = string(field("reason")?)?;
        let count = integer(field("count")?)?;
        let time = integer(field("time")?)? as u64;
        let original_expiration = match field("original-expiration") {
            None => None,
            Some(v) => Some(canonical_integer(&string(v)?)?),
        };
        Some(Death {
            queue,
            reason,
            count,
            time,
            exchange,
            routing_keys,
            original_expiration,
        })
    }
}

/// The last value of `key` in a table (`maps:from_list` keeps the last).
fn last<'a>(table: &'a [(ShortStr, FieldValue)], key: &str) -> Option<&'a FieldValue> {
    table
        .iter()
        .rev()
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v)
}

/// A value Erlang sees as a binary: a long string or a byte array.
fn string(value: &FieldValue) -> Option<LongStr> {
    match value {
        FieldValue::LongStr(s) | FieldValue::Bytes(s) => Some(s.clone()),
        _ => None,
    }
}

/// A value Erlang sees as an integer, as the 64 bits RabbitMQ would write
/// back (`long` and `timestamp` keep the low 64 bits of an Erlang integer).
fn integer(value: &FieldValue) -> Option<i64> {
    match *value {
        FieldValue::Timestamp(v) => Some(v as i64),
        ref v => v.as_i64(),
    }
}

/// `integer_to_binary(binary_to_integer(Text))`: the integer `text` holds
/// (an optional sign, then decimal digits) written without sign or leading
/// zeros unless negative. `None` when `text` is no such integer.
fn canonical_integer(text: &[u8]) -> Option<LongStr> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let start = digits.iter().position(|&d| d != b'0');
    let Some(start) = start else {
        return Some(Bytes::from_static(b"0"));
    };
    let mut out = Vec::with_capacity(digits.len() - start + 1);
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[start..]);
    Some(Bytes::from(out))
}

/// Longest per-message TTL RabbitMQ accepts: ten years, in milliseconds
/// (`rabbit_misc:check_expiry/1`).
const MAX_EXPIRATION_MS: u64 = 315_360_000_000;

/// The per-message TTL an `expiration` property holds, as
/// `rabbit_basic:parse_expiration/1` reads it (`string:to_integer`: a sign,
/// digits, nothing after; from 0 to `MAX_EXPIRATION_MS`). RabbitMQ refuses
/// a publish whose `expiration` is anything else, so `None` should not
/// happen for a stored message.
fn parse_expiration(text: &[u8]) -> Option<u64> {
    let canonical = canonical_integer(text)?;
    if canonical.first() == Some(&b'-') || canonical.len() > 12 {
        return None;
    }
    let ms: u64 = std::str::from_utf8(&canonical).ok()?.parse().ok()?;
    (ms <= MAX_EXPIRATION_MS).then_some(ms)
}

/// The `x-death` history in `headers`, most recent first, as
/// `mc_amqpl:headers_to_deaths/2` reads it: `None` when there is no
/// `x-death` or its (last) value is not an array; otherwise its valid
/// entries, which may be none.
pub fn read_history(headers: &FieldTable) -> Option<Vec<Death>> {
    history_in(&headers.0)
}

fn history_in(headers: &[(ShortStr, FieldValue)]) -> Option<Vec<Death>> {
    match last(headers, "x-death")? {
        FieldValue::Array(entries) => Some(
            entries
                .iter()
                .filter_map(|e| match e {
                    FieldValue::Table(t) => Death::from_table(t),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

/// A dead-lettered copy, ready to be routed.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLettered {
    /// The new property flags and list.
    pub raw_properties: Bytes,
    /// Where to republish it: the dead-letter exchange and the routing keys
    /// to route with (the queue's `x-dead-letter-routing-key` alone, or all
    /// the message's keys, `CC` and `BCC` ones included). Carry it with the
    /// copy: a later dead-lettering of the copy starts from it.
    pub routing: Routing,
    /// The `x-death` history written into the properties, the new death
    /// first, for `is_cycle`.
    pub history: Vec<Death>,
}

impl DeadLettered {
    /// Whether the copy routed to `target_queue` must be dropped as part of
    /// a fully automatic dead-letter cycle (see `is_cycle`). RabbitMQ logs
    /// a warning, once per cycle, for each copy it drops.
    pub fn is_cycle(&self, target_queue: &[u8]) -> bool {
        is_cycle(&self.history, target_queue)
    }
}

/// Records the death of a message and computes the copy to republish, as
/// `rabbit_dead_letter:publish/5` and `mc:record_death/4` do.
///
/// `raw_properties` are the message's properties as they are stored (with
/// the `BCC` header still in them: its first occurrence is stripped here,
/// as RabbitMQ strips it on publish); `routing` is how the message was
/// last published; `queue` is the queue it dies in, at `now` (seconds
/// since the epoch), for `reason`; `dead_letter_exchange` and
/// `dead_letter_routing_key` are that queue's `x-dead-letter-exchange` and
/// `x-dead-letter-routing-key`.
///
/// The properties get, as RabbitMQ 3.13 writes them:
/// * `x-death`: the history, most recent first. The death is counted in
///   the entry for (`queue`, `reason`), which moves to the front, or gets a
///   new entry there. A new entry holds `count` 1, the time, the
///   exchange and the routing keys of `routing` (less the `BCC` keys) and,
///   if the message had an `expiration`, that as `original-expiration`.
/// * `x-first-death-reason`, `-queue`, `-exchange`, only when the message
///   had no `x-death` array: set to this death, replacing any such header.
/// * `x-last-death-reason`, `-queue`, `-exchange`: this death.
/// * no `expiration` and no `BCC`; `CC` is kept (RabbitMQ 3.10 dropped it
///   when `x-dead-letter-routing-key` was set; 3.13 keeps it).
///
/// The headers come out sorted by name (byte order) with one entry per
/// name, as `mc_amqpl:protocol_state/2` leaves them.
///
/// Fails only when `raw_properties` do not decode.
pub fn dead_letter(
    raw_properties: Bytes,
    routing: &Routing,
    queue: &ShortStr,
    reason: DeadLetterReason,
    now: u64,
    dead_letter_exchange: &ShortStr,
    dead_letter_routing_key: Option<&ShortStr>,
) -> Result<DeadLettered, DecodeError> {
    let mut props = BasicProperties::decode(raw_properties)?;
    let mut headers = props.headers.take().map(|t| t.0).unwrap_or_default();
    if let Some(i) = headers.iter().position(|(k, _)| k == "BCC") {
        headers.remove(i);
    }

    let queue_name = queue.as_bytes();
    let reason_name = Bytes::from_static(reason.as_str().as_bytes());
    let exchange = routing.exchange.as_bytes();

    let earlier = history_in(&headers);
    let first_death = earlier.is_none();
    let mut history = earlier.unwrap_or_default();
    match history
        .iter()
        .position(|d| d.queue == queue_name && d.reason == reason_name)
    {
        Some(i) => {
            let mut death = history.remove(i);
            death.count = death.count.wrapping_add(1);
            history.insert(0, death);
        }
        None => {
            let original_expiration = props
                .expiration
                .as_ref()
                .and_then(|e| parse_expiration(e.as_bytes()))
                .map(|ms| Bytes::from(ms.to_string()));
            history.insert(
                0,
                Death {
                    queue: queue_name.clone(),
                    reason: reason_name.clone(),
                    count: 1,
                    time: now,
                    exchange: exchange.clone(),
                    routing_keys: subtract(&routing.routing_keys, &routing.bcc),
                    original_expiration,
                },
            );
        }
    }

    // `rabbit_misc:set_table_value/4`: replace the first `x-death` or add one.
    let x_death = FieldValue::Array(
        history
            .iter()
            .map(|d| FieldValue::Table(d.to_table()))
            .collect(),
    );
    match headers.iter_mut().find(|(k, _)| k == "x-death") {
        Some(entry) => entry.1 = x_death,
        None => headers.push((ShortStr::from_static("x-death"), x_death)),
    }

    // The annotations `protocol_state/2` turns into headers go first, so
    // that they win over headers of the same name.
    let mut annotations = Vec::with_capacity(6);
    let longstr = |b: &Bytes| FieldValue::LongStr(b.clone());
    if first_death {
        annotations.extend([
            (
                ShortStr::from_static("x-first-death-reason"),
                longstr(&reason_name),
            ),
            (
                ShortStr::from_static("x-first-death-queue"),
                longstr(queue_name),
            ),
            (
                ShortStr::from_static("x-first-death-exchange"),
                longstr(exchange),
            ),
        ]);
    }
    annotations.extend([
        (
            ShortStr::from_static("x-last-death-reason"),
            longstr(&reason_name),
        ),
        (
            ShortStr::from_static("x-last-death-queue"),
            longstr(queue_name),
        ),
        (
            ShortStr::from_static("x-last-death-exchange"),
            longstr(exchange),
        ),
    ]);
    annotations.append(&mut headers);
    // `lists:usort/2` on the names: sorted, the first of equal names kept.
    annotations.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    annotations.dedup_by(|later, earlier| later.0 == earlier.0);

    props.headers = Some(FieldTable(annotations));
    props.expiration = None;

    let routing_keys = match dead_letter_routing_key {
        Some(key) => vec![key.as_bytes().clone()],
        None => routing.routing_keys.clone(),
    };
    Ok(DeadLettered {
        raw_properties: props.to_bytes(),
        routing: Routing {
            exchange: dead_letter_exchange.clone(),
            routing_keys,
            bcc: routing.bcc.clone(),
        },
        history,
    })
}

/// Erlang's `A -- B`: `a` less the first occurrence of each element of `b`.
fn subtract(a: &[LongStr], b: &[LongStr]) -> Vec<LongStr> {
    let mut out = a.to_vec();
    for x in b {
        if let Some(i) = out.iter().position(|y| y == x) {
            out.remove(i);
        }
    }
    out
}

/// Whether a copy of a message with the `x-death` history `history` (most
/// recent first, the death that is being dead-lettered included) must be
/// dropped rather than delivered to `target_queue`: `mc:is_cycle_v2/2`.
/// It must when the message already died in `target_queue` and neither
/// that death nor any later one was a rejection, the cycle being then
/// "fully automatic". A message dead-lettered for `rejected` is never
/// dropped (its own death, at the front, breaks every cycle;
/// `rabbit_dead_letter:detect_cycles/3` skips the check for it).
pub fn is_cycle(history: &[Death], target_queue: &[u8]) -> bool {
    match history.iter().position(|d| d.queue == target_queue) {
        None => false,
        Some(i) => history[..=i]
            .iter()
            .all(|d| d.reason != DeadLetterReason::Rejected.as_str().as_bytes()),
    }
}

/// The queue names of a history, most recent first, for the warning
/// RabbitMQ logs (once per cycle) when it drops a copy: the target queue
/// followed by these (`mc:death_queue_names/1`).
pub fn history_queue_names(history: &[Death]) -> Vec<LongStr> {
    history.iter().map(|d| d.queue.clone()).collect()
}
