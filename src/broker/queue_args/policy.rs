//! Policies: a typed policy definition ([`PolicyDefinition`]), a policy
//! ([`Policy`]: name, regex pattern, apply-to, priority, definition), the
//! choice of the one policy that applies to a queue or exchange
//! ([`select`]) and how a queue's declared arguments and its policy combine
//! ([`effective`]). Pure; storing policies and re-applying them when they
//! change is the caller's.
//!
//! What RabbitMQ does (3.10.8, read from the broker's own
//! `rabbit_policy`, `rabbit_policies`, `rabbit_amqqueue_process` and
//! `rabbit_quorum_queue` modules, and the docs cited on each item):
//!
//! * At most one policy applies: among the policies whose `apply-to` covers
//!   the entity, whose pattern matches its name (`re:run`, unanchored) and
//!   whose every definition key the queue's type supports, the highest
//!   priority wins (`rabbit_policy:match_all/2` sorts with `>=`, stably).
//!   RabbitMQ's docs (Policies → "Policy Priorities"): when equal priorities
//!   match, "the effective one will be chosen undeterministically" — Warren
//!   takes the first one in the slice.
//! * Combining a policy with the queue's own `x-` arguments
//!   (`args_policy_lookup(Name, Resolve, Q)`: the argument alone, the policy
//!   alone, or `Resolve(PolicyValue, ArgValue)` when both are set): see
//!   [`effective`]. RabbitMQ's Policies guide (rabbitmq.com/docs/policies,
//!   "Operator Policies → Conflict Resolution with Regular Policies") says
//!   "When the same key is provided by both client-provided x-arguments and
//!   by a user policy, the former take precedence", except stream settings
//!   and `overflow` on quorum queues, where the policy does; the Queue
//!   Length Limit guide (rabbitmq.com/docs/maxlength) says that with both a
//!   policy and an argument "the minimum of the two values specified is
//!   used", and the TTL guide says the same of TTLs. The broker's code has
//!   the last word and is what is implemented.
//! * `max-priority` and `single-active-consumer` cannot be set by policy
//!   (they are not policy keys: `rabbit_policies:register/0`), nor can the
//!   queue type (Policies guide, "What Cannot Be Set Using a Policy").

use super::declare::{DeadLetterStrategy, Overflow, QueueArguments, QueueMode};
use super::QueueType;
use crate::broker::exchange::headers::erlang_term;
use crate::protocol::types::{FieldTable, FieldValue, LongStr, ShortStr};
use regex::bytes::{Regex, RegexBuilder};
use std::cmp::min;

/// What a policy applies to (`apply-to`; RabbitMQ 3.10 knows these three).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ApplyTo {
    Queues,
    Exchanges,
    #[default]
    All,
}

impl ApplyTo {
    pub fn from_name(name: &str) -> Option<ApplyTo> {
        match name {
            "queues" => Some(ApplyTo::Queues),
            "exchanges" => Some(ApplyTo::Exchanges),
            "all" => Some(ApplyTo::All),
            _ => None,
        }
    }

    /// `rabbit_policy:apply_to_validation/2`'s refusal.
    pub fn invalid(name: &str) -> String {
        format!("apply-to '{name}' unrecognised; should be 'queues', 'exchanges' or 'all'")
    }
}

/// The entity a policy is being chosen for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyTarget {
    Exchange,
    /// A queue of this type: a policy with a key the type does not support
    /// does not apply to it at all.
    Queue(QueueType),
}

