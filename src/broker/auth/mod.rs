//! Users, passwords and permissions, as RabbitMQ's internal auth backend
//! keeps them — pure, no I/O: `password` (RabbitMQ's salted hashes),
//! `defs` (the user and permission records and the changes to them, what
//! is stored and replicated), `permissions` (the compiled regexes and
//! RabbitMQ's decisions and texts), `store` (a shard's copy: records plus
//! their compiled form and a generation that moves on every change),
//! `publish` (the per-channel cache of publish decisions) and `failures`
//! (slowing down repeated login failures from one address).

pub mod defs;
pub mod failures;
pub mod password;
pub mod permissions;
pub mod publish;
pub mod store;

pub use defs::{AuthChange, AuthDefs, AuthRequest, PermissionDef, TopicPermissionDef, UserDef};
pub use permissions::{Access, Resource};
pub use store::AuthStore;
