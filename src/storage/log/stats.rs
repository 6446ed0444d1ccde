//! `LogStats`: the log's monotonic counters.

/// Counters (monotonic since open).
#[derive(Clone, Debug, Default)]
pub struct LogStats {
    pub appends: u64,
    pub appended_bytes: u64,
    /// Write+fdatasync batches completed.
    pub batches: u64,
    pub fsyncs: u64,
    /// Bytes handed to the disk (aligned, including re-written tail blocks).
    pub bytes_written: u64,
    /// Most records in one batch.
    pub max_batch_records: u64,
    pub segments_created: u64,
    pub segments_deleted: u64,
    /// Batches that found the disk full and were held for another try.
    pub out_of_space_retries: u64,
}
