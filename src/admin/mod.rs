//! Operations: the admin requests of `warren ctl` (answered on shard 0;
//! the management server carries them, for loopback peers only, on the
//! management port) and the `warren ctl` client (`client`, `format`).
//! Listings with columns — queues, exchanges, bindings, connections,
//! channels, consumers, vhosts and the counters (`status`) — are answered
//! as JSON lines with the columns asked (`GET /queues?columns=name,messages`;
//! `columns`, `rows`, `listings`); users, permissions, policies and vhost
//! limits as rabbitmqctl's fixed text. `delete_queue`, `purge_queue`
//! (`queues`) and `close_connection` (`connections`) act as the broker.
//!
//! `GET /<listing>` reads a listing. Two requests change the resource alarm
//! limits at run time, like rabbitmqctl's commands of the same names:
//! `POST /set_disk_free_limit/<bytes>` and
//! `POST /set_vm_memory_high_watermark/<bytes|fraction>` (localhost only,
//! like the listings). The response comes once the alarm monitor has
//! re-sampled with the new limit (it is woken at once); publishers blocked
//! by an alarm that cleared get connection.unblocked at their next check.
//!
//! Policies: `POST /set_policy/…`, `POST /clear_policy/NAME` and the
//! `policies` listing (see `policy`), answered once the leader journaled
//! the change and every shard applied it.
//!
//! Vhosts: `POST /add_vhost/NAME`, `/delete_vhost/NAME`,
//! `/set_vhost_limits/JSON`, `/clear_vhost_limits` and the `vhosts` and
//! `vhost_limits` listings (see `vhosts`). Any request takes
//! `?vhost=NAME` (rabbitmqctl's `-p`; default `/`): the listings of
//! queues, exchanges, bindings, policies and vhost limits show that vhost.
//! Users and permissions: rabbitmqctl's verbs and listings (see `users`).
//! `POST /reload_tls` reads the amqps certificate files again (`warren ctl
//! reload_tls`; RabbitMQ: `rabbitmqctl eval 'ssl:clear_pem_cache().'`):
//! new TLS connections get the new certificate, open ones keep theirs; a
//! file that does not load leaves the old configuration in force (400).
//!
//! Shard 0 gathers a snapshot from every shard over the mesh; routing
//! (`route`) and the rows (`rows::render`) are pure so they are
//! unit-tested alone.

pub mod client;
pub mod columns;
pub mod connections;
pub mod definitions;
pub mod format;
pub mod listings;
pub mod options;
pub mod policy;
pub mod queues;
pub mod rows;
pub mod users;
pub mod vhosts;

use crate::broker::vhost::VhostId;
use crate::connection::tls_config::TlsContext;
use crate::shard::envelope::{Reply, Request, ShardSnapshot};
use crate::shard::Shard;
use std::fmt::Write;
use std::rc::Rc;
use std::time::Duration;

/// The listings the endpoint serves (path = `/<name>`).
pub const LISTINGS: &[&str] = &[
    "queues",
    "exchanges",
    "bindings",
    "connections",
    "channels",
    "consumers",
    "counters",
    "policies",
    "vhosts",
    "vhost_limits",
];

