//! `warren ctl <command> [--admin HOST:PORT]`: fetches a listing from the
//! broker's admin endpoint and prints it. Commands follow rabbitmqctl's
//! names: list_queues, list_exchanges, list_bindings, list_connections,
//! list_channels, list_consumers, and status (the live counters).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub const USAGE: &str = "usage: warren ctl <list_queues|list_exchanges|list_bindings|list_connections|list_channels|list_consumers|status> [--admin HOST:PORT]

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
        _ => return None,
    })
}

/// Runs `warren ctl ARGS`; returns the process exit code.
pub fn run(args: &[String]) -> i32 {
    let mut admin = std::env::var("WARREN_ADMIN").unwrap_or_else(|_| "127.0.0.1:15672".into());
    let mut command = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--admin" => match it.next() {
                Some(v) => admin = v.clone(),
                None => return usage(),
            },
            "-h" | "--help" => return usage(),
            other if command.is_none() => command = Some(other.to_string()),
            _ => return usage(),
        }
    }
    let Some(listing) = command.as_deref().and_then(listing_of) else {
        return usage();
    };
    match fetch(&admin, listing) {
        Ok(body) => {
            print!("{body}");
            0
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
    let mut stream = TcpStream::connect(admin)?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let request = format!("GET /{listing} HTTP/1.0\r\nHost: {admin}\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.take(64 << 20).read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("malformed response"))?;
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
}
