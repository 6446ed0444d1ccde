//! A single-threaded one-shot slot: a task parks on `ReplyFuture` until the
//! shard's mesh processor fills the slot with the reply to its request.
//! Local to one executor (`Rc`), so no atomics.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

/// The filling side.
pub struct Sender<T>(Rc<RefCell<Slot<T>>>);

/// The waiting side.
pub struct ReplyFuture<T>(Rc<RefCell<Slot<T>>>);

pub fn channel<T>() -> (Sender<T>, ReplyFuture<T>) {
    let slot = Rc::new(RefCell::new(Slot {
        value: None,
        waker: None,
    }));
    (Sender(slot.clone()), ReplyFuture(slot))
}

impl<T> Sender<T> {
    pub fn send(self, value: T) {
        let waker = {
            let mut slot = self.0.borrow_mut();
            debug_assert!(slot.value.is_none(), "one-shot filled twice");
            slot.value = Some(value);
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for ReplyFuture<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = self.0.borrow_mut();
        match slot.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
