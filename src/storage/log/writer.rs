//! The writer task (group commit): takes every pending run, writes each
//! with one aligned DMA write, fdatasyncs, advances the durable lsn and
//! wakes the waiters it covers; between batches it deletes the segments
//! reclamation freed.

use super::position::Lsn;
use super::state::{Inner, Run};
use crate::storage::segment::{self, align_down, align_up, SegmentId, ALIGN};
use glommio::io::{Directory, DmaFile};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

enum Work {
    Batch(VecDeque<Run>, Lsn),
    Delete(Vec<SegmentId>),
    Exit,
}

struct NextWork<'a>(&'a Rc<RefCell<Inner>>);

impl Future for NextWork<'_> {
    type Output = Work;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Work> {
        let mut s = self.0.borrow_mut();
        if s.killed {
            return Poll::Ready(Work::Exit);
        }
        if !s.pending.is_empty() {
            let runs: VecDeque<Run> = s.pending.drain(..).collect();
            return Poll::Ready(Work::Batch(runs, s.appended));
        }
        let deletable = s.deletable();
        if !deletable.is_empty() {
            return Poll::Ready(Work::Delete(deletable));
        }
        if s.shutdown {
            return Poll::Ready(Work::Exit);
        }
        s.writer_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The last partial block written to a segment, re-written (extended) by the
/// next batch.
struct Tail {
    segment: SegmentId,
    block_start: u64,
    bytes: Vec<u8>,
}

pub(super) async fn writer_loop(inner: Rc<RefCell<Inner>>, dir: Directory) {
    let mut tail: Option<Tail> = None;
    let mut full = OutOfSpace::default();
    loop {
        match NextWork(&inner).await {
            Work::Exit => break,
            Work::Batch(mut runs, end) => {
                let records: u64 = runs.iter().map(|r| r.records).sum();
                let (injected, delay) = {
                    let s = inner.borrow();
                    let injected = s
                        .config
                        .fail_after_batches
                        .is_some_and(|n| s.stats.batches >= n);
                    (injected, s.config.batch_delay)
                };
                if let Some(d) = delay {
                    glommio::timer::sleep(d).await;
                }
                let res = if injected {
                    Err(io::Error::other("injected write failure"))
                } else {
                    write_batch(&inner, &dir, &mut tail, &mut runs, end).await
                };
                match res {
                    Ok(()) => {
                        let mut s = inner.borrow_mut();
                        debug_assert!(end >= s.durable);
                        s.durable = end;
                        s.stats.batches += 1;
                        s.stats.max_batch_records = s.stats.max_batch_records.max(records);
                        full.cleared(&mut s);
                        s.sync_waiters.wake_all();
                        s.space_waiters.wake_all();
                    }
                    Err(e) if is_out_of_space(&e) && !inner.borrow().shutdown => {
                        // Nothing of the failed run counts as written: it
                        // goes back, whole, in front of what was appended
                        // since, and is written again (write and fdatasync,
                        // never an fsync alone) once there is room.
                        {
                            let mut s = inner.borrow_mut();
                            full.hit(&mut s, &e);
                            while let Some(run) = runs.pop_back() {
                                s.pending.push_front(run);
                            }
                            // The runs already written moved `durable`.
                            s.sync_waiters.wake_all();
                        }
                        // No segment is deleted meanwhile: a dead one may
                        // owe its death to a record still held here (a
                        // compaction's copy), and deleting it first would
                        // lose that message in a crash.
                        glommio::timer::sleep(full.backoff()).await;
                    }
                    Err(e) => {
                        fail(&inner, e);
                        break;
                    }
                }
            }
            Work::Delete(ids) => {
                if let Err(e) = delete_segments(&inner, &dir, ids).await {
                    fail(&inner, e);
                    break;
                }
            }
        }
    }
    {
        let mut s = inner.borrow_mut();
        full.cleared(&mut s);
    }
    let files: Vec<Rc<DmaFile>> = inner.borrow_mut().files.drain().map(|(_, f)| f).collect();
    for f in files {
        if let Ok(f) = Rc::try_unwrap(f) {
            let _ = f.close().await;
        }
    }
    let readers: Vec<_> = inner.borrow_mut().readers.drain().map(|(_, f)| f).collect();
    for f in readers {
        if let Ok(f) = Rc::try_unwrap(f) {
            let _ = f.close().await;
        }
    }
    let _ = dir.close().await;
    let mut s = inner.borrow_mut();
    s.sync_waiters.wake_all();
    s.space_waiters.wake_all();
}

/// The log fails for good: every waiter learns it, nothing more is written.
fn fail(inner: &Rc<RefCell<Inner>>, e: io::Error) {
    let mut s = inner.borrow_mut();
    s.failed = Some((e.kind(), e.to_string()));
    s.sync_waiters.wake_all();
    s.space_waiters.wake_all();
}

/// A full file system (or quota): the one write error the log waits out
/// instead of failing for good. Creating a segment (its preallocation) is
/// where it shows up in practice; a write or fdatasync into preallocated
/// space saying so is treated the same.
fn is_out_of_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// First and longest wait before a batch that found the disk full is tried
/// again.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// The writer's view of a full disk: whether it is waiting one out, the
/// next wait, and the shared out-of-space count it raised (the broker's
/// disk alarm reads it: `LogConfig::out_of_space`).
#[derive(Default)]
struct OutOfSpace {
    waiting: bool,
    next: Duration,
}

impl OutOfSpace {
    fn hit(&mut self, s: &mut Inner, e: &io::Error) {
        s.stats.out_of_space_retries += 1;
        if !self.waiting {
            self.waiting = true;
            self.next = RETRY_FIRST;
            s.out_of_space = true;
            if let Some(count) = &s.config.out_of_space {
                count.fetch_add(1, Ordering::SeqCst);
            }
            tracing::warn!(
                "log {}: out of disk space ({e}); holding {} bytes unwritten \
                 (unconfirmed) and trying again until there is room",
                s.dir.display(),
                s.pending_bytes
            );
        }
    }

    fn backoff(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(RETRY_MAX);
        d
    }

    fn cleared(&mut self, s: &mut Inner) {
        if !self.waiting {
            return;
        }
        self.waiting = false;
        s.out_of_space = false;
        if let Some(count) = &s.config.out_of_space {
            count.fetch_sub(1, Ordering::SeqCst);
        }
        tracing::info!(
            "log {}: disk space available again, writing",
            s.dir.display()
        );
    }
}

/// Writes each run with one aligned DMA write and syncs each segment, in
/// order (older segment durable before the next one is written). Each run
/// written and synced leaves `runs` and moves the durable lsn to its end
/// (at most `end`, the lsn the batch was taken at); on an error the failed
/// run and the ones after it stay in `runs`, untouched.
async fn write_batch(
    inner: &Rc<RefCell<Inner>>,
    dir: &Directory,
    tail: &mut Option<Tail>,
    runs: &mut VecDeque<Run>,
    end: Lsn,
) -> io::Result<()> {
    while let Some(run) = runs.front_mut() {
        let file = if run.create {
            let path = inner.borrow().dir.clone();
            let f = Rc::new(segment::create(&path, run.segment, run.size as u64).await?);
            {
                let mut s = inner.borrow_mut();
                s.files.insert(run.segment, f.clone());
                s.stats.segments_created += 1;
            }
            // Created: a retry after this point must not create it again,
            // but must still make its directory entry durable.
            run.create = false;
            run.dir_sync = true;
            *tail = None;
            f
        } else {
            let s = inner.borrow();
            s.files.get(&run.segment).cloned().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "segment file of a run is not open")
            })?
        };
        if run.dir_sync {
            dir.sync().await?;
            run.dir_sync = false;
        }
        if !run.data.is_empty() {
            let (size, fsync_seconds) = write_run(&file, tail, run).await?;
            let mut s = inner.borrow_mut();
            s.stats.fsyncs += 1;
            s.stats.fsync_seconds.observe(fsync_seconds);
            s.stats.bytes_written += size as u64;
        }
        let run = runs.pop_front().expect("the run just written");
        let run_end = Lsn::new(run.segment, run.start + run.data.len() as u32).min(end);
        let mut s = inner.borrow_mut();
        s.pending_bytes -= run.data.len();
        if run_end > s.durable {
            s.durable = run_end;
        }
        s.recycle(run.data);
    }
    Ok(())
}

