//! Reading paged-out messages back into memory. A queue's tail (see
//! `broker::paged`) says which chunk of which log segment to read next; this
//! reads it, decodes the records of that queue and hands them back to the
//! queue, which makes them ready again. Paged-only copies release their log
//! reference as they come back; durable ones keep it until acked.
//!
//! A read that fails is retried (`READ_ATTEMPTS`, with backoff). If the
//! log still cannot give the chunk back, nothing is dropped: the queue
//! stops paging in (state `crashed` in `warren ctl list_queues`) and keeps
//! its paged runs, durable and paged-only copies alike, so their records
//! stay live and their segments are never deleted; a restart reads the
//! durable ones again. Other queues are not affected.

use crate::broker::message::{Body, Message};
use crate::broker::paged::PageRead;
use crate::broker::queue::PagedMessage;
use crate::broker::vhost::{QueueName, VhostId};
use crate::protocol::properties::delivery_mode_of;
use crate::protocol::types::ShortStr;
use crate::shard::counters::Counters;
use crate::shard::Shard;
use crate::storage::record::{self, RecordError, HEADER_LEN};
use crate::storage::Record;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Bytes read back per chunk (a record larger than this is read whole).
pub const CHUNK: u32 = 512 << 10;

/// Tries per chunk before the queue gives up paging in.
pub const READ_ATTEMPTS: u32 = 6;

/// Wait before the first retry; doubled for each further one (10 + 20 + 40
/// + 80 + 160 ms in all).
const RETRY_BACKOFF: Duration = Duration::from_millis(10);

/// Environment, tests only: `N` makes the first `N` page-in reads of the
/// process fail (an injected I/O error), `all` makes every one fail.
pub const FAIL_ENV: &str = "WARREN_TEST_PAGE_IN_FAIL";

/// Page-in reads that still have to fail (`FAIL_ENV`; u64::MAX: all).
fn injected_failures() -> &'static AtomicU64 {
    static LEFT: OnceLock<AtomicU64> = OnceLock::new();
    LEFT.get_or_init(|| {
        let n = match std::env::var(FAIL_ENV) {
            Ok(v) if v.trim() == "all" => u64::MAX,
            Ok(v) => v.trim().parse().unwrap_or(0),
            Err(_) => 0,
        };
        AtomicU64::new(n)
    })
}

/// Whether this read must fail (test injection).
fn inject_failure() -> bool {
    let left = injected_failures();
    left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| match n {
        0 => None,
        u64::MAX => Some(u64::MAX),
        n => Some(n - 1),
    })
    .is_ok()
}

/// Reads `read` back in the background and hands the result to `queue`.
pub fn spawn_read(shard: &Rc<Shard>, queue: QueueName, read: PageRead) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let result = read_with_retry(&shard, &queue, &read).await;
        finish(&shard, &queue, &read, result);
        shard.pump();
    })
    .detach();
}

/// Pages in until `queue` has a ready message in memory or nothing paged
/// (basic.get on a queue whose ready messages are all on disk).
pub async fn read_head(shard: &Rc<Shard>, queue: &QueueName) {
    loop {
        let read = {
            let mut queues = shard.queues.borrow_mut();
            let Some(q) = queues.get_mut(queue) else {
                return;
            };
            if !q.needs_page_in_for_get() {
                return;
            }
            q.start_page_in(CHUNK)
        };
        match read {
            Some(read) => {
                let result = read_with_retry(shard, queue, &read).await;
                finish(shard, queue, &read, result);
            }
            // Another read of this queue is out: let it land.
            None => glommio::timer::sleep(Duration::from_micros(200)).await,
        }
    }
}

/// `read_chunk`, retried with backoff while the read is still wanted (the
/// queue exists and was not purged meanwhile). Returns the last error once
/// `READ_ATTEMPTS` failed.
async fn read_with_retry(
    shard: &Shard,
    queue: &QueueName,
    read: &PageRead,
) -> io::Result<(Vec<PagedMessage>, u32)> {
    let mut backoff = RETRY_BACKOFF;
    let mut attempt = 1;
    loop {
        let err = match read_chunk(shard, queue, read).await {
            Ok(found) => return Ok(found),
            Err(e) => e,
        };
        let current = shard
            .queues
            .borrow()
            .get(queue)
            .is_some_and(|q| q.page_in_current(read));
        if !current || attempt >= READ_ATTEMPTS {
            return Err(err);
        }
        tracing::warn!(
            shard = shard.id,
            "cannot read queue '{queue}' back from segment {} \
             (attempt {attempt} of {READ_ATTEMPTS}): {err}; retrying",
            read.segment
        );
        glommio::timer::sleep(backoff).await;
        backoff *= 2;
        attempt += 1;
    }
}

