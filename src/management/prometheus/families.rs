//! The metric families Warren serves with RabbitMQ's names, types and HELP
//! texts (as `rabbitmq_prometheus` 3.x names them), each with how its value
//! is read from a snapshot; and Warren's own message-age family.

use crate::broker::stats::Stat;
use crate::shard::envelope::{ChannelSnapshot, QueueSnapshot};

/// A gauge or counter of one queue.
pub(super) type QueueMetric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&QueueSnapshot) -> f64,
);

/// RabbitMQ's queue families (`family` name, metrics) that Warren has
/// figures for.
pub(super) const QUEUE_FAMILIES: &[(&str, &[QueueMetric])] = &[
    (
        "queue_coarse_metrics",
        &[
            ("queue_messages_ready", "gauge", "Messages ready to be delivered to consumers", |q| q.messages as f64),
            ("queue_messages_unacked", "gauge", "Messages delivered to consumers but not yet acknowledged", |q| q.unacked as f64),
            ("queue_messages", "gauge", "Sum of ready and unacknowledged messages - total queue depth", |q| q.messages as f64 + q.unacked as f64),
        ],
    ),
    (
        "queue_consumer_count",
        &[("queue_consumers", "gauge", "Consumers on a queue", |q| q.consumers.len() as f64)],
    ),
    (
        "queue_metrics",
        &[
            ("queue_messages_ready_ram", "gauge", "Ready messages stored in memory", |q| q.messages_ram as f64),
            ("queue_messages_ready_bytes", "gauge", "Size in bytes of ready messages", |q| q.message_bytes_ready as f64),
            ("queue_messages_paged_out", "gauge", "Messages paged out to disk", |q| q.messages_paged_out as f64),
            ("queue_consumer_utilisation", "gauge", "Consumer utilisation", |q| q.consumer_utilisation.unwrap_or(0.0)),
        ],
    ),
    (
        "queue_delivery_metrics",
        &[
            ("queue_get_ack_total", "counter", "Total number of messages fetched from a queue with basic.get in manual acknowledgement mode", |q| q.message_stats.get(Stat::Get) as f64),
            ("queue_get_total", "counter", "Total number of messages fetched from a queue with basic.get in automatic acknowledgement mode", |q| q.message_stats.get(Stat::GetNoAck) as f64),
            ("queue_messages_delivered_ack_total", "counter", "Total number of messages delivered from a queue to consumers in manual acknowledgement mode", |q| q.message_stats.get(Stat::Deliver) as f64),
            ("queue_messages_delivered_total", "counter", "Total number of messages delivered from a queue to consumers in automatic acknowledgement mode", |q| q.message_stats.get(Stat::DeliverNoAck) as f64),
            ("queue_messages_redelivered_total", "counter", "Total number of messages redelivered from a queue to consumers", |q| q.message_stats.get(Stat::Redeliver) as f64),
            ("queue_messages_acked_total", "counter", "Total number of messages acknowledged by consumers on a queue", |q| q.message_stats.get(Stat::Ack) as f64),
            ("queue_messages_published_total", "counter", "Total number of messages published into a queue", |q| q.message_stats.get(Stat::Publish) as f64),
        ],
    ),
];

/// Warren's message ages (per object only: a sum of ages means nothing).
pub(super) const AGE_FAMILY: &str = "warren_queue_age_metrics";
/// A message age of one queue (None: no such message).
pub(super) type AgeMetric = (
    &'static str,
    &'static str,
    fn(&QueueSnapshot) -> Option<f64>,
);

pub(super) const AGES: &[AgeMetric] = &[
    ("warren_queue_oldest_ready_age_seconds", "Seconds since the oldest ready message of the queue was enqueued (at most 0.1 s more)", |q| q.oldest_ready_age_seconds),
    ("warren_queue_oldest_unacked_age_seconds", "Seconds since the oldest unacknowledged message of the queue was enqueued (at most 0.1 s more)", |q| q.oldest_unacked_age_seconds),
];

pub(super) type ChannelMetric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ChannelSnapshot) -> f64,
);

