//! `QueueConfig`: the declared shape of a queue.

use crate::protocol::types::FieldTable;

/// The declared shape of a queue (what equivalence checks compare). The
/// default is queue.declare's: not durable, exclusive or auto-delete, no
/// arguments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueConfig {
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub arguments: FieldTable,
}
