//! Writing the definitions files durably (glommio async file I/O; call on
//! an executor): the snapshot replaced atomically, the journal appended
//! with fdatasync, a new generation started, and the test crash points in
//! between.

use super::journal::{journal_header, scan_journal, JOURNAL_HEADER_LEN};
use super::{journal_path, path, Definitions, FILE_NAME};
use std::io;
use std::path::Path;

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
