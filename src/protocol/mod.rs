//! The AMQP 0-9-1 codec: frames, methods, content headers and field tables.
//! Pure byte-level code with no I/O.

pub mod frame;
pub mod methods;
pub mod properties;
pub mod types;
pub mod wire;
