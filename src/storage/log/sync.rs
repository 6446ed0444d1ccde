//! Waiting on the writer: `sync` until a completed fdatasync covers an lsn,
//! `wait_for_space` while too much is appended but not durable.

use super::position::Lsn;
use super::state::Inner;
use super::Log;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

impl Log {
    /// Resolves once everything up to `lsn` is on disk (a completed
    /// fdatasync covers it). Errors if the log failed.
    pub fn sync(&self, lsn: Lsn) -> impl Future<Output = io::Result<()>> + 'static {
        let target = lsn.min(self.inner.borrow().appended);
        SyncFuture {
            inner: self.inner.clone(),
            lsn: target,
            slot: None,
        }
    }

    /// Resolves once everything appended so far is durable.
    pub fn sync_all(&self) -> impl Future<Output = io::Result<()>> + 'static {
        let lsn = self.inner.borrow().appended;
        self.sync(lsn)
    }

    /// Waits while more than `max_pending_bytes` are appended but not
    /// durable (backpressure for publishers that do not wait for confirms).
    pub async fn wait_for_space(&self) {
        SpaceFuture {
            inner: self.inner.clone(),
            slot: None,
        }
        .await
    }
}

struct SyncFuture {
    inner: Rc<RefCell<Inner>>,
    lsn: Lsn,
    slot: Option<(u64, usize)>,
}

impl Future for SyncFuture {
    type Output = io::Result<()>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut s = this.inner.borrow_mut();
        if s.durable >= this.lsn {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = s.failed_err() {
            return Poll::Ready(Err(e));
        }
        if s.killed {
            return Poll::Ready(Err(io::Error::other("log crashed")));
        }
        s.sync_waiters.register(&mut this.slot, cx.waker());
        Poll::Pending
    }
}

struct SpaceFuture {
    inner: Rc<RefCell<Inner>>,
    slot: Option<(u64, usize)>,
}

impl Future for SpaceFuture {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut s = this.inner.borrow_mut();
        if s.pending_bytes <= s.config.max_pending_bytes || s.failed.is_some() || s.killed {
            return Poll::Ready(());
        }
        s.space_waiters.register(&mut this.slot, cx.waker());
        Poll::Pending
    }
}
