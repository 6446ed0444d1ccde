//! `warren ctl`, rabbitmqctl's command line over the broker's management
//! port: the global options (`-n`/`--node`, `--admin`, `WARREN_ADMIN`,
//! `-q`, `-s`, `--formatter`, `--no-table-headers`, `-t`), each command's
//! request, rabbitmqctl's exit codes and its error when no broker answers.
//! Listings with columns (`admin::columns`) arrive as JSON lines and are
//! printed row by row (`admin::format`); the other commands' answers are
//! printed as the broker worded them.

use super::columns::Listing;
use super::format::{self, Output};
use super::listings;
use super::options::{exit, parse, Invocation};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

pub const USAGE: &str =
    "usage: warren ctl [-n NODE] [-q] [-s] [--formatter json|table] [--no-table-headers]
                 [-t SECONDS] <command> [-p VHOST] [arguments]

listings (rabbitmqctl's columns; none named: rabbitmqctl's defaults):
  list_queues [column ...]       name durable auto_delete exclusive arguments policy state
                                 type messages messages_ready messages_unacknowledged
                                 messages_ready_ram message_bytes message_bytes_ready
                                 message_bytes_unacknowledged memory consumers pid slave_pids
                                 synchronised_slave_pids leader members online, and Warren's
                                 shard messages_paged_out single_active_consumer_tag
                                 (default: name messages)
  list_exchanges [column ...]    name type durable auto_delete internal arguments policy
                                 messages_delayed (default: name type)
  list_bindings [column ...]     source_name source_kind destination_name destination_kind
                                 routing_key arguments
  list_connections [column ...]  name user vhost peer_host peer_port state channels protocol
                                 shard (default: user peer_host peer_port state)
  list_channels [column ...]     pid name connection number user vhost consumer_count
                                 messages_unacknowledged prefetch_count confirm
                                 (default: pid user consumer_count messages_unacknowledged)
  list_consumers [column ...]    queue_name channel_pid consumer_tag ack_required
                                 prefetch_count active activity_status messages_unacknowledged
  list_vhosts [column ...]       name tracing (default: name)
  list_users | list_permissions | list_policies | list_user_permissions USER
  list_topic_permissions | list_user_topic_permissions USER | list_vhost_limits
  status                         the node's counters, per shard and in total

changes:
  delete_queue NAME [--if-empty|-e] [--if-unused|-u] | purge_queue NAME
  close_connection NAME REASON   NAME as list_connections name shows it
  add_vhost NAME | delete_vhost NAME
  set_vhost_limits DEFINITION   {\"max-connections\": N, \"max-queues\": N}
                                (a negative N removes that limit)
  clear_vhost_limits
  set_policy NAME PATTERN DEFINITION [--priority N] [--apply-to queues|exchanges|all]
                      set a policy (DEFINITION: a JSON object)
  clear_policy NAME   remove a policy
  add_user NAME PASSWORD [--pre-hashed-password] | delete_user NAME
  change_password NAME PASSWORD | authenticate_user NAME PASSWORD
  set_user_tags NAME [TAG...]
  set_permissions [-p VHOST] USER CONF WRITE READ | clear_permissions [-p VHOST] USER
  set_topic_permissions [-p VHOST] USER EXCHANGE WRITE READ
  clear_topic_permissions [-p VHOST] USER [EXCHANGE]
  set_disk_free_limit BYTES
                      block publishers when the data dir's disk has less free
  set_vm_memory_high_watermark FRACTION | BYTES | absolute BYTES
                      block publishers above this RSS (a fraction of RAM such
                      as 0.4, or bytes; 0 disables the memory alarm)
  export_definitions FILE | import_definitions [FILE]
                      RabbitMQ's definitions JSON (- : stdout / stdin)
  reload_tls          read the TLS certificate and key files again: new amqps
                      connections get them, open ones keep theirs

options:
  -p, --vhost VHOST   the vhost (default /) of listings, queues, policies and limits
  -n, --node NODE     the broker's management port: HOST:PORT, or NAME@HOST for
                      HOST:15672 (also --admin HOST:PORT; env WARREN_ADMIN;
                      default 127.0.0.1:15672)
  -q, --quiet         no informational lines
  -s, --silent        no informational lines and no table header row
  --formatter FMT     table (default) or json
  --no-table-headers  no table header row
  -t, --timeout SECS  how long to wait for the broker (default 60)

exit codes (rabbitmqctl's): 0 ok, 64 usage, 65 data error, 67 no such user,
69 node unavailable or object missing, 70 internal error, 75 timeout or busy";

/// The admin listing of a fixed-format (text) listing command; the
/// listings with columns are `listings::LISTINGS`, the users' and
/// permissions' `users::request_of`.
pub fn listing_of(command: &str) -> Option<&'static str> {
    Some(match command {
        "list_policies" => "policies",
        "list_vhost_limits" => "vhost_limits",
        _ => return None,
    })
}

/// The HTTP method and path of a ctl command with its arguments (the words
/// after `ctl`, without the global options; `-p VHOST` anywhere); None for
/// a usage error (an unknown column too: `run` says which). Values are
/// checked here with the broker's own parsers, and again by the broker.
/// The users and permissions commands carry their vhost in the path
/// (`admin::users`), the others as `?vhost=`.
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
        let sep = if path.contains('?') { '&' } else { '?' };
        path = format!("{path}{sep}vhost={}", enc(v));
    }
    Some((method, path))
}

