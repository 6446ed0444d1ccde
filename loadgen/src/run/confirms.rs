//! Publisher confirms: the per-channel window the publishing thread
//! stamps and the ack-reading thread settles, and that reader thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use bytes::BytesMut;
use warren_protocol::frame::{Frame, FrameDecoder};
use warren_protocol::methods::Method;

use super::shared::Shared;
use crate::client::{self, is_timeout, Error};
use crate::sys::now_ns;

/// Per-channel confirm bookkeeping shared by the publishing thread (which
/// stamps and counts) and the ack-reading thread (which confirms).
pub(super) struct ConfirmTrack {
    pub(super) mask: u64,
    pub(super) window: u64,
    /// Publish timestamp of tag `t` at `t & mask`.
    pub(super) ts: Box<[AtomicU64]>,
    /// Highest delivery tag published so far.
    pub(super) published: AtomicU64,
    /// Lowest delivery tag not yet confirmed.
    pub(super) low: AtomicU64,
}

impl ConfirmTrack {
    pub(super) fn new(window: u32) -> ConfirmTrack {
        let size = u64::from(window.max(1)).next_power_of_two();
        ConfirmTrack {
            mask: size - 1,
            window: u64::from(window.max(1)),
            ts: (0..size).map(|_| AtomicU64::new(0)).collect(),
            published: AtomicU64::new(0),
            low: AtomicU64::new(1),
        }
    }

    /// Whether tag `published + 1` may go out: the span of unconfirmed
    /// tags stays below the window (and below the ring's size).
    pub(super) fn has_room(&self) -> bool {
        let next = self.published.load(Ordering::Relaxed) + 1;
        next - self.low.load(Ordering::Acquire) < self.window
    }

    pub(super) fn all_confirmed(&self) -> bool {
        self.low.load(Ordering::Acquire) > self.published.load(Ordering::Acquire)
    }
}

/// The ack reader's private view of one channel.
pub(super) struct AckState {
    pub(super) acked: Vec<bool>,
}

impl AckState {
    /// Applies a basic.ack / basic.nack; returns how many messages it
    /// settled and pushes their confirm latencies.
    pub(super) fn settle(
        &mut self,
        t: &ConfirmTrack,
        tag: u64,
        multiple: bool,
        now: u64,
        lat: &mut Vec<u64>,
    ) -> u64 {
        let published = t.published.load(Ordering::Acquire);
        let mut low = t.low.load(Ordering::Relaxed);
        if tag < low || tag > published {
            return 0; // already settled, or not ours
        }
        let mut n = 0;
        let mut stamp = |tag: u64, n: &mut u64| {
            let ts = t.ts[(tag & t.mask) as usize].load(Ordering::Relaxed);
            lat.push(now.saturating_sub(ts));
            *n += 1;
        };
        if multiple {
            for x in low..=tag {
                let slot = &mut self.acked[(x & t.mask) as usize];
                if !*slot {
                    stamp(x, &mut n);
                }
                *slot = false;
            }
            low = tag + 1;
        } else {
            let slot = &mut self.acked[(tag & t.mask) as usize];
            if !*slot {
                *slot = true;
                stamp(tag, &mut n);
            }
        }
        while low <= published && self.acked[(low & t.mask) as usize] {
            self.acked[(low & t.mask) as usize] = false;
            low += 1;
        }
        t.low.store(low, Ordering::Release);
        n
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn ack_reader(
    mut stream: crate::stream::Stream,
    rbuf: &mut BytesMut,
    read_chunk: usize,
    mut decoder: FrameDecoder,
    tracks: &[Arc<ConfirmTrack>],
    shared: &Shared,
    stop: &AtomicBool,
    writer: &thread::Thread,
) -> Result<(), Error> {
    let mut states: Vec<AckState> = tracks
        .iter()
        .map(|t| AckState {
            acked: vec![false; t.ts.len()],
        })
        .collect();
    let mut lat = Vec::with_capacity(4096);
    loop {
        let mut settled = 0;
        let mut nacked = 0;
        while let Some(frame) = decoder.decode(rbuf)? {
            let Frame::Method { channel, method } = frame else {
                continue; // returned message content, heartbeats
            };
            let idx = usize::from(channel).wrapping_sub(1);
            match method {
                Method::BasicAck(a) if idx < tracks.len() => {
                    settled += states[idx].settle(
                        &tracks[idx],
                        a.delivery_tag,
                        a.multiple,
                        now_ns(),
                        &mut lat,
                    );
                }
                Method::BasicNack(a) if idx < tracks.len() => {
                    nacked += states[idx].settle(
                        &tracks[idx],
                        a.delivery_tag,
                        a.multiple,
                        now_ns(),
                        &mut lat,
                    );
                }
                Method::ConnectionClose(c) => {
                    return Err(Error(format!(
                        "broker closed the connection: {} {}",
                        c.reply_code, c.reply_text
                    )))
                }
                Method::ChannelClose(c) => {
                    return Err(Error(format!(
                        "broker closed channel {channel}: {} {}",
                        c.reply_code, c.reply_text
                    )))
                }
                _ => {}
            }
        }
        if settled + nacked > 0 {
            let now = now_ns();
            shared.confirmed.fetch_add(settled, Ordering::Relaxed);
            shared.nacked.fetch_add(nacked, Ordering::Relaxed);
            shared.last_confirm_ns.fetch_max(now, Ordering::Relaxed);
            Shared::record(&shared.confirm, &mut lat);
            writer.unpark();
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        match client::fill(&mut stream, rbuf, read_chunk) {
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
