//! Issue 15's performance targets, checked against a `compare` run's
//! medians (A = Warren, B = RabbitMQ): which targets a scenario has, what
//! was measured and whether it is met, as Markdown table rows
//! (`compare --targets FILE` appends them; scripts/bench-vs-rabbitmq.sh
//! puts the header above). Pure: no I/O.

use std::fmt::Write as _;

use crate::compare::Row;
use crate::report::fmt_value;

/// One target: a bound on a figure of the run.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Check {
    /// A's `metric` is at most `limit` (in the metric's unit).
    AtMost(&'static str, f64),
    /// A's `metric` over B's is at least `limit`.
    RatioAtLeast(&'static str, f64),
    /// A's `metric` over B's is at most `limit`.
    RatioAtMost(&'static str, f64),
    /// A's first metric over A's second is at least `limit`.
    ShareAtLeast(&'static str, &'static str, f64),
}

const CPU: &str = "broker CPU per msg";

/// The targets of each scenario (issue 15).
fn checks(scenario: &str) -> &'static [Check] {
    use Check::*;
    match scenario {
        "1p1c-16b" => &[
            AtMost(CPU, 1.0),
            RatioAtLeast("receive rate", 20.0),
            ShareAtLeast("receive rate", "publish rate", 0.95),
            AtMost("e2e latency p99", 50.0),
        ],
        "persistent-confirms-1k" => &[AtMost(CPU, 3.0), RatioAtLeast("confirm rate", 15.0)],
        "4p4c" => &[
            RatioAtLeast("receive rate", 10.0),
            ShareAtLeast("receive rate", "publish rate", 0.95),
            AtMost("e2e latency p99", 50.0),
        ],
        "fanout-10" => &[RatioAtLeast("receive rate", 10.0)],
        "client-like-16b" => &[AtMost(CPU, 1.0)],
        "client-like-persistent-1k" => &[AtMost(CPU, 3.0)],
        "latency-10k" => &[
            AtMost("e2e latency p99", 1.0),
            RatioAtMost("broker CPU", 1.0),
        ],
        _ => &[],
    }
}

fn find<'a>(rows: &'a [Row], name: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.name == name)
}

/// (target text, measured text, met?) of one check; `None` = not measured.
fn evaluate(c: Check, rows: &[Row], names: (&str, &str)) -> (String, Option<(String, bool)>) {
    let (a, b) = names;
    match c {
        Check::AtMost(m, limit) => {
            let row = find(rows, m);
            let unit = row.map_or("", |r| r.unit);
            let got = row.and_then(|r| r.a);
            (
                format!("{a} {m} ≤ {limit} {unit}"),
                got.map(|v| (format!("{} {unit}", fmt_value(v)), v <= limit)),
            )
        }
        Check::RatioAtLeast(m, limit) | Check::RatioAtMost(m, limit) => {
            let at_least = matches!(c, Check::RatioAtLeast(..));
            let row = find(rows, m);
            let text = format!(
                "{m} {a}/{b} {} {limit:.0}×",
                if at_least { "≥" } else { "≤" }
            );
            let got = row.and_then(|r| Some((r.a?, r.b?, r.ratio()?)));
            let unit = row.map_or("", |r| r.unit);
            (
                text,
                got.map(|(va, vb, x)| {
                    (
                        format!("{x:.2}× ({} vs {} {unit})", fmt_value(va), fmt_value(vb)),
                        if at_least { x >= limit } else { x <= limit },
                    )
                }),
            )
        }
        Check::ShareAtLeast(num, den, limit) => {
            let got = match (
                find(rows, num).and_then(|r| r.a),
                find(rows, den).and_then(|r| r.a),
            ) {
                (Some(n), Some(d)) if d > 0.0 => Some(n / d),
                _ => None,
            };
            (
                format!("{a} {num} ≥ {:.0} % of {den}", limit * 100.0),
                got.map(|x| (format!("{:.1} %", x * 100.0), x >= limit)),
            )
        }
    }
}

/// The Markdown rows (`| scenario | target | measured | status |`) of a
/// scenario's targets; empty if it has none.
pub fn rows_markdown(scenario: &str, rows: &[Row], names: (&str, &str)) -> String {
    let mut out = String::new();
    for &c in checks(scenario) {
        let (target, got) = evaluate(c, rows, names);
        let (measured, status) = match got {
            Some((m, true)) => (m, "met"),
            Some((m, false)) => (m, "**not met**"),
            None => ("-".to_string(), "not measured"),
        };
        let _ = writeln!(out, "| {scenario} | {target} | {measured} | {status} |");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Better;

    fn row(name: &str, unit: &'static str, a: f64, b: f64) -> Row {
        Row {
            name: name.into(),
            unit,
            better: Better::Neither,
            a: Some(a),
            b: Some(b),
        }
    }

    #[test]
    fn one_p_one_c_targets_are_checked_from_the_medians() {
        let rows = vec![
            row("publish rate", "msg/s", 500_000.0, 40_000.0),
            row("receive rate", "msg/s", 490_000.0, 40_000.0),
            row("e2e latency p99", "ms", 77.0, 900.0),
            row(CPU, "us", 0.9, 40.0),
        ];
        let md = rows_markdown("1p1c-16b", &rows, ("warren", "rabbitmq"));
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            "| 1p1c-16b | warren broker CPU per msg ≤ 1 us | 0.900 us | met |"
        );
        assert!(lines[1].contains("receive rate warren/rabbitmq ≥ 20×"));
        assert!(lines[1].contains("12.25× (490,000 vs 40,000 msg/s) | **not met** |"));
        assert!(lines[2].ends_with("| 98.0 % | met |"));
        assert!(lines[3].ends_with("| 77.00 ms | **not met** |"));
    }

    #[test]
    fn missing_figures_are_not_measured_and_unknown_scenarios_have_none() {
        let md = rows_markdown("persistent-confirms-1k", &[], ("w", "r"));
        assert_eq!(md.lines().count(), 2);
        assert!(md.lines().all(|l| l.ends_with("| - | not measured |")));
        assert_eq!(rows_markdown("backlog", &[], ("w", "r")), "");
    }

    #[test]
    fn ratio_at_most_for_cpu_at_a_fixed_rate() {
        let rows = vec![
            row("broker CPU", "s", 2.0, 1.0),
            row("e2e latency p99", "ms", 0.5, 0.4),
        ];
        let md = rows_markdown("latency-10k", &rows, ("w", "r"));
        assert!(md.contains("| latency-10k | w e2e latency p99 ≤ 1 ms | 0.500 ms | met |"));
        assert!(md.contains("broker CPU w/r ≤ 1×"));
        assert!(md.contains("2.00× (2.00 vs 1.00 s) | **not met** |"));
    }
}
