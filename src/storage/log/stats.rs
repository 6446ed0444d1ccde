//! `LogStats`: the log's monotonic counters, with the fdatasync latency
//! histogram (`FsyncHistogram`).

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
    /// How long the completed fdatasyncs took.
    pub fsync_seconds: FsyncHistogram,
}

/// Upper bounds (seconds) of the fdatasync latency buckets; a last,
/// unbounded one (`+Inf`) follows.
pub const FSYNC_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// A latency histogram: per bucket the observations at or below its bound
/// and above the previous one (not cumulative; Prometheus' cumulative
/// form is the renderer's), and their sum.
#[derive(Clone, Debug, Default)]
pub struct FsyncHistogram {
    pub counts: [u64; FSYNC_BUCKETS.len() + 1],
    pub sum_seconds: f64,
}

impl FsyncHistogram {
    pub fn observe(&mut self, seconds: f64) {
        let at = FSYNC_BUCKETS.partition_point(|b| *b < seconds);
        self.counts[at] += 1;
        self.sum_seconds += seconds;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket() {
        let mut h = FsyncHistogram::default();
        h.observe(0.0001);
        h.observe(0.003);
        h.observe(7.0);
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[5], 1);
        assert_eq!(h.counts[FSYNC_BUCKETS.len()], 1);
        assert!((h.sum_seconds - 7.0031).abs() < 1e-9);
    }
}
