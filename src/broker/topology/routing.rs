//! Routing through the topology, on the publish path: `Topology::route`
//! follows exchange-to-exchange bindings and alternate exchanges from the
//! published-to exchange, each exchange at most once, and hands back each
//! queue once (`RouteResult`; the key as `RoutingKey`). The matching itself
//! is the exchange kinds' (`exchange::Router`). Allocates nothing per
//! message but the caller's `out` growth (and a spill past 16 exchanges in
//! one exchange-to-exchange walk).

use super::registry::ExchangeEntry;
use super::Topology;
use crate::broker::binding::Destination;
use crate::protocol::types::{FieldTable, LongStr, ShortStr};
use std::collections::HashSet;

/// What `Topology::route` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteResult {
    /// The exchange does not exist: the caller closes the channel with
    /// `exchange_not_found(name)` (404).
    ExchangeNotFound,
    /// The exchange is internal: clients may not publish to it (403
    /// `publish_to_internal(name)`); it only takes exchange-to-exchange
    /// traffic.
    Internal,
    /// The exchange exists; this many distinct queue names were appended to
    /// `out` (0: the message is unroutable).
    Routed { queues: usize },
}

impl RouteResult {
    pub fn exchange_found(self) -> bool {
        !matches!(self, RouteResult::ExchangeNotFound)
    }
    pub fn queues(self) -> usize {
        match self {
            RouteResult::Routed { queues } => queues,
            RouteResult::ExchangeNotFound | RouteResult::Internal => 0,
        }
    }
}

/// A routing key as `route` takes it: `&str`, `&String` or `&ShortStr` (the
/// last one lets the default exchange hand the key back as a queue name
/// without copying it).
pub trait RoutingKey {
    fn key_str(&self) -> &str;
    /// The key as a queue name, or `None` if it is too long to be one.
    fn queue_name(&self) -> Option<ShortStr>;
}

impl RoutingKey for str {
    fn key_str(&self) -> &str {
        self
    }
    fn queue_name(&self) -> Option<ShortStr> {
        ShortStr::try_from_string(self.to_owned())
    }
}

impl RoutingKey for String {
    fn key_str(&self) -> &str {
        self
    }
    fn queue_name(&self) -> Option<ShortStr> {
        self.as_str().queue_name()
    }
}

impl RoutingKey for ShortStr {
    fn key_str(&self) -> &str {
        self.as_str()
    }
    fn queue_name(&self) -> Option<ShortStr> {
        Some(self.clone())
    }
}

/// A small set/stack of exchanges for one `route` call: inline up to
/// `INLINE`, spilling to the heap only for long exchange-to-exchange chains.
const INLINE: usize = 16;

struct Visit<'a> {
    seen: [Option<&'a ExchangeEntry>; INLINE],
    seen_len: usize,
    seen_spill: Option<HashSet<*const ExchangeEntry>>,
    work: [Option<&'a ExchangeEntry>; INLINE],
    work_len: usize,
    work_spill: Vec<&'a ExchangeEntry>,
}

impl<'a> Visit<'a> {
    fn new() -> Visit<'a> {
        Visit {
            seen: [None; INLINE],
            seen_len: 0,
            seen_spill: None,
            work: [None; INLINE],
            work_len: 0,
            work_spill: Vec::new(),
        }
    }

    /// Marks `x` seen and queues it, unless it was seen already.
    fn visit(&mut self, x: &'a ExchangeEntry) {
        let seen = self.seen[..self.seen_len]
            .iter()
            .any(|s| s.is_some_and(|s| std::ptr::eq(s, x)))
            || self
                .seen_spill
                .as_ref()
                .is_some_and(|h| h.contains(&(x as *const _)));
        if seen {
            return;
        }
        if self.seen_len < INLINE {
            self.seen[self.seen_len] = Some(x);
            self.seen_len += 1;
        } else {
            self.seen_spill
                .get_or_insert_with(HashSet::new)
                .insert(x as *const _);
        }
        if self.work_len < INLINE {
            self.work[self.work_len] = Some(x);
            self.work_len += 1;
        } else {
            self.work_spill.push(x);
        }
    }

    fn next(&mut self) -> Option<&'a ExchangeEntry> {
        if let Some(x) = self.work_spill.pop() {
            return Some(x);
        }
        if self.work_len == 0 {
            return None;
        }
        self.work_len -= 1;
        self.work[self.work_len].take()
    }
}

