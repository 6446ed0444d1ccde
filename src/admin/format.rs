//! How `warren ctl` prints what the broker answered, as rabbitmqctl 3.10
//! does: the table formatter (the informational `Timeout: …` / `Listing …`
//! lines, which `--quiet` and `--silent` drop, then a tab-separated header
//! row — only when there are rows, and not with `--silent` or
//! `--no-table-headers` — then the rows) and the JSON formatter (`[`, one
//! object per line with `,` before every one after the first, `]`, and no
//! informational lines). Rows are read and printed one at a time.

use super::columns::{Kind, Listing};
use serde_json::Value;
use std::io::{BufRead, Write};

/// The output options of rabbitmqctl.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// `-q` / `--quiet`: no informational lines.
    pub quiet: bool,
    /// `-s` / `--silent`: no informational lines and no header row.
    pub silent: bool,
    /// `--no-table-headers`.
    pub no_headers: bool,
    /// `--formatter json`.
    pub json: bool,
}

impl Output {
    /// Whether informational lines are printed.
    pub fn info(&self) -> bool {
        !(self.quiet || self.silent || self.json)
    }

    fn headers(&self) -> bool {
        !(self.silent || self.no_headers)
    }
}

/// Prints the informational lines of a listing.
pub fn print_title(
    out: &mut impl Write,
    listing: &Listing,
    vhost: &str,
    node: &str,
    opts: Output,
) -> std::io::Result<()> {
    if opts.info() {
        if listing.timeout_line {
            writeln!(out, "Timeout: 60.0 seconds ...")?;
        }
        writeln!(out, "{}", listing.title(vhost, node))?;
    }
    Ok(())
}

/// Prints the rows of `body` (JSON lines, one array of `columns` each);
/// returns how many there were. A line that is not a JSON array is an
/// error (the broker's answer was cut or garbled).
pub fn print_rows(
    out: &mut impl Write,
    listing: &Listing,
    columns: &[&str],
    body: impl BufRead,
    opts: Output,
) -> std::io::Result<usize> {
    let kinds: Vec<Kind> = columns
        .iter()
        .map(|c| listing.kind(c).unwrap_or(Kind::Plain))
        .collect();
    let mut n = 0;
    if opts.json {
        writeln!(out, "[")?;
    }
    for line in body.lines() {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        let cells: Vec<Value> = serde_json::from_str(&line)
            .map_err(|e| std::io::Error::other(format!("bad row from the broker: {e}")))?;
        if opts.json {
            let fields: Vec<String> = columns
                .iter()
                .zip(&cells)
                .map(|(c, v)| format!("{}:{v}", Value::from(*c)))
                .collect();
            let sep = if n == 0 { "" } else { "," };
            writeln!(out, "{sep}{{{}}}", fields.join(","))?;
        } else {
            if n == 0 && opts.headers() {
                writeln!(out, "{}", columns.join("\t"))?;
            }
            let text: Vec<String> = cells
                .iter()
                .zip(&kinds)
                .map(|(v, k)| table_cell(v, *k))
                .collect();
            writeln!(out, "{}", text.join("\t"))?;
        }
        n += 1;
    }
    if opts.json {
        writeln!(out, "]")?;
    }
    Ok(n)
}

/// One cell as rabbitmqctl's table formatter prints it.
pub fn table_cell(v: &Value, kind: Kind) -> String {
    match (kind, v) {
        (_, Value::Null) => String::new(),
        (_, Value::String(s)) => s.clone(),
        (Kind::Arguments, Value::Array(items)) => erlang_table(items),
        (Kind::List, Value::Array(items)) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| table_cell(i, Kind::Plain))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (_, other) => other.to_string(),
    }
}

/// `[[key, type, value], …]` as `[{"key",value},…]`.
fn erlang_table(items: &[Value]) -> String {
    let entries: Vec<String> = items
        .iter()
        .map(|entry| match entry.as_array().map(Vec::as_slice) {
            Some([k, Value::String(t), v]) => {
                format!("{{{},{}}}", erlang_term(k), erlang_value(t, v))
            }
            _ => erlang_term(entry),
        })
        .collect();
    format!("[{}]", entries.join(","))
}

fn erlang_value(kind: &str, v: &Value) -> String {
    match (kind, v) {
        ("table", Value::Array(items)) => erlang_table(items),
        ("array", Value::Array(items)) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| match i.as_array().map(Vec::as_slice) {
                    Some([Value::String(t), v]) => erlang_value(t, v),
                    _ => erlang_term(i),
                })
                .collect::<Vec<_>>()
                .join(",")
        ),
        _ => erlang_term(v),
    }
}

/// A plain JSON value as Erlang prints the same term (strings quoted).
fn erlang_term(v: &Value) -> String {
    match v {
        Value::Null => "undefined".into(),
        other => other.to_string(),
    }
}

