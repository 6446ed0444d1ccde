//! Headers-exchange routing and matching, as RabbitMQ 3.12 does it
//! (`rabbit_exchange_type_headers`): the binding's `x-match` (`all`, the
//! default, `any`, `all-with-x`, `any-with-x`), which binding keys take part
//! (never `x-match`; other `x-` keys only in the `-with-x` modes), a `Void`
//! binding value meaning "the header is present", and value comparison with
//! Erlang's `==` on the decoded values: integers of every width (and
//! timestamps) compare by value, an integer equals a float of the same value,
//! long strings and byte arrays compare by bytes, nested arrays and tables
//! compare element by element *with* their types. `HeadersRouter` keeps one
//! entry per binding and scans them linearly, as RabbitMQ does; a message's
//! headers are looked up through `HeaderLookup` (a scan for a few, a sorted
//! index built once per message beyond), so a message with n headers against
//! bindings of k keys costs O(n log n + k log n), never O(n k).
//!
//! Also owns how RabbitMQ names and prints field values in reply texts
//! (`type_name`, `erlang_term`), shared with `topology`.

use crate::broker::binding::Destination;
use crate::broker::error::{AmqpError, AmqpResult};
use crate::protocol::types::{FieldTable, FieldValue, ShortStr};
use std::fmt::Write;

/// The `x-match` mode of a headers binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchMode {
    All,
    Any,
    AllWithX,
    AnyWithX,
}

impl MatchMode {
    /// The mode a binding's arguments select; anything but one of the four
    /// long strings (only possible for bindings made before validation)
    /// means `All`, as in RabbitMQ.
    pub fn of(args: &FieldTable) -> MatchMode {
        match args.get("x-match").and_then(|v| match v {
            FieldValue::LongStr(b) => Some(&b[..]),
            _ => None,
        }) {
            Some(b"any") => MatchMode::Any,
            Some(b"all-with-x") => MatchMode::AllWithX,
            Some(b"any-with-x") => MatchMode::AnyWithX,
            _ => MatchMode::All,
        }
    }

    fn with_x(self) -> bool {
        matches!(self, MatchMode::AllWithX | MatchMode::AnyWithX)
    }

    fn is_all(self) -> bool {
        matches!(self, MatchMode::All | MatchMode::AllWithX)
    }
}

/// Checks a headers binding's `x-match` argument as RabbitMQ's
/// `validate_binding` does; the error is 406 PRECONDITION_FAILED.
pub fn validate_binding(args: &FieldTable) -> AmqpResult<()> {
    match args.get("x-match") {
        None => Ok(()),
        Some(FieldValue::LongStr(b))
            if matches!(&b[..], b"all" | b"any" | b"all-with-x" | b"any-with-x") =>
        {
            Ok(())
        }
        Some(v @ FieldValue::LongStr(_)) => Err(AmqpError::precondition_failed(format_args!(
            "Invalid x-match field value {}; expected all, any, all-with-x, or any-with-x",
            erlang_term(v)
        ))),
        Some(v) => Err(AmqpError::precondition_failed(format_args!(
            "Invalid x-match field type {} (value {}); expected longstr",
            type_name(v),
            erlang_term(v)
        ))),
    }
}

/// One headers binding, pre-processed for matching.
#[derive(Clone, Debug)]
pub struct HeadersBinding {
    mode: MatchMode,
    /// The binding's arguments, as given (sorted by `Topology`).
    arguments: FieldTable,
    /// Indexes into `arguments` of the entries that take part in matching.
    considered: Vec<u32>,
}

