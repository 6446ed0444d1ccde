//! Exchange definitions (`ExchangeKind`, `ExchangeDef`) and `Router`, the
//! per-exchange routing state: an enum with one variant per kind that
//! dispatches to the kind's own module — `direct` (hash map), `fanout`
//! (set), `topic` (`topic::TopicTrie`) and `headers`
//! (`headers::HeadersRouter`, scanned linearly as RabbitMQ does). An enum,
//! not a trait object: routing is on the publish path.
//!
//! The routers only ever see *distinct* (routing key, destination) pairs for
//! direct/fanout/topic; `Topology` collapses bindings that differ only in
//! their arguments before calling them. Headers bindings are kept one per
//! binding because their arguments are what they match on.
//!
//! `Destination` and `BindingDef` live in `broker::binding` and are
//! re-exported here, where callers outside `broker` have always found them.

pub mod delayed;
pub mod direct;
pub mod fanout;
pub mod headers;
pub mod topic;

pub use crate::broker::binding::{BindingDef, Destination};

use crate::protocol::types::{FieldTable, ShortStr};
use direct::DirectRouter;
use fanout::FanoutRouter;
use headers::HeadersRouter;
use topic::TopicTrie;

/// The exchange types Warren implements: the four of AMQP and the
/// delayed-message plugin's `x-delayed-message` (which routes as its
/// `x-delayed-type` argument says, see `delayed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
    DelayedMessage,
}

impl ExchangeKind {
    /// The kind named by an `exchange.declare` type field, if Warren knows it.
    pub fn parse(s: &str) -> Option<ExchangeKind> {
        match s {
            "direct" => Some(ExchangeKind::Direct),
            "fanout" => Some(ExchangeKind::Fanout),
            "topic" => Some(ExchangeKind::Topic),
            "headers" => Some(ExchangeKind::Headers),
            delayed::TYPE_NAME => Some(ExchangeKind::DelayedMessage),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
            ExchangeKind::DelayedMessage => delayed::TYPE_NAME,
        }
    }
}

/// An exchange as declared.
#[derive(Clone, Debug, PartialEq)]
pub struct ExchangeDef {
    pub name: ShortStr,
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

/// Per-exchange routing state, one variant per kind.
#[derive(Debug)]
pub(crate) enum Router {
    Direct(DirectRouter),
    Fanout(FanoutRouter),
    Topic(TopicTrie),
    Headers(HeadersRouter),
}

impl Router {
    #[cfg(test)]
    pub(crate) fn new(kind: ExchangeKind) -> Router {
        Router::for_exchange(kind, &FieldTable::new())
    }

    /// The router of an exchange declared with this kind and these
    /// arguments: a delayed exchange routes as its `x-delayed-type`.
    pub(crate) fn for_exchange(kind: ExchangeKind, arguments: &FieldTable) -> Router {
        match kind {
            ExchangeKind::DelayedMessage => {
                Router::for_exchange(delayed::routing_kind(arguments), arguments)
            }
            ExchangeKind::Direct => Router::Direct(DirectRouter::default()),
            ExchangeKind::Fanout => Router::Fanout(FanoutRouter::default()),
            ExchangeKind::Topic => Router::Topic(TopicTrie::new()),
            ExchangeKind::Headers => Router::Headers(HeadersRouter::default()),
        }
    }

    /// Whether the router keeps one entry per binding (headers) rather than
    /// one per distinct (routing key, destination) pair.
    pub(crate) fn per_binding(&self) -> bool {
        matches!(self, Router::Headers(_))
    }

    /// Adds a (key, destination) pair, or for headers one binding. The caller
    /// guarantees a pair is added at most once before it is removed.
    pub(crate) fn add(&mut self, key: &ShortStr, dest: &Destination, args: &FieldTable) {
        match self {
            Router::Direct(r) => r.add(key, dest),
            Router::Fanout(r) => r.add(dest),
            Router::Topic(trie) => trie.insert(key, dest),
            Router::Headers(r) => r.add(key, dest, args),
        }
    }

    /// Removes what `add` added with the same arguments.
    pub(crate) fn remove(&mut self, key: &ShortStr, dest: &Destination, args: &FieldTable) {
        match self {
            Router::Direct(r) => r.remove(key, dest),
            Router::Fanout(r) => r.remove(dest),
            Router::Topic(trie) => trie.remove(key, dest),
            Router::Headers(r) => r.remove(key, dest, args),
        }
    }

    /// Calls `emit` for every destination this exchange routes the message
    /// to. Returns whether the emitted destinations are guaranteed distinct
    /// (true for direct and fanout; topic and headers may repeat one).
    pub(crate) fn route<F: FnMut(&Destination)>(
        &self,
        routing_key: &str,
        headers: Option<&FieldTable>,
        mut emit: F,
    ) -> bool {
        match self {
            Router::Direct(r) => {
                r.route(routing_key, emit);
                true
            }
            Router::Fanout(r) => {
                r.route(emit);
                true
            }
            Router::Topic(trie) => {
                trie.matches(routing_key, &mut emit);
                false
            }
            Router::Headers(r) => {
                r.route(headers, emit);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_parse_round_trips() {
        for k in [
            ExchangeKind::Direct,
            ExchangeKind::Fanout,
            ExchangeKind::Topic,
            ExchangeKind::Headers,
        ] {
            assert_eq!(ExchangeKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(
            ExchangeKind::parse("x-delayed-message"),
            Some(ExchangeKind::DelayedMessage)
        );
        assert_eq!(ExchangeKind::parse("Direct"), None);
        assert_eq!(ExchangeKind::parse(""), None);
    }
}
