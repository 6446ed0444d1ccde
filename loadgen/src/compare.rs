//! `loadgen compare`: the same run against broker A and broker B,
//! alternating (A, B, A, B, …), then each metric's median per side (over
//! the successful rounds: one noisy round on a shared machine moves it
//! less than a mean) and the
//! ratio A/B, as a text table, a Markdown section and JSON.

use std::fmt::Write as _;

use crate::cli::{CompareConfig, Config};
use crate::report::{fmt_value, json_str, Better, Report};

/// One metric side by side.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    pub unit: &'static str,
    pub better: Better,
    pub a: Option<f64>,
    pub b: Option<f64>,
}

impl Row {
    pub fn ratio(&self) -> Option<f64> {
        match (self.a, self.b) {
            (Some(a), Some(b)) if b != 0.0 => Some(a / b),
            _ => None,
        }
    }
}

/// How one side's runs went: `None` if all succeeded.
pub fn failures(reports: &[Report]) -> Option<String> {
    let failed: Vec<&Report> = reports.iter().filter(|r| r.error.is_some()).collect();
    let first = failed.first()?;
    Some(format!(
        "FAILED {}/{}: {}",
        failed.len(),
        reports.len(),
        first.error.as_deref().unwrap_or("")
    ))
}

fn median(reports: &[Report], name: &str) -> Option<f64> {
    let mut vals: Vec<f64> = reports
        .iter()
        .filter(|r| r.error.is_none())
        .filter_map(|r| r.get(name))
        .filter(|v| v.is_finite())
        .collect();
    if vals.is_empty() {
        return None;
    }
    vals.sort_by(f64::total_cmp);
    let n = vals.len();
    Some(if n % 2 == 1 {
        vals[n / 2]
    } else {
        (vals[n / 2 - 1] + vals[n / 2]) / 2.0
    })
}

/// Medians of every metric over the successful runs of each side, in the
/// order the metrics first appear.
pub fn summarize(a: &[Report], b: &[Report]) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for r in a.iter().chain(b) {
        for m in &r.metrics {
            if !rows.iter().any(|row| row.name == m.name) {
                rows.push(Row {
                    name: m.name.clone(),
                    unit: m.unit,
                    better: m.better,
                    a: None,
                    b: None,
                });
            }
        }
    }
    for row in &mut rows {
        row.a = median(a, &row.name);
        row.b = median(b, &row.name);
    }
    rows
}

fn cell(v: Option<f64>) -> String {
    v.map(fmt_value).unwrap_or_else(|| "-".to_string())
}

fn ratio_cell(row: &Row) -> String {
    match row.ratio() {
        Some(x) => format!("{x:.2}x"),
        None => "-".to_string(),
    }
}

fn better_cell(b: Better) -> &'static str {
    match b {
        Better::Higher => "higher",
        Better::Lower => "lower",
        Better::Neither => "",
    }
}

/// The side-by-side text table.
pub fn table(cc: &CompareConfig, rows: &[Row], a: &[Report], b: &[Report]) -> String {
    let mut out = String::new();
    let scenario = cc.run.scenario.as_deref().unwrap_or("custom");
    let _ = writeln!(
        out,
        "== compare {scenario}: A = {} ({}), B = {} ({}), {} round(s) ==",
        cc.a_name, cc.a, cc.b_name, cc.b, cc.rounds
    );
    let w = rows
        .iter()
        .map(|r| r.name.len() + r.unit.len() + 3)
        .max()
        .unwrap_or(10);
    let _ = writeln!(
        out,
        "   {:<w$}  {:>14}  {:>14}  {:>8}  better",
        "metric", cc.a_name, cc.b_name, "A/B"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "   {:<w$}  {:>14}  {:>14}  {:>8}  {}",
            format!("{} ({})", r.name, r.unit),
            cell(r.a),
            cell(r.b),
            ratio_cell(r),
            better_cell(r.better)
        );
    }
    for (label, side) in [(&cc.a_name, a), (&cc.b_name, b)] {
        if let Some(f) = failures(side) {
            let _ = writeln!(out, "   {label}: {f}");
        }
        for n in side.iter().flat_map(|r| &r.notes).take(5) {
            let _ = writeln!(out, "   {label} note: {n}");
        }
    }
    out
}

/// The Markdown section appended by `--markdown`.
pub fn markdown(cc: &CompareConfig, rows: &[Row], a: &[Report], b: &[Report]) -> String {
    let scenario = cc.run.scenario.as_deref().unwrap_or("custom");
    let settings = a
        .first()
        .or(b.first())
        .map(|r| r.settings.as_str())
        .unwrap_or("");
    let intro = format!("{settings}; {} round(s) each, alternating.", cc.rounds);
    markdown_section(scenario, &intro, (&cc.a_name, &cc.b_name), rows, a, b)
}

/// A Markdown section: `### title`, the intro paragraph, the side-by-side
/// table and each side's failures and notes.
pub fn markdown_section(
    title: &str,
    intro: &str,
    (a_name, b_name): (&str, &str),
    rows: &[Row],
    a: &[Report],
    b: &[Report],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### {title}\n");
    if !intro.is_empty() {
        let _ = writeln!(out, "{intro}\n");
    }
    let _ = writeln!(
        out,
        "| metric | {a_name} | {b_name} | {a_name}/{b_name} | better |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} ({}) | {} | {} | {} | {} |",
            r.name,
            r.unit,
            cell(r.a),
            cell(r.b),
            ratio_cell(r),
            better_cell(r.better)
        );
    }
    let mut notes = Vec::new();
    for (label, side) in [(a_name, a), (b_name, b)] {
        if let Some(f) = failures(side) {
            notes.push(format!("**{label}: {f}**"));
        }
        let mut seen: Vec<&String> = Vec::new();
        for n in side.iter().flat_map(|r| &r.notes) {
            if !seen.contains(&n) && seen.len() < 5 {
                seen.push(n);
                notes.push(format!("{label}: {n}"));
            }
        }
    }
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            let _ = writeln!(out, "- {}", n.replace('|', "\\|"));
        }
    }
    out.push('\n');
    out
}

