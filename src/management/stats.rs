//! `message_stats` as RabbitMQ's management API shows them: counts from the
//! shards' snapshots and rates from two samples the management thread
//! keeps (`Rates`: at most two, at least `MIN_INTERVAL` apart, so a client
//! polling fast still sees rates over a second or more). Shards only count
//! (`broker::stats`); everything here runs on the management thread.

use crate::broker::stats::{MessageStats, Stat};
use crate::broker::vhost::{QueueName, VhostId};
use crate::protocol::types::ShortStr;
use crate::shard::envelope::{
    ChannelSnapshot, ConnKey, ConnectionSnapshot, QueueSnapshot, ShardSnapshot,
};
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A new sample is kept only this long after the newest one.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The kinds RabbitMQ shows per object (its `message_stats` keys).
pub const QUEUE_STATS: &[Stat] = &[
    Stat::Publish,
    Stat::Deliver,
    Stat::DeliverNoAck,
    Stat::Get,
    Stat::GetNoAck,
    Stat::Ack,
    Stat::Redeliver,
];
pub const CHANNEL_STATS: &[Stat] = &[
    Stat::Publish,
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
pub const EXCHANGE_STATS: &[Stat] = &[Stat::PublishIn, Stat::PublishOut];

/// One sample of the counters of everything but queues.
#[derive(Default)]
pub struct Sample {
    at: Option<Instant>,
    overview: MessageStats,
    exchanges: HashMap<(VhostId, ShortStr), MessageStats>,
    channels: HashMap<(ConnKey, u16), MessageStats>,
    /// Each connection's octets received and sent.
    connections: HashMap<ConnKey, [u64; 2]>,
}

impl Sample {
    /// Every object's counters in `snapshots`, taken `at`.
    pub fn of(snapshots: &[ShardSnapshot], at: Instant) -> Sample {
        let mut s = Sample {
            at: Some(at),
            ..Sample::default()
        };
        for shard in snapshots {
            s.overview.merge(&shard.stats.retired_channels);
            for (key, x) in &shard.stats.exchanges {
                s.exchanges.entry(key.clone()).or_default().merge(x);
            }
            for c in &shard.connections {
                s.connections.insert(c.key, [c.recv_oct, c.send_oct]);
                for ch in &c.channels {
                    s.overview.merge(&ch.message_stats);
                    s.channels.insert((c.key, ch.id), ch.message_stats);
                }
            }
        }
        s
    }
}

/// One sample of every queue's counters, kept apart from the rest so a
/// paged queue listing (which copies out only its page) can take one
/// from the shards' light answers (`shard::listing::Picked::stats`).
#[derive(Default)]
pub struct QueueSample {
    at: Option<Instant>,
    /// A queue that never counted anything is left out (read as zeros),
    /// so 100 k idle queues cost no map entries.
    queues: HashMap<QueueName, MessageStats>,
}

impl QueueSample {
    /// The counts of every queue that counted anything, taken `at`.
    pub fn of(queues: impl IntoIterator<Item = (QueueName, MessageStats)>, at: Instant) -> Self {
        QueueSample {
            at: Some(at),
            queues: queues.into_iter().filter(|(_, m)| !m.is_empty()).collect(),
        }
    }
}

trait Timed {
    fn at(&self) -> Option<Instant>;
}

impl Timed for Sample {
    fn at(&self) -> Option<Instant> {
        self.at
    }
}

impl Timed for QueueSample {
    fn at(&self) -> Option<Instant> {
        self.at
    }
}

/// At most two samples of one kind, at least `MIN_INTERVAL` apart.
struct Kept<T> {
    samples: VecDeque<Arc<T>>,
}

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Kept {
            samples: VecDeque::new(),
        }
    }
}

impl<T: Timed> Kept<T> {
    /// Whether a sample taken `now` would be kept.
    fn due(&self, now: Instant) -> bool {
        self.samples
            .back()
            .is_none_or(|s| age(s.at(), now) >= MIN_INTERVAL)
    }

