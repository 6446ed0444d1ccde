//! Durable definitions: the durable exchanges, durable queues (with their
//! owner shard) and the bindings between durable entities. Every shard reads
//! them at start, before serving, to rebuild its copy of the metadata; the
//! metadata leader (shard 0) writes them.
//!
//! They live in two files of the data dir:
//!
//! - `definitions`, a snapshot: an AMQP field table (the project's own
//!   codec) behind a magic and a CRC32C, replaced atomically (write a
//!   temporary file, fdatasync, rename, fsync the directory). It records the
//!   *generation* of the journal that continues it.
//! - `definitions.journal`, an append-only journal: a header (magic,
//!   generation, CRC32C), then one entry per durable metadata change, each
//!   framed with its length and a CRC32C. An entry lists the change as
//!   [`Change`]s (a queue or exchange is now this / is gone, a binding was
//!   added / removed). Each `Change` sets the state of the entities it names
//!   whatever their state before, so replaying an entry twice, or replaying
//!   entries a snapshot already contains, gives the same result.
//!
//! Loading reads the snapshot, then replays the journal if its generation
//! is the snapshot's, up to the first entry that is cut short or fails its
//! checksum (a torn tail: ignored). A journal of another generation is
//! stale (a crash between writing a new snapshot and starting its journal)
//! and ignored whole: the snapshot already holds all of it.
//!
//! Writing (all glommio async I/O, never a blocking call on an executor):
//! [`JournalWriter::append`] writes entries and fdatasyncs (the leader
//! batches every entry that arrived during the previous sync into one
//! append); [`start_generation`] writes a snapshot of generation `g`, then
//! truncates the journal and writes a header of generation `g`. A crash at
//! any point of that leaves either the old snapshot with its journal, or the
//! new snapshot with a journal that is stale, empty or torn in its header,
//! which loading ignores.

use crate::broker::exchange::{BindingDef, Destination, ExchangeDef, ExchangeKind};
use crate::protocol::types::{FieldTable, FieldValue, ShortStr};
use crate::protocol::wire::{get_table, put_table};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"WRNDEF01";
const FILE_NAME: &str = "definitions";
const JOURNAL_NAME: &str = "definitions.journal";
const JOURNAL_MAGIC: &[u8; 8] = b"WRNDJRN1";
/// Journal header: magic, generation (u64 LE), CRC32C of both (u32 LE).
pub const JOURNAL_HEADER_LEN: usize = 20;
/// Entry frame: payload length (u32 LE), CRC32C of length and payload.
const ENTRY_HEADER_LEN: usize = 8;
/// No single entry is this large; a length beyond it is a torn frame.
const MAX_ENTRY: usize = 64 << 20;

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

/// One durable change, as a journal entry holds it. Each sets the state of
/// the entities it names (see the module doc): replaying is idempotent.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// The durable queue exists with this definition.
    Queue(QueueDef),
    /// The queue does not exist, nor any binding to it.
    QueueGone(ShortStr),
    /// The durable exchange exists with this definition.
    Exchange(ExchangeDef),
    /// The exchange does not exist, nor any binding from or to it.
    ExchangeGone(ShortStr),
    /// The binding exists.
    Bind(BindingDef),
    /// The binding does not exist.
    Unbind(BindingDef),
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

pub fn journal_path(data_dir: &Path) -> PathBuf {
    data_dir.join(JOURNAL_NAME)
}

fn s(v: &str) -> ShortStr {
    ShortStr::try_from_string(v.to_string()).unwrap_or_default()
}

fn text(v: &ShortStr) -> FieldValue {
    FieldValue::LongStr(v.as_bytes().clone())
}

fn word(v: &'static str) -> FieldValue {
    FieldValue::LongStr(Bytes::from_static(v.as_bytes()))
}

fn entry(pairs: Vec<(&'static str, FieldValue)>) -> FieldValue {
    FieldValue::Table(FieldTable(
        pairs
            .into_iter()
            .map(|(k, v)| (ShortStr::from_static(k), v))
            .collect(),
    ))
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("definitions: {what}"))
}

// ---- one item as a field table, and back ----

fn exchange_fields(x: &ExchangeDef) -> Vec<(&'static str, FieldValue)> {
    vec![
        ("name", text(&x.name)),
        ("type", word(x.kind.as_str())),
        ("auto_delete", FieldValue::Bool(x.auto_delete)),
        ("internal", FieldValue::Bool(x.internal)),
        ("arguments", FieldValue::Table(x.arguments.clone())),
    ]
}

fn queue_fields(q: &QueueDef) -> Vec<(&'static str, FieldValue)> {
    vec![
        ("name", text(&q.name)),
        ("owner", FieldValue::I64(q.owner as i64)),
        ("auto_delete", FieldValue::Bool(q.auto_delete)),
        ("arguments", FieldValue::Table(q.arguments.clone())),
    ]
}

