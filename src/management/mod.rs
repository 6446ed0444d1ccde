//! The management HTTP server: RabbitMQ's management API (`/api/...`, JSON,
//! HTTP basic auth), its web UI (`/`, `/js/…`, `/css/…`, see `ui`) and the
//! plain-text requests of `warren ctl` (every other path, loopback peers
//! only, see `crate::admin`) on one port,
//! `--management-port`. It runs off the shards, on its own thread: hyper 1
//! on a current-thread tokio runtime. It reaches the shards only through
//! `bridge` (a bounded job queue into shard 0), so the message path never
//! waits for it; the alarm state it reads directly (atomics).

pub mod access;
pub mod actions;
pub mod amqp_json;
pub mod api;
pub mod auth;
pub mod binding_keys;
pub mod bridge;
pub mod definitions;
pub mod import;
pub mod listing;
pub mod nodes;
pub mod prometheus;
pub mod queue_page;
pub mod stats;
pub mod transfer;
pub mod ui;
pub mod writes;

use crate::shard::alarms::Alarms;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How long a request may wait for shard 0 before it is answered 503.
const SHARD_TIMEOUT: Duration = Duration::from_secs(10);

/// Client connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 256;

/// How long a client may take to send a request's head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server needs besides the bridge.
pub struct Context {
    pub bridge: bridge::Sender,
    pub alarms: Arc<Alarms>,
    pub node: api::Node,
    pub loopback_users: Vec<String>,
    /// The samples `message_stats` rates are computed from.
    pub rates: std::sync::Mutex<stats::Rates>,
}

/// Starts the server thread on `listener` (already bound, so a bind error
/// is reported at start).
pub fn start(listener: std::net::TcpListener, ctx: Context) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("management".into())
        .spawn(move || runtime.block_on(serve(listener, Arc::new(ctx))))?;
    Ok(())
}

async fn serve(listener: std::net::TcpListener, ctx: Arc<Context>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = open.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let ctx = ctx.clone();
        tokio::task::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let ctx = ctx.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&ctx, peer, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(64 * 1024)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    ctx: &Context,
    peer: SocketAddr,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let version = req.version();
    let query = listing::parse_query(req.uri().query().unwrap_or(""));
    let metrics = prometheus::Endpoint::of(req.uri().path(), &query);
    let mut response = if req.uri().path() == "/api" || req.uri().path().starts_with("/api/") {
        api_request(ctx, peer.ip(), req).await
    } else if let Some(endpoint) = metrics {
        metrics_request(ctx, &endpoint).await
    } else if ui::is_ui_path(req.uri().path()) {
        ui::respond(req.method(), req.uri().path(), req.headers())
    } else {
        ctl_request(ctx, peer.ip(), req).await
    };
    *response.version_mut() = version;
    response
}

/// `/metrics...`: Prometheus' text format, without auth (as
/// rabbitmq_prometheus).
async fn metrics_request(ctx: &Context, endpoint: &prometheus::Endpoint) -> Response<Full<Bytes>> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job = bridge::Job::View {
        user: String::new(),
        reply,
    };
    let Some(view) = ask(ctx, job, answer).await else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the broker is busy; try again\n".into(),
        );
    };
    let process = prometheus::Process::read(&ctx.alarms);
    let body = prometheus::render(endpoint, &view, &ctx.node, &process);
    let mut r = text(StatusCode::OK, body);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// A `warren ctl` request: plain text, loopback peers only.
async fn ctl_request(
    ctx: &Context,
    peer: IpAddr,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    if !peer.is_loopback() {
        return text(
            StatusCode::FORBIDDEN,
            "warren ctl requests are served to loopback peers only\n".into(),
        );
    }
    if transfer::is_ctl_path(req.uri().path()) {
        return transfer::ctl(ctx, req).await;
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job = bridge::Job::Admin {
        method: req.method().as_str().to_string(),
        // The query carries `?vhost=` (`warren ctl -p`).
        path: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string()),
        reply,
    };
    match ask(ctx, job, answer).await {
        Some((status, body)) => {
            let code = status
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            text(code, body)
        }
        None => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the broker is busy; try again\n".into(),
        ),
    }
}

/// Sends a job over the bridge and waits (bounded) for its answer.
async fn ask<T>(
    ctx: &Context,
    job: bridge::Job,
    answer: tokio::sync::oneshot::Receiver<T>,
) -> Option<T> {
    ctx.bridge.try_send(job).ok()?;
    tokio::time::timeout(SHARD_TIMEOUT, answer).await.ok()?.ok()
}

