//! The management API's users, vhosts (PUT / DELETE), permissions, topic
//! permissions, policies, runtime parameters and vhost limits, as RabbitMQ
//! 3.10's `rabbit_mgmt_wm_*` resources: routes, RabbitMQ's tag rules
//! (`administrator` for users, vhosts and permissions; `policymaker` with
//! access to the vhost for policies and parameters; any management user
//! for listings, filtered to the vhosts it may see), status codes (201
//! created, 204 updated or deleted, 400, 401, 404) and JSON. Reads copy
//! a small `AccessView` out of shard 0; changes run on shard 0 as the
//! leader's requests (`Change`). Also the helpers `transfer` shares: a
//! bounded body read and running a closure on shard 0.

mod change;
mod read;

use super::auth::User;
use super::{bridge, json_response, Context};
use crate::broker::auth::AuthDefs;
use crate::broker::vhost::VhostLimits;
use crate::shard::Shard;
use crate::storage::definitions::PolicyDef;
use bytes::Bytes;
use change::{apply, delete, put};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Response, StatusCode};
use read::read;
use serde_json::{json, Value};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

/// Largest body of a user, permission, policy or limit change.
const MAX_BODY: usize = 1 << 20;

/// A resource of this module.
#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    Users,
    UsersWithoutPermissions,
    User(String),
    UserPermissions(String),
    UserTopicPermissions(String),
    /// PUT / DELETE only (GET is `api`'s).
    Vhost(String),
    VhostPermissions(String),
    VhostTopicPermissions(String),
    Permissions,
    Permission(String, String),
    TopicPermissions,
    TopicPermission(String, String, Option<String>),
    Policies(Option<String>),
    Policy(String, String),
    /// (component, vhost).
    Parameters(Option<String>, Option<String>),
    Parameter(String, String, String),
    GlobalParameters,
    GlobalParameter(String),
    VhostLimits(Option<String>),
    VhostLimit(String, String),
}

/// The route of `/api/...` segments (percent-decoded) this module serves.
pub fn route(method: &Method, segments: &[String]) -> Option<Route> {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let o = |v: &&str| v.to_string();
    Some(match s.as_slice() {
        ["users"] => Route::Users,
        ["users", "without-permissions"] => Route::UsersWithoutPermissions,
        ["users", u] => Route::User(o(u)),
        ["users", u, "permissions"] => Route::UserPermissions(o(u)),
        ["users", u, "topic-permissions"] => Route::UserTopicPermissions(o(u)),
        ["vhosts", v] if method == Method::PUT || method == Method::DELETE => Route::Vhost(o(v)),
        ["vhosts", v, "permissions"] => Route::VhostPermissions(o(v)),
        ["vhosts", v, "topic-permissions"] => Route::VhostTopicPermissions(o(v)),
        ["permissions"] => Route::Permissions,
        ["permissions", v, u] => Route::Permission(o(v), o(u)),
        ["topic-permissions"] => Route::TopicPermissions,
        ["topic-permissions", v, u] => Route::TopicPermission(o(v), o(u), None),
        ["topic-permissions", v, u, x] => Route::TopicPermission(o(v), o(u), Some(o(x))),
        ["policies"] => Route::Policies(None),
        ["policies", v] => Route::Policies(Some(o(v))),
        ["policies", v, n] => Route::Policy(o(v), o(n)),
        ["parameters"] => Route::Parameters(None, None),
        ["parameters", c] => Route::Parameters(Some(o(c)), None),
        ["parameters", c, v] => Route::Parameters(Some(o(c)), Some(o(v))),
        ["parameters", c, v, n] => Route::Parameter(o(c), o(v), o(n)),
        ["global-parameters"] => Route::GlobalParameters,
        ["global-parameters", n] => Route::GlobalParameter(o(n)),
        ["vhost-limits"] => Route::VhostLimits(None),
        ["vhost-limits", v] => Route::VhostLimits(Some(o(v))),
        ["vhost-limits", v, n] => Route::VhostLimit(o(v), o(n)),
        _ => return None,
    })
}

/// The users, vhosts, permissions and policies, copied from shard 0.
pub struct AccessView {
    /// Every vhost with its limits, by name.
    pub vhosts: Vec<(String, VhostLimits)>,
    pub auth: AuthDefs,
    /// (vhost, policy).
    pub policies: Vec<(String, PolicyDef)>,
}

