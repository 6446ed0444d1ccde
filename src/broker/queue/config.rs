//! `QueueConfig`: the declared shape of a queue.

use crate::protocol::types::FieldTable;

/// The declared shape of a queue (what equivalence checks compare).
#[derive(Clone, Debug, PartialEq)]
pub struct QueueConfig {
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub arguments: FieldTable,
}
