//! `warren ctl <command> [--admin HOST:PORT]`: fetches a listing from the
//! broker's admin endpoint and prints it, or changes a resource alarm
//! limit. Commands follow rabbitmqctl's names: list_queues, list_exchanges,
//! list_bindings, list_connections, list_channels, list_consumers, status
//! (the live counters), set_disk_free_limit <bytes> and
//! set_vm_memory_high_watermark <fraction | bytes | absolute bytes>,
//! set_policy, clear_policy and list_policies; add_vhost, delete_vhost,
//! list_vhosts, set_vhost_limits, clear_vhost_limits and
//! list_vhost_limits; reload_tls. `-p VHOST` names the vhost, as in rabbitmqctl.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub const USAGE: &str = "usage: warren ctl <command> [-p VHOST] [--admin HOST:PORT]

commands:
  list_queues | list_exchanges | list_bindings | list_connections
  list_channels | list_consumers | status | list_policies | list_vhosts
  add_vhost NAME | delete_vhost NAME
  set_vhost_limits DEFINITION   {\"max-connections\": N, \"max-queues\": N}
                                (a negative N removes that limit)
  clear_vhost_limits | list_vhost_limits
  set_policy NAME PATTERN DEFINITION [--priority N] [--apply-to queues|exchanges|all]
                      set a policy (DEFINITION: a JSON object)
  clear_policy NAME   remove a policy
  add_user NAME PASSWORD [--pre-hashed-password] | delete_user NAME
  change_password NAME PASSWORD | authenticate_user NAME PASSWORD
  set_user_tags NAME [TAG...] | list_users
  set_permissions [-p VHOST] USER CONF WRITE READ | clear_permissions [-p VHOST] USER
  list_permissions [-p VHOST] | list_user_permissions USER
  set_topic_permissions [-p VHOST] USER EXCHANGE WRITE READ
  clear_topic_permissions [-p VHOST] USER [EXCHANGE]
  list_topic_permissions [-p VHOST] | list_user_topic_permissions USER
  set_disk_free_limit BYTES
                      block publishers when the data dir's disk has less free
  set_vm_memory_high_watermark FRACTION | BYTES | absolute BYTES
                      block publishers above this RSS (a fraction of RAM such
                      as 0.4, or bytes; 0 disables the memory alarm)
  export_definitions FILE | import_definitions [FILE]
                      RabbitMQ's definitions JSON (- : stdout / stdin)
  reload_tls          read the TLS certificate and key files again: new amqps
                      connections get them, open ones keep theirs

  -p VHOST            the vhost (default /) of listings, policies and limits
  --admin HOST:PORT   the broker's admin endpoint (env WARREN_ADMIN, default 127.0.0.1:15672)";

/// The admin listing a ctl command reads.
pub fn listing_of(command: &str) -> Option<&'static str> {
    Some(match command {
        "list_queues" => "queues",
        "list_exchanges" => "exchanges",
        "list_bindings" => "bindings",
        "list_connections" => "connections",
        "list_channels" => "channels",
        "list_consumers" => "consumers",
        "status" => "counters",
        "list_policies" => "policies",
        "list_vhosts" => "vhosts",
        "list_vhost_limits" => "vhost_limits",
        _ => return None,
    })
}

/// The HTTP method and path of a ctl command with its arguments (the words
/// after `ctl`, without `--admin`; `-p VHOST` anywhere); None for a usage
/// error. Values are checked here with the broker's own parsers, and again
/// by the broker. The users and permissions commands carry their vhost in
/// the path (`admin::users`), the others as `?vhost=`.
pub fn request_of(words: &[&str]) -> Option<(&'static str, String)> {
    if let Some(r) = crate::admin::users::request_of(words) {
        return Some(r);
    }
    let mut vhost = None;
    let mut rest = Vec::new();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        match *w {
            "-p" | "--vhost" => vhost = Some(*it.next()?),
            other => rest.push(other),
        }
    }
    let (method, mut path) = request_without_vhost(&rest)?;
    if let Some(v) = vhost {
        path = format!("{path}?vhost={}", enc(v));
    }
    Some((method, path))
}

fn request_without_vhost(words: &[&str]) -> Option<(&'static str, String)> {
    match words {
        ["clear_vhost_limits"] => Some(("POST", "/clear_vhost_limits".into())),
        ["reload_tls"] => Some(("POST", "/reload_tls".to_string())),
        [command] if listing_of(command).is_some() => {
            listing_of(command).map(|l| ("GET", format!("/{l}")))
        }
        ["set_disk_free_limit", bytes] => crate::shard::alarms::parse_disk_free_limit(bytes)
            .map(|_| ("POST", format!("/set_disk_free_limit/{bytes}"))),
        // rabbitmqctl's form for bytes.
        ["set_vm_memory_high_watermark", "absolute", bytes] => bytes
            .parse::<u64>()
            .ok()
            .map(|_| ("POST", format!("/set_vm_memory_high_watermark/{bytes}"))),
        ["set_vm_memory_high_watermark", value] => crate::shard::alarms::parse_watermark(value)
            .map(|_| ("POST", format!("/set_vm_memory_high_watermark/{value}"))),
        ["clear_policy", name] => Some(("POST", format!("/clear_policy/{}", enc(name)))),
        ["add_vhost", name] => Some(("POST", format!("/add_vhost/{}", enc(name)))),
        ["delete_vhost", name] => Some(("POST", format!("/delete_vhost/{}", enc(name)))),
        ["set_vhost_limits", json] => Some(("POST", format!("/set_vhost_limits/{}", enc(json)))),
        ["set_policy", rest @ ..] => set_policy_request(rest),
        _ => None,
    }
}

