//! A run's results: named metrics with units, notes and an error, printed
//! as a table or written as JSON; plus the latency histogram helpers.
//! Pure: formatting only (the caller writes the files).

use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// Which direction of a metric is good (for compare's verdicts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    Neither,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub better: Better,
}

/// The outcome of one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub scenario: String,
    pub target: String,
    pub settings: String,
    pub metrics: Vec<Metric>,
    pub notes: Vec<String>,
    /// Set when the run failed; the metrics gathered so far are kept.
    pub error: Option<String>,
}

impl Report {
    pub fn new(scenario: &str, target: &str, settings: &str) -> Report {
        Report {
            scenario: scenario.to_string(),
            target: target.to_string(),
            settings: settings.to_string(),
            ..Report::default()
        }
    }

    pub fn push(&mut self, name: &str, value: f64, unit: &'static str, better: Better) {
        self.metrics.push(Metric {
            name: name.to_string(),
            value,
            unit,
            better,
        });
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
    }

    /// p50, p99, p99.9 and max of a nanosecond histogram, in milliseconds.
    pub fn push_latency(&mut self, what: &str, h: &Histogram<u64>) {
        if h.is_empty() {
            return;
        }
        for (label, q) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)] {
            self.push(
                &format!("{what} {label}"),
                h.value_at_quantile(q) as f64 / 1e6,
                "ms",
                Better::Lower,
            );
        }
        self.push(
            &format!("{what} max"),
            h.max() as f64 / 1e6,
            "ms",
            Better::Lower,
        );
    }

    /// The human-readable summary table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "== {} against {} ==", self.scenario, self.target);
        let _ = writeln!(out, "   {}", self.settings);
        let width = self
            .metrics
            .iter()
            .map(|m| m.name.len())
            .max()
            .unwrap_or(0)
            .max(6);
        for m in &self.metrics {
            let _ = writeln!(
                out,
                "   {:<width$}  {:>14} {}",
                m.name,
                fmt_value(m.value),
                m.unit
            );
        }
        for n in &self.notes {
            let _ = writeln!(out, "   note: {n}");
        }
        if let Some(e) = &self.error {
            let _ = writeln!(out, "   FAILED: {e}");
        }
        out
    }

    /// The report as a JSON object.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        let _ = write!(
            out,
            "\"scenario\":{},\"target\":{},\"settings\":{},\"metrics\":{{",
            json_str(&self.scenario),
            json_str(&self.target),
            json_str(&self.settings)
        );
        for (i, m) in self.metrics.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{}:{{\"value\":{},\"unit\":{}}}",
                json_str(&m.name),
                json_num(m.value),
                json_str(m.unit)
            );
        }
        out.push_str("},\"notes\":[");
        for (i, n) in self.notes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&json_str(n));
        }
        out.push_str("],\"error\":");
        match &self.error {
            Some(e) => out.push_str(&json_str(e)),
            None => out.push_str("null"),
        }
        out.push('}');
        out
    }
}

/// Numbers the way a person reads them: thousands separated, 3 significant
/// decimals for small values.
pub fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    if v.abs() >= 1000.0 {
        let s = format!("{:.0}", v.abs());
        let mut grouped = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if v < 0.0 {
            grouped.insert(0, '-');
        }
        grouped
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".to_string()
    }
}

/// A latency histogram in nanoseconds: 1 ns to 1 hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_and_shape() {
        let mut r = Report::new("x\"y", "amqp://h", "a\nb");
        r.push("rate", 1.5, "msg/s", Better::Higher);
        r.push("inf", f64::INFINITY, "ms", Better::Lower);
        r.notes.push("tab\there".into());
        let j = r.to_json();
        assert_eq!(
            j,
            "{\"scenario\":\"x\\\"y\",\"target\":\"amqp://h\",\"settings\":\"a\\nb\",\
             \"metrics\":{\"rate\":{\"value\":1.5,\"unit\":\"msg/s\"},\
             \"inf\":{\"value\":null,\"unit\":\"ms\"}},\"notes\":[\"tab\\there\"],\"error\":null}"
        );
        assert_eq!(json_str("\u{1}"), "\"\\u0001\"");
    }

    #[test]
    fn value_formatting() {
        assert_eq!(fmt_value(1234567.0), "1,234,567");
        assert_eq!(fmt_value(-1234.4), "-1,234");
        assert_eq!(fmt_value(999.0), "999.0");
        assert_eq!(fmt_value(12.345), "12.35");
        assert_eq!(fmt_value(0.1234), "0.123");
        assert_eq!(fmt_value(f64::NAN), "n/a");
    }

    #[test]
    fn latency_metrics() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 1_000_000).unwrap();
        }
        let mut r = Report::new("s", "t", "");
        r.push_latency("e2e", &h);
        let p50 = r.get("e2e p50").unwrap();
        assert!((p50 - 500.0).abs() < 1.0, "{p50}");
        assert!((r.get("e2e max").unwrap() - 1000.0).abs() < 1.0);
        assert!(r.table().contains("e2e p99.9"));
        let mut empty = Report::new("s", "t", "");
        empty.push_latency("e2e", &new_histogram());
        assert!(empty.metrics.is_empty());
    }
}
