//! The access endpoints' changes: read from a PUT's body or a DELETE's
//! path (`put`, `delete`), then carried out on shard 0 as the leader's
//! requests (`apply`), answering whether the object was created.

use super::Route;
use crate::broker::auth::{AuthRequest, PermissionDef, TopicPermissionDef, UserDef};
use crate::broker::error::code;
use crate::broker::vhost::VhostLimits;
use crate::protocol::types::ShortStr;
use crate::shard::envelope::{Reply, Request};
use crate::shard::leader::LEADER;
use crate::shard::Shard;
use crate::storage::definitions::PolicyDef;
use serde_json::Value;
use std::rc::Rc;

/// A change, as shard 0 carries it out.
#[derive(Debug)]
pub enum Change {
    PutUser(UserDef),
    DeleteUser(String),
    PutVhost(String),
    DeleteVhost(String),
    PutPermission(PermissionDef),
    DeletePermission {
        user: String,
        vhost: String,
    },
    PutTopicPermission(TopicPermissionDef),
    DeleteTopicPermissions {
        user: String,
        vhost: String,
        exchange: Option<String>,
    },
    PutPolicy(String, PolicyDef),
    DeletePolicy(String, String),
    /// One limit (`max-connections`, `max-queues`); None clears it.
    SetLimit {
        vhost: String,
        name: String,
        value: Option<i64>,
    },
    /// Every limit of a vhost (the `vhost-limits` parameter); None clears them.
    SetLimits {
        vhost: String,
        limits: Option<VhostLimits>,
    },
}

fn field(body: &Value, key: &str) -> Result<String, Option<String>> {
    match body.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Some(format!("'{key}' must be a string"))),
        None => Err(Some(format!("[{{key_missing,{key}}}]"))),
    }
}

/// The change a PUT asks for; Err(None): the method is not allowed here.
pub(super) fn put(route: &Route, body: &Value) -> Result<Change, Option<String>> {
    Ok(match route {
        Route::User(name) => {
            Change::PutUser(crate::management::import::parse_user(body, name).map_err(Some)?)
        }
        Route::Vhost(name) => {
            crate::broker::vhost::valid_name(name).map_err(Some)?;
            Change::PutVhost(name.clone())
        }
        Route::Permission(vhost, user) => Change::PutPermission(PermissionDef {
            user: user.clone(),
            vhost: vhost.clone(),
            configure: field(body, "configure")?,
            write: field(body, "write")?,
            read: field(body, "read")?,
        }),
        Route::TopicPermission(vhost, user, None) => {
            Change::PutTopicPermission(TopicPermissionDef {
                user: user.clone(),
                vhost: vhost.clone(),
                exchange: field(body, "exchange")?,
                write: field(body, "write")?,
                read: field(body, "read")?,
            })
        }
        Route::Policy(vhost, name) => Change::PutPolicy(
            vhost.clone(),
            crate::management::import::parse_policy(body, name).map_err(Some)?,
        ),
        Route::VhostLimit(vhost, name) => {
            let value = body
                .get("value")
                .ok_or(Some("[{key_missing,value}]".to_string()))?;
            let n = value.as_i64().ok_or_else(|| {
                Some(format!(
                    "Validation failed\n\n{name} should be a number, actually was {value}\n"
                ))
            })?;
            Change::SetLimit {
                vhost: vhost.clone(),
                name: name.clone(),
                value: Some(n),
            }
        }
        Route::Parameter(component, vhost, name) => match component.as_str() {
            "policy" => return Err(Some("policies may not be set using this method".into())),
            "vhost-limits" if name == "limits" => {
                let value = body
                    .get("value")
                    .ok_or(Some("[{key_missing,value}]".to_string()))?;
                let limits = crate::admin::vhosts::parse_limits(&value.to_string())
                    .map_err(|e| Some(format!("Validation failed\n\n{e}\n")))?;
                Change::SetLimits {
                    vhost: vhost.clone(),
                    limits: Some(limits),
                }
            }
            _ => {
                return Err(Some(format!(
                    "Validation failed\n\ncomponent {component} not found\n"
                )))
            }
        },
        _ => return Err(None),
    })
}

pub(super) fn delete(route: &Route) -> Result<Change, Option<String>> {
    Ok(match route {
        Route::User(name) => Change::DeleteUser(name.clone()),
        Route::Vhost(name) => Change::DeleteVhost(name.clone()),
        Route::Permission(vhost, user) => Change::DeletePermission {
            user: user.clone(),
            vhost: vhost.clone(),
        },
        Route::TopicPermission(vhost, user, exchange) => Change::DeleteTopicPermissions {
            user: user.clone(),
            vhost: vhost.clone(),
            exchange: exchange.clone(),
        },
        Route::Policy(vhost, name) => Change::DeletePolicy(vhost.clone(), name.clone()),
        Route::VhostLimit(vhost, name) => Change::SetLimit {
            vhost: vhost.clone(),
            name: name.clone(),
            value: None,
        },
        Route::Parameter(c, vhost, name) if c == "vhost-limits" && name == "limits" => {
            Change::SetLimits {
                vhost: vhost.clone(),
                limits: None,
            }
        }
        Route::Parameter(c, ..) if c == "policy" => {
            return Err(Some("policies may not be cleared using this method".into()))
        }
        Route::Parameter(..) => return Err(Some("Parameter does not exist".into())),
        _ => return Err(None),
    })
}