/// Writes one run (after the re-written partial block before it) with one
/// aligned DMA write and fdatasyncs; `tail` moves only once both succeeded.
/// Returns the bytes written.
/// Writes one run and fdatasyncs it; answers the bytes written and how
/// long the fdatasync took.
async fn write_run(file: &DmaFile, tail: &mut Option<Tail>, run: &Run) -> io::Result<(usize, f64)> {
    let start = run.start as u64;
    let (file_pos, prefix): (u64, &[u8]) = match tail.as_ref() {
        Some(t) if t.segment == run.segment && t.block_start + t.bytes.len() as u64 == start => {
            (t.block_start, &t.bytes)
        }
        _ => {
            assert_eq!(
                start % ALIGN,
                0,
                "a run starts on a block or after the tail"
            );
            (start, &[])
        }
    };
    let len = prefix.len() + run.data.len();
    let size = align_up(len as u64) as usize;
    let mut buf = file.alloc_dma_buffer(size);
    {
        let b = buf.as_bytes_mut();
        b[..prefix.len()].copy_from_slice(prefix);
        b[prefix.len()..len].copy_from_slice(&run.data);
        b[len..].fill(0);
    }
    let end = file_pos + len as u64;
    let block_start = align_down(end);
    let new_tail = Tail {
        segment: run.segment,
        block_start,
        bytes: buf.as_bytes()[(block_start - file_pos) as usize..len].to_vec(),
    };
    let written = file.write_at(buf, file_pos).await?;
    if written != size {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write: {written} of {size} bytes"),
        ));
    }
    let started = std::time::Instant::now();
    file.fdatasync().await?;
    *tail = Some(new_tail);
    Ok((size, started.elapsed().as_secs_f64()))
}

async fn delete_segments(
    inner: &Rc<RefCell<Inner>>,
    dir: &Directory,
    ids: Vec<SegmentId>,
) -> io::Result<()> {
    for id in ids {
        let (path, file) = {
            let mut s = inner.borrow_mut();
            // Re-check: a release cannot revive a dead segment, but be strict.
            match s.segments.get(&id) {
                Some(st) if st.sealed && st.live == 0 => {}
                _ => continue,
            }
            s.segments.remove(&id);
            s.dead.remove(&id);
            let reader = s.readers.remove(&id);
            (segment::path(&s.dir, id), (s.files.remove(&id), reader))
        };
        drop(file);
        glommio::io::remove(&path).await?;
        // Durable before any segment holding kill-records for it goes.
        dir.sync().await?;
        inner.borrow_mut().stats.segments_deleted += 1;
    }
    Ok(())
}
