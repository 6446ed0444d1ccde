//! Writing Prometheus' text format into one `String`: TYPE / HELP lines,
//! samples with their labels, label values escaped.

use crate::broker::vhost::VhostId;
use std::collections::HashMap;
use std::fmt::Write;

pub(super) fn head(out: &mut String, prefix: &str, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# TYPE {prefix}{name} {kind}");
    let _ = writeln!(out, "# HELP {prefix}{name} {help}");
}

/// One sample; `labels` is written as is between braces (none when
/// empty).
pub(super) fn value(out: &mut String, prefix: &str, name: &str, labels: &str, v: f64) {
    out.push_str(prefix);
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        out.push_str(labels);
        out.push('}');
    }
    out.push(' ');
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        // `+ 0.0`: an empty float sum is -0.0.
        let _ = write!(out, "{}", v + 0.0);
    }
    out.push('\n');
}

/// A sample with a `vhost` and one object label.
pub(super) fn object(
    out: &mut String,
    prefix: &str,
    name: &str,
    vhost: &str,
    key: &str,
    object: &str,
    v: f64,
) {
    out.push_str(prefix);
    out.push_str(name);
    out.push_str("{vhost=\"");
    escaped(out, vhost);
    let _ = write!(out, "\",{key}=\"");
    escaped(out, object);
    out.push_str("\"} ");
    let _ = write!(out, "{v}");
    out.push('\n');
}

pub(super) fn vhost_name(names: &HashMap<VhostId, String>, id: VhostId) -> &str {
    names.get(&id).map_or("", String::as_str)
}

/// Writes `s` as a label value (backslash, quote and newline escaped).
pub(super) fn escaped(out: &mut String, s: &str) {
    if !s.contains(['\\', '"', '\n']) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}