/// `delete_queue NAME [--if-empty|-e] [--if-unused|-u]`.
fn delete_queue_request(words: &[&str]) -> Option<(&'static str, String)> {
    let (mut if_empty, mut if_unused, mut names) = (false, false, Vec::new());
    for w in words {
        match *w {
            "--if-empty" | "-e" => if_empty = true,
            "--if-unused" | "-u" => if_unused = true,
            other => names.push(other),
        }
    }
    let [name] = names[..] else { return None };
    let mut path = format!("/delete_queue/{}", enc(name));
    let flags: Vec<&str> = [(if_unused, "if_unused=true"), (if_empty, "if_empty=true")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| *f)
        .collect();
    if !flags.is_empty() {
        path = format!("{path}?{}", flags.join("&"));
    }
    Some(("POST", path))
}

fn request_without_vhost(words: &[&str]) -> Option<(&'static str, String)> {
    match words {
        ["clear_vhost_limits"] => Some(("POST", "/clear_vhost_limits".into())),
        ["reload_tls"] => Some(("POST", "/reload_tls".to_string())),
        [command] if listing_of(command).is_some() => {
            listing_of(command).map(|l| ("GET", format!("/{l}")))
        }
        [command, cols @ ..] if listings::listing(command).is_some() => {
            let listing = listings::listing(command)?;
            let cols = listing.select(cols).ok()?;
            Some((
                "GET",
                format!("{}?columns={}", listing.path, cols.join(",")),
            ))
        }
        ["delete_queue", rest @ ..] => delete_queue_request(rest),
        ["purge_queue", name] => Some(("POST", format!("/purge_queue/{}", enc(name)))),
        ["close_connection", name, reason] => Some((
            "POST",
            format!("/close_connection/{}/{}", enc(name), enc(reason)),
        )),
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
    let default = std::env::var("WARREN_ADMIN").unwrap_or_else(|_| "127.0.0.1:15672".into());
    let inv = match parse(args, default) {
        Ok(inv) => inv,
        Err(e) => return usage_error(&format!("Error (argument validation): {e}"), args),
    };
    if inv.help {
        println!("{USAGE}");
        return exit::OK;
    }
    let words: Vec<&str> = inv.words.iter().map(String::as_str).collect();
    let Some(verb) = words.first().copied() else {
        return usage_error("", args);
    };
    if let Some(code) = crate::admin::definitions::run(&inv.node, &words) {
        return code;
    }
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let code = match listings::listing(verb) {
        Some(listing) => run_listing(&inv, listing, &words, &mut out),
        None => run_command(&inv, verb, &words, &mut out),
    };
    let _ = out.flush();
    code
}

/// Prints a usage error as rabbitmqctl does; 64.
fn usage_error(text: &str, args: &[String]) -> i32 {
    if !text.is_empty() {
        eprintln!("{text}");
        eprintln!("Arguments given:\n\t{}\n", args.join(" "));
    }
    eprintln!("Usage: warren ctl --help");
    exit::USAGE
}

/// A listing with columns: checked, fetched and printed row by row.
fn run_listing(inv: &Invocation, listing: &Listing, words: &[&str], out: &mut impl Write) -> i32 {
    let mut vhost = "/";
    let mut cols = Vec::new();
    let mut it = words[1..].iter();
    while let Some(w) = it.next() {
        match *w {
            "-p" | "--vhost" if listing.vhost_scoped => match it.next() {
                Some(v) => vhost = v,
                None => {
                    return usage_error("Error (argument validation): -p needs a value", &inv.words)
                }
            },
            other => cols.push(other),
        }
    }
    let cols = match listing.select(&cols) {
        Ok(c) => c,
        Err(unknown) => return usage_error(&super::columns::unsupported(&unknown), &inv.words),
    };
    let path = format!(
        "{}?columns={}&vhost={}",
        listing.path,
        cols.join(","),
        enc(vhost)
    );
    let verb = listing.verb;
    let body = match send(inv, "GET", &path) {
        Ok((200, body)) => body,
        Ok((status, mut body)) => return refused(verb, status, &read_all(&mut body)),
        Err(e) => return unreachable(inv, verb, &e),
    };
    let printed = if verb == "status" {
        print_status(out, inv, &cols, body)
    } else {
        format::print_title(out, listing, vhost, &inv.node, inv.output)
            .and_then(|()| format::print_rows(out, listing, &cols, body, inv.output))
            .map(|_| ())
    };
    match printed {
        Ok(()) => exit::OK,
        Err(e) if is_timeout(&e) => unreachable(inv, verb, &e),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("Error:\n{e}");
            exit::SOFTWARE
        }
    }
}

