//! `loadgen merge` flags: the reports saved by separate runs, side A and
//! side B, and the table's title and names.

use std::path::PathBuf;

use super::flags::normalize;

/// `loadgen merge` settings: reports saved by separate runs (`--save`),
/// side A and side B, combined into one comparison table.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeConfig {
    pub title: String,
    /// The sentence under the title (what was run).
    pub intro: String,
    pub a_name: String,
    pub b_name: String,
    /// Each side's saved reports; one side's files are joined into one
    /// report (their metrics appended in order).
    pub a_files: Vec<PathBuf>,
    pub b_files: Vec<PathBuf>,
    /// Append the Markdown section to this file.
    pub markdown: Option<PathBuf>,
    /// Show the metrics of failed runs too (a memory run that failed its
    /// bound still measured its figures); their failures are still listed.
    pub keep_failed: bool,
}

/// Parses `loadgen merge --title T [--intro S] [--a-name N] [--b-name N]
/// --a FILE… --b FILE… [--markdown FILE] [--keep-failed]`.
pub fn parse_merge(args: &[String]) -> Result<MergeConfig, String> {
    let args = normalize(args);
    let mut c = MergeConfig {
        title: String::new(),
        intro: String::new(),
        a_name: "A".to_string(),
        b_name: "B".to_string(),
        a_files: Vec::new(),
        b_files: Vec::new(),
        markdown: None,
        keep_failed: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .map(|s| s.as_str())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--title" => c.title = value()?.to_string(),
            "--intro" => c.intro = value()?.to_string(),
            "--a-name" => c.a_name = value()?.to_string(),
            "--b-name" => c.b_name = value()?.to_string(),
            "--a" => c.a_files.push(PathBuf::from(value()?)),
            "--b" => c.b_files.push(PathBuf::from(value()?)),
            "--markdown" => c.markdown = Some(PathBuf::from(value()?)),
            "--keep-failed" => c.keep_failed = true,
            other => return Err(format!("merge: unknown flag {other:?}")),
        }
    }
    if c.title.is_empty() {
        return Err("merge needs --title".to_string());
    }
    if c.a_files.is_empty() || c.b_files.is_empty() {
        return Err("merge needs at least one --a FILE and one --b FILE".to_string());
    }
    if c.a_files.len() > 64 || c.b_files.len() > 64 {
        return Err("merge: at most 64 files per side".to_string());
    }
    Ok(c)
}
