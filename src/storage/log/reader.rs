//! Reading records back: a range or one record, once durable, through a
//! cached buffered reader per segment, checked against its CRC.

use super::position::{Lsn, RecordPos};
use super::Log;
use crate::storage::record::{self, Record, HEADER_LEN};
use crate::storage::segment::{self, SegmentId};
use bytes::Bytes;
use glommio::io::BufferedFile;
use std::io;
use std::rc::Rc;

impl Log {
    /// A (cached) reader of a segment that still exists.
    async fn reader(&self, segment: SegmentId) -> io::Result<Rc<BufferedFile>> {
        let file = {
            let s = self.inner.borrow();
            if !s.segments.contains_key(&segment) {
                return Err(io::Error::new(io::ErrorKind::NotFound, "segment deleted"));
            }
            s.readers.get(&segment).cloned()
        };
        match file {
            Some(f) => Ok(f),
            None => {
                let dir = self.inner.borrow().dir.clone();
                let f = Rc::new(segment::open_reader(&dir, segment).await?);
                let mut s = self.inner.borrow_mut();
                Ok(s.readers.entry(segment).or_insert(f).clone())
            }
        }
    }

    /// Reads `len` bytes at `offset` of `segment` (waiting until they are
    /// durable): a run of whole records for the caller to decode. The
    /// segment must hold a live reference, or it may be gone.
    pub async fn read_range(&self, segment: SegmentId, offset: u32, len: u32) -> io::Result<Bytes> {
        let end = offset
            .checked_add(len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "range past 4 GiB"))?;
        self.sync(Lsn::new(segment, end)).await?;
        let file = self.reader(segment).await?;
        let data = file.read_at(offset as u64, len as usize).await?;
        if data.len() != len as usize {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short read of a log range",
            ));
        }
        Ok(Bytes::copy_from_slice(&data))
    }

    /// The configured maximum record length (for decoding read ranges).
    pub fn max_record_len(&self) -> u32 {
        self.inner.borrow().config.max_record_len
    }

    /// Reads the record at `pos` back (waiting until it is durable) and
    /// checks it.
    pub async fn read_record(&self, pos: RecordPos) -> io::Result<Record> {
        let max = self.max_record_len();
        if pos.len as usize <= HEADER_LEN || pos.len - HEADER_LEN as u32 > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad record length",
            ));
        }
        let bytes = self.read_range(pos.segment, pos.offset, pos.len).await?;
        let (rec, n) = record::decode(&bytes, max)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        if n != pos.len as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "record length mismatch",
            ));
        }
        Ok(rec)
    }

    /// Reads back the body of the message record at `pos`.
    pub async fn read_body(&self, pos: RecordPos) -> io::Result<Bytes> {
        match self.read_record(pos).await? {
            Record::Message(m) | Record::Paged(m) | Record::Copy(m) => Ok(m.body),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected a message record, found {:?}", other.kind()),
            )),
        }
    }
}