/// Answers one admin request (`method`, `path` with an optional
/// `?vhost=` query) with an HTTP status line and a plain-text body. The
/// management server (`crate::management`) brings the requests of
/// `warren ctl` here, on shard 0, over its bridge.
pub async fn answer(
    shard: &Rc<Shard>,
    method: &str,
    path: &str,
    tls: Option<&TlsContext>,
) -> (&'static str, String) {
    let wanted = query_param(path, "columns");
    let flag = |k: &str| query_param(path, k).as_deref() == Some("true");
    let flags = (flag("if_unused"), flag("if_empty"));
    let (path, vhost) = vhosts::split_query(path);
    let Some(vhost) = vhost else {
        return ("400 Bad Request", "bad vhost\n".into());
    };
    let (command, value) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path.trim_start_matches('/'), ""));
    if let Some(r) = connections::route(method, command, value) {
        return match r {
            Ok((name, reason)) => connections::close(shard, &name, &reason).await,
            Err(e) => e,
        };
    }
    if let Some(r) = queues::route(method, command, value, flags) {
        return match r {
            Ok(c) => queues::answer(shard, c, &vhost).await,
            Err(e) => e,
        };
    }
    match route(method, path) {
        Route::Listing(_) if listings::by_path(path).is_some() => {
            let listing = listings::by_path(path).unwrap_or(&listings::LISTINGS[0]);
            rows_answer(shard, listing, wanted.as_deref(), &vhost).await
        }
        Route::Listing(name) => match vhosts::resolve(shard, &vhost) {
            Ok(id) if name == "vhost_limits" => {
                ("200 OK", vhosts::render_limits(shard, id, &vhost))
            }
            Ok(id) => ("200 OK", render_policies(shard, id)),
            Err(e) => e,
        },
        Route::Vhost(r) => vhosts::answer(shard, r, &vhost).await,
        Route::Set(change) => {
            let ticket = match change {
                LimitChange::DiskFreeLimit(bytes) => shard.alarms.set_disk_free_limit(bytes),
                LimitChange::MemoryHighWatermark(bytes) => {
                    shard.alarms.set_memory_high_watermark(bytes)
                }
            };
            tracing::info!("admin: {}", change.describe().to_lowercase());
            // The monitor re-samples at once; answer when it has (bounded).
            for _ in 0..200 {
                if shard.alarms.applied(ticket) {
                    break;
                }
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
            ("200 OK", format!("{} ...\n", change.describe()))
        }
        Route::SetPolicy(def) => match vhosts::resolve(shard, &vhost) {
            Ok(id) => {
                let text = format!(
                    "Setting policy \"{}\" for pattern \"{}\" to \"{}\" with priority \"{}\" for vhost \"{vhost}\" ...\n",
                    def.name,
                    def.pattern,
                    policy::to_json(&crate::protocol::types::FieldValue::Table(
                        def.definition.clone()
                    )),
                    def.priority
                );
                leader_answer(
                    shard,
                    Request::SetPolicy { vhost: id, def },
                    text,
                    "Validation failed\n\n",
                )
                .await
            }
            Err(e) => e,
        },
        Route::ClearPolicy(name) => match vhosts::resolve(shard, &vhost) {
            Ok(id) => {
                let text = format!("Clearing policy \"{name}\" on vhost \"{vhost}\" ...\n");
                leader_answer(shard, Request::ClearPolicy { vhost: id, name }, text, "").await
            }
            Err(e) => e,
        },
        Route::Users(command) => users::handle(shard, command).await,
        Route::ReloadTls => reload_tls(tls),
        Route::Error(status, body) => (status, body),
    }
}

fn reload_tls(tls: Option<&TlsContext>) -> (&'static str, String) {
    let Some(tls) = tls else {
        return (
            "400 Bad Request",
            "Error:\nTLS is not configured (start with --tls-cert and --tls-key)\n".into(),
        );
    };
    match tls.reload() {
        Ok(()) => {
            tracing::info!("admin: TLS certificates reloaded");
            ("200 OK", "Reloading TLS certificates ...\n".into())
        }
        Err(e) => {
            tracing::warn!("admin: TLS certificates not reloaded: {e}");
            ("400 Bad Request", format!("Error:\n{e}\n"))
        }
    }
}

/// Sends a policy or vhost request to the leader; answers once it is
/// journaled and in force on every shard (`refused` heads the reason of a
/// refusal).
pub(crate) async fn leader_answer(
    shard: &Rc<Shard>,
    request: Request,
    text: String,
    refused: &str,
) -> (&'static str, String) {
    match shard.request(crate::shard::leader::LEADER, request).await {
        Reply::Done(Ok(())) => ("200 OK", text),
        Reply::Done(Err(e)) => (
            "400 Bad Request",
            format!(
                "{text}Error:\n{refused}{}\n",
                e.text.split_once(" - ").map_or(e.text.as_str(), |(_, t)| t)
            ),
        ),
        other => ("500 Internal Server Error", format!("{other:?}\n")),
    }
}

/// The limit a `POST /set_…` request changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitChange {
    /// `POST /set_disk_free_limit/<bytes>`.
    DiskFreeLimit(u64),
    /// `POST /set_vm_memory_high_watermark/<bytes|fraction>`, in bytes.
    MemoryHighWatermark(u64),
}

