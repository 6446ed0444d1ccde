//! Small ready messages kept as slices of their publisher's read buffer
//! while they wait, and copying them out once they have waited long.
//!
//! A message's fields are slices of the 64 KiB buffer its connection read
//! it into, and keep that whole buffer alive. A small message that waits
//! while its neighbours are delivered would pin the buffer for itself, so
//! a waiting message is copied out (`Message::detached`). Copying every
//! waiting message at enqueue cost about 7 % of the broker's CPU in a
//! flat-out 1p1c run, where messages wait a few milliseconds behind the
//! consumer's prefetch. So a plain queue keeps a waiting message's slices
//! and marks it with the sweep generation it came in
//! (`QueuedMessage::slice_generation`); the shard's sweep
//! (`shard::slices`) copies out those of an earlier generation that are
//! still ready. A message delivered before then is never copied.
//!
//! Priority queues (ready messages not in id order) and queues restored out
//! of order copy at enqueue as before: the sweep finds a queue's slices by
//! id.

use super::Queue;
use crate::broker::message::{MessageRef, DETACH_AT_MOST};
use std::num::NonZeroU16;
use std::sync::Arc;

impl Queue {
    /// Whether a message that will wait may be kept as slices and copied
    /// out later by the sweep: the ready list is in id order.
    pub fn keeps_slices(&self) -> bool {
        self.levels.is_none() && !self.restored_out_of_order
    }

    /// Appends a small message that will wait, still slices of its read
    /// buffer, marked with sweep generation `generation`. Returns its id
    /// and whether it is the queue's first slice of that generation (the
    /// sweep must then be told where the generation starts in this queue).
    pub fn publish_slice_until(
        &mut self,
        message: MessageRef,
        expires: Option<u64>,
        generation: NonZeroU16,
    ) -> (u64, bool) {
        debug_assert!(
            self.keeps_slices(),
            "slices need the ready list in id order"
        );
        debug_assert!(
            message.body.len() + message.raw_properties.len() as u64 <= DETACH_AT_MOST,
            "only small messages are copied out"
        );
        let first = self
            .ready
            .back()
            .is_none_or(|m| m.slice_generation != Some(generation));
        let id = self.publish_until(message, expires);
        let queued = self.ready.back_mut().expect("just appended");
        debug_assert_eq!(queued.id, id);
        queued.slice_generation = Some(generation);
        (id, first)
    }

    /// Copies out the ready slices from id `from` on that are older than
    /// generation `current`, up to the first one of `current` (every later
    /// slice is of `current`: generations only move forward). Returns how
    /// many were copied. Charges do not change: a copy holds the same
    /// bytes.
    pub fn detach_slices(&mut self, from: u64, current: NonZeroU16) -> usize {
        if !self.keeps_slices() {
            return 0;
        }
        let mut copied = 0;
        for queued in self.ready.iter_mut_from(from) {
            match queued.slice_generation {
                None => continue,
                Some(g) if g == current => break,
                Some(_) => {
                    queued.message = Arc::new(queued.message.detached());
                    queued.slice_generation = None;
                    copied += 1;
                }
            }
        }
        copied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::message::Message;
    use crate::broker::queue::QueueConfig;
    use crate::protocol::types::{FieldTable, FieldValue, ShortStr};
    use bytes::Bytes;

    fn generation(g: u16) -> NonZeroU16 {
        NonZeroU16::new(g).unwrap()
    }

    /// A message whose fields are slices of one shared 64 KiB buffer, as a
    /// connection's reader makes them.
    fn sliced(buffer: &Bytes, at: usize) -> MessageRef {
        Arc::new(Message::sliced_for_tests(buffer, at))
    }

    fn shares_buffer(message: &Message, buffer: &Bytes) -> bool {
        let range = buffer.as_ptr_range();
        range.contains(&message.body.chunks()[0].as_ptr())
    }

    fn queue_with(arguments: FieldTable) -> Queue {
        let config = QueueConfig {
            arguments,
            ..QueueConfig::default()
        };
        Queue::new(ShortStr::from("q"), config)
    }

    fn queue() -> Queue {
        queue_with(FieldTable::new())
    }

    #[test]
    fn the_first_slice_of_each_generation_registers_the_queue() {
        let buffer = Bytes::from(vec![b'a'; 65536]);
        let mut q = queue();
        assert!(q.keeps_slices());
        assert_eq!(
            q.publish_slice_until(sliced(&buffer, 0), None, generation(1)),
            (1, true)
        );
        assert_eq!(
            q.publish_slice_until(sliced(&buffer, 20), None, generation(1)),
            (2, false)
        );
        assert_eq!(
            q.publish_slice_until(sliced(&buffer, 40), None, generation(2)),
            (3, true)
        );
    }

    #[test]
    fn the_sweep_copies_out_older_generations_and_keeps_the_current_one() {
        let buffer = Bytes::from(vec![b'a'; 65536]);
        let mut q = queue();
        let bytes_before = q.resident_bytes();
        q.publish_slice_until(sliced(&buffer, 0), None, generation(1));
        q.publish(Arc::new(sliced(&buffer, 20).detached()));
        q.publish_slice_until(sliced(&buffer, 40), None, generation(1));
        q.publish_slice_until(sliced(&buffer, 60), None, generation(2));
        let charged = q.resident_bytes();
        assert!(charged > bytes_before);

        assert_eq!(q.detach_slices(1, generation(2)), 2);
        assert_eq!(q.resident_bytes(), charged, "a copy is charged the same");
        let held: Vec<(bool, Option<NonZeroU16>)> = q
            .ready
            .iter()
            .map(|m| (shares_buffer(&m.message, &buffer), m.slice_generation))
            .collect();
        assert_eq!(
            held,
            vec![
                (false, None),
                (false, None),
                (false, None),
                (true, Some(generation(2)))
            ]
        );
        // The copies hold the same message.
        let first = &q.ready.iter().next().unwrap().message;
        assert_eq!(first.routing_key.as_str(), "a");
        assert_eq!(first.body.chunks()[0].as_ref(), &[b'a'; 16][..]);

        // Nothing older is left; the next generation's sweep takes the rest.
        assert_eq!(q.detach_slices(1, generation(2)), 0);
        assert_eq!(q.detach_slices(4, generation(3)), 1);
        assert!(q.ready.iter().all(|m| !shares_buffer(&m.message, &buffer)));
    }

    #[test]
    fn delivered_slices_are_not_the_sweeps_business() {
        let buffer = Bytes::from(vec![b'a'; 65536]);
        let mut q = queue();
        q.publish_slice_until(sliced(&buffer, 0), None, generation(1));
        q.publish_slice_until(sliced(&buffer, 20), None, generation(1));
        let taken = q.ready.pop_front().unwrap();
        assert_eq!(q.detach_slices(1, generation(2)), 1);
        assert!(shares_buffer(&taken.message, &buffer));
    }

    #[test]
    fn priority_queues_keep_no_slices() {
        let mut arguments = FieldTable::new();
        arguments.insert("x-max-priority".into(), FieldValue::I32(5));
        assert!(!queue_with(arguments).keeps_slices());
    }
}