fn binding_fields(b: &BindingDef) -> Vec<(&'static str, FieldValue)> {
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

fn str_of(t: &FieldTable, k: &str) -> ShortStr {
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

fn exchange_from(t: &FieldTable) -> io::Result<ExchangeDef> {
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

fn queue_from(t: &FieldTable) -> QueueDef {
    QueueDef {
        name: str_of(t, "name"),
        owner: t.get("owner").and_then(|v| v.as_i64()).unwrap_or(0) as u16,
        auto_delete: bool_of(t, "auto_delete"),
        arguments: args_of(t),
    }
}

fn binding_from(t: &FieldTable) -> BindingDef {
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

fn tables(v: Option<&FieldValue>) -> impl Iterator<Item = &FieldTable> {
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
fn sorted_args(args: &FieldTable) -> FieldTable {
    let mut sorted = args.clone();
    sorted.0.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    sorted
}

fn args_key(args: &FieldTable) -> Vec<u8> {
    let mut b = BytesMut::new();
    put_table(&mut b, args);
    b.to_vec()
}

impl Definitions {
    /// The snapshot file's bytes (generation 0).
    pub fn encode(&self) -> Bytes {
        self.encode_snapshot(0)
    }

    /// The snapshot file's bytes, naming the journal generation that
    /// continues it.
    pub fn encode_snapshot(&self, generation: u64) -> Bytes {
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
        let table = FieldTable(vec![
            (
                ShortStr::from_static("shards"),
                FieldValue::I64(self.shards as i64),
            ),
            (
                ShortStr::from_static("generation"),
                FieldValue::I64(generation as i64),
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
        let exchanges = tables(table.get("exchanges"))
            .map(exchange_from)
            .collect::<io::Result<Vec<_>>>()?;
        let queues = tables(table.get("queues")).map(queue_from).collect();
        let bindings = tables(table.get("bindings")).map(binding_from).collect();
        Ok((
            Definitions {
                shards,
                exchanges,
                queues,
                bindings,
            },
            generation,
        ))
    }

    /// The same definitions in one canonical order (every list sorted,
    /// bindings down to their arguments), for comparing two sets.
    pub fn canonical(&self) -> Definitions {
        let mut d = self.clone();
        d.exchanges.sort_by(|a, b| a.name.cmp(&b.name));
        d.queues.sort_by(|a, b| a.name.cmp(&b.name));
        for b in &mut d.bindings {
            b.arguments = sorted_args(&b.arguments);
        }
        d.bindings.sort_by_cached_key(|b| {
            (
                b.source.clone(),
                b.destination.clone(),
                b.routing_key.clone(),
                args_key(&b.arguments),
            )
        });
        d
    }

    /// Reads the snapshot and replays the journal; `None` when neither
    /// file exists.
    pub fn load(data_dir: &Path) -> io::Result<Option<Definitions>> {
        Ok(Definitions::load_verbose(data_dir)?.0)
    }

    /// As [`Definitions::load`], also saying what was found in the journal.
    pub fn load_verbose(data_dir: &Path) -> io::Result<(Option<Definitions>, Loaded)> {
        let snapshot = match std::fs::read(path(data_dir)) {
            Ok(raw) => Some(Definitions::decode_snapshot(Bytes::from(raw))?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let journal = match std::fs::read(journal_path(data_dir)) {
            Ok(raw) => Some(raw),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        replay(snapshot, journal.as_deref())
    }
}

/// What loading found in the journal.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    /// The snapshot's generation (0 without a snapshot).
    pub generation: u64,
    /// Entries replayed.
    pub entries: usize,
    /// Bytes after the last good entry (a torn tail), ignored.
    pub torn_bytes: usize,
    /// The journal's generation when it was not the snapshot's (ignored).
    pub stale_generation: Option<u64>,
}

/// Applies a journal (the file's bytes, if any) to a snapshot (its
/// definitions and generation, if any). Pure: `load` is this on the files.
pub fn replay(
    snapshot: Option<(Definitions, u64)>,
    journal: Option<&[u8]>,
) -> io::Result<(Option<Definitions>, Loaded)> {
    let generation = snapshot.as_ref().map_or(0, |(_, g)| *g);
    let mut loaded = Loaded {
        generation,
        ..Loaded::default()
    };
    let scan = journal.map(scan_journal).transpose()?;
    let usable = match &scan {
        Some(scan) if scan.generation == Some(generation) && generation != 0 => true,
        Some(scan) => {
            loaded.stale_generation = scan.generation;
            false
        }
        None => false,
    };
    let Some(scan) = scan.filter(|_| usable) else {
        return Ok((snapshot.map(|(d, _)| d), loaded));
    };
    loaded.entries = scan.entries.len();
    loaded.torn_bytes = scan.torn_bytes;
    let defs = snapshot.map(|(d, _)| d).unwrap_or_default();
    if scan.entries.is_empty() {
        return Ok((Some(defs), loaded));
    }
    let mut catalog = Catalog::from_definitions(&defs);
    for changes in &scan.entries {
        for c in changes {
            catalog.apply(c);
        }
    }
    Ok((Some(catalog.to_definitions()), loaded))
}

// ---- the journal's bytes ----

/// A journal file's header for `generation`.
pub fn journal_header(generation: u64) -> [u8; JOURNAL_HEADER_LEN] {
    let mut h = [0u8; JOURNAL_HEADER_LEN];
    h[..8].copy_from_slice(JOURNAL_MAGIC);
    h[8..16].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32c::crc32c(&h[..16]);
    h[16..].copy_from_slice(&crc.to_le_bytes());
    h
}

fn change_table(c: &Change) -> FieldValue {
    let (op, mut fields) = match c {
        Change::Queue(q) => ("queue", queue_fields(q)),
        Change::QueueGone(n) => ("queue_gone", vec![("name", text(n))]),
        Change::Exchange(x) => ("exchange", exchange_fields(x)),
        Change::ExchangeGone(n) => ("exchange_gone", vec![("name", text(n))]),
        Change::Bind(b) => ("bind", binding_fields(b)),
        Change::Unbind(b) => ("unbind", binding_fields(b)),
    };
    fields.insert(0, ("op", word(op)));
    entry(fields)
}

fn change_from(t: &FieldTable) -> io::Result<Change> {
    Ok(match t.get("op").and_then(|v| v.as_str()) {
        Some("queue") => Change::Queue(queue_from(t)),
        Some("queue_gone") => Change::QueueGone(str_of(t, "name")),
        Some("exchange") => Change::Exchange(exchange_from(t)?),
        Some("exchange_gone") => Change::ExchangeGone(str_of(t, "name")),
        Some("bind") => Change::Bind(binding_from(t)),
        Some("unbind") => Change::Unbind(binding_from(t)),
        other => return Err(bad(&format!("journal entry with unknown change {other:?}"))),
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

// ---- the definitions, indexed for applying changes ----

/// The durable definitions indexed so that a [`Change`] costs about the
/// size of what it touches: the journal replay at load and the leader's
/// running copy (what the next snapshot will hold).
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    shards: u16,
    exchanges: HashMap<ShortStr, ExchangeDef>,
    queues: HashMap<ShortStr, QueueDef>,
    /// Bindings by destination.
    to: HashMap<Destination, Vec<BindingDef>>,
    /// Per source exchange: the destinations it has bindings to, counted.
    from: HashMap<ShortStr, HashMap<Destination, usize>>,
    /// The auto-delete exchanges (they can disappear as a side effect).
    auto_delete: BTreeSet<ShortStr>,
}

impl Catalog {
    pub fn from_definitions(defs: &Definitions) -> Catalog {
        let mut c = Catalog {
            shards: defs.shards,
            ..Catalog::default()
        };
        for x in &defs.exchanges {
            c.apply(&Change::Exchange(x.clone()));
        }
        for q in &defs.queues {
            c.apply(&Change::Queue(q.clone()));
        }
        for b in &defs.bindings {
            c.apply(&Change::Bind(b.clone()));
        }
        c
    }

    /// The definitions, sorted as the snapshot stores them (exchanges and
    /// queues by name, bindings by source, destination and routing key).
    pub fn to_definitions(&self) -> Definitions {
        let mut exchanges: Vec<ExchangeDef> = self.exchanges.values().cloned().collect();
        exchanges.sort_by(|a, b| a.name.cmp(&b.name));
        let mut queues: Vec<QueueDef> = self.queues.values().cloned().collect();
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        let mut bindings: Vec<BindingDef> = self.to.values().flatten().cloned().collect();
        bindings.sort_by(|a, b| {
            (&a.source, &a.destination, &a.routing_key).cmp(&(
                &b.source,
                &b.destination,
                &b.routing_key,
            ))
        });
        Definitions {
            shards: self.shards,
            exchanges,
            queues,
            bindings,
        }
    }

    pub fn set_shards(&mut self, shards: u16) {
        self.shards = shards;
    }

    pub fn queue(&self, name: &str) -> Option<&QueueDef> {
        self.queues.get(name)
    }

    pub fn exchange(&self, name: &str) -> Option<&ExchangeDef> {
        self.exchanges.get(name)
    }

    /// Whether the binding (arguments compared in sorted form) exists.
    pub fn has_binding(&self, b: &BindingDef) -> bool {
        let args = sorted_args(&b.arguments);
        self.to.get(&b.destination).is_some_and(|list| {
            list.iter().any(|x| {
                x.source == b.source && x.routing_key == b.routing_key && x.arguments == args
            })
        })
    }

    /// The auto-delete exchanges.
    pub fn auto_delete_exchanges(&self) -> impl Iterator<Item = &ShortStr> {
        self.auto_delete.iter()
    }

    /// Number of exchanges, queues and bindings.
    pub fn size(&self) -> usize {
        self.exchanges.len() + self.queues.len() + self.to.values().map(Vec::len).sum::<usize>()
    }

    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Queue(q) => {
                self.queues.insert(q.name.clone(), q.clone());
            }
            Change::QueueGone(name) => {
                self.queues.remove(name.as_str());
                self.drop_bindings_to(&Destination::Queue(name.clone()));
            }
            Change::Exchange(x) => {
                if x.auto_delete {
                    self.auto_delete.insert(x.name.clone());
                } else {
                    self.auto_delete.remove(x.name.as_str());
                }
                self.exchanges.insert(x.name.clone(), x.clone());
            }
            Change::ExchangeGone(name) => {
                self.exchanges.remove(name.as_str());
                self.auto_delete.remove(name.as_str());
                self.drop_bindings_to(&Destination::Exchange(name.clone()));
                self.drop_bindings_from(name);
            }
            Change::Bind(b) => {
                if self.has_binding(b) {
                    return;
                }
                let b = BindingDef {
                    arguments: sorted_args(&b.arguments),
                    ..b.clone()
                };
                *self
                    .from
                    .entry(b.source.clone())
                    .or_default()
                    .entry(b.destination.clone())
                    .or_insert(0) += 1;
                self.to.entry(b.destination.clone()).or_default().push(b);
            }
            Change::Unbind(b) => {
                let args = sorted_args(&b.arguments);
                let Some(list) = self.to.get_mut(&b.destination) else {
                    return;
                };
                let Some(i) = list.iter().position(|x| {
                    x.source == b.source && x.routing_key == b.routing_key && x.arguments == args
                }) else {
                    return;
                };
                list.remove(i);
                if list.is_empty() {
                    self.to.remove(&b.destination);
                }
                self.forget_from(&b.source, &b.destination, 1);
            }
        }
    }

    fn forget_from(&mut self, source: &ShortStr, dest: &Destination, n: usize) {
        if let Some(dests) = self.from.get_mut(source.as_str()) {
            if let Some(count) = dests.get_mut(dest) {
                *count = count.saturating_sub(n);
                if *count == 0 {
                    dests.remove(dest);
                }
            }
            if dests.is_empty() {
                self.from.remove(source.as_str());
            }
        }
    }

    fn drop_bindings_to(&mut self, dest: &Destination) {
        let Some(list) = self.to.remove(dest) else {
            return;
        };
        for b in list {
            self.forget_from(&b.source, dest, 1);
        }
    }

    fn drop_bindings_from(&mut self, source: &ShortStr) {
        let Some(dests) = self.from.remove(source.as_str()) else {
            return;
        };
        for dest in dests.keys() {
            if let Some(list) = self.to.get_mut(dest) {
                list.retain(|b| b.source != *source);
                if list.is_empty() {
                    self.to.remove(dest);
                }
            }
        }
    }
}

// ---- writing (glommio async file I/O; call on an executor) ----

/// Where [`start_generation`] may be told to stop the process, as a crash
/// would (tests: `WARREN_TEST_DEFINITIONS_CRASH`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// The new snapshot is written and synced under its temporary name.
    SnapshotWritten,
    /// The new snapshot has replaced the old one; the journal is the old one.
    SnapshotRenamed,
    /// The journal has been truncated; its new header is not written yet.
    JournalTruncated,
}

impl CrashPoint {
    pub fn parse(v: &str) -> Option<CrashPoint> {
        match v {
            "snapshot-written" => Some(CrashPoint::SnapshotWritten),
            "snapshot-renamed" => Some(CrashPoint::SnapshotRenamed),
            "journal-truncated" => Some(CrashPoint::JournalTruncated),
            _ => None,
        }
    }
}

fn crash_if(at: Option<CrashPoint>, here: CrashPoint) {
    if at == Some(here) {
        tracing::error!("test crash point {here:?} reached: SIGKILL");
        // SAFETY: kill(2) on our own pid.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

fn io_err(e: glommio::GlommioError<()>) -> io::Error {
    io::Error::from(e)
}

/// Writes all of `bytes` at `pos`.
async fn write_all_at(
    file: &glommio::io::BufferedFile,
    bytes: Vec<u8>,
    pos: u64,
) -> io::Result<()> {
    let mut written = 0usize;
    let total = bytes.len();
    let mut rest = bytes;
    while written < total {
        let n = file
            .write_at(rest.clone(), pos + written as u64)
            .await
            .map_err(io_err)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
        }
        written += n;
        rest.drain(..n);
    }
    Ok(())
}

async fn sync_dir(dir: &Path) -> io::Result<()> {
    let d = glommio::io::Directory::open(dir).await.map_err(io_err)?;
    let r = d.sync().await.map_err(io_err);
    let _ = d.close().await;
    r
}

async fn create_file(path: &Path) -> io::Result<glommio::io::BufferedFile> {
    glommio::io::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .buffered_open(path)
        .await
        .map_err(io_err)
}

/// Replaces the snapshot with `defs` as generation `generation`: temporary
/// file, fdatasync, rename, directory sync. Returns its size.
pub async fn write_snapshot(
    data_dir: &Path,
    defs: &Definitions,
    generation: u64,
    crash: Option<CrashPoint>,
) -> io::Result<u64> {
    let bytes = defs.encode_snapshot(generation).to_vec();
    let len = bytes.len() as u64;
    let tmp = data_dir.join(format!("{FILE_NAME}.tmp"));
    let file = create_file(&tmp).await?;
    let written = async {
        write_all_at(&file, bytes, 0).await?;
        file.fdatasync().await.map_err(io_err)
    }
    .await;
    let _ = file.close().await;
    written?;
    crash_if(crash, CrashPoint::SnapshotWritten);
    glommio::io::rename(&tmp, path(data_dir))
        .await
        .map_err(io_err)?;
    sync_dir(data_dir).await?;
    crash_if(crash, CrashPoint::SnapshotRenamed);
    Ok(len)
}

/// The generation of the journal on disk (0 if there is none, or its
/// header is torn). A new generation must differ from it.
pub async fn journal_generation(data_dir: &Path) -> io::Result<u64> {
    let file = match glommio::io::BufferedFile::open(journal_path(data_dir)).await {
        Ok(f) => f,
        Err(e) => {
            let e = io_err(e);
            return match e.kind() {
                io::ErrorKind::NotFound => Ok(0),
                _ => Err(e),
            };
        }
    };
    let read = file.read_at(0, JOURNAL_HEADER_LEN).await.map_err(io_err);
    let _ = file.close().await;
    let head = read?;
    Ok(scan_journal(&head)
        .ok()
        .and_then(|s| s.generation)
        .unwrap_or(0))
}

/// The journal, open for appending.
pub struct JournalWriter {
    file: glommio::io::BufferedFile,
    generation: u64,
    len: u64,
}

impl JournalWriter {
    /// Truncates (or creates) the journal and writes the header of
    /// `generation`, durably (file and directory synced).
    pub async fn create(
        data_dir: &Path,
        generation: u64,
        crash: Option<CrashPoint>,
    ) -> io::Result<JournalWriter> {
        let file = create_file(&journal_path(data_dir)).await?;
        crash_if(crash, CrashPoint::JournalTruncated);
        let mut w = JournalWriter {
            file,
            generation,
            len: 0,
        };
        let header = journal_header(generation).to_vec();
        let done = async {
            write_all_at(&w.file, header, 0).await?;
            w.file.fdatasync().await.map_err(io_err)?;
            sync_dir(data_dir).await
        }
        .await;
        if let Err(e) = done {
            let _ = w.file.close().await;
            return Err(e);
        }
        w.len = JOURNAL_HEADER_LEN as u64;
        Ok(w)
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Bytes in the file.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len <= JOURNAL_HEADER_LEN as u64
    }

    /// Appends framed entries ([`encode_entry`]) and fdatasyncs: once this
    /// returns they survive a crash. After an error the file's tail is
    /// unknown: start a new generation instead of appending again.
    pub async fn append(&mut self, entries: Vec<u8>) -> io::Result<()> {
        let n = entries.len() as u64;
        write_all_at(&self.file, entries, self.len).await?;
        self.file.fdatasync().await.map_err(io_err)?;
        self.len += n;
        Ok(())
    }

    pub async fn close(self) {
        let _ = self.file.close().await;
    }
}

/// Starts generation `generation`: a snapshot of `defs`, then an empty
/// journal. Returns the journal and the snapshot's size. A crash anywhere
/// in between loads as either the old state or `defs` (see the module doc);
/// `generation` must differ from the generation of the journal on disk.
pub async fn start_generation(
    data_dir: &Path,
    defs: &Definitions,
    generation: u64,
    crash: Option<CrashPoint>,
) -> io::Result<(JournalWriter, u64)> {
    let snapshot_len = write_snapshot(data_dir, defs, generation, crash).await?;
    let journal = JournalWriter::create(data_dir, generation, crash).await?;
    Ok((journal, snapshot_len))
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

    fn queue(name: &str) -> QueueDef {
        QueueDef {
            name: ShortStr::from(name),
            owner: 0,
            auto_delete: false,
            arguments: FieldTable::new(),
        }
    }

    fn exchange(name: &str, auto_delete: bool) -> ExchangeDef {
        ExchangeDef {
            name: ShortStr::from(name),
            kind: ExchangeKind::Direct,
            durable: true,
            auto_delete,
            internal: false,
            arguments: FieldTable::new(),
        }
    }

    fn binding(source: &str, dest: Destination, key: &str, args: &[(&str, i64)]) -> BindingDef {
        BindingDef {
            source: ShortStr::from(source),
            destination: dest,
            routing_key: ShortStr::from(key),
            arguments: FieldTable(
                args.iter()
                    .map(|(k, v)| (ShortStr::from(*k), FieldValue::I64(*v)))
                    .collect(),
            ),
        }
    }

    fn q(n: &str) -> Destination {
        Destination::Queue(ShortStr::from(n))
    }

    fn x(n: &str) -> Destination {
        Destination::Exchange(ShortStr::from(n))
    }

    fn framed(entries: &[Vec<Change>]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in entries {
            encode_entry(e, &mut out);
        }
        out
    }

    fn journal(generation: u64, entries: &[Vec<Change>]) -> Vec<u8> {
        let mut out = journal_header(generation).to_vec();
        out.extend(framed(entries));
        out
    }

    fn some_entries() -> Vec<Vec<Change>> {
        vec![
            vec![Change::Queue(queue("a"))],
            vec![Change::Exchange(exchange("ex", false))],
            vec![Change::Bind(binding(
                "ex",
                q("a"),
                "k",
                &[("y", 1), ("x", 2)],
            ))],
            vec![
                Change::QueueGone(ShortStr::from("tasks")),
                Change::ExchangeGone(ShortStr::from("gone")),
            ],
            vec![Change::Unbind(binding("logs", q("tasks"), "a.#", &[]))],
        ]
    }

    #[test]
    fn round_trips() {
        let d = sample();
        assert_eq!(Definitions::decode(d.encode()).unwrap(), d);
        assert_eq!(
            Definitions::decode_snapshot(d.encode_snapshot(7)).unwrap(),
            (d, 7)
        );
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
    fn a_snapshot_without_a_generation_is_generation_zero() {
        // The snapshot format before the journal: no "generation" key.
        let d = sample();
        let mut raw = d.encode_snapshot(3).to_vec();
        let mut body = Bytes::copy_from_slice(&raw[12..]);
        let mut table = get_table(&mut body).unwrap();
        table.0.retain(|(k, _)| k.as_str() != "generation");
        let mut body = BytesMut::new();
        put_table(&mut body, &table);
        raw.truncate(8);
        raw.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        raw.extend_from_slice(&body);
        assert_eq!(
            Definitions::decode_snapshot(Bytes::from(raw)).unwrap(),
            (d, 0)
        );
    }

    #[test]
    fn journal_entries_round_trip() {
        let entries = some_entries();
        let raw = journal(5, &entries);
        let scan = scan_journal(&raw).unwrap();
        assert_eq!(scan.generation, Some(5));
        assert_eq!(scan.entries, entries);
        assert_eq!((scan.valid_len, scan.torn_bytes), (raw.len(), 0));
        // An empty journal is a header.
        let scan = scan_journal(&journal_header(9)).unwrap();
        assert_eq!(
            (scan.generation, scan.entries.len(), scan.torn_bytes),
            (Some(9), 0, 0)
        );
    }

    #[test]
    fn a_torn_tail_is_ignored_wherever_it_is_cut() {
        let entries = some_entries();
        let raw = journal(1, &entries);
        let whole_but_last = journal(1, &entries[..entries.len() - 1]).len();
        for cut in whole_but_last..raw.len() {
            let scan = scan_journal(&raw[..cut]).unwrap();
            assert_eq!(scan.entries, entries[..entries.len() - 1], "cut at {cut}");
            assert_eq!(scan.valid_len, whole_but_last);
            assert_eq!(scan.torn_bytes, cut - whole_but_last);
        }
        // Zeroes after the last entry (a preallocated or torn block), and
        // garbage: the entries before are kept.
        for tail in [vec![0u8; 100], vec![0xa5u8; 37], vec![1, 0, 0, 0]] {
            let mut torn = raw.clone();
            torn.extend_from_slice(&tail);
            let scan = scan_journal(&torn).unwrap();
            assert_eq!(scan.entries, entries);
            assert_eq!(scan.torn_bytes, tail.len());
        }
        // A flipped bit in the second entry: only the first one is kept.
        let first = journal(1, &entries[..1]).len();
        let mut flipped = raw.clone();
        flipped[first + ENTRY_HEADER_LEN + 3] ^= 0x10;
        let scan = scan_journal(&flipped).unwrap();
        assert_eq!(scan.entries, entries[..1]);
        assert_eq!(scan.valid_len, first);
        // A torn header: no generation, nothing replayed.
        for cut in 0..JOURNAL_HEADER_LEN {
            let scan = scan_journal(&raw[..cut]).unwrap();
            assert_eq!((scan.generation, scan.entries.len()), (None, 0));
        }
        let mut bad_header = raw.clone();
        bad_header[9] ^= 1;
        assert_eq!(scan_journal(&bad_header).unwrap().generation, None);
    }

    #[test]
    fn an_entry_with_a_good_checksum_but_an_unknown_change_is_an_error() {
        let table = FieldTable(vec![(
            ShortStr::from_static("changes"),
            FieldValue::Array(vec![entry(vec![("op", word("rename"))])]),
        )]);
        let mut payload = BytesMut::new();
        put_table(&mut payload, &table);
        let mut raw = journal_header(1).to_vec();
        let len = (payload.len() as u32).to_le_bytes();
        let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &payload);
        raw.extend_from_slice(&len);
        raw.extend_from_slice(&crc.to_le_bytes());
        raw.extend_from_slice(&payload);
        assert!(scan_journal(&raw).is_err());
    }

    #[test]
    fn catalog_changes_set_state() {
        let mut c = Catalog::from_definitions(&sample());
        assert!(c.has_binding(&binding("logs", q("tasks"), "a.#", &[])));
        // Arguments compare in sorted form; binding twice is one binding.
        let b = binding("logs", q("tasks"), "k", &[("b", 1), ("a", 2)]);
        c.apply(&Change::Bind(b.clone()));
        c.apply(&Change::Bind(binding(
            "logs",
            q("tasks"),
            "k",
            &[("a", 2), ("b", 1)],
        )));
        assert_eq!(c.to_definitions().bindings.len(), 3);
        c.apply(&Change::Unbind(binding(
            "logs",
            q("tasks"),
            "k",
            &[("a", 2), ("b", 1)],
        )));
        assert!(!c.has_binding(&b));
        assert_eq!(c.to_definitions().bindings.len(), 2);
        // A queue going drops the bindings to it.
        c.apply(&Change::QueueGone(ShortStr::from("tasks")));
        assert_eq!(c.to_definitions().bindings.len(), 1);
        assert!(c.queue("tasks").is_none());
        // An exchange going drops the bindings from and to it.
        c.apply(&Change::Queue(queue("q2")));
        c.apply(&Change::Bind(binding("logs", q("q2"), "", &[])));
        c.apply(&Change::ExchangeGone(ShortStr::from("logs")));
        let d = c.to_definitions();
        assert!(d.bindings.is_empty(), "{d:?}");
        assert!(d.exchanges.is_empty());
        assert_eq!(d.queues, vec![queue("q2")]);
        // Auto-delete exchanges are tracked.
        c.apply(&Change::Exchange(exchange("ad", true)));
        assert_eq!(c.auto_delete_exchanges().count(), 1);
        c.apply(&Change::Exchange(exchange("ad", false)));
        assert_eq!(c.auto_delete_exchanges().count(), 0);
        c.apply(&Change::Exchange(exchange("ad", true)));
        c.apply(&Change::ExchangeGone(ShortStr::from("ad")));
        assert_eq!(c.auto_delete_exchanges().count(), 0);
        assert_eq!(c.size(), 1);
    }

    /// The same changes applied one by one to the definitions (the slow,
    /// obvious way).
    fn apply_naively(d: &mut Definitions, change: &Change) {
        let same = |a: &BindingDef, b: &BindingDef| {
            a.source == b.source
                && a.destination == b.destination
                && a.routing_key == b.routing_key
                && sorted_args(&a.arguments) == sorted_args(&b.arguments)
        };
        match change {
            Change::Queue(q) => {
                d.queues.retain(|x| x.name != q.name);
                d.queues.push(q.clone());
            }
            Change::QueueGone(n) => {
                d.queues.retain(|x| x.name != *n);
                d.bindings
                    .retain(|b| b.destination != Destination::Queue(n.clone()));
            }
            Change::Exchange(x) => {
                d.exchanges.retain(|e| e.name != x.name);
                d.exchanges.push(x.clone());
            }
            Change::ExchangeGone(n) => {
                d.exchanges.retain(|e| e.name != *n);
                d.bindings.retain(|b| {
                    b.source != *n && b.destination != Destination::Exchange(n.clone())
                });
            }
            Change::Bind(b) => {
                if !d.bindings.iter().any(|x| same(x, b)) {
                    d.bindings.push(b.clone());
                }
            }
            Change::Unbind(b) => d.bindings.retain(|x| !same(x, b)),
        }
    }

    /// A deterministic pseudo-random change over a small name space.
    fn random_change(r: &mut u64) -> Change {
        let mut next = |n: u64| {
            *r ^= *r << 13;
            *r ^= *r >> 7;
            *r ^= *r << 17;
            *r % n
        };
        let name = |i: u64| format!("n{i}");
        let dest = |kind: u64, i: u64| match kind {
            0 => q(&name(i)),
            _ => x(&name(i)),
        };
        match next(6) {
            0 => Change::Queue(queue(&name(next(5)))),
            1 => Change::QueueGone(ShortStr::from(name(next(5)).as_str())),
            2 => Change::Exchange(exchange(&name(next(5)), next(2) == 0)),
            3 => Change::ExchangeGone(ShortStr::from(name(next(5)).as_str())),
            k => {
                let b = binding(
                    &name(next(5)),
                    dest(next(2), next(5)),
                    &format!("k{}", next(2)),
                    &[("a", next(2) as i64), ("b", 1)][..next(3) as usize],
                );
                if k == 4 {
                    Change::Bind(b)
                } else {
                    Change::Unbind(b)
                }
            }
        }
    }

    #[test]
    fn catalog_matches_the_naive_model_and_replay_is_idempotent() {
        let mut r = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200 {
            let changes: Vec<Change> = (0..60).map(|_| random_change(&mut r)).collect();
            let mut naive = Definitions::default();
            let mut catalog = Catalog::default();
            for c in &changes {
                apply_naively(&mut naive, c);
                catalog.apply(c);
            }
            let got = catalog.to_definitions();
            assert_eq!(got.canonical(), naive.canonical());
            // Replaying any suffix on the result changes nothing: a
            // snapshot that already holds entries of the journal after it
            // loads the same.
            for start in [0, 10, 30, 59] {
                let mut again = Catalog::from_definitions(&got);
                for c in &changes[start..] {
                    again.apply(c);
                }
                assert_eq!(again.to_definitions().canonical(), got.canonical());
            }
        }
    }

    #[test]
    fn replay_applies_the_journal_of_the_snapshots_generation_only() {
        let snapshot = sample();
        let entries = some_entries();
        let (got, loaded) =
            replay(Some((snapshot.clone(), 4)), Some(&journal(4, &entries))).unwrap();
        let mut expect = Catalog::from_definitions(&snapshot);
        for c in entries.iter().flatten() {
            expect.apply(c);
        }
        assert_eq!(got.unwrap(), expect.to_definitions());
        assert_eq!(loaded.entries, entries.len());
        assert_eq!((loaded.generation, loaded.torn_bytes), (4, 0));
        // A stale journal (another generation) is ignored.
        let (got, loaded) =
            replay(Some((snapshot.clone(), 5)), Some(&journal(4, &entries))).unwrap();
        assert_eq!(got.unwrap(), snapshot);
        assert_eq!((loaded.entries, loaded.stale_generation), (0, Some(4)));
        // No journal, or a journal with a torn header: the snapshot.
        assert_eq!(
            replay(Some((snapshot.clone(), 4)), None)
                .unwrap()
                .0
                .unwrap(),
            snapshot
        );
        let torn = &journal(4, &entries)[..10];
        assert_eq!(
            replay(Some((snapshot.clone(), 4)), Some(torn))
                .unwrap()
                .0
                .unwrap(),
            snapshot
        );
        // No snapshot: nothing, whatever the journal says.
        assert_eq!(replay(None, Some(&journal(4, &entries))).unwrap().0, None);
        assert_eq!(replay(None, None).unwrap().0, None);
        // A torn tail: the entries before it.
        let mut raw = journal(4, &entries);
        raw.truncate(raw.len() - 3);
        let (got, loaded) = replay(Some((snapshot.clone(), 4)), Some(&raw)).unwrap();
        let mut expect = Catalog::from_definitions(&snapshot);
        for c in entries[..entries.len() - 1].iter().flatten() {
            expect.apply(c);
        }
        assert_eq!(got.unwrap(), expect.to_definitions());
        assert!(loaded.torn_bytes > 0);
    }

    fn run<F, Fut>(f: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        glommio::LocalExecutorBuilder::default()
            .spawn(f)
            .expect("spawn executor")
            .join()
            .expect("executor thread");
    }

    #[test]
    fn files_written_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        assert_eq!(Definitions::load(&path).unwrap(), None);
        run(move || async move {
            assert_eq!(journal_generation(&path).await.unwrap(), 0);
            let (mut j, len) = start_generation(&path, &sample(), 1, None).await.unwrap();
            assert_eq!(len, std::fs::metadata(super::path(&path)).unwrap().len());
            assert!(j.is_empty());
            assert_eq!(Definitions::load(&path).unwrap(), Some(sample()));
            let entries = some_entries();
            j.append(framed(&entries[..2])).await.unwrap();
            j.append(framed(&entries[2..])).await.unwrap();
            assert_eq!(
                j.len(),
                std::fs::metadata(journal_path(&path)).unwrap().len()
            );
            let mut expect = Catalog::from_definitions(&sample());
            for c in entries.iter().flatten() {
                expect.apply(c);
            }
            let (got, loaded) = Definitions::load_verbose(&path).unwrap();
            assert_eq!(got, Some(expect.to_definitions()));
            assert_eq!((loaded.generation, loaded.entries), (1, entries.len()));
            assert_eq!(journal_generation(&path).await.unwrap(), 1);
            j.close().await;

            // The next generation: a snapshot of everything, a fresh journal.
            let (j, _) = start_generation(&path, &expect.to_definitions(), 2, None)
                .await
                .unwrap();
            let (got, loaded) = Definitions::load_verbose(&path).unwrap();
            assert_eq!(got, Some(expect.to_definitions()));
            assert_eq!((loaded.generation, loaded.entries), (2, 0));
            j.close().await;

            // A crash between the new snapshot and its journal: the old
            // journal is stale and ignored, the new snapshot has it all.
            let newer = Definitions::default();
            write_snapshot(&path, &newer, 3, None).await.unwrap();
            let (got, loaded) = Definitions::load_verbose(&path).unwrap();
            assert_eq!(got, Some(newer));
            assert_eq!(loaded.stale_generation, Some(2));
        });
    }
}