    /// The reference for rates now (the newest kept sample at least
    /// `MIN_INTERVAL` old, else the oldest kept) and its age in seconds;
    /// then keeps `current` (taken `now`) if one is due.
    fn observe(&mut self, current: Option<Arc<T>>, now: Instant) -> (Option<Arc<T>>, f64) {
        let reference = self
            .samples
            .iter()
            .rev()
            .find(|s| age(s.at(), now) >= MIN_INTERVAL)
            .or(self.samples.front())
            .filter(|s| age(s.at(), now) > Duration::ZERO)
            .cloned();
        if let Some(current) = current.filter(|_| self.due(now)) {
            self.samples.push_back(current);
            while self.samples.len() > 2 {
                self.samples.pop_front();
            }
        }
        let seconds = reference
            .as_ref()
            .map_or(0.0, |r| age(r.at(), now).as_secs_f64());
        (reference, seconds)
    }
}

fn age(at: Option<Instant>, now: Instant) -> Duration {
    at.map_or(Duration::ZERO, |t| now.duration_since(t))
}

/// The samples kept between requests.
#[derive(Default)]
pub struct Rates {
    samples: Kept<Sample>,
    queues: Kept<QueueSample>,
}

impl Rates {
    /// Counts of `snapshots` (taken now) with rates against the newest
    /// kept sample at least `MIN_INTERVAL` older (else the oldest kept);
    /// keeps the new sample when the newest kept is `MIN_INTERVAL` old.
    pub fn observe(&mut self, snapshots: &[ShardSnapshot]) -> Stats {
        let now = Instant::now();
        let current = Arc::new(Sample::of(snapshots, now));
        let (reference, seconds) = self.samples.observe(Some(current.clone()), now);
        let queues = snapshots
            .iter()
            .flat_map(|s| s.queues.iter())
            .map(|q| (q.name.clone(), q.message_stats));
        let queues = Arc::new(QueueSample::of(queues, now));
        let (queue_reference, queue_seconds) = self.queues.observe(Some(queues), now);
        Stats {
            current,
            reference,
            seconds,
            queue_reference,
            queue_seconds,
        }
    }

    /// Whether a paged queue listing now should bring a queue sample.
    pub fn queue_sample_due(&self) -> bool {
        self.queues.due(Instant::now())
    }

    /// Rates for queues alone (a paged queue listing): against the kept
    /// queue samples, keeping `sample` (every queue's counts now) when
    /// one is due.
    pub fn observe_queues(&mut self, sample: Option<QueueSample>) -> Stats {
        let now = Instant::now();
        let (queue_reference, queue_seconds) = self.queues.observe(sample.map(Arc::new), now);
        Stats {
            queue_reference,
            queue_seconds,
            ..Stats::default()
        }
    }
}

/// What the renderers read: this request's counts and the reference
/// sample for rates.
#[derive(Default)]
pub struct Stats {
    current: Arc<Sample>,
    reference: Option<Arc<Sample>>,
    seconds: f64,
    queue_reference: Option<Arc<QueueSample>>,
    queue_seconds: f64,
}

impl Stats {
    /// The whole broker's `message_stats` (`/api/overview`).
    pub fn overview_json(&self) -> Value {
        self.json(
            &self.current.overview,
            self.reference.as_ref().map(|r| &r.overview),
            CHANNEL_STATS,
            true,
            self.seconds,
        )
    }

    /// A queue's `message_stats`; None when nothing was counted (RabbitMQ
    /// leaves the key out then).
    pub fn queue_json(&self, q: &QueueSnapshot) -> Option<Value> {
        // A queue the reference sample lacks had counted nothing then (or
        // did not exist yet): its counts all fall in the interval.
        let zero = MessageStats::default();
        let earlier = self
            .queue_reference
            .as_ref()
            .map(|r| r.queues.get(&q.name).unwrap_or(&zero));
        (!q.message_stats.is_empty()).then(|| {
            self.json(
                &q.message_stats,
                earlier,
                QUEUE_STATS,
                true,
                self.queue_seconds,
            )
        })
    }