/// `status`: the node, its shards and their counters (a table per shard
/// and the total), or the same as one JSON object.
fn print_status(
    out: &mut impl Write,
    inv: &Invocation,
    cols: &[&str],
    body: impl BufRead,
) -> std::io::Result<()> {
    let listing = listings::listing("status").expect("status is a listing");
    let mut rows = Vec::new();
    for line in body.lines() {
        let line = line?;
        if !line.is_empty() {
            let cells: Vec<serde_json::Value> = serde_json::from_str(&line)
                .map_err(|e| std::io::Error::other(format!("bad row from the broker: {e}")))?;
            rows.push(cells);
        }
    }
    let shards = rows.len().saturating_sub(1);
    if inv.output.json {
        let object = |cells: &Vec<serde_json::Value>| {
            cols.iter()
                .zip(cells)
                .map(|(c, v)| (c.to_string(), v.clone()))
                .collect::<serde_json::Map<_, _>>()
        };
        let (total, per_shard) = rows
            .split_last()
            .map_or((None, &[][..]), |(t, s)| (Some(t), s));
        let v = serde_json::json!({
            "node": inv.node,
            "shards": shards,
            "counters": per_shard.iter().map(object).collect::<Vec<_>>(),
            "total": total.map(object),
        });
        return writeln!(out, "{v}");
    }
    if inv.output.info() {
        writeln!(out, "{}", listing.title("", &inv.node))?;
    }
    writeln!(
        out,
        "Shards: {shards}\n\nCounters (per shard, then the total)"
    )?;
    let mut text = Vec::new();
    for cells in &rows {
        text.push(format!(
            "{}\n",
            serde_json::to_string(cells).unwrap_or_default()
        ));
    }
    let quiet = format::Output {
        quiet: true,
        ..inv.output
    };
    format::print_rows(out, listing, cols, text.concat().as_bytes(), quiet).map(|_| ())
}

