//! Direct-exchange routing: a hash map from routing key to the distinct
//! destinations bound with exactly that key. A message goes to the
//! destinations of its routing key, each once.

use crate::broker::binding::Destination;
use crate::protocol::types::ShortStr;
use std::collections::HashMap;

/// routing key -> distinct destinations bound with exactly that key.
#[derive(Debug, Default)]
pub(crate) struct DirectRouter {
    map: HashMap<ShortStr, Vec<Destination>>,
}

impl DirectRouter {
    /// Adds a (key, destination) pair; the caller adds a pair at most once
    /// before it removes it.
    pub(crate) fn add(&mut self, key: &ShortStr, dest: &Destination) {
        let dests = self.map.entry(key.clone()).or_default();
        debug_assert!(!dests.contains(dest), "direct pair added twice");
        dests.push(dest.clone());
    }

    /// Removes a (key, destination) pair; absent pairs are ignored.
    pub(crate) fn remove(&mut self, key: &ShortStr, dest: &Destination) {
        if let Some(dests) = self.map.get_mut(key.as_str()) {
            if let Some(i) = dests.iter().position(|d| d == dest) {
                dests.swap_remove(i);
            }
            if dests.is_empty() {
                self.map.remove(key.as_str());
            }
        }
    }

    /// Calls `emit` for each destination bound with `routing_key`; they are
    /// distinct.
    #[inline]
    pub(crate) fn route<F: FnMut(&Destination)>(&self, routing_key: &str, emit: F) {
        if let Some(dests) = self.map.get(routing_key) {
            dests.iter().for_each(emit);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::broker::binding::Destination;
    use crate::broker::exchange::{ExchangeKind, Router};
    use crate::protocol::types::FieldTable;

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
            Router::Direct(direct) => assert!(direct.map.is_empty()),
            _ => unreachable!(),
        }
    }
}