    /// An exchange's `message_stats`, by vhost and name.
    pub fn exchange_json(&self, vhost: VhostId, name: &str) -> Option<Value> {
        let key = (vhost, ShortStr::from(name));
        let counts = self.current.exchanges.get(&key)?;
        let earlier = self.reference.as_ref().and_then(|r| r.exchanges.get(&key));
        self.object(counts, earlier, EXCHANGE_STATS, false)
    }

    /// A channel's `message_stats`.
    pub fn channel_json(&self, conn: ConnKey, ch: &ChannelSnapshot) -> Option<Value> {
        let earlier = self
            .reference
            .as_ref()
            .and_then(|r| r.channels.get(&(conn, ch.id)));
        self.object(&ch.message_stats, earlier, CHANNEL_STATS, true)
    }

    /// A connection's `recv_oct` / `send_oct` with their
    /// `*_details.rate` (octets per second), as RabbitMQ's connection
    /// object has them.
    pub fn connection_octets(&self, c: &ConnectionSnapshot) -> Value {
        // A connection the reference sample lacks opened since: every
        // octet it has counted falls in the interval (keys are not reused).
        let earlier = self
            .reference
            .as_ref()
            .map(|r| r.connections.get(&c.key).copied().unwrap_or_default());
        let rate = |now: u64, i: usize| match earlier {
            Some(e) if self.seconds > 0.0 => {
                let r = now.saturating_sub(e[i]) as f64 / self.seconds;
                (r * 10.0).round() / 10.0
            }
            _ => 0.0,
        };
        serde_json::json!({
            "recv_oct": c.recv_oct, "recv_oct_details": {"rate": rate(c.recv_oct, 0)},
            "send_oct": c.send_oct, "send_oct_details": {"rate": rate(c.send_oct, 1)},
        })
    }

    fn object(
        &self,
        counts: &MessageStats,
        earlier: Option<&MessageStats>,
        kinds: &[Stat],
        deliver_get: bool,
    ) -> Option<Value> {
        (!counts.is_empty()).then(|| self.json(counts, earlier, kinds, deliver_get, self.seconds))
    }