/// Every other command: its request, and the broker's answer printed.
fn run_command(inv: &Invocation, verb: &str, words: &[&str], out: &mut impl Write) -> i32 {
    let Some((method, path)) = request_of(words) else {
        if !known(verb) {
            eprintln!("\nCommand '{verb}' not found. \nUsage: warren ctl --help\n");
            return exit::USAGE;
        }
        return usage_error("Error (argument validation): wrong arguments", &inv.words);
    };
    if inv.output.info() {
        if let Some(banner) = banner(verb, words) {
            let _ = writeln!(out, "{banner}");
        }
    }
    let body = match send(inv, method, &path) {
        Ok((200, mut body)) => read_all(&mut body),
        Ok((status, mut body)) => {
            let _ = out.flush();
            return refused(verb, status, &read_all(&mut body));
        }
        Err(e) => return unreachable(inv, verb, &e),
    };
    let text_listing = verb.starts_with("list_") && verb != "list_vhost_limits";
    let printed = if text_listing {
        format::print_text_table(out, &body, inv.output)
    } else if inv.output.info() {
        write!(out, "{body}")
    } else {
        write!(out, "{}", format::without_banner(&body))
    };
    match printed {
        Ok(()) => exit::OK,
        Err(_) => exit::OK,
    }
}

/// Whether `verb` is a ctl command at all (for rabbitmqctl's "not found").
fn known(verb: &str) -> bool {
    USAGE
        .split(|c: char| c.is_whitespace() || c == '|')
        .any(|w| w == verb)
}

/// The informational line rabbitmqctl prints before a queue change.
fn banner(verb: &str, words: &[&str]) -> Option<String> {
    let vhost = words
        .windows(2)
        .find(|w| w[0] == "-p" || w[0] == "--vhost")
        .map_or("/", |w| w[1]);
    let has = |a: &str, b: &str| words.iter().any(|w| *w == a || *w == b);
    let name = words[1..]
        .iter()
        .enumerate()
        .find(|(i, w)| !w.starts_with('-') && (*i == 0 || !matches!(words[*i], "-p" | "--vhost")))
        .map(|(_, w)| *w)?;
    match verb {
        "delete_queue" => {
            let mut conditions = Vec::new();
            if has("--if-empty", "-e") {
                conditions.push("if queue is empty");
            }
            if has("--if-unused", "-u") {
                conditions.push("if queue is unused");
            }
            let when = if conditions.is_empty() {
                String::new()
            } else {
                format!(" {}", conditions.join(" and "))
            };
            Some(format!(
                "Deleting queue '{name}' on vhost '{vhost}'{when} ..."
            ))
        }
        "purge_queue" => Some(format!("Purging queue '{name}' in vhost '{vhost}' ...")),
        "close_connection" => Some(format!(
            "Closing connection {name}, reason: {}...",
            words.get(2).unwrap_or(&"")
        )),
        _ => None,
    }
}