impl HeadersBinding {
    pub fn new(arguments: &FieldTable) -> HeadersBinding {
        let mode = MatchMode::of(arguments);
        let considered = arguments
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| {
                k.as_str() != "x-match" && (mode.with_x() || !k.as_str().starts_with("x-"))
            })
            .map(|(i, _)| u32::try_from(i).expect("field table shorter than 2^32"))
            .collect();
        HeadersBinding {
            mode,
            arguments: arguments.clone(),
            considered,
        }
    }

    pub fn mode(&self) -> MatchMode {
        self.mode
    }

    pub fn arguments(&self) -> &FieldTable {
        &self.arguments
    }

    /// Whether a message with these headers matches the binding. `all` with
    /// no keys taking part matches everything; `any` with none matches
    /// nothing.
    pub fn matches(&self, headers: Option<&FieldTable>) -> bool {
        self.matches_in(&HeaderLookup::of(headers))
    }

    /// `matches`, with the message's headers already indexed.
    pub fn matches_in(&self, headers: &HeaderLookup<'_>) -> bool {
        let mut entries = self
            .considered
            .iter()
            .map(|&i| &self.arguments.0[i as usize]);
        let one = |(key, want): &(ShortStr, FieldValue)| {
            let got = headers.get(key.as_str());
            match (want, got) {
                (_, None) => false,
                (FieldValue::Void, Some(_)) => true,
                (want, Some(got)) => values_equal(want, got),
            }
        };
        if self.mode.is_all() {
            entries.all(one)
        } else {
            entries.any(one)
        }
    }
}

/// One entry per binding (routing key kept for identity on unbind): a
/// headers exchange matches on the binding's arguments, so bindings that
/// differ only in them are not collapsed.
#[derive(Debug, Default)]
pub(crate) struct HeadersRouter {
    bindings: Vec<(ShortStr, Destination, HeadersBinding)>,
}

impl HeadersRouter {
    /// Adds one binding.
    pub(crate) fn add(&mut self, key: &ShortStr, dest: &Destination, args: &FieldTable) {
        self.bindings
            .push((key.clone(), dest.clone(), HeadersBinding::new(args)));
    }

    /// Removes one binding with exactly this key, destination and
    /// (sorted) arguments; absent ones are ignored.
    pub(crate) fn remove(&mut self, key: &ShortStr, dest: &Destination, args: &FieldTable) {
        if let Some(i) = self
            .bindings
            .iter()
            .position(|(k, d, b)| k == key && d == dest && b.arguments() == args)
        {
            self.bindings.swap_remove(i);
        }
    }

    /// Calls `emit` for the destination of every binding that matches
    /// `headers`; a destination bound several times may be emitted more
    /// than once.
    #[inline]
    pub(crate) fn route<F: FnMut(&Destination)>(&self, headers: Option<&FieldTable>, mut emit: F) {
        if self.bindings.is_empty() {
            return;
        }
        let headers = HeaderLookup::of(headers);
        for (_, dest, binding) in &self.bindings {
            if binding.matches_in(&headers) {
                emit(dest);
            }
        }
    }
}

/// Headers up to this many entries are scanned; more are indexed.
const SCAN_AT_MOST: usize = 16;

/// A message's headers, looked up by key as `FieldTable::get` does (the
/// first entry of a key wins): a linear scan for a few entries, a sorted
/// index (built once per message) for more.
pub enum HeaderLookup<'a> {
    Scan(Option<&'a FieldTable>),
    Sorted(Vec<(&'a str, &'a FieldValue)>),
}

