//! Command-line flags (in RabbitMQ PerfTest's spirit) parsed into a
//! validated `Config`, the named scenario suite, and the `compare`
//! sub-command's flags. Pure: no I/O.
//!
//! The parts: `config` (what a run is), `scenarios` (the named suite),
//! `flags` (shared flag parsing helpers), `run_flags`, `compare_flags` and
//! `merge_flags` (one parser per sub-command).

mod compare_flags;
mod config;
mod flags;
mod merge_flags;
mod run_flags;
mod scenarios;

pub use compare_flags::{parse_compare, CompareConfig};
pub use config::{Config, DlxVia, ExchangeKind, Mode, DEFAULT_READ_SIZE};
pub use merge_flags::parse_merge;
pub use run_flags::parse_run;
pub use scenarios::SCENARIOS;

#[cfg(test)]
mod tests;
