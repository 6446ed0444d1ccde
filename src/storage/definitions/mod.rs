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
//!
//! The parts: [`Definitions`] and [`Change`] (here), each item as a field
//! table (`fields`), the snapshot file's bytes (`snapshot`), the journal's
//! bytes (`journal`), the indexed copy changes apply to (`catalog`),
//! loading (`load`) and writing the files (`writer`).

mod auth;
mod catalog;
mod fields;
mod journal;
mod load;
mod snapshot;
mod writer;

pub use catalog::Catalog;
pub use journal::{encode_entry, journal_header, scan_journal, JournalScan, JOURNAL_HEADER_LEN};
pub use load::{replay, Loaded};
pub use writer::{journal_generation, start_generation, write_snapshot, CrashPoint, JournalWriter};

use crate::broker::exchange::{BindingDef, ExchangeDef};
use crate::broker::vhost::VhostLimits;
use crate::protocol::types::{FieldTable, ShortStr};
use fields::{args_key, sorted_args};
use std::path::{Path, PathBuf};

const FILE_NAME: &str = "definitions";
const JOURNAL_NAME: &str = "definitions.journal";

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
    /// Policies (`warren ctl set_policy`), by name. Snapshots written before
    /// policies existed have none.
    pub policies: Vec<PolicyDef>,
    /// The vhost's limits (`set_vhost_limits`).
    pub limits: VhostLimits,
    /// At the top level, the definitions above are vhost `/`'s and these
    /// are the other vhosts (by name; each with an empty `vhosts`).
    /// Snapshots written before vhosts existed have none.
    pub vhosts: Vec<VhostDef>,
    /// Users, permissions and topic permissions (`broker::auth`), at the
    /// top level only (a permission names its vhost); None when the files
    /// predate them (a first start: the default user is created).
    pub auth: Option<crate::broker::auth::AuthDefs>,
    /// At the top level: vhost `/` was deleted (RabbitMQ allows it). The
    /// top-level lists are then empty, and a restart does not bring `/`
    /// back (only a first start creates it).
    pub default_vhost_deleted: bool,
}

/// A vhost other than `/` and everything durable in it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VhostDef {
    pub name: ShortStr,
    pub defs: Definitions,
}

/// A policy as stored: its definition as given (validated again when
/// loaded, with `broker::queue_args::policy`).
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDef {
    pub name: String,
    pub pattern: String,
    /// `queues`, `exchanges` or `all`.
    pub apply_to: String,
    pub priority: i64,
    pub definition: FieldTable,
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
    /// The policy exists with this definition.
    Policy(PolicyDef),
    /// The policy does not exist.
    PolicyGone(String),
    /// The vhost exists with these limits (for `/`: again, if it was
    /// deleted).
    Vhost { name: ShortStr, limits: VhostLimits },
    /// The vhost does not exist, nor anything in it.
    VhostGone(ShortStr),
    /// A change of the vhost named (not `/`, never nested); the changes
    /// above without it are of `/`.
    In(ShortStr, Box<Change>),
    /// A user, permission or topic permission is now this / is gone.
    Auth(crate::broker::auth::AuthChange),
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

pub fn journal_path(data_dir: &Path) -> PathBuf {
    data_dir.join(JOURNAL_NAME)
}

impl Definitions {
    /// The same definitions in one canonical order (every list sorted,
    /// bindings down to their arguments), for comparing two sets.
    pub fn canonical(&self) -> Definitions {
        let mut d = self.clone();
        d.exchanges.sort_by(|a, b| a.name.cmp(&b.name));
        d.queues.sort_by(|a, b| a.name.cmp(&b.name));
        d.policies.sort_by(|a, b| a.name.cmp(&b.name));
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
        d.vhosts = self
            .vhosts
            .iter()
            .map(|v| VhostDef {
                name: v.name.clone(),
                defs: v.defs.canonical(),
            })
            .collect();
        d.vhosts.sort_by(|a, b| a.name.cmp(&b.name));
        d
    }
}

#[cfg(test)]
mod tests;
