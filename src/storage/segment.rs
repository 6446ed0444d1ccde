//! Segment files of the log: naming, listing, creating (preallocated, opened
//! for O_DIRECT), and scanning one segment during recovery.
//!
//! A segment is `<dir>/<id:020>.seg`, ids strictly increasing (gaps where
//! dead segments were deleted). Records are packed back to back from offset
//! 0; the unwritten rest of a preallocated segment reads as zeroes, which the
//! scanner takes as the clean end of the segment. A segment whose scan stops
//! on a torn or corrupt record is truncated to its valid prefix by the log
//! (see `log/recovery.rs`), so the next scan ends cleanly at EOF there.
//!
//! Writes use O_DIRECT (`DmaFile`); reads use buffered I/O (`BufferedFile`,
//! still io_uring): on this kernel glommio 0.9's DMA reads (READ_FIXED) fail
//! with EOPNOTSUPP, and the page cache stays coherent with direct writes.
//! The recovery scan reads with plain blocking `pread`s (see `scan`).

use super::record::{self, Record, RecordError};
use bytes::{Bytes, BytesMut};
use glommio::io::{BufferedFile, DmaFile, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// A segment's number (its file name).
pub type SegmentId = u32;

/// Alignment of every DMA write (position and size). A multiple of every
/// logical block size in use (512 or 4096).
pub const ALIGN: u64 = 4096;

/// Rounds `v` up to a multiple of `ALIGN`.
pub fn align_up(v: u64) -> u64 {
    v.div_ceil(ALIGN) * ALIGN
}

/// Rounds `v` down to a multiple of `ALIGN`.
pub fn align_down(v: u64) -> u64 {
    v / ALIGN * ALIGN
}

/// The file name of segment `id`.
pub fn file_name(id: SegmentId) -> String {
    format!("{id:020}.seg")
}

/// The path of segment `id` under `dir`.
pub fn path(dir: &Path, id: SegmentId) -> PathBuf {
    dir.join(file_name(id))
}

/// The id of a segment file name, if it is one.
pub fn parse_name(name: &str) -> Option<SegmentId> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|v| u32::try_from(v).ok())
}

/// The segment ids present in `dir`, ascending. Blocking (`read_dir`): used
/// once at startup.
pub fn list(dir: &Path) -> io::Result<Vec<SegmentId>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_name) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Creates segment `id` (it must not exist) and preallocates `size` bytes.
pub async fn create(dir: &Path, id: SegmentId, size: u64) -> io::Result<DmaFile> {
    debug_assert_eq!(size % ALIGN, 0);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .dma_open(path(dir, id))
        .await?;
    if let Err(e) = file.pre_allocate(size, false).await {
        // A full disk: leave no half-allocated file behind, so that the
        // next try creates it afresh (and the space it took is free).
        let _ = file.close().await;
        let _ = std::fs::remove_file(path(dir, id));
        return Err(e.into());
    }
    Ok(file)
}

/// Opens an existing segment for (buffered) reading, and writing so that
/// recovery can truncate it.
pub async fn open_reader(dir: &Path, id: SegmentId) -> io::Result<BufferedFile> {
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .buffered_open(path(dir, id))
        .await?)
}

/// One record found by `scan`, at `offset`, `len` bytes long (header
/// included).
#[derive(Debug)]
pub struct ScannedRecord {
    pub offset: u32,
    pub len: u32,
    pub record: Record,
}

/// How the scan of one segment ended.
#[derive(Debug)]
pub struct Scan {
    /// Valid records handed to the callback.
    pub records: u64,
    /// End of the last valid record.
    pub valid_end: u64,
    /// Why the scan stopped before EOF on something that is not a clean end
    /// (zeroes or EOF at a record boundary): a torn or corrupt record.
    pub error: Option<RecordError>,
    /// Size of the file.
    pub file_size: u64,
}

/// Reads `file` from the start and validates record after record until the
/// clean end, a torn/corrupt record, or EOF, handing each valid record to
/// `on_record` as it goes. Memory: one window of about `read_chunk` bytes
/// (or one record, if larger); records are zero-copy slices of the window,
/// so only what the callback keeps outlives it.
///
/// Blocking reads: it runs at start-up, before the shard serves anything,
/// and stays clear of the io_uring rings (a shard once parked for good in
/// glommio while recovering through them).
pub fn scan(
    file: &std::fs::File,
    max_record_len: u32,
    read_chunk: usize,
    mut on_record: impl FnMut(ScannedRecord),
) -> io::Result<Scan> {
    use std::os::unix::fs::FileExt;
    let file_size = file.metadata()?.len();
    let chunk = align_up(read_chunk.max(ALIGN as usize) as u64);
    // `window` holds the file's bytes [base, loaded); `pos` is relative to it.
    let mut window = Bytes::new();
    let mut base: u64 = 0;
    let mut loaded: u64 = 0;
    let mut pos: usize = 0;
    let mut records = 0u64;
    let mut error = None;
    loop {
        match record::check(&window[pos..], max_record_len) {
            Ok(n) => {
                let slice = window.slice(pos..pos + n);
                match record::decode(&slice, max_record_len) {
                    Ok((record, len)) => {
                        assert_eq!(len, n, "check and decode disagree on length");
                        on_record(ScannedRecord {
                            offset: (base + pos as u64) as u32,
                            len: n as u32,
                            record,
                        });
                        records += 1;
                        pos += n;
                    }
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            Err(RecordError::Zeroes) => break,
            Err(RecordError::Truncated { needed }) => {
                if loaded < file_size {
                    let rest = window.len() - pos;
                    let want = (needed.saturating_sub(rest) as u64).max(chunk);
                    let size = align_up(want).min(align_up(file_size - loaded));
                    let mut got = vec![0u8; size as usize];
                    let n = loop {
                        match file.read_at(&mut got, loaded) {
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            r => break r?,
                        }
                    };
                    got.truncate(n);
                    if got.is_empty() {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "segment shorter than its size",
                        ));
                    }
                    // The next window: the unread rest of this one, then the new bytes.
                    let mut next = BytesMut::with_capacity(rest + got.len());
                    next.extend_from_slice(&window[pos..]);
                    next.extend_from_slice(&got);
                    base += pos as u64;
                    loaded += got.len() as u64;
                    window = next.freeze();
                    pos = 0;
                    continue;
                }
                if !window[pos..].iter().all(|&b| b == 0) {
                    error = Some(RecordError::Truncated { needed });
                }
                break;
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    Ok(Scan {
        records,
        valid_end: base + pos as u64,
        error,
        file_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(file_name(1), "00000000000000000001.seg");
        assert_eq!(parse_name(&file_name(u32::MAX)), Some(u32::MAX));
        assert_eq!(parse_name("00000000000000000001.seg.corrupt"), None);
        assert_eq!(parse_name("1.seg"), None);
        assert_eq!(parse_name("0000000000000000000x.seg"), None);
        assert_eq!(parse_name("99999999999999999999.seg"), None);
    }

    #[test]
    fn alignment_helpers() {
        assert_eq!(align_up(0), 0);
        assert_eq!(align_up(1), 4096);
        assert_eq!(align_up(4096), 4096);
        assert_eq!(align_down(8191), 4096);
    }
}
