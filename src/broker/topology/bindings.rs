//! The binding index of `Topology`: queue.bind / exchange.bind (with
//! `check_bind`, RabbitMQ's checks before the queue's existence), unbind,
//! dropping a deleted queue's bindings, the listings, and the reverse index
//! (destination -> sources) that makes those last two cheap. Bindings that
//! differ only in their arguments are kept apart here and collapsed before
//! they reach a direct/fanout/topic router.

use super::errors::{default_exchange_refused, exchange_not_found};
use super::registry::ExchangeEntry;
use super::{strip_cr_lf, stripped_dest, Topology};
use crate::broker::binding::{BindingDef, Destination};
use crate::broker::error::AmqpResult;
use crate::broker::exchange::headers::validate_binding;
use crate::protocol::types::{FieldTable, ShortStr};

/// Arguments in RabbitMQ's stored form: stably sorted by key.
fn sorted_args(args: &FieldTable) -> FieldTable {
    let mut sorted = args.clone();
    sorted.0.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    sorted
}

impl Topology {
    /// The checks of queue.bind / exchange.bind that come before the
    /// destination queue's existence in RabbitMQ's order: default exchange
    /// 403, then missing source (or destination exchange) 404. The caller
    /// checks the queue after this and before `bind`.
    pub fn check_bind(&self, source: &str, destination: &Destination) -> AmqpResult<()> {
        let source = strip_cr_lf(source);
        let destination = stripped_dest(destination);
        if source.is_empty() || matches!(&destination, Destination::Exchange(d) if d.is_empty()) {
            return Err(default_exchange_refused());
        }
        if !self.exchanges.contains_key(source.as_ref()) {
            return Err(exchange_not_found(&source, &self.vhost));
        }
        if let Destination::Exchange(d) = &destination {
            if !self.exchanges.contains_key(d.as_str()) {
                return Err(exchange_not_found(d, &self.vhost));
            }
        }
        Ok(())
    }

    /// queue.bind / exchange.bind. Returns whether the binding is new
    /// (binding twice is not an error). Errors: `check_bind`'s, then for a
    /// headers source an invalid `x-match` 406.
    pub fn bind(
        &mut self,
        source: &str,
        destination: Destination,
        routing_key: &ShortStr,
        arguments: &FieldTable,
    ) -> AmqpResult<bool> {
        self.check_bind(source, &destination)?;
        let source = strip_cr_lf(source);
        let destination = stripped_dest(&destination);
        let x = self
            .exchanges
            .get_mut(source.as_ref())
            .expect("checked by check_bind");
        if x.router.per_binding() {
            validate_binding(arguments)?;
        }
        let args = sorted_args(arguments);
        let per_key = x
            .bindings
            .entry(destination.clone())
            .or_default()
            .entry(routing_key.clone())
            .or_default();
        if per_key.contains(&args) {
            return Ok(false);
        }
        let first_for_pair = per_key.is_empty();
        per_key.push(args);
        let args = per_key.last().expect("just pushed");
        if first_for_pair || x.router.per_binding() {
            x.router.add(routing_key, &destination, args);
        }
        x.binding_count += 1;
        let source = x.def.name.clone();
        *self
            .reverse
            .entry(destination)
            .or_default()
            .entry(source)
            .or_insert(0) += 1;
        Ok(true)
    }

