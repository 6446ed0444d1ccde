//! A shard's copy of the auth records: the records (`AuthDefs`), their
//! permissions compiled once per change, and a generation that moves on
//! every change so that decisions cached per channel (`auth::publish`)
//! are dropped when anything changed. Authentication and every permission
//! decision are answered here.

use super::defs::{AuthChange, AuthDefs, UserDef};
use super::password;
use super::permissions::{
    refused, topic_refused, Access, CompiledPermission, CompiledTopic, Resource,
};
use crate::broker::error::AmqpError;
use std::collections::HashMap;
use std::sync::Arc;

/// Why a login was refused (for the log; the client sees RabbitMQ's one
/// text whatever the reason).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginRefusal {
    NoSuchUser,
    InvalidCredentials,
}

impl LoginRefusal {
    /// RabbitMQ's log wording.
    pub fn describe(&self, user: &str) -> String {
        match self {
            LoginRefusal::NoSuchUser => format!("user '{user}' - no such user"),
            LoginRefusal::InvalidCredentials => format!("user '{user}' - invalid credentials"),
        }
    }
}

#[derive(Default)]
pub struct AuthStore {
    defs: AuthDefs,
    /// user → vhost → compiled permissions.
    perms: HashMap<String, HashMap<String, Arc<CompiledPermission>>>,
    /// (user, vhost) → exchange → compiled topic permissions.
    topics: HashMap<(String, String), HashMap<String, Arc<CompiledTopic>>>,
    generation: u64,
    /// Whether the records are in the durable definitions (false after a
    /// first start until they are written).
    persisted: bool,
}

impl AuthStore {
    pub fn new(defs: AuthDefs) -> AuthStore {
        let mut s = AuthStore::default();
        let _ = s.reset(defs, true);
        s
    }

    /// Replaces every record (recovery; `persisted`: they were stored);
    /// returns what could not be applied.
    pub fn reset(&mut self, defs: AuthDefs, persisted: bool) -> Vec<String> {
        let mut errors = Vec::new();
        self.defs = AuthDefs::default();
        self.perms.clear();
        self.topics.clear();
        let AuthDefs {
            users,
            permissions,
            topic_permissions,
        } = defs;
        let changes = (users.into_values().map(AuthChange::User))
            .chain(permissions.into_values().map(AuthChange::Permission))
            .chain(
                topic_permissions
                    .into_values()
                    .map(AuthChange::TopicPermission),
            );
        for c in changes {
            if let Err(e) = self.apply(&c) {
                errors.push(e);
            }
        }
        self.persisted = persisted;
        errors
    }

    pub fn persisted(&self) -> bool {
        self.persisted
    }

    /// The records are now in the durable definitions (a first start
    /// stored its default user).
    pub fn mark_persisted(&mut self) {
        self.persisted = true;
    }

    pub fn defs(&self) -> &AuthDefs {
        &self.defs
    }