impl LimitChange {
    /// What the change does, in rabbitmqctl's words.
    pub fn describe(&self) -> String {
        match self {
            LimitChange::DiskFreeLimit(b) => format!("Setting disk free limit to {b} bytes"),
            LimitChange::MemoryHighWatermark(b) => {
                format!("Setting memory high watermark to {b} bytes")
            }
        }
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq)]
pub enum Route {
    Listing(&'static str),
    Set(LimitChange),
    SetPolicy(crate::storage::definitions::PolicyDef),
    ClearPolicy(String),
    Vhost(vhosts::VhostRoute),
    /// A users / permissions command or listing (`users`).
    Users(users::Command),
    ReloadTls,
    /// HTTP status line and body.
    Error(&'static str, String),
}

/// Maps a request's method and path to what it asks for.
pub fn route(method: &str, path: &str) -> Route {
    let path = path.trim_start_matches('/');
    if let Some(name) = LISTINGS.iter().find(|l| **l == path) {
        return Route::Listing(name);
    }
    if path == "reload_tls" {
        return match method {
            "POST" => Route::ReloadTls,
            _ => Route::Error(
                "405 Method Not Allowed",
                "reload_tls changes the broker: use POST\n".into(),
            ),
        };
    }
    let (command, value) = path.split_once('/').unwrap_or((path, ""));
    if let Some(r) = vhosts::route(command, value) {
        if method != "POST" {
            return Route::Error(
                "405 Method Not Allowed",
                format!("{command} changes the broker: use POST\n"),
            );
        }
        return r
            .map(Route::Vhost)
            .unwrap_or_else(|e| Route::Error("400 Bad Request", format!("Error:\n{e}\n")));
    }
    if let Some(r) = users::route(method, command, value) {
        return r.map_or_else(|(status, body)| Route::Error(status, body), Route::Users);
    }
    if command == "set_policy" || command == "clear_policy" {
        if method != "POST" {
            return Route::Error(
                "405 Method Not Allowed",
                format!("{command} changes the broker: use POST\n"),
            );
        }
        let parsed = if command == "set_policy" {
            policy::parse_set(value).map(Route::SetPolicy)
        } else {
            policy::decode(value)
                .filter(|n| !n.is_empty() && !n.contains('/'))
                .map(Route::ClearPolicy)
                .ok_or_else(|| "expected a policy name".to_string())
        };
        return parsed
            .unwrap_or_else(|e| Route::Error("400 Bad Request", format!("Error:\n{e}\n")));
    }
    let (parse, expected): (fn(&str) -> Option<LimitChange>, &str) = match command {
        "set_disk_free_limit" => (
            |v| crate::shard::alarms::parse_disk_free_limit(v).map(LimitChange::DiskFreeLimit),
            "bytes",
        ),
        "set_vm_memory_high_watermark" => (
            |v| crate::shard::alarms::parse_watermark(v).map(LimitChange::MemoryHighWatermark),
            "bytes, or a fraction of RAM such as 0.4",
        ),
        _ => {
            return Route::Error(
                "404 Not Found",
                format!(
                    "unknown listing '{path}'; try one of: {}\n",
                    LISTINGS.join(", ")
                ),
            )
        }
    };
    if method != "POST" {
        return Route::Error(
            "405 Method Not Allowed",
            format!("{command} changes the broker: use POST /{command}/<value>\n"),
        );
    }
    match parse(value) {
        Some(change) => Route::Set(change),
        None => Route::Error(
            "400 Bad Request",
            format!("invalid value '{value}' for {command} (expected {expected})\n"),
        ),
    }
}

/// Every shard's snapshot, in shard order.
pub async fn gather(shard: &Rc<Shard>) -> Vec<ShardSnapshot> {
    let mut out = Vec::with_capacity(shard.count as usize);
    for id in 0..shard.count {
        if let Reply::Snapshot(s) = shard.request(id, Request::Snapshot).await {
            out.push(*s);
        }
    }
    out
}

/// Answers a listing with columns (`admin::columns`): JSON lines, one
/// array of the `columns` asked for (comma-separated; none: the listing's
/// defaults) per row; an unknown column is refused with rabbitmqctl's
/// text (400).
async fn rows_answer(
    shard: &Rc<Shard>,
    listing: &columns::Listing,
    wanted: Option<&str>,
    vhost: &str,
) -> (&'static str, String) {
    let words: Vec<&str> = wanted
        .map(|w| w.split(',').filter(|c| !c.is_empty()).collect())
        .unwrap_or_default();
    let selected = match listing.select(&words) {
        Ok(s) => s,
        Err(unknown) => {
            return (
                "400 Bad Request",
                format!("{}\n", columns::unsupported(&unknown)),
            )
        }
    };
    // An unknown vhost has no rows, as in rabbitmqctl.
    let id = vhosts::resolve(shard, vhost).ok();
    let snapshots = gather(shard).await;
    let body = rows::render(listing, &selected, shard, id, &snapshots);
    ("200 OK", String::from_utf8(body).unwrap_or_default())
}

/// The percent-decoded value of `key` in a request path's query.
pub fn query_param(path: &str, key: &str) -> Option<String> {
    let (_, query) = path.split_once('?')?;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| policy::decode(v)).flatten()
    })
}

