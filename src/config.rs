//! The broker's command line: `--bind`, `--port`, `--data-dir`, `--shards`,
//! the alarm limits, the memory budget, the management port and the loopback-only
//! users, the node name, the amqps listener (`--tls-*`), the consumer timeout
//! and the connection and consumer limits, each also settable through its
//! `WARREN_*` environment variable (the flag wins).

use crate::shard::alarms::{parse_disk_free_limit, parse_watermark, Limits};
use crate::shard::{Settings, TlsOptions};
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "usage: warren [--bind ADDR] [--port PORT] [--data-dir DIR] [--shards N]

  --bind ADDR      address to listen on (env WARREN_BIND, default 127.0.0.1)
  --port PORT      AMQP port; 0 picks a free one (env WARREN_PORT, default 5672)
  --data-dir DIR   where durable data lives (env WARREN_DATA_DIR, default ./warren-data)
  --shards N       executors, one per core (env WARREN_SHARDS, default: number of cores)
  --memory-high-watermark M
                   block publishers above this RSS: bytes, or a fraction of RAM
                   like 0.4 (env WARREN_MEMORY_HIGH_WATERMARK, default 0.4)
  --management-port PORT
                   the management HTTP API (RabbitMQ's /api/...) and
                   `warren ctl`'s endpoint (env WARREN_MANAGEMENT_PORT;
                   default AMQP port + 10000, i.e. 15672, or a free port
                   when --port is 0; 'off' disables it). --admin-port and
                   WARREN_ADMIN_PORT are its older names
  --management-bind ADDR
                   address the management server listens on (env
                   WARREN_MANAGEMENT_BIND, default: the --bind address;
                   RabbitMQ listens on all interfaces: 0.0.0.0)
  --disk-free-limit BYTES
                   block publishers when the data dir's disk has less free
                   (env WARREN_DISK_FREE_LIMIT, default 50000000)
  --memory-budget BYTES
                   memory for messages kept in memory (ready, and delivered
                   but unacked), all queues together; beyond it queues page
                   messages out to the log, and a consumer holding its share
                   unacked gets no more until it acks
                   (env WARREN_MEMORY_BUDGET, default 16777216 = 16 MiB)
  --consumer-timeout MS|off
                   close a channel whose oldest unacked delivery is older
                   than this with 406, as RabbitMQ's consumer_timeout (env
                   WARREN_CONSUMER_TIMEOUT, default off; RabbitMQ's default
                   is 1800000); a queue's x-consumer-timeout argument or
                   consumer-timeout policy key takes precedence
  --max-connections N|infinity
                   client connections open at once on the node; more are
                   refused at connection.open with 530, as RabbitMQ's
                   connection_max (env WARREN_MAX_CONNECTIONS, default
                   infinity)
  --consumer-max-per-channel N|infinity
                   consumers one channel may have; one more closes the
                   connection with 530, as RabbitMQ's consumer_max_per_channel
                   (env WARREN_CONSUMER_MAX_PER_CHANNEL, default 65536;
                   RabbitMQ's default is infinity)
  --max-message-size BYTES
                   the largest message body accepted; a larger publish
                   closes its channel with 406 PRECONDITION_FAILED, as
                   RabbitMQ's max_message_size (env WARREN_MAX_MESSAGE_SIZE,
                   default 134217728 = 128 MiB, at most 267386880 = 255 MiB)
  --loopback-users guest|none
                   users who may log in only from a loopback address, as
                   RabbitMQ's loopback_users: comma-separated names, or none
                   (env WARREN_LOOPBACK_USERS, default guest)
  --node-name NAME@HOST
                   the node's name in the management API and metrics, as
                   RabbitMQ's RABBITMQ_NODENAME (env WARREN_NODENAME,
                   default warren@localhost; rabbit@HOST lets tools that
                   assume RabbitMQ's prefix, like the Nagios checks, find it)
  --default-user NAME, --default-pass PASSWORD
                   the user a first start creates, with every permission on
                   vhost / and tag administrator (env WARREN_DEFAULT_USER,
                   WARREN_DEFAULT_PASS; default guest / guest)
  --tls-port PORT  amqps port; TLS is off unless --tls-port or --tls-cert is
                   given (env WARREN_TLS_PORT, default 5671 once TLS is on;
                   0 picks a free one)
  --tls-cert FILE  server certificate chain, PEM (env WARREN_TLS_CERT)
  --tls-key FILE   its private key, PEM: PKCS#8, PKCS#1 or SEC1 (env WARREN_TLS_KEY)
  --tls-ca FILE    CA certificates, PEM, that client certificates must chain
                   to (env WARREN_TLS_CA)
  --tls-verify-peer[=true|false]
                   ask clients for a certificate and verify it against
                   --tls-ca; a verified certificate allows EXTERNAL login as
                   its subject's CN (env WARREN_TLS_VERIFY_PEER, default false)
  --tls-fail-if-no-peer-cert[=true|false]
                   with --tls-verify-peer: refuse clients without a certificate
                   (env WARREN_TLS_FAIL_IF_NO_PEER_CERT, default false)
  --tls-handshake-timeout MS
                   drop a client that has not finished its TLS handshake by
                   then (env WARREN_TLS_HANDSHAKE_TIMEOUT, default 5000)
  --tls-max-handshakes N
                   TLS handshakes in progress at once; more are dropped
                   (env WARREN_TLS_MAX_HANDSHAKES, default 1024)
  --log-level FILTER
                   error, warn, info, debug or trace, or a RUST_LOG-style
                   filter like 'info,warren::storage=debug'
                   (env WARREN_LOG_LEVEL, else RUST_LOG, default info)";

