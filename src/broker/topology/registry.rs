//! The exchange registry of `Topology`: the predeclared exchanges,
//! exchange.declare (passive, type, flags and `alternate-exchange`
//! equivalence, the `amq.` prefix), exchange.delete (`if_unused`, system
//! exchanges), lookups, and the auto-delete cascade that removes
//! auto-delete exchanges left without bindings as source. Also defines
//! `ExchangeEntry`, what the registry keeps per exchange.

use super::errors::{
    default_exchange_refused, exchange_in_use, exchange_not_found, inequivalent_flag,
    inequivalent_kind, inequivalent_presence, inequivalent_value, invalid_arg_type,
    reserved_prefix, system_exchange_deletion, unknown_exchange_type,
};
use super::policies::ExchangePolicy;
use super::{strip_cr_lf, stripped_short, Topology};
use crate::broker::binding::Destination;
use crate::broker::error::AmqpResult;
use crate::broker::exchange::headers::{type_name, values_equal};
use crate::broker::exchange::{ExchangeDef, ExchangeKind, Router};
use crate::protocol::types::{FieldTable, FieldValue, ShortStr};
use std::collections::HashMap;

const ALTERNATE_EXCHANGE: &str = "alternate-exchange";

/// One exchange: its definition, routing state and bindings as source.
#[derive(Debug)]
pub(super) struct ExchangeEntry {
    pub(super) def: ExchangeDef,
    /// The `alternate-exchange` argument, when it is a valid name.
    pub(super) alternate: Option<ShortStr>,
    /// The policy that applies to the exchange (`policies`), if any.
    pub(super) policy: Option<ExchangePolicy>,
    pub(super) router: Router,
    /// Bindings with this exchange as source: destination -> routing key ->
    /// distinct (sorted) argument tables.
    pub(super) bindings: HashMap<Destination, HashMap<ShortStr, Vec<FieldTable>>>,
    /// Total bindings in `bindings`.
    pub(super) binding_count: usize,
}

impl ExchangeEntry {
    fn new(def: ExchangeDef) -> ExchangeEntry {
        let alternate = match def.arguments.get(ALTERNATE_EXCHANGE) {
            Some(FieldValue::LongStr(b)) => ShortStr::from_bytes(b.clone()),
            _ => None,
        };
        ExchangeEntry {
            router: Router::for_exchange(def.kind, &def.arguments),
            def,
            alternate,
            policy: None,
            bindings: HashMap::new(),
            binding_count: 0,
        }
    }
}

impl ExchangeEntry {
    /// The alternate exchange routing takes when this exchange matched
    /// nothing: the `alternate-exchange` argument, else the policy's
    /// (`rabbit_policy:get_arg/3`: the argument wins).
    pub(super) fn alternate_exchange(&self) -> Option<&str> {
        self.alternate
            .as_ref()
            .or_else(|| self.policy.as_ref()?.alternate.as_ref())
            .map(|a| a.as_str())
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

impl Topology {
    /// The topology of a fresh vhost `/`: the default exchange "" and the
    /// predeclared `amq.*` exchanges, all durable.
    pub fn new() -> Topology {
        Topology::for_vhost(ShortStr::from_static("/"))
    }

    /// The topology of a fresh vhost (its name words the error texts).
    pub fn for_vhost(vhost: ShortStr) -> Topology {
        let mut t = Topology {
            vhost,
            exchanges: HashMap::new(),
            reverse: HashMap::new(),
            policies: Vec::new(),
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
                return Err(default_exchange_refused());
            }
            return match self.exchanges.contains_key(name.as_str()) {
                true => Ok(false),
                false => Err(exchange_not_found(&name, &self.vhost)),
            };
        }
        let Some(kind) = ExchangeKind::parse(kind) else {
            return Err(unknown_exchange_type(kind));
        };
        if name.is_empty() {
            return Err(default_exchange_refused());
        }
        if let Some(x) = self.exchanges.get(name.as_str()) {
            let d = &x.def;
            if d.kind != kind {
                return Err(inequivalent_kind(&name, &self.vhost, kind, d.kind));
            }
            for (field, current, received) in [
                ("durable", d.durable, durable),
                ("auto_delete", d.auto_delete, auto_delete),
                ("internal", d.internal, internal),
            ] {
                if current != received {
                    return Err(inequivalent_flag(
                        field,
                        &name,
                        &self.vhost,
                        received,
                        current,
                    ));
                }
            }
            let current = d.arguments.get(ALTERNATE_EXCHANGE);
            let received = arguments.get(ALTERNATE_EXCHANGE);
            match (current, received) {
                (None, None) => {}
                (Some(c), Some(r)) => {
                    if c != r && !(type_class(c) == type_class(r) && values_equal(c, r)) {
                        return Err(inequivalent_value(
                            ALTERNATE_EXCHANGE,
                            &name,
                            &self.vhost,
                            r,
                            c,
                        ));
                    }
                }
                (c, r) => {
                    return Err(inequivalent_presence(
                        ALTERNATE_EXCHANGE,
                        &name,
                        &self.vhost,
                        r,
                        c,
                    ))
                }
            }
            return Ok(false);
        }
        if name.starts_with("amq.") {
            return Err(reserved_prefix(&name));
        }
        if kind == ExchangeKind::DelayedMessage {
            crate::broker::exchange::delayed::delayed_type(arguments)?;
        }
        match arguments.get(ALTERNATE_EXCHANGE) {
            None | Some(FieldValue::LongStr(_)) => {}
            Some(other) => {
                return Err(invalid_arg_type(
                    ALTERNATE_EXCHANGE,
                    &name,
                    &self.vhost,
                    other,
                ))
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
        let mut entry = ExchangeEntry::new(def);
        entry.policy = self.policy_for(&name);
        self.exchanges.insert(name, entry);
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
            return Err(default_exchange_refused());
        }
        if name.starts_with("amq.") {
            return Err(system_exchange_deletion(&name, &self.vhost));
        }
        let Some(x) = self.exchanges.get(name.as_ref()) else {
            return Ok(Vec::new());
        };
        if if_unused && x.binding_count > 0 {
            return Err(exchange_in_use(&name, &self.vhost));
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

    /// Removes an exchange with all its bindings (as source and as
    /// destination); returns the sources that lost a binding to it.
    pub(super) fn remove_exchange_entry(&mut self, name: &ShortStr) -> Vec<ShortStr> {
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
    pub(super) fn auto_delete_cascade(
        &mut self,
        mut candidates: Vec<ShortStr>,
        deleted: &mut Vec<ShortStr>,
    ) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::topology::testkit::*;

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
            err(declare(&mut t, "e", "x-consistent-hash")),
            (
                503,
                "COMMAND_INVALID - unknown exchange type 'x-consistent-hash'".to_string()
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
}
