//! The snapshot file's bytes: the definitions as one field table behind a
//! magic and a CRC32C, naming the journal generation that continues it.

use super::fields::{
    bad, binding_fields, binding_from, entry, exchange_fields, exchange_from, limits_fields,
    limits_from, policy_fields, policy_from, queue_fields, queue_from, str_of, tables, text,
};
use super::{Definitions, VhostDef};
use crate::protocol::types::{FieldTable, FieldValue, ShortStr};
use crate::protocol::wire::{get_table, put_table};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::io;

const MAGIC: &[u8; 8] = b"WRNDEF01";

impl Definitions {
    /// The snapshot file's bytes (generation 0).
    pub fn encode(&self) -> Bytes {
        self.encode_snapshot(0)
    }

    /// The snapshot file's bytes, naming the journal generation that
    /// continues it.
    pub fn encode_snapshot(&self, generation: u64) -> Bytes {
        let mut fields = vec![
            (
                ShortStr::from_static("shards"),
                FieldValue::I64(self.shards as i64),
            ),
            (
                ShortStr::from_static("generation"),
                FieldValue::I64(generation as i64),
            ),
        ];
        fields.extend(self.vhost_fields());
        let vhosts = self
            .vhosts
            .iter()
            .map(|v| {
                let mut t = vec![(ShortStr::from_static("name"), text(&v.name))];
                t.extend(v.defs.vhost_fields());
                FieldValue::Table(FieldTable(t))
            })
            .collect();
        fields.push((ShortStr::from_static("vhosts"), FieldValue::Array(vhosts)));
        fields.extend(super::auth::snapshot_fields(&self.auth));
        if self.default_vhost_deleted {
            fields.push((
                ShortStr::from_static("default_vhost_deleted"),
                FieldValue::Bool(true),
            ));
        }
        let table = FieldTable(fields);
        let mut body = BytesMut::new();
        put_table(&mut body, &table);
        let mut out = BytesMut::with_capacity(body.len() + 12);
        out.put_slice(MAGIC);
        out.put_u32_le(crc32c::crc32c(&body));
        out.put_slice(&body);
        out.freeze()
    }

    /// One vhost's part of the snapshot table.
    fn vhost_fields(&self) -> Vec<(ShortStr, FieldValue)> {
        let exchanges = self
            .exchanges
            .iter()
            .map(|x| entry(exchange_fields(x)))
            .collect();
        let queues = self.queues.iter().map(|q| entry(queue_fields(q))).collect();
        let bindings = self
            .bindings
            .iter()
            .map(|b| entry(binding_fields(b)))
            .collect();
        let mut fields = vec![
            (
                ShortStr::from_static("exchanges"),
                FieldValue::Array(exchanges),
            ),
            (ShortStr::from_static("queues"), FieldValue::Array(queues)),
            (
                ShortStr::from_static("bindings"),
                FieldValue::Array(bindings),
            ),
            (
                ShortStr::from_static("policies"),
                FieldValue::Array(
                    self.policies
                        .iter()
                        .map(|p| entry(policy_fields(p)))
                        .collect(),
                ),
            ),
        ];
        fields.extend(limits_fields(&self.limits));
        fields
    }

    /// One vhost's definitions from its part of the snapshot table.
    fn vhost_from(table: &FieldTable) -> io::Result<Definitions> {
        let exchanges = tables(table.get("exchanges"))
            .map(exchange_from)
            .collect::<io::Result<Vec<_>>>()?;
        let queues = tables(table.get("queues")).map(queue_from).collect();
        let bindings = tables(table.get("bindings")).map(binding_from).collect();
        let policies = tables(table.get("policies")).map(policy_from).collect();
        Ok(Definitions {
            shards: 0,
            exchanges,
            queues,
            bindings,
            policies,
            limits: limits_from(table),
            vhosts: Vec::new(),
            auth: None,
            default_vhost_deleted: false,
        })
    }

    pub fn decode(raw: Bytes) -> io::Result<Definitions> {
        Definitions::decode_snapshot(raw).map(|(d, _)| d)
    }

    /// A snapshot file's definitions and journal generation (0 in files
    /// written before the journal existed).
    pub fn decode_snapshot(mut raw: Bytes) -> io::Result<(Definitions, u64)> {
        if raw.len() < 12 || &raw[..8] != MAGIC {
            return Err(bad("bad magic"));
        }
        raw.advance(8);
        let crc = raw.get_u32_le();
        if crc32c::crc32c(&raw) != crc {
            return Err(bad("checksum mismatch"));
        }
        let table = get_table(&mut raw).map_err(|e| bad(&e.to_string()))?;
        let shards = table.get("shards").and_then(|v| v.as_i64()).unwrap_or(0) as u16;
        let generation = table
            .get("generation")
            .and_then(|v| v.as_i64())
            .unwrap_or(0) as u64;
        let mut defs = Definitions::vhost_from(&table)?;
        defs.shards = shards;
        defs.auth = super::auth::from_snapshot(&table);
        defs.default_vhost_deleted = matches!(
            table.get("default_vhost_deleted"),
            Some(FieldValue::Bool(true))
        );
        for v in tables(table.get("vhosts")) {
            defs.vhosts.push(VhostDef {
                name: str_of(v, "name"),
                defs: Definitions::vhost_from(v)?,
            });
        }
        Ok((defs, generation))
    }
}
