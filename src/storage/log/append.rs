//! Appending: a record encoded straight into the pending run of the active
//! segment (no I/O, no await), rolling to a new segment when it does not
//! fit.

use super::error::AppendError;
use super::position::RecordPos;
use super::segment_state::SegState;
use super::state::{Inner, Run};
use super::Log;
use crate::storage::record::{self, RecordRef};
use crate::storage::segment::align_up;
use std::collections::BTreeSet;
use std::io;

impl Log {
    /// Appends a record (no I/O, no await) and returns where it will live.
    /// It is durable once `sync(pos.lsn())` resolves. A message record adds
    /// one live reference per target to its segment, a metadata record one.
    pub fn append<'a>(&self, record: impl Into<RecordRef<'a>>) -> Result<RecordPos, AppendError> {
        let record = record.into();
        let mut s = self.inner.borrow_mut();
        if let Some((k, m)) = &s.failed {
            return Err(AppendError::Failed(*k, m.clone()));
        }
        if s.shutdown {
            return Err(AppendError::Closed);
        }
        if let (Some(key), RecordRef::Message(m) | RecordRef::Paged(m)) =
            (&s.config.refuse_routing_key, record.content())
        {
            if m.routing_key.as_bytes()[..] == *key.as_bytes() {
                return Err(AppendError::Injected);
            }
        }
        let max = s.config.max_record_len;
        let total = record.encoded_len(max)?;
        if s.append_off as usize + total > s.active_size as usize {
            s.roll(total)?;
        }
        let (active, offset) = (s.active, s.append_off);
        let need_run = s.pending.back().is_none_or(|r| r.segment != active);
        if need_run {
            let data = s.spare_runs.pop().unwrap_or_default();
            s.pending.push_back(Run {
                segment: active,
                size: 0,
                create: false,
                dir_sync: false,
                start: offset,
                records: 0,
                data,
            });
        }
        let run = s.pending.back_mut().expect("a run for the active segment");
        debug_assert_eq!(run.start as usize + run.data.len(), offset as usize);
        let n = record::encode(&record, max, &mut run.data)?;
        run.records += 1;
        debug_assert_eq!(n, total);
        let pos = RecordPos {
            segment: active,
            offset,
            len: total as u32,
        };
        s.append_off += total as u32;
        s.pending_bytes += total;
        s.appended = pos.lsn();
        let refs = match record.content() {
            RecordRef::Message(m) | RecordRef::Paged(m) | RecordRef::Copy(m) => {
                m.targets.len() as u64
            }
            RecordRef::Metadata { .. } | RecordRef::Delayed(_) => 1,
            _ => 0,
        };
        s.segments.get_mut(&active).expect("active segment").live += refs;
        s.stats.appends += 1;
        s.stats.appended_bytes += total as u64;
        s.wake_writer();
        Ok(pos)
    }
}

impl Inner {
    /// Seals the active segment and starts the next one with room for at
    /// least `need` bytes.
    fn roll(&mut self, need: usize) -> Result<(), AppendError> {
        let next = self.active.checked_add(1).ok_or_else(|| {
            AppendError::Failed(io::ErrorKind::Other, "segment ids exhausted".into())
        })?;
        let old = self
            .segments
            .get_mut(&self.active)
            .expect("active segment has state");
        old.sealed = true;
        if old.live == 0 {
            self.dead.insert(self.active);
        }
        let size = align_up(need as u64).max(self.config.segment_size as u64);
        assert!(size <= u32::MAX as u64, "bounded by max_record_len");
        let size = size as u32;
        self.segments.insert(
            next,
            SegState {
                live: 0,
                sealed: false,
                pins: BTreeSet::new(),
                conservative: false,
            },
        );
        self.pending.push_back(Run {
            segment: next,
            size,
            create: true,
            dir_sync: false,
            start: 0,
            records: 0,
            data: self.spare_runs.pop().unwrap_or_default(),
        });
        self.active = next;
        self.active_size = size;
        self.append_off = 0;
        Ok(())
    }
}
