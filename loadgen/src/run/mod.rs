//! The message-moving runs: throughput (producers and consumers at once,
//! rates and latencies, a progress line a second) and backlog (publish N
//! with no consumer, then drain). One thread per connection; producers that
//! use confirms get a second thread reading acks off the same socket.
//!
//! The parts: `shared` (the counters every worker thread updates),
//! `setup` (topology declared and deleted, admin RPCs), `producer`,
//! `confirms` (the confirm window and the ack-reading thread), `consumer`,
//! `monitor` (progress lines, waiting for workers and for the drain),
//! `summary` (the run's settings line and common metrics), and one module
//! per kind of run: `throughput`, `backlog` (also fill) and `recover`.

mod backlog;
mod confirms;
mod consumer;
mod monitor;
mod producer;
mod recover;
mod setup;
mod shared;
mod summary;
mod throughput;

pub use backlog::{run_backlog, run_fill};
pub use recover::run_recover_wait;
pub use throughput::run_throughput;

#[cfg(test)]
mod tests;