/// A refused request: the broker's text on stderr and rabbitmqctl's exit
/// code for it.
fn refused(verb: &str, status: u16, body: &str) -> i32 {
    eprint!("{body}");
    match (verb, status) {
        ("delete_queue", 404 | 409) => exit::USAGE,
        ("purge_queue", 404) => exit::UNAVAILABLE,
        (_, 400) if listings::listing(verb).is_some() => exit::USAGE,
        (_, 503) => exit::TEMP_FAIL,
        (_, 404) => exit::NO_USER,
        (_, 409) => exit::SOFTWARE,
        (_, 401) => exit::DATA_ERROR,
        _ => exit::UNAVAILABLE,
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// No answer: rabbitmqctl's words with the address tried; 69, or 75 when
/// the broker took longer than the timeout.
fn unreachable(inv: &Invocation, verb: &str, e: &std::io::Error) -> i32 {
    if is_timeout(e) {
        eprintln!(
            "Error: operation {verb} on node {} timed out. Timeout value used: {}",
            inv.node,
            inv.timeout.as_millis()
        );
        return exit::TEMP_FAIL;
    }
    eprintln!(
        "Error: unable to perform an operation on node '{node}'. Please see diagnostics information and suggestions below.

Most common reasons for this are:

 * Target node is unreachable (e.g. due to hostname resolution, TCP connection or firewall issues)
 * Target node is not running
 * The management port is not enabled (--management-port) or is another port

DIAGNOSTICS
===========

attempted to contact: [{node}]

{node}:
  * {e}",
        node = inv.node
    );
    exit::UNAVAILABLE
}

fn read_all(body: &mut impl Read) -> String {
    let mut s = String::new();
    let _ = body.take(MAX_TEXT).read_to_string(&mut s);
    s
}

/// The most a text answer is read (listings with columns are streamed).
const MAX_TEXT: u64 = 64 << 20;

/// Sends one request to the management port; returns the status and the
/// body, to be read (until the server closes: HTTP/1.0).
pub fn send(
    inv: &Invocation,
    method: &str,
    path: &str,
) -> std::io::Result<(u16, BufReader<TcpStream>)> {
    let addrs: Vec<_> = inv
        .node
        .to_socket_addrs()
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot resolve {}: {e}", inv.node)))?
        .collect();
    let addr = addrs
        .first()
        .ok_or_else(|| std::io::Error::other(format!("{} resolves to no address", inv.node)))?;
    let mut stream = TcpStream::connect_timeout(addr, inv.timeout.min(Duration::from_secs(10)))
        .map_err(|e| std::io::Error::new(e.kind(), format!("TCP connection failed: {e}")))?;
    stream.set_read_timeout(Some(inv.timeout))?;
    let request = format!("{method} {path} HTTP/1.0\r\nHost: {}\r\n\r\n", inv.node);
    stream.write_all(request.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.by_ref().take(8192).read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other(format!("malformed response: {line:?}")))?;
    // The headers, up to the blank line (bounded).
    for _ in 0..100 {
        line.clear();
        if reader.by_ref().take(8192).read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
    }
    Ok((status, reader))
}

/// GET /<listing> from the admin endpoint; returns the body of a 200.
pub fn fetch(admin: &str, listing: &str) -> std::io::Result<String> {
    let inv = Invocation {
        node: admin.to_string(),
        output: Output::default(),
        timeout: Duration::from_secs(15),
        words: Vec::new(),
        help: false,
    };
    match send(&inv, "GET", &format!("/{listing}"))? {
        (200, mut body) => Ok(read_all(&mut body)),
        (status, mut body) => Err(std::io::Error::other(format!(
            "{status}: {}",
            read_all(&mut body).trim()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_commands_are_told_apart() {
        assert!(known("purge_queue") && known("list_vhost_limits") && !known("list_nothing"));
    }

    #[test]
    fn commands_map_to_listings() {
        assert_eq!(listing_of("list_policies"), Some("policies"));
        assert_eq!(listing_of("list_queues"), None, "a listing with columns");
        assert_eq!(listing_of("nope"), None);
    }

    #[test]
    fn commands_map_to_requests() {
        let req = |words: &[&str]| request_of(words);
        assert_eq!(
            req(&["list_queues"]),
            Some(("GET", "/queues?columns=name,messages".into()))
        );
        assert_eq!(
            req(&["list_queues", "consumers", "name"]),
            Some(("GET", "/queues?columns=consumers,name".into()))
        );
        assert_eq!(
            req(&["delete_queue", "q/1", "--if-empty", "-u"]),
            Some((
                "POST",
                "/delete_queue/q%2F1?if_unused=true&if_empty=true".into()
            ))
        );
        assert_eq!(
            req(&["purge_queue", "-p", "v", "q"]),
            Some(("POST", "/purge_queue/q?vhost=v".into()))
        );
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
            Some(("GET", "/queues?columns=name,messages&vhost=v%2F1".into()))
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
            &["delete_queue"],
            &["delete_queue", "a", "b"],
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
