//! The global options of `warren ctl`, as rabbitmqctl takes them anywhere
//! on the line (`-n` / `--node`, `--admin`, `-q`, `-s`,
//! `--no-table-headers`, `--formatter`, `-t`, `--help`), the target
//! address they name, and rabbitmqctl's exit codes.

use super::format::Output;
use std::time::Duration;

/// The global options of a ctl command line, and its other words.
#[derive(Debug, PartialEq)]
pub struct Invocation {
    /// The management port's address (`HOST:PORT`).
    pub node: String,
    pub output: Output,
    pub timeout: Duration,
    pub words: Vec<String>,
    pub help: bool,
}

/// The address of `-n NODE`: `HOST:PORT` as it is, `NAME@HOST` or a bare
/// `HOST` on the management API's default port.
pub fn node_address(node: &str) -> String {
    let host = node.rsplit_once('@').map_or(node, |(_, h)| h);
    if host.contains(':') && !host.ends_with(']') {
        host.to_string()
    } else {
        format!("{host}:15672")
    }
}

/// Splits the global options (rabbitmqctl's, anywhere on the line) from
/// the command's words; Err names a usage error.
pub fn parse(args: &[String], default_node: String) -> Result<Invocation, String> {
    let mut inv = Invocation {
        node: default_node,
        output: Output::default(),
        timeout: Duration::from_secs(60),
        words: Vec::new(),
        help: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag {
            "-n" | "--node" => inv.node = node_address(&value(flag)?),
            "--admin" => inv.node = value(flag)?,
            "-q" | "--quiet" => inv.output.quiet = true,
            "-s" | "--silent" => inv.output.silent = true,
            "--no-table-headers" => inv.output.no_headers = true,
            "--formatter" => match value(flag)?.as_str() {
                "json" => inv.output.json = true,
                "table" => inv.output.json = false,
                other => return Err(format!("formatter {other} is not supported (json, table)")),
            },
            "-t" | "--timeout" => {
                let v = value(flag)?;
                let secs: u64 = v
                    .parse()
                    .ok()
                    .filter(|s| (1..=86_400).contains(s))
                    .ok_or_else(|| format!("timeout must be 1..86400 seconds, got {v}"))?;
                inv.timeout = Duration::from_secs(secs);
            }
            "-?" | "-h" | "--help" => inv.help = true,
            "-l" | "--longnames" => {}
            _ => inv.words.push(a.clone()),
        }
    }
    Ok(inv)
}

/// rabbitmqctl's exit codes (`RabbitMQ.CLI.Core.ExitCodes`).
pub mod exit {
    pub const OK: i32 = 0;
    pub const USAGE: i32 = 64;
    pub const DATA_ERROR: i32 = 65;
    pub const NO_USER: i32 = 67;
    pub const UNAVAILABLE: i32 = 69;
    pub const SOFTWARE: i32 = 70;
    pub const TEMP_FAIL: i32 = 75;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_options_anywhere() {
        let args: Vec<String> = [
            "list_queues",
            "-q",
            "name",
            "--formatter",
            "json",
            "-n",
            "rabbit@h",
            "--timeout=5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let inv = parse(&args, "d:1".into()).unwrap();
        assert_eq!(inv.words, ["list_queues", "name"]);
        assert_eq!(inv.node, "h:15672");
        assert!(inv.output.quiet && inv.output.json);
        assert_eq!(inv.timeout, Duration::from_secs(5));
        assert_eq!(node_address("127.0.0.1:1234"), "127.0.0.1:1234");
        assert_eq!(node_address("localhost"), "localhost:15672");
        assert_eq!(node_address("[::1]"), "[::1]:15672");
        let bad = |a: &[&str]| {
            parse(
                &a.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "d".into(),
            )
        };
        assert!(bad(&["--formatter", "erlang"]).is_err());
        assert!(bad(&["-n"]).is_err());
        assert!(bad(&["-t", "0"]).is_err());
    }
}
