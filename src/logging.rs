//! The broker's log: `tracing` events written to stderr, one line each,
//! with a level, the event's fields and a UTC timestamp, filtered by
//! `--log-level` (a level, or a `RUST_LOG`-style directive list).
//!
//! Three lines are not log events but the binary's contract with whoever
//! started it, and are printed verbatim by `server`/`main`:
//! `warren: listening on <ip>:<port> (shards: <N>)`, `warren: stopped`,
//! and start-up errors (`warren: cannot …`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Fails on a filter that does not parse.
pub fn init(filter: &str) -> Result<(), String> {
    let filter =
        EnvFilter::try_new(filter).map_err(|e| format!("invalid log level '{filter}': {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))
}
