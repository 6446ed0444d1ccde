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
//! The queue-feature runs share `flow` (their topology, phases, waits and
//! checks) and `sampler` (queue depth and broker RSS in the background):
//! `ttl` (ttl-expiry and ttl-memory), `requeue`, `fan_in` and `delayed`.

mod backlog;
mod confirms;
mod consumer;
mod delayed;
mod fan_in;
mod flow;
mod monitor;
mod producer;
mod recover;
mod requeue;
mod sampler;
mod setup;
mod shared;
mod summary;
mod throughput;
mod ttl;

pub use backlog::{run_backlog, run_fill};
pub use delayed::run_delayed;
pub use fan_in::run_dlx_fan_in;
pub use recover::run_recover_wait;
pub use requeue::run_nack_requeue;
pub use throughput::run_throughput;
pub use ttl::{run_ttl_expiry, run_ttl_memory};

#[cfg(test)]
mod tests;
