//! `Topology`: every exchange and binding of vhost "/" and routing through
//! them — exchange.declare/delete, queue.bind/unbind, exchange.bind/unbind,
//! queue deletion, auto-delete cascades, exchange-to-exchange bindings and
//! alternate exchanges — with RabbitMQ 3.12's checks, reply codes and texts
//! (`rabbit_channel`, `rabbit_exchange`, `rabbit_binding`).
//!
//! Pure: queues are only names here. Whether a queue exists (for bind) is the
//! caller's check; `check_bind` lets it keep RabbitMQ's error order.

use crate::broker::error::{code, AmqpError, AmqpResult};
use crate::broker::exchange::{BindingDef, Destination, ExchangeDef, ExchangeKind, Router};
use crate::broker::headers::{erlang_term, type_name, validate_binding, values_equal};
use crate::protocol::types::{FieldTable, FieldValue, ShortStr};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

const ALTERNATE_EXCHANGE: &str = "alternate-exchange";
const DEFAULT_EXCHANGE_REFUSED: &str = "operation not permitted on the default exchange";

/// What `Topology::route` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteResult {
    /// The exchange does not exist: the caller closes the channel with
    /// `exchange_not_found(name)` (404).
    ExchangeNotFound,
    /// The exchange is internal: clients may not publish to it (403
    /// `publish_to_internal(name)`); it only takes exchange-to-exchange
    /// traffic.
    Internal,
    /// The exchange exists; this many distinct queue names were appended to
    /// `out` (0: the message is unroutable).
    Routed { queues: usize },
}

impl RouteResult {
    pub fn exchange_found(self) -> bool {
        !matches!(self, RouteResult::ExchangeNotFound)
    }
    pub fn queues(self) -> usize {
        match self {
            RouteResult::Routed { queues } => queues,
            RouteResult::ExchangeNotFound | RouteResult::Internal => 0,
        }
    }
}

/// A routing key as `route` takes it: `&str`, `&String` or `&ShortStr` (the
/// last one lets the default exchange hand the key back as a queue name
/// without copying it).
pub trait RoutingKey {
    fn key_str(&self) -> &str;
    /// The key as a queue name, or `None` if it is too long to be one.
    fn queue_name(&self) -> Option<ShortStr>;
}

impl RoutingKey for str {
    fn key_str(&self) -> &str {
        self
    }
    fn queue_name(&self) -> Option<ShortStr> {
        ShortStr::try_from_string(self.to_owned())
    }
}

impl RoutingKey for String {
    fn key_str(&self) -> &str {
        self
    }
    fn queue_name(&self) -> Option<ShortStr> {
        self.as_str().queue_name()
    }
}

impl RoutingKey for ShortStr {
    fn key_str(&self) -> &str {
        self.as_str()
    }
    fn queue_name(&self) -> Option<ShortStr> {
        Some(self.clone())
    }
}

/// "NOT_FOUND - no exchange 'x' in vhost '/'" (404).
pub fn exchange_not_found(name: &str) -> AmqpError {
    AmqpError::not_found(format_args!("no exchange '{name}' in vhost '/'"))
}

/// "ACCESS_REFUSED - cannot publish to internal exchange 'x' in vhost '/'"
/// (403), for basic.publish to an exchange whose `internal` flag is set.
pub fn publish_to_internal(name: &str) -> AmqpError {
    AmqpError::access_refused(format_args!(
        "cannot publish to internal exchange '{name}' in vhost '/'"
    ))
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

/// Arguments in RabbitMQ's stored form: stably sorted by key.
fn sorted_args(args: &FieldTable) -> FieldTable {
    let mut sorted = args.clone();
    sorted.0.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    sorted
}

#[derive(Debug)]
struct ExchangeEntry {
    def: ExchangeDef,
    /// The `alternate-exchange` argument, when it is a valid name.
    alternate: Option<ShortStr>,
    router: Router,
    /// Bindings with this exchange as source: destination -> routing key ->
    /// distinct (sorted) argument tables.
    bindings: HashMap<Destination, HashMap<ShortStr, Vec<FieldTable>>>,
    /// Total bindings in `bindings`.
    binding_count: usize,
}

impl ExchangeEntry {
    fn new(def: ExchangeDef) -> ExchangeEntry {
        let alternate = match def.arguments.get(ALTERNATE_EXCHANGE) {
            Some(FieldValue::LongStr(b)) => ShortStr::from_bytes(b.clone()),
            _ => None,
        };
        ExchangeEntry {
            router: Router::new(def.kind),
            def,
            alternate,
            bindings: HashMap::new(),
            binding_count: 0,
        }
    }
}

/// All exchanges and bindings of vhost "/".
#[derive(Debug)]
pub struct Topology {
    exchanges: HashMap<ShortStr, ExchangeEntry>,
    /// destination -> source exchange -> number of bindings between them.
    reverse: HashMap<Destination, HashMap<ShortStr, usize>>,
}

impl Default for Topology {
    fn default() -> Self {
        Topology::new()
    }
}

/// RabbitMQ's rendering of a value in "inequivalent arg" texts when only
/// the bare value is shown.
fn bare_val(v: &FieldValue) -> String {
    match v {
        FieldValue::LongStr(b) | FieldValue::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => erlang_term(other),
    }
}

fn typed_val(v: Option<&FieldValue>) -> String {
    match v {
        None => "none".to_string(),
        Some(v) => format!("the value '{}' of type '{}'", bare_val(v), type_name(v)),
    }
}

/// RabbitMQ's `type_class`: integer types (and decimal) are one class,
/// float and double another.
fn type_class(v: &FieldValue) -> &'static str {
    match v {
        FieldValue::I8(_)
        | FieldValue::U8(_)
        | FieldValue::I16(_)
        | FieldValue::U16(_)
        | FieldValue::I32(_)
        | FieldValue::U32(_)
        | FieldValue::I64(_)
        | FieldValue::Decimal(_) => "int",
        FieldValue::F32(_) | FieldValue::F64(_) => "float",
        other => type_name(other),
    }
}

fn inequivalent(field: &str, name: &str, received: &str, current: &str) -> AmqpError {
    AmqpError::precondition_failed(format_args!(
        "inequivalent arg '{field}' for exchange '{name}' in vhost '/': \
         received {received} but current is {current}"
    ))
}

/// A small set/stack of exchanges for one `route` call: inline up to
/// `INLINE`, spilling to the heap only for long exchange-to-exchange chains.
const INLINE: usize = 16;

struct Visit<'a> {
    seen: [Option<&'a ExchangeEntry>; INLINE],
    seen_len: usize,
    seen_spill: Option<HashSet<*const ExchangeEntry>>,
    work: [Option<&'a ExchangeEntry>; INLINE],
    work_len: usize,
    work_spill: Vec<&'a ExchangeEntry>,
}

impl<'a> Visit<'a> {
    fn new() -> Visit<'a> {
        Visit {
            seen: [None; INLINE],
            seen_len: 0,
            seen_spill: None,
            work: [None; INLINE],
            work_len: 0,
            work_spill: Vec::new(),
        }
    }

    /// Marks `x` seen and queues it, unless it was seen already.
    fn visit(&mut self, x: &'a ExchangeEntry) {
        let seen = self.seen[..self.seen_len]
            .iter()
            .any(|s| s.is_some_and(|s| std::ptr::eq(s, x)))
            || self
                .seen_spill
                .as_ref()
                .is_some_and(|h| h.contains(&(x as *const _)));
        if seen {
            return;
        }
        if self.seen_len < INLINE {
            self.seen[self.seen_len] = Some(x);
            self.seen_len += 1;
        } else {
            self.seen_spill
                .get_or_insert_with(HashSet::new)
                .insert(x as *const _);
        }
        if self.work_len < INLINE {
            self.work[self.work_len] = Some(x);
            self.work_len += 1;
        } else {
            self.work_spill.push(x);
        }
    }

    fn next(&mut self) -> Option<&'a ExchangeEntry> {
        if let Some(x) = self.work_spill.pop() {
            return Some(x);
        }
        if self.work_len == 0 {
            return None;
        }
        self.work_len -= 1;
        self.work[self.work_len].take()
    }
}

