//! `LogConfig`: a log's tunables and test aids, and their validation.

use crate::storage::record::DEFAULT_MAX_RECORD_LEN;
use crate::storage::segment::ALIGN;
use std::io;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

/// Tunables of a log.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// Size of a segment file (multiple of 4096, 16 KiB ..= 1 GiB).
    pub segment_size: u32,
    /// Largest record (kind + payload) accepted by append and recovery
    /// (64 B ..= 1 GiB).
    pub max_record_len: u32,
    /// Read size while scanning segments at recovery.
    pub read_chunk: usize,
    /// `wait_for_space` waits while more than this many bytes are appended
    /// but not yet durable (the broker's backpressure signal).
    pub max_pending_bytes: usize,
    /// Test aid: the write of batch number N+1 fails as a disk error would
    /// (`WARREN_TEST_LOG_FAIL_AFTER_BATCHES` in the broker).
    pub fail_after_batches: Option<u64>,
    /// Test aid: every batch waits this long before it is written, as a
    /// slow disk would (`WARREN_TEST_LOG_SYNC_DELAY_MS` in the broker).
    pub batch_delay: Option<std::time::Duration>,
    /// Test aid: a message record routed with this routing key is refused
    /// by `append` (`AppendError::Injected`) while the log stays healthy
    /// (`WARREN_TEST_LOG_REFUSE_ROUTING_KEY` in the broker).
    pub refuse_routing_key: Option<String>,
    /// Raised by one (and lowered again) while this log waits out a full
    /// disk; the broker shares one counter between its shards' logs and
    /// its disk alarm.
    pub out_of_space: Option<Arc<AtomicUsize>>,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_size: 64 << 20,
            max_record_len: DEFAULT_MAX_RECORD_LEN,
            read_chunk: 1 << 20,
            max_pending_bytes: 64 << 20,
            fail_after_batches: None,
            batch_delay: None,
            refuse_routing_key: None,
            out_of_space: None,
        }
    }
}

impl LogConfig {
    pub(super) fn validate(&self) -> io::Result<()> {
        let bad = |what: &str| {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                what.to_string(),
            ))
        };
        if !(self.segment_size as u64).is_multiple_of(ALIGN)
            || self.segment_size < 16 << 10
            || self.segment_size > 1 << 30
        {
            return bad("segment_size must be a multiple of 4096 in 16 KiB..=1 GiB");
        }
        if self.max_record_len < 64 || self.max_record_len > 1 << 30 {
            return bad("max_record_len must be in 64..=1 GiB");
        }
        Ok(())
    }
}
