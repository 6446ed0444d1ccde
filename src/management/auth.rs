//! Who a management API request comes from: HTTP basic auth (the password
//! is checked against the user store on shard 0, see `bridge`), the
//! loopback-only users (`--loopback-users`, as RabbitMQ's
//! `loopback_users`), and what RabbitMQ's user tags let a user do.

use super::api::Resource;
use base64::Engine;
use std::net::IpAddr;

/// An authenticated user.
#[derive(Debug, PartialEq)]
pub struct User {
    pub name: String,
    pub tags: Vec<String>,
}

/// The user name and password of an `Authorization: Basic` header, or
/// RabbitMQ's refusal reason.
pub fn credentials(header: Option<&str>) -> Result<(String, String), &'static str> {
    let encoded = header
        .and_then(|h| h.strip_prefix("Basic "))
        .ok_or("Login failed")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| "Login failed")?;
    let text = String::from_utf8(decoded).map_err(|_| "Login failed")?;
    let (name, password) = text.split_once(':').ok_or("Login failed")?;
    Ok((name.to_string(), password.to_string()))
}

/// A user whose password checked out: refused when loopback-only and the
/// peer is not a loopback address.
pub fn admit(
    name: String,
    tags: Vec<String>,
    peer: IpAddr,
    loopback_users: &[String],
) -> Result<User, &'static str> {
    let loopback = match peer {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    if !loopback && loopback_users.contains(&name) {
        return Err("User can only log in via localhost");
    }
    Ok(User { name, tags })
}

/// RabbitMQ's tag rules for reads: `management` (or any tag above it) may
/// use the API, `monitoring` also the node-wide health checks,
/// `administrator` everything (the users' own rules are `access`'s).
pub fn may_read(user: &User, resource: &Resource) -> Result<(), &'static str> {
    let has = |t: &str| user.tags.iter().any(|u| u == t);
    let admin = has("administrator");
    let monitoring = admin || has("monitoring");
    let management = monitoring || has("management") || has("policymaker");
    match resource {
        Resource::AlarmsCheck
        | Resource::LocalAlarmsCheck
        | Resource::Nodes
        | Resource::Node(_)
            if !monitoring =>
        {
            Err("Not monitor user")
        }
        _ if !management => Err("Not management user"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(s: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    #[test]
    fn credentials_come_from_basic_auth() {
        assert_eq!(
            credentials(Some(&basic("guest:a:b"))),
            Ok(("guest".into(), "a:b".into()))
        );
        assert_eq!(credentials(None), Err("Login failed"));
        assert_eq!(credentials(Some("Basic %%%")), Err("Login failed"));
        assert_eq!(credentials(Some(&basic("no-colon"))), Err("Login failed"));
        assert_eq!(credentials(Some("Bearer x")), Err("Login failed"));
    }

    #[test]
    fn loopback_users_only_from_loopback() {
        let guests = vec!["guest".to_string()];
        let admit_from = |ip: &str, users: &[String]| {
            admit("guest".into(), vec![], ip.parse().unwrap(), users).map(|u| u.name)
        };
        assert_eq!(admit_from("127.0.0.1", &guests), Ok("guest".into()));
        assert_eq!(admit_from("::ffff:127.0.0.1", &guests), Ok("guest".into()));
        assert_eq!(
            admit_from("10.0.0.1", &guests),
            Err("User can only log in via localhost")
        );
        assert!(admit_from("10.0.0.1", &[]).is_ok());
    }

    #[test]
    fn tags_decide_reads() {
        let user = |tags: &[&str]| User {
            name: "u".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        };
        assert_eq!(
            may_read(&user(&[]), &Resource::Overview),
            Err("Not management user")
        );
        assert!(may_read(&user(&["management"]), &Resource::Overview).is_ok());
        assert_eq!(
            may_read(&user(&["management"]), &Resource::AlarmsCheck),
            Err("Not monitor user")
        );
        assert!(may_read(&user(&["monitoring"]), &Resource::AlarmsCheck).is_ok());
    }
}
