//! `warren ctl export_definitions FILE` and `import_definitions [FILE]`,
//! as rabbitmqctl's: the broker's definitions in RabbitMQ's JSON format
//! (`-` for standard output / input; no FILE: standard input). They go to
//! the management port's plain-text requests `GET /export_definitions`
//! and `POST /import_definitions` (served by `management::transfer`, for
//! loopback peers only). An import is checked whole before anything
//! changes: a bad file changes nothing and the error names the entry.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Most bytes read from a file or the broker (the broker takes 64 MiB).
const MAX: u64 = 64 << 20;

/// Runs the command if `words` is one of these; None otherwise. Returns
/// the exit code (rabbitmqctl's: 0, 64 usage, 65 refused data, 69 no
/// broker or no file).
pub fn run(admin: &str, words: &[&str]) -> Option<i32> {
    match words {
        ["export_definitions", path] => Some(export(admin, path)),
        ["import_definitions"] => Some(import(admin, "-")),
        ["import_definitions", path] => Some(import(admin, path)),
        ["export_definitions", ..] | ["import_definitions", ..] => {
            eprintln!("usage: warren ctl export_definitions FILE | import_definitions [FILE]   (- for stdout / stdin)");
            Some(64)
        }
        _ => None,
    }
}

fn export(admin: &str, path: &str) -> i32 {
    if path != "-" {
        println!("Exporting definitions in JSON to a file at \"{path}\" ...");
    }
    let body = match send(admin, "GET", "/export_definitions", &[]) {
        Ok((200, body)) => body,
        Ok((_, body)) => {
            eprint!("{}", String::from_utf8_lossy(&body));
            return 65;
        }
        Err(e) => return unreachable(admin, e),
    };
    let written = if path == "-" {
        std::io::stdout().write_all(&body)
    } else {
        std::fs::write(path, &body)
    };
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error:\ncannot write {path}: {e}");
            73
        }
    }
}

fn import(admin: &str, path: &str) -> i32 {
    let mut file = Vec::new();
    let read = if path == "-" {
        println!("Importing definitions in JSON from standard input ...");
        std::io::stdin().take(MAX).read_to_end(&mut file)
    } else {
        println!("Importing definitions in JSON from a file at \"{path}\" ...");
        std::fs::File::open(path).and_then(|f| f.take(MAX).read_to_end(&mut file))
    };
    if let Err(e) = read {
        eprintln!("Error:\ncannot read {path}: {e}");
        return 66;
    }
    match send(admin, "POST", "/import_definitions", &file) {
        Ok((200, body)) => {
            print!("{}", String::from_utf8_lossy(&body));
            0
        }
        Ok((_, body)) => {
            eprint!("{}", String::from_utf8_lossy(&body));
            65
        }
        Err(e) => unreachable(admin, e),
    }
}

fn unreachable(admin: &str, e: std::io::Error) -> i32 {
    eprintln!("Error: unable to perform an operation on the broker at {admin}: {e}");
    69
}

/// One HTTP/1.0 request with a body; the status and the body of the answer.
fn send(admin: &str, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(admin)?;
    stream.set_read_timeout(Some(Duration::from_secs(600)))?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {admin}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.take(MAX + 4096).read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("malformed response"))?;
    let status = std::str::from_utf8(&response[..split])
        .ok()
        .and_then(|h| h.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("malformed status line"))?;
    Ok((status, response[split + 4..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_these_verbs_are_taken() {
        assert_eq!(run("127.0.0.1:1", &["list_queues"]), None);
        assert_eq!(run("127.0.0.1:1", &["export_definitions"]), Some(64));
        assert_eq!(
            run("127.0.0.1:1", &["import_definitions", "a", "b"]),
            Some(64)
        );
    }
}
