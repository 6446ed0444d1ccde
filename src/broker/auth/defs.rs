//! The records of the internal auth backend, as stored in the durable
//! definitions and replicated to every shard: users (name, password hash,
//! tags), permissions per (user, vhost) and topic permissions per (user,
//! vhost, exchange); the commands that change them (`AuthRequest`, from
//! the admin endpoint to the leader), the changes themselves (each sets the state of what it
//! names, so replaying one twice changes nothing) and `AuthDefs`, the
//! records indexed.

use std::collections::BTreeMap;

/// A user as RabbitMQ's definitions hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserDef {
    pub name: String,
    /// base64(salt ++ hash), see `auth::password`; empty: no password login.
    pub password_hash: String,
    pub hashing_algorithm: String,
    pub tags: Vec<String>,
}

/// configure / write / read regular expressions of a user in a vhost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionDef {
    pub user: String,
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
}

/// Topic permissions of a user in a vhost on one (topic) exchange: regexes
/// for routing keys published (write) and bound (read). `{username}` and
/// `{vhost}` in them stand for the user's name and the vhost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicPermissionDef {
    pub user: String,
    pub vhost: String,
    pub exchange: String,
    pub write: String,
    pub read: String,
}

/// One change to the auth records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthChange {
    /// The user exists with this record.
    User(UserDef),
    /// The user does not exist, nor any of its permissions.
    UserGone(String),
    Permission(PermissionDef),
    /// (user, vhost) has no permissions.
    PermissionGone {
        user: String,
        vhost: String,
    },
    TopicPermission(TopicPermissionDef),
    /// (user, vhost, exchange) has no topic permissions.
    TopicPermissionGone {
        user: String,
        vhost: String,
        exchange: String,
    },
}

/// A user or permission command, as the admin endpoint sends it to the
/// leader. Passwords arrive hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthRequest {
    AddUser(UserDef),
    /// Creates the user or replaces its record (the management API's `PUT
    /// /api/users/{name}` and a definitions import, as RabbitMQ's
    /// `put_user`).
    PutUser(UserDef),
    DeleteUser(String),
    ChangePassword {
        name: String,
        password_hash: String,
    },
    SetTags {
        name: String,
        tags: Vec<String>,
    },
    SetPermissions(PermissionDef),
    ClearPermissions {
        user: String,
        vhost: String,
    },
    SetTopicPermissions(TopicPermissionDef),
    /// `exchange` None: every exchange.
    ClearTopicPermissions {
        user: String,
        vhost: String,
        exchange: Option<String>,
    },
}

/// The auth records, indexed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthDefs {
    pub users: BTreeMap<String, UserDef>,
    pub permissions: BTreeMap<(String, String), PermissionDef>,
    pub topic_permissions: BTreeMap<(String, String, String), TopicPermissionDef>,
}

impl AuthDefs {
    /// What a first start holds: one user (tag administrator) with every
    /// permission on vhost `/`, as RabbitMQ's default user.
    pub fn initial(name: &str, password_hash: &str) -> AuthDefs {
        let mut d = AuthDefs::default();
        d.apply(&AuthChange::User(UserDef {
            name: name.to_string(),
            password_hash: password_hash.to_string(),
            hashing_algorithm: super::password::SHA256.to_string(),
            tags: vec!["administrator".to_string()],
        }));
        d.apply(&AuthChange::Permission(PermissionDef {
            user: name.to_string(),
            vhost: "/".to_string(),
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        }));
        d
    }

    pub fn from_lists(
        users: Vec<UserDef>,
        permissions: Vec<PermissionDef>,
        topic_permissions: Vec<TopicPermissionDef>,
    ) -> AuthDefs {
        let mut d = AuthDefs::default();
        for u in users {
            d.apply(&AuthChange::User(u));
        }
        for p in permissions {
            d.apply(&AuthChange::Permission(p));
        }
        for t in topic_permissions {
            d.apply(&AuthChange::TopicPermission(t));
        }
        d
    }

    pub fn user(&self, name: &str) -> Option<&UserDef> {
        self.users.get(name)
    }

    pub fn permission(&self, user: &str, vhost: &str) -> Option<&PermissionDef> {
        self.permissions.get(&(user.to_string(), vhost.to_string()))
    }

