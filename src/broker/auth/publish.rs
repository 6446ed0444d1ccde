//! The publish path's permission check, cached per channel: the write
//! decision per exchange (and the exchange's topic permissions, if the
//! user has any there) is computed once and reused while the auth store's
//! generation stays the same, so a publish costs a generation compare and
//! a name compare; any change to users or permissions drops the cache.

use super::permissions::{topic_refused, Access, CompiledTopic, Resource};
use super::store::AuthStore;
use crate::broker::error::AmqpError;
use crate::protocol::types::ShortStr;
use std::sync::Arc;

/// Exchanges remembered per channel (the most recent ones).
const CACHED_EXCHANGES: usize = 8;

/// One channel's cached publish decisions.
#[derive(Default, Debug)]
pub struct PublishGrants {
    generation: u64,
    /// Exchanges the user may write to, with their topic permissions.
    allowed: Vec<(ShortStr, Option<Arc<CompiledTopic>>)>,
}

/// Who publishes: the connection's user and vhost.
#[derive(Clone, Copy)]
pub struct Publisher<'a> {
    pub user: &'a str,
    pub vhost: &'a str,
}

impl PublishGrants {
    /// Write access to `exchange` and, when the user has topic permissions
    /// there and `is_topic` says the exchange is a topic exchange, to the
    /// routing key. Errors are RabbitMQ's 403s.
    pub fn check(
        &mut self,
        store: &AuthStore,
        who: Publisher<'_>,
        exchange: &ShortStr,
        routing_key: &str,
        is_topic: impl FnOnce() -> bool,
    ) -> Result<(), AmqpError> {
        if self.generation != store.generation() {
            self.allowed.clear();
            self.generation = store.generation();
        }
        let i = match self.allowed.iter().position(|(x, _)| x == exchange) {
            Some(i) => i,
            None => {
                store.check(
                    who.user,
                    who.vhost,
                    Access::Write,
                    Resource::Exchange,
                    exchange.as_str(),
                )?;
                if self.allowed.len() == CACHED_EXCHANGES {
                    self.allowed.remove(0);
                }
                let topic = store.topic(who.user, who.vhost, exchange.as_str());
                self.allowed.push((exchange.clone(), topic));
                self.allowed.len() - 1
            }
        };
        match &self.allowed[i].1 {
            None => Ok(()),
            Some(t) if !is_topic() || t.allows(Access::Write, routing_key) => Ok(()),
            Some(_) => Err(topic_refused(
                routing_key,
                exchange.as_str(),
                who.vhost,
                who.user,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::auth::defs::{AuthChange, AuthDefs, PermissionDef, TopicPermissionDef};

    #[test]
    fn decisions_are_cached_until_the_store_changes() {
        let mut store = AuthStore::new(AuthDefs::initial("u", ""));
        let who = Publisher {
            user: "u",
            vhost: "/",
        };
        let mut g = PublishGrants::default();
        let x = ShortStr::from("x");
        assert!(g.check(&store, who, &x, "k", || false).is_ok());
        let _ = store.apply(&AuthChange::Permission(PermissionDef {
            user: "u".into(),
            vhost: "/".into(),
            configure: ".*".into(),
            write: "^y$".into(),
            read: ".*".into(),
        }));
        let e = g.check(&store, who, &x, "k", || false).unwrap_err();
        assert_eq!(e.code, 403);
        assert!(g.check(&store, who, &"y".into(), "k", || true).is_ok());
        let _ = store.apply(&AuthChange::TopicPermission(TopicPermissionDef {
            user: "u".into(),
            vhost: "/".into(),
            exchange: "y".into(),
            write: "^a".into(),
            read: "".into(),
        }));
        let y = ShortStr::from("y");
        assert!(g.check(&store, who, &y, "b", || true).is_err());
        assert!(g.check(&store, who, &y, "a", || true).is_ok());
        // Topic permissions apply to topic exchanges only.
        assert!(g.check(&store, who, &y, "b", || false).is_ok());
    }
}