/// `list_policies -p VHOST`: rabbitmqctl's title, header and rows.
pub fn render_policies(shard: &Shard, vhost: VhostId) -> String {
    let mut out = String::new();
    let meta = shard.meta.borrow();
    let vhost_name = meta.vhost_name(vhost);
    let _ = writeln!(out, "Listing policies for vhost \"{vhost_name}\" ...");
    out.push_str("vhost\tname\tpattern\tapply-to\tdefinition\tpriority\n");
    let mut ps: Vec<_> = meta
        .vhosts
        .get(&vhost)
        .map(|v| v.policies.iter().map(|p| &p.def).collect())
        .unwrap_or_default();
    ps.sort_by(|a, b| a.name.cmp(&b.name));
    for p in ps {
        let _ = writeln!(
            out,
            "{vhost_name}\t{}\t{}\t{}\t{}\t{}",
            p.name,
            p.pattern,
            p.apply_to,
            policy::to_json(&crate::protocol::types::FieldValue::Table(
                p.definition.clone()
            )),
            p.priority
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(r: Route) -> &'static str {
        match r {
            Route::Error(status, _) => status,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn listings_are_read_with_get() {
        assert_eq!(route("GET", "/queues"), Route::Listing("queues"));
        assert_eq!(route("GET", "/counters"), Route::Listing("counters"));
        assert_eq!(status(route("GET", "/nothing")), "404 Not Found");
        assert_eq!(status(route("GET", "/")), "404 Not Found");
    }

    #[test]
    fn limits_are_set_with_post() {
        assert_eq!(
            route("POST", "/set_disk_free_limit/1"),
            Route::Set(LimitChange::DiskFreeLimit(1))
        );
        assert_eq!(
            route("POST", "/set_vm_memory_high_watermark/1000000000"),
            Route::Set(LimitChange::MemoryHighWatermark(1_000_000_000))
        );
        // A fraction is of this machine's memory, as for the flag.
        assert_eq!(
            route("POST", "/set_vm_memory_high_watermark/0.4"),
            Route::Set(LimitChange::MemoryHighWatermark(
                crate::shard::alarms::parse_watermark("0.4").unwrap()
            ))
        );
        assert_eq!(
            LimitChange::DiskFreeLimit(7).describe(),
            "Setting disk free limit to 7 bytes"
        );
    }

    #[test]
    fn bad_limit_requests_are_refused() {
        assert_eq!(
            status(route("GET", "/set_disk_free_limit/1")),
            "405 Method Not Allowed"
        );
        for path in [
            "/set_disk_free_limit",
            "/set_disk_free_limit/",
            "/set_disk_free_limit/-1",
            "/set_disk_free_limit/1.5",
            "/set_disk_free_limit/1/2",
            "/set_vm_memory_high_watermark/1.5",
            "/set_vm_memory_high_watermark/lots",
        ] {
            assert_eq!(status(route("POST", path)), "400 Bad Request", "{path}");
        }
        assert_eq!(status(route("POST", "/set_nothing/1")), "404 Not Found");
    }
}
