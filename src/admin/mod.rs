//! Operations: the admin requests of `warren ctl` (plain text, answered on
//! shard 0; the management server carries them, for loopback peers only,
//! on the management port) and the `warren ctl` client that prints its listings like
//! `rabbitmqctl list_queues` does — queues (ready, unacked, consumers),
//! exchanges, bindings, connections, channels, consumers, and the live
//! counters. `curl http://127.0.0.1:<management-port>/queues` works too.
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
//! (`route`) and formatting (`render`) are pure so they are unit-tested
//! alone.

pub mod client;
pub mod policy;
pub mod users;
pub mod vhosts;

use crate::broker::exchange::Destination;
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
    let (path, vhost) = vhosts::split_query(path);
    let Some(vhost) = vhost else {
        return ("400 Bad Request", "bad vhost\n".into());
    };
    match route(method, path) {
        Route::Listing("vhosts") => ("200 OK", vhosts::render_vhosts(shard)),
        Route::Listing(name) => match vhosts::resolve(shard, &vhost) {
            Ok(id) if name == "vhost_limits" => {
                ("200 OK", vhosts::render_limits(shard, id, &vhost))
            }
            Ok(id) => {
                let snapshots = gather(shard).await;
                ("200 OK", render(name, shard, id, &snapshots))
            }
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

/// Formats one listing: a title line, a header line, tab-separated rows;
/// queues, exchanges, bindings, consumers and policies of `vhost` only.
pub fn render(listing: &str, shard: &Shard, vhost: VhostId, snapshots: &[ShardSnapshot]) -> String {
    let mut out = String::new();
    let vhost_name = shard.meta.borrow().vhost_name(vhost);
    if listing == "policies" {
        let _ = writeln!(out, "Listing policies for vhost \"{vhost_name}\" ...");
    } else {
        let title = if listing == "counters" {
            "Counters"
        } else {
            listing
        };
        let _ = writeln!(out, "Listing {title} for vhost {vhost_name} ...");
    }
    match listing {
        "queues" => {
            out.push_str("name\tmessages_ready\tmessages_unacknowledged\tconsumers\tdurable\tauto_delete\texclusive\tshard\tmessages_ready_ram\tmessages_paged_out\tstate\tmessage_bytes_ready\tsingle_active_consumer_tag\tpolicy\n");
            for s in snapshots {
                for q in s.queues.iter().filter(|q| q.name.vhost == vhost) {
                    let _ = writeln!(
                        out,
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        q.name,
                        q.messages,
                        q.unacked,
                        q.consumers.len(),
                        q.durable,
                        q.auto_delete,
                        q.exclusive,
                        s.shard,
                        q.messages_ram,
                        q.messages_paged_out,
                        q.state,
                        q.message_bytes_ready,
                        q.single_active_consumer
                            .as_ref()
                            .map_or("", |k| k.tag.as_str()),
                        q.policy
                    );
                }
            }
        }
        "exchanges" => {
            // messages_delayed: as the delayed-message plugin's column in
            // the management UI (0 for other types).
            out.push_str("name\ttype\tdurable\tauto_delete\tinternal\tmessages_delayed\tpolicy\n");
            let meta = shard.meta.borrow();
            let mut xs: Vec<_> = meta
                .topology(vhost)
                .into_iter()
                .flat_map(|t| t.exchanges())
                .collect();
            xs.sort_by(|a, b| a.name.cmp(&b.name));
            for x in xs {
                let delayed: u64 = snapshots
                    .iter()
                    .flat_map(|s| s.delayed.iter())
                    .filter(|(v, name, _)| *v == vhost && *name == x.name)
                    .map(|(_, _, n)| n)
                    .sum();
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    x.name,
                    x.kind.as_str(),
                    x.durable,
                    x.auto_delete,
                    x.internal,
                    delayed,
                    meta.topology(vhost)
                        .and_then(|t| t.exchange_policy(&x.name))
                        .unwrap_or("")
                );
            }
        }
        "bindings" => {
            out.push_str(
                "source_name\tdestination_kind\tdestination_name\trouting_key\targuments\n",
            );
            let meta = shard.meta.borrow();
            for b in meta
                .topology(vhost)
                .map(|t| t.bindings())
                .unwrap_or_default()
            {
                let (kind, dest) = match &b.destination {
                    Destination::Queue(q) => ("queue", q),
                    Destination::Exchange(x) => ("exchange", x),
                };
                let _ = writeln!(
                    out,
                    "{}\t{kind}\t{dest}\t{}\t{:?}",
                    b.source, b.routing_key, b.arguments.0
                );
            }
        }
        "connections" => {
            out.push_str("name\tuser\tshard\tchannels\n");
            for s in snapshots {
                for c in &s.connections {
                    let _ = writeln!(
                        out,
                        "{}\t{}\t{}\t{}",
                        c.peer,
                        c.user,
                        s.shard,
                        c.channels.len()
                    );
                }
            }
        }
        "channels" => {
            out.push_str("connection\tnumber\tconsumer_count\tmessages_unacknowledged\tprefetch_count\tconfirm\n");
            for s in snapshots {
                for c in &s.connections {
                    for ch in &c.channels {
                        let _ = writeln!(
                            out,
                            "{}\t{}\t{}\t{}\t{}\t{}",
                            c.peer, ch.id, ch.consumers, ch.unacked, ch.prefetch, ch.confirm
                        );
                    }
                }
            }
        }
        "consumers" => {
            out.push_str("queue_name\tconsumer_tag\tchannel\tconnection\tack_required\tprefetch_count\tunacked\tactive\n");
            for s in snapshots {
                for q in s.queues.iter().filter(|q| q.name.vhost == vhost) {
                    for (key, no_ack, prefetch, unacked) in &q.consumers {
                        let _ = writeln!(
                            out,
                            "{}\t{}\t{}\t{}.{}\t{}\t{}\t{}\t{}",
                            q.name,
                            key.tag,
                            key.channel,
                            key.shard,
                            key.conn,
                            !no_ack,
                            prefetch,
                            unacked,
                            // RabbitMQ's `active`: every consumer, but on a
                            // single-active-consumer queue only that one.
                            q.single_active_consumer.as_ref().is_none_or(|k| k == key)
                        );
                    }
                }
            }
        }
        "policies" => {
            out.push_str("vhost\tname\tpattern\tapply-to\tdefinition\tpriority\n");
            let meta = shard.meta.borrow();
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
        }
        "counters" => {
            out.push_str("shard\tpublished\trouted_copies\tunroutable\tdelivered\tacked\tconfirmed\tnacked\tconnections_opened\tconnections_closed\tpaged_out\tpaged_in\tfsyncs\tresident_bytes\tdead_lettered\tdead_letter_cycles\twatchdog_fires\n");
            let mut total = crate::shard::counters::CountersSnapshot::default();
            let mut row = |name: String, c: &crate::shard::counters::CountersSnapshot| {
                let _ = writeln!(
                    out,
                    "{name}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    c.published,
                    c.routed_copies,
                    c.unroutable,
                    c.delivered,
                    c.acked,
                    c.confirmed,
                    c.nacked,
                    c.connections_opened,
                    c.connections_closed,
                    c.paged_out,
                    c.paged_in,
                    c.fsyncs,
                    c.resident_bytes,
                    c.dead_lettered,
                    c.dead_letter_cycles,
                    c.watchdog_fires
                );
            };
            for s in snapshots {
                row(s.shard.to_string(), &s.counters);
                total.merge(&s.counters);
            }
            row("total".into(), &total);
        }
        _ => {}
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
