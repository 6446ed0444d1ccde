//! `warren ctl` and the admin endpoint: listings and their cells.

use super::*;

/// The admin address the broker printed at start.
#[allow(dead_code)]
pub fn admin_addr(b: &Broker) -> String {
    b.log()
        .iter()
        .find_map(|l| {
            l.split("admin endpoint on ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string)
        })
        .expect("the broker prints its admin endpoint")
}

#[allow(dead_code)]
pub fn ctl(b: &Broker, command: &str) -> String {
    ctl_with(b, &[command])
}

/// The columns the tests read from a listing named without columns: more
/// than rabbitmqctl's defaults (`name messages` for queues), so that
/// [`cell`] finds them by the header.
#[allow(dead_code)]
pub fn test_columns(verb: &str) -> &'static [&'static str] {
    match verb {
        "list_queues" => &[
            "name",
            "messages_ready",
            "messages_unacknowledged",
            "consumers",
            "durable",
            "auto_delete",
            "exclusive",
            "shard",
            "messages_ready_ram",
            "messages_paged_out",
            "state",
            "message_bytes_ready",
            "single_active_consumer_tag",
            "policy",
        ],
        "list_exchanges" => &[
            "name",
            "type",
            "durable",
            "auto_delete",
            "internal",
            "messages_delayed",
            "policy",
        ],
        "list_bindings" => &[
            "source_name",
            "destination_kind",
            "destination_name",
            "routing_key",
            "arguments",
        ],
        "list_connections" => &["name", "user", "shard", "channels"],
        "list_channels" => &[
            "connection",
            "number",
            "consumer_count",
            "messages_unacknowledged",
            "prefetch_count",
            "confirm",
        ],
        "list_consumers" => &[
            "queue_name",
            "consumer_tag",
            "channel_pid",
            "ack_required",
            "prefetch_count",
            "messages_unacknowledged",
            "active",
        ],
        _ => &[],
    }
}

/// Runs the real `warren ctl <words…>` against the broker; panics unless it
/// succeeds, returns what it printed. A listing named without columns
/// (`-p VHOST` aside) gets [`test_columns`].
#[allow(dead_code)]
pub fn ctl_with(b: &Broker, words: &[&str]) -> String {
    let mut words = words.to_vec();
    let options = words.iter().filter(|w| w.starts_with('-')).count();
    if words.len() == 1 + 2 * options {
        words.extend_from_slice(test_columns(words[0]));
    }
    let out = ctl_output(b, &words);
    assert!(
        out.status.success(),
        "warren ctl {words:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs a rabbitmqctl-style command (`set_policy …`, `add_user …`, …)
/// with `warren ctl`, or with rabbitmqctl (node `ref@localhost`) against
/// an external RabbitMQ, whatever its exit status.
pub fn broker_ctl_output(b: &Broker, words: &[&str]) -> Output {
    if !b.is_external() {
        return ctl_output(b, words);
    }
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
        .collect();
    Command::new("su")
        .args([
            "rabbitmq",
            "-s",
            "/bin/sh",
            "-c",
            &format!(
                "HOME=/var/lib/rabbitmq rabbitmqctl -n ref@localhost {}",
                quoted.join(" ")
            ),
        ])
        .output()
        .expect("run rabbitmqctl")
}

/// [`broker_ctl_output`]: (success, stdout and stderr).
pub fn broker_ctl(b: &Broker, words: &[&str]) -> (bool, String) {
    let out = broker_ctl_output(b, words);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// [`broker_ctl`], which must succeed; returns its output.
#[track_caller]
pub fn broker_ctl_ok(b: &Broker, words: &[&str]) -> String {
    let (ok, text) = broker_ctl(b, words);
    assert!(ok, "{words:?} failed: {text}");
    text
}

/// Runs the real `warren ctl <words…>` against the broker, whatever its
/// exit status (for usage errors).
pub fn ctl_output(b: &Broker, words: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["ctl", "--admin", &admin_addr(b)])
        .args(words)
        .output()
        .expect("run warren ctl")
}

/// The value in column `column` (named in the header, the first
/// tab-separated line) of the row `row_name` of a `warren ctl` listing.
pub fn cell(listing: &str, row_name: &str, column: &str) -> String {
    let header: Vec<&str> = listing
        .lines()
        .find(|l| l.contains('\t'))
        .unwrap_or_else(|| panic!("no header line in:\n{listing}"))
        .split('\t')
        .collect();
    let i = header
        .iter()
        .position(|h| *h == column)
        .unwrap_or_else(|| panic!("no column {column} in {header:?}"));
    row(listing, row_name)[i].clone()
}

/// [`cell`] as a number.
pub fn cell_num(listing: &str, row_name: &str, column: &str) -> u64 {
    let v = cell(listing, row_name, column);
    v.parse()
        .unwrap_or_else(|_| panic!("column {column} of {row_name} is not a number: {v:?}"))
}

/// Column `column` of row `row_name` of `warren ctl <command>` now.
pub fn ctl_cell(b: &Broker, command: &str, row_name: &str, column: &str) -> String {
    cell(&ctl(b, command), row_name, column)
}

/// [`ctl_cell`] as a number.
pub fn ctl_num(b: &Broker, command: &str, row_name: &str, column: &str) -> u64 {
    cell_num(&ctl(b, command), row_name, column)
}

/// Sends one plain HTTP/1.0 `request` to the admin endpoint at `admin`
/// (`host:port`) and returns the whole response (reads time out after 20 s).
pub fn admin_request(admin: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(admin).expect("connect to the admin endpoint");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    s.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    s.read_to_string(&mut response).expect("read response");
    response
}

/// The row of a tab-separated listing whose first column is `name`.
#[allow(dead_code)]
pub fn row(listing: &str, name: &str) -> Vec<String> {
    listing
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect::<Vec<_>>())
        .find(|cols| cols.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row '{name}' in:\n{listing}"))
}
