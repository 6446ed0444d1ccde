//! The column model of `warren ctl`'s listings, shared by the broker (which
//! answers a listing as structured rows: one JSON array per line, a value
//! per requested column, in the requested order) and the client (which
//! checks the columns, asks for them and prints them): a `Row` names its
//! columns (rabbitmqctl's info items) and gives their values; a `Listing`
//! is a verb with its path on the admin endpoint, its row type's columns,
//! its default columns and its title line (the verbs: `listings`); field
//! tables as rabbitmqctl's JSON writes them.

use serde_json::Value;

/// How a cell reads in a table (rabbitmqctl's table formatter); the JSON
/// formatter prints the value as it came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A string, number or boolean, printed bare (null: empty).
    Plain,
    /// A field table as `[[key, type, value], …]`; a table shows it as
    /// `[{"key",value},…]`.
    Arguments,
    /// A list of strings (user tags); a table shows `[a, b]`.
    List,
}

/// One object of a listing: the values of its columns. `COLUMNS` names
/// every column `cell` answers, with how it reads in a table.
pub trait Row {
    const COLUMNS: &'static [(&'static str, Kind)];
    /// The value of `column` (one of `COLUMNS`; anything else is null).
    fn cell(&self, column: &str) -> Value;
}

/// A listing verb of `warren ctl`.
#[derive(Debug)]
pub struct Listing {
    /// rabbitmqctl's verb (`list_queues`).
    pub verb: &'static str,
    /// The admin endpoint's path (`/queues`).
    pub path: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    /// The columns shown when none are named (empty: all of them).
    pub defaults: &'static [&'static str],
    /// Whether `-p VHOST` applies (the title names the vhost).
    pub vhost_scoped: bool,
    /// Whether rabbitmqctl prints its `Timeout: … seconds ...` line first.
    pub timeout_line: bool,
    /// The title line before `{vhost}` is filled in.
    pub title: &'static str,
}

impl Listing {
    /// The columns asked for (`words`; none: the defaults), or the names
    /// that are not columns of this listing.
    pub fn select<'a>(&self, words: &[&'a str]) -> Result<Vec<&'a str>, Vec<&'a str>>
    where
        'static: 'a,
    {
        if words.is_empty() && self.defaults.is_empty() {
            return Ok(self.columns.iter().map(|(n, _)| *n).collect());
        }
        if words.is_empty() {
            return Ok(self.defaults.to_vec());
        }
        let unknown: Vec<&str> = words
            .iter()
            .copied()
            .filter(|w| self.kind(w).is_none())
            .collect();
        if unknown.is_empty() {
            Ok(words.to_vec())
        } else {
            Err(unknown)
        }
    }

    /// How `column` reads in a table; None when it is not a column here.
    pub fn kind(&self, column: &str) -> Option<Kind> {
        self.columns
            .iter()
            .find(|(n, _)| *n == column)
            .map(|(_, k)| *k)
    }

    /// The title line for `vhost` (and `node`, for `status`).
    pub fn title(&self, vhost: &str, node: &str) -> String {
        self.title.replace("{vhost}", vhost).replace("{node}", node)
    }
}

/// The refusal of columns a listing has not: rabbitmqctl's line.
pub fn unsupported(unknown: &[&str]) -> String {
    format!(
        "Error (argument validation): Info key(s) {} are not supported",
        unknown.join(",")
    )
}

/// A field table as rabbitmqctl's JSON formatter writes it: a list of
/// `[key, type, value]`, tables nested the same way, arrays as lists of
/// `[type, value]`.
pub fn arguments(t: &crate::protocol::types::FieldTable) -> Value {
    Value::Array(
        t.0.iter()
            .map(|(k, v)| {
                let (kind, value) = typed(v);
                Value::Array(vec![Value::from(k.as_str()), Value::from(kind), value])
            })
            .collect(),
    )
}

/// RabbitMQ's name of a field value's type, and the value as JSON.
fn typed(v: &crate::protocol::types::FieldValue) -> (&'static str, Value) {
    use crate::protocol::types::FieldValue as F;
    match v {
        F::Bool(b) => ("bool", Value::from(*b)),
        F::I8(n) => ("byte", Value::from(*n)),
        F::U8(n) => ("unsignedbyte", Value::from(*n)),
        F::I16(n) => ("short", Value::from(*n)),
        F::U16(n) => ("unsignedshort", Value::from(*n)),
        F::I32(n) => ("signedint", Value::from(*n)),
        F::U32(n) => ("unsignedint", Value::from(*n)),
        F::I64(n) => ("long", Value::from(*n)),
        F::F32(n) => ("float", Value::from(*n)),
        F::F64(n) => ("double", Value::from(*n)),
        F::Decimal(d) => (
            "decimal",
            Value::from(d.value as f64 / 10f64.powi(d.scale as i32)),
        ),
        F::LongStr(s) => ("longstr", Value::from(String::from_utf8_lossy(s))),
        F::Bytes(s) => ("binary", Value::from(String::from_utf8_lossy(s))),
        F::Timestamp(t) => ("timestamp", Value::from(*t)),
        F::Table(t) => ("table", arguments(t)),
        F::Array(a) => (
            "array",
            Value::Array(
                a.iter()
                    .map(|v| {
                        let (kind, value) = typed(v);
                        Value::Array(vec![Value::from(kind), value])
                    })
                    .collect(),
            ),
        ),
        F::Void => ("void", Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::{FieldTable, FieldValue};

    #[test]
    fn arguments_read_as_rabbitmqctl_json() {
        let mut t = FieldTable::new();
        t.insert("x-max-length".into(), FieldValue::I32(10));
        t.insert("x-queue-mode".into(), FieldValue::LongStr("lazy".into()));
        assert_eq!(
            arguments(&t).to_string(),
            r#"[["x-max-length","signedint",10],["x-queue-mode","longstr","lazy"]]"#
        );
    }
}
