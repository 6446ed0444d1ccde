//! The inter-core mesh as one shard sees it: an outbox per destination shard
//! and the bounded lock-free SPSC rings (glommio `channel_mesh`, one per
//! ordered pair of shards) that carry `Vec<Envelope>` batches.
//!
//! Senders push envelopes into an outbox without awaiting; `Shard::pump`
//! hands each non-empty outbox to its ring as ONE batch, so a wake-up of the
//! other core carries everything produced since the last pump. A full ring
//! parks that destination's batches in a flusher task (order is kept) and
//! `backlogged` tells readers to stop reading sockets until it drains.

use crate::shard::envelope::Envelope;
use glommio::channels::channel_mesh::{Receivers, Senders};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Batches a ring holds before a sender must wait. Small on purpose: a
/// batch carries up to a read buffer's worth of publishes, and acks that
/// share a ring with publishes wait behind everything in it.
pub const RING_CAPACITY: usize = 32;

/// Envelopes queued for one destination above which publishers pause
/// reading from their sockets (TCP pushes back on the clients).
pub const OUTBOX_HIGH_WATER: usize = 16 * 1024;

pub type Batch = Vec<Envelope>;

/// Capacity (in envelopes) up to which the emptied local batch is kept for
/// the next one: a busy shard then fills its local outbox without growing
/// it envelope by envelope, and an idle one keeps at most this much.
const KEEP_CAPACITY: usize = 1024;

pub struct Mesh {
    me: usize,
    senders: Option<Senders<Batch>>,
    outboxes: Vec<RefCell<Batch>>,
    /// An empty batch with capacity, the next local outbox
    /// (`take_local` / `recycle_local`).
    spare: RefCell<Batch>,
    /// A flusher task owns the ring to this destination right now.
    flushing: Vec<Cell<bool>>,
    /// One and a half times the size of the last batch handed to each
    /// remote shard's ring (at most `KEEP_CAPACITY`): the capacity a new
    /// outbox for it starts with at its first push, so that a busy
    /// destination's outbox is one allocation instead of growing from
    /// empty by doubling (a batch leaves with its allocation: the
    /// receiving shard frees it).
    last_batch: Vec<Cell<usize>>,
    /// Batches handed to the ring to each shard, and taken from the ring
    /// from each shard (ring occupancy, see `shard::stats`).
    sent: Vec<Cell<u64>>,
    received: Vec<Cell<u64>>,
}

impl Mesh {
    pub fn new(me: usize, shards: usize, senders: Option<Senders<Batch>>) -> Mesh {
        assert!(me < shards);
        assert_eq!(
            senders.is_some(),
            shards > 1,
            "a mesh needs senders iff several shards"
        );
        Mesh {
            me,
            senders,
            outboxes: (0..shards).map(|_| RefCell::new(Vec::new())).collect(),
            spare: RefCell::new(Vec::new()),
            flushing: (0..shards).map(|_| Cell::new(false)).collect(),
            last_batch: (0..shards).map(|_| Cell::new(0)).collect(),
            sent: (0..shards).map(|_| Cell::new(0)).collect(),
            received: (0..shards).map(|_| Cell::new(0)).collect(),
        }
    }

    /// Queues an envelope for `dest` (this shard included: the local
    /// outbox is processed by the next pump).
    pub fn push(&self, dest: u16, envelope: Envelope) {
        let dest = dest as usize;
        let mut outbox = self.outboxes[dest].borrow_mut();
        if outbox.capacity() == 0 {
            // Remote destinations only: the local outbox reuses its batch.
            let hint = self.last_batch[dest].get();
            if hint > 0 {
                outbox.reserve_exact(hint);
            }
        }
        outbox.push(envelope);
    }

    /// A batch of `len` envelopes left for shard `dest`'s ring.
    fn sent_batch(&self, dest: usize, len: usize) {
        bump(&self.sent[dest]);
        // Half again: batches vary, and a Vec grows by doubling past it.
        self.last_batch[dest].set((len + len / 2).min(KEEP_CAPACITY));
    }