    fn json(
        &self,
        counts: &MessageStats,
        earlier: Option<&MessageStats>,
        kinds: &[Stat],
        deliver_get: bool,
        seconds: f64,
    ) -> Value {
        let rates = earlier.map(|e| counts.rates_since(e, seconds));
        let mut out = Map::new();
        let mut put = |name: &str, n: u64, rate: f64| {
            out.insert(name.to_string(), Value::from(n));
            out.insert(
                format!("{name}_details"),
                serde_json::json!({ "rate": (rate * 10.0).round() / 10.0 }),
            );
        };
        for k in kinds {
            let rate = rates.map_or(0.0, |r| r[*k as usize]);
            put(k.name(), counts.get(*k), rate);
        }
        if deliver_get {
            let rate = rates.map_or(0.0, |r| {
                [Stat::Deliver, Stat::DeliverNoAck, Stat::Get, Stat::GetNoAck]
                    .iter()
                    .map(|k| r[*k as usize])
                    .sum()
            });
            put("deliver_get", counts.deliver_get(), rate);
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard_with(published: u64) -> ShardSnapshot {
        let mut s = ShardSnapshot::default();
        let mut m = MessageStats::default();
        m.add(Stat::Publish, published);
        s.stats.retired_channels = m;
        s
    }

    fn shard_with_connection(id: u64, recv: u64, send: u64) -> ShardSnapshot {
        let mut s = ShardSnapshot::default();
        s.connections.push(ConnectionSnapshot {
            key: ConnKey { shard: 0, id },
            vhost: VhostId::default(),
            vhost_name: "/".into(),
            peer: "127.0.0.1:1".into(),
            user: "guest".into(),
            tls: None,
            client_properties: Default::default(),
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 60,
            recv_oct: recv,
            send_oct: send,
            channels: Vec::new(),
        });
        s
    }

    #[test]
    fn connection_octets_rate_against_the_reference_or_from_zero() {
        let mut r = Rates::default();
        r.observe(&[shard_with_connection(1, 100, 50)]);
        let old = Arc::get_mut(r.samples.samples.back_mut().unwrap());
        old.unwrap().at = Some(Instant::now() - Duration::from_secs(2));
        let shard = [shard_with_connection(1, 2100, 1050)];
        let v = r
            .observe(&shard)
            .connection_octets(&shard[0].connections[0]);
        assert_eq!(v["recv_oct"], 2100);
        let rate = v["recv_oct_details"]["rate"].as_f64().unwrap();
        assert!((900.0..=1000.0).contains(&rate), "{v}");
        let rate = v["send_oct_details"]["rate"].as_f64().unwrap();
        assert!((450.0..=500.0).contains(&rate), "{v}");
        // A connection the reference lacks counts from zero.
        let shard = [shard_with_connection(2, 400, 0)];
        let v = r
            .observe(&shard)
            .connection_octets(&shard[0].connections[0]);
        assert!(v["recv_oct_details"]["rate"].as_f64().unwrap() > 0.0, "{v}");
        // No reference at all: rate 0.
        let v = Rates::default()
            .observe(&shard)
            .connection_octets(&shard[0].connections[0]);
        assert_eq!(v["recv_oct_details"]["rate"], 0.0);
    }

    #[test]
    fn rates_come_from_a_sample_a_second_older() {
        let mut r = Rates::default();
        let first = r.observe(&[shard_with(10)]).overview_json();
        assert_eq!(first["publish"], 10);
        assert_eq!(first["publish_details"]["rate"], 0.0);
        // Backdate the kept sample by two seconds.
        let old = Arc::get_mut(r.samples.samples.back_mut().unwrap());
        old.unwrap().at = Some(Instant::now() - Duration::from_secs(2));
        let second = r.observe(&[shard_with(30)]).overview_json();
        let rate = second["publish_details"]["rate"].as_f64().unwrap();
        assert!((9.0..=10.0).contains(&rate), "{rate}");
        assert_eq!(r.samples.samples.len(), 2);
        // A request right after keeps no sample but still rates.
        let third = r.observe(&[shard_with(30)]);
        assert_eq!(r.samples.samples.len(), 2);
        assert!(third.reference.is_some());
    }

    #[test]
    fn queue_rates_from_light_samples_and_full_ones_alike() {
        let name = QueueName::new(VhostId::default(), ShortStr::from("q"));
        let mut m = MessageStats::default();
        m.add(Stat::Publish, 10);
        let mut r = Rates::default();
        assert!(r.queue_sample_due());
        r.observe_queues(Some(QueueSample::of([(name.clone(), m)], Instant::now())));
        assert!(!r.queue_sample_due());
        let old = Arc::get_mut(r.queues.samples.back_mut().unwrap()).unwrap();
        old.at = Some(Instant::now() - Duration::from_secs(2));
        m.add(Stat::Publish, 20);
        let mut snapshot = ShardSnapshot::default();
        snapshot.queues.push(queue(name.clone(), m));
        // A page without a new sample rates against the kept one.
        let v = r
            .observe_queues(None)
            .queue_json(&snapshot.queues[0])
            .unwrap();
        assert_eq!(v["publish"], 30);
        let rate = v["publish_details"]["rate"].as_f64().unwrap();
        assert!((9.0..=10.0).contains(&rate), "{v}");
        // A full request does the same, and keeps its queue sample.
        let v = r.observe(&[snapshot]).queue_json(&queue(name, m)).unwrap();
        let rate = v["publish_details"]["rate"].as_f64().unwrap();
        assert!((9.0..=10.0).contains(&rate), "{v}");
        assert_eq!(r.queues.samples.len(), 2);
    }

    fn queue(name: QueueName, message_stats: MessageStats) -> QueueSnapshot {
        QueueSnapshot {
            name,
            durable: false,
            exclusive: false,
            auto_delete: false,
            messages: 0,
            messages_ram: 0,
            messages_paged_out: 0,
            state: "running",
            message_bytes_ready: 0,
            message_bytes_unacknowledged: 0,
            memory: 0,
            unacked: 0,
            consumers: Vec::new(),
            single_active_consumer: None,
            policy: String::new(),
            message_stats,
            oldest_ready_age_seconds: None,
            oldest_unacked_age_seconds: None,
            consumer_utilisation: None,
        }
    }
}