/// A policy's definition, typed. Values are validated as
/// `rabbit_policies:validate_policy0/2` validates them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PolicyDefinition {
    /// `message-ttl`, ms (any integer >= 0).
    pub message_ttl: Option<u64>,
    /// `expires`, ms (>= 1).
    pub expires: Option<u64>,
    pub max_length: Option<u64>,
    pub max_length_bytes: Option<u64>,
    pub max_in_memory_length: Option<u64>,
    pub max_in_memory_bytes: Option<u64>,
    pub overflow: Option<Overflow>,
    pub dead_letter_exchange: Option<LongStr>,
    pub dead_letter_routing_key: Option<LongStr>,
    pub dead_letter_strategy: Option<DeadLetterStrategy>,
    /// `delivery-limit` (quorum queues; a policy carrying it does not apply
    /// to classic queues).
    pub delivery_limit: Option<u64>,
    /// `queue-mode` (classic queues; a policy carrying it does not apply to
    /// quorum queues).
    pub queue_mode: Option<QueueMode>,
    pub queue_version: Option<u8>,
    /// `alternate-exchange` (exchanges).
    pub alternate_exchange: Option<LongStr>,
    /// `max-unacked` (Warren's own, every queue type; at least 1).
    pub max_unacked: Option<u64>,
    /// `consumer-timeout` (ms; RabbitMQ 3.12+'s, every queue type).
    pub consumer_timeout: Option<u64>,
    /// Every key of the definition, in order — including keys Warren accepts
    /// but does not act on (mirroring, federation, stream settings). They
    /// decide which queue types the policy applies to.
    pub keys: Vec<ShortStr>,
}

/// Keys RabbitMQ accepts in a policy definition that Warren validates and
/// types (rabbit_policies), and keys it accepts without acting on.
const IGNORED_KEYS: &[&str] = &[
    "ha-mode",
    "ha-params",
    "ha-sync-mode",
    "ha-sync-batch-size",
    "ha-promote-on-shutdown",
    "ha-promote-on-failure",
    "queue-master-locator",
    "federation-upstream",
    "federation-upstream-set",
    "max-age",
    "stream-max-segment-size-bytes",
    "queue-leader-locator",
    "initial-cluster-size",
];

impl PolicyDefinition {
    /// Types and validates a definition (JSON numbers as integers, strings
    /// as longstrs). Refusals are `rabbit_policies`' texts, such as
    /// `-1 is not a valid message TTL`; keys RabbitMQ does not know are
    /// refused as `[{<<"foo">>,1}] are not recognised policy settings`.
    pub fn parse(definition: &FieldTable) -> Result<PolicyDefinition, String> {
        if definition.is_empty() {
            return Err("no policy provided".to_string());
        }
        let mut d = PolicyDefinition::default();
        let mut unknown = Vec::new();
        for (key, value) in definition.iter() {
            if d.keys.contains(key) {
                return Err(format!("[<<\"{key}\">>] duplicate keys not allowed"));
            }
            d.keys.push(key.clone());
            let bad = |what: &str| format!("{} is not a valid {what}", erlang_term(value));
            let int_at_least = |floor: i64, what: &str| match value.as_i64() {
                Some(n) if n >= floor => Ok(n as u64),
                _ => Err(bad(what)),
            };
            let string = |what: &str| match value {
                FieldValue::LongStr(s) => Ok(s.clone()),
                _ => Err(bad(what)),
            };
            match key.as_str() {
                "message-ttl" => d.message_ttl = Some(int_at_least(0, "message TTL")?),
                "expires" => d.expires = Some(int_at_least(1, "queue expiry")?),
                "max-length" => d.max_length = Some(int_at_least(0, "maximum length")?),
                "max-length-bytes" => {
                    d.max_length_bytes = Some(int_at_least(0, "maximum length in bytes")?)
                }
                "max-in-memory-length" => {
                    d.max_in_memory_length = Some(int_at_least(0, "maximum memory in bytes")?)
                }
                "max-in-memory-bytes" => {
                    d.max_in_memory_bytes = Some(int_at_least(0, "maximum memory in bytes")?)
                }
                "delivery-limit" => d.delivery_limit = Some(int_at_least(0, "delivery limit")?),
                "max-unacked" => d.max_unacked = Some(int_at_least(1, "maximum unacked count")?),
                "consumer-timeout" => {
                    d.consumer_timeout = Some(int_at_least(0, "consumer timeout")?)
                }
                "overflow" => {
                    let s = string("overflow value")?;
                    d.overflow = Some(Overflow::from_name(&s).ok_or_else(|| bad("overflow value"))?)
                }
                "queue-mode" => {
                    let s = string("queue-mode value")?;
                    d.queue_mode =
                        Some(QueueMode::from_name(&s).ok_or_else(|| bad("queue-mode value"))?)
                }
                "queue-version" => match value.as_i64() {
                    Some(v @ (1 | 2)) => d.queue_version = Some(v as u8),
                    _ => return Err(bad("queue-version value")),
                },
                "dead-letter-exchange" => {
                    d.dead_letter_exchange = Some(string("dead letter exchange name")?)
                }
                "dead-letter-routing-key" => {
                    d.dead_letter_routing_key = Some(string("dead letter routing key")?)
                }
                "dead-letter-strategy" => {
                    let s = string("dead letter strategy")?;
                    d.dead_letter_strategy = Some(
                        DeadLetterStrategy::from_name(&s)
                            .ok_or_else(|| bad("dead letter strategy"))?,
                    )
                }
                "alternate-exchange" => {
                    d.alternate_exchange = Some(string("alternate exchange name")?)
                }
                k if IGNORED_KEYS.contains(&k) => {}
                _ => unknown.push(format!("{{<<\"{key}\">>,{}}}", erlang_term(value))),
            }
        }
        if !unknown.is_empty() {
            return Err(format!(
                "[{}] are not recognised policy settings",
                unknown.join(",")
            ));
        }
        Ok(d)
    }

