//! `guest` logs in only from loopback (RabbitMQ's `loopback_users`): a
//! client in a network namespace, reaching the broker over a veth pair the
//! test creates (10.213.7.0/30), is refused with 403 ACCESS_REFUSED, and
//! let in once the broker runs with `--loopback-users none`. Needs root and
//! `ip`; fails when `CI=true` and they are missing, skips otherwise.

mod common;

use common::*;
use std::process::Command;

const HOST_ADDR: &str = "10.213.7.1";
const NS_ADDR: &str = "10.213.7.2";

/// RabbitMQ's answer to a refused login (the reason goes to its log only).
const REFUSED: &str = "(403) 'ACCESS_REFUSED - Login was refused using authentication \
                       mechanism PLAIN. For details see the broker logfile.'";

/// Connects with pika as guest/guest and declares a queue; prints `OK`, or
/// `REFUSED <the exception>`.
const CLIENT: &str = r#"
import sys, pika
host, port = sys.argv[1], int(sys.argv[2])
try:
    c = pika.BlockingConnection(pika.ConnectionParameters(host=host, port=port,
        credentials=pika.PlainCredentials('guest', 'guest'), connection_attempts=1,
        socket_timeout=10))
    c.channel().queue_declare('', exclusive=True)
    c.close()
    print('OK')
except Exception as e:
    print('REFUSED', repr(e))
"#;

fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A network namespace joined to the host by a veth pair; removed on drop.
struct Netns {
    name: String,
    host_if: String,
}

impl Netns {
    fn create() -> Result<Netns, String> {
        let id = std::process::id() % 100_000;
        let ns = Netns {
            name: format!("warren-lb-{id}"),
            host_if: format!("wlb{id}a"),
        };
        let peer = format!("wlb{id}b");
        sh(&["ip", "netns", "add", &ns.name])?;
        sh(&[
            "ip",
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            &ns.name,
        ])?;
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{HOST_ADDR}/30"),
            "dev",
            &ns.host_if,
        ])?;
        sh(&["ip", "link", "set", &ns.host_if, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", &ns.name];
            all.extend_from_slice(args);
            sh(&all)
        };
        inside(&["ip", "addr", "add", &format!("{NS_ADDR}/30"), "dev", &peer])?;
        inside(&["ip", "link", "set", &peer, "up"])?;
        inside(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs the pika client inside the namespace against `HOST_ADDR:port`.
    fn login(&self, port: u16) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "python3", "-c", CLIENT])
            .args([HOST_ADDR, &port.to_string()])
            .output()
            .expect("run python3 in the namespace");
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success() && !stdout.is_empty(),
            "pika client failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes both.
        let _ = sh(&["ip", "link", "del", &self.host_if]);
        let _ = sh(&["ip", "netns", "del", &self.name]);
    }
}

/// Whether this machine can run the test; `Err` says why not.
fn prerequisites() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not running as root (needed for ip netns)".into());
    }
    sh(&["ip", "-V"]).map_err(|e| format!("`ip` is missing: {e}"))?;
    sh(&["python3", "-c", "import pika"]).map_err(|e| format!("python3 with pika: {e}"))
}

fn namespace_or_skip() -> Option<Netns> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match prerequisites().and_then(|()| Netns::create()) {
        Ok(ns) => Some(ns),
        Err(why) if ci => panic!("loopback_users test cannot run in CI: {why}"),
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

#[test]
fn guest_is_refused_from_a_non_loopback_address_unless_configured() {
    let Some(ns) = namespace_or_skip() else {
        return;
    };
    if let Ok(uri) = std::env::var(EXTERNAL_ENV) {
        if !uri.is_empty() {
            // The external broker must listen on every address (RabbitMQ does).
            let b = Broker::start(1);
            let got = ns.login(b.port());
            assert!(got.contains(REFUSED), "login from {NS_ADDR}: {got}");
            eprintln!("--loopback-users none not checked: external broker ({uri})");
            return;
        }
    }
    for shards in SHARD_COUNTS {
        // Several logins so that with two shards both serve one.
        let b = Broker::start_with_args(shards, &["--bind", HOST_ADDR]);
        for _ in 0..3 {
            let got = ns.login(b.port());
            assert!(got.contains(REFUSED), "login from {NS_ADDR}: {got}");
        }
        assert!(
            b.logs_within("PLAIN login refused: user 'guest' can only connect via localhost"),
            "the log says why: {:?}",
            b.log()
        );

        let b = Broker::start_with_args(shards, &["--bind", HOST_ADDR, "--loopback-users", "none"]);
        for _ in 0..3 {
            assert_eq!(ns.login(b.port()), "OK", "with --loopback-users none");
        }
    }
}
