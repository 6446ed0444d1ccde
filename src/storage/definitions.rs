//! Durable definitions: the durable exchanges, durable queues (with their
//! owner shard) and the bindings between durable entities, kept in one file
//! `<data_dir>/definitions` that the metadata leader rewrites atomically
//! (write a temporary file, fsync, rename, fsync the directory) before it
//! answers a change that touches durable metadata. Every shard reads it at
//! start, before serving, to rebuild its copy of the metadata.
//!
//! The file is an AMQP field table (the project's own codec) behind a magic
//! and a CRC32C, so a torn write is detected rather than half-read.

use crate::broker::exchange::{BindingDef, Destination, ExchangeDef, ExchangeKind};
use crate::protocol::types::{FieldTable, FieldValue, ShortStr};
use crate::protocol::wire::{get_table, put_table};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"WRNDEF01";
const FILE_NAME: &str = "definitions";

/// A durable queue as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueDef {
    pub name: ShortStr,
    pub owner: u16,
    pub auto_delete: bool,
    pub arguments: FieldTable,
}

/// Everything durable about the topology.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Definitions {
    /// The shard count the owners were assigned under.
    pub shards: u16,
    pub exchanges: Vec<ExchangeDef>,
    pub queues: Vec<QueueDef>,
    pub bindings: Vec<BindingDef>,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

fn s(v: &str) -> ShortStr {
    ShortStr::try_from_string(v.to_string()).unwrap_or_default()
}

fn text(v: &ShortStr) -> FieldValue {
    FieldValue::LongStr(v.as_bytes().clone())
}