    /// `rabbit_queue_type:is_policy_applicable/2`: every key must be one
    /// the queue type supports.
    pub fn applies_to(&self, queue_type: QueueType) -> bool {
        let unsupported = queue_type.unsupported_policies();
        !self.keys.iter().any(|k| unsupported.contains(&k.as_str()))
    }
}

/// A policy. The pattern is compiled once, byte-oriented and without
/// Unicode classes, to behave like Erlang's `re:run/3` on a binary without
/// the `unicode` option (`.` is one byte, `\w` is ASCII). Patterns using PCRE
/// features the `regex` crate lacks (backreferences, look-around) are
/// refused by [`Policy::new`].
#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    /// The regular expression's source, as given.
    pub pattern: String,
    pub apply_to: ApplyTo,
    pub priority: i64,
    pub definition: PolicyDefinition,
    regex: Regex,
}

impl Policy {
    /// A policy, or RabbitMQ's refusal of an invalid pattern
    /// (`pattern should be regular expression but is invalid: ...`).
    pub fn new(
        name: impl Into<String>,
        pattern: &str,
        apply_to: ApplyTo,
        priority: i64,
        definition: PolicyDefinition,
    ) -> Result<Policy, String> {
        let regex = RegexBuilder::new(pattern)
            .unicode(false)
            .build()
            .map_err(|e| format!("pattern should be regular expression but is invalid: {e}"))?;
        Ok(Policy {
            name: name.into(),
            pattern: pattern.to_string(),
            apply_to,
            priority,
            definition,
            regex,
        })
    }

    /// Whether this policy would apply to `name` (ignoring other policies).
    pub fn matches(&self, name: &str, target: PolicyTarget) -> bool {
        let kind_ok = matches!(
            (self.apply_to, target),
            (ApplyTo::All, _)
                | (ApplyTo::Queues, PolicyTarget::Queue(_))
                | (ApplyTo::Exchanges, PolicyTarget::Exchange)
        );
        let type_ok = match target {
            PolicyTarget::Queue(t) => self.definition.applies_to(t),
            PolicyTarget::Exchange => true,
        };
        kind_ok && type_ok && self.regex.is_match(name.as_bytes())
    }
}

/// The policy that applies to the queue or exchange `name`: the matching
/// one with the highest priority; on a tie, the first in `policies`.
pub fn select<'a>(policies: &'a [Policy], name: &str, target: PolicyTarget) -> Option<&'a Policy> {
    let mut best: Option<&Policy> = None;
    for p in policies.iter().filter(|p| p.matches(name, target)) {
        if best.is_none_or(|b| p.priority > b.priority) {
            best = Some(p);
        }
    }
    best
}