/// Default `--memory-budget`: small enough that a backlog of millions of
/// messages keeps the broker well under 64 MB of RSS.
pub const DEFAULT_MEMORY_BUDGET: u64 = 16 << 20;

/// Default `--max-message-size`: RabbitMQ's default `max_message_size`.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 128 << 20;

/// The largest `--max-message-size` accepted: a message must fit one log
/// record (`storage::record::DEFAULT_MAX_RECORD_LEN`, 256 MiB) with its
/// properties and names.
pub const MAX_MAX_MESSAGE_SIZE: u64 = 255 << 20;

/// Default `--node-name`.
pub const DEFAULT_NODE_NAME: &str = "warren@localhost";

/// The smallest `--memory-budget` accepted (tests page with tiny budgets).
pub const MIN_MEMORY_BUDGET: u64 = 4096;

/// Default `--consumer-max-per-channel`. RabbitMQ's is `infinity`; Warren
/// bounds what one channel can make it hold (each consumer costs memory on
/// its channel and on its queue's owner) at a number no ordinary client
/// reaches.
pub const DEFAULT_CONSUMER_MAX_PER_CHANNEL: u32 = 65_536;

/// A limit given as a number or `infinity` (also `off`, `none`):
/// None means no limit.
fn limit<T: std::str::FromStr>(v: &str, what: &str) -> Result<Option<T>, String> {
    match v {
        "infinity" | "off" | "none" => Ok(None),
        _ => v
            .parse()
            .map(Some)
            .map_err(|_| format!("invalid {what} '{v}' (a number, or infinity)")),
    }
}

