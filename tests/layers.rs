//! The module graph of `src/` obeys the layer rule (docs/ARCHITECTURE.md):
//!
//! protocol ← broker ← storage ← shard ← connection ← admin ← management ← server/main
//!
//! A module may import only from its own layer or the layers to its left,
//! and sibling modules inside one layer (the files of one folder) import
//! each other without cycles. This test reads the sources as text: every
//! `use` statement (braces expanded) and every inline `crate::…` / `super::…`
//! path, resolved to the file that defines the module it names.
//!
//! A folder's `mod.rs` is the folder's front door: its children may name it
//! (`crate::shard::Shard`) and it may name them, so it is not a node of the
//! sibling check.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules from the bottom layer up. `lib.rs` and `main.rs` sit
/// above everything.
const LAYERS: &[&str] = &[
    "protocol",
    "broker",
    "storage",
    "shard",
    "connection",
    "admin",
    "management",
    "server",
    "config",
    "logging",
];

fn layer_of(top: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| *l == top)
        .unwrap_or_else(|| panic!("module `{top}` is not in the layer table of tests/layers.rs"))
}

/// A source file's module path: `src/shard/owner.rs` → `["shard", "owner"]`,
/// `src/shard/mod.rs` → `["shard"]`, `src/lib.rs` → `[]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("file under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Strips `//` comments (including doc comments) and string literals, so
/// prose that mentions a path is not read as an import.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = '\0';
        let mut kept = String::new();
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !in_str && c == '/' && chars.get(i + 1) == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                kept.push(c);
            }
            prev = c;
            i += 1;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// Expands one `use` tree (`crate::shard::{owner, envelope::{A, B}}`) into
/// its leaf paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.to_string()];
    };
    let prefix = tree[..open].trim_end_matches("::");
    let close = tree.rfind('}').expect("balanced braces in a use tree");
    let inner = &tree[open + 1..close];
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .flat_map(|p| {
            expand(p)
                .into_iter()
                .map(|leaf| format!("{prefix}::{leaf}"))
        })
        .collect()
}

/// Every path this file names that starts at `crate::` or `super::`, made
/// absolute (without the `crate::`).
fn imported_paths(code: &str, module: &[String], is_mod_rs: bool) -> Vec<Vec<String>> {
    let mut raw: Vec<String> = Vec::new();
    // `use` statements, braces expanded.
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().last();
        let after = &rest[at + 4..];
        let Some(end) = after.find(';') else { break };
        if before.is_none_or(|c| !c.is_alphanumeric() && c != '_') {
            raw.extend(expand(&after[..end].split_whitespace().collect::<String>()));
        }
        rest = &after[end..];
    }
    // Inline paths.
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let begin = from + at;
            let end = code[begin..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| begin + e);
            raw.push(code[begin..end].to_string());
            from = end;
        }
    }
    raw.into_iter()
        .filter_map(|p| {
            let segments: Vec<String> = p
                .split("::")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            match segments.first().map(String::as_str) {
                Some("crate") => Some(segments[1..].to_vec()),
                Some("super") => {
                    // In `a/b.rs` (module a::b) `super` is `a`; in `a/mod.rs`
                    // (module a) it is a's parent.
                    let mut base = module.to_vec();
                    base.pop();
                    let _ = is_mod_rs;
                    let mut out = base;
                    out.extend(segments[1..].iter().cloned());
                    Some(out)
                }
                _ => None,
            }
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// The longest prefix of `path` that is a module with a file of its own.
fn resolve(path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
}

struct Graph {
    /// module → modules it imports (resolved to files), with the file it was seen in.
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
    modules: BTreeSet<Vec<String>>,
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_path(&src, f)).collect();
    // The codec is its own crate, re-exported as `crate::protocol`.
    modules.insert(vec!["protocol".to_string()]);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        // Unit-test files (`x/tests.rs`, `x_tests.rs`) are test code.
        let stem = file
            .file_stem()
            .map_or(String::new(), |s| s.to_string_lossy().into_owned());
        if stem == "tests" || stem.ends_with("_tests") {
            continue;
        }
        let module = module_path(&src, file);
        let is_mod_rs = file.file_name().is_some_and(|n| n == "mod.rs");
        let text = std::fs::read_to_string(file).expect("read source");
        // Unit tests may reach anywhere; only the production graph counts.
        let production = text.split("#[cfg(test)]").next().unwrap_or("");
        let code = code_only(production);
        let targets = edges.entry(module.clone()).or_default();
        for path in imported_paths(&code, &module, is_mod_rs) {
            if let Some(target) = resolve(&path, &modules) {
                if target != module {
                    targets.insert(target);
                }
            }
        }
    }
    Graph { edges, modules }
}

#[test]
fn layers_import_only_downwards() {
    let g = graph();
    let mut violations = Vec::new();
    for (from, targets) in &g.edges {
        let Some(from_top) = from.first() else {
            continue; // lib.rs / main.rs: the top
        };
        for to in targets {
            let to_top = &to[0];
            if layer_of(to_top) > layer_of(from_top) {
                violations.push(format!("{} imports {}", from.join("::"), to.join("::")));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layer order {LAYERS:?}:\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn sibling_modules_form_no_cycle() {
    let g = graph();
    // Nodes: every module that is a leaf file (not a folder's mod.rs).
    let folders: BTreeSet<Vec<String>> = g
        .modules
        .iter()
        .filter(|m| {
            g.modules
                .iter()
                .any(|o| o.len() > m.len() && o.starts_with(m))
        })
        .cloned()
        .collect();
    let sibling_edges = |m: &Vec<String>| -> Vec<Vec<String>> {
        g.edges
            .get(m)
            .map(|ts| {
                ts.iter()
                    .filter(|t| {
                        t.len() == m.len()
                            && t[..t.len() - 1] == m[..m.len() - 1]
                            && !folders.contains(*t)
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    // Depth-first search for a back edge.
    let mut state: BTreeMap<Vec<String>, u8> = BTreeMap::new(); // 1 = on stack, 2 = done
    let mut cycles = Vec::new();
    fn visit(
        m: &Vec<String>,
        next: &dyn Fn(&Vec<String>) -> Vec<Vec<String>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(m.clone(), 1);
        stack.push(m.clone());
        for t in next(m) {
            match state.get(&t) {
                Some(1) => {
                    let at = stack.iter().position(|s| *s == t).expect("on stack");
                    let names: Vec<String> = stack[at..]
                        .iter()
                        .chain(std::iter::once(&t))
                        .map(|s| s.join("::"))
                        .collect();
                    cycles.push(names.join(" → "));
                }
                Some(_) => {}
                None => visit(&t, next, state, stack, cycles),
            }
        }
        stack.pop();
        state.insert(m.clone(), 2);
    }
    for m in g
        .modules
        .iter()
        .filter(|m| !folders.contains(*m) && !m.is_empty())
    {
        if !state.contains_key(m) {
            visit(m, &sibling_edges, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles between sibling modules:\n  {}",
        cycles.join("\n  ")
    );
}

#[test]
fn the_checker_sees_imports() {
    // Guards the test itself: a parser that found nothing would pass both
    // checks above vacuously.
    let g = graph();
    let owner = vec!["shard".to_string(), "owner".to_string()];
    let targets = g.edges.get(&owner).expect("shard::owner is a module");
    assert!(
        targets.contains(&vec!["broker".to_string(), "queue".to_string()]),
        "shard::owner should be seen importing broker::queue: {targets:?}"
    );
    assert_eq!(
        expand("crate::a::{b, c::{D, E}}"),
        vec!["crate::a::b", "crate::a::c::D", "crate::a::c::E"]
    );
}
