//! The admin side of vhosts: `POST /add_vhost/NAME`, `POST
//! /delete_vhost/NAME`, `POST /set_vhost_limits/JSON`, `POST
//! /clear_vhost_limits`, and the `vhost_limits` listing (`vhosts` is a
//! listing with columns, `admin::rows`),
//! worded as rabbitmqctl's `add_vhost`, `delete_vhost`, `list_vhosts`,
//! `set_vhost_limits`, `clear_vhost_limits` and `list_vhost_limits`.
//! Every request may name its vhost with `?vhost=NAME` (percent-encoded;
//! `/` when absent), as rabbitmqctl's `-p`; the listings of queues,
//! exchanges, bindings and policies show that vhost only.

use super::policy::{decode, parse_json_object};
use crate::broker::vhost::{valid_name, VhostId, VhostLimits, DEFAULT_VHOST};
use crate::protocol::types::{FieldValue, ShortStr};
use crate::shard::envelope::Request;
use crate::shard::Shard;
use std::rc::Rc;

/// A vhost request (the vhost of `set_vhost_limits` / `clear_vhost_limits`
/// is the request's `?vhost=`).
#[derive(Debug, PartialEq)]
pub enum VhostRoute {
    Add(String),
    Delete(String),
    SetLimits(VhostLimits, String),
    ClearLimits,
}

/// Splits `?vhost=…` off a request path: the path and the vhost named (`/`
/// when none; `None` when the query does not decode).
pub fn split_query(path: &str) -> (&str, Option<String>) {
    let Some((path, query)) = path.split_once('?') else {
        return (path, Some(DEFAULT_VHOST.to_string()));
    };
    let vhost = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("vhost="))
        .map_or(Some(DEFAULT_VHOST.to_string()), decode);
    (path, vhost)
}

/// Parses a vhost command (`command/value` of the path); `None` when the
/// command is not a vhost command.
pub fn route(command: &str, value: &str) -> Option<Result<VhostRoute, String>> {
    let name = || {
        decode(value)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| "expected a vhost name".to_string())
            .and_then(|n| valid_name(&n).map(|_| n))
    };
    Some(match command {
        "add_vhost" => name().map(VhostRoute::Add),
        "delete_vhost" => name().map(VhostRoute::Delete),
        "set_vhost_limits" => decode(value)
            .ok_or_else(|| "bad percent-encoding".to_string())
            .and_then(|json| parse_limits(&json).map(|l| VhostRoute::SetLimits(l, json))),
        "clear_vhost_limits" => Ok(VhostRoute::ClearLimits),
        _ => return None,
    })
}

/// `{"max-connections": N, "max-queues": N}` as rabbitmqctl takes it: a
/// negative value removes that limit; other keys are refused.
pub fn parse_limits(json: &str) -> Result<VhostLimits, String> {
    let table = parse_json_object(json)?;
    let mut limits = VhostLimits::default();
    for (k, v) in &table.0 {
        let n = match v {
            FieldValue::I64(n) => *n,
            other => return Err(format!("limit '{k}' must be an integer, got {other:?}")),
        };
        let n = if n < 0 {
            None
        } else {
            Some(u32::try_from(n).map_err(|_| format!("limit '{k}' is too large"))?)
        };
        match k.as_str() {
            "max-connections" => limits.max_connections = n,
            "max-queues" => limits.max_queues = n,
            other => return Err(format!("unrecognised vhost limit '{other}'")),
        }
    }
    Ok(limits)
}

/// Serves a vhost request through the leader; (status, body) as
/// rabbitmqctl words it.
pub async fn answer(shard: &Rc<Shard>, r: VhostRoute, vhost: &str) -> (&'static str, String) {
    let Some(vhost_short) = ShortStr::try_from_string(vhost.to_string()) else {
        return ("400 Bad Request", "Error:\nvhost name too long\n".into());
    };
    let (text, request) = match r {
        VhostRoute::Add(name) => (
            format!("Adding vhost \"{name}\" ...\n"),
            Request::AddVhost {
                name: ShortStr::try_from_string(name).unwrap_or_default(),
            },
        ),
        VhostRoute::Delete(name) => (
            format!("Deleting vhost \"{name}\" ...\n"),
            Request::DeleteVhost {
                name: ShortStr::try_from_string(name).unwrap_or_default(),
            },
        ),
        VhostRoute::SetLimits(limits, json) => (
            format!("Setting vhost limits to \"{json}\" for vhost \"{vhost}\" ...\n"),
            Request::SetVhostLimits {
                name: vhost_short,
                limits,
            },
        ),
        VhostRoute::ClearLimits => (
            format!("Clearing vhost \"{vhost}\" limits ...\n"),
            Request::SetVhostLimits {
                name: vhost_short,
                limits: VhostLimits::default(),
            },
        ),
    };
    super::leader_answer(shard, request, text, "").await
}

/// The id of the vhost a listing names, or the 404 rabbitmqctl gives.
pub fn resolve(shard: &Shard, vhost: &str) -> Result<VhostId, (&'static str, String)> {
    shard.meta.borrow().vhost_id(vhost).ok_or_else(|| {
        (
            "400 Bad Request",
            format!("Error:\nVirtual host '{vhost}' does not exist\n"),
        )
    })
}

/// `list_vhost_limits -p VHOST`: the limits as rabbitmqctl prints them
/// (an empty line when there are none).
pub fn render_limits(shard: &Shard, vhost: VhostId, name: &str) -> String {
    let limits = shard
        .meta
        .borrow()
        .vhosts
        .get(&vhost)
        .map(|v| v.limits)
        .unwrap_or_default();
    let mut parts = Vec::new();
    if let Some(n) = limits.max_connections {
        parts.push(format!("\"max-connections\":{n}"));
    }
    if let Some(n) = limits.max_queues {
        parts.push(format!("\"max-queues\":{n}"));
    }
    let body = if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    };
    format!("Listing limits for vhost \"{name}\" ...\n{body}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_the_vhost() {
        assert_eq!(split_query("/queues"), ("/queues", Some("/".into())));
        assert_eq!(
            split_query("/queues?vhost=a%2Fb"),
            ("/queues", Some("a/b".into()))
        );
        assert_eq!(split_query("/queues?vhost=%zz"), ("/queues", None));
    }

    #[test]
    fn limits_parse_as_rabbitmqctl_takes_them() {
        assert_eq!(
            parse_limits(r#"{"max-connections": 2, "max-queues": 5}"#),
            Ok(VhostLimits {
                max_connections: Some(2),
                max_queues: Some(5)
            })
        );
        assert_eq!(
            parse_limits(r#"{"max-queues": -1}"#),
            Ok(VhostLimits::default())
        );
        assert!(parse_limits(r#"{"max-channels": 1}"#).is_err());
        assert!(parse_limits(r#"{"max-queues": "x"}"#).is_err());
        assert!(parse_limits("[]").is_err());
    }

    #[test]
    fn vhost_commands_route() {
        assert_eq!(
            route("add_vhost", "v1"),
            Some(Ok(VhostRoute::Add("v1".into())))
        );
        assert_eq!(
            route("delete_vhost", "a%2Fb"),
            Some(Ok(VhostRoute::Delete("a/b".into())))
        );
        assert!(matches!(route("add_vhost", ""), Some(Err(_))));
        assert_eq!(
            route("clear_vhost_limits", ""),
            Some(Ok(VhostRoute::ClearLimits))
        );
        assert_eq!(route("list_queues", ""), None);
    }
}
