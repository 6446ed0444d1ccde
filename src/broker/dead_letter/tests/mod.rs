//! Tests of dead-lettering: the `x-death` header and its companions as
//! RabbitMQ 3.13 writes them, checked field by field and type by type
//! against headers probed from RabbitMQ 3.10.8 (where 3.13's source differs,
//! the test says so), routing keys, cycle detection, and a property test
//! that arbitrary client-supplied headers never make it panic.

use super::*;
use proptest::prelude::*;

const T0: u64 = 1_796_016_051;

fn s(v: &str) -> FieldValue {
    FieldValue::LongStr(Bytes::copy_from_slice(v.as_bytes()))
}

fn b(v: &str) -> LongStr {
    Bytes::copy_from_slice(v.as_bytes())
}

fn strs(v: &[&str]) -> FieldValue {
    FieldValue::Array(v.iter().map(|x| s(x)).collect())
}

fn table(entries: Vec<(&str, FieldValue)>) -> FieldTable {
    FieldTable(
        entries
            .into_iter()
            .map(|(k, v)| (ShortStr::from(k), v))
            .collect(),
    )
}

fn props(headers: Option<FieldTable>, expiration: Option<&str>) -> Bytes {
    BasicProperties {
        headers,
        expiration: expiration.map(ShortStr::from),
        ..Default::default()
    }
    .to_bytes()
}

fn decode(raw: &Bytes) -> BasicProperties {
    BasicProperties::decode(raw.clone()).expect("output decodes")
}

fn headers_of(raw: &Bytes) -> FieldTable {
    decode(raw).headers.expect("headers")
}

fn names(t: &FieldTable) -> Vec<&str> {
    t.iter().map(|(k, _)| k.as_str()).collect()
}

/// One `x-death` entry as 3.13's `death_table/7` writes it.
fn entry(
    exp: Option<&str>,
    count: i64,
    reason: &str,
    queue: &str,
    time: u64,
    exchange: &str,
    keys: &[&str],
) -> FieldValue {
    let mut e = Vec::new();
    if let Some(exp) = exp {
        e.push(("original-expiration", s(exp)));
    }
    e.extend([
        ("count", FieldValue::I64(count)),
        ("reason", s(reason)),
        ("queue", s(queue)),
        ("time", FieldValue::Timestamp(time)),
        ("exchange", s(exchange)),
        ("routing-keys", strs(keys)),
    ]);
    FieldValue::Table(table(e))
}

fn die(
    raw: Bytes,
    routing: &Routing,
    queue: &str,
    reason: DeadLetterReason,
    now: u64,
    dlx: &str,
    dlrk: Option<&str>,
) -> DeadLettered {
    let dlrk = dlrk.map(ShortStr::from);
    dead_letter(
        raw,
        routing,
        &ShortStr::from(queue),
        reason,
        now,
        &ShortStr::from(dlx),
        dlrk.as_ref(),
    )
    .expect("dead_letter")
}

mod headers;
mod history;
mod properties;