/// Parses flags (after the program name) with `env` as the fallback.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Settings, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut bind = env("WARREN_BIND").unwrap_or_else(|| "127.0.0.1".into());
    let mut port = env("WARREN_PORT").unwrap_or_else(|| "5672".into());
    let mut data_dir = env("WARREN_DATA_DIR").unwrap_or_else(|| "./warren-data".into());
    let mut shards = env("WARREN_SHARDS").unwrap_or_else(|| cores.to_string());
    let mut watermark = env("WARREN_MEMORY_HIGH_WATERMARK").unwrap_or_else(|| "0.4".into());
    let mut disk_limit = env("WARREN_DISK_FREE_LIMIT").unwrap_or_else(|| "50000000".into());
    let mut admin = env("WARREN_MANAGEMENT_PORT").or_else(|| env("WARREN_ADMIN_PORT"));
    let mut management_bind = env("WARREN_MANAGEMENT_BIND");
    let mut budget =
        env("WARREN_MEMORY_BUDGET").unwrap_or_else(|| DEFAULT_MEMORY_BUDGET.to_string());
    let mut max_message =
        env("WARREN_MAX_MESSAGE_SIZE").unwrap_or_else(|| DEFAULT_MAX_MESSAGE_SIZE.to_string());
    let mut loopback = env("WARREN_LOOPBACK_USERS").unwrap_or_else(|| "guest".into());
    let mut consumer_timeout = env("WARREN_CONSUMER_TIMEOUT").unwrap_or_else(|| "off".into());
    let mut max_connections = env("WARREN_MAX_CONNECTIONS").unwrap_or_else(|| "infinity".into());
    let mut consumer_max = env("WARREN_CONSUMER_MAX_PER_CHANNEL")
        .unwrap_or_else(|| DEFAULT_CONSUMER_MAX_PER_CHANNEL.to_string());
    let mut tls = TlsFlags {
        port: env("WARREN_TLS_PORT"),
        cert: env("WARREN_TLS_CERT"),
        key: env("WARREN_TLS_KEY"),
        ca: env("WARREN_TLS_CA"),
        verify_peer: env("WARREN_TLS_VERIFY_PEER").unwrap_or_else(|| "false".into()),
        fail_if_no_peer_cert: env("WARREN_TLS_FAIL_IF_NO_PEER_CERT")
            .unwrap_or_else(|| "false".into()),
        handshake_timeout: env("WARREN_TLS_HANDSHAKE_TIMEOUT").unwrap_or_else(|| "5000".into()),
        max_handshakes: env("WARREN_TLS_MAX_HANDSHAKES").unwrap_or_else(|| "1024".into()),
    };
    let mut log_filter = env("WARREN_LOG_LEVEL")
        .or_else(|| env("RUST_LOG"))
        .unwrap_or_else(|| "info".into());
    let mut default_user = env("WARREN_DEFAULT_USER").unwrap_or_else(|| "guest".into());
    let mut default_pass = env("WARREN_DEFAULT_PASS").unwrap_or_else(|| "guest".into());
    let mut node_name = env("WARREN_NODENAME").unwrap_or_else(|| DEFAULT_NODE_NAME.into());
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.clone(), None),
        };
        if name == "-h" || name == "--help" {
            return Err(USAGE.into());
        }
        // Switches: `--tls-verify-peer` alone means true.
        let switch = || inline.clone().unwrap_or_else(|| "true".into());
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match name.as_str() {
            "--bind" => bind = value()?,
            "--port" => port = value()?,
            "--data-dir" => data_dir = value()?,
            "--shards" => shards = value()?,
            "--memory-high-watermark" => watermark = value()?,
            "--disk-free-limit" => disk_limit = value()?,
            "--management-port" | "--admin-port" => admin = Some(value()?),
            "--management-bind" => management_bind = Some(value()?),
            "--memory-budget" => budget = value()?,
            "--consumer-timeout" => consumer_timeout = value()?,
            "--max-connections" => max_connections = value()?,
            "--consumer-max-per-channel" => consumer_max = value()?,
            "--loopback-users" => loopback = value()?,
            "--max-message-size" => max_message = value()?,
            "--log-level" => log_filter = value()?,
            "--default-user" => default_user = value()?,
            "--default-pass" => default_pass = value()?,
            "--node-name" => node_name = value()?,
            "--tls-port" => tls.port = Some(value()?),
            "--tls-cert" => tls.cert = Some(value()?),
            "--tls-key" => tls.key = Some(value()?),
            "--tls-ca" => tls.ca = Some(value()?),
            "--tls-verify-peer" => tls.verify_peer = switch(),
            "--tls-fail-if-no-peer-cert" => tls.fail_if_no_peer_cert = switch(),
            "--tls-handshake-timeout" => tls.handshake_timeout = value()?,
            "--tls-max-handshakes" => tls.max_handshakes = value()?,
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    let port: u16 = port.parse().map_err(|_| format!("invalid port '{port}'"))?;
    let shards: usize = shards
        .parse()
        .ok()
        .filter(|n| (1..=256).contains(n))
        .ok_or_else(|| format!("invalid shard count '{shards}' (1..=256)"))?;
    let memory_high_watermark = parse_watermark(&watermark)
        .ok_or_else(|| format!("invalid memory high watermark '{watermark}'"))?;
    let disk_free_limit = parse_disk_free_limit(&disk_limit)
        .ok_or_else(|| format!("invalid disk free limit '{disk_limit}'"))?;
    let memory_budget: u64 = budget
        .parse()
        .ok()
        .filter(|&b| b >= MIN_MEMORY_BUDGET)
        .ok_or_else(|| {
            format!("invalid memory budget '{budget}' (bytes, at least {MIN_MEMORY_BUDGET})")
        })?;
    let max_message_size: u64 = max_message
        .parse()
        .ok()
        .filter(|n| (1..=MAX_MAX_MESSAGE_SIZE).contains(n))
        .ok_or_else(|| {
            format!("invalid max message size '{max_message}' (bytes, 1..={MAX_MAX_MESSAGE_SIZE})")
        })?;
    let consumer_timeout: Option<u64> = limit(&consumer_timeout, "consumer timeout")?;
    let max_connections: Option<u32> = limit(&max_connections, "connection limit")?;
    let consumer_max_per_channel: Option<u32> = limit(&consumer_max, "consumer limit per channel")?;
    let management_port = match admin.as_deref() {
        Some("off") => None,
        Some(p) => Some(
            p.parse()
                .map_err(|_| format!("invalid management port '{p}'"))?,
        ),
        None if port == 0 => Some(0),
        None => Some(port.checked_add(10000).unwrap_or(0)),
    };
    let loopback_users = parse_loopback_users(&loopback)
        .ok_or_else(|| format!("invalid loopback users '{loopback}' (user names, or none)"))?;
    if default_user.is_empty() || default_user.len() > 255 {
        return Err(format!("invalid default user '{default_user}'"));
    }
    if !valid_node_name(&node_name) {
        return Err(format!(
            "invalid node name '{node_name}' (NAME@HOST: letters, digits, '-', '_' and '.', at most 255)"
        ));
    }
    let tls = tls.parse()?;
    Ok(Settings {
        node_name,
        default_user: (
            default_user,
            crate::broker::auth::password::hash(&default_pass),
        ),
        auth_failures: Default::default(),
        tls,
        max_message_size,
        consumer_timeout,
        max_connections,
        consumer_max_per_channel,
        log_filter,
        loopback_users,
        management_port,
        management_bind: management_bind.unwrap_or_else(|| bind.clone()),
        memory_budget,
        bind,
        port,
        data_dir: PathBuf::from(data_dir),
        shards,
        limits: Limits {
            memory_high_watermark,
            disk_free_limit,
        },
    })
}

