//! Loading the definitions: the snapshot, then the journal of its
//! generation replayed on it (a stale journal ignored, a torn tail cut).

use super::catalog::Catalog;
use super::journal::scan_journal;
use super::{journal_path, path, Definitions};
use bytes::Bytes;
use std::io;
use std::path::Path;

impl Definitions {
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
