//! `loadgen compare` flags: the two brokers (URI, name, pid), the rounds,
//! and the run flags both sides share.

use std::path::PathBuf;

use super::config::Config;
use super::flags::{bounded, normalize, num};
use super::run_flags::parse_run;
use crate::uri::AmqpUri;

/// `loadgen compare` settings.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareConfig {
    pub a: AmqpUri,
    pub b: AmqpUri,
    pub a_pid: Option<u32>,
    pub b_pid: Option<u32>,
    pub rounds: usize,
    pub a_name: String,
    pub b_name: String,
    /// Append the summary as a Markdown section to this file.
    pub markdown: Option<PathBuf>,
    /// Append the scenario's issue-15 target rows (`targets.rs`) to this
    /// file, A being Warren.
    pub targets: Option<PathBuf>,
    /// The scenario flags (its `uri` and `broker_pid` are replaced per side).
    pub run: Config,
}

/// Parses `loadgen compare --a URI --b URI [--a-pid P] [--b-pid P]
/// [--rounds N] [run flags]`.
pub fn parse_compare(args: &[String]) -> Result<CompareConfig, String> {
    let args = normalize(args);
    let (mut a, mut b, mut a_pid, mut b_pid, mut rounds) = (None, None, None, None, 2usize);
    let (mut markdown, mut targets) = (None, None);
    let (mut a_name, mut b_name) = ("A".to_string(), "B".to_string());
    let mut rest = Vec::with_capacity(args.len());
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .map(|s| s.as_str())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--a" => a = Some(AmqpUri::parse(value()?)?),
            "--b" => b = Some(AmqpUri::parse(value()?)?),
            "--a-pid" => a_pid = Some(num(flag, value()?)?),
            "--b-pid" => b_pid = Some(num(flag, value()?)?),
            "--rounds" => rounds = bounded(flag, num(flag, value()?)?, 1, 100)?,
            "--a-name" => a_name = value()?.to_string(),
            "--b-name" => b_name = value()?.to_string(),
            "--markdown" => markdown = Some(PathBuf::from(value()?)),
            "--targets" => targets = Some(PathBuf::from(value()?)),
            "--uri" | "--broker-pid" => {
                return Err(format!(
                    "{flag}: use --a/--b and --a-pid/--b-pid with compare"
                ))
            }
            _ => rest.push(flag.clone()),
        }
    }
    let run = parse_run(&rest)?;
    Ok(CompareConfig {
        a: a.ok_or("compare needs --a URI")?,
        b: b.ok_or("compare needs --b URI")?,
        a_pid,
        b_pid,
        rounds,
        a_name,
        b_name,
        markdown,
        targets,
        run,
    })
}
