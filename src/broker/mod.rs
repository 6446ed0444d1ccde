//! The broker model: exchanges, bindings, routing, queues and dispatch.
//! Pure and synchronous — no I/O, no async, no knowledge of shards — so it
//! can be unit-tested and benchmarked alone.

pub mod auth;
pub mod binding;
pub mod capacity;
pub mod dead_letter;
pub mod error;
pub mod exchange;
pub mod message;
pub mod paged;
pub mod queue;
pub mod queue_args;
pub mod stats;
pub mod topology;
pub mod vhost;
