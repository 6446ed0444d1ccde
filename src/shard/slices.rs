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
//! copied once it has waited between one and two periods.
//!
//! The bound on what marked messages pin does not depend on the timer
//! firing on time (a shard starved of CPU reads a burst into one
//! generation and sweeps late): each generation may mark messages in at
//! most `WINDOWS_PER_GENERATION` distinct 64 KiB windows of the address
//! space (`admit`; a message whose slices would touch one more is copied at
//! enqueue instead). Read buffers are at most a read chunk (64 KiB) plus a
//! TLS record, so a window meets the buffers inside it (64 KiB) and at most
//! two that cross its edges: what the marked messages of the (at most two)
//! live generations pin beyond their charge is at most
//! 2 × `WINDOWS_PER_GENERATION` × (64 KiB + 2 × 80 KiB) = 7 MiB per shard,
//! whatever the timer does. A flat-out 1p1c publisher fills about three
//! read buffers per 10 ms period, so the fast path never meets the limit.
//!
//! Invariant: every ready message marked as slices in a queue on this
//! shard is covered by a registration of that queue, in `young` (marked
//! with the current generation) or `old` (the previous one), from an id at
//! most its own. (A delivered message that comes back, requeued, comes
//! back unmarked: it stays slices, as it was while delivered.)

use crate::broker::message::Message;
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

/// Distinct 64 KiB address windows the marked messages of one generation
/// may touch (see the module's doc for the bound this gives).
pub const WINDOWS_PER_GENERATION: usize = 16;

/// log2 of an address window's size: 64 KiB, a read chunk.
const WINDOW_SHIFT: u32 = 16;

/// No address's window: addresses shifted right are below it.
const NO_WINDOW: usize = usize::MAX;

/// The shard's generations of slices and the queues holding them.
pub struct SliceSweep {
    generation: Cell<NonZeroU16>,
    /// The address windows (address >> `WINDOW_SHIFT`) the current
    /// generation's marked messages touch; at most
    /// `WINDOWS_PER_GENERATION`.
    windows: RefCell<Vec<usize>>,
    /// The window of the latest slice `admit` looked at (one of
    /// `windows`), or `NO_WINDOW`.
    latest_window: Cell<usize>,
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
            windows: RefCell::new(Vec::with_capacity(WINDOWS_PER_GENERATION)),
            latest_window: Cell::new(NO_WINDOW),
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

    /// Whether `message` may be kept as slices in the current generation:
    /// every read buffer it slices lies in an address window the
    /// generation already touches, or there is room for the new ones.
    /// A message refused is copied at enqueue instead. (The windows of a
    /// refused message's first slices may stay counted: a conservative
    /// count.)
    pub fn admit(&self, message: &Message) -> bool {
        let latest = self.latest_window.get();
        let admits = |slice: &[u8]| {
            let window = (slice.as_ptr() as usize) >> WINDOW_SHIFT;
            // The usual case: a publisher's messages come read buffer by
            // read buffer, all of a message's slices in the latest one.
            slice.is_empty() || window == latest || self.admit_window(window)
        };
        admits(message.exchange.as_bytes())
            && admits(message.routing_key.as_bytes())
            && admits(&message.raw_properties)
            && message.body.chunks().iter().all(|chunk| admits(chunk))
    }

    /// Counts `window` in the current generation (it becomes the latest)
    /// unless the generation has no room for another one.
    fn admit_window(&self, window: usize) -> bool {
        let mut windows = self.windows.borrow_mut();
        if !windows.contains(&window) {
            if windows.len() == WINDOWS_PER_GENERATION {
                return false;
            }
            windows.push(window);
        }
        self.latest_window.set(window);
        true
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
        self.windows.borrow_mut().clear();
        self.latest_window.set(NO_WINDOW);
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
    fn a_generation_marks_messages_in_a_bounded_number_of_windows() {
        // Buffers of a window's size, each starting a window apart at
        // least: one new window (or two) per buffer.
        let buffers: Vec<bytes::Bytes> = (0..=2 * WINDOWS_PER_GENERATION)
            .map(|_| bytes::Bytes::from(vec![0u8; 1 << WINDOW_SHIFT]))
            .collect();
        let s = SliceSweep::default();
        let mut admitted = 0;
        for buffer in &buffers {
            // Many messages of one buffer count its windows once.
            if (0..100).all(|i| s.admit(&Message::sliced_for_tests(buffer, i * 20))) {
                admitted += 1;
            }
        }
        assert!(
            (WINDOWS_PER_GENERATION / 2..=WINDOWS_PER_GENERATION).contains(&admitted),
            "{admitted} buffers admitted"
        );
        assert!(s.windows.borrow().len() <= WINDOWS_PER_GENERATION);
        // A buffer the generation already touches is still admitted.
        assert!(s.admit(&Message::sliced_for_tests(&buffers[0], 0)));
        // A new generation starts with no windows.
        s.advance();
        assert!(s.admit(&Message::sliced_for_tests(
            &buffers[2 * WINDOWS_PER_GENERATION],
            0
        )));
        assert!(s.windows.borrow().len() <= 2);
    }

    #[test]
    fn empty_slices_touch_no_window() {
        let s = SliceSweep::default();
        let empty = Message {
            exchange: ShortStr::EMPTY,
            routing_key: ShortStr::EMPTY,
            raw_properties: bytes::Bytes::new(),
            body: crate::broker::message::Body::new(),
            persistent: false,
        };
        assert!(s.admit(&empty));
        assert!(s.windows.borrow().is_empty());
    }

    #[test]
    fn generations_wrap_past_zero() {
        let s = SliceSweep::default();
        s.generation.set(NonZeroU16::MAX);
        s.advance();
        assert_eq!(s.generation(), NonZeroU16::MIN);
    }
}
