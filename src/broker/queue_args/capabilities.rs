//! RabbitMQ 3.10.8's per-queue-type capability tables, copied from the
//! `capabilities/0` of `rabbit_classic_queue`, `rabbit_quorum_queue` and
//! `rabbit_stream_queue` (read from the running broker's own modules): which
//! declare and consume arguments each type owns, and which policy keys make a
//! whole policy inapplicable to it. Order matters: RabbitMQ checks
//! redeclare equivalence in the `*_ARGS` order.

use super::QueueType;

/// `queue_arguments` of classic queues, in RabbitMQ's order.
pub(crate) const CLASSIC_ARGS: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-version",
    "x-single-active-consumer",
    "x-queue-type",
    "x-queue-master-locator",
];

/// `queue_arguments` of quorum queues, in RabbitMQ's order.
pub(crate) const QUORUM_ARGS: &[&str] = &[
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-overflow",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-delivery-limit",
    "x-message-ttl",
    "x-queue-leader-locator",
];

/// `queue_arguments` of streams. Warren has no streams, but RabbitMQ refuses
/// these on the other types ("of queue type ...") because streams own them.
pub(crate) const STREAM_ARGS: &[&str] = &[
    "x-max-length-bytes",
    "x-queue-type",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
];

/// Warren's own declare arguments, owned by every queue type (compared on
/// redeclare after RabbitMQ's).
/// (`x-consumer-timeout` is RabbitMQ 3.12+'s, which 3.10.8 ignores.)
pub(crate) const WARREN_ARGS: &[&str] = &["x-max-unacked", "x-consumer-timeout"];

/// `consumer_arguments` per type.
pub(crate) const CLASSIC_CONSUMER_ARGS: &[&str] =
    &["x-cancel-on-ha-failover", "x-priority", "x-credit"];
pub(crate) const QUORUM_CONSUMER_ARGS: &[&str] = &["x-priority", "x-credit"];
pub(crate) const STREAM_CONSUMER_ARGS: &[&str] = &["x-stream-offset", "x-credit"];

/// Policy keys whose presence makes a policy skip queues of the type
/// (`unsupported_policies`; `rabbit_queue_type:is_policy_applicable/2`
/// requires *every* key of the definition to be supported).
pub(crate) const CLASSIC_UNSUPPORTED_POLICIES: &[&str] = &[
    "max-age",
    "stream-max-segment-size-bytes",
    "queue-leader-locator",
    "initial-cluster-size",
    "delivery-limit",
    "dead-letter-strategy",
];
pub(crate) const QUORUM_UNSUPPORTED_POLICIES: &[&str] = &[
    "max-priority",
    "queue-mode",
    "single-active-consumer",
    "ha-mode",
    "ha-params",
    "ha-sync-mode",
    "ha-promote-on-shutdown",
    "ha-promote-on-failure",
    "queue-master-locator",
    "max-age",
    "stream-max-segment-size-bytes",
    "initial-cluster-size",
];

impl QueueType {
    /// The Erlang module RabbitMQ names in "of queue type ..." errors.
    pub fn rabbit_module(self) -> &'static str {
        match self {
            QueueType::Classic => "rabbit_classic_queue",
            QueueType::Quorum => "rabbit_quorum_queue",
        }
    }

    /// The declare arguments this type owns, in RabbitMQ's order.
    pub(crate) fn queue_arguments(self) -> &'static [&'static str] {
        match self {
            QueueType::Classic => CLASSIC_ARGS,
            QueueType::Quorum => QUORUM_ARGS,
        }
    }

    pub(crate) fn consumer_arguments(self) -> &'static [&'static str] {
        match self {
            QueueType::Classic => CLASSIC_CONSUMER_ARGS,
            QueueType::Quorum => QUORUM_CONSUMER_ARGS,
        }
    }

    pub(crate) fn unsupported_policies(self) -> &'static [&'static str] {
        match self {
            QueueType::Classic => CLASSIC_UNSUPPORTED_POLICIES,
            QueueType::Quorum => QUORUM_UNSUPPORTED_POLICIES,
        }
    }
}

/// A declare argument some *other* queue type owns: RabbitMQ refuses it
/// (`rabbit_queue_type:arguments(queue_arguments) -- QueueTypeArgs`).
pub(crate) fn is_foreign_queue_arg(queue_type: QueueType, key: &str) -> bool {
    let known = CLASSIC_ARGS
        .iter()
        .chain(QUORUM_ARGS)
        .chain(STREAM_ARGS)
        .any(|k| *k == key);
    known && !queue_type.queue_arguments().contains(&key)
}

/// The consumer-argument counterpart of [`is_foreign_queue_arg`].
pub(crate) fn is_foreign_consumer_arg(queue_type: QueueType, key: &str) -> bool {
    let known = CLASSIC_CONSUMER_ARGS
        .iter()
        .chain(QUORUM_CONSUMER_ARGS)
        .chain(STREAM_CONSUMER_ARGS)
        .any(|k| *k == key);
    known && !queue_type.consumer_arguments().contains(&key)
}
