//! The bodies of the access endpoints' GETs, rendered from an
//! `AccessView` on the management thread.

use super::{AccessView, Route};
use crate::management::auth::User;
use crate::management::definitions::{
    limits_json, limits_parameter, permission_json, policy_json, topic_permission_json, user_json,
};
use crate::storage::definitions::PolicyDef;
use serde_json::{json, Value};

fn policy_parameter(vhost: &str, p: &PolicyDef) -> Value {
    let v = policy_json(vhost, p);
    json!({"vhost": vhost, "component": "policy", "name": p.name, "value": {
        "pattern": v["pattern"], "definition": v["definition"],
        "priority": v["priority"], "apply-to": v["apply-to"],
    }})
}

/// The body of a GET; None: 404.
pub(super) fn read(user: &User, route: &Route, view: &AccessView) -> Option<Value> {
    let auth = &view.auth;
    let vhost_exists = |v: &str| view.has_vhost(v).then_some(());
    let visible = view.visible(user);
    let list = |items: Vec<Value>| Some(Value::Array(items));
    match route {
        Route::Users => list(auth.users.values().map(user_json).collect()),
        Route::UsersWithoutPermissions => list(
            auth.users
                .values()
                .filter(|u| !auth.permissions.values().any(|p| p.user == u.name))
                .map(user_json)
                .collect(),
        ),
        Route::User(u) => auth.user(u).map(user_json),
        Route::UserPermissions(u) => {
            auth.user(u)?;
            list(
                auth.permissions
                    .values()
                    .filter(|p| p.user == *u)
                    .map(permission_json)
                    .collect(),
            )
        }
        Route::UserTopicPermissions(u) => {
            auth.user(u)?;
            let ts = auth.topic_permissions.values().filter(|t| t.user == *u);
            list(ts.map(topic_permission_json).collect())
        }
        Route::VhostPermissions(v) => {
            vhost_exists(v)?;
            list(
                auth.permissions
                    .values()
                    .filter(|p| p.vhost == *v)
                    .map(permission_json)
                    .collect(),
            )
        }
        Route::VhostTopicPermissions(v) => {
            vhost_exists(v)?;
            let ts = auth.topic_permissions.values().filter(|t| t.vhost == *v);
            list(ts.map(topic_permission_json).collect())
        }
        Route::Permissions => list(auth.permissions.values().map(permission_json).collect()),
        Route::Permission(v, u) => auth.permission(u, v).map(permission_json),
        Route::TopicPermissions => list(
            auth.topic_permissions
                .values()
                .map(topic_permission_json)
                .collect(),
        ),
        Route::TopicPermission(v, u, _) => {
            let ts: Vec<Value> = auth
                .topic_permissions
                .values()
                .filter(|t| t.user == *u && t.vhost == *v)
                .map(topic_permission_json)
                .collect();
            (!ts.is_empty()).then_some(Value::Array(ts))
        }
        Route::Policies(scope) => {
            if let Some(v) = scope {
                vhost_exists(v)?;
            }
            let ps = view
                .policies
                .iter()
                .filter(|(v, _)| scope.as_ref().is_none_or(|s| s == v) && visible.contains(v));
            list(ps.map(|(v, p)| policy_json(v, p)).collect())
        }
        Route::Policy(v, n) => view
            .policies
            .iter()
            .find(|(pv, p)| pv == v && p.name == *n)
            .map(|(v, p)| policy_json(v, p)),
        Route::Parameters(component, scope) => {
            if let Some(v) = scope {
                vhost_exists(v)?;
            }
            let in_scope =
                |v: &String| scope.as_ref().is_none_or(|s| s == v) && visible.contains(v);
            let limits = view
                .vhosts
                .iter()
                .filter(|(v, l)| !l.is_empty() && in_scope(v))
                .map(|(v, l)| limits_parameter(v, l));
            let policies = view.policies.iter().filter(|(v, _)| in_scope(v));
            list(match component.as_deref() {
                None | Some("vhost-limits") => limits.collect(),
                Some("policy") => policies.map(|(v, p)| policy_parameter(v, p)).collect(),
                Some(_) => Vec::new(),
            })
        }
        Route::Parameter(c, v, n) => match c.as_str() {
            "vhost-limits" if n == "limits" => view
                .vhosts
                .iter()
                .find(|(name, l)| name == v && !l.is_empty())
                .map(|(v, l)| limits_parameter(v, l)),
            "policy" => view
                .policies
                .iter()
                .find(|(pv, p)| pv == v && p.name == *n)
                .map(|(v, p)| policy_parameter(v, p)),
            _ => None,
        },
        Route::GlobalParameters => list(Vec::new()),
        Route::GlobalParameter(_) => None,
        Route::VhostLimits(scope) => {
            if let Some(v) = scope {
                vhost_exists(v)?;
            }
            let ls = view.vhosts.iter().filter(|(v, l)| {
                !l.is_empty()
                    && scope.as_ref().is_none_or(|s| s == v)
                    && (scope.is_some() || visible.contains(v))
            });
            list(
                ls.map(|(v, l)| json!({"vhost": v, "value": limits_json(l)}))
                    .collect(),
            )
        }
        Route::Vhost(_) | Route::VhostLimit(..) => None,
    }
}
