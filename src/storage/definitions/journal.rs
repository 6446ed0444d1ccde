//! The journal file's bytes: its header (magic, generation, CRC32C), one
//! framed entry per durable change set, and the scan that reads them back
//! up to a torn tail.

use super::fields::{
    bad, binding_fields, binding_from, entry, exchange_fields, exchange_from, limits_fields,
    limits_from, long, policy_fields, policy_from, queue_fields, queue_from, str_of, tables, text,
    word,
};
use super::Change;
use crate::protocol::types::{FieldTable, FieldValue, ShortStr};
use crate::protocol::wire::{get_table, put_table};
use bytes::{Bytes, BytesMut};
use std::io;

const JOURNAL_MAGIC: &[u8; 8] = b"WRNDJRN1";
/// Journal header: magic, generation (u64 LE), CRC32C of both (u32 LE).
pub const JOURNAL_HEADER_LEN: usize = 20;
/// Entry frame: payload length (u32 LE), CRC32C of length and payload.
pub(super) const ENTRY_HEADER_LEN: usize = 8;
/// No single entry is this large; a length beyond it is a torn frame.
const MAX_ENTRY: usize = 64 << 20;

/// A journal file's header for `generation`.
pub fn journal_header(generation: u64) -> [u8; JOURNAL_HEADER_LEN] {
    let mut h = [0u8; JOURNAL_HEADER_LEN];
    h[..8].copy_from_slice(JOURNAL_MAGIC);
    h[8..16].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32c::crc32c(&h[..16]);
    h[16..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The key naming the vhost of an `In` change (not `vhost`: a permission
/// change has a field of that name).
const IN_VHOST: &str = "in_vhost";

fn change_table(c: &Change) -> FieldValue {
    if let Change::In(vhost, inner) = c {
        let FieldValue::Table(mut t) = change_table(inner) else {
            unreachable!("change_table makes tables");
        };
        t.0.push((ShortStr::from_static(IN_VHOST), text(vhost)));
        return FieldValue::Table(t);
    }
    let (op, mut fields) = match c {
        Change::Vhost { name, limits } => {
            let FieldValue::Table(mut t) = entry(vec![("op", word("vhost")), ("name", text(name))])
            else {
                unreachable!("entry makes tables");
            };
            t.0.extend(limits_fields(limits));
            return FieldValue::Table(t);
        }
        Change::VhostGone(n) => ("vhost_gone", vec![("name", text(n))]),
        Change::In(..) => unreachable!("handled above"),
        Change::Queue(q) => ("queue", queue_fields(q)),
        Change::QueueGone(n) => ("queue_gone", vec![("name", text(n))]),
        Change::Exchange(x) => ("exchange", exchange_fields(x)),
        Change::ExchangeGone(n) => ("exchange_gone", vec![("name", text(n))]),
        Change::Bind(b) => ("bind", binding_fields(b)),
        Change::Unbind(b) => ("unbind", binding_fields(b)),
        Change::Policy(p) => ("policy", policy_fields(p)),
        Change::PolicyGone(n) => ("policy_gone", vec![("name", long(n))]),
        Change::Auth(a) => super::auth::change_fields(a),
    };
    fields.insert(0, ("op", word(op)));
    entry(fields)
}

fn change_from(t: &FieldTable) -> io::Result<Change> {
    if t.get(IN_VHOST).is_some() {
        let mut inner = t.clone();
        inner.0.retain(|(k, _)| k.as_str() != IN_VHOST);
        let inner = change_from(&inner)?;
        if matches!(
            inner,
            Change::Vhost { .. } | Change::VhostGone(_) | Change::Auth(_)
        ) {
            return Err(bad("journal entry: a vhost or auth change inside a vhost"));
        }
        return Ok(Change::In(str_of(t, IN_VHOST), Box::new(inner)));
    }
    Ok(match t.get("op").and_then(|v| v.as_str()) {
        Some("vhost") => Change::Vhost {
            name: str_of(t, "name"),
            limits: limits_from(t),
        },
        Some("vhost_gone") => Change::VhostGone(str_of(t, "name")),
        Some("queue") => Change::Queue(queue_from(t)),
        Some("queue_gone") => Change::QueueGone(str_of(t, "name")),
        Some("exchange") => Change::Exchange(exchange_from(t)?),
        Some("exchange_gone") => Change::ExchangeGone(str_of(t, "name")),
        Some("bind") => Change::Bind(binding_from(t)),
        Some("unbind") => Change::Unbind(binding_from(t)),
        Some("policy") => Change::Policy(policy_from(t)),
        Some("policy_gone") => Change::PolicyGone(policy_from(t).name),
        Some(op) => match super::auth::change_from(op, t) {
            Some(a) => Change::Auth(a),
            None => return Err(bad(&format!("journal entry with unknown change {op:?}"))),
        },
        None => return Err(bad("journal entry without an op")),
    })
}

/// Appends one framed journal entry holding `changes` to `out`.
pub fn encode_entry(changes: &[Change], out: &mut Vec<u8>) {
    let table = FieldTable(vec![(
        ShortStr::from_static("changes"),
        FieldValue::Array(changes.iter().map(change_table).collect()),
    )]);
    let mut payload = BytesMut::new();
    put_table(&mut payload, &table);
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = crc32c::crc32c(&len);
    crc = crc32c::crc32c_append(crc, &payload);
    out.reserve(ENTRY_HEADER_LEN + payload.len());
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&payload);
}

/// A journal file, parsed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JournalScan {
    /// The header's generation; `None` if the header is missing or torn.
    pub generation: Option<u64>,
    /// The good entries, in order.
    pub entries: Vec<Vec<Change>>,
    /// Bytes up to the end of the last good entry.
    pub valid_len: usize,
    /// Bytes after it (a torn tail).
    pub torn_bytes: usize,
}

/// Parses a journal: the header, then entries up to the first one that is
/// cut short, has an impossible length or fails its checksum. Errors only
/// for an entry that passes its checksum but cannot be understood.
pub fn scan_journal(raw: &[u8]) -> io::Result<JournalScan> {
    let mut scan = JournalScan::default();
    if raw.len() < JOURNAL_HEADER_LEN
        || &raw[..8] != JOURNAL_MAGIC
        || crc32c::crc32c(&raw[..16]).to_le_bytes() != raw[16..20]
    {
        scan.torn_bytes = raw.len();
        return Ok(scan);
    }
    scan.generation = Some(u64::from_le_bytes(raw[8..16].try_into().expect("8 bytes")));
    let mut at = JOURNAL_HEADER_LEN;
    while raw.len() - at >= ENTRY_HEADER_LEN {
        let len_bytes: [u8; 4] = raw[at..at + 4].try_into().expect("4 bytes");
        let len = u32::from_le_bytes(len_bytes) as usize;
        let crc = u32::from_le_bytes(raw[at + 4..at + 8].try_into().expect("4 bytes"));
        let start = at + ENTRY_HEADER_LEN;
        if len == 0 || len > MAX_ENTRY || raw.len() - start < len {
            break;
        }
        let payload = &raw[start..start + len];
        if crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload) != crc {
            break;
        }
        let mut body = Bytes::copy_from_slice(payload);
        let table = get_table(&mut body).map_err(|e| bad(&format!("journal entry: {e}")))?;
        let changes = tables(table.get("changes"))
            .map(change_from)
            .collect::<io::Result<Vec<_>>>()?;
        scan.entries.push(changes);
        at = start + len;
    }
    scan.valid_len = at;
    scan.torn_bytes = raw.len() - at;
    Ok(scan)
}
