//! Helpers every flag parser shares: `--flag=value` split in two, numbers
//! parsed and bounded with the flag named in the error.

/// Splits `--flag=value` into two arguments.
pub(super) fn normalize(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => {
                out.push(f.to_string());
                out.push(v.to_string());
            }
            _ => out.push(a.clone()),
        }
    }
    out
}

pub(super) fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse::<T>()
        .map_err(|_| format!("{flag}: {v:?} is not a valid number"))
}

pub(super) fn bounded(flag: &str, v: usize, lo: usize, hi: usize) -> Result<usize, String> {
    if v < lo || v > hi {
        return Err(format!("{flag}: {v} is out of range {lo}..={hi}"));
    }
    Ok(v)
}
