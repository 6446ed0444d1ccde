//! The AMQP 0-9-1 codec: frames, methods, content headers, field tables and
//! reply codes. Pure byte-level code with no I/O and no runtime dependency,
//! shared by the broker (`warren`) and the benchmark client (`loadgen`).

pub mod code;
pub mod frame;
pub mod fuzzing;
pub mod methods;
pub mod properties;
pub mod types;
pub mod wire;