pub(super) const CHANNEL_FAMILIES: &[(&str, &[ChannelMetric])] = &[
    (
        "channel_metrics",
        &[
            ("channel_consumers", "gauge", "Consumers on a channel", |c| c.consumers as f64),
            ("channel_messages_unacked", "gauge", "Delivered but not yet acknowledged messages", |c| c.unacked as f64),
            ("consumer_prefetch", "gauge", "Limit of unacknowledged messages for each consumer", |c| c.prefetch as f64),
        ],
    ),
    (
        "channel_exchange_metrics",
        &[
            ("channel_messages_published_total", "counter", "Total number of messages published into an exchange on a channel", |c| c.message_stats.get(Stat::Publish) as f64),
            ("channel_messages_confirmed_total", "counter", "Total number of messages published into an exchange and confirmed on the channel", |c| c.message_stats.get(Stat::Confirm) as f64),
            ("channel_messages_unroutable_returned_total", "counter", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable", |c| c.message_stats.get(Stat::ReturnUnroutable) as f64),
            ("channel_messages_unroutable_dropped_total", "counter", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", |c| c.message_stats.get(Stat::DropUnroutable) as f64),
        ],
    ),
    (
        "channel_queue_metrics",
        &[
            ("channel_get_ack_total", "counter", "Total number of messages fetched with basic.get in manual acknowledgement mode", |c| c.message_stats.get(Stat::Get) as f64),
            ("channel_get_total", "counter", "Total number of messages fetched with basic.get in automatic acknowledgement mode", |c| c.message_stats.get(Stat::GetNoAck) as f64),
            ("channel_messages_delivered_ack_total", "counter", "Total number of messages delivered to consumers in manual acknowledgement mode", |c| c.message_stats.get(Stat::Deliver) as f64),
            ("channel_messages_delivered_total", "counter", "Total number of messages delivered to consumers in automatic acknowledgement mode", |c| c.message_stats.get(Stat::DeliverNoAck) as f64),
            ("channel_messages_redelivered_total", "counter", "Total number of messages redelivered to consumers", |c| c.message_stats.get(Stat::Redeliver) as f64),
            ("channel_messages_acked_total", "counter", "Total number of messages acknowledged by consumers", |c| c.message_stats.get(Stat::Ack) as f64),
            ("channel_get_empty_total", "counter", "Total number of times basic.get operations fetched no message", |c| c.message_stats.get(Stat::GetEmpty) as f64),
        ],
    ),
];

pub(super) const EXCHANGE_FAMILY: &str = "exchange_metrics";
pub(super) const EXCHANGE_METRICS: &[(&str, &str, Stat)] = &[
    (
        "exchange_messages_published_total",
        "Total number of messages published into an exchange",
        Stat::PublishIn,
    ),
    (
        "exchange_messages_routed_total",
        "Total number of messages published into an exchange and routed to at least one queue",
        Stat::PublishOut,
    ),
];

/// `rabbitmq_global_*`: per protocol, and the delivery side per queue type.
pub(super) const GLOBAL_PUBLISH: &[(&str, &str, Stat)] = &[
    ("global_messages_received_total", "Total number of messages received from publishers", Stat::Publish),
    ("global_messages_confirmed_total", "Total number of messages confirmed to publishers", Stat::Confirm),
    ("global_messages_unroutable_dropped_total", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", Stat::DropUnroutable),
    ("global_messages_unroutable_returned_total", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable", Stat::ReturnUnroutable),
];
pub(super) const GLOBAL_DELIVERY: &[(&str, &str, &[Stat])] = &[
    ("global_messages_delivered_total", "Total number of messages delivered to consumers", &[Stat::Deliver, Stat::DeliverNoAck, Stat::Get, Stat::GetNoAck]),
    ("global_messages_delivered_consume_manual_ack_total", "Total number of messages delivered to consumers using basic.consume with manual acknowledgment", &[Stat::Deliver]),
    ("global_messages_delivered_consume_auto_ack_total", "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment", &[Stat::DeliverNoAck]),
    ("global_messages_delivered_get_manual_ack_total", "Total number of messages delivered to consumers using basic.get with manual acknowledgment", &[Stat::Get]),
    ("global_messages_delivered_get_auto_ack_total", "Total number of messages delivered to consumers using basic.get with automatic acknowledgment", &[Stat::GetNoAck]),
    ("global_messages_get_empty_total", "Total number of times basic.get operations fetched no message", &[Stat::GetEmpty]),
    ("global_messages_redelivered_total", "Total number of messages redelivered to consumers", &[Stat::Redeliver]),
    ("global_messages_acknowledged_total", "Total number of messages acknowledged by consumers", &[Stat::Ack]),
];
pub(super) const PROTOCOL: &str = "protocol=\"amqp091\"";
pub(super) const QUEUE_TYPE: &str = "protocol=\"amqp091\",queue_type=\"rabbit_classic_queue\"";
