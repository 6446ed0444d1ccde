//! Binding types shared by the exchange kinds and the topology:
//! `Destination` (a queue or an exchange) and `BindingDef` (one binding as
//! declared). Depends on nothing else in `broker`, so the routers of every
//! exchange kind can import it without a cycle.

use crate::protocol::types::{FieldTable, ShortStr};

/// Where a binding leads: a queue or another exchange (exchange-to-exchange).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    Queue(ShortStr),
    Exchange(ShortStr),
}

impl Destination {
    pub fn name(&self) -> &ShortStr {
        match self {
            Destination::Queue(n) | Destination::Exchange(n) => n,
        }
    }

    /// `"queue"` or `"exchange"`, as RabbitMQ names resource kinds.
    pub fn kind_str(&self) -> &'static str {
        match self {
            Destination::Queue(_) => "queue",
            Destination::Exchange(_) => "exchange",
        }
    }
}

/// One binding. `arguments` are kept sorted by key (as RabbitMQ stores them),
/// which is also how two bindings are compared for identity.
#[derive(Clone, Debug, PartialEq)]
pub struct BindingDef {
    pub source: ShortStr,
    pub destination: Destination,
    pub routing_key: ShortStr,
    pub arguments: FieldTable,
}