    /// Takes what is queued for this shard itself; hand the emptied batch
    /// back with `recycle_local`.
    pub fn take_local(&self) -> Batch {
        let spare = std::mem::take(&mut *self.spare.borrow_mut());
        std::mem::replace(&mut *self.outboxes[self.me].borrow_mut(), spare)
    }

    /// A batch from `take_local`, handled: kept (empty) as the next local
    /// outbox if it is not too large.
    pub fn recycle_local(&self, mut batch: Batch) {
        batch.clear();
        if batch.capacity() <= KEEP_CAPACITY {
            let mut spare = self.spare.borrow_mut();
            if batch.capacity() > spare.capacity() {
                *spare = batch;
            }
        }
    }

    pub fn has_local(&self) -> bool {
        !self.outboxes[self.me].borrow().is_empty()
    }

    /// True when some destination is backed up (its ring is full, or its
    /// outbox is over the high water mark) and readers should pause.
    pub fn backlogged(&self) -> bool {
        self.outboxes.iter().enumerate().any(|(i, o)| {
            i != self.me && (self.flushing[i].get() || o.borrow().len() >= OUTBOX_HIGH_WATER)
        })
    }

    /// Hands every remote outbox to its ring: one `try_send` per destination;
    /// a full ring gets a flusher task that awaits space and keeps order.
    pub fn flush_remote(self: &Rc<Self>) {
        let Some(senders) = &self.senders else {
            return;
        };
        for dest in 0..self.outboxes.len() {
            if dest == self.me || self.flushing[dest].get() {
                continue;
            }
            // The batch leaves for the other shard (and is freed there).
            let batch = std::mem::take(&mut *self.outboxes[dest].borrow_mut());
            if batch.is_empty() {
                continue;
            }
            let len = batch.len();
            match senders.try_send_to(dest, batch) {
                Ok(()) => self.sent_batch(dest, len),
                Err(err) => {
                    let batch = match err {
                        glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(b)) => b,
                        other => {
                            tracing::error!(shard = self.me, "cannot reach shard {dest}: {other}");
                            continue;
                        }
                    };
                    self.flushing[dest].set(true);
                    let mesh = self.clone();
                    glommio::spawn_local(async move { mesh.flush_slowly(dest, batch).await })
                        .detach();
                }
            }
        }
    }

    /// A batch from shard `from` was taken off its ring.
    pub fn note_received(&self, from: usize) {
        bump(&self.received[from]);
    }

    /// (batches sent to, batches received from, envelopes waiting for)
    /// each shard.
    pub fn occupancy(&self) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
        (
            self.sent.iter().map(Cell::get).collect(),
            self.received.iter().map(Cell::get).collect(),
            self.outboxes
                .iter()
                .map(|o| o.borrow().len() as u64)
                .collect(),
        )
    }

    async fn flush_slowly(self: Rc<Self>, dest: usize, mut batch: Batch) {
        let senders = self.senders.as_ref().expect("flusher needs senders");
        loop {
            let len = batch.len();
            if senders.send_to(dest, batch).await.is_err() {
                tracing::warn!(shard = self.me, "ring to shard {dest} closed");
                break;
            }
            self.sent_batch(dest, len);
            batch = std::mem::take(&mut *self.outboxes[dest].borrow_mut());
            if batch.is_empty() {
                break;
            }
        }
        self.flushing[dest].set(false);
    }

    pub fn close(&self) {
        if let Some(s) = &self.senders {
            s.close();
        }
    }
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// Splits the receiving side of the mesh into one stream per peer.
pub fn receiver_streams(
    mut receivers: Receivers<Batch>,
) -> Vec<(
    usize,
    glommio::channels::shared_channel::ConnectedReceiver<Batch>,
)> {
    receivers.streams()
}