impl AccessView {
    fn of(shard: &Shard) -> AccessView {
        let meta = shard.meta.borrow();
        let mut vhosts: Vec<_> = meta
            .vhosts
            .values()
            .map(|v| (v.name.to_string(), v.limits))
            .collect();
        vhosts.sort_by(|a, b| a.0.cmp(&b.0));
        let mut policies: Vec<_> = meta
            .vhosts
            .values()
            .flat_map(|v| {
                v.policies
                    .iter()
                    .map(|p| (v.name.to_string(), p.def.clone()))
            })
            .collect();
        policies.sort_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
        AccessView {
            vhosts,
            auth: meta.auth.defs().clone(),
            policies,
        }
    }

    fn has_vhost(&self, v: &str) -> bool {
        self.vhosts.iter().any(|(n, _)| n == v)
    }

    /// The vhosts `user` sees in lists (RabbitMQ's `filter_vhost`): every
    /// one for administrators and monitors, else those it has
    /// permissions in.
    fn visible(&self, user: &User) -> Vec<String> {
        let all = has(user, "administrator") || has(user, "monitoring");
        self.vhosts
            .iter()
            .map(|(v, _)| v.clone())
            .filter(|v| all || self.auth.permission(&user.name, v).is_some())
            .collect()
    }

    /// RabbitMQ's `user_matches_vhost`: a vhost that does not exist
    /// matches (the request then answers 404).
    fn may_access(&self, user: &User, vhost: &str) -> bool {
        !self.has_vhost(vhost) || self.auth.permission(&user.name, vhost).is_some()
    }
}

fn has(user: &User, tag: &str) -> bool {
    user.tags.iter().any(|t| t == tag)
}

fn admin(user: &User) -> bool {
    has(user, "administrator")
}

fn policymaker(user: &User) -> bool {
    admin(user) || has(user, "policymaker")
}

/// RabbitMQ's 401 for a user whose tags do not allow a request.
pub fn refused(reason: &str) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "not_authorised", "reason": reason}),
    )
}

pub fn bad_request(reason: &str) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": "bad_request", "reason": reason}),
    )
}

/// RabbitMQ's 404: `Object Not Found` for a missing object, `not_found`
/// with a reason (`vhost_not_found`) from a resource's own check.
fn not_found(reason: &str) -> Response<Full<Bytes>> {
    let error = if reason == "Not Found" {
        "Object Not Found"
    } else {
        "not_found"
    };
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": error, "reason": reason}),
    )
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

pub fn busy() -> Response<Full<Bytes>> {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"error": "service_unavailable", "reason": "the broker is busy; try again"}),
    )
}

/// Runs `f` on shard 0 and waits (at most `within`) for its answer.
pub async fn on_shard0<T, F, Fut>(ctx: &Context, within: Duration, f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    let (reply, answer) = tokio::sync::oneshot::channel();
    let task: bridge::Task = Box::new(move |shard| {
        Box::pin(async move {
            let _ = reply.send(f(shard).await);
        })
    });
    ctx.bridge.try_send(bridge::Job::Task(task)).ok()?;
    tokio::time::timeout(within, answer).await.ok()?.ok()
}

/// Reads a request body of at most `limit` bytes.
pub async fn read_body(
    req: hyper::Request<hyper::body::Incoming>,
    limit: usize,
) -> Result<Bytes, Response<Full<Bytes>>> {
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => Err(bad_request("Exceeded HTTP request body size limit")),
    }
}

