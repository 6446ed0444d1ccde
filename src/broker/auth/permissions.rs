//! Permissions compiled: configure / write / read regexes per (user,
//! vhost) and topic regexes per (user, vhost, exchange), with RabbitMQ's
//! matching rules (an unanchored match; the empty pattern matches only the
//! empty name, RabbitMQ's synonym for `^$`; the default exchange is checked
//! as `amq.default`) and its refusal texts.

use super::defs::{PermissionDef, TopicPermissionDef};
use crate::broker::error::AmqpError;
use regex::Regex;

/// What an operation needs on a resource (RabbitMQ's access-control table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Configure,
    Write,
    Read,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Configure => "configure",
            Access::Write => "write",
            Access::Read => "read",
        }
    }
}

/// The kind of resource a permission is checked on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Queue,
    Exchange,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Queue => "queue",
            Resource::Exchange => "exchange",
        }
    }
}

/// The name a permission regex is matched against: the default exchange
/// is `amq.default`, as in RabbitMQ.
pub fn checked_name(resource: Resource, name: &str) -> &str {
    if resource == Resource::Exchange && name.is_empty() {
        "amq.default"
    } else {
        name
    }
}

/// A permission pattern compiled as RabbitMQ matches it.
pub fn compile_pattern(pattern: &str) -> Result<Regex, String> {
    let source = if pattern.is_empty() { "^$" } else { pattern };
    regex::RegexBuilder::new(source)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid regular expression '{pattern}': {e}"))
}

/// A user's permissions in one vhost.
#[derive(Clone, Debug)]
pub struct CompiledPermission {
    configure: Regex,
    write: Regex,
    read: Regex,
}

impl CompiledPermission {
    pub fn compile(p: &PermissionDef) -> Result<CompiledPermission, String> {
        Ok(CompiledPermission {
            configure: compile_pattern(&p.configure)?,
            write: compile_pattern(&p.write)?,
            read: compile_pattern(&p.read)?,
        })
    }

    pub fn allows(&self, access: Access, resource: Resource, name: &str) -> bool {
        let re = match access {
            Access::Configure => &self.configure,
            Access::Write => &self.write,
            Access::Read => &self.read,
        };
        re.is_match(checked_name(resource, name))
    }
}

/// RabbitMQ's `{username}` / `{vhost}` expansion in topic patterns.
pub fn expand(pattern: &str, user: &str, vhost: &str) -> String {
    pattern
        .replace("{username}", user)
        .replace("{vhost}", vhost)
}

/// Topic permissions of a user in a vhost on one exchange, expanded and
/// compiled.
#[derive(Clone, Debug)]
pub struct CompiledTopic {
    write: Regex,
    read: Regex,
}

impl CompiledTopic {
    pub fn compile(t: &TopicPermissionDef) -> Result<CompiledTopic, String> {
        Ok(CompiledTopic {
            write: compile_pattern(&expand(&t.write, &t.user, &t.vhost))?,
            read: compile_pattern(&expand(&t.read, &t.user, &t.vhost))?,
        })
    }

    /// Write is checked for publishes, read for bindings; configure never
    /// applies to routing keys.
    pub fn allows(&self, access: Access, routing_key: &str) -> bool {
        match access {
            Access::Write => self.write.is_match(routing_key),
            Access::Read => self.read.is_match(routing_key),
            Access::Configure => true,
        }
    }
}

/// 403 `access to queue 'q' in vhost '/' refused for user 'u'`.
pub fn refused(resource: Resource, name: &str, vhost: &str, user: &str) -> AmqpError {
    AmqpError::access_refused(format!(
        "access to {} '{}' in vhost '{vhost}' refused for user '{user}'",
        resource.as_str(),
        checked_name(resource, name)
    ))
}

/// 403 `access to topic 'k' in exchange 'x' in vhost '/' refused for user 'u'`.
pub fn topic_refused(routing_key: &str, exchange: &str, vhost: &str, user: &str) -> AmqpError {
    AmqpError::access_refused(format!(
        "access to topic '{routing_key}' in exchange '{exchange}' in vhost '{vhost}' refused for user '{user}'"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(c: &str, w: &str, r: &str) -> CompiledPermission {
        CompiledPermission::compile(&PermissionDef {
            user: "u".into(),
            vhost: "/".into(),
            configure: c.into(),
            write: w.into(),
            read: r.into(),
        })
        .unwrap()
    }

    #[test]
    fn patterns_match_as_rabbitmq() {
        let p = perm("^c", "", ".*");
        assert!(p.allows(Access::Configure, Resource::Queue, "cq"));
        assert!(!p.allows(Access::Configure, Resource::Queue, "qc"));
        // Empty pattern: only the empty name (never the default exchange).
        assert!(!p.allows(Access::Write, Resource::Exchange, ""));
        assert!(!p.allows(Access::Write, Resource::Queue, "x"));
        assert!(p.allows(Access::Read, Resource::Queue, ""));
        // Unanchored.
        let q = perm("ab", "default", "x");
        assert!(q.allows(Access::Configure, Resource::Queue, "xaby"));
        assert!(q.allows(Access::Write, Resource::Exchange, ""));
        assert!(compile_pattern("(").is_err());
    }

    #[test]
    fn topic_patterns_expand_user_and_vhost() {
        let t = CompiledTopic::compile(&TopicPermissionDef {
            user: "bob".into(),
            vhost: "v1".into(),
            exchange: "amq.topic".into(),
            write: "^{username}\\.".into(),
            read: "^{vhost}$".into(),
        })
        .unwrap();
        assert!(t.allows(Access::Write, "bob.x"));
        assert!(!t.allows(Access::Write, "alice.x"));
        assert!(t.allows(Access::Read, "v1"));
        assert!(!t.allows(Access::Read, "v2"));
    }

    #[test]
    fn refusal_texts_are_rabbitmqs() {
        assert_eq!(
            refused(Resource::Exchange, "", "/", "u").text,
            "ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'u'"
        );
        assert_eq!(
            topic_refused("b.1", "amq.topic", "/", "u").text,
            "ACCESS_REFUSED - access to topic 'b.1' in exchange 'amq.topic' in vhost '/' refused for user 'u'"
        );
    }
}
