//! Where a queue keeps the publish credit it holds for its publishers
//! (`shard::flow` decides when a queue holds credit and when it pays):
//! kept in the queue itself, so that the owner finds it with the queue it
//! already looked up for the enqueue, without a map of its own.

/// A publishing connection: its shard and its id on that shard.
pub type Publisher = (u16, u64);

/// One queue's flow state (see `shard::flow`).
#[derive(Debug)]
pub struct FlowDebt {
    /// Deliveries (`deliver_get`) counted when they last changed at a tick.
    pub mark: u64,
    /// Ticks since that count last changed.
    pub idle_ticks: u32,
    /// Credit owed to publishers, held by this queue.
    pub owed: Vec<(Publisher, u32)>,
}