    /// queue.unbind / exchange.unbind. Returns the auto-delete exchanges
    /// deleted because this was their last binding as source (the source
    /// itself, and any cascade).
    ///
    /// As in RabbitMQ 3.12, unbinding from or to an exchange that does not
    /// exist, or a binding that does not exist, succeeds; only the default
    /// exchange is refused (403).
    pub fn unbind(
        &mut self,
        source: &str,
        destination: &Destination,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> AmqpResult<Vec<ShortStr>> {
        let source = strip_cr_lf(source);
        let destination = stripped_dest(destination);
        if source.is_empty() || matches!(&destination, Destination::Exchange(d) if d.is_empty()) {
            return Err(default_exchange_refused());
        }
        if let Destination::Exchange(d) = &destination {
            if !self.exchanges.contains_key(d.as_str()) {
                return Ok(Vec::new());
            }
        }
        let Some(x) = self.exchanges.get_mut(source.as_ref()) else {
            return Ok(Vec::new());
        };
        let args = sorted_args(arguments);
        let Some(by_key) = x.bindings.get_mut(&destination) else {
            return Ok(Vec::new());
        };
        let Some(key) = by_key.get_key_value(routing_key).map(|(k, _)| k.clone()) else {
            return Ok(Vec::new());
        };
        let list = by_key.get_mut(routing_key).expect("just found");
        let Some(i) = list.iter().position(|a| *a == args) else {
            return Ok(Vec::new());
        };
        let removed = list.remove(i);
        let last_for_pair = list.is_empty();
        if last_for_pair {
            by_key.remove(routing_key);
            if by_key.is_empty() {
                x.bindings.remove(&destination);
            }
        }
        if last_for_pair || x.router.per_binding() {
            x.router.remove(&key, &destination, &removed);
        }
        x.binding_count -= 1;
        let source = x.def.name.clone();
        self.forget_reverse(&destination, &source, 1);
        let mut deleted = Vec::new();
        self.auto_delete_cascade(vec![source], &mut deleted);
        Ok(deleted)
    }

    /// A queue was deleted: drops every binding to it. Returns the
    /// auto-delete exchanges deleted because they lost their last binding.
    pub fn remove_queue(&mut self, queue: &str) -> Vec<ShortStr> {
        let Some(queue) = ShortStr::try_from_string(queue.to_owned()) else {
            return Vec::new();
        };
        let affected = self.drop_bindings_to(&Destination::Queue(queue));
        let mut deleted = Vec::new();
        self.auto_delete_cascade(affected, &mut deleted);
        deleted
    }

    /// Every binding (not the default exchange's implicit ones), sorted by
    /// source, destination and routing key.
    pub fn bindings(&self) -> Vec<BindingDef> {
        let mut all: Vec<BindingDef> = self
            .exchanges
            .values()
            .flat_map(|x| Self::bindings_from(x, None))
            .collect();
        Self::sort_bindings(&mut all);
        all
    }

    /// Every binding whose destination is the queue `queue`, sorted.
    pub fn bindings_of_queue(&self, queue: &str) -> Vec<BindingDef> {
        let Some(q) = ShortStr::try_from_string(queue.to_owned()) else {
            return Vec::new();
        };
        let dest = Destination::Queue(q);
        let mut all: Vec<BindingDef> = self
            .reverse
            .get(&dest)
            .into_iter()
            .flat_map(|sources| sources.keys())
            .filter_map(|s| self.exchanges.get(s.as_str()))
            .flat_map(|x| Self::bindings_from(x, Some(&dest)))
            .collect();
        Self::sort_bindings(&mut all);
        all
    }

    /// Number of bindings with `exchange` as source (0 if it does not exist).
    pub fn binding_count(&self, exchange: &str) -> usize {
        self.exchanges.get(exchange).map_or(0, |x| x.binding_count)
    }

    fn bindings_from<'a>(
        x: &'a ExchangeEntry,
        only: Option<&'a Destination>,
    ) -> impl Iterator<Item = BindingDef> + 'a {
        x.bindings
            .iter()
            .filter(move |(d, _)| only.is_none_or(|o| o == *d))
            .flat_map(move |(dest, by_key)| {
                by_key.iter().flat_map(move |(key, args_list)| {
                    args_list.iter().map(move |args| BindingDef {
                        source: x.def.name.clone(),
                        destination: dest.clone(),
                        routing_key: key.clone(),
                        arguments: args.clone(),
                    })
                })
            })
    }

    fn sort_bindings(all: &mut [BindingDef]) {
        all.sort_by(|a, b| {
            (&a.source, &a.destination, &a.routing_key).cmp(&(
                &b.source,
                &b.destination,
                &b.routing_key,
            ))
        });
    }

    pub(super) fn forget_reverse(
        &mut self,
        destination: &Destination,
        source: &ShortStr,
        n: usize,
    ) {
        if let Some(sources) = self.reverse.get_mut(destination) {
            if let Some(count) = sources.get_mut(source.as_str()) {
                assert!(*count >= n, "reverse binding count underflow");
                *count -= n;
                if *count == 0 {
                    sources.remove(source.as_str());
                }
            }
            if sources.is_empty() {
                self.reverse.remove(destination);
            }
        }
    }

    /// Removes every binding to `dest`; returns the sources that lost one.
    pub(super) fn drop_bindings_to(&mut self, dest: &Destination) -> Vec<ShortStr> {
        let Some(sources) = self.reverse.remove(dest) else {
            return Vec::new();
        };
        let mut affected: Vec<ShortStr> = sources.into_keys().collect();
        affected.sort();
        for s in &affected {
            let Some(x) = self.exchanges.get_mut(s.as_str()) else {
                continue;
            };
            let Some(by_key) = x.bindings.remove(dest) else {
                continue;
            };
            for (key, args_list) in by_key {
                x.binding_count -= args_list.len();
                if x.router.per_binding() {
                    for args in &args_list {
                        x.router.remove(&key, dest, args);
                    }
                } else {
                    x.router.remove(&key, dest, &FieldTable::new());
                }
            }
        }
        affected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::topology::testkit::*;

    // ---- bind / unbind ----

    #[test]
    fn bind_errors() {
        let mut t = Topology::new();
        let refused = (
            403,
            "ACCESS_REFUSED - operation not permitted on the default exchange".to_string(),
        );
        assert_eq!(err(t.bind("", q("q"), &"q".into(), &none())), refused);
        assert_eq!(
            err(t.bind("amq.direct", x(""), &"k".into(), &none())),
            refused
        );
        assert_eq!(err(t.unbind("", &q("q"), "q", &none())), refused);
        assert_eq!(err(t.check_bind("", &q("q"))), refused);
        assert_eq!(
            err(t.bind("nope", q("q"), &"k".into(), &none())),
            (
                404,
                "NOT_FOUND - no exchange 'nope' in vhost '/'".to_string()
            )
        );
        assert_eq!(
            err(t.bind("amq.direct", x("nope"), &"k".into(), &none())),
            (
                404,
                "NOT_FOUND - no exchange 'nope' in vhost '/'".to_string()
            )
        );
        // Both missing: the source is reported.
        assert_eq!(
            err(t.bind("src", x("dst"), &"k".into(), &none())).1,
            "NOT_FOUND - no exchange 'src' in vhost '/'"
        );
        assert!(t.check_bind("amq.direct", &q("any-queue")).is_ok());
        assert!(t.bindings().is_empty());
    }

    #[test]
    fn headers_bind_validates_x_match() {
        let mut t = Topology::new();
        let bad = table(&[("x-match", s("most"))]);
        assert_eq!(
            err(t.bind("amq.headers", q("q"), &"".into(), &bad)),
            (
                406,
                "PRECONDITION_FAILED - Invalid x-match field value <<\"most\">>; expected all, any, all-with-x, or any-with-x".to_string()
            )
        );
        // Other exchange types do not look at x-match.
        assert!(t.bind("amq.direct", q("q"), &"".into(), &bad).unwrap());
    }

    #[test]
    fn bind_is_idempotent_and_args_are_identity() {
        let mut t = Topology::new();
        let a = table(&[("a", FieldValue::I32(1)), ("b", s("x"))]);
        let a_reordered = table(&[("b", s("x")), ("a", FieldValue::I32(1))]);
        let other = table(&[("a", FieldValue::I32(2))]);
        assert!(t.bind("amq.direct", q("q"), &"k".into(), &a).unwrap());
        assert!(!t
            .bind("amq.direct", q("q"), &"k".into(), &a_reordered)
            .unwrap());
        assert!(t.bind("amq.direct", q("q"), &"k".into(), &other).unwrap());
        assert_eq!(t.binding_count("amq.direct"), 2);
        assert_eq!(route(&t, "amq.direct", "k"), ["q"]);
        // Stored sorted by key.
        let listed = t.bindings_of_queue("q");
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().any(|b| b.arguments == a));
        // Removing one of the two keeps the route.
        t.unbind("amq.direct", &q("q"), "k", &a_reordered).unwrap();
        assert_eq!(route(&t, "amq.direct", "k"), ["q"]);
        t.unbind("amq.direct", &q("q"), "k", &a).unwrap();
        assert_eq!(route(&t, "amq.direct", "k"), ["q"]);
        t.unbind("amq.direct", &q("q"), "k", &other).unwrap();
        assert_eq!(route(&t, "amq.direct", "k"), Vec::<String>::new());
        assert_eq!(t.binding_count("amq.direct"), 0);
        assert!(t.reverse.is_empty());
    }

    #[test]
    fn unbind_missing_things_is_ok() {
        let mut t = Topology::new();
        assert!(t.unbind("nope", &q("q"), "k", &none()).unwrap().is_empty());
        assert!(t
            .unbind("amq.direct", &x("nope"), "k", &none())
            .unwrap()
            .is_empty());
        assert!(t
            .unbind("amq.direct", &q("q"), "k", &none())
            .unwrap()
            .is_empty());
        bind(&mut t, "amq.direct", q("q"), "k");
        assert!(t
            .unbind("amq.direct", &q("q"), "other", &none())
            .unwrap()
            .is_empty());
        assert!(t
            .unbind("amq.direct", &q("q"), "k", &table(&[("a", s("1"))]))
            .unwrap()
            .is_empty());
        assert_eq!(route(&t, "amq.direct", "k"), ["q"]);
    }

    #[test]
    fn auto_delete_on_last_source_unbind() {
        let mut t = Topology::new();
        declare_ad(&mut t, "ad", "direct");
        bind(&mut t, "ad", q("q1"), "a");
        bind(&mut t, "ad", q("q2"), "b");
        assert!(t.unbind("ad", &q("q1"), "a", &none()).unwrap().is_empty());
        assert!(t.exchange("ad").is_some());
        assert_eq!(t.unbind("ad", &q("q2"), "b", &none()).unwrap(), ["ad"]);
        assert!(t.exchange("ad").is_none());
        // An auto-delete exchange that never had bindings stays.
        declare_ad(&mut t, "fresh", "direct");
        assert!(t.exchange("fresh").is_some());
    }

    #[test]
    fn auto_delete_ignores_bindings_as_destination() {
        let mut t = Topology::new();
        declare_ad(&mut t, "ad", "fanout");
        bind(&mut t, "amq.fanout", x("ad"), "");
        bind(&mut t, "ad", q("q"), "");
        // Removing the binding *to* ad does not delete it.
        assert!(t
            .unbind("amq.fanout", &x("ad"), "", &none())
            .unwrap()
            .is_empty());
        assert!(t.exchange("ad").is_some());
        assert_eq!(t.remove_queue("q"), ["ad"]);
        assert!(t.exchange("ad").is_none());
    }

    #[test]
    fn remove_queue_drops_its_bindings() {
        let mut t = Topology::new();
        declare_ad(&mut t, "ad", "topic");
        bind(&mut t, "amq.direct", q("q"), "k1");
        bind(&mut t, "amq.direct", q("q"), "k2");
        bind(&mut t, "amq.direct", q("other"), "k1");
        bind(&mut t, "ad", q("q"), "#");
        assert_eq!(t.bindings_of_queue("q").len(), 3);
        assert_eq!(t.remove_queue("q"), ["ad"]);
        assert!(t.bindings_of_queue("q").is_empty());
        assert_eq!(route(&t, "amq.direct", "k1"), ["other"]);
        assert_eq!(route(&t, "amq.direct", "k2"), Vec::<String>::new());
        assert_eq!(t.binding_count("amq.direct"), 1);
        assert!(t.remove_queue("q").is_empty());
        assert!(t.remove_queue("never-bound").is_empty());
    }

    #[test]
    fn bindings_listing_is_sorted() {
        let mut t = Topology::new();
        bind(&mut t, "amq.topic", q("b"), "x.#");
        bind(&mut t, "amq.direct", q("b"), "k");
        bind(&mut t, "amq.direct", q("a"), "k");
        let listed: Vec<(String, String, String)> = t
            .bindings()
            .into_iter()
            .map(|b| {
                (
                    b.source.to_string(),
                    b.destination.name().to_string(),
                    b.routing_key.to_string(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("amq.direct".into(), "a".into(), "k".into()),
                ("amq.direct".into(), "b".into(), "k".into()),
                ("amq.topic".into(), "b".into(), "x.#".into()),
            ]
        );
    }

    mod model {
        use super::*;
        use crate::broker::exchange::topic::reference_match;
        use proptest::prelude::*;
        use std::collections::BTreeSet;

        const SOURCES: [&str; 3] = ["amq.direct", "amq.topic", "amq.fanout"];
        const KEYS: [&str; 5] = ["a", "b", "a.b", "#", "*.b"];

        #[derive(Clone, Debug)]
        enum Op {
            Bind(usize, usize, usize, bool),
            Unbind(usize, usize, usize, bool),
            RemoveQueue(usize),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0..3usize, 0..3usize, 0..5usize, any::<bool>())
                    .prop_map(|(s, q, k, a)| Op::Bind(s, q, k, a)),
                3 => (0..3usize, 0..3usize, 0..5usize, any::<bool>())
                    .prop_map(|(s, q, k, a)| Op::Unbind(s, q, k, a)),
                1 => (0..3usize).prop_map(Op::RemoveQueue),
            ]
        }

        fn args(flag: bool) -> FieldTable {
            if flag {
                table(&[("x-extra", FieldValue::I32(1))])
            } else {
                FieldTable::new()
            }
        }

        proptest! {
            /// Random bind/unbind/queue deletions against a plain set of
            /// bindings: the listing and every route agree with the model.
            #[test]
            fn topology_matches_a_set_of_bindings(ops in prop::collection::vec(op(), 1..40)) {
                let mut t = Topology::new();
                let mut model: BTreeSet<(usize, usize, usize, bool)> = BTreeSet::new();
                for op in ops {
                    match op {
                        Op::Bind(s, qi, k, a) => {
                            let new = t
                                .bind(SOURCES[s], q(&format!("q{qi}")), &KEYS[k].into(), &args(a))
                                .unwrap();
                            prop_assert_eq!(new, model.insert((s, qi, k, a)));
                        }
                        Op::Unbind(s, qi, k, a) => {
                            let gone = t
                                .unbind(SOURCES[s], &q(&format!("q{qi}")), KEYS[k], &args(a))
                                .unwrap();
                            prop_assert!(gone.is_empty());
                            model.remove(&(s, qi, k, a));
                        }
                        Op::RemoveQueue(qi) => {
                            let gone = t.remove_queue(&format!("q{qi}"));
                            prop_assert!(gone.is_empty());
                            model.retain(|b| b.1 != qi);
                        }
                    }
                    prop_assert_eq!(t.bindings().len(), model.len());
                    for (s, src) in SOURCES.iter().enumerate() {
                        let count = model.iter().filter(|b| b.0 == s).count();
                        prop_assert_eq!(t.binding_count(src), count);
                        for rk in ["a", "b", "a.b", "c.b", ""] {
                            let mut expected: Vec<String> = model
                                .iter()
                                .filter(|b| b.0 == s)
                                .filter(|b| match s {
                                    0 => KEYS[b.2] == rk,
                                    1 => reference_match(KEYS[b.2], rk),
                                    _ => true,
                                })
                                .map(|b| format!("q{}", b.1))
                                .collect();
                            expected.sort();
                            expected.dedup();
                            prop_assert_eq!(route(&t, src, rk), expected);
                        }
                    }
                }
                for b in model {
                    t.unbind(SOURCES[b.0], &q(&format!("q{}", b.1)), KEYS[b.2], &args(b.3)).unwrap();
                }
                prop_assert!(t.bindings().is_empty());
                prop_assert!(t.reverse.is_empty());
            }
        }
    }
}
