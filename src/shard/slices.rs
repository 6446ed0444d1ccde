//! The sweep that copies long-waiting small messages out of their
//! publishers' read buffers (`broker::queue::slices` says why they are
//! kept as slices first).
//!
//! Generations: messages kept as slices are marked with the shard's
//! current generation, and the first of each generation in a queue
//! registers the queue (`young`). Every `SWEEP_EVERY` while anything is
//! registered, the sweep copies out, in the queues registered one sweep
//! earlier (`old`), the slices of earlier generations still ready; then
//! `young` becomes `old` and the generation moves on. So a message is
//! copied once it has waited between one and two periods, and the read
//! buffers held beyond what the queues are charged for are at most what
//! the shard read in the last two periods.
//!
//! Invariant: every ready message marked as slices in a queue on this
//! shard is covered by a registration of that queue, in `young` (marked
//! with the current generation) or `old` (the previous one), from an id at
//! most its own. (A delivered message that comes back, requeued, comes
//! back unmarked: it stays slices, as it was while delivered.)

use crate::broker::vhost::QueueName;
use crate::shard::Shard;
use glommio::timer::TimerActionOnce;
use std::cell::{Cell, RefCell};
use std::num::NonZeroU16;
use std::rc::Rc;
use std::time::Duration;

/// How long a small message waits as slices before the sweep may copy it
/// out (it is copied after one to two periods).
pub const SWEEP_EVERY: Duration = Duration::from_millis(10);

/// The shard's generations of slices and the queues holding them.
pub struct SliceSweep {
    generation: Cell<NonZeroU16>,
    /// (queue, id of its first slice) of the current generation.
    young: RefCell<Vec<(QueueName, u64)>>,
    /// The same, of the previous generation: swept next.
    old: RefCell<Vec<(QueueName, u64)>>,
    /// The armed sweep, while anything is registered.
    armed: RefCell<Option<TimerActionOnce<()>>>,
}

impl Default for SliceSweep {
    fn default() -> SliceSweep {
        SliceSweep {
            generation: Cell::new(NonZeroU16::MIN),
            young: RefCell::new(Vec::new()),
            old: RefCell::new(Vec::new()),
            armed: RefCell::new(None),
        }
    }
}

impl SliceSweep {
    /// The generation a message kept as slices now is marked with.
    pub fn generation(&self) -> NonZeroU16 {
        self.generation.get()
    }

    /// Queues registered and not yet swept (both generations).
    pub fn registered(&self) -> usize {
        self.young.borrow().len() + self.old.borrow().len()
    }

    /// Moves to the next generation (wrapping past 0, which is not one)
    /// and returns the registrations to sweep now.
    fn advance(&self) -> Vec<(QueueName, u64)> {
        let young = std::mem::take(&mut *self.young.borrow_mut());
        let old = std::mem::replace(&mut *self.old.borrow_mut(), young);
        let next = self
            .generation
            .get()
            .checked_add(1)
            .unwrap_or(NonZeroU16::MIN);
        self.generation.set(next);
        old
    }
}

/// `queue` kept its first slice of the current generation, `first`: the
/// sweep will look at it from there. Arms the sweep if it is not.
pub fn register(shard: &Rc<Shard>, queue: &QueueName, first: u64) {
    shard.slices.young.borrow_mut().push((queue.clone(), first));
    arm(shard);
}

fn arm(shard: &Rc<Shard>) {
    let mut armed = shard.slices.armed.borrow_mut();
    if armed.is_some() {
        return;
    }
    let owner = shard.clone();
    *armed = Some(TimerActionOnce::do_in(SWEEP_EVERY, async move {
        owner.slices.armed.borrow_mut().take();
        sweep(&owner);
        if owner.slices.registered() > 0 && !owner.shutting_down.get() {
            arm(&owner);
        }
    }));
}

/// Copies out the slices registered one sweep ago that are still ready,
/// and moves to the next generation. Returns how many were copied.
pub fn sweep(shard: &Shard) -> usize {
    // The generation ending now: its slices are left for the next sweep,
    // everything older the `old` registrations cover is copied.
    let ending = shard.slices.generation();
    let old = shard.slices.advance();
    let mut queues = shard.queues.borrow_mut();
    old.iter()
        .filter_map(|(name, from)| Some(queues.get_mut(name)?.detach_slices(*from, ending)))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::vhost::VhostId;
    use crate::protocol::types::ShortStr;

    fn queue(name: &str) -> QueueName {
        QueueName::new(VhostId::DEFAULT, ShortStr::from(name))
    }

    #[test]
    fn a_registration_is_swept_at_the_second_advance() {
        let s = SliceSweep::default();
        let first = s.generation();
        s.young.borrow_mut().push((queue("a"), 7));
        assert_eq!(s.registered(), 1);
        // The first sweep after the registration leaves it (its messages
        // may have come in just now) ...
        assert!(s.advance().is_empty());
        assert_ne!(s.generation(), first);
        assert_eq!(s.registered(), 1);
        // ... the second hands it over.
        assert_eq!(s.advance(), vec![(queue("a"), 7)]);
        assert_eq!(s.registered(), 0);
    }

    #[test]
    fn generations_wrap_past_zero() {
        let s = SliceSweep::default();
        s.generation.set(NonZeroU16::MAX);
        s.advance();
        assert_eq!(s.generation(), NonZeroU16::MIN);
    }
}