/// Serves a request of this module (the user has logged in).
pub async fn serve(
    ctx: &Context,
    user: &User,
    route: Route,
    query: &[(String, String)],
    req: hyper::Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    if !(admin(user)
        || has(user, "management")
        || has(user, "policymaker")
        || has(user, "monitoring"))
    {
        return refused("Not management user");
    }
    let method = req.method().clone();
    let admin_only = !matches!(
        route,
        Route::Policies(_)
            | Route::Policy(..)
            | Route::Parameters(..)
            | Route::Parameter(..)
            | Route::GlobalParameters
            | Route::GlobalParameter(_)
            | Route::VhostLimits(_)
    );
    if admin_only && !admin(user) {
        return refused("Not administrator user");
    }
    let Some(view) = on_shard0(
        ctx,
        super::SHARD_TIMEOUT,
        |s| async move { AccessView::of(&s) },
    )
    .await
    else {
        return busy();
    };
    if let Some(r) = refuse_by_vhost(user, &route, &view) {
        return r;
    }
    if method == Method::GET || method == Method::HEAD {
        return match read(user, &route, &view) {
            Some(Value::Array(items)) => match super::listing::apply(items, query) {
                Ok(v) => json_response(StatusCode::OK, &v),
                Err(e) => bad_request(&e.reason),
            },
            Some(v) => json_response(StatusCode::OK, &v),
            None => not_found("Not Found"),
        };
    }
    let change = if method == Method::PUT {
        let body = match read_body(req, MAX_BODY).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let body: Value = if body.is_empty() {
            json!({})
        } else {
            match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(_) => return bad_request("not_json"),
            }
        };
        put(&route, &body)
    } else if method == Method::DELETE {
        delete(&route)
    } else {
        Err(None)
    };
    let change = match change {
        Ok(c) => c,
        Err(Some(reason)) => return bad_request(&reason),
        Err(None) => {
            return json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({"error": "Method Not Allowed", "reason": format!("{method} is not allowed here")}),
            )
        }
    };
    match on_shard0(ctx, super::SHARD_TIMEOUT, move |s| async move {
        apply(&s, change).await
    })
    .await
    {
        None => busy(),
        Some(Ok(true)) => empty(StatusCode::CREATED),
        Some(Ok(false)) => empty(StatusCode::NO_CONTENT),
        Some(Err((404, reason))) => not_found(&reason),
        Some(Err((_, reason))) => bad_request(&reason),
    }
}

/// RabbitMQ's vhost rules: `is_authorized_vhost` for a vhost's policies,
/// `is_authorized_policies` for a policy or parameter, and
/// `is_authorized_global_parameters`.
fn refuse_by_vhost(user: &User, route: &Route, view: &AccessView) -> Option<Response<Full<Bytes>>> {
    let object = "User not authorised to access object";
    match route {
        Route::Policies(Some(v)) if !admin(user) && !view.may_access(user, v) => {
            Some(refused("User not authorised to access virtual host"))
        }
        Route::Policy(v, _) | Route::Parameter(_, v, _) | Route::Parameters(_, Some(v))
            if !(admin(user) || policymaker(user) && view.may_access(user, v)) =>
        {
            Some(refused(object))
        }
        Route::Parameters(_, None) | Route::GlobalParameters | Route::GlobalParameter(_)
            if !policymaker(user) =>
        {
            Some(refused(object))
        }
        Route::VhostLimits(Some(v))
            if !admin(user) && view.has_vhost(v) && !view.visible(user).contains(v) =>
        {
            Some(refused("User not authorised to access virtual host"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn routes_follow_rabbitmq_s_dispatcher() {
        let r = |m: Method, p: &str| route(&m, &segs(p));
        assert_eq!(r(Method::GET, "users/u1"), Some(Route::User("u1".into())));
        assert_eq!(
            r(Method::GET, "users/without-permissions"),
            Some(Route::UsersWithoutPermissions)
        );
        // GET of a vhost is `api`'s; PUT and DELETE are this module's.
        assert_eq!(r(Method::GET, "vhosts/v"), None);
        assert_eq!(r(Method::PUT, "vhosts/v"), Some(Route::Vhost("v".into())));
        assert_eq!(
            r(Method::DELETE, "topic-permissions/v/u/x"),
            Some(Route::TopicPermission(
                "v".into(),
                "u".into(),
                Some("x".into())
            ))
        );
        assert_eq!(
            r(Method::GET, "parameters/policy"),
            Some(Route::Parameters(Some("policy".into()), None))
        );
        assert_eq!(r(Method::GET, "queues"), None);
    }

    #[test]
    fn changes_are_parsed_from_bodies() {
        let put_route = |route: Route, body: Value| put(&route, &body);
        assert!(matches!(
            put_route(Route::Permission("/".into(), "u".into()), json!({"configure": ".*", "write": ".*"})),
            Err(Some(r)) if r == "[{key_missing,read}]"
        ));
        assert!(matches!(
            put_route(Route::Parameter("policy".into(), "/".into(), "p".into()), json!({})),
            Err(Some(r)) if r == "policies may not be set using this method"
        ));
        assert!(matches!(
            put_route(Route::User("u".into()), json!({"password": "p"})),
            Err(Some(r)) if r == "tags_not_present"
        ));
        assert!(matches!(
            put_route(Route::User("u".into()), json!({"password": "p", "tags": "a, b"})),
            Ok(change::Change::PutUser(u)) if u.tags == ["a", "b"]
        ));
        assert!(matches!(put_route(Route::Users, json!({})), Err(None)));
    }
}
