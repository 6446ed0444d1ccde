//! The broker model: exchanges, bindings, routing, queues and dispatch.
//! Pure and synchronous — no I/O, no async, no knowledge of shards — so it
//! can be unit-tested and benchmarked alone.

pub mod error;
