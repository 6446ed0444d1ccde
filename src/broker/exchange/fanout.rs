//! Fanout-exchange routing: the set of destinations bound to the exchange,
//! each counted once per distinct routing key it is bound with (the key is
//! otherwise ignored). A message goes to every destination, each once.

use crate::broker::binding::Destination;
use std::collections::HashMap;

/// destination -> number of distinct routing keys it is bound with.
#[derive(Debug, Default)]
pub(crate) struct FanoutRouter {
    map: HashMap<Destination, u32>,
}

impl FanoutRouter {
    /// Counts one more distinct routing key binding `dest`.
    pub(crate) fn add(&mut self, dest: &Destination) {
        *self.map.entry(dest.clone()).or_insert(0) += 1;
    }

    /// Counts one routing key fewer; `dest` goes at zero.
    pub(crate) fn remove(&mut self, dest: &Destination) {
        if let Some(n) = self.map.get_mut(dest) {
            *n -= 1;
            if *n == 0 {
                self.map.remove(dest);
            }
        }
    }

    /// Calls `emit` for every bound destination; they are distinct.
    #[inline]
    pub(crate) fn route<F: FnMut(&Destination)>(&self, emit: F) {
        self.map.keys().for_each(emit);
    }
}

#[cfg(test)]
mod tests {
    use crate::broker::binding::Destination;
    use crate::broker::exchange::{ExchangeKind, Router};
    use crate::protocol::types::FieldTable;

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