impl<'a> HeaderLookup<'a> {
    pub fn of(headers: Option<&'a FieldTable>) -> HeaderLookup<'a> {
        match headers {
            Some(h) if h.0.len() > SCAN_AT_MOST => {
                let mut index: Vec<(&str, &FieldValue)> =
                    h.0.iter().map(|(k, v)| (k.as_str(), v)).collect();
                // Stable: among equal keys the first stays first, and
                // dedup keeps it.
                index.sort_by(|a, b| a.0.cmp(b.0));
                index.dedup_by(|later, first| later.0 == first.0);
                HeaderLookup::Sorted(index)
            }
            other => HeaderLookup::Scan(other),
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a FieldValue> {
        match self {
            HeaderLookup::Scan(h) => h.and_then(|h| h.get(key)),
            HeaderLookup::Sorted(index) => index
                .binary_search_by(|(k, _)| (*k).cmp(key))
                .ok()
                .map(|i| index[i].1),
        }
    }
}

enum Num {
    Int(i128),
    Float(f64),
}

fn numeric(v: &FieldValue) -> Option<Num> {
    Some(match *v {
        FieldValue::Timestamp(t) => Num::Int(t as i128),
        FieldValue::F32(f) => Num::Float(f as f64),
        FieldValue::F64(f) => Num::Float(f),
        ref other => Num::Int(other.as_i64()? as i128),
    })
}

fn int_eq_float(i: i128, f: f64) -> bool {
    // Exact: the float must be integral and convert back to the same integer.
    f.is_finite() && f.fract() == 0.0 && f.abs() < 1.8e38 && (f as i128) == i
}

/// Erlang `==` between a binding value and a message header value, both
/// decoded as RabbitMQ decodes them (the AMQP type is dropped at the top
/// level, kept inside arrays and tables).
pub fn values_equal(binding: &FieldValue, message: &FieldValue) -> bool {
    use FieldValue as V;
    if let (Some(a), Some(b)) = (numeric(binding), numeric(message)) {
        return match (a, b) {
            (Num::Int(a), Num::Int(b)) => a == b,
            (Num::Float(a), Num::Float(b)) => a == b,
            (Num::Int(i), Num::Float(f)) | (Num::Float(f), Num::Int(i)) => int_eq_float(i, f),
        };
    }
    match (binding, message) {
        (V::Bool(a), V::Bool(b)) => a == b,
        (V::Decimal(a), V::Decimal(b)) => a == b,
        (V::LongStr(a) | V::Bytes(a), V::LongStr(b) | V::Bytes(b)) => a == b,
        (V::Array(a), V::Array(b)) => a == b,
        (V::Table(a), V::Table(b)) => a == b,
        // Both are Erlang lists: only the empty ones are equal.
        (V::Array(a), V::Table(b)) | (V::Table(b), V::Array(a)) => a.is_empty() && b.is_empty(),
        _ => false,
    }
}

/// RabbitMQ's name for a field value's type (`rabbit_binary_parser`).
pub fn type_name(v: &FieldValue) -> &'static str {
    match v {
        FieldValue::Bool(_) => "bool",
        FieldValue::I8(_) => "byte",
        FieldValue::U8(_) => "unsignedbyte",
        FieldValue::I16(_) => "short",
        FieldValue::U16(_) => "unsignedshort",
        FieldValue::I32(_) => "signedint",
        FieldValue::U32(_) => "unsignedint",
        FieldValue::I64(_) => "long",
        FieldValue::F32(_) => "float",
        FieldValue::F64(_) => "double",
        FieldValue::Decimal(_) => "decimal",
        FieldValue::LongStr(_) => "longstr",
        FieldValue::Array(_) => "array",
        FieldValue::Timestamp(_) => "timestamp",
        FieldValue::Table(_) => "table",
        FieldValue::Void => "void",
        FieldValue::Bytes(_) => "binary",
    }
}

/// How Erlang's `~tp` prints the decoded value (close enough for reply
/// texts: binaries as `<<"text">>`, integers in decimal, tuples and lists).
pub fn erlang_term(v: &FieldValue) -> String {
    let mut s = String::new();
    write_term(&mut s, v, 0);
    s
}

/// Nesting deeper than this is printed as `...` (reply texts are cut at 255
/// bytes anyway).
const MAX_TERM_DEPTH: usize = 8;

fn write_binary(s: &mut String, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(text) if text.chars().all(|c| !c.is_control()) => {
            s.push_str("<<\"");
            for c in text.chars() {
                if c == '"' || c == '\\' {
                    s.push('\\');
                }
                s.push(c);
            }
            s.push_str("\">>");
        }
        _ => {
            s.push_str("<<");
            for (i, byte) in b.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let _ = write!(s, "{byte}");
            }
            s.push_str(">>");
        }
    }
}

