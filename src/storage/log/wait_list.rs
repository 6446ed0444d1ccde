//! `WaitList`: the wakers of tasks waiting for the next batch completion.

use std::task::Waker;

/// Wakers of tasks waiting for the next batch completion. Each waiter keeps
/// (generation, index) so a re-poll replaces its entry instead of adding one;
/// the list is cleared every generation, so it is bounded by the waiters
/// of one batch.
#[derive(Default)]
pub(super) struct WaitList {
    gen: u64,
    wakers: Vec<Waker>,
}

impl WaitList {
    pub(super) fn register(&mut self, slot: &mut Option<(u64, usize)>, waker: &Waker) {
        match *slot {
            Some((g, i)) if g == self.gen => self.wakers[i].clone_from(waker),
            _ => {
                *slot = Some((self.gen, self.wakers.len()));
                self.wakers.push(waker.clone());
            }
        }
    }
    pub(super) fn wake_all(&mut self) {
        self.gen += 1;
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }
}