/// A fixed-format listing the broker renders as text (a title line, a
/// tab-separated header row, rows: users, permissions, policies) printed
/// with the output options; as JSON, one object per row keyed by the
/// header (`tags` as a list, a `definition` as its JSON).
pub fn print_text_table(out: &mut impl Write, body: &str, opts: Output) -> std::io::Result<()> {
    let mut lines = body.lines();
    let title = lines.next().unwrap_or("");
    let header: Vec<&str> = lines.next().map_or(Vec::new(), |h| h.split('\t').collect());
    let rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    if opts.json {
        writeln!(out, "[")?;
        for (i, row) in rows.iter().enumerate() {
            let fields: Vec<String> = header
                .iter()
                .zip(row.split('\t'))
                .map(|(h, v)| format!("{}:{}", Value::from(*h), json_cell(h, v)))
                .collect();
            let sep = if i == 0 { "" } else { "," };
            writeln!(out, "{sep}{{{}}}", fields.join(","))?;
        }
        return writeln!(out, "]");
    }
    if opts.info() {
        writeln!(out, "{title}")?;
    }
    if opts.headers() && !header.is_empty() {
        writeln!(out, "{}", header.join("\t"))?;
    }
    for row in rows {
        writeln!(out, "{row}")?;
    }
    Ok(())
}

fn json_cell(column: &str, text: &str) -> Value {
    match column {
        "tags" => Value::Array(
            text.trim_start_matches('[')
                .trim_end_matches(']')
                .split(", ")
                .filter(|t| !t.is_empty())
                .map(Value::from)
                .collect(),
        ),
        "definition" => serde_json::from_str(text).unwrap_or_else(|_| text.into()),
        "priority" => text
            .parse::<i64>()
            .map_or_else(|_| text.into(), Value::from),
        _ => text.into(),
    }
}

/// Drops the informational lines (`… ...` banners) at the top of a
/// change's answer for `--quiet` / `--silent`.
pub fn without_banner(body: &str) -> &str {
    let mut rest = body;
    while let Some((line, tail)) = rest.split_once('\n') {
        if !line.ends_with("...") {
            break;
        }
        rest = tail;
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::listings::listing;

    fn rows(body: &str, columns: &[&str], opts: Output) -> String {
        let l = listing("list_queues").unwrap();
        let mut out = Vec::new();
        print_title(&mut out, l, "/", "", opts).unwrap();
        print_rows(&mut out, l, columns, body.as_bytes(), opts).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tables_and_json_as_rabbitmqctl_prints_them() {
        let body = "[\"q1\",2]\n[\"q2\",0]\n";
        let cols = ["name", "messages"];
        assert_eq!(
            rows(body, &cols, Output::default()),
            "Timeout: 60.0 seconds ...\nListing queues for vhost / ...\nname\tmessages\nq1\t2\nq2\t0\n"
        );
        let quiet = Output {
            quiet: true,
            ..Output::default()
        };
        assert_eq!(rows(body, &cols, quiet), "name\tmessages\nq1\t2\nq2\t0\n");
        let silent = Output {
            silent: true,
            ..Output::default()
        };
        assert_eq!(rows(body, &cols, silent), "q1\t2\nq2\t0\n");
        let json = Output {
            json: true,
            ..Output::default()
        };
        assert_eq!(
            rows(body, &cols, json),
            "[\n{\"name\":\"q1\",\"messages\":2}\n,{\"name\":\"q2\",\"messages\":0}\n]\n"
        );
        assert_eq!(rows("", &cols, json), "[\n]\n");
        // No header row without rows.
        assert_eq!(
            rows("", &cols, Output::default()),
            "Timeout: 60.0 seconds ...\nListing queues for vhost / ...\n"
        );
    }

    #[test]
    fn arguments_read_as_erlang_terms() {
        let v: Value = serde_json::from_str(
            r#"[["x-max-length","signedint",10],["x-queue-mode","longstr","lazy"]]"#,
        )
        .unwrap();
        assert_eq!(
            table_cell(&v, Kind::Arguments),
            r#"[{"x-max-length",10},{"x-queue-mode","lazy"}]"#
        );
        assert_eq!(table_cell(&Value::Array(vec![]), Kind::Arguments), "[]");
        assert_eq!(
            table_cell(&serde_json::json!(["a", "b"]), Kind::List),
            "[a, b]"
        );
    }

    #[test]
    fn text_tables_follow_the_options() {
        let body = "Listing users ...\nuser\ttags\nguest\t[administrator]\n";
        let mut out = Vec::new();
        let json = Output {
            json: true,
            ..Output::default()
        };
        print_text_table(&mut out, body, json).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[\n{\"user\":\"guest\",\"tags\":[\"administrator\"]}\n]\n"
        );
        let mut out = Vec::new();
        let quiet = Output {
            quiet: true,
            ..Output::default()
        };
        print_text_table(&mut out, body, quiet).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "user\ttags\nguest\t[administrator]\n"
        );
        assert_eq!(without_banner("Setting x ...\ndone\n"), "done\n");
    }
}