/// Carries out a change on shard 0: Ok(true) when it created the object,
/// or (HTTP status, reason).
pub(super) async fn apply(shard: &Rc<Shard>, change: Change) -> Result<bool, (u16, String)> {
    let missing = |what: &str| Err((404, what.to_string()));
    let (created, request) = {
        let meta = shard.meta.borrow();
        let auth = meta.auth.defs();
        let short = |v: &str| {
            ShortStr::try_from_string(v.to_string()).ok_or((400, "name too long".to_string()))
        };
        let vhost_id = |v: &str| meta.vhost_id(v).ok_or((404, "vhost_not_found".to_string()));
        match change {
            Change::PutUser(u) => (
                auth.user(&u.name).is_none(),
                Request::Auth(AuthRequest::PutUser(u)),
            ),
            Change::DeleteUser(name) if auth.user(&name).is_none() => return missing("Not Found"),
            Change::DeleteUser(name) => (false, Request::Auth(AuthRequest::DeleteUser(name))),
            Change::PutVhost(name) => (
                meta.vhost_id(&name).is_none(),
                Request::AddVhost {
                    name: short(&name)?,
                },
            ),
            Change::DeleteVhost(name) if meta.vhost_id(&name).is_none() => {
                return missing("Not Found")
            }
            Change::DeleteVhost(name) => (
                false,
                Request::DeleteVhost {
                    name: short(&name)?,
                },
            ),
            Change::PutPermission(p) => {
                if auth.user(&p.user).is_none() || meta.vhost_id(&p.vhost).is_none() {
                    return Err((400, "vhost_or_user_not_found".into()));
                }
                (
                    auth.permission(&p.user, &p.vhost).is_none(),
                    Request::Auth(AuthRequest::SetPermissions(p)),
                )
            }
            Change::DeletePermission { user, vhost }
                if auth.permission(&user, &vhost).is_none() =>
            {
                return missing("Not Found")
            }
            Change::DeletePermission { user, vhost } => (
                false,
                Request::Auth(AuthRequest::ClearPermissions { user, vhost }),
            ),
            Change::PutTopicPermission(t) => {
                if auth.user(&t.user).is_none() || meta.vhost_id(&t.vhost).is_none() {
                    return Err((400, "vhost_or_user_not_found".into()));
                }
                let existed = auth
                    .topic_permissions
                    .values()
                    .any(|x| x.user == t.user && x.vhost == t.vhost);
                (!existed, Request::Auth(AuthRequest::SetTopicPermissions(t)))
            }
            Change::DeleteTopicPermissions {
                user,
                vhost,
                exchange,
            } => {
                let any = auth.topic_permissions.values().any(|t| {
                    t.user == user
                        && t.vhost == vhost
                        && exchange.as_ref().is_none_or(|x| *x == t.exchange)
                });
                if !any {
                    return missing("Not Found");
                }
                (
                    false,
                    Request::Auth(AuthRequest::ClearTopicPermissions {
                        user,
                        vhost,
                        exchange,
                    }),
                )
            }
            Change::PutPolicy(vhost, def) => {
                let id = vhost_id(&vhost)?;
                let existed = meta
                    .vhosts
                    .get(&id)
                    .is_some_and(|v| v.policies.iter().any(|p| p.def.name == def.name));
                (!existed, Request::SetPolicy { vhost: id, def })
            }
            Change::DeletePolicy(vhost, name) => {
                let id = vhost_id(&vhost)?;
                if !meta
                    .vhosts
                    .get(&id)
                    .is_some_and(|v| v.policies.iter().any(|p| p.def.name == name))
                {
                    return missing("Not Found");
                }
                (false, Request::ClearPolicy { vhost: id, name })
            }
            Change::SetLimit { vhost, name, value } => {
                let id = vhost_id(&vhost)?;
                let mut limits = meta.vhosts.get(&id).map(|v| v.limits).unwrap_or_default();
                let n = value.and_then(|n| u32::try_from(n).ok());
                match name.as_str() {
                    "max-connections" => limits.max_connections = n,
                    "max-queues" => limits.max_queues = n,
                    other => {
                        return Err((400, format!("Validation failed\n\nUnrecognised terms [{{<<\"{other}\">>,{}}}] in vhost-limits\n", value.unwrap_or(0))))
                    }
                }
                (
                    false,
                    Request::SetVhostLimits {
                        name: short(&vhost)?,
                        limits,
                    },
                )
            }
            Change::SetLimits { vhost, limits } => {
                let id = vhost_id(&vhost)?;
                let current = meta.vhosts.get(&id).map(|v| v.limits).unwrap_or_default();
                if limits.is_none() && current.is_empty() {
                    return missing("Not Found");
                }
                (
                    current.is_empty(),
                    Request::SetVhostLimits {
                        name: short(&vhost)?,
                        limits: limits.unwrap_or_default(),
                    },
                )
            }
        }
    };
    match shard.request(LEADER, request).await {
        Reply::Done(Ok(())) => Ok(created),
        Reply::Done(Err(e)) => {
            let reason = e
                .text
                .split_once(" - ")
                .map_or(e.text.as_str(), |(_, t)| t)
                .to_string();
            Err((if e.code == code::NOT_FOUND { 404 } else { 400 }, reason))
        }
        other => Err((500, format!("unexpected reply {other:?}"))),
    }
}
