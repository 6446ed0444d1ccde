//! Exchange and binding definitions (`ExchangeKind`, `ExchangeDef`,
//! `Destination`, `BindingDef`) and the per-exchange router that turns a
//! routing key (and headers) into destinations for one exchange, by kind:
//! direct (hash map), fanout (set), topic (`topic::TopicTrie`) and headers
//! (`headers::HeadersBinding`, scanned linearly as RabbitMQ does).
//!
//! The routers only ever see *distinct* (routing key, destination) pairs for
//! direct/fanout/topic; `Topology` collapses bindings that differ only in
//! their arguments before calling them. Headers bindings are kept one per
//! binding because their arguments are what they match on.

use crate::broker::headers::HeadersBinding;
use crate::broker::topic::TopicTrie;
use crate::protocol::types::{FieldTable, ShortStr};
use std::collections::HashMap;

/// The four exchange types Warren implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeKind {
    /// The kind named by an `exchange.declare` type field, if Warren knows it.
    pub fn parse(s: &str) -> Option<ExchangeKind> {
        match s {
            "direct" => Some(ExchangeKind::Direct),
            "fanout" => Some(ExchangeKind::Fanout),
            "topic" => Some(ExchangeKind::Topic),
            "headers" => Some(ExchangeKind::Headers),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
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

/// Where a binding leads: a queue or another exchange (exchange-to-exchange).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    Queue(ShortStr),
    Exchange(ShortStr),
}

impl Destination {
    pub fn name(&self) -> &ShortStr {
        match self {
            Destination::Queue(n) | Destination::Exchange(n) => n,
        }
    }

    /// `"queue"` or `"exchange"`, as RabbitMQ names resource kinds.
    pub fn kind_str(&self) -> &'static str {
        match self {
            Destination::Queue(_) => "queue",
            Destination::Exchange(_) => "exchange",
        }
    }
}

/// One binding. `arguments` are kept sorted by key (as RabbitMQ stores them),
/// which is also how two bindings are compared for identity.
#[derive(Clone, Debug, PartialEq)]
pub struct BindingDef {
    pub source: ShortStr,
    pub destination: Destination,
    pub routing_key: ShortStr,
    pub arguments: FieldTable,
}

/// Per-exchange routing state, one variant per kind.
#[derive(Debug)]
pub(crate) enum Router {
    /// routing key -> distinct destinations bound with exactly that key.
    Direct(HashMap<ShortStr, Vec<Destination>>),
    /// destination -> number of distinct routing keys it is bound with.
    Fanout(HashMap<Destination, u32>),
    Topic(TopicTrie),
    /// One entry per binding (routing key kept for identity on unbind).
    Headers(Vec<(ShortStr, Destination, HeadersBinding)>),
}

impl Router {
    pub(crate) fn new(kind: ExchangeKind) -> Router {
        match kind {
            ExchangeKind::Direct => Router::Direct(HashMap::new()),
            ExchangeKind::Fanout => Router::Fanout(HashMap::new()),
            ExchangeKind::Topic => Router::Topic(TopicTrie::new()),
            ExchangeKind::Headers => Router::Headers(Vec::new()),
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
            Router::Direct(map) => {
                let dests = map.entry(key.clone()).or_default();
                debug_assert!(!dests.contains(dest), "direct pair added twice");
                dests.push(dest.clone());
            }
            Router::Fanout(map) => *map.entry(dest.clone()).or_insert(0) += 1,
            Router::Topic(trie) => trie.insert(key, dest),
            Router::Headers(list) => {
                list.push((key.clone(), dest.clone(), HeadersBinding::new(args)))
            }
        }
    }

    /// Removes what `add` added with the same arguments.
    pub(crate) fn remove(&mut self, key: &ShortStr, dest: &Destination, args: &FieldTable) {
        match self {
            Router::Direct(map) => {
                if let Some(dests) = map.get_mut(key.as_str()) {
                    if let Some(i) = dests.iter().position(|d| d == dest) {
                        dests.swap_remove(i);
                    }
                    if dests.is_empty() {
                        map.remove(key.as_str());
                    }
                }
            }
            Router::Fanout(map) => {
                if let Some(n) = map.get_mut(dest) {
                    *n -= 1;
                    if *n == 0 {
                        map.remove(dest);
                    }
                }
            }
            Router::Topic(trie) => trie.remove(key, dest),
            Router::Headers(list) => {
                if let Some(i) = list
                    .iter()
                    .position(|(k, d, b)| k == key && d == dest && b.arguments() == args)
                {
                    list.swap_remove(i);
                }
            }
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
            Router::Direct(map) => {
                if let Some(dests) = map.get(routing_key) {
                    dests.iter().for_each(emit);
                }
                true
            }
            Router::Fanout(map) => {
                map.keys().for_each(emit);
                true
            }
            Router::Topic(trie) => {
                trie.matches(routing_key, &mut emit);
                false
            }
            Router::Headers(list) => {
                for (_, dest, binding) in list {
                    if binding.matches(headers) {
                        emit(dest);
                    }
                }
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
        assert_eq!(ExchangeKind::parse("x-delayed-message"), None);
        assert_eq!(ExchangeKind::parse("Direct"), None);
        assert_eq!(ExchangeKind::parse(""), None);
    }

    #[test]
    fn direct_router_add_remove() {
        let mut r = Router::new(ExchangeKind::Direct);
        let q1 = Destination::Queue("q1".into());
        let q2 = Destination::Queue("q2".into());
        let empty = FieldTable::new();
        r.add(&"k".into(), &q1, &empty);
        r.add(&"k".into(), &q2, &empty);
        let mut got = Vec::new();
        assert!(r.route("k", None, |d| got.push(d.clone())));
        got.sort();
        assert_eq!(got, vec![q1.clone(), q2.clone()]);
        r.remove(&"k".into(), &q1, &empty);
        got.clear();
        r.route("k", None, |d| got.push(d.clone()));
        assert_eq!(got, vec![q2.clone()]);
        r.remove(&"k".into(), &q2, &empty);
        match &r {
            Router::Direct(map) => assert!(map.is_empty()),
            _ => unreachable!(),
        }
    }

    #[test]
    fn fanout_router_counts_keys() {
        let mut r = Router::new(ExchangeKind::Fanout);
        let q = Destination::Queue("q".into());
        let empty = FieldTable::new();
        r.add(&"a".into(), &q, &empty);
        r.add(&"b".into(), &q, &empty);
        let mut n = 0;
        r.route("zzz", None, |_| n += 1);
        assert_eq!(n, 1);
        r.remove(&"a".into(), &q, &empty);
        n = 0;
        r.route("", None, |_| n += 1);
        assert_eq!(n, 1, "still bound with key b");
        r.remove(&"b".into(), &q, &empty);
        n = 0;
        r.route("", None, |_| n += 1);
        assert_eq!(n, 0);
    }
}
