//! Warren: a RabbitMQ-compatible AMQP 0-9-1 broker.
//!
//! Layout (one concept per module):
//! - `protocol` — the wire codec (frames, methods, properties, tables).
//! - `broker` — the pure broker model (exchanges, bindings, routing, queues).
//! - `shard` — the per-core runtime and the inter-core mesh.
//! - `connection` — one AMQP connection: handshake, channels, frames in/out.
//! - `storage` — the per-shard append-only log and the durable definitions.
//! - `admin` — `warren ctl` and the plain-text requests it makes.
//! - `management` — the management HTTP server (RabbitMQ's `/api/...`, and
//!   `warren ctl`'s requests) on its own thread, bridged into shard 0.
//! - `server` — the composition root: starts the executors, their shards,
//!   listeners and the management server; stops them on SIGINT/SIGTERM.

/// The codec is its own crate (`protocol/`); re-exported under its old path.
pub use warren_protocol as protocol;

pub mod admin;
pub mod broker;
pub mod config;
pub mod connection;
pub mod logging;
pub mod management;
pub mod server;
pub mod shard;
pub mod storage;