    pub fn topic_permission(
        &self,
        user: &str,
        vhost: &str,
        exchange: &str,
    ) -> Option<&TopicPermissionDef> {
        self.topic_permissions
            .get(&(user.to_string(), vhost.to_string(), exchange.to_string()))
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.users.len() + self.permissions.len() + self.topic_permissions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The changes that take away every permission and topic permission
    /// on `vhost` (the vhost is being deleted).
    pub fn of_vhost(&self, vhost: &str) -> Vec<AuthChange> {
        let perms = self
            .permissions
            .values()
            .filter(|p| p.vhost == vhost)
            .map(|p| AuthChange::PermissionGone {
                user: p.user.clone(),
                vhost: p.vhost.clone(),
            });
        let topics = self
            .topic_permissions
            .values()
            .filter(|t| t.vhost == vhost)
            .map(|t| AuthChange::TopicPermissionGone {
                user: t.user.clone(),
                vhost: t.vhost.clone(),
                exchange: t.exchange.clone(),
            });
        perms.chain(topics).collect()
    }

    /// Whether `change` would change nothing.
    pub fn holds(&self, change: &AuthChange) -> bool {
        match change {
            AuthChange::User(u) => self.users.get(&u.name) == Some(u),
            AuthChange::UserGone(n) => !self.users.contains_key(n),
            AuthChange::Permission(p) => self.permission(&p.user, &p.vhost) == Some(p),
            AuthChange::PermissionGone { user, vhost } => self.permission(user, vhost).is_none(),
            AuthChange::TopicPermission(t) => {
                self.topic_permission(&t.user, &t.vhost, &t.exchange) == Some(t)
            }
            AuthChange::TopicPermissionGone {
                user,
                vhost,
                exchange,
            } => self.topic_permission(user, vhost, exchange).is_none(),
        }
    }

    pub fn apply(&mut self, change: &AuthChange) {
        match change {
            AuthChange::User(u) => {
                self.users.insert(u.name.clone(), u.clone());
            }
            AuthChange::UserGone(name) => {
                self.users.remove(name);
                self.permissions.retain(|(u, _), _| u != name);
                self.topic_permissions.retain(|(u, _, _), _| u != name);
            }
            AuthChange::Permission(p) => {
                self.permissions
                    .insert((p.user.clone(), p.vhost.clone()), p.clone());
            }
            AuthChange::PermissionGone { user, vhost } => {
                self.permissions.remove(&(user.clone(), vhost.clone()));
            }
            AuthChange::TopicPermission(t) => {
                self.topic_permissions.insert(
                    (t.user.clone(), t.vhost.clone(), t.exchange.clone()),
                    t.clone(),
                );
            }
            AuthChange::TopicPermissionGone {
                user,
                vhost,
                exchange,
            } => {
                self.topic_permissions
                    .remove(&(user.clone(), vhost.clone(), exchange.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleting_a_user_drops_its_permissions() {
        let mut d = AuthDefs::initial("guest", "h");
        assert!(d.permission("guest", "/").is_some());
        d.apply(&AuthChange::TopicPermission(TopicPermissionDef {
            user: "guest".into(),
            vhost: "/".into(),
            exchange: "amq.topic".into(),
            write: ".*".into(),
            read: ".*".into(),
        }));
        assert_eq!(d.len(), 3);
        let gone = AuthChange::UserGone("guest".into());
        assert!(!d.holds(&gone));
        d.apply(&gone);
        assert!(d.is_empty());
        assert!(d.holds(&gone));
    }

    #[test]
    fn a_vhost_s_permissions_are_listed_for_its_deletion() {
        let mut d = AuthDefs::initial("guest", "h");
        for vhost in ["v1", "v2"] {
            d.apply(&AuthChange::Permission(PermissionDef {
                user: "guest".into(),
                vhost: vhost.into(),
                configure: ".*".into(),
                write: ".*".into(),
                read: ".*".into(),
            }));
        }
        d.apply(&AuthChange::TopicPermission(TopicPermissionDef {
            user: "guest".into(),
            vhost: "v1".into(),
            exchange: "amq.topic".into(),
            write: ".*".into(),
            read: ".*".into(),
        }));
        let gone = d.of_vhost("v1");
        assert_eq!(gone.len(), 2);
        for c in &gone {
            d.apply(c);
        }
        assert!(d.permission("guest", "v1").is_none());
        assert!(d.topic_permission("guest", "v1", "amq.topic").is_none());
        assert!(d.permission("guest", "v2").is_some());
        assert!(d.permission("guest", "/").is_some());
    }
}
