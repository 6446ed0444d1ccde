//! Policies on a queue: the queue's effective arguments (its declared
//! arguments combined with the policy that applies to it, by
//! `queue_args::policy::effective`), which every feature reads instead of
//! the declared ones, and `Queue::apply_policy`, which re-derives each
//! feature's state when the policy changes. The declared arguments
//! (`QueueConfig.arguments`) stay what equivalence checks compare.
//!
//! As RabbitMQ (`rabbit_amqqueue_process:process_args_policy/1`), a new
//! policy changes the queue's settings, not the messages already in it:
//! a message keeps the deadline it got when it was enqueued, and a lower
//! length limit trims the queue at the next publish.

use super::{expiry, limits, ttl, unacked, DeliveryCounting, Queue};
use crate::broker::queue_args::policy::{effective, Policy};
use crate::broker::queue_args::QueueArguments;
use crate::protocol::types::{FieldTable, FieldValue, ShortStr};

/// The arguments a policy can change, as `x-` argument names.
const POLICY_ARGUMENTS: &[&str] = &[
    "x-message-ttl",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-overflow",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-delivery-limit",
    "x-max-unacked",
    "x-consumer-timeout",
];

/// The declared arguments `declared` combined with `policy`, as an
/// argument table the features read.
pub fn effective_arguments(
    name: &str,
    declared: &FieldTable,
    policy: Option<&Policy>,
) -> FieldTable {
    let Some(policy) = policy else {
        return declared.clone();
    };
    let args = QueueArguments::parse(name, declared).unwrap_or_default();
    let eff = effective(&args, Some(&policy.definition));
    let mut out = FieldTable(
        declared
            .iter()
            .filter(|(k, _)| !POLICY_ARGUMENTS.contains(&k.as_str()))
            .cloned()
            .collect(),
    );
    let mut put = |k: &'static str, v: FieldValue| out.insert(ShortStr::from_static(k), v);
    let int = |v: u64| FieldValue::I64(i64::try_from(v).unwrap_or(i64::MAX));
    if let Some(v) = eff.message_ttl {
        put("x-message-ttl", int(v));
    }
    if let Some(v) = eff.expires {
        put("x-expires", int(v));
    }
    if let Some(v) = eff.max_length {
        put("x-max-length", int(v));
    }
    if let Some(v) = eff.max_length_bytes {
        put("x-max-length-bytes", int(v));
    }
    if let Some(v) = eff.overflow {
        put(
            "x-overflow",
            FieldValue::LongStr(bytes::Bytes::from_static(v.name().as_bytes())),
        );
    }
    if let Some(v) = eff.dead_letter_exchange {
        put("x-dead-letter-exchange", FieldValue::LongStr(v));
    }
    if let Some(v) = eff.dead_letter_routing_key {
        put("x-dead-letter-routing-key", FieldValue::LongStr(v));
    }
    if let Some(v) = eff.delivery_limit {
        put("x-delivery-limit", FieldValue::I64(v));
    }
    if let Some(v) = eff.max_unacked {
        put("x-max-unacked", int(v));
    }
    if let Some(v) = eff.consumer_timeout {
        put("x-consumer-timeout", int(v));
    }
    out
}

impl Queue {
    /// The arguments the queue runs with (declared, combined with its
    /// policy).
    pub fn effective_arguments(&self) -> &FieldTable {
        &self.effective
    }

    /// The name of the policy applied to the queue, if any.
    pub fn policy(&self) -> Option<&str> {
        self.policy.as_deref()
    }

    /// Applies `policy` (None: no policy applies any more): re-derives the
    /// delivery limit, length limits, the unacked cap, message TTL, expiry and dead-lettering from the new
    /// effective arguments. Returns whether the queue started to expire
    /// (its owner then starts the expiry timer).
    pub fn apply_policy(&mut self, policy: Option<&Policy>) -> bool {
        self.policy = policy.map(|p| p.name.clone());
        self.effective = effective_arguments(self.name.as_str(), &self.config.arguments, policy);
        let args = &self.effective;
        self.delivery_counting = DeliveryCounting::of(
            &QueueArguments::parse(self.name.as_str(), args).unwrap_or_default(),
        );
        self.limits = limits::limits(args);
        self.max_unacked = unacked::max_unacked(args);
        self.consumer_timeout = unacked::consumer_timeout(args);
        self.deadlines.queue_ttl = ttl::message_ttl(args);
        self.deadlines.drop_unread = !ttl::has_dead_letter_exchange(args);
        let was = self.expiry.after;
        self.expiry.after = expiry::expires(args);
        self.touch();
        was.is_none() && self.expiry.after.is_some()
    }
}
