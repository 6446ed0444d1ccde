//! Users, permissions and topic permissions as field tables, the form both
//! the snapshot and the journal store (`auth::AuthChange` as a journal
//! change, `auth::AuthDefs` as three snapshot lists). A snapshot without
//! the `users` list was written before any user existed (a first start):
//! it loads as `None`, and the broker creates its default user.

use super::fields::{entry, long, tables};
use crate::broker::auth::{AuthChange, AuthDefs, PermissionDef, TopicPermissionDef, UserDef};
use crate::protocol::types::{FieldTable, FieldValue, ShortStr};

fn string(t: &FieldTable, k: &str) -> String {
    t.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string()
}

fn user_fields(u: &UserDef) -> Vec<(&'static str, FieldValue)> {
    vec![
        ("name", long(&u.name)),
        ("password_hash", long(&u.password_hash)),
        ("hashing_algorithm", long(&u.hashing_algorithm)),
        (
            "tags",
            FieldValue::Array(u.tags.iter().map(|t| long(t)).collect()),
        ),
    ]
}

fn user_from(t: &FieldTable) -> UserDef {
    let tags = match t.get("tags") {
        Some(FieldValue::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    UserDef {
        name: string(t, "name"),
        password_hash: string(t, "password_hash"),
        hashing_algorithm: string(t, "hashing_algorithm"),
        tags,
    }
}

fn permission_fields(p: &PermissionDef) -> Vec<(&'static str, FieldValue)> {
    vec![
        ("user", long(&p.user)),
        ("vhost", long(&p.vhost)),
        ("configure", long(&p.configure)),
        ("write", long(&p.write)),
        ("read", long(&p.read)),
    ]
}

fn permission_from(t: &FieldTable) -> PermissionDef {
    PermissionDef {
        user: string(t, "user"),
        vhost: string(t, "vhost"),
        configure: string(t, "configure"),
        write: string(t, "write"),
        read: string(t, "read"),
    }
}

fn topic_fields(p: &TopicPermissionDef) -> Vec<(&'static str, FieldValue)> {
    vec![
        ("user", long(&p.user)),
        ("vhost", long(&p.vhost)),
        ("exchange", long(&p.exchange)),
        ("write", long(&p.write)),
        ("read", long(&p.read)),
    ]
}

fn topic_from(t: &FieldTable) -> TopicPermissionDef {
    TopicPermissionDef {
        user: string(t, "user"),
        vhost: string(t, "vhost"),
        exchange: string(t, "exchange"),
        write: string(t, "write"),
        read: string(t, "read"),
    }
}

/// A journal change's op name and fields.
pub(super) fn change_fields(c: &AuthChange) -> (&'static str, Vec<(&'static str, FieldValue)>) {
    match c {
        AuthChange::User(u) => ("user", user_fields(u)),
        AuthChange::UserGone(n) => ("user_gone", vec![("name", long(n))]),
        AuthChange::Permission(p) => ("permission", permission_fields(p)),
        AuthChange::PermissionGone { user, vhost } => (
            "permission_gone",
            vec![("user", long(user)), ("vhost", long(vhost))],
        ),
        AuthChange::TopicPermission(t) => ("topic_permission", topic_fields(t)),
        AuthChange::TopicPermissionGone {
            user,
            vhost,
            exchange,
        } => (
            "topic_permission_gone",
            vec![
                ("user", long(user)),
                ("vhost", long(vhost)),
                ("exchange", long(exchange)),
            ],
        ),
    }
}

/// The change a journal entry of op `op` holds, if it is an auth change.
pub(super) fn change_from(op: &str, t: &FieldTable) -> Option<AuthChange> {
    Some(match op {
        "user" => AuthChange::User(user_from(t)),
        "user_gone" => AuthChange::UserGone(string(t, "name")),
        "permission" => AuthChange::Permission(permission_from(t)),
        "permission_gone" => AuthChange::PermissionGone {
            user: string(t, "user"),
            vhost: string(t, "vhost"),
        },
        "topic_permission" => AuthChange::TopicPermission(topic_from(t)),
        "topic_permission_gone" => AuthChange::TopicPermissionGone {
            user: string(t, "user"),
            vhost: string(t, "vhost"),
            exchange: string(t, "exchange"),
        },
        _ => return None,
    })
}

/// The snapshot's three lists (none when `auth` is None).
pub(super) fn snapshot_fields(auth: &Option<AuthDefs>) -> Vec<(ShortStr, FieldValue)> {
    let Some(a) = auth else {
        return Vec::new();
    };
    let list = |items: Vec<FieldValue>| FieldValue::Array(items);
    vec![
        (
            ShortStr::from_static("users"),
            list(a.users.values().map(|u| entry(user_fields(u))).collect()),
        ),
        (
            ShortStr::from_static("permissions"),
            list(
                a.permissions
                    .values()
                    .map(|p| entry(permission_fields(p)))
                    .collect(),
            ),
        ),
        (
            ShortStr::from_static("topic_permissions"),
            list(
                a.topic_permissions
                    .values()
                    .map(|t| entry(topic_fields(t)))
                    .collect(),
            ),
        ),
    ]
}

/// The auth records of a snapshot table (None: written before users).
pub(super) fn from_snapshot(table: &FieldTable) -> Option<AuthDefs> {
    table.get("users")?;
    Some(AuthDefs::from_lists(
        tables(table.get("users")).map(user_from).collect(),
        tables(table.get("permissions"))
            .map(permission_from)
            .collect(),
        tables(table.get("topic_permissions"))
            .map(topic_from)
            .collect(),
    ))
}