    /// Moves on every change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn user(&self, name: &str) -> Option<&UserDef> {
        self.defs.user(name)
    }

    /// Validates a change as the leader does before replicating it: the
    /// error is the text rabbitmqctl prints.
    pub fn validate(&self, change: &AuthChange) -> Result<(), String> {
        match change {
            AuthChange::User(u) => {
                if !password::supported(&u.hashing_algorithm) {
                    return Err(format!(
                        "unsupported password hashing algorithm '{}'",
                        u.hashing_algorithm
                    ));
                }
                if !password::well_formed(&u.hashing_algorithm, &u.password_hash) {
                    return Err(format!("invalid password hash for user \"{}\"", u.name));
                }
                Ok(())
            }
            AuthChange::Permission(p) => CompiledPermission::compile(p).map(|_| ()),
            AuthChange::TopicPermission(t) => CompiledTopic::compile(t).map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Applies a replicated change. A pattern that does not compile (the
    /// leader validated it, so only from a damaged file) denies everything;
    /// the error says so for the caller's log.
    pub fn apply(&mut self, change: &AuthChange) -> Result<(), String> {
        self.generation += 1;
        // Every change is journaled with the whole set when it is the first.
        self.persisted = true;
        let mut result = Ok(());
        self.defs.apply(change);
        match change {
            AuthChange::User(_) => {}
            AuthChange::UserGone(name) => {
                self.perms.remove(name);
                self.topics.retain(|(u, _), _| u != name);
            }
            AuthChange::Permission(p) => match CompiledPermission::compile(p) {
                Ok(c) => {
                    self.perms
                        .entry(p.user.clone())
                        .or_default()
                        .insert(p.vhost.clone(), Arc::new(c));
                }
                Err(e) => {
                    result = Err(format!("permissions of '{}' not applied: {e}", p.user));
                    self.defs.apply(&AuthChange::PermissionGone {
                        user: p.user.clone(),
                        vhost: p.vhost.clone(),
                    });
                    if let Some(m) = self.perms.get_mut(&p.user) {
                        m.remove(&p.vhost);
                    }
                }
            },
            AuthChange::PermissionGone { user, vhost } => {
                if let Some(m) = self.perms.get_mut(user) {
                    m.remove(vhost);
                }
            }
            AuthChange::TopicPermission(t) => {
                let key = (t.user.clone(), t.vhost.clone());
                match CompiledTopic::compile(t) {
                    Ok(c) => {
                        self.topics
                            .entry(key)
                            .or_default()
                            .insert(t.exchange.clone(), Arc::new(c));
                    }
                    Err(e) => {
                        // Deny every routing key rather than allow them all.
                        result = Err(format!(
                            "topic permissions of '{}' not applied: {e}",
                            t.user
                        ));
                        let deny = CompiledTopic::compile(&super::defs::TopicPermissionDef {
                            write: String::new(),
                            read: String::new(),
                            ..t.clone()
                        })
                        .expect("the empty pattern compiles");
                        self.topics
                            .entry(key)
                            .or_default()
                            .insert(t.exchange.clone(), Arc::new(deny));
                    }
                }
            }
            AuthChange::TopicPermissionGone {
                user,
                vhost,
                exchange,
            } => {
                if let Some(m) = self.topics.get_mut(&(user.clone(), vhost.clone())) {
                    m.remove(exchange);
                }
            }
        }
        result
    }

    /// Checks a password login.
    pub fn authenticate(&self, user: &str, pass: &str) -> Result<&UserDef, LoginRefusal> {
        let u = self.defs.user(user).ok_or(LoginRefusal::NoSuchUser)?;
        if password::verify(&u.hashing_algorithm, &u.password_hash, pass) {
            Ok(u)
        } else {
            Err(LoginRefusal::InvalidCredentials)
        }
    }

    /// Whether the user has any permissions in the vhost (connection.open).
    pub fn vhost_access(&self, user: &str, vhost: &str) -> bool {
        self.perms.get(user).is_some_and(|m| m.contains_key(vhost))
    }

    fn compiled(&self, user: &str, vhost: &str) -> Option<&CompiledPermission> {
        self.perms.get(user)?.get(vhost).map(|p| &**p)
    }

    /// `access` on the resource, or RabbitMQ's 403.
    pub fn check(
        &self,
        user: &str,
        vhost: &str,
        access: Access,
        resource: Resource,
        name: &str,
    ) -> Result<(), AmqpError> {
        match self.compiled(user, vhost) {
            Some(p) if p.allows(access, resource, name) => Ok(()),
            _ => Err(refused(resource, name, vhost, user)),
        }
    }

    /// The topic permissions of the user on an exchange, if any.
    pub fn topic(&self, user: &str, vhost: &str, exchange: &str) -> Option<Arc<CompiledTopic>> {
        if self.topics.is_empty() {
            return None;
        }
        self.topics
            .get(&(user.to_string(), vhost.to_string()))?
            .get(exchange)
            .cloned()
    }

    /// The topic check for a routing key on a topic exchange (none
    /// configured: allowed, as RabbitMQ).
    pub fn check_topic(
        &self,
        user: &str,
        vhost: &str,
        access: Access,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), AmqpError> {
        match self.topic(user, vhost, exchange) {
            Some(t) if !t.allows(access, routing_key) => {
                Err(topic_refused(routing_key, exchange, vhost, user))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::auth::defs::{PermissionDef, TopicPermissionDef};

    fn store() -> AuthStore {
        let mut s = AuthStore::new(AuthDefs::initial("guest", &password::hash("guest")));
        let _ = s.apply(&AuthChange::User(UserDef {
            name: "u".into(),
            password_hash: password::hash("pw"),
            hashing_algorithm: password::SHA256.into(),
            tags: vec![],
        }));
        s
    }

    #[test]
    fn logins_and_vhost_access() {
        let s = store();
        assert!(s.authenticate("guest", "guest").is_ok());
        assert_eq!(
            s.authenticate("guest", "x").unwrap_err(),
            LoginRefusal::InvalidCredentials
        );
        assert_eq!(
            s.authenticate("nobody", "x").unwrap_err(),
            LoginRefusal::NoSuchUser
        );
        assert!(s.authenticate("u", "pw").is_ok());
        assert!(s.vhost_access("guest", "/"));
        assert!(!s.vhost_access("u", "/"));
    }

    #[test]
    fn changes_move_the_generation_and_apply() {
        let mut s = store();
        let g = s.generation();
        assert!(s
            .check("u", "/", Access::Read, Resource::Queue, "q")
            .is_err());
        let _ = s.apply(&AuthChange::Permission(PermissionDef {
            user: "u".into(),
            vhost: "/".into(),
            configure: "".into(),
            write: "".into(),
            read: "^q$".into(),
        }));
        assert!(s.generation() > g);
        assert!(s
            .check("u", "/", Access::Read, Resource::Queue, "q")
            .is_ok());
        assert!(s
            .check("u", "/", Access::Configure, Resource::Queue, "q")
            .is_err());
        assert!(s.check_topic("u", "/", Access::Write, "t", "k").is_ok());
        let _ = s.apply(&AuthChange::TopicPermission(TopicPermissionDef {
            user: "u".into(),
            vhost: "/".into(),
            exchange: "t".into(),
            write: "^a".into(),
            read: ".*".into(),
        }));
        assert!(s.check_topic("u", "/", Access::Write, "t", "k").is_err());
        assert!(s.check_topic("u", "/", Access::Write, "t", "ak").is_ok());
        let _ = s.apply(&AuthChange::UserGone("u".into()));
        assert!(s.topic("u", "/", "t").is_none());
        assert!(!s.vhost_access("u", "/"));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        let s = store();
        let bad = AuthChange::Permission(PermissionDef {
            user: "u".into(),
            vhost: "/".into(),
            configure: "(".into(),
            write: "".into(),
            read: "".into(),
        });
        assert!(s.validate(&bad).is_err());
    }
}
