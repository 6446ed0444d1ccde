//! The admin side of users and permissions, rabbitmqctl's verbs over the
//! admin endpoint: `POST /add_user/NAME/PASSWORD` (or `/add_user_hashed/
//! NAME/HASH`, RabbitMQ's `--pre-hashed-password`), `/delete_user/NAME`,
//! `/change_password/NAME/PASSWORD`, `/authenticate_user/NAME/PASSWORD`,
//! `/set_user_tags/NAME[/TAG…]`, `/set_permissions/VHOST/USER/CONF/WRITE/
//! READ`, `/clear_permissions/VHOST/USER`, `/set_topic_permissions/VHOST/
//! USER/EXCHANGE/WRITE/READ`, `/clear_topic_permissions/VHOST/USER[/
//! EXCHANGE]`, and the listings `GET /users`, `/permissions/VHOST`,
//! `/user_permissions/USER`, `/topic_permissions/VHOST`,
//! `/user_topic_permissions/USER` with rabbitmqctl's titles and columns.
//! Every path part is percent-encoded. Changes go to the leader and are
//! answered once journaled and in force on every shard. The ctl side
//! (`request_of`) builds these paths from rabbitmqctl's arguments.

use crate::admin::policy::{decode, encode};
use crate::broker::auth::AuthRequest;
use crate::broker::auth::{password, PermissionDef, TopicPermissionDef, UserDef};
use crate::broker::error::code;
use crate::shard::envelope::{Reply, Request};
use crate::shard::Shard;
use std::fmt::Write;
use std::rc::Rc;

/// A users / permissions request, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Change(AuthRequest),
    Authenticate { name: String, password: String },
    Users,
    Permissions { vhost: String },
    UserPermissions { user: String },
    TopicPermissions { vhost: String },
    UserTopicPermissions { user: String },
}

const CHANGES: &[&str] = &[
    "add_user",
    "add_user_hashed",
    "delete_user",
    "change_password",
    "authenticate_user",
    "set_user_tags",
    "set_permissions",
    "clear_permissions",
    "set_topic_permissions",
    "clear_topic_permissions",
];

const LISTINGS: &[&str] = &[
    "users",
    "permissions",
    "user_permissions",
    "topic_permissions",
    "user_topic_permissions",
];