/// Who a message is routed for: a client's basic.publish may not name an
/// internal exchange; the broker's own republishing (dead-lettering) may,
/// as RabbitMQ's `internal` flag only forbids client publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Client,
    Broker,
}

impl Topology {
    /// Routes one message: appends to `out` the names of the queues it goes
    /// to, each at most once per call (names already in `out` before the call
    /// are left alone), following exchange-to-exchange bindings and
    /// alternate exchanges (taken when an exchange itself matched nothing),
    /// each exchange visited at most once. The default exchange "" routes to
    /// the queue named by the routing key, whether it exists or not.
    ///
    /// Allocates nothing but `out`'s growth, except past 16 exchanges in one
    /// exchange-to-exchange walk.
    #[inline]
    pub fn route<K: RoutingKey + ?Sized>(
        &self,
        exchange: &str,
        routing_key: &K,
        headers: Option<&FieldTable>,
        out: &mut Vec<ShortStr>,
    ) -> RouteResult {
        self.route_keys(exchange, routing_key, &[], headers, Origin::Client, out)
    }

    /// `route` with the extra routing keys `extra` (the `CC` and `BCC`
    /// keys of sender-selected distribution, `sender_selected::extra_keys`)
    /// matched as well, as RabbitMQ matches every routing key of a message
    /// at each exchange: an exchange that matched nothing with any key
    /// takes its alternate exchange. Keys that are not UTF-8 match nothing.
    /// `Origin::Broker` may start at an internal exchange.
    pub fn route_keys<K: RoutingKey + ?Sized>(
        &self,
        exchange: &str,
        routing_key: &K,
        extra: &[LongStr],
        headers: Option<&FieldTable>,
        origin: Origin,
        out: &mut Vec<ShortStr>,
    ) -> RouteResult {
        if exchange.is_empty() {
            // The default exchange: the queue each key names, if any. It
            // takes no bindings, arguments or alternate exchange, so the
            // hottest path skips the lookups.
            if extra.is_empty() {
                let queues = routing_key.queue_name().map(|q| out.push(q)).is_some();
                return RouteResult::Routed {
                    queues: queues as usize,
                };
            }
            let start = out.len();
            push_named_queues(routing_key, extra, out);
            if out.len() - start > 1 {
                dedup_tail(out, start);
            }
            return RouteResult::Routed {
                queues: out.len() - start,
            };
        }
        let Some(root) = self.exchanges.get(exchange) else {
            return RouteResult::ExchangeNotFound;
        };
        if root.def.internal && origin == Origin::Client {
            return RouteResult::Internal;
        }
        let start = out.len();
        let key = routing_key.key_str();
        let mut visit = Visit::new();
        visit.visit(root);
        let mut batches = 0usize;
        let mut must_dedup = !extra.is_empty();
        while let Some(x) = visit.next() {
            if x.def.name.is_empty() {
                let before = out.len();
                push_named_queues(routing_key, extra, out);
                batches += usize::from(out.len() > before);
                continue;
            }
            let before = out.len();
            let mut matched_any = false;
            let mut distinct = true;
            for k in std::iter::once(key).chain(extra_strs(extra)) {
                distinct &= x.router.route(k, headers, |dest| {
                    matched_any = true;
                    match dest {
                        Destination::Queue(q) => out.push(q.clone()),
                        Destination::Exchange(e) => {
                            if let Some(next) = self.exchanges.get(e.as_str()) {
                                visit.visit(next);
                            }
                        }
                    }
                });
            }
            if out.len() > before {
                batches += 1;
                must_dedup |= !distinct;
            }
            if !matched_any {
                if let Some(next) = x.alternate_exchange().and_then(|a| self.exchanges.get(a)) {
                    visit.visit(next);
                }
            }
        }
        if (must_dedup || batches > 1) && out.len() - start > 1 {
            dedup_tail(out, start);
        }
        RouteResult::Routed {
            queues: out.len() - start,
        }
    }
}