fn write_term(s: &mut String, v: &FieldValue, depth: usize) {
    if depth > MAX_TERM_DEPTH || s.len() > 512 {
        s.push_str("...");
        return;
    }
    let _ = match v {
        FieldValue::Bool(b) => write!(s, "{b}"),
        FieldValue::F32(f) => write!(s, "{:?}", *f as f64),
        FieldValue::F64(f) => write!(s, "{f:?}"),
        FieldValue::Decimal(d) => write!(s, "{{{},{}}}", d.scale, d.value),
        FieldValue::LongStr(b) | FieldValue::Bytes(b) => {
            write_binary(s, b);
            Ok(())
        }
        FieldValue::Timestamp(t) => write!(s, "{t}"),
        FieldValue::Void => write!(s, "undefined"),
        FieldValue::Array(items) => {
            s.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let _ = write!(s, "{{{},", type_name(item));
                write_term(s, item, depth + 1);
                s.push('}');
            }
            s.push(']');
            Ok(())
        }
        FieldValue::Table(t) => {
            s.push('[');
            for (i, (k, item)) in t.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push('{');
                write_binary(s, k.as_bytes());
                let _ = write!(s, ",{},", type_name(item));
                write_term(s, item, depth + 1);
                s.push('}');
            }
            s.push(']');
            Ok(())
        }
        other => write!(s, "{}", other.as_i64().unwrap_or_default()),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::error::code;
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

    fn m(binding: &[(&str, FieldValue)], headers: Option<&[(&str, FieldValue)]>) -> bool {
        let h = headers.map(table);
        HeadersBinding::new(&table(binding)).matches(h.as_ref())
    }

    #[test]
    fn all_is_the_default() {
        let b = [("a", s("1")), ("b", s("2"))];
        assert!(m(&b, Some(&[("a", s("1")), ("b", s("2")), ("c", s("3"))])));
        assert!(!m(&b, Some(&[("a", s("1"))])));
        assert!(!m(&b, Some(&[("a", s("1")), ("b", s("x"))])));
        assert!(!m(&b, None));
        let mut all = b.to_vec();
        all.push(("x-match", s("all")));
        assert!(m(&all, Some(&[("b", s("2")), ("a", s("1"))])));
        assert!(!m(&all, Some(&[("a", s("1"))])));
    }

    #[test]
    fn any_needs_one() {
        let b = [("x-match", s("any")), ("a", s("1")), ("b", s("2"))];
        assert!(m(&b, Some(&[("b", s("2"))])));
        assert!(m(&b, Some(&[("a", s("1")), ("b", s("nope"))])));
        assert!(!m(&b, Some(&[("a", s("2")), ("c", s("1"))])));
        assert!(!m(&b, None));
    }

    #[test]
    fn empty_patterns() {
        // `all` with nothing to check matches everything, even no headers.
        assert!(m(&[], None));
        assert!(m(&[("x-match", s("all"))], Some(&[("a", s("1"))])));
        // `any` with nothing to check matches nothing.
        assert!(!m(&[("x-match", s("any"))], Some(&[("a", s("1"))])));
        // x- keys are ignored, so this is an empty `all`.
        assert!(m(&[("x-foo", s("1"))], None));
        assert!(!m(
            &[("x-match", s("any")), ("x-foo", s("1"))],
            Some(&[("x-foo", s("1"))])
        ));
    }

    #[test]
    fn x_keys_count_only_with_x() {
        let hdrs: &[(&str, FieldValue)] = &[("x-foo", s("1")), ("a", s("1"))];
        let wrong: &[(&str, FieldValue)] = &[("x-foo", s("2")), ("a", s("1"))];
        assert!(m(&[("x-foo", s("1")), ("a", s("1"))], Some(wrong)));
        let all_x = [
            ("x-match", s("all-with-x")),
            ("x-foo", s("1")),
            ("a", s("1")),
        ];
        assert!(m(&all_x, Some(hdrs)));
        assert!(!m(&all_x, Some(wrong)));
        let any_x = [("x-match", s("any-with-x")), ("x-foo", s("1"))];
        assert!(m(&any_x, Some(hdrs)));
        assert!(!m(&any_x, Some(wrong)));
        // x-match itself never takes part, even with-x: a header called
        // x-match does not make an any-with-x binding match.
        assert!(!m(
            &[("x-match", s("any-with-x"))],
            Some(&[("x-match", s("any-with-x"))])
        ));
    }

    #[test]
    fn void_means_present() {
        let b = [("a", FieldValue::Void)];
        assert!(m(&b, Some(&[("a", s("anything"))])));
        assert!(m(&b, Some(&[("a", FieldValue::Void)])));
        assert!(m(&b, Some(&[("a", FieldValue::Array(vec![]))])));
        assert!(!m(&b, Some(&[("b", s("1"))])));
        assert!(!m(&b, None));
        // A void header does not equal a non-void binding value.
        assert!(!m(&[("a", s(""))], Some(&[("a", FieldValue::Void)])));
        let any = [
            ("x-match", s("any")),
            ("a", FieldValue::Void),
            ("b", s("2")),
        ];
        assert!(m(&any, Some(&[("a", FieldValue::I8(0))])));
    }

    #[test]
    fn integers_compare_by_value_across_widths() {
        assert!(values_equal(&FieldValue::I64(5), &FieldValue::I16(5)));
        assert!(values_equal(&FieldValue::U8(5), &FieldValue::I32(5)));
        assert!(values_equal(
            &FieldValue::U32(u32::MAX),
            &FieldValue::I64(u32::MAX as i64)
        ));
        assert!(!values_equal(&FieldValue::I8(-1), &FieldValue::U8(255)));
        assert!(values_equal(&FieldValue::Timestamp(7), &FieldValue::I64(7)));
        assert!(!values_equal(
            &FieldValue::Timestamp(u64::MAX),
            &FieldValue::I64(-1)
        ));
        assert!(m(
            &[("n", FieldValue::I64(42))],
            Some(&[("n", FieldValue::I16(42))])
        ));
    }

    #[test]
    fn floats_and_ints() {
        assert!(values_equal(&FieldValue::I32(1), &FieldValue::F64(1.0)));
        assert!(values_equal(&FieldValue::F32(1.5), &FieldValue::F64(1.5)));
        assert!(!values_equal(&FieldValue::F32(1.1), &FieldValue::F64(1.1)));
        assert!(!values_equal(&FieldValue::I32(1), &FieldValue::F64(1.5)));
        assert!(!values_equal(
            &FieldValue::F64(f64::NAN),
            &FieldValue::F64(f64::NAN)
        ));
    }

    #[test]
    fn strings_bytes_and_other_types() {
        assert!(values_equal(&s("abc"), &s("abc")));
        assert!(!values_equal(&s("abc"), &s("abd")));
        assert!(values_equal(
            &s("abc"),
            &FieldValue::Bytes(Bytes::from_static(b"abc"))
        ));
        assert!(!values_equal(&s("1"), &FieldValue::I32(1)));
        assert!(!values_equal(&s("true"), &FieldValue::Bool(true)));
        assert!(values_equal(
            &FieldValue::Bool(false),
            &FieldValue::Bool(false)
        ));
        assert!(!values_equal(&FieldValue::Bool(false), &FieldValue::I8(0)));
        let d =
            |scale, value| FieldValue::Decimal(crate::protocol::types::Decimal { scale, value });
        assert!(values_equal(&d(2, 150), &d(2, 150)));
        assert!(!values_equal(&d(1, 15), &d(2, 150)));
        assert!(!values_equal(&d(0, 1), &FieldValue::I32(1)));
    }

    #[test]
    fn nested_values_keep_their_types() {
        let a = FieldValue::Array(vec![FieldValue::I64(1), s("x")]);
        assert!(values_equal(&a, &a.clone()));
        assert!(!values_equal(
            &a,
            &FieldValue::Array(vec![FieldValue::I16(1), s("x")])
        ));
        let t = FieldValue::Table(table(&[("k", FieldValue::I64(1))]));
        assert!(values_equal(&t, &t.clone()));
        assert!(!values_equal(
            &t,
            &FieldValue::Table(table(&[("k", FieldValue::I32(1))]))
        ));
        // Both decode to the empty Erlang list.
        assert!(values_equal(
            &FieldValue::Array(vec![]),
            &FieldValue::Table(FieldTable::new())
        ));
    }

    #[test]
    fn first_header_of_a_name_counts() {
        let b = [("a", s("1"))];
        assert!(m(&b, Some(&[("a", s("1")), ("a", s("2"))])));
        assert!(!m(&b, Some(&[("a", s("2")), ("a", s("1"))])));
    }

    #[test]
    fn validate_x_match() {
        assert!(validate_binding(&FieldTable::new()).is_ok());
        for v in ["all", "any", "all-with-x", "any-with-x"] {
            assert!(validate_binding(&table(&[("x-match", s(v))])).is_ok());
        }
        let e = validate_binding(&table(&[("x-match", s("some"))])).unwrap_err();
        assert_eq!(e.code, code::PRECONDITION_FAILED);
        assert_eq!(
            e.text,
            "PRECONDITION_FAILED - Invalid x-match field value <<\"some\">>; \
             expected all, any, all-with-x, or any-with-x"
        );
        let e = validate_binding(&table(&[("x-match", FieldValue::I64(5))])).unwrap_err();
        assert_eq!(
            e.text,
            "PRECONDITION_FAILED - Invalid x-match field type long (value 5); expected longstr"
        );
        let e = validate_binding(&table(&[("x-match", FieldValue::Bool(true))])).unwrap_err();
        assert_eq!(
            e.text,
            "PRECONDITION_FAILED - Invalid x-match field type bool (value true); expected longstr"
        );
    }

    #[test]
    fn unvalidated_mode_means_all() {
        assert_eq!(
            MatchMode::of(&table(&[("x-match", s("bogus"))])),
            MatchMode::All
        );
        assert_eq!(
            MatchMode::of(&table(&[("x-match", FieldValue::I8(1))])),
            MatchMode::All
        );
        assert_eq!(MatchMode::of(&FieldTable::new()), MatchMode::All);
    }

    #[test]
    fn erlang_terms() {
        assert_eq!(erlang_term(&s("a\"b")), "<<\"a\\\"b\">>");
        assert_eq!(
            erlang_term(&FieldValue::Bytes(Bytes::from_static(&[0, 255]))),
            "<<0,255>>"
        );
        assert_eq!(erlang_term(&FieldValue::I16(-3)), "-3");
        assert_eq!(erlang_term(&FieldValue::Void), "undefined");
        assert_eq!(
            erlang_term(&FieldValue::Array(vec![FieldValue::I64(1), s("x")])),
            "[{long,1},{longstr,<<\"x\">>}]"
        );
        assert_eq!(
            erlang_term(&FieldValue::Table(table(&[("k", FieldValue::Bool(true))]))),
            "[{<<\"k\">>,bool,true}]"
        );
    }

    #[test]
    fn many_headers_against_a_binding_of_many_keys_is_not_quadratic() {
        // 40,000 headers (what a frame can carry) against a binding of
        // 40,000 keys: a scan per key would be 1.6e9 comparisons (minutes
        // in a debug build); the index makes it ~1e6.
        const N: usize = 40_000;
        let keys: Vec<String> = (0..N).map(|i| format!("k{i:05}")).collect();
        let entries: Vec<(&str, FieldValue)> = keys
            .iter()
            .map(|k| (k.as_str(), FieldValue::I64(1)))
            .collect();
        let binding = HeadersBinding::new(&table(&entries));
        // The message lists them in reverse, with a duplicate of the first
        // key whose first value is the one that counts.
        let mut message: Vec<(&str, FieldValue)> = keys
            .iter()
            .rev()
            .map(|k| (k.as_str(), FieldValue::I64(1)))
            .collect();
        message.push((keys[0].as_str(), FieldValue::I64(2)));
        let message = table(&message);
        let started = std::time::Instant::now();
        assert!(binding.matches(Some(&message)));
        let mut wrong = message.clone();
        wrong.0[N - 1].1 = FieldValue::I64(2); // keys[0]'s first value
        assert!(!binding.matches(Some(&wrong)));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "matching took {:?}",
            started.elapsed()
        );
    }
}