/// The arguments a queue runs with: its declared arguments combined with
/// its policy's definition, per RabbitMQ 3.10.8.
///
/// Classic queues (`rabbit_amqqueue_process:process_args_policy/1`):
/// `expires`, `message-ttl`, `max-length`, `max-length-bytes` — the lower of
/// the two; `dead-letter-exchange`, `dead-letter-routing-key`, `overflow`,
/// `queue-mode`, `queue-version` — the argument wins.
///
/// Quorum queues (`rabbit_quorum_queue:ra_machine_config/1`):
/// `max-length`, `max-length-bytes`, `max-in-memory-length`,
/// `max-in-memory-bytes`, `delivery-limit`, `message-ttl` — the lower;
/// `overflow` and `expires` — **the policy wins** (`policyHasPrecedence`);
/// `dead-letter-exchange`, `dead-letter-routing-key`,
/// `dead-letter-strategy` — the argument wins. A quorum queue asked for
/// `reject-publish-dlx` runs `drop-head` (RabbitMQ logs "Invalid overflow
/// strategy"). RabbitMQ 4.x changed quorum `expires` to the lower of the
/// two and gives quorum queues a delivery limit of 20 when none is set
/// (see `RABBITMQ4_DEFAULT_DELIVERY_LIMIT`); this follows 3.10.8.
///
/// Warren's `max-unacked` and `consumer-timeout` (both types; RabbitMQ
/// 3.12+'s `rabbit_channel:get_queue_consumer_timeout/2` takes the lower
/// of policy and argument): the lower of the two.
///
/// `max-priority` and `single-active-consumer` come from the arguments
/// only. A definition the queue's type does not support (see
/// [`PolicyDefinition::applies_to`]) is ignored, as `select` would skip it.
pub fn effective(args: &QueueArguments, policy: Option<&PolicyDefinition>) -> QueueArguments {
    let mut out = args.clone();
    let Some(p) = policy.filter(|p| p.applies_to(args.queue_type)) else {
        return quorum_overflow(out);
    };
    let lower = |pol: Option<u64>, arg: Option<u64>| match (pol, arg) {
        (Some(p), Some(a)) => Some(min(p, a)),
        (p, a) => a.or(p),
    };
    out.message_ttl = lower(p.message_ttl, args.message_ttl);
    out.max_length = lower(p.max_length, args.max_length);
    out.max_length_bytes = lower(p.max_length_bytes, args.max_length_bytes);
    out.max_unacked = lower(p.max_unacked, args.max_unacked);
    out.consumer_timeout = lower(p.consumer_timeout, args.consumer_timeout);
    out.dead_letter_exchange = args
        .dead_letter_exchange
        .clone()
        .or_else(|| p.dead_letter_exchange.clone());
    out.dead_letter_routing_key = args
        .dead_letter_routing_key
        .clone()
        .or_else(|| p.dead_letter_routing_key.clone());
    match args.queue_type {
        QueueType::Classic => {
            out.expires = lower(p.expires, args.expires);
            out.overflow = args.overflow.or(p.overflow);
            out.queue_mode = args.queue_mode.or(p.queue_mode);
            out.queue_version = args.queue_version.or(p.queue_version);
        }
        QueueType::Quorum => {
            out.expires = p.expires.or(args.expires);
            out.overflow = p.overflow.or(args.overflow);
            out.max_in_memory_length = lower(p.max_in_memory_length, args.max_in_memory_length);
            out.max_in_memory_bytes = lower(p.max_in_memory_bytes, args.max_in_memory_bytes);
            out.delivery_limit = match (p.delivery_limit, args.delivery_limit) {
                (Some(pol), Some(arg)) => Some(min(i64::try_from(pol).unwrap_or(i64::MAX), arg)),
                (pol, arg) => arg.or(pol.map(|v| i64::try_from(v).unwrap_or(i64::MAX))),
            };
            out.dead_letter_strategy = args.dead_letter_strategy.or(p.dead_letter_strategy);
        }
    }
    quorum_overflow(out)
}

fn quorum_overflow(mut args: QueueArguments) -> QueueArguments {
    if args.queue_type == QueueType::Quorum && args.overflow == Some(Overflow::RejectPublishDlx) {
        args.overflow = Some(Overflow::DropHead);
    }
    args
}
