//! `Topology`: every exchange and binding of one vhost and routing through
//! them — exchange.declare/delete, queue.bind/unbind, exchange.bind/unbind,
//! queue deletion, auto-delete cascades, exchange-to-exchange bindings and
//! alternate exchanges — with RabbitMQ 3.12's checks, reply codes and texts
//! (`rabbit_channel`, `rabbit_exchange`, `rabbit_binding`).
//!
//! This file is the façade: the `Topology` type and the name normalisation
//! every operation shares. Its methods are split by concern —
//! `registry` (exchanges, equivalence, auto-delete), `bindings` (the
//! binding index), `routing` (the publish path), `policies` (the policy of
//! each exchange), `sender_selected` (the `CC` / `BCC` headers) — and
//! `errors` words the reply texts. Paths outside `broker` name only what is re-exported here.
//!
//! Pure: queues are only names here. Whether a queue exists (for bind) is the
//! caller's check; `check_bind` lets it keep RabbitMQ's error order.

mod bindings;
mod errors;
mod policies;
mod registry;
mod routing;
pub mod sender_selected;

pub use errors::{exchange_not_found, publish_to_internal};
pub use routing::{Origin, RouteResult, RoutingKey};

use crate::broker::binding::Destination;
use crate::broker::queue_args::policy::Policy;
use crate::protocol::types::ShortStr;
use registry::ExchangeEntry;
use std::borrow::Cow;
use std::collections::HashMap;

/// All exchanges and bindings of one vhost.
#[derive(Debug)]
pub struct Topology {
    /// The vhost's name (in error texts).
    vhost: ShortStr,
    exchanges: HashMap<ShortStr, ExchangeEntry>,
    /// destination -> source exchange -> number of bindings between them.
    reverse: HashMap<Destination, HashMap<ShortStr, usize>>,
    /// The policies that can apply to exchanges (`policies`).
    policies: Vec<Policy>,
}

impl Default for Topology {
    fn default() -> Self {
        Topology::new()
    }
}

/// Names with CR and LF removed, as RabbitMQ does for exchange and queue
/// names in declare, delete, bind and unbind.
pub fn strip_cr_lf(name: &str) -> Cow<'_, str> {
    if name.contains(['\r', '\n']) {
        Cow::Owned(name.replace(['\r', '\n'], ""))
    } else {
        Cow::Borrowed(name)
    }
}

fn stripped_short(name: &ShortStr) -> ShortStr {
    match strip_cr_lf(name) {
        Cow::Borrowed(_) => name.clone(),
        Cow::Owned(s) => ShortStr::try_from_string(s).expect("stripping only shortens"),
    }
}

fn stripped_dest(dest: &Destination) -> Destination {
    match dest {
        Destination::Queue(n) => Destination::Queue(stripped_short(n)),
        Destination::Exchange(n) => Destination::Exchange(stripped_short(n)),
    }
}

/// Helpers shared by the unit tests of `registry`, `bindings` and `routing`.
#[cfg(test)]
mod testkit {
    pub(super) use super::{RouteResult, Topology};
    pub(super) use crate::broker::binding::Destination;
    pub(super) use crate::broker::error::AmqpResult;
    pub(super) use crate::protocol::types::{FieldTable, FieldValue};
    use bytes::Bytes;

    pub(super) fn s(v: &str) -> FieldValue {
        FieldValue::LongStr(Bytes::copy_from_slice(v.as_bytes()))
    }

    pub(super) fn table(entries: &[(&str, FieldValue)]) -> FieldTable {
        FieldTable(
            entries
                .iter()
                .map(|(k, v)| ((*k).into(), v.clone()))
                .collect(),
        )
    }

    pub(super) fn none() -> FieldTable {
        FieldTable::new()
    }

    pub(super) fn q(n: &str) -> Destination {
        Destination::Queue(n.into())
    }

    pub(super) fn x(n: &str) -> Destination {
        Destination::Exchange(n.into())
    }

    pub(super) fn declare(t: &mut Topology, name: &str, kind: &str) -> AmqpResult<bool> {
        t.declare_exchange(&name.into(), kind, false, false, false, false, &none())
    }

    pub(super) fn declare_ad(t: &mut Topology, name: &str, kind: &str) {
        t.declare_exchange(&name.into(), kind, false, false, true, false, &none())
            .unwrap();
    }

    pub(super) fn declare_ae(t: &mut Topology, name: &str, kind: &str, ae: &str) {
        let args = table(&[("alternate-exchange", s(ae))]);
        t.declare_exchange(&name.into(), kind, false, false, false, false, &args)
            .unwrap();
    }

    pub(super) fn bind(t: &mut Topology, src: &str, dest: Destination, key: &str) {
        assert!(t.bind(src, dest, &key.into(), &none()).unwrap());
    }

    pub(super) fn route_h(
        t: &Topology,
        ex: &str,
        key: &str,
        h: Option<&FieldTable>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        let r = t.route(ex, key, h, &mut out);
        assert_eq!(r, RouteResult::Routed { queues: out.len() });
        let mut names: Vec<String> = out.iter().map(|n| n.to_string()).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "a queue was routed to twice: {out:?}");
        names
    }

    pub(super) fn route(t: &Topology, ex: &str, key: &str) -> Vec<String> {
        route_h(t, ex, key, None)
    }

    pub(super) fn err(r: AmqpResult<impl std::fmt::Debug>) -> (u16, String) {
        let e = r.unwrap_err();
        (e.code, e.text)
    }
}