/// The `--tls-*` values as given.
struct TlsFlags {
    port: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    ca: Option<String>,
    verify_peer: String,
    fail_if_no_peer_cert: String,
    handshake_timeout: String,
    max_handshakes: String,
}

impl TlsFlags {
    /// None when TLS is off (neither a TLS port nor a certificate given).
    fn parse(self) -> Result<Option<TlsOptions>, String> {
        let bool_flag = |name: &str, v: &str| match v {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("invalid value '{v}' for --{name} (true or false)")),
        };
        let verify_peer = bool_flag("tls-verify-peer", &self.verify_peer)?;
        let fail_if_no_peer_cert =
            bool_flag("tls-fail-if-no-peer-cert", &self.fail_if_no_peer_cert)?;
        if self.port.is_none() && self.cert.is_none() {
            if self.key.is_some() || self.ca.is_some() || verify_peer || fail_if_no_peer_cert {
                return Err("the --tls-* options need --tls-cert (TLS is off without it)".into());
            }
            return Ok(None);
        }
        let port = match self.port.as_deref() {
            None => 5671,
            Some(p) => p.parse().map_err(|_| format!("invalid TLS port '{p}'"))?,
        };
        let (Some(cert), Some(key)) = (self.cert, self.key) else {
            return Err("TLS needs both --tls-cert and --tls-key".into());
        };
        if verify_peer && self.ca.is_none() {
            return Err(
                "--tls-verify-peer needs --tls-ca (the CAs client certificates chain to)".into(),
            );
        }
        if fail_if_no_peer_cert && !verify_peer {
            return Err("--tls-fail-if-no-peer-cert needs --tls-verify-peer".into());
        }
        let timeout = &self.handshake_timeout;
        let handshake_timeout = timeout
            .parse::<u64>()
            .ok()
            .filter(|&ms| (1..=3_600_000).contains(&ms))
            .map(Duration::from_millis)
            .ok_or_else(|| format!("invalid TLS handshake timeout '{timeout}' (1..=3600000 ms)"))?;
        let max = &self.max_handshakes;
        let max_handshakes = max
            .parse::<usize>()
            .ok()
            .filter(|&n| (1..=1_000_000).contains(&n))
            .ok_or_else(|| format!("invalid TLS handshake limit '{max}' (1..=1000000)"))?;
        Ok(Some(TlsOptions {
            port,
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
            ca: self.ca.map(PathBuf::from),
            verify_peer,
            fail_if_no_peer_cert,
            handshake_timeout,
            max_handshakes,
        }))
    }
}