/// The extra keys that can match a binding (UTF-8 ones).
fn extra_strs(extra: &[LongStr]) -> impl Iterator<Item = &str> {
    extra.iter().filter_map(|k| std::str::from_utf8(k).ok())
}

/// The default exchange's routing: the queue each key names (keys too
/// long to be a queue name name none).
fn push_named_queues<K: RoutingKey + ?Sized>(
    routing_key: &K,
    extra: &[LongStr],
    out: &mut Vec<ShortStr>,
) {
    if let Some(q) = routing_key.queue_name() {
        out.push(q);
    }
    out.extend(extra.iter().filter_map(|k| ShortStr::from_bytes(k.clone())));
}

/// Sorts `out[start..]` and removes duplicates from it, in place.
fn dedup_tail(out: &mut Vec<ShortStr>, start: usize) {
    out[start..].sort_unstable();
    let mut w = start + 1;
    for r in start + 1..out.len() {
        if out[r] != out[w - 1] {
            out.swap(w, r);
            w += 1;
        }
    }
    out.truncate(w);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::topology::testkit::*;
    use crate::broker::topology::{exchange_not_found, publish_to_internal};

    // ---- routing ----

    #[test]
    fn route_unknown_exchange() {
        let t = Topology::new();
        let mut out = Vec::new();
        assert_eq!(
            t.route("nope", "k", None, &mut out),
            RouteResult::ExchangeNotFound
        );
        assert!(out.is_empty());
        assert_eq!(
            exchange_not_found("nope", "/").text,
            "NOT_FOUND - no exchange 'nope' in vhost '/'"
        );
        assert_eq!(
            publish_to_internal("i", "/").text,
            "ACCESS_REFUSED - cannot publish to internal exchange 'i' in vhost '/'"
        );
    }

    #[test]
    fn default_exchange_routes_by_name() {
        let t = Topology::new();
        assert_eq!(route(&t, "", "any-queue"), ["any-queue"]);
        let key: ShortStr = "q".into();
        let mut out = Vec::new();
        assert_eq!(
            t.route("", &key, None, &mut out),
            RouteResult::Routed { queues: 1 }
        );
        assert_eq!(out, ["q"]);
        // An empty key still names a (possibly missing) queue "".
        assert_eq!(route(&t, "", ""), [""]);
    }

    #[test]
    fn direct_routing() {
        let mut t = Topology::new();
        bind(&mut t, "amq.direct", q("q1"), "k");
        bind(&mut t, "amq.direct", q("q2"), "k");
        bind(&mut t, "amq.direct", q("q1"), "j");
        assert_eq!(route(&t, "amq.direct", "k"), ["q1", "q2"]);
        assert_eq!(route(&t, "amq.direct", "j"), ["q1"]);
        assert_eq!(route(&t, "amq.direct", "K"), Vec::<String>::new());
        assert_eq!(route(&t, "amq.direct", ""), Vec::<String>::new());
    }

    #[test]
    fn out_keeps_previous_contents() {
        let mut t = Topology::new();
        bind(&mut t, "amq.topic", q("q1"), "#");
        bind(&mut t, "amq.topic", q("q1"), "a");
        let mut out: Vec<ShortStr> = vec!["q1".into(), "zzz".into()];
        assert_eq!(
            t.route("amq.topic", "a", None, &mut out),
            RouteResult::Routed { queues: 1 }
        );
        assert_eq!(out, ["q1", "zzz", "q1"]);
    }

    #[test]
    fn fanout_routing() {
        let mut t = Topology::new();
        bind(&mut t, "amq.fanout", q("q1"), "");
        bind(&mut t, "amq.fanout", q("q2"), "ignored");
        bind(&mut t, "amq.fanout", q("q2"), "twice");
        assert_eq!(route(&t, "amq.fanout", "whatever"), ["q1", "q2"]);
        t.unbind("amq.fanout", &q("q2"), "twice", &none()).unwrap();
        assert_eq!(route(&t, "amq.fanout", ""), ["q1", "q2"]);
        t.unbind("amq.fanout", &q("q2"), "ignored", &none())
            .unwrap();
        assert_eq!(route(&t, "amq.fanout", ""), ["q1"]);
    }

    #[test]
    fn topic_routing_dedups() {
        let mut t = Topology::new();
        bind(&mut t, "amq.topic", q("q1"), "*.orange.*");
        bind(&mut t, "amq.topic", q("q2"), "*.*.rabbit");
        bind(&mut t, "amq.topic", q("q2"), "lazy.#");
        bind(&mut t, "amq.topic", q("q3"), "#.#");
        assert_eq!(
            route(&t, "amq.topic", "quick.orange.rabbit"),
            ["q1", "q2", "q3"]
        );
        assert_eq!(
            route(&t, "amq.topic", "lazy.orange.elephant"),
            ["q1", "q2", "q3"]
        );
        assert_eq!(route(&t, "amq.topic", "lazy.pink.rabbit"), ["q2", "q3"]);
        assert_eq!(route(&t, "amq.topic", "orange"), ["q3"]);
        assert_eq!(route(&t, "amq.topic", ""), ["q3"]);
    }

    #[test]
    fn headers_routing() {
        let mut t = Topology::new();
        let all = table(&[("x-match", s("all")), ("a", s("1")), ("b", s("2"))]);
        let any = table(&[("x-match", s("any")), ("a", s("1")), ("b", s("2"))]);
        t.bind("amq.headers", q("all"), &"".into(), &all).unwrap();
        t.bind("amq.headers", q("any"), &"".into(), &any).unwrap();
        // The same queue twice through two bindings gets one copy.
        t.bind("amq.headers", q("any"), &"other-key".into(), &any)
            .unwrap();
        let h = table(&[("a", s("1"))]);
        assert_eq!(route_h(&t, "amq.headers", "rk", Some(&h)), ["any"]);
        let h = table(&[("a", s("1")), ("b", s("2"))]);
        assert_eq!(route_h(&t, "amq.headers", "rk", Some(&h)), ["all", "any"]);
        assert_eq!(route_h(&t, "amq.headers", "rk", None), Vec::<String>::new());
        t.unbind("amq.headers", &q("any"), "", &any).unwrap();
        assert_eq!(route_h(&t, "amq.headers", "rk", Some(&h)), ["all", "any"]);
        t.unbind("amq.headers", &q("any"), "other-key", &any)
            .unwrap();
        assert_eq!(route_h(&t, "amq.headers", "rk", Some(&h)), ["all"]);
    }

    #[test]
    fn exchange_to_exchange() {
        let mut t = Topology::new();
        declare(&mut t, "e1", "direct").unwrap();
        declare(&mut t, "e2", "fanout").unwrap();
        bind(&mut t, "e1", x("e2"), "k");
        bind(&mut t, "e1", q("q1"), "k");
        bind(&mut t, "e2", q("q2"), "");
        bind(&mut t, "e2", q("q1"), "");
        assert_eq!(route(&t, "e1", "k"), ["q1", "q2"]);
        assert_eq!(route(&t, "e1", "other"), Vec::<String>::new());
        assert_eq!(route(&t, "e2", "x"), ["q1", "q2"]);
    }

    #[test]
    fn exchange_loops_terminate() {
        let mut t = Topology::new();
        declare(&mut t, "a", "fanout").unwrap();
        declare(&mut t, "b", "fanout").unwrap();
        declare(&mut t, "c", "fanout").unwrap();
        bind(&mut t, "a", x("b"), "");
        bind(&mut t, "b", x("c"), "");
        bind(&mut t, "c", x("a"), "");
        bind(&mut t, "a", x("a"), "");
        bind(&mut t, "b", q("qb"), "");
        bind(&mut t, "c", q("qc"), "");
        assert_eq!(route(&t, "a", ""), ["qb", "qc"]);
        assert_eq!(route(&t, "c", ""), ["qb", "qc"]);
    }

    #[test]
    fn long_exchange_chain_spills() {
        let mut t = Topology::new();
        let n = 50;
        for i in 0..n {
            declare(&mut t, &format!("x{i}"), "fanout").unwrap();
        }
        for i in 0..n {
            bind(
                &mut t,
                &format!("x{i}"),
                x(&format!("x{}", (i + 1) % n)),
                "",
            );
            bind(&mut t, &format!("x{i}"), q(&format!("q{}", i % 7)), "");
        }
        let got = route(&t, "x0", "");
        assert_eq!(got.len(), 7);
    }

    #[test]
    fn alternate_exchange_when_unroutable() {
        let mut t = Topology::new();
        declare(&mut t, "ae", "fanout").unwrap();
        declare_ae(&mut t, "main", "direct", "ae");
        bind(&mut t, "main", q("routed"), "k");
        bind(&mut t, "ae", q("unrouted"), "");
        assert_eq!(route(&t, "main", "k"), ["routed"]);
        assert_eq!(route(&t, "main", "other"), ["unrouted"]);
    }

    #[test]
    fn alternate_exchange_chains_and_loops() {
        let mut t = Topology::new();
        declare_ae(&mut t, "a", "direct", "b");
        declare_ae(&mut t, "b", "direct", "c");
        declare_ae(&mut t, "c", "direct", "a");
        bind(&mut t, "c", q("qc"), "c-key");
        assert_eq!(route(&t, "a", "c-key"), ["qc"]);
        // Nothing anywhere: the loop a -> b -> c -> a ends.
        assert_eq!(route(&t, "a", "none"), Vec::<String>::new());
        // An AE that does not exist is ignored.
        declare_ae(&mut t, "d", "direct", "missing");
        assert_eq!(route(&t, "d", "k"), Vec::<String>::new());
    }

    #[test]
    fn alternate_exchange_of_a_downstream_exchange() {
        // e1 routes to e2 (so e1's AE is not used); e2 matches nothing and
        // uses its own AE.
        let mut t = Topology::new();
        declare(&mut t, "ae1", "fanout").unwrap();
        declare(&mut t, "ae2", "fanout").unwrap();
        declare_ae(&mut t, "e1", "fanout", "ae1");
        declare_ae(&mut t, "e2", "direct", "ae2");
        bind(&mut t, "e1", x("e2"), "");
        bind(&mut t, "ae1", q("q-ae1"), "");
        bind(&mut t, "ae2", q("q-ae2"), "");
        assert_eq!(route(&t, "e1", "k"), ["q-ae2"]);
    }

    #[test]
    fn alternate_exchange_can_be_the_default_exchange() {
        let mut t = Topology::new();
        declare_ae(&mut t, "e", "direct", "");
        assert_eq!(route(&t, "e", "some-queue"), ["some-queue"]);
    }

    #[test]
    fn internal_flag_is_kept() {
        let mut t = Topology::new();
        t.declare_exchange(&"i".into(), "fanout", false, false, false, true, &none())
            .unwrap();
        assert!(t.exchange("i").unwrap().internal);
        bind(&mut t, "amq.fanout", x("i"), "");
        bind(&mut t, "i", q("q"), "");
        assert_eq!(
            t.route("i", "k", None, &mut Vec::new()),
            RouteResult::Internal,
            "publishing to it directly is refused"
        );
        // Routing into an internal exchange through a binding is allowed.
        assert_eq!(route(&t, "amq.fanout", ""), ["q"]);
    }

    #[test]
    fn dedup_tail_keeps_prefix() {
        let mut v: Vec<ShortStr> = ["p", "c", "a", "c", "b", "a"]
            .iter()
            .map(|s| (*s).into())
            .collect();
        dedup_tail(&mut v, 1);
        assert_eq!(v, ["p", "a", "b", "c"]);
    }
}