/// Parses a request for this module; None when the path is not one of
/// its commands. Err is an HTTP status and body.
pub fn route(
    method: &str,
    command: &str,
    value: &str,
) -> Option<Result<Command, (&'static str, String)>> {
    let is_change = CHANGES.contains(&command);
    if !is_change && !LISTINGS.contains(&command) {
        return None;
    }
    if is_change && method != "POST" {
        return Some(Err((
            "405 Method Not Allowed",
            format!("{command} changes the broker: use POST\n"),
        )));
    }
    let parts: Option<Vec<String>> = if value.is_empty() {
        Some(Vec::new())
    } else {
        value.split('/').map(decode).collect()
    };
    let bad = |expected: &str| {
        (
            "400 Bad Request",
            format!("Error:\nexpected {command}/{expected}\n"),
        )
    };
    let Some(parts) = parts else {
        return Some(Err((
            "400 Bad Request",
            "Error:\nbad percent-encoding\n".into(),
        )));
    };
    let p: Vec<&str> = parts.iter().map(String::as_str).collect();
    let user = |name: &str, hash: String| UserDef {
        name: name.to_string(),
        password_hash: hash,
        hashing_algorithm: password::SHA256.to_string(),
        tags: Vec::new(),
    };
    let change = |r: AuthRequest| Ok(Command::Change(r));
    Some(match (command, &p[..]) {
        ("add_user", [name, pass]) if !name.is_empty() => {
            change(AuthRequest::AddUser(user(name, password::hash(pass))))
        }
        ("add_user_hashed", [name, hash]) if !name.is_empty() => {
            change(AuthRequest::AddUser(user(name, hash.to_string())))
        }
        ("delete_user", [name]) => change(AuthRequest::DeleteUser(name.to_string())),
        ("change_password", [name, pass]) => change(AuthRequest::ChangePassword {
            name: name.to_string(),
            password_hash: password::hash(pass),
        }),
        ("authenticate_user", [name, pass]) => Ok(Command::Authenticate {
            name: name.to_string(),
            password: pass.to_string(),
        }),
        ("set_user_tags", [name, tags @ ..]) => change(AuthRequest::SetTags {
            name: name.to_string(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }),
        ("set_permissions", [vhost, user, configure, write, read]) => {
            change(AuthRequest::SetPermissions(PermissionDef {
                user: user.to_string(),
                vhost: vhost.to_string(),
                configure: configure.to_string(),
                write: write.to_string(),
                read: read.to_string(),
            }))
        }
        ("clear_permissions", [vhost, user]) => change(AuthRequest::ClearPermissions {
            user: user.to_string(),
            vhost: vhost.to_string(),
        }),
        ("set_topic_permissions", [vhost, user, exchange, write, read]) => {
            change(AuthRequest::SetTopicPermissions(TopicPermissionDef {
                user: user.to_string(),
                vhost: vhost.to_string(),
                exchange: exchange.to_string(),
                write: write.to_string(),
                read: read.to_string(),
            }))
        }
        ("clear_topic_permissions", [vhost, user, rest @ ..]) if rest.len() <= 1 => {
            change(AuthRequest::ClearTopicPermissions {
                user: user.to_string(),
                vhost: vhost.to_string(),
                exchange: rest.first().map(|x| x.to_string()),
            })
        }
        ("users", []) => Ok(Command::Users),
        ("permissions", [vhost]) => Ok(Command::Permissions {
            vhost: vhost.to_string(),
        }),
        ("user_permissions", [user]) => Ok(Command::UserPermissions {
            user: user.to_string(),
        }),
        ("topic_permissions", [vhost]) => Ok(Command::TopicPermissions {
            vhost: vhost.to_string(),
        }),
        ("user_topic_permissions", [user]) => Ok(Command::UserTopicPermissions {
            user: user.to_string(),
        }),
        _ => Err(bad("<arguments>")),
    })
}

/// What rabbitmqctl prints before doing a change.
fn title(r: &AuthRequest) -> String {
    match r {
        AuthRequest::AddUser(u) | AuthRequest::PutUser(u) => {
            format!("Adding user \"{}\" ...\n", u.name)
        }
        AuthRequest::DeleteUser(n) => format!("Deleting user \"{n}\" ...\n"),
        AuthRequest::ChangePassword { name, .. } => {
            format!("Changing password for user \"{name}\" ...\n")
        }
        AuthRequest::SetTags { name, tags } => format!(
            "Setting tags for user \"{name}\" to [{}] ...\n",
            tags.join(", ")
        ),
        AuthRequest::SetPermissions(p) => format!(
            "Setting permissions for user \"{}\" in vhost \"{}\" ...\n",
            p.user, p.vhost
        ),
        AuthRequest::ClearPermissions { user, vhost } => {
            format!("Clearing permissions for user \"{user}\" in vhost \"{vhost}\" ...\n")
        }
        AuthRequest::SetTopicPermissions(t) => format!(
            "Setting topic permissions on \"{}\" for user \"{}\" in vhost \"{}\" ...\n",
            t.exchange, t.user, t.vhost
        ),
        AuthRequest::ClearTopicPermissions {
            user,
            vhost,
            exchange: Some(x),
        } => format!(
            "Clearing topic permissions on \"{x}\" for user \"{user}\" in vhost \"{vhost}\" ...\n"
        ),
        AuthRequest::ClearTopicPermissions { user, vhost, .. } => {
            format!("Clearing topic permissions for user \"{user}\" in vhost \"{vhost}\" ...\n")
        }
    }
}

/// Runs a command; returns the HTTP status and body. Refusals map to
/// statuses that `warren ctl` turns into rabbitmqctl's exit codes (404:
/// no such user or vhost, 67; 409: already exists, 70; 401: failed
/// authentication, 65; 400: invalid, 69).
pub async fn handle(shard: &Rc<Shard>, command: Command) -> (&'static str, String) {
    match command {
        Command::Change(r) => {
            let text = title(&r);
            let added = matches!(r, AuthRequest::AddUser(_));
            match shard
                .request(crate::shard::leader::LEADER, Request::Auth(r))
                .await
            {
                Reply::Done(Ok(())) if added => (
                    "200 OK",
                    format!("{text}Done. Don't forget to grant the user permissions to some virtual hosts! See 'rabbitmqctl help set_permissions' to learn more.\n"),
                ),
                Reply::Done(Ok(())) => ("200 OK", text),
                Reply::Done(Err(e)) => {
                    let status = match e.code {
                        code::NOT_FOUND => "404 Not Found",
                        code::RESOURCE_LOCKED => "409 Conflict",
                        _ => "400 Bad Request",
                    };
                    let detail = e.text.split_once(" - ").map_or(e.text.as_str(), |(_, t)| t);
                    (status, format!("{text}Error:\n{detail}\n"))
                }
                other => ("500 Internal Server Error", format!("{other:?}\n")),
            }
        }
        Command::Authenticate { name, password } => {
            let text = format!("Authenticating user \"{name}\" ...\n");
            let r = shard
                .meta
                .borrow()
                .auth
                .authenticate(&name, &password)
                .map(|_| ())
                .map_err(|why| why.describe(&name));
            match r {
                Ok(()) => ("200 OK", format!("{text}Success\n")),
                Err(why) => (
                    "401 Unauthorized",
                    format!("{text}Error:\nError: failed to authenticate user \"{name}\"\n{why}\n"),
                ),
            }
        }
        listing => render(shard, &listing),
    }
}

fn render(shard: &Shard, listing: &Command) -> (&'static str, String) {
    let meta = shard.meta.borrow();
    let defs = meta.auth.defs();
    let mut out = String::new();
    match listing {
        Command::Users => {
            out.push_str("Listing users ...\nuser\ttags\n");
            for u in defs.users.values() {
                let _ = writeln!(out, "{}\t[{}]", u.name, u.tags.join(", "));
            }
        }
        Command::Permissions { vhost } => {
            let _ = write!(
                out,
                "Listing permissions for vhost \"{vhost}\" ...\nuser\tconfigure\twrite\tread\n"
            );
            for p in defs.permissions.values().filter(|p| p.vhost == *vhost) {
                let _ = writeln!(out, "{}\t{}\t{}\t{}", p.user, p.configure, p.write, p.read);
            }
        }
        Command::UserPermissions { user } | Command::UserTopicPermissions { user } => {
            if defs.user(user).is_none() {
                return (
                    "400 Bad Request",
                    format!("Error:\nUser {user} does not exist\n"),
                );
            }
            if matches!(listing, Command::UserPermissions { .. }) {
                let _ = write!(
                    out,
                    "Listing permissions for user \"{user}\" ...\nvhost\tconfigure\twrite\tread\n"
                );
                for p in defs.permissions.values().filter(|p| p.user == *user) {
                    let _ = writeln!(out, "{}\t{}\t{}\t{}", p.vhost, p.configure, p.write, p.read);
                }
            } else {
                let _ = write!(
                    out,
                    "Listing topic permissions for user \"{user}\" ...\nvhost\texchange\twrite\tread\n"
                );
                for t in defs.topic_permissions.values().filter(|t| t.user == *user) {
                    let _ = writeln!(out, "{}\t{}\t{}\t{}", t.vhost, t.exchange, t.write, t.read);
                }
            }
        }
        Command::TopicPermissions { vhost } => {
            let _ = write!(
                out,
                "Listing topic permissions for vhost \"{vhost}\" ...\nuser\texchange\twrite\tread\n"
            );
            for t in defs
                .topic_permissions
                .values()
                .filter(|t| t.vhost == *vhost)
            {
                let _ = writeln!(out, "{}\t{}\t{}\t{}", t.user, t.exchange, t.write, t.read);
            }
        }
        Command::Change(_) | Command::Authenticate { .. } => {}
    }
    ("200 OK", out)
}

/// The ctl side: the method and path of a users / permissions command
/// with rabbitmqctl's arguments (`-p VHOST` anywhere, default `/`); None
/// when it is not one, or for a usage error.
pub fn request_of(words: &[&str]) -> Option<(&'static str, String)> {
    let (command, rest) = words.split_first()?;
    let mut vhost = "/";
    let mut pre_hashed = false;
    let mut args = Vec::new();
    let mut it = rest.iter();
    while let Some(w) = it.next() {
        match *w {
            "-p" | "--vhost" => vhost = it.next()?,
            "--pre-hashed-password" => pre_hashed = true,
            other => args.push(other),
        }
    }
    let path = |name: &str, parts: &[&str]| {
        let mut p = format!("/{name}");
        for part in parts {
            p.push('/');
            p.push_str(&encode(part));
        }
        p
    };
    let post = |name: &str, parts: &[&str]| Some(("POST", path(name, parts)));
    let get = |name: &str, parts: &[&str]| Some(("GET", path(name, parts)));
    match (*command, &args[..]) {
        ("add_user", [name, pass]) if pre_hashed => post("add_user_hashed", &[name, pass]),
        ("add_user", [name, pass]) => post("add_user", &[name, pass]),
        ("delete_user", [name]) => post("delete_user", &[name]),
        ("change_password", [name, pass]) => post("change_password", &[name, pass]),
        ("authenticate_user", [name, pass]) => post("authenticate_user", &[name, pass]),
        ("set_user_tags", [name, tags @ ..]) => {
            let mut parts = vec![*name];
            parts.extend(tags.iter().copied());
            post("set_user_tags", &parts)
        }
        ("list_users", []) => get("users", &[]),
        ("set_permissions", [user, c, w, r]) => post("set_permissions", &[vhost, user, c, w, r]),
        ("clear_permissions", [user]) => post("clear_permissions", &[vhost, user]),
        ("list_permissions", []) => get("permissions", &[vhost]),
        ("list_user_permissions", [user]) => get("user_permissions", &[user]),
        ("set_topic_permissions", [user, x, w, r]) => {
            post("set_topic_permissions", &[vhost, user, x, w, r])
        }
        ("clear_topic_permissions", [user]) => post("clear_topic_permissions", &[vhost, user]),
        ("clear_topic_permissions", [user, x]) => {
            post("clear_topic_permissions", &[vhost, user, x])
        }
        ("list_topic_permissions", []) => get("topic_permissions", &[vhost]),
        ("list_user_topic_permissions", [user]) => get("user_topic_permissions", &[user]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Command {
        let (method, path) = request_of(words).expect("a request");
        let path = path.trim_start_matches('/');
        let (command, value) = path.split_once('/').unwrap_or((path, ""));
        route(method, command, value).expect("ours").expect("valid")
    }

    #[test]
    fn ctl_words_round_trip_through_the_endpoint() {
        assert_eq!(parse(&["list_users"]), Command::Users);
        assert_eq!(
            parse(&["list_permissions", "-p", "v/1"]),
            Command::Permissions {
                vhost: "v/1".into()
            }
        );
        match parse(&["set_permissions", "u", "^a/b", "", ".*"]) {
            Command::Change(AuthRequest::SetPermissions(p)) => {
                assert_eq!((p.vhost.as_str(), p.user.as_str()), ("/", "u"));
                assert_eq!((p.configure.as_str(), p.write.as_str()), ("^a/b", ""));
            }
            other => panic!("{other:?}"),
        }
        match parse(&["add_user", "u", "p w"]) {
            Command::Change(AuthRequest::AddUser(u)) => {
                assert!(password::verify(password::SHA256, &u.password_hash, "p w"))
            }
            other => panic!("{other:?}"),
        }
        match parse(&["add_user", "u", "HASH", "--pre-hashed-password"]) {
            Command::Change(AuthRequest::AddUser(u)) => assert_eq!(u.password_hash, "HASH"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse(&["set_user_tags", "u"]),
            Command::Change(AuthRequest::SetTags {
                name: "u".into(),
                tags: vec![]
            })
        );
        assert_eq!(
            parse(&["clear_topic_permissions", "-p", "/", "u", "amq.topic"]),
            Command::Change(AuthRequest::ClearTopicPermissions {
                user: "u".into(),
                vhost: "/".into(),
                exchange: Some("amq.topic".into())
            })
        );
        assert!(request_of(&["add_user", "u"]).is_none());
        assert!(request_of(&["set_permissions", "u", "a", "b"]).is_none());
        assert!(route("GET", "add_user", "a/b").unwrap().is_err());
        assert!(route("GET", "queues", "").is_none());
    }
}