/// `--node-name`: `NAME@HOST` as an Erlang node name is written (one `@`,
/// both parts non-empty, letters, digits, `-`, `_` and `.`).
fn valid_node_name(v: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    v.len() <= 255 && matches!(v.split_once('@'), Some((n, h)) if part(n) && part(h))
}

/// `--loopback-users`: `none`, or comma-separated user names.
fn parse_loopback_users(v: &str) -> Option<Vec<String>> {
    if v == "none" {
        return Some(Vec::new());
    }
    let users: Vec<String> = v.split(',').map(|u| u.trim().to_string()).collect();
    users.iter().all(|u| !u.is_empty()).then_some(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn consumer_timeout_and_limits_default_and_parse() {
        let none = |_: &str| None;
        let s = parse(args(&[]), none).unwrap();
        assert_eq!(s.consumer_timeout, None, "off by default");
        assert_eq!(s.max_connections, None);
        assert_eq!(
            s.consumer_max_per_channel,
            Some(DEFAULT_CONSUMER_MAX_PER_CHANNEL)
        );
        let s = parse(
            args(&[
                "--consumer-timeout",
                "2500",
                "--max-connections=10",
                "--consumer-max-per-channel",
                "infinity",
            ]),
            none,
        )
        .unwrap();
        assert_eq!(s.consumer_timeout, Some(2500));
        assert_eq!(s.max_connections, Some(10));
        assert_eq!(s.consumer_max_per_channel, None);
        let env = |k: &str| (k == "WARREN_CONSUMER_TIMEOUT").then(|| "60000".to_string());
        assert_eq!(parse(args(&[]), env).unwrap().consumer_timeout, Some(60000));
        assert!(parse(args(&["--consumer-timeout", "-1"]), none).is_err());
        assert!(parse(args(&["--max-connections", "many"]), none).is_err());
    }

    #[test]
    fn node_name_defaults_and_is_checked() {
        let none = |_: &str| None;
        assert_eq!(
            parse(args(&[]), none).unwrap().node_name,
            "warren@localhost"
        );
        let s = parse(args(&["--node-name", "rabbit@db-1.example"]), none).unwrap();
        assert_eq!(s.node_name, "rabbit@db-1.example");
        let env = |k: &str| (k == "WARREN_NODENAME").then(|| "rabbit@h".to_string());
        assert_eq!(parse(args(&[]), env).unwrap().node_name, "rabbit@h");
        for bad in ["rabbit", "@h", "rabbit@", "a@b@c", "a b@h", "a/b@h"] {
            assert!(parse(args(&["--node-name", bad]), none).is_err(), "{bad}");
        }
    }

    #[test]
    fn max_message_size_defaults_to_rabbitmqs_and_is_bounded() {
        let none = |_: &str| None;
        assert_eq!(parse(args(&[]), none).unwrap().max_message_size, 128 << 20);
        let s = parse(args(&["--max-message-size", "1000"]), none).unwrap();
        assert_eq!(s.max_message_size, 1000);
        let env = |k: &str| (k == "WARREN_MAX_MESSAGE_SIZE").then(|| "2000".to_string());
        assert_eq!(parse(args(&[]), env).unwrap().max_message_size, 2000);
        for bad in ["0", "267386881", "x"] {
            assert!(
                parse(args(&["--max-message-size", bad]), none).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn flags_override_env_and_defaults_apply() {
        let env = |k: &str| (k == "WARREN_PORT").then(|| "6000".to_string());
        let s = parse(args(&["--shards", "2", "--data-dir=/tmp/x"]), env).unwrap();
        assert_eq!((s.port, s.shards, s.bind.as_str()), (6000, 2, "127.0.0.1"));
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
        let s = parse(args(&["--port", "0"]), env).unwrap();
        assert_eq!(s.port, 0);
        let s = parse(
            args(&["--memory-high-watermark", "1234", "--disk-free-limit", "7"]),
            env,
        )
        .unwrap();
        assert_eq!(s.limits.memory_high_watermark, 1234);
        assert_eq!(s.limits.disk_free_limit, 7);
        assert!(parse(args(&["--memory-high-watermark", "1.5"]), env).is_err());
        assert_eq!(
            parse(args(&[]), |_| None).unwrap().management_port,
            Some(15672)
        );
        assert_eq!(
            parse(args(&["--port", "0"]), |_| None)
                .unwrap()
                .management_port,
            Some(0)
        );
        assert_eq!(
            parse(args(&["--admin-port", "off"]), |_| None)
                .unwrap()
                .management_port,
            None
        );
    }

    #[test]
    fn watermark_is_bytes_or_a_fraction_of_ram() {
        assert_eq!(parse_watermark("1234"), Some(1234));
        assert_eq!(parse_watermark("0"), Some(0));
        let total = crate::shard::alarms::total_memory_bytes().unwrap_or(0);
        assert_eq!(parse_watermark("0.5"), Some((total as f64 * 0.5) as u64));
        assert_eq!(parse_watermark("1.0"), Some(total));
        for bad in ["1.5", "-0.1", "-1", "x", "", "0.4x", "1GB"] {
            assert_eq!(parse_watermark(bad), None, "{bad:?}");
        }
        assert_eq!(parse_disk_free_limit("50000000"), Some(50_000_000));
        for bad in ["-1", "1.5", "x", ""] {
            assert_eq!(parse_disk_free_limit(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_default_user_comes_from_flags_or_environment() {
        use crate::broker::auth::password::{verify, SHA256};
        let s = parse(args(&[]), |_| None).unwrap();
        assert_eq!(s.default_user.0, "guest");
        assert!(verify(SHA256, &s.default_user.1, "guest"));
        let env = |k: &str| match k {
            "WARREN_DEFAULT_USER" => Some("envuser".to_string()),
            "WARREN_DEFAULT_PASS" => Some("envpass".to_string()),
            _ => None,
        };
        let s = parse(args(&[]), env).unwrap();
        assert_eq!(s.default_user.0, "envuser");
        assert!(verify(SHA256, &s.default_user.1, "envpass"));
        let s = parse(args(&["--default-user", "boss", "--default-pass=pw"]), env).unwrap();
        assert_eq!(s.default_user.0, "boss");
        assert!(verify(SHA256, &s.default_user.1, "pw"));
        assert!(parse(args(&["--default-user", ""]), |_| None).is_err());
    }

    #[test]
    fn loopback_users_default_to_guest() {
        assert_eq!(
            parse(args(&[]), |_| None).unwrap().loopback_users,
            ["guest"]
        );
        let none = parse(args(&["--loopback-users", "none"]), |_| None).unwrap();
        assert!(none.loopback_users.is_empty());
        let env = |k: &str| (k == "WARREN_LOOPBACK_USERS").then(|| "none".to_string());
        assert!(parse(args(&[]), env).unwrap().loopback_users.is_empty());
        let flag = parse(args(&["--loopback-users=guest"]), env).unwrap();
        assert_eq!(flag.loopback_users, ["guest"]);
        assert!(parse(args(&["--loopback-users", ""]), |_| None).is_err());
    }

    #[test]
    fn log_level_from_flag_then_warren_env_then_rust_log() {
        let env = |k: &str| match k {
            "RUST_LOG" => Some("debug".to_string()),
            _ => None,
        };
        assert_eq!(parse(args(&[]), |_| None).unwrap().log_filter, "info");
        assert_eq!(parse(args(&[]), env).unwrap().log_filter, "debug");
        let both = |k: &str| match k {
            "RUST_LOG" => Some("debug".to_string()),
            "WARREN_LOG_LEVEL" => Some("warn".to_string()),
            _ => None,
        };
        assert_eq!(parse(args(&[]), both).unwrap().log_filter, "warn");
        let flag = parse(args(&["--log-level", "error,warren::storage=debug"]), both).unwrap();
        assert_eq!(flag.log_filter, "error,warren::storage=debug");
    }

    #[test]
    fn tls_is_off_unless_configured_and_checked_when_on() {
        assert_eq!(parse(args(&[]), |_| None).unwrap().tls, None);
        let on = parse(args(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]), |_| {
            None
        })
        .unwrap();
        let tls = on.tls.unwrap();
        assert_eq!(
            (tls.port, tls.verify_peer, tls.max_handshakes),
            (5671, false, 1024)
        );
        assert_eq!(tls.handshake_timeout, Duration::from_millis(5000));
        let full = args(&[
            "--tls-port=0",
            "--tls-cert=c",
            "--tls-key=k",
            "--tls-ca=ca",
            "--tls-verify-peer",
            "--tls-fail-if-no-peer-cert",
            "--tls-handshake-timeout=250",
        ]);
        let tls = parse(full, |_| None).unwrap().tls.unwrap();
        assert_eq!(tls.port, 0);
        assert!(tls.verify_peer && tls.fail_if_no_peer_cert);
        assert_eq!(tls.ca, Some(PathBuf::from("ca")));
        assert_eq!(tls.handshake_timeout, Duration::from_millis(250));
        let env = |k: &str| match k {
            "WARREN_TLS_CERT" => Some("c".to_string()),
            "WARREN_TLS_KEY" => Some("k".to_string()),
            _ => None,
        };
        assert!(parse(args(&[]), env).unwrap().tls.is_some());
        for bad in [
            &["--tls-cert", "c"][..],
            &["--tls-key", "k"],
            &["--tls-cert", "c", "--tls-key", "k", "--tls-verify-peer"],
            &[
                "--tls-cert",
                "c",
                "--tls-key",
                "k",
                "--tls-fail-if-no-peer-cert",
            ],
            &["--tls-cert", "c", "--tls-key", "k", "--tls-verify-peer=yes"],
            &[
                "--tls-cert",
                "c",
                "--tls-key",
                "k",
                "--tls-handshake-timeout",
                "0",
            ],
            &[
                "--tls-cert",
                "c",
                "--tls-key",
                "k",
                "--tls-max-handshakes",
                "0",
            ],
            &["--tls-port", "x", "--tls-cert", "c", "--tls-key", "k"],
        ] {
            assert!(parse(args(bad), |_| None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(args(&["--shards", "0"]), |_| None).is_err());
        assert!(parse(args(&["--port", "x"]), |_| None).is_err());
        assert!(parse(args(&["--nope"]), |_| None).is_err());
    }
}