fn enc(s: &str) -> String {
    crate::admin::policy::encode(s)
}

/// `set_policy NAME PATTERN DEFINITION [--priority N] [--apply-to WHAT]`
/// (rabbitmqctl's order; the options may come anywhere).
fn set_policy_request(words: &[&str]) -> Option<(&'static str, String)> {
    let mut positional = Vec::new();
    let mut priority = "0";
    let mut apply_to = "all";
    let mut it = words.iter();
    while let Some(w) = it.next() {
        match *w {
            "--priority" => priority = it.next()?,
            "--apply-to" => apply_to = it.next()?,
            other => positional.push(other),
        }
    }
    let [name, pattern, definition] = positional[..] else {
        return None;
    };
    Some((
        "POST",
        format!(
            "/set_policy/{}/{}/{}/{}/{}",
            enc(name),
            enc(pattern),
            enc(definition),
            enc(priority),
            enc(apply_to)
        ),
    ))
}

/// Runs `warren ctl ARGS`; returns the process exit code.
pub fn run(args: &[String]) -> i32 {
    let mut admin = std::env::var("WARREN_ADMIN").unwrap_or_else(|_| "127.0.0.1:15672".into());
    let mut words = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--admin" => match it.next() {
                Some(v) => admin = v.clone(),
                None => return usage(),
            },
            "-h" | "--help" => return usage(),
            other => words.push(other),
        }
    }
    if let Some(code) = crate::admin::definitions::run(&admin, &words) {
        return code;
    }
    let Some((method, path)) = request_of(&words) else {
        return usage();
    };
    match request(&admin, method, &path) {
        Ok(body) => {
            print!("{body}");
            0
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            // rabbitmqctl's exit statuses for a refused change.
            let text = e.to_string();
            let (status, body) = text.split_once('\n').unwrap_or(("", &text));
            eprint!("{body}");
            match status {
                "404" => 67,
                "409" => 70,
                "401" => 65,
                _ => 69,
            }
        }
        Err(e) => {
            eprintln!("warren ctl: cannot reach the broker's admin endpoint at {admin}: {e}");
            1
        }
    }
}

fn usage() -> i32 {
    eprintln!("{USAGE}");
    2
}

/// GET /<listing> from the admin endpoint; returns the body.
pub fn fetch(admin: &str, listing: &str) -> std::io::Result<String> {
    request(admin, "GET", &format!("/{listing}"))
}

/// Sends one request to the admin endpoint; returns the body of a 200
/// response (any other status is an error carrying the body's text).
pub fn request(admin: &str, method: &str, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(admin)?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let request = format!("{method} {path} HTTP/1.0\r\nHost: {admin}\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.take(64 << 20).read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("malformed response"))?;
    // A refused change: the status (which picks the exit code), a line
    // break, then the body.
    for status in ["400", "401", "404", "409"] {
        if head.starts_with(&format!("HTTP/1.0 {status}")) && !body.starts_with("unknown listing") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{status}\n{body}"),
            ));
        }
    }
    if !head.starts_with("HTTP/1.0 200") {
        return Err(std::io::Error::other(body.trim().to_string()));
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_map_to_listings() {
        assert_eq!(listing_of("list_queues"), Some("queues"));
        assert_eq!(listing_of("status"), Some("counters"));
        assert_eq!(listing_of("nope"), None);
    }

    #[test]
    fn commands_map_to_requests() {
        let req = |words: &[&str]| request_of(words);
        assert_eq!(req(&["list_queues"]), Some(("GET", "/queues".into())));
        assert_eq!(req(&["status"]), Some(("GET", "/counters".into())));
        assert_eq!(
            req(&["set_disk_free_limit", "1"]),
            Some(("POST", "/set_disk_free_limit/1".into()))
        );
        assert_eq!(
            req(&["set_vm_memory_high_watermark", "0.6"]),
            Some(("POST", "/set_vm_memory_high_watermark/0.6".into()))
        );
        assert_eq!(
            req(&["set_vm_memory_high_watermark", "2000000000"]),
            Some(("POST", "/set_vm_memory_high_watermark/2000000000".into()))
        );
        assert_eq!(
            req(&["set_vm_memory_high_watermark", "absolute", "2000000000"]),
            Some(("POST", "/set_vm_memory_high_watermark/2000000000".into()))
        );
        assert_eq!(
            req(&["list_queues", "-p", "v/1"]),
            Some(("GET", "/queues?vhost=v%2F1".into()))
        );
        assert_eq!(
            req(&["set_permissions", "-p", "v1", "u", ".*", ".*", ".*"]),
            Some(("POST", "/set_permissions/v1/u/.%2A/.%2A/.%2A".into()))
        );
        for bad in [
            &[][..],
            &["list_queues", "-p"],
            &["nope"],
            &["list_queues", "extra"],
            &["set_disk_free_limit"],
            &["set_disk_free_limit", "-5"],
            &["set_disk_free_limit", "1", "2"],
            &["set_vm_memory_high_watermark", "1.5"],
            &["set_vm_memory_high_watermark", "absolute", "0.4"],
            &["set_vm_memory_high_watermark", "absolute"],
        ] {
            assert_eq!(req(bad), None, "{bad:?}");
        }
    }
}