/// Reads the chunk and decodes the records of `queue` in it. Returns them
/// with the number of bytes they covered (whole records only).
pub(super) async fn read_chunk(
    shard: &Shard,
    queue: &QueueName,
    read: &PageRead,
) -> io::Result<(Vec<PagedMessage>, u32)> {
    let log = shard.log.as_ref().expect("paging needs the log");
    let max = log.max_record_len();
    if inject_failure() {
        return Err(io::Error::other("injected page-in read error (test)"));
    }
    // Records of queues outside `/` carry their vhost's name.
    let vhost =
        (queue.vhost != VhostId::DEFAULT).then(|| shard.meta.borrow().vhost_name(queue.vhost));
    let mut data = log.read_range(read.segment, read.offset, read.len).await?;
    loop {
        let mut found = Vec::new();
        let mut pos = 0usize;
        let mut needed = None;
        while pos < data.len() {
            match record::decode(&data.slice(pos..), max) {
                Ok((rec, n)) => {
                    collect(vhost.as_ref(), queue, rec, read.segment, &mut found);
                    pos += n;
                }
                Err(RecordError::Truncated { needed: n }) => {
                    needed = Some(n);
                    break;
                }
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "segment {} offset {}: {e}",
                            read.segment,
                            read.offset as usize + pos
                        ),
                    ))
                }
            }
        }
        match needed {
            // The chunk cut the first record: read that record whole.
            Some(n) if pos == 0 && n > data.len() && n > HEADER_LEN => {
                let n = u32::try_from(n).map_err(|_| io::Error::other("record too large"))?;
                data = log.read_range(read.segment, read.offset, n).await?;
            }
            Some(_) if pos == 0 => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "paged run ends inside a record header",
                ))
            }
            _ => return Ok((found, pos as u32)),
        }
    }
}

/// Keeps the copy of `queue` a message record holds, if any.
fn collect(
    vhost: Option<&ShortStr>,
    queue: &QueueName,
    rec: Record,
    segment: u32,
    found: &mut Vec<PagedMessage>,
) {
    let (in_vhost, rec) = rec.split_vhost();
    if in_vhost.as_ref() != vhost {
        return;
    }
    let (m, durable) = match rec {
        Record::Message(m) => (m, true),
        Record::Paged(m) => (m, false),
        _ => return,
    };
    let Some((id, expires)) = m
        .targets
        .iter()
        .find(|t| t.queue == queue.name)
        .map(|t| (t.msg_id, t.expires))
    else {
        return;
    };
    let persistent = durable || delivery_mode_of(&m.raw_properties).is_some_and(|mode| mode == 2);
    found.push(PagedMessage {
        id,
        message: Arc::new(Message {
            exchange: m.exchange,
            routing_key: m.routing_key,
            raw_properties: m.raw_properties,
            body: Body::from(m.body),
            persistent,
        }),
        stored: durable.then_some(segment),
        expires,
    });
}

fn finish(
    shard: &Shard,
    queue: &QueueName,
    read: &PageRead,
    result: io::Result<(Vec<PagedMessage>, u32)>,
) {
    let log = shard.log.as_ref().expect("paging needs the log");
    {
        let mut queues = shard.queues.borrow_mut();
        // Deleted meanwhile: the deletion released everything it held.
        let Some(q) = queues.get_mut(queue) else {
            return;
        };
        match result {
            Ok((found, consumed)) => {
                let before = q.resident_count();
                let release = shard.tracked(q, |q| q.finish_page_in(read, found, consumed));
                let back = q.resident_count().saturating_sub(before);
                Counters::add(&shard.counters.paged_in, back as u64);
                shard.stats.paged_in(consumed as u64);
                log.release_many(read.segment, read.segment, release);
            }
            Err(e) => {
                if q.fail_page_in(read) {
                    tracing::error!(
                        shard = shard.id,
                        "cannot read queue '{queue}' back from segment {} \
                         after {READ_ATTEMPTS} attempts: {e}; the queue stops serving its \
                         {} paged messages (state crashed) and keeps them in the log \
                         until a restart",
                        read.segment,
                        q.paged_count()
                    );
                }
            }
        }
    }
    shard.mark_dirty(queue);
}
