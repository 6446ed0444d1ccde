//! The broker's command line: `--bind`, `--port`, `--data-dir`, `--shards`,
//! each also settable through its `WARREN_*` environment variable (the flag
//! wins).

use crate::shard::Settings;
use std::path::PathBuf;

pub const USAGE: &str = "usage: warren [--bind ADDR] [--port PORT] [--data-dir DIR] [--shards N]

  --bind ADDR      address to listen on (env WARREN_BIND, default 127.0.0.1)
  --port PORT      AMQP port; 0 picks a free one (env WARREN_PORT, default 5672)
  --data-dir DIR   where durable data lives (env WARREN_DATA_DIR, default ./warren-data)
  --shards N       executors, one per core (env WARREN_SHARDS, default: number of cores)";

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
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.clone(), None),
        };
        if name == "-h" || name == "--help" {
            return Err(USAGE.into());
        }
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
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    let port: u16 = port.parse().map_err(|_| format!("invalid port '{port}'"))?;
    let shards: usize = shards
        .parse()
        .ok()
        .filter(|n| (1..=256).contains(n))
        .ok_or_else(|| format!("invalid shard count '{shards}' (1..=256)"))?;
    Ok(Settings {
        bind,
        port,
        data_dir: PathBuf::from(data_dir),
        shards,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_override_env_and_defaults_apply() {
        let env = |k: &str| (k == "WARREN_PORT").then(|| "6000".to_string());
        let s = parse(args(&["--shards", "2", "--data-dir=/tmp/x"]), env).unwrap();
        assert_eq!((s.port, s.shards, s.bind.as_str()), (6000, 2, "127.0.0.1"));
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
        let s = parse(args(&["--port", "0"]), env).unwrap();
        assert_eq!(s.port, 0);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(args(&["--shards", "0"]), |_| None).is_err());
        assert!(parse(args(&["--port", "x"]), |_| None).is_err());
        assert!(parse(args(&["--nope"]), |_| None).is_err());
    }
}
