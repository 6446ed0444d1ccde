//! Message statistics as RabbitMQ's management plugin names them
//! (`message_stats`): one fixed array of plain counters per object (a
//! queue, a channel, an exchange, a shard's retired channels). Counting is
//! one add to a field of state the counting code already holds mutably, so
//! the message path pays nothing measurable (no atomics, no lookups); the
//! management thread sums copies and derives rates from two samples.

/// One kind of message event. The discriminant indexes `MessageStats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// Messages published (a channel), entering the queue (a queue).
    Publish,
    /// Messages published to the exchange.
    PublishIn,
    /// Messages the exchange routed to at least one queue.
    PublishOut,
    /// Publishes confirmed to the publisher (basic.ack).
    Confirm,
    /// Mandatory publishes that found no queue and were returned.
    ReturnUnroutable,
    /// Publishes that found no queue and were dropped.
    DropUnroutable,
    /// Deliveries to consumers in ack mode.
    Deliver,
    /// Deliveries to consumers in no-ack mode.
    DeliverNoAck,
    /// basic.get-ok in ack mode.
    Get,
    /// basic.get-ok in no-ack mode.
    GetNoAck,
    /// basic.get-empty.
    GetEmpty,
    /// Messages acknowledged (basic.ack).
    Ack,
    /// Deliveries and gets of messages delivered before.
    Redeliver,
}

/// Every kind, in index order.
pub const STATS: [Stat; 13] = [
    Stat::Publish,
    Stat::PublishIn,
    Stat::PublishOut,
    Stat::Confirm,
    Stat::ReturnUnroutable,
    Stat::DropUnroutable,
    Stat::Deliver,
    Stat::DeliverNoAck,
    Stat::Get,
    Stat::GetNoAck,
    Stat::GetEmpty,
    Stat::Ack,
    Stat::Redeliver,
];

impl Stat {
    /// RabbitMQ's field name in `message_stats`.
    pub fn name(self) -> &'static str {
        match self {
            Stat::Publish => "publish",
            Stat::PublishIn => "publish_in",
            Stat::PublishOut => "publish_out",
            Stat::Confirm => "confirm",
            Stat::ReturnUnroutable => "return_unroutable",
            Stat::DropUnroutable => "drop_unroutable",
            Stat::Deliver => "deliver",
            Stat::DeliverNoAck => "deliver_no_ack",
            Stat::Get => "get",
            Stat::GetNoAck => "get_no_ack",
            Stat::GetEmpty => "get_empty",
            Stat::Ack => "ack",
            Stat::Redeliver => "redeliver",
        }
    }
}

/// The counters of one object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageStats {
    counts: [u64; STATS.len()],
}

impl MessageStats {
    #[inline]
    pub fn add(&mut self, stat: Stat, n: u64) {
        let c = &mut self.counts[stat as usize];
        *c = c.wrapping_add(n);
    }

    pub fn get(&self, stat: Stat) -> u64 {
        self.counts[stat as usize]
    }

    /// RabbitMQ's `deliver_get`: deliveries and gets, ack mode or not.
    pub fn deliver_get(&self) -> u64 {
        self.get(Stat::Deliver)
            + self.get(Stat::DeliverNoAck)
            + self.get(Stat::Get)
            + self.get(Stat::GetNoAck)
    }

    pub fn merge(&mut self, other: &MessageStats) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.wrapping_add(*b);
        }
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|c| *c == 0)
    }

    /// Per-kind rates (per second) from `earlier` to `self`, `seconds`
    /// apart; a counter that went back (a reset object) rates 0.
    pub fn rates_since(&self, earlier: &MessageStats, seconds: f64) -> [f64; STATS.len()] {
        let mut out = [0.0; STATS.len()];
        if seconds > 0.0 {
            for (i, r) in out.iter_mut().enumerate() {
                *r = self.counts[i].saturating_sub(earlier.counts[i]) as f64 / seconds;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_merge_and_rate() {
        let mut a = MessageStats::default();
        a.add(Stat::Deliver, 3);
        a.add(Stat::GetNoAck, 2);
        assert_eq!(a.deliver_get(), 5);
        let mut b = a;
        b.add(Stat::Deliver, 10);
        b.merge(&a);
        assert_eq!(b.get(Stat::Deliver), 16);
        let r = b.rates_since(&a, 2.0);
        assert_eq!(r[Stat::Deliver as usize], 6.5);
        assert_eq!(a.rates_since(&b, 1.0)[Stat::Deliver as usize], 0.0);
        for (i, s) in STATS.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
    }
}