impl Topology {
    /// The topology of a fresh vhost: the default exchange "" and the
    /// predeclared `amq.*` exchanges, all durable.
    pub fn new() -> Topology {
        let mut t = Topology {
            exchanges: HashMap::new(),
            reverse: HashMap::new(),
        };
        for (name, kind) in [
            ("", ExchangeKind::Direct),
            ("amq.direct", ExchangeKind::Direct),
            ("amq.fanout", ExchangeKind::Fanout),
            ("amq.topic", ExchangeKind::Topic),
            ("amq.headers", ExchangeKind::Headers),
            ("amq.match", ExchangeKind::Headers),
        ] {
            let def = ExchangeDef {
                name: ShortStr::from_static(name),
                kind,
                durable: true,
                auto_delete: false,
                internal: false,
                arguments: FieldTable::new(),
            };
            t.exchanges
                .insert(def.name.clone(), ExchangeEntry::new(def));
        }
        t
    }

    /// exchange.declare. Returns whether the exchange was created (false:
    /// it existed already, or `passive`).
    ///
    /// Errors as RabbitMQ 3.12: passive and missing 404; the default
    /// exchange 403; unknown type 503 (checked first, non-passive only);
    /// existing with another type/durable/auto_delete/internal or
    /// `alternate-exchange` 406 (other arguments are not compared, as in
    /// RabbitMQ); new with an `amq.` name 403; new with a non-string
    /// `alternate-exchange` 406.
    #[allow(clippy::too_many_arguments)]
    pub fn declare_exchange(
        &mut self,
        name: &ShortStr,
        kind: &str,
        passive: bool,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: &FieldTable,
    ) -> AmqpResult<bool> {
        let name = stripped_short(name);
        if passive {
            if name.is_empty() {
                return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_REFUSED));
            }
            return match self.exchanges.contains_key(name.as_str()) {
                true => Ok(false),
                false => Err(exchange_not_found(&name)),
            };
        }
        let Some(kind) = ExchangeKind::parse(kind) else {
            return Err(AmqpError::new(
                code::COMMAND_INVALID,
                format_args!("unknown exchange type '{kind}'"),
            ));
        };
        if name.is_empty() {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_REFUSED));
        }
        if let Some(x) = self.exchanges.get(name.as_str()) {
            let d = &x.def;
            let flag = |b: bool| if b { "'true'" } else { "'false'" };
            if d.kind != kind {
                let received = format!("'{}'", kind.as_str());
                let current = format!("'{}'", d.kind.as_str());
                return Err(inequivalent("type", &name, &received, &current));
            }
            for (field, current, received) in [
                ("durable", d.durable, durable),
                ("auto_delete", d.auto_delete, auto_delete),
                ("internal", d.internal, internal),
            ] {
                if current != received {
                    return Err(inequivalent(field, &name, flag(received), flag(current)));
                }
            }
            let current = d.arguments.get(ALTERNATE_EXCHANGE);
            let received = arguments.get(ALTERNATE_EXCHANGE);
            match (current, received) {
                (None, None) => {}
                (Some(c), Some(r)) => {
                    if c != r && !(type_class(c) == type_class(r) && values_equal(c, r)) {
                        let received = format!("'{}'", bare_val(r));
                        let current = format!("'{}'", bare_val(c));
                        return Err(inequivalent(ALTERNATE_EXCHANGE, &name, &received, &current));
                    }
                }
                (c, r) => {
                    return Err(inequivalent(
                        ALTERNATE_EXCHANGE,
                        &name,
                        &typed_val(r),
                        &typed_val(c),
                    ))
                }
            }
            return Ok(false);
        }
        if name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format_args!(
                "exchange name '{name}' contains reserved prefix 'amq.*'"
            )));
        }
        match arguments.get(ALTERNATE_EXCHANGE) {
            None | Some(FieldValue::LongStr(_)) => {}
            Some(other) => {
                return Err(AmqpError::precondition_failed(format_args!(
                    "invalid type '{}' for arg '{ALTERNATE_EXCHANGE}' in exchange '{name}' in vhost '/'",
                    type_name(other)
                )))
            }
        }
        let def = ExchangeDef {
            name: name.clone(),
            kind,
            durable,
            auto_delete,
            internal,
            arguments: arguments.clone(),
        };
        self.exchanges.insert(name, ExchangeEntry::new(def));
        Ok(true)
    }

    /// exchange.delete. Returns every exchange removed: the named one first
    /// (absent if it did not exist — RabbitMQ answers delete-ok then), then
    /// auto-delete exchanges that lost their last binding as a consequence.
    ///
    /// Errors: the default exchange or an `amq.` name 403; `if_unused` with
    /// bindings from it 406.
    pub fn delete_exchange(&mut self, name: &str, if_unused: bool) -> AmqpResult<Vec<ShortStr>> {
        let name = strip_cr_lf(name);
        if name.is_empty() {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_REFUSED));
        }
        if name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format_args!(
                "deletion of system exchange '{name}' in vhost '/' not allowed"
            )));
        }
        let Some(x) = self.exchanges.get(name.as_ref()) else {
            return Ok(Vec::new());
        };
        if if_unused && x.binding_count > 0 {
            return Err(AmqpError::precondition_failed(format_args!(
                "exchange '{name}' in vhost '/' in use"
            )));
        }
        let name = x.def.name.clone();
        let mut deleted = vec![name.clone()];
        let affected = self.remove_exchange_entry(&name);
        self.auto_delete_cascade(affected, &mut deleted);
        Ok(deleted)
    }

    pub fn exchange(&self, name: &str) -> Option<&ExchangeDef> {
        self.exchanges.get(name).map(|x| &x.def)
    }

    pub fn exchanges(&self) -> impl Iterator<Item = &ExchangeDef> {
        self.exchanges.values().map(|x| &x.def)
    }

    /// The checks of queue.bind / exchange.bind that come before the
    /// destination queue's existence in RabbitMQ's order: default exchange
    /// 403, then missing source (or destination exchange) 404. The caller
    /// checks the queue after this and before `bind`.
    pub fn check_bind(&self, source: &str, destination: &Destination) -> AmqpResult<()> {
        let source = strip_cr_lf(source);
        let destination = stripped_dest(destination);
        if source.is_empty() || matches!(&destination, Destination::Exchange(d) if d.is_empty()) {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_REFUSED));
        }
        if !self.exchanges.contains_key(source.as_ref()) {
            return Err(exchange_not_found(&source));
        }
        if let Destination::Exchange(d) = &destination {
            if !self.exchanges.contains_key(d.as_str()) {
                return Err(exchange_not_found(d));
            }
        }
        Ok(())
    }

    /// queue.bind / exchange.bind. Returns whether the binding is new
    /// (binding twice is not an error). Errors: `check_bind`'s, then for a
    /// headers source an invalid `x-match` 406.
    pub fn bind(
        &mut self,
        source: &str,
        destination: Destination,
        routing_key: &ShortStr,
        arguments: &FieldTable,
    ) -> AmqpResult<bool> {
        self.check_bind(source, &destination)?;
        let source = strip_cr_lf(source);
        let destination = stripped_dest(&destination);
        let x = self
            .exchanges
            .get_mut(source.as_ref())
            .expect("checked by check_bind");
        if x.def.kind == ExchangeKind::Headers {
            validate_binding(arguments)?;
        }
        let args = sorted_args(arguments);
        let per_key = x
            .bindings
            .entry(destination.clone())
            .or_default()
            .entry(routing_key.clone())
            .or_default();
        if per_key.contains(&args) {
            return Ok(false);
        }
        let first_for_pair = per_key.is_empty();
        per_key.push(args);
        let args = per_key.last().expect("just pushed");
        if first_for_pair || x.router.per_binding() {
            x.router.add(routing_key, &destination, args);
        }
        x.binding_count += 1;
        let source = x.def.name.clone();
        *self
            .reverse
            .entry(destination)
            .or_default()
            .entry(source)
            .or_insert(0) += 1;
        Ok(true)
    }

    /// queue.unbind / exchange.unbind. Returns the auto-delete exchanges
    /// deleted because this was their last binding as source (the source
    /// itself, and any cascade).
    ///
    /// As in RabbitMQ 3.12, unbinding from or to an exchange that does not
    /// exist, or a binding that does not exist, succeeds; only the default
    /// exchange is refused (403).
    pub fn unbind(
        &mut self,
        source: &str,
        destination: &Destination,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> AmqpResult<Vec<ShortStr>> {
        let source = strip_cr_lf(source);
        let destination = stripped_dest(destination);
        if source.is_empty() || matches!(&destination, Destination::Exchange(d) if d.is_empty()) {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_REFUSED));
        }
        if let Destination::Exchange(d) = &destination {
            if !self.exchanges.contains_key(d.as_str()) {
                return Ok(Vec::new());
            }
        }
        let Some(x) = self.exchanges.get_mut(source.as_ref()) else {
            return Ok(Vec::new());
        };
        let args = sorted_args(arguments);
        let Some(by_key) = x.bindings.get_mut(&destination) else {
            return Ok(Vec::new());
        };
        let Some(key) = by_key.get_key_value(routing_key).map(|(k, _)| k.clone()) else {
            return Ok(Vec::new());
        };
        let list = by_key.get_mut(routing_key).expect("just found");
        let Some(i) = list.iter().position(|a| *a == args) else {
            return Ok(Vec::new());
        };
        let removed = list.remove(i);
        let last_for_pair = list.is_empty();
        if last_for_pair {
            by_key.remove(routing_key);
            if by_key.is_empty() {
                x.bindings.remove(&destination);
            }
        }
        if last_for_pair || x.router.per_binding() {
            x.router.remove(&key, &destination, &removed);
        }
        x.binding_count -= 1;
        let source = x.def.name.clone();
        self.forget_reverse(&destination, &source, 1);
        let mut deleted = Vec::new();
        self.auto_delete_cascade(vec![source], &mut deleted);
        Ok(deleted)
    }

    /// A queue was deleted: drops every binding to it. Returns the
    /// auto-delete exchanges deleted because they lost their last binding.
    pub fn remove_queue(&mut self, queue: &str) -> Vec<ShortStr> {
        let Some(queue) = ShortStr::try_from_string(queue.to_owned()) else {
            return Vec::new();
        };
        let affected = self.drop_bindings_to(&Destination::Queue(queue));
        let mut deleted = Vec::new();
        self.auto_delete_cascade(affected, &mut deleted);
        deleted
    }

    /// Every binding (not the default exchange's implicit ones), sorted by
    /// source, destination and routing key.
    pub fn bindings(&self) -> Vec<BindingDef> {
        let mut all: Vec<BindingDef> = self
            .exchanges
            .values()
            .flat_map(|x| Self::bindings_from(x, None))
            .collect();
        Self::sort_bindings(&mut all);
        all
    }

    /// Every binding whose destination is the queue `queue`, sorted.
    pub fn bindings_of_queue(&self, queue: &str) -> Vec<BindingDef> {
        let Some(q) = ShortStr::try_from_string(queue.to_owned()) else {
            return Vec::new();
        };
        let dest = Destination::Queue(q);
        let mut all: Vec<BindingDef> = self
            .reverse
            .get(&dest)
            .into_iter()
            .flat_map(|sources| sources.keys())
            .filter_map(|s| self.exchanges.get(s.as_str()))
            .flat_map(|x| Self::bindings_from(x, Some(&dest)))
            .collect();
        Self::sort_bindings(&mut all);
        all
    }

    /// Number of bindings with `exchange` as source (0 if it does not exist).
    pub fn binding_count(&self, exchange: &str) -> usize {
        self.exchanges.get(exchange).map_or(0, |x| x.binding_count)
    }

    /// Routes one message: appends to `out` the names of the queues it goes
    /// to, each at most once per call (names already in `out` before the call
    /// are left alone), following exchange-to-exchange bindings and
    /// alternate exchanges (taken when an exchange itself matched nothing),
    /// each exchange visited at most once. The default exchange "" routes to
    /// the queue named by the routing key, whether it exists or not.
    ///
    /// Allocates nothing but `out`'s growth, except past 16 exchanges in one
    /// exchange-to-exchange walk.
    pub fn route<K: RoutingKey + ?Sized>(
        &self,
        exchange: &str,
        routing_key: &K,
        headers: Option<&FieldTable>,
        out: &mut Vec<ShortStr>,
    ) -> RouteResult {
        if exchange.is_empty() {
            // The default exchange: the queue the key names, if any. It
            // takes no bindings, arguments or alternate exchange, so the
            // hottest path skips the lookups.
            let queues = routing_key.queue_name().map(|q| out.push(q)).is_some();
            return RouteResult::Routed {
                queues: queues as usize,
            };
        }
        let Some(root) = self.exchanges.get(exchange) else {
            return RouteResult::ExchangeNotFound;
        };
        if root.def.internal {
            return RouteResult::Internal;
        }
        let start = out.len();
        let key = routing_key.key_str();
        let mut visit = Visit::new();
        visit.visit(root);
        let mut batches = 0usize;
        let mut must_dedup = false;
        while let Some(x) = visit.next() {
            if x.def.name.is_empty() {
                if let Some(q) = routing_key.queue_name() {
                    out.push(q);
                    batches += 1;
                }
                continue;
            }
            let before = out.len();
            let mut matched_any = false;
            let distinct = x.router.route(key, headers, |dest| {
                matched_any = true;
                match dest {
                    Destination::Queue(q) => out.push(q.clone()),
                    Destination::Exchange(e) => {
                        if let Some(next) = self.exchanges.get(e.as_str()) {
                            visit.visit(next);
                        }
                    }
                }
            });
            if out.len() > before {
                batches += 1;
                must_dedup |= !distinct;
            }
            if !matched_any {
                if let Some(next) = x.alternate.as_ref().and_then(|a| self.exchanges.get(a)) {
                    visit.visit(next);
                }
            }
        }
        if (must_dedup || batches > 1) && out.len() - start > 1 {
            dedup_tail(out, start);
        }
        RouteResult::Routed {
            queues: out.len() - start,
        }
    }

    // ---- internals ----

    fn bindings_from<'a>(
        x: &'a ExchangeEntry,
        only: Option<&'a Destination>,
    ) -> impl Iterator<Item = BindingDef> + 'a {
        x.bindings
            .iter()
            .filter(move |(d, _)| only.is_none_or(|o| o == *d))
            .flat_map(move |(dest, by_key)| {
                by_key.iter().flat_map(move |(key, args_list)| {
                    args_list.iter().map(move |args| BindingDef {
                        source: x.def.name.clone(),
                        destination: dest.clone(),
                        routing_key: key.clone(),
                        arguments: args.clone(),
                    })
                })
            })
    }

    fn sort_bindings(all: &mut [BindingDef]) {
        all.sort_by(|a, b| {
            (&a.source, &a.destination, &a.routing_key).cmp(&(
                &b.source,
                &b.destination,
                &b.routing_key,
            ))
        });
    }

    fn forget_reverse(&mut self, destination: &Destination, source: &ShortStr, n: usize) {
        if let Some(sources) = self.reverse.get_mut(destination) {
            if let Some(count) = sources.get_mut(source.as_str()) {
                assert!(*count >= n, "reverse binding count underflow");
                *count -= n;
                if *count == 0 {
                    sources.remove(source.as_str());
                }
            }
            if sources.is_empty() {
                self.reverse.remove(destination);
            }
        }
    }

    /// Removes every binding to `dest`; returns the sources that lost one.
    fn drop_bindings_to(&mut self, dest: &Destination) -> Vec<ShortStr> {
        let Some(sources) = self.reverse.remove(dest) else {
            return Vec::new();
        };
        let mut affected: Vec<ShortStr> = sources.into_keys().collect();
        affected.sort();
        for s in &affected {
            let Some(x) = self.exchanges.get_mut(s.as_str()) else {
                continue;
            };
            let Some(by_key) = x.bindings.remove(dest) else {
                continue;
            };
            for (key, args_list) in by_key {
                x.binding_count -= args_list.len();
                if x.router.per_binding() {
                    for args in &args_list {
                        x.router.remove(&key, dest, args);
                    }
                } else {
                    x.router.remove(&key, dest, &FieldTable::new());
                }
            }
        }
        affected
    }

    /// Removes an exchange with all its bindings (as source and as
    /// destination); returns the sources that lost a binding to it.
    fn remove_exchange_entry(&mut self, name: &ShortStr) -> Vec<ShortStr> {
        let Some(x) = self.exchanges.remove(name.as_str()) else {
            return Vec::new();
        };
        for (dest, by_key) in &x.bindings {
            let n = by_key.values().map(Vec::len).sum();
            self.forget_reverse(dest, name, n);
        }
        self.drop_bindings_to(&Destination::Exchange(name.clone()))
    }

    /// Deletes, transitively, each auto-delete exchange among `candidates`
    /// left without bindings as source; appends their names to `deleted`.
    fn auto_delete_cascade(&mut self, mut candidates: Vec<ShortStr>, deleted: &mut Vec<ShortStr>) {
        while let Some(name) = candidates.pop() {
            let unused_auto_delete = self.exchanges.get(name.as_str()).is_some_and(|x| {
                x.def.auto_delete && x.binding_count == 0 && !x.def.name.is_empty()
            });
            if unused_auto_delete {
                candidates.extend(self.remove_exchange_entry(&name));
                deleted.push(name);
            }
        }
    }
}

