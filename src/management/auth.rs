//! Who a management API request comes from: HTTP basic auth, and what
//! RabbitMQ's user tags let that user read. Until Warren has a user store
//! the one user is guest/guest (tag `administrator`), who, as in RabbitMQ,
//! may log in only from a loopback address while listed in
//! `--loopback-users`.

use super::api::Resource;
use base64::Engine;
use std::net::IpAddr;

/// An authenticated user.
#[derive(Debug, PartialEq)]
pub struct User {
    pub name: String,
    pub tags: Vec<String>,
}

/// The user of an `Authorization` header, or RabbitMQ's refusal reason.
pub fn authenticate(
    header: Option<&str>,
    peer: IpAddr,
    loopback_users: &[String],
) -> Result<User, &'static str> {
    let encoded = header
        .and_then(|h| h.strip_prefix("Basic "))
        .ok_or("Login failed")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| "Login failed")?;
    let text = String::from_utf8(decoded).map_err(|_| "Login failed")?;
    let (name, password) = text.split_once(':').ok_or("Login failed")?;
    if (name, password) != ("guest", "guest") {
        return Err("Login failed");
    }
    if !peer.is_loopback() && loopback_users.iter().any(|u| u == name) {
        return Err("User can only log in via localhost");
    }
    Ok(User {
        name: name.to_string(),
        tags: vec!["administrator".into()],
    })
}

/// RabbitMQ's tag rules for reads: `management` (or any tag above it) sees
/// its own objects and the vhost listings, `monitoring` sees everything
/// node-wide, `administrator` everything.
pub fn may_read(user: &User, resource: &Resource) -> Result<(), &'static str> {
    let has = |t: &str| user.tags.iter().any(|u| u == t);
    let admin = has("administrator");
    let monitoring = admin || has("monitoring");
    let management = monitoring || has("management") || has("policymaker");
    match resource {
        Resource::AlarmsCheck | Resource::LocalAlarmsCheck if !monitoring => {
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
    fn guest_from_loopback_only() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let remote: IpAddr = "10.0.0.1".parse().unwrap();
        let guests = vec!["guest".to_string()];
        let h = basic("guest:guest");
        assert_eq!(
            authenticate(Some(&h), local, &guests).unwrap().name,
            "guest"
        );
        assert_eq!(
            authenticate(Some(&h), remote, &guests),
            Err("User can only log in via localhost")
        );
        assert!(authenticate(Some(&h), remote, &[]).is_ok());
        assert_eq!(
            authenticate(Some(&basic("guest:x")), local, &guests),
            Err("Login failed")
        );
        assert_eq!(authenticate(None, local, &guests), Err("Login failed"));
        assert_eq!(
            authenticate(Some("Basic %%%"), local, &guests),
            Err("Login failed")
        );
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
