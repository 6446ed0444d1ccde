//! The writer task (group commit): takes every pending run, writes each
//! with one aligned DMA write, fdatasyncs, advances the durable lsn and
//! wakes the waiters it covers; between batches it deletes the segments
//! reclamation freed.

use super::position::Lsn;
use super::state::{Inner, Run};
use crate::storage::segment::{self, align_down, align_up, SegmentId, ALIGN};
use glommio::io::{Directory, DmaFile};
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

enum Work {
    Batch(Vec<Run>, Lsn),
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
            let runs: Vec<Run> = s.pending.drain(..).collect();
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
    loop {
        match NextWork(&inner).await {
            Work::Exit => break,
            Work::Batch(runs, end) => {
                let records: u64 = runs.iter().map(|r| r.records).sum();
                let bytes: usize = runs.iter().map(|r| r.data.len()).sum();
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
                    write_batch(&inner, &dir, &mut tail, runs).await
                };
                let mut s = inner.borrow_mut();
                match res {
                    Ok(()) => {
                        debug_assert!(end >= s.durable);
                        s.durable = end;
                        s.pending_bytes -= bytes;
                        s.stats.batches += 1;
                        s.stats.max_batch_records = s.stats.max_batch_records.max(records);
                    }
                    Err(e) => s.failed = Some((e.kind(), e.to_string())),
                }
                s.sync_waiters.wake_all();
                s.space_waiters.wake_all();
                if s.failed.is_some() {
                    break;
                }
            }
            Work::Delete(ids) => {
                if let Err(e) = delete_segments(&inner, &dir, ids).await {
                    let mut s = inner.borrow_mut();
                    s.failed = Some((e.kind(), e.to_string()));
                    s.sync_waiters.wake_all();
                    s.space_waiters.wake_all();
                    break;
                }
            }
        }
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

/// Writes each run with one aligned DMA write and syncs each segment, in
/// order (older segment durable before the next one is written).
async fn write_batch(
    inner: &Rc<RefCell<Inner>>,
    dir: &Directory,
    tail: &mut Option<Tail>,
    runs: Vec<Run>,
) -> io::Result<()> {
    for run in runs {
        let file = if run.create {
            let path = inner.borrow().dir.clone();
            let f = Rc::new(segment::create(&path, run.segment, run.size as u64).await?);
            dir.sync().await?;
            let mut s = inner.borrow_mut();
            s.files.insert(run.segment, f.clone());
            s.stats.segments_created += 1;
            *tail = None;
            f
        } else {
            let s = inner.borrow();
            s.files.get(&run.segment).cloned().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "segment file of a run is not open")
            })?
        };
        if run.data.is_empty() {
            continue;
        }
        let start = run.start as u64;
        let (file_pos, prefix): (u64, &[u8]) = match tail.as_ref() {
            Some(t)
                if t.segment == run.segment && t.block_start + t.bytes.len() as u64 == start =>
            {
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
        inner.borrow_mut().recycle(run.data);
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
        let mut s = inner.borrow_mut();
        s.stats.fsyncs += 1;
        s.stats
            .fsync_seconds
            .observe(started.elapsed().as_secs_f64());
        s.stats.bytes_written += size as u64;
    }
    Ok(())
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
