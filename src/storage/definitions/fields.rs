//! Each durable definition (exchange, queue, binding) as an AMQP field
//! table, and back: the form both the snapshot and the journal store. Also
//! binding arguments in their canonical (sorted) form.

use crate::broker::exchange::{BindingDef, Destination, ExchangeDef, ExchangeKind};
use crate::protocol::types::{FieldTable, FieldValue, ShortStr};
use crate::protocol::wire::put_table;
use bytes::{Bytes, BytesMut};
use std::io;

use super::{PolicyDef, QueueDef};
use crate::broker::vhost::VhostLimits;

fn s(v: &str) -> ShortStr {
    ShortStr::try_from_string(v.to_string()).unwrap_or_default()
}

pub(super) fn text(v: &ShortStr) -> FieldValue {
    FieldValue::LongStr(v.as_bytes().clone())
}

pub(super) fn word(v: &'static str) -> FieldValue {
    FieldValue::LongStr(Bytes::from_static(v.as_bytes()))
}

pub(super) fn entry(pairs: Vec<(&'static str, FieldValue)>) -> FieldValue {
    FieldValue::Table(FieldTable(
        pairs
            .into_iter()
            .map(|(k, v)| (ShortStr::from_static(k), v))
            .collect(),
    ))
}

pub(super) fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("definitions: {what}"))
}

pub(super) fn exchange_fields(x: &ExchangeDef) -> Vec<(&'static str, FieldValue)> {
    vec![
        ("name", text(&x.name)),
        ("type", word(x.kind.as_str())),
        ("auto_delete", FieldValue::Bool(x.auto_delete)),
        ("internal", FieldValue::Bool(x.internal)),
        ("arguments", FieldValue::Table(x.arguments.clone())),
    ]
}

pub(super) fn queue_fields(q: &QueueDef) -> Vec<(&'static str, FieldValue)> {
    vec![
        ("name", text(&q.name)),
        ("owner", FieldValue::I64(q.owner as i64)),
        ("auto_delete", FieldValue::Bool(q.auto_delete)),
        ("arguments", FieldValue::Table(q.arguments.clone())),
    ]
}

pub(super) fn binding_fields(b: &BindingDef) -> Vec<(&'static str, FieldValue)> {
    let (kind, dest) = match &b.destination {
        Destination::Queue(q) => ("queue", q),
        Destination::Exchange(x) => ("exchange", x),
    };
    vec![
        ("source", text(&b.source)),
        ("destination_type", word(kind)),
        ("destination", text(dest)),
        ("routing_key", text(&b.routing_key)),
        ("arguments", FieldValue::Table(b.arguments.clone())),
    ]
}

pub(super) fn str_of(t: &FieldTable, k: &str) -> ShortStr {
    s(t.get(k).and_then(|v| v.as_str()).unwrap_or(""))
}

fn bool_of(t: &FieldTable, k: &str) -> bool {
    t.get(k).and_then(|v| v.as_bool()).unwrap_or(false)
}

fn args_of(t: &FieldTable) -> FieldTable {
    match t.get("arguments") {
        Some(FieldValue::Table(a)) => a.clone(),
        _ => FieldTable::new(),
    }
}

pub(super) fn exchange_from(t: &FieldTable) -> io::Result<ExchangeDef> {
    let kind = t
        .get("type")
        .and_then(|v| v.as_str())
        .and_then(ExchangeKind::parse)
        .ok_or_else(|| bad("exchange with unknown type"))?;
    Ok(ExchangeDef {
        name: str_of(t, "name"),
        kind,
        durable: true,
        auto_delete: bool_of(t, "auto_delete"),
        internal: bool_of(t, "internal"),
        arguments: args_of(t),
    })
}

pub(super) fn queue_from(t: &FieldTable) -> QueueDef {
    QueueDef {
        name: str_of(t, "name"),
        owner: t.get("owner").and_then(|v| v.as_i64()).unwrap_or(0) as u16,
        auto_delete: bool_of(t, "auto_delete"),
        arguments: args_of(t),
    }
}

pub(super) fn binding_from(t: &FieldTable) -> BindingDef {
    let dest = str_of(t, "destination");
    BindingDef {
        source: str_of(t, "source"),
        destination: match t.get("destination_type").and_then(|v| v.as_str()) {
            Some("exchange") => Destination::Exchange(dest),
            _ => Destination::Queue(dest),
        },
        routing_key: str_of(t, "routing_key"),
        arguments: args_of(t),
    }
}

pub(super) fn tables(v: Option<&FieldValue>) -> impl Iterator<Item = &FieldTable> {
    let items: &[FieldValue] = match v {
        Some(FieldValue::Array(a)) => a,
        _ => &[],
    };
    items.iter().filter_map(|v| match v {
        FieldValue::Table(t) => Some(t),
        _ => None,
    })
}

/// Binding arguments in the form the topology stores and compares them:
/// stably sorted by key.
pub(super) fn sorted_args(args: &FieldTable) -> FieldTable {
    let mut sorted = args.clone();
    sorted.0.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    sorted
}

pub(super) fn args_key(args: &FieldTable) -> Vec<u8> {
    let mut b = BytesMut::new();
    put_table(&mut b, args);
    b.to_vec()
}

pub(super) fn long(v: &str) -> FieldValue {
    FieldValue::LongStr(Bytes::from(v.to_string()))
}

pub(super) fn policy_fields(p: &PolicyDef) -> Vec<(&'static str, FieldValue)> {
    vec![
        ("name", long(&p.name)),
        ("pattern", long(&p.pattern)),
        ("apply_to", long(&p.apply_to)),
        ("priority", FieldValue::I64(p.priority)),
        ("definition", FieldValue::Table(p.definition.clone())),
    ]
}

pub(super) fn policy_from(t: &FieldTable) -> PolicyDef {
    let string = |k: &str| t.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    PolicyDef {
        name: string("name"),
        pattern: string("pattern"),
        apply_to: string("apply_to"),
        priority: t.get("priority").and_then(|v| v.as_i64()).unwrap_or(0),
        definition: match t.get("definition") {
            Some(FieldValue::Table(d)) => d.clone(),
            _ => FieldTable::new(),
        },
    }
}

/// A vhost's limits as fields (only the limits that are set).
pub(super) fn limits_fields(l: &VhostLimits) -> Vec<(ShortStr, FieldValue)> {
    let mut out = Vec::new();
    if let Some(n) = l.max_connections {
        out.push((
            ShortStr::from_static("max_connections"),
            FieldValue::I64(n as i64),
        ));
    }
    if let Some(n) = l.max_queues {
        out.push((
            ShortStr::from_static("max_queues"),
            FieldValue::I64(n as i64),
        ));
    }
    out
}

pub(super) fn limits_from(t: &FieldTable) -> VhostLimits {
    let limit = |k: &str| {
        t.get(k)
            .and_then(|v| v.as_i64())
            .and_then(|n| u32::try_from(n).ok())
    };
    VhostLimits {
        max_connections: limit("max_connections"),
        max_queues: limit("max_queues"),
    }
}