/// The whole comparison as JSON.
pub fn to_json(cc: &CompareConfig, rows: &[Row], a: &[Report], b: &[Report]) -> String {
    let num = |v: Option<f64>| match v {
        Some(x) if x.is_finite() => format!("{x}"),
        _ => "null".to_string(),
    };
    let mut out = String::from("{");
    let _ = write!(
        out,
        "\"scenario\":{},\"a\":{{\"name\":{},\"target\":{}}},\"b\":{{\"name\":{},\"target\":{}}},\"summary\":[",
        json_str(cc.run.scenario.as_deref().unwrap_or("custom")),
        json_str(&cc.a_name),
        json_str(&cc.a.to_string()),
        json_str(&cc.b_name),
        json_str(&cc.b.to_string()),
    );
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"metric\":{},\"unit\":{},\"a\":{},\"b\":{},\"ratio\":{}}}",
            json_str(&r.name),
            json_str(r.unit),
            num(r.a),
            num(r.b),
            num(r.ratio())
        );
    }
    out.push_str("],\"a_runs\":[");
    out.push_str(&a.iter().map(|r| r.to_json()).collect::<Vec<_>>().join(","));
    out.push_str("],\"b_runs\":[");
    out.push_str(&b.iter().map(|r| r.to_json()).collect::<Vec<_>>().join(","));
    out.push_str("]}");
    out
}

/// Runs the rounds, printing each run's table as it finishes.
pub fn run_compare(
    cc: &CompareConfig,
    run: &dyn Fn(&Config) -> Report,
) -> (Vec<Report>, Vec<Report>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 1..=cc.rounds {
        for (side, uri, pid, name) in [
            (&mut a, &cc.a, cc.a_pid, &cc.a_name),
            (&mut b, &cc.b, cc.b_pid, &cc.b_name),
        ] {
            let cfg = Config {
                uri: uri.clone(),
                broker_pid: pid,
                json: None,
                ..cc.run.clone()
            };
            eprintln!("-- round {round}/{}: {name} ({uri})", cc.rounds);
            let report = run(&cfg);
            print!("{}", report.table());
            side.push(report);
        }
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse_compare;

    fn report(rate: f64, p99: f64, err: Option<&str>) -> Report {
        let mut r = Report::new("s", "t", "settings");
        r.push("publish rate", rate, "msg/s", Better::Higher);
        r.push("e2e latency p99", p99, "ms", Better::Lower);
        r.error = err.map(String::from);
        r
    }

    #[test]
    fn medians_leave_one_noisy_round_out() {
        let a = vec![
            report(100.0, 2.0, None),
            report(1000.0, 90.0, None),
            report(200.0, 3.0, None),
        ];
        let b = vec![report(50.0, 1.0, None)];
        let rows = summarize(&a, &b);
        assert_eq!(rows[0].a, Some(200.0));
        assert_eq!(rows[1].a, Some(3.0));
        assert_eq!(rows[0].ratio(), Some(4.0));
    }

    #[test]
    fn means_and_ratios() {
        let a = vec![report(100.0, 2.0, None), report(300.0, 4.0, None)];
        let b = vec![report(100.0, 1.0, None), report(1e9, 1e9, Some("boom"))];
        let rows = summarize(&a, &b);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].a, Some(200.0));
        assert_eq!(rows[0].b, Some(100.0), "the failed run is left out");
        assert_eq!(rows[0].ratio(), Some(2.0));
        assert_eq!(rows[1].ratio(), Some(3.0));
        assert_eq!(failures(&a), None);
        assert_eq!(failures(&b).as_deref(), Some("FAILED 1/2: boom"));
    }

    #[test]
    fn all_failed_side_has_no_values() {
        let a = vec![report(10.0, 1.0, Some("nope"))];
        let b = vec![report(10.0, 1.0, None)];
        let rows = summarize(&a, &b);
        assert_eq!(rows[0].a, None);
        assert_eq!(rows[0].ratio(), None);
        let cc = parse_compare(
            &[
                "--a",
                "amqp://h:1",
                "--b",
                "amqp://h:2",
                "--scenario",
                "1p1c-16b",
            ]
            .map(String::from),
        )
        .unwrap();
        let md = markdown(&cc, &rows, &a, &b);
        assert!(md.starts_with("### 1p1c-16b\n"));
        assert!(md.contains("| publish rate (msg/s) | - | 10.00 | - | higher |"));
        assert!(md.contains("**A: FAILED 1/1: nope**"));
        let t = table(&cc, &rows, &a, &b);
        assert!(t.contains("A: FAILED 1/1: nope"));
        let j = to_json(&cc, &rows, &a, &b);
        assert!(j.contains("\"a\":null,\"b\":10,\"ratio\":null"));
    }

    #[test]
    fn merged_section_has_its_own_title_and_intro() {
        let a = vec![report(30.0, 1.0, None)];
        let b = vec![report(10.0, 2.0, None)];
        let rows = summarize(&a, &b);
        let md = markdown_section("recovery-1m", "fill, restart", ("w", "r"), &rows, &a, &b);
        assert!(
            md.starts_with("### recovery-1m\n\nfill, restart\n\n| metric | w | r | w/r | better |")
        );
        assert!(md.contains("| publish rate (msg/s) | 30.00 | 10.00 | 3.00x | higher |"));
        assert!(!md.contains("round(s)"));
    }
}