fn entry(pairs: Vec<(&'static str, FieldValue)>) -> FieldValue {
    FieldValue::Table(FieldTable(
        pairs
            .into_iter()
            .map(|(k, v)| (ShortStr::from_static(k), v))
            .collect(),
    ))
}

impl Definitions {
    pub fn encode(&self) -> Bytes {
        let exchanges = self
            .exchanges
            .iter()
            .map(|x| {
                entry(vec![
                    ("name", text(&x.name)),
                    (
                        "type",
                        FieldValue::LongStr(Bytes::from_static(x.kind.as_str().as_bytes())),
                    ),
                    ("auto_delete", FieldValue::Bool(x.auto_delete)),
                    ("internal", FieldValue::Bool(x.internal)),
                    ("arguments", FieldValue::Table(x.arguments.clone())),
                ])
            })
            .collect();
        let queues = self
            .queues
            .iter()
            .map(|q| {
                entry(vec![
                    ("name", text(&q.name)),
                    ("owner", FieldValue::I64(q.owner as i64)),
                    ("auto_delete", FieldValue::Bool(q.auto_delete)),
                    ("arguments", FieldValue::Table(q.arguments.clone())),
                ])
            })
            .collect();
        let bindings = self
            .bindings
            .iter()
            .map(|b| {
                let (kind, dest) = match &b.destination {
                    Destination::Queue(q) => ("queue", q),
                    Destination::Exchange(x) => ("exchange", x),
                };
                entry(vec![
                    ("source", text(&b.source)),
                    (
                        "destination_type",
                        FieldValue::LongStr(Bytes::from_static(kind.as_bytes())),
                    ),
                    ("destination", text(dest)),
                    ("routing_key", text(&b.routing_key)),
                    ("arguments", FieldValue::Table(b.arguments.clone())),
                ])
            })
            .collect();
        let table = FieldTable(vec![
            (
                ShortStr::from_static("shards"),
                FieldValue::I64(self.shards as i64),
            ),
            (
                ShortStr::from_static("exchanges"),
                FieldValue::Array(exchanges),
            ),
            (ShortStr::from_static("queues"), FieldValue::Array(queues)),
            (
                ShortStr::from_static("bindings"),
                FieldValue::Array(bindings),
            ),
        ]);
        let mut body = BytesMut::new();
        put_table(&mut body, &table);
        let mut out = BytesMut::with_capacity(body.len() + 12);
        out.put_slice(MAGIC);
        out.put_u32_le(crc32c::crc32c(&body));
        out.put_slice(&body);
        out.freeze()
    }

    pub fn decode(mut raw: Bytes) -> io::Result<Definitions> {
        let bad =
            |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("definitions: {what}"));
        if raw.len() < 12 || &raw[..8] != MAGIC {
            return Err(bad("bad magic"));
        }
        raw.advance(8);
        let crc = raw.get_u32_le();
        if crc32c::crc32c(&raw) != crc {
            return Err(bad("checksum mismatch"));
        }
        let table = get_table(&mut raw).map_err(|e| bad(&e.to_string()))?;
        let items = |key: &str| -> Vec<FieldTable> {
            match table.get(key) {
                Some(FieldValue::Array(a)) => a
                    .iter()
                    .filter_map(|v| match v {
                        FieldValue::Table(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        let str_of = |t: &FieldTable, k: &str| s(t.get(k).and_then(|v| v.as_str()).unwrap_or(""));
        let bool_of = |t: &FieldTable, k: &str| t.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
        let args_of = |t: &FieldTable| match t.get("arguments") {
            Some(FieldValue::Table(a)) => a.clone(),
            _ => FieldTable::new(),
        };
        let shards = table.get("shards").and_then(|v| v.as_i64()).unwrap_or(0) as u16;
        let mut exchanges = Vec::new();
        for t in items("exchanges") {
            let kind = t
                .get("type")
                .and_then(|v| v.as_str())
                .and_then(ExchangeKind::parse);
            let Some(kind) = kind else {
                return Err(bad("exchange with unknown type"));
            };
            exchanges.push(ExchangeDef {
                name: str_of(&t, "name"),
                kind,
                durable: true,
                auto_delete: bool_of(&t, "auto_delete"),
                internal: bool_of(&t, "internal"),
                arguments: args_of(&t),
            });
        }
        let queues = items("queues")
            .iter()
            .map(|t| QueueDef {
                name: str_of(t, "name"),
                owner: t.get("owner").and_then(|v| v.as_i64()).unwrap_or(0) as u16,
                auto_delete: bool_of(t, "auto_delete"),
                arguments: args_of(t),
            })
            .collect();
        let bindings = items("bindings")
            .iter()
            .map(|t| {
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
            })
            .collect();
        Ok(Definitions {
            shards,
            exchanges,
            queues,
            bindings,
        })
    }

    /// Reads the file; a missing file is an empty set of definitions.
    pub fn load(data_dir: &Path) -> io::Result<Option<Definitions>> {
        match std::fs::read(path(data_dir)) {
            Ok(raw) => Definitions::decode(Bytes::from(raw)).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the file atomically and durably.
    pub fn store(&self, data_dir: &Path) -> io::Result<()> {
        let tmp = data_dir.join(format!("{FILE_NAME}.tmp"));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&self.encode())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path(data_dir))?;
        std::fs::File::open(data_dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Definitions {
        let mut args = FieldTable::new();
        args.insert(
            ShortStr::from("x-queue-type"),
            FieldValue::LongStr(Bytes::from_static(b"quorum")),
        );
        Definitions {
            shards: 2,
            exchanges: vec![ExchangeDef {
                name: ShortStr::from("logs"),
                kind: ExchangeKind::Topic,
                durable: true,
                auto_delete: false,
                internal: true,
                arguments: FieldTable::new(),
            }],
            queues: vec![QueueDef {
                name: ShortStr::from("tasks"),
                owner: 1,
                auto_delete: false,
                arguments: args,
            }],
            bindings: vec![
                BindingDef {
                    source: ShortStr::from("logs"),
                    destination: Destination::Queue(ShortStr::from("tasks")),
                    routing_key: ShortStr::from("a.#"),
                    arguments: FieldTable::new(),
                },
                BindingDef {
                    source: ShortStr::from("amq.topic"),
                    destination: Destination::Exchange(ShortStr::from("logs")),
                    routing_key: ShortStr::from("*"),
                    arguments: FieldTable::new(),
                },
            ],
        }
    }

    #[test]
    fn round_trips() {
        let d = sample();
        assert_eq!(Definitions::decode(d.encode()).unwrap(), d);
    }

    #[test]
    fn corruption_is_detected() {
        let mut raw = d_bytes();
        let last = raw.len() - 1;
        raw[last] ^= 0xff;
        assert!(Definitions::decode(Bytes::from(raw)).is_err());
        assert!(Definitions::decode(Bytes::from_static(b"short")).is_err());
    }

    fn d_bytes() -> Vec<u8> {
        sample().encode().to_vec()
    }

    #[test]
    fn store_and_load() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Definitions::load(dir.path()).unwrap(), None);
        sample().store(dir.path()).unwrap();
        assert_eq!(Definitions::load(dir.path()).unwrap(), Some(sample()));
    }
}