async fn api_request(
    ctx: &Context,
    peer: IpAddr,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let user = match login(ctx, header, peer).await {
        Ok(u) => u,
        Err("Login failed") => {
            let mut r = json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "not_authorized", "reason": "Login failed"}),
            );
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Basic realm=\"RabbitMQ Management\""),
            );
            return r;
        }
        Err(reason) => return writes::not_authorised(reason),
    };
    let segments: Vec<String> = req
        .uri()
        .path()
        .trim_start_matches("/api")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let query = listing::parse_query(req.uri().query().unwrap_or(""));
    if let Some(scope) = transfer::route(&segments) {
        return transfer::serve(ctx, &user, scope, req).await;
    }
    if let Some(route) = access::route(req.method(), &segments) {
        return access::serve(ctx, &user, route, &query, req).await;
    }
    let Some(resource) = api::route(&segments) else {
        return json_response(StatusCode::NOT_FOUND, &api::not_found());
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return writes::handle(ctx, &user, resource, &query, req).await;
    }
    if let Err(reason) = auth::may_read(&user, &resource) {
        return writes::not_authorised(reason);
    }
    match &resource {
        api::Resource::Whoami => {
            return json_response(
                StatusCode::OK,
                &json!({"name": user.name, "tags": user.tags}),
            )
        }
        api::Resource::AlarmsCheck | api::Resource::LocalAlarmsCheck => {
            return alarms_check(ctx);
        }
        api::Resource::AlivenessTest(vhost) => return writes::aliveness(ctx, &user, vhost).await,
        // A page of queues: copied out of the shards a page at a time.
        api::Resource::Queues(vhost) => {
            if let Some(plan) = queue_page::Plan::of(&query) {
                let admin = user.tags.iter().any(|t| t == "administrator");
                return queue_page::serve(ctx, &user, admin, vhost.as_deref(), plan, &query).await;
            }
        }
        _ => {}
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job = bridge::Job::View {
        user: user.name.clone(),
        reply,
    };
    let Some(mut view) = ask(ctx, job, answer).await else {
        return writes::busy();
    };
    if let Ok(mut rates) = ctx.rates.lock() {
        view.stats = rates.observe(&view.snapshots);
    }
    let has = |t: &str| user.tags.iter().any(|u| u == t);
    let scope = api::Scope {
        user: &user.name,
        admin: has("administrator"),
        monitor: has("administrator") || has("monitoring"),
    };
    // RabbitMQ's `is_authorized_vhost`: a vhost that exists, in which a
    // user who is not an administrator has no permissions, is refused.
    if let Some(v) = resource.vhost() {
        if !scope.admin && view.vhost_id(v).is_some() && !view.login_vhosts.iter().any(|l| l == v) {
            return writes::not_authorised("User not authorised to access virtual host");
        }
    }
    let body = match &resource {
        // Paged on the snapshots: only the page is rendered.
        api::Resource::Queues(vhost) => {
            if vhost.as_deref().is_some_and(|v| view.vhost_id(v).is_none()) {
                return json_response(StatusCode::NOT_FOUND, &api::not_found());
            }
            return match api::queue_list(&view, &ctx.node, &scope, vhost.as_deref(), &query) {
                Ok(v) => json_response(StatusCode::OK, &v),
                Err(e) => bad_query(e),
            };
        }
        api::Resource::Overview => Some(api::overview(&view, &ctx.node, &user.name)),
        api::Resource::Nodes => Some(Value::Array(vec![nodes::node_json(
            &ctx.node,
            &ctx.alarms,
            &view,
        )])),
        api::Resource::Node(name) if *name == ctx.node.name => {
            Some(nodes::node_json(&ctx.node, &ctx.alarms, &view))
        }
        _ => api::render(&resource, &view, &ctx.node, &scope),
    };
    match body {
        None => json_response(StatusCode::NOT_FOUND, &api::not_found()),
        Some(Value::Array(items)) => match listing::apply(items, &query) {
            Ok(v) => json_response(StatusCode::OK, &v),
            Err(e) => bad_query(e),
        },
        Some(v) => json_response(StatusCode::OK, &v),
    }
}

/// Checks basic auth against the user store (on shard 0).
async fn login(
    ctx: &Context,
    header: Option<&str>,
    peer: IpAddr,
) -> Result<auth::User, &'static str> {
    let (name, password) = auth::credentials(header)?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job = bridge::Job::Authenticate {
        user: name.clone(),
        password,
        reply,
    };
    match ask(ctx, job, answer).await {
        Some(Ok(tags)) => auth::admit(name, tags, peer, &ctx.loopback_users),
        Some(Err(why)) => {
            tracing::warn!(peer = %peer, "management API login refused: {why}");
            Err("Login failed")
        }
        None => Err("Login failed"),
    }
}

/// `/api/health/checks/alarms` (and `local-alarms`: one node, the same).
fn alarms_check(ctx: &Context) -> Response<Full<Bytes>> {
    let reason = ctx.alarms.reason();
    if reason.is_empty() {
        return json_response(StatusCode::OK, &json!({"status": "ok"}));
    }
    let mut alarms = Vec::new();
    if reason.contains("memory") {
        alarms.push(json!({"node": ctx.node.name, "resource": "memory"}));
    }
    if reason.contains("disk") {
        alarms.push(json!({"node": ctx.node.name, "resource": "disk"}));
    }
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"status": "failed", "reason": "There are alarms in effect in the cluster", "alarms": alarms}),
    )
}

/// A refused list query: RabbitMQ's 400 body.
fn bad_query(e: listing::BadQuery) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": e.error, "reason": e.reason}),
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
