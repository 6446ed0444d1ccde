//! A report saved to a file by one run (`--save FILE`) and read back by
//! `loadgen merge`, so runs in separate processes (before and after a
//! broker restart) can be compared. Line format, one record a line,
//! tab-separated: `scenario|target|settings|note|error\tTEXT` and
//! `metric\tNAME\tVALUE\tUNIT\tBETTER`. Pure: no I/O.

use crate::report::{Better, Metric, Report};

/// Largest saved report accepted (bounded: a stray large file is refused).
pub const MAX_SAVED_BYTES: usize = 1 << 20;
/// Most metrics and notes accepted in one saved report.
const MAX_RECORDS: usize = 10_000;

/// The units loadgen reports use; a saved unit must be one of these
/// (`Metric::unit` is `&'static str`).
const UNITS: &[&str] = &[
    "msg", "msg/s", "ms", "s", "us", "cores", "MiB", "KiB", "B", "conn", "conn/s", "queues",
    "queues/s",
];

/// Tabs and line breaks would break the format; they become spaces.
fn clean(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

fn better_str(b: Better) -> &'static str {
    match b {
        Better::Higher => "higher",
        Better::Lower => "lower",
        Better::Neither => "-",
    }
}

/// The report in the line format.
pub fn to_lines(r: &Report) -> String {
    let mut out = String::new();
    for (k, v) in [
        ("scenario", &r.scenario),
        ("target", &r.target),
        ("settings", &r.settings),
    ] {
        out += &format!("{k}\t{}\n", clean(v));
    }
    for m in &r.metrics {
        out += &format!(
            "metric\t{}\t{}\t{}\t{}\n",
            clean(&m.name),
            m.value,
            m.unit,
            better_str(m.better)
        );
    }
    for n in &r.notes {
        out += &format!("note\t{}\n", clean(n));
    }
    if let Some(e) = &r.error {
        out += &format!("error\t{}\n", clean(e));
    }
    out
}

/// Reads a report written by `to_lines`.
pub fn parse_lines(text: &str) -> Result<Report, String> {
    if text.len() > MAX_SAVED_BYTES {
        return Err(format!("saved report larger than {MAX_SAVED_BYTES} bytes"));
    }
    let mut r = Report::default();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        if r.metrics.len() + r.notes.len() >= MAX_RECORDS {
            return Err(format!("more than {MAX_RECORDS} records"));
        }
        let bad = |what: &str| format!("line {}: {what}", i + 1);
        let (kind, rest) = line.split_once('\t').ok_or_else(|| bad("no tab"))?;
        match kind {
            "scenario" => r.scenario = rest.to_string(),
            "target" => r.target = rest.to_string(),
            "settings" => r.settings = rest.to_string(),
            "note" => r.notes.push(rest.to_string()),
            "error" => r.error = Some(rest.to_string()),
            "metric" => {
                let f: Vec<&str> = rest.split('\t').collect();
                let [name, value, unit, better] = f[..] else {
                    return Err(bad("a metric needs name, value, unit and better"));
                };
                let value: f64 = value.parse().map_err(|_| bad("bad metric value"))?;
                let unit = UNITS
                    .iter()
                    .find(|u| **u == unit)
                    .ok_or_else(|| bad(&format!("unknown unit {unit:?}")))?;
                let better = match better {
                    "higher" => Better::Higher,
                    "lower" => Better::Lower,
                    "-" => Better::Neither,
                    _ => return Err(bad("better must be higher, lower or -")),
                };
                r.metrics.push(Metric {
                    name: name.to_string(),
                    value,
                    unit,
                    better,
                });
            }
            _ => return Err(bad(&format!("unknown record {kind:?}"))),
        }
    }
    Ok(r)
}

/// One side's reports joined into one: metrics and notes in order, the
/// first report's scenario/target/settings, the first error.
pub fn join(reports: Vec<Report>) -> Report {
    let mut it = reports.into_iter();
    let Some(mut out) = it.next() else {
        return Report::default();
    };
    for (step, r) in it.enumerate() {
        for mut m in r.metrics {
            // A name taken by an earlier step gets the step number, so
            // `Report::get` (first match) still finds both.
            if out.metrics.iter().any(|o| o.name == m.name) {
                m.name = format!("{} (step {})", m.name, step + 2);
            }
            out.metrics.push(m);
        }
        out.notes.extend(r.notes);
        if out.error.is_none() {
            out.error = r.error;
        }
        if !r.settings.is_empty() && r.settings != out.settings {
            out.settings = format!("{}; then {}", out.settings, r.settings);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut r = Report::new("recovery-1m", "amqp://h:1/%2f", "mode fill,\tpersistent");
        r.push("published", 1000.0, "msg", Better::Neither);
        r.push("publish rate", 12345.678, "msg/s", Better::Higher);
        r.push("time to ready", 0.25, "s", Better::Lower);
        r.notes.push("a note\nover two lines".to_string());
        r.error = Some("boom".to_string());
        r
    }

    #[test]
    fn round_trip() {
        let r = sample();
        let back = parse_lines(&to_lines(&r)).unwrap();
        assert_eq!(back.metrics, r.metrics);
        assert_eq!(back.scenario, r.scenario);
        assert_eq!(back.target, r.target);
        assert_eq!(back.settings, "mode fill, persistent", "tabs become spaces");
        assert_eq!(back.notes, vec!["a note over two lines".to_string()]);
        assert_eq!(back.error.as_deref(), Some("boom"));
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "metric\tx\t1\tmsg",
            "metric\tx\tone\tmsg\thigher",
            "metric\tx\t1\tparsecs\thigher",
            "metric\tx\t1\tmsg\tbest",
            "weird\tline",
            "notab",
        ] {
            assert!(parse_lines(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_lines(&"x".repeat(MAX_SAVED_BYTES + 1)).is_err());
    }

    #[test]
    fn join_appends_in_order() {
        let mut a = Report::new("s", "t", "fill");
        a.push("published", 10.0, "msg", Better::Neither);
        let mut b = Report::new("s", "t", "recover-wait");
        b.push("drain rate", 5.0, "msg/s", Better::Higher);
        b.push("published", 3.0, "msg", Better::Neither);
        b.error = Some("late".into());
        let j = join(vec![a, b]);
        let names: Vec<&str> = j.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["published", "drain rate", "published (step 2)"]);
        assert_eq!(j.settings, "fill; then recover-wait");
        assert_eq!(j.error.as_deref(), Some("late"));
        assert_eq!(join(Vec::new()), Report::default());
    }
}