/// Sorts `out[start..]` and removes duplicates from it, in place.
fn dedup_tail(out: &mut Vec<ShortStr>, start: usize) {
    out[start..].sort_unstable();
    let mut w = start + 1;
    for r in start + 1..out.len() {
        if out[r] != out[w - 1] {
            out.swap(w, r);
            w += 1;
        }
    }
    out.truncate(w);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn s(v: &str) -> FieldValue {
        FieldValue::LongStr(Bytes::copy_from_slice(v.as_bytes()))
    }

    fn table(entries: &[(&str, FieldValue)]) -> FieldTable {
        FieldTable(
            entries
                .iter()
                .map(|(k, v)| ((*k).into(), v.clone()))
                .collect(),
        )
    }

    fn none() -> FieldTable {
        FieldTable::new()
    }

    fn q(n: &str) -> Destination {
        Destination::Queue(n.into())
    }

    fn x(n: &str) -> Destination {
        Destination::Exchange(n.into())
    }

    fn declare(t: &mut Topology, name: &str, kind: &str) -> AmqpResult<bool> {
        t.declare_exchange(&name.into(), kind, false, false, false, false, &none())
    }

    fn declare_ad(t: &mut Topology, name: &str, kind: &str) {
        t.declare_exchange(&name.into(), kind, false, false, true, false, &none())
            .unwrap();
    }

    fn declare_ae(t: &mut Topology, name: &str, kind: &str, ae: &str) {
        let args = table(&[("alternate-exchange", s(ae))]);
        t.declare_exchange(&name.into(), kind, false, false, false, false, &args)
            .unwrap();
    }

    fn bind(t: &mut Topology, src: &str, dest: Destination, key: &str) {
        assert!(t.bind(src, dest, &key.into(), &none()).unwrap());
    }

    fn route_h(t: &Topology, ex: &str, key: &str, h: Option<&FieldTable>) -> Vec<String> {
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

    fn route(t: &Topology, ex: &str, key: &str) -> Vec<String> {
        route_h(t, ex, key, None)
    }

    fn err(r: AmqpResult<impl std::fmt::Debug>) -> (u16, String) {
        let e = r.unwrap_err();
        (e.code, e.text)
    }

    // ---- declare ----

    #[test]
    fn predeclared_exchanges() {
        let t = Topology::new();
        let mut names: Vec<&str> = t.exchanges().map(|d| d.name.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "",
                "amq.direct",
                "amq.fanout",
                "amq.headers",
                "amq.match",
                "amq.topic"
            ]
        );
        for d in t.exchanges() {
            assert!(d.durable && !d.auto_delete && !d.internal, "{d:?}");
        }
        assert_eq!(t.exchange("").unwrap().kind, ExchangeKind::Direct);
        assert_eq!(t.exchange("amq.match").unwrap().kind, ExchangeKind::Headers);
        assert_eq!(t.exchange("amq.topic").unwrap().kind, ExchangeKind::Topic);
        assert_eq!(t.exchange("amq.fanout").unwrap().kind, ExchangeKind::Fanout);
    }

    #[test]
    fn declare_creates_once() {
        let mut t = Topology::new();
        let args = table(&[("foo", s("bar"))]);
        assert!(t
            .declare_exchange(&"e".into(), "topic", false, true, true, true, &args)
            .unwrap());
        let d = t.exchange("e").unwrap();
        assert_eq!(d.kind, ExchangeKind::Topic);
        assert!(d.durable && d.auto_delete && d.internal);
        assert_eq!(d.arguments, args);
        assert!(!t
            .declare_exchange(&"e".into(), "topic", false, true, true, true, &args)
            .unwrap());
        // Arguments other than alternate-exchange are not compared.
        assert!(!t
            .declare_exchange(&"e".into(), "topic", false, true, true, true, &none())
            .unwrap());
    }

    #[test]
    fn passive_declare() {
        let mut t = Topology::new();
        assert_eq!(
            err(t.declare_exchange(&"nope".into(), "direct", true, false, false, false, &none())),
            (
                404,
                "NOT_FOUND - no exchange 'nope' in vhost '/'".to_string()
            )
        );
        declare(&mut t, "e", "fanout").unwrap();
        // Passive ignores the type and flags entirely.
        assert!(!t
            .declare_exchange(&"e".into(), "bogus", true, true, true, true, &none())
            .unwrap());
        assert!(!t
            .declare_exchange(&"amq.topic".into(), "", true, false, false, false, &none())
            .unwrap());
        assert_eq!(
            err(t.declare_exchange(&"".into(), "direct", true, false, false, false, &none())),
            (
                403,
                "ACCESS_REFUSED - operation not permitted on the default exchange".to_string()
            )
        );
    }

    #[test]
    fn declare_default_exchange_refused() {
        let mut t = Topology::new();
        assert_eq!(
            err(t.declare_exchange(&"".into(), "direct", false, true, false, false, &none())),
            (
                403,
                "ACCESS_REFUSED - operation not permitted on the default exchange".to_string()
            )
        );
    }

    #[test]
    fn declare_unknown_type() {
        let mut t = Topology::new();
        assert_eq!(
            err(declare(&mut t, "e", "x-delayed-message")),
            (
                503,
                "COMMAND_INVALID - unknown exchange type 'x-delayed-message'".to_string()
            )
        );
        // The type is checked before anything else, even for existing ones.
        assert_eq!(err(declare(&mut t, "amq.direct", "nope")).0, 503);
        assert!(t.exchange("e").is_none());
    }

    #[test]
    fn declare_reserved_prefix() {
        let mut t = Topology::new();
        assert_eq!(
            err(declare(&mut t, "amq.foo", "direct")),
            (
                403,
                "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'"
                    .to_string()
            )
        );
        // Redeclaring a predeclared one with equal properties is fine.
        assert!(!t
            .declare_exchange(
                &"amq.direct".into(),
                "direct",
                false,
                true,
                false,
                false,
                &none()
            )
            .unwrap());
        // ... and with different ones it is an equivalence error, not 403.
        assert_eq!(
            err(t.declare_exchange(&"amq.direct".into(), "fanout", false, true, false, false, &none())),
            (
                406,
                "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'amq.direct' in vhost '/': received 'fanout' but current is 'direct'".to_string()
            )
        );
        // "amq" without the dot is an ordinary name.
        assert!(declare(&mut t, "amqfoo", "direct").unwrap());
    }

    #[test]
    fn declare_inequivalent_flags() {
        let mut t = Topology::new();
        t.declare_exchange(&"e".into(), "direct", false, true, false, false, &none())
            .unwrap();
        let cases = [
            ((false, false, false), "durable", "'false'", "'true'"),
            ((true, true, false), "auto_delete", "'true'", "'false'"),
            ((true, false, true), "internal", "'true'", "'false'"),
        ];
        for ((durable, ad, internal), field, received, current) in cases {
            assert_eq!(
                err(t.declare_exchange(&"e".into(), "direct", false, durable, ad, internal, &none())),
                (
                    406,
                    format!(
                        "PRECONDITION_FAILED - inequivalent arg '{field}' for exchange 'e' in vhost '/': received {received} but current is {current}"
                    )
                )
            );
        }
    }

    #[test]
    fn declare_inequivalent_alternate_exchange() {
        let mut t = Topology::new();
        declare_ae(&mut t, "e", "direct", "ae1");
        let decl = |t: &mut Topology, args: &FieldTable| {
            t.declare_exchange(&"e".into(), "direct", false, false, false, false, args)
        };
        assert!(!decl(&mut t, &table(&[("alternate-exchange", s("ae1"))])).unwrap());
        let pre = "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'e' in vhost '/': ";
        assert_eq!(
            err(decl(&mut t, &table(&[("alternate-exchange", s("ae2"))]))),
            (406, format!("{pre}received 'ae2' but current is 'ae1'"))
        );
        assert_eq!(
            err(decl(&mut t, &none())),
            (
                406,
                format!("{pre}received none but current is the value 'ae1' of type 'longstr'")
            )
        );
        assert_eq!(
            err(decl(
                &mut t,
                &table(&[("alternate-exchange", FieldValue::I32(5))])
            )),
            (406, format!("{pre}received '5' but current is 'ae1'"))
        );
        declare(&mut t, "plain", "direct").unwrap();
        assert_eq!(
            err(t.declare_exchange(
                &"plain".into(),
                "direct",
                false,
                false,
                false,
                false,
                &table(&[("alternate-exchange", s("ae"))])
            )),
            (
                406,
                "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'plain' in vhost '/': received the value 'ae' of type 'longstr' but current is none".to_string()
            )
        );
    }

    #[test]
    fn declare_alternate_exchange_must_be_a_string() {
        let mut t = Topology::new();
        assert_eq!(
            err(t.declare_exchange(
                &"e".into(),
                "direct",
                false,
                false,
                false,
                false,
                &table(&[("alternate-exchange", FieldValue::I64(1))])
            )),
            (
                406,
                "PRECONDITION_FAILED - invalid type 'long' for arg 'alternate-exchange' in exchange 'e' in vhost '/'".to_string()
            )
        );
        assert!(t.exchange("e").is_none());
    }

    #[test]
    fn names_lose_cr_lf() {
        let mut t = Topology::new();
        assert!(declare(&mut t, "a\r\nb", "direct").unwrap());
        assert!(t.exchange("ab").is_some());
        assert!(!declare(&mut t, "ab", "direct").unwrap());
        bind(&mut t, "a\nb", q("q\r"), "k");
        assert_eq!(route(&t, "ab", "k"), ["q"]);
        assert_eq!(t.delete_exchange("ab\n", false).unwrap(), ["ab"]);
    }

    // ---- delete ----

    #[test]
    fn delete_refusals() {
        let mut t = Topology::new();
        assert_eq!(
            err(t.delete_exchange("", false)),
            (
                403,
                "ACCESS_REFUSED - operation not permitted on the default exchange".to_string()
            )
        );
        assert_eq!(
            err(t.delete_exchange("amq.direct", false)),
            (
                403,
                "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed"
                    .to_string()
            )
        );
        assert_eq!(
            err(t.delete_exchange("amq.nonexistent", false)).0,
            403,
            "the prefix is refused even when missing"
        );
        assert_eq!(
            t.delete_exchange("missing", false).unwrap(),
            Vec::<ShortStr>::new()
        );
        assert_eq!(
            t.delete_exchange("missing", true).unwrap(),
            Vec::<ShortStr>::new()
        );
    }

    #[test]
    fn delete_if_unused() {
        let mut t = Topology::new();
        declare(&mut t, "e", "direct").unwrap();
        declare(&mut t, "up", "direct").unwrap();
        // A binding *to* e does not make it used.
        bind(&mut t, "up", x("e"), "k");
        bind(&mut t, "e", q("q"), "k");
        assert_eq!(
            err(t.delete_exchange("e", true)),
            (
                406,
                "PRECONDITION_FAILED - exchange 'e' in vhost '/' in use".to_string()
            )
        );
        t.unbind("e", &q("q"), "k", &none()).unwrap();
        assert_eq!(t.delete_exchange("e", true).unwrap(), ["e"]);
        assert!(t.exchange("e").is_none());
        assert!(t.bindings().is_empty(), "binding up->e went with e");
        assert_eq!(t.binding_count("up"), 0);
    }

    #[test]
    fn delete_removes_bindings_both_ways() {
        let mut t = Topology::new();
        declare(&mut t, "e", "fanout").unwrap();
        declare(&mut t, "down", "fanout").unwrap();
        bind(&mut t, "amq.direct", x("e"), "k");
        bind(&mut t, "e", q("q1"), "");
        bind(&mut t, "e", x("down"), "");
        bind(&mut t, "down", q("q2"), "");
        assert_eq!(t.delete_exchange("e", false).unwrap(), ["e"]);
        assert_eq!(t.bindings().len(), 1);
        assert_eq!(t.bindings()[0].source, "down");
        assert!(t.bindings_of_queue("q1").is_empty());
        assert_eq!(route(&t, "amq.direct", "k"), Vec::<String>::new());
        // A new exchange of the same name starts clean.
        declare(&mut t, "e", "direct").unwrap();
        assert_eq!(t.binding_count("e"), 0);
        assert_eq!(route(&t, "e", "k"), Vec::<String>::new());
    }

    #[test]
    fn deleting_destination_auto_deletes_source() {
        let mut t = Topology::new();
        declare_ad(&mut t, "ad1", "fanout");
        declare_ad(&mut t, "ad2", "fanout");
        declare(&mut t, "target", "fanout").unwrap();
        // ad2 -> ad1 -> target: deleting target empties ad1, which goes and
        // empties ad2, which goes too.
        bind(&mut t, "ad1", x("target"), "");
        bind(&mut t, "ad2", x("ad1"), "");
        let deleted = t.delete_exchange("target", false).unwrap();
        assert_eq!(deleted, ["target", "ad1", "ad2"]);
        assert!(t.exchange("ad1").is_none() && t.exchange("ad2").is_none());
    }

    // ---- bind / unbind ----

    #[test]
    fn bind_errors() {
        let mut t = Topology::new();
        let refused = (
            403,
            "ACCESS_REFUSED - operation not permitted on the default exchange".to_string(),
        );
        assert_eq!(err(t.bind("", q("q"), &"q".into(), &none())), refused);
        assert_eq!(
            err(t.bind("amq.direct", x(""), &"k".into(), &none())),
            refused
        );
        assert_eq!(err(t.unbind("", &q("q"), "q", &none())), refused);
        assert_eq!(err(t.check_bind("", &q("q"))), refused);
        assert_eq!(
            err(t.bind("nope", q("q"), &"k".into(), &none())),
            (
                404,
                "NOT_FOUND - no exchange 'nope' in vhost '/'".to_string()
            )
        );
        assert_eq!(
            err(t.bind("amq.direct", x("nope"), &"k".into(), &none())),
            (
                404,
                "NOT_FOUND - no exchange 'nope' in vhost '/'".to_string()
            )
        );
        // Both missing: the source is reported.
        assert_eq!(
            err(t.bind("src", x("dst"), &"k".into(), &none())).1,
            "NOT_FOUND - no exchange 'src' in vhost '/'"
        );
        assert!(t.check_bind("amq.direct", &q("any-queue")).is_ok());
        assert!(t.bindings().is_empty());
    }

    #[test]
    fn headers_bind_validates_x_match() {
        let mut t = Topology::new();
        let bad = table(&[("x-match", s("most"))]);
        assert_eq!(
            err(t.bind("amq.headers", q("q"), &"".into(), &bad)),
            (
                406,
                "PRECONDITION_FAILED - Invalid x-match field value <<\"most\">>; expected all, any, all-with-x, or any-with-x".to_string()
            )
        );
        // Other exchange types do not look at x-match.
        assert!(t.bind("amq.direct", q("q"), &"".into(), &bad).unwrap());
    }

    #[test]
    fn bind_is_idempotent_and_args_are_identity() {
        let mut t = Topology::new();
        let a = table(&[("a", FieldValue::I32(1)), ("b", s("x"))]);
        let a_reordered = table(&[("b", s("x")), ("a", FieldValue::I32(1))]);
        let other = table(&[("a", FieldValue::I32(2))]);
        assert!(t.bind("amq.direct", q("q"), &"k".into(), &a).unwrap());
        assert!(!t
            .bind("amq.direct", q("q"), &"k".into(), &a_reordered)
            .unwrap());
        assert!(t.bind("amq.direct", q("q"), &"k".into(), &other).unwrap());
        assert_eq!(t.binding_count("amq.direct"), 2);
        assert_eq!(route(&t, "amq.direct", "k"), ["q"]);
        // Stored sorted by key.
        let listed = t.bindings_of_queue("q");
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().any(|b| b.arguments == a));
        // Removing one of the two keeps the route.
        t.unbind("amq.direct", &q("q"), "k", &a_reordered).unwrap();
        assert_eq!(route(&t, "amq.direct", "k"), ["q"]);
        t.unbind("amq.direct", &q("q"), "k", &a).unwrap();
        assert_eq!(route(&t, "amq.direct", "k"), ["q"]);
        t.unbind("amq.direct", &q("q"), "k", &other).unwrap();
        assert_eq!(route(&t, "amq.direct", "k"), Vec::<String>::new());
        assert_eq!(t.binding_count("amq.direct"), 0);
        assert!(t.reverse.is_empty());
    }

    #[test]
    fn unbind_missing_things_is_ok() {
        let mut t = Topology::new();
        assert!(t.unbind("nope", &q("q"), "k", &none()).unwrap().is_empty());
        assert!(t
            .unbind("amq.direct", &x("nope"), "k", &none())
            .unwrap()
            .is_empty());
        assert!(t
            .unbind("amq.direct", &q("q"), "k", &none())
            .unwrap()
            .is_empty());
        bind(&mut t, "amq.direct", q("q"), "k");
        assert!(t
            .unbind("amq.direct", &q("q"), "other", &none())
            .unwrap()
            .is_empty());
        assert!(t
            .unbind("amq.direct", &q("q"), "k", &table(&[("a", s("1"))]))
            .unwrap()
            .is_empty());
        assert_eq!(route(&t, "amq.direct", "k"), ["q"]);
    }

    #[test]
    fn auto_delete_on_last_source_unbind() {
        let mut t = Topology::new();
        declare_ad(&mut t, "ad", "direct");
        bind(&mut t, "ad", q("q1"), "a");
        bind(&mut t, "ad", q("q2"), "b");
        assert!(t.unbind("ad", &q("q1"), "a", &none()).unwrap().is_empty());
        assert!(t.exchange("ad").is_some());
        assert_eq!(t.unbind("ad", &q("q2"), "b", &none()).unwrap(), ["ad"]);
        assert!(t.exchange("ad").is_none());
        // An auto-delete exchange that never had bindings stays.
        declare_ad(&mut t, "fresh", "direct");
        assert!(t.exchange("fresh").is_some());
    }

    #[test]
    fn auto_delete_ignores_bindings_as_destination() {
        let mut t = Topology::new();
        declare_ad(&mut t, "ad", "fanout");
        bind(&mut t, "amq.fanout", x("ad"), "");
        bind(&mut t, "ad", q("q"), "");
        // Removing the binding *to* ad does not delete it.
        assert!(t
            .unbind("amq.fanout", &x("ad"), "", &none())
            .unwrap()
            .is_empty());
        assert!(t.exchange("ad").is_some());
        assert_eq!(t.remove_queue("q"), ["ad"]);
        assert!(t.exchange("ad").is_none());
    }

    #[test]
    fn remove_queue_drops_its_bindings() {
        let mut t = Topology::new();
        declare_ad(&mut t, "ad", "topic");
        bind(&mut t, "amq.direct", q("q"), "k1");
        bind(&mut t, "amq.direct", q("q"), "k2");
        bind(&mut t, "amq.direct", q("other"), "k1");
        bind(&mut t, "ad", q("q"), "#");
        assert_eq!(t.bindings_of_queue("q").len(), 3);
        assert_eq!(t.remove_queue("q"), ["ad"]);
        assert!(t.bindings_of_queue("q").is_empty());
        assert_eq!(route(&t, "amq.direct", "k1"), ["other"]);
        assert_eq!(route(&t, "amq.direct", "k2"), Vec::<String>::new());
        assert_eq!(t.binding_count("amq.direct"), 1);
        assert!(t.remove_queue("q").is_empty());
        assert!(t.remove_queue("never-bound").is_empty());
    }

    #[test]
    fn bindings_listing_is_sorted() {
        let mut t = Topology::new();
        bind(&mut t, "amq.topic", q("b"), "x.#");
        bind(&mut t, "amq.direct", q("b"), "k");
        bind(&mut t, "amq.direct", q("a"), "k");
        let listed: Vec<(String, String, String)> = t
            .bindings()
            .into_iter()
            .map(|b| {
                (
                    b.source.to_string(),
                    b.destination.name().to_string(),
                    b.routing_key.to_string(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("amq.direct".into(), "a".into(), "k".into()),
                ("amq.direct".into(), "b".into(), "k".into()),
                ("amq.topic".into(), "b".into(), "x.#".into()),
            ]
        );
    }

    // ---- routing ----

    #[test]
    fn route_unknown_exchange() {
        let t = Topology::new();
        let mut out = Vec::new();
        assert_eq!(
            t.route("nope", "k", None, &mut out),
            RouteResult::ExchangeNotFound
        );
        assert!(out.is_empty());
        assert_eq!(
            exchange_not_found("nope").text,
            "NOT_FOUND - no exchange 'nope' in vhost '/'"
        );
        assert_eq!(
            publish_to_internal("i").text,
            "ACCESS_REFUSED - cannot publish to internal exchange 'i' in vhost '/'"
        );
    }

    #[test]
    fn default_exchange_routes_by_name() {
        let t = Topology::new();
        assert_eq!(route(&t, "", "any-queue"), ["any-queue"]);
        let key: ShortStr = "q".into();
        let mut out = Vec::new();
        assert_eq!(
            t.route("", &key, None, &mut out),
            RouteResult::Routed { queues: 1 }
        );
        assert_eq!(out, ["q"]);
        // An empty key still names a (possibly missing) queue "".
        assert_eq!(route(&t, "", ""), [""]);
    }

    #[test]
    fn direct_routing() {
        let mut t = Topology::new();
        bind(&mut t, "amq.direct", q("q1"), "k");
        bind(&mut t, "amq.direct", q("q2"), "k");
        bind(&mut t, "amq.direct", q("q1"), "j");
        assert_eq!(route(&t, "amq.direct", "k"), ["q1", "q2"]);
        assert_eq!(route(&t, "amq.direct", "j"), ["q1"]);
        assert_eq!(route(&t, "amq.direct", "K"), Vec::<String>::new());
        assert_eq!(route(&t, "amq.direct", ""), Vec::<String>::new());
    }

    #[test]
    fn out_keeps_previous_contents() {
        let mut t = Topology::new();
        bind(&mut t, "amq.topic", q("q1"), "#");
        bind(&mut t, "amq.topic", q("q1"), "a");
        let mut out: Vec<ShortStr> = vec!["q1".into(), "zzz".into()];
        assert_eq!(
            t.route("amq.topic", "a", None, &mut out),
            RouteResult::Routed { queues: 1 }
        );
        assert_eq!(out, ["q1", "zzz", "q1"]);
    }

    #[test]
    fn fanout_routing() {
        let mut t = Topology::new();
        bind(&mut t, "amq.fanout", q("q1"), "");
        bind(&mut t, "amq.fanout", q("q2"), "ignored");
        bind(&mut t, "amq.fanout", q("q2"), "twice");
        assert_eq!(route(&t, "amq.fanout", "whatever"), ["q1", "q2"]);
        t.unbind("amq.fanout", &q("q2"), "twice", &none()).unwrap();
        assert_eq!(route(&t, "amq.fanout", ""), ["q1", "q2"]);
        t.unbind("amq.fanout", &q("q2"), "ignored", &none())
            .unwrap();
        assert_eq!(route(&t, "amq.fanout", ""), ["q1"]);
    }

    #[test]
    fn topic_routing_dedups() {
        let mut t = Topology::new();
        bind(&mut t, "amq.topic", q("q1"), "*.orange.*");
        bind(&mut t, "amq.topic", q("q2"), "*.*.rabbit");
        bind(&mut t, "amq.topic", q("q2"), "lazy.#");
        bind(&mut t, "amq.topic", q("q3"), "#.#");
        assert_eq!(
            route(&t, "amq.topic", "quick.orange.rabbit"),
            ["q1", "q2", "q3"]
        );
        assert_eq!(
            route(&t, "amq.topic", "lazy.orange.elephant"),
            ["q1", "q2", "q3"]
        );
        assert_eq!(route(&t, "amq.topic", "lazy.pink.rabbit"), ["q2", "q3"]);
        assert_eq!(route(&t, "amq.topic", "orange"), ["q3"]);
        assert_eq!(route(&t, "amq.topic", ""), ["q3"]);
    }

    #[test]
    fn headers_routing() {
        let mut t = Topology::new();
        let all = table(&[("x-match", s("all")), ("a", s("1")), ("b", s("2"))]);
        let any = table(&[("x-match", s("any")), ("a", s("1")), ("b", s("2"))]);
        t.bind("amq.headers", q("all"), &"".into(), &all).unwrap();
        t.bind("amq.headers", q("any"), &"".into(), &any).unwrap();
        // The same queue twice through two bindings gets one copy.
        t.bind("amq.headers", q("any"), &"other-key".into(), &any)
            .unwrap();
        let h = table(&[("a", s("1"))]);
        assert_eq!(route_h(&t, "amq.headers", "rk", Some(&h)), ["any"]);
        let h = table(&[("a", s("1")), ("b", s("2"))]);
        assert_eq!(route_h(&t, "amq.headers", "rk", Some(&h)), ["all", "any"]);
        assert_eq!(route_h(&t, "amq.headers", "rk", None), Vec::<String>::new());
        t.unbind("amq.headers", &q("any"), "", &any).unwrap();
        assert_eq!(route_h(&t, "amq.headers", "rk", Some(&h)), ["all", "any"]);
        t.unbind("amq.headers", &q("any"), "other-key", &any)
            .unwrap();
        assert_eq!(route_h(&t, "amq.headers", "rk", Some(&h)), ["all"]);
    }

    #[test]
    fn exchange_to_exchange() {
        let mut t = Topology::new();
        declare(&mut t, "e1", "direct").unwrap();
        declare(&mut t, "e2", "fanout").unwrap();
        bind(&mut t, "e1", x("e2"), "k");
        bind(&mut t, "e1", q("q1"), "k");
        bind(&mut t, "e2", q("q2"), "");
        bind(&mut t, "e2", q("q1"), "");
        assert_eq!(route(&t, "e1", "k"), ["q1", "q2"]);
        assert_eq!(route(&t, "e1", "other"), Vec::<String>::new());
        assert_eq!(route(&t, "e2", "x"), ["q1", "q2"]);
    }

    #[test]
    fn exchange_loops_terminate() {
        let mut t = Topology::new();
        declare(&mut t, "a", "fanout").unwrap();
        declare(&mut t, "b", "fanout").unwrap();
        declare(&mut t, "c", "fanout").unwrap();
        bind(&mut t, "a", x("b"), "");
        bind(&mut t, "b", x("c"), "");
        bind(&mut t, "c", x("a"), "");
        bind(&mut t, "a", x("a"), "");
        bind(&mut t, "b", q("qb"), "");
        bind(&mut t, "c", q("qc"), "");
        assert_eq!(route(&t, "a", ""), ["qb", "qc"]);
        assert_eq!(route(&t, "c", ""), ["qb", "qc"]);
    }

    #[test]
    fn long_exchange_chain_spills() {
        let mut t = Topology::new();
        let n = 50;
        for i in 0..n {
            declare(&mut t, &format!("x{i}"), "fanout").unwrap();
        }
        for i in 0..n {
            bind(
                &mut t,
                &format!("x{i}"),
                x(&format!("x{}", (i + 1) % n)),
                "",
            );
            bind(&mut t, &format!("x{i}"), q(&format!("q{}", i % 7)), "");
        }
        let got = route(&t, "x0", "");
        assert_eq!(got.len(), 7);
    }

    #[test]
    fn alternate_exchange_when_unroutable() {
        let mut t = Topology::new();
        declare(&mut t, "ae", "fanout").unwrap();
        declare_ae(&mut t, "main", "direct", "ae");
        bind(&mut t, "main", q("routed"), "k");
        bind(&mut t, "ae", q("unrouted"), "");
        assert_eq!(route(&t, "main", "k"), ["routed"]);
        assert_eq!(route(&t, "main", "other"), ["unrouted"]);
    }

    #[test]
    fn alternate_exchange_chains_and_loops() {
        let mut t = Topology::new();
        declare_ae(&mut t, "a", "direct", "b");
        declare_ae(&mut t, "b", "direct", "c");
        declare_ae(&mut t, "c", "direct", "a");
        bind(&mut t, "c", q("qc"), "c-key");
        assert_eq!(route(&t, "a", "c-key"), ["qc"]);
        // Nothing anywhere: the loop a -> b -> c -> a ends.
        assert_eq!(route(&t, "a", "none"), Vec::<String>::new());
        // An AE that does not exist is ignored.
        declare_ae(&mut t, "d", "direct", "missing");
        assert_eq!(route(&t, "d", "k"), Vec::<String>::new());
    }

    #[test]
    fn alternate_exchange_of_a_downstream_exchange() {
        // e1 routes to e2 (so e1's AE is not used); e2 matches nothing and
        // uses its own AE.
        let mut t = Topology::new();
        declare(&mut t, "ae1", "fanout").unwrap();
        declare(&mut t, "ae2", "fanout").unwrap();
        declare_ae(&mut t, "e1", "fanout", "ae1");
        declare_ae(&mut t, "e2", "direct", "ae2");
        bind(&mut t, "e1", x("e2"), "");
        bind(&mut t, "ae1", q("q-ae1"), "");
        bind(&mut t, "ae2", q("q-ae2"), "");
        assert_eq!(route(&t, "e1", "k"), ["q-ae2"]);
    }

    #[test]
    fn alternate_exchange_can_be_the_default_exchange() {
        let mut t = Topology::new();
        declare_ae(&mut t, "e", "direct", "");
        assert_eq!(route(&t, "e", "some-queue"), ["some-queue"]);
    }

    #[test]
    fn internal_flag_is_kept() {
        let mut t = Topology::new();
        t.declare_exchange(&"i".into(), "fanout", false, false, false, true, &none())
            .unwrap();
        assert!(t.exchange("i").unwrap().internal);
        bind(&mut t, "amq.fanout", x("i"), "");
        bind(&mut t, "i", q("q"), "");
        assert_eq!(
            t.route("i", "k", None, &mut Vec::new()),
            RouteResult::Internal,
            "publishing to it directly is refused"
        );
        // Routing into an internal exchange through a binding is allowed.
        assert_eq!(route(&t, "amq.fanout", ""), ["q"]);
    }

    #[test]
    fn dedup_tail_keeps_prefix() {
        let mut v: Vec<ShortStr> = ["p", "c", "a", "c", "b", "a"]
            .iter()
            .map(|s| (*s).into())
            .collect();
        dedup_tail(&mut v, 1);
        assert_eq!(v, ["p", "a", "b", "c"]);
    }

    mod model {
        use super::*;
        use crate::broker::topic::reference_match;
        use proptest::prelude::*;
        use std::collections::BTreeSet;

        const SOURCES: [&str; 3] = ["amq.direct", "amq.topic", "amq.fanout"];
        const KEYS: [&str; 5] = ["a", "b", "a.b", "#", "*.b"];

        #[derive(Clone, Debug)]
        enum Op {
            Bind(usize, usize, usize, bool),
            Unbind(usize, usize, usize, bool),
            RemoveQueue(usize),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0..3usize, 0..3usize, 0..5usize, any::<bool>())
                    .prop_map(|(s, q, k, a)| Op::Bind(s, q, k, a)),
                3 => (0..3usize, 0..3usize, 0..5usize, any::<bool>())
                    .prop_map(|(s, q, k, a)| Op::Unbind(s, q, k, a)),
                1 => (0..3usize).prop_map(Op::RemoveQueue),
            ]
        }

        fn args(flag: bool) -> FieldTable {
            if flag {
                table(&[("x-extra", FieldValue::I32(1))])
            } else {
                FieldTable::new()
            }
        }

        proptest! {
            /// Random bind/unbind/queue deletions against a plain set of
            /// bindings: the listing and every route agree with the model.
            #[test]
            fn topology_matches_a_set_of_bindings(ops in prop::collection::vec(op(), 1..40)) {
                let mut t = Topology::new();
                let mut model: BTreeSet<(usize, usize, usize, bool)> = BTreeSet::new();
                for op in ops {
                    match op {
                        Op::Bind(s, qi, k, a) => {
                            let new = t
                                .bind(SOURCES[s], q(&format!("q{qi}")), &KEYS[k].into(), &args(a))
                                .unwrap();
                            prop_assert_eq!(new, model.insert((s, qi, k, a)));
                        }
                        Op::Unbind(s, qi, k, a) => {
                            let gone = t
                                .unbind(SOURCES[s], &q(&format!("q{qi}")), KEYS[k], &args(a))
                                .unwrap();
                            prop_assert!(gone.is_empty());
                            model.remove(&(s, qi, k, a));
                        }
                        Op::RemoveQueue(qi) => {
                            let gone = t.remove_queue(&format!("q{qi}"));
                            prop_assert!(gone.is_empty());
                            model.retain(|b| b.1 != qi);
                        }
                    }
                    prop_assert_eq!(t.bindings().len(), model.len());
                    for (s, src) in SOURCES.iter().enumerate() {
                        let count = model.iter().filter(|b| b.0 == s).count();
                        prop_assert_eq!(t.binding_count(src), count);
                        for rk in ["a", "b", "a.b", "c.b", ""] {
                            let mut expected: Vec<String> = model
                                .iter()
                                .filter(|b| b.0 == s)
                                .filter(|b| match s {
                                    0 => KEYS[b.2] == rk,
                                    1 => reference_match(KEYS[b.2], rk),
                                    _ => true,
                                })
                                .map(|b| format!("q{}", b.1))
                                .collect();
                            expected.sort();
                            expected.dedup();
                            prop_assert_eq!(route(&t, src, rk), expected);
                        }
                    }
                }
                for b in model {
                    t.unbind(SOURCES[b.0], &q(&format!("q{}", b.1)), KEYS[b.2], &args(b.3)).unwrap();
                }
                prop_assert!(t.bindings().is_empty());
                prop_assert!(t.reverse.is_empty());
            }
        }
    }
}
