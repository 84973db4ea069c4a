//! The layers of ARCHITECTURE.md, checked from the source so that a new import cannot
//! break them quietly: the core imports neither the command line (nor clap) nor the
//! terminal, no command imports another, and the crate's top-level modules have no
//! import circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The core: knows nothing of clap, the terminal, or the commands.
const CORE: [&str; 17] = [
    "accounts",
    "audit",
    "backup",
    "cancel",
    "config",
    "db",
    "entities",
    "environments",
    "error",
    "migrations",
    "privileges",
    "progress",
    "records",
    "schema",
    "spec",
    "text",
    "upgrade",
];
/// What the core must not import.
const ABOVE_CORE: [&str; 7] = [
    "cli", "commands", "docs", "flags", "output", "signals", "lib",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/audit/rules.rs` -> `audit`; `src/lib.rs` -> `lib`.
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// Every `crate::a::b` path in `text`, as (a, b), outside comments.
fn crate_paths(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let ident = |s: &str| -> String {
                s.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect()
            };
            let a = ident(rest);
            let after = &rest[a.len()..];
            let b = after.strip_prefix("::").map(ident).unwrap_or_default();
            out.push((a, b));
        }
    }
    out
}

/// In the crate root: every `m::` path (outside comments) whose `m` is a top-level
/// module, as (m, "").
fn root_paths(text: &str, modules: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let words = code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'));
        for word in words {
            if let Some((m, _)) = word.split_once("::")
                && modules.contains(m)
            {
                out.push((m.to_owned(), String::new()));
            }
        }
    }
    out
}

#[test]
fn layers_hold_and_no_import_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| top_module(&src, f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for file in &files {
        let from = top_module(&src, file);
        if from == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        if CORE.contains(&from.as_str())
            && text
                .lines()
                .any(|l| l.split("//").next().unwrap_or("").contains("clap::"))
        {
            problems.push(format!("{}: the core uses clap", file.display()));
        }
        let mut paths = crate_paths(&text);
        if from == "lib" {
            // The root names its modules without `crate::` (`fleet::run`).
            paths.extend(root_paths(&text, &modules));
        }
        for (a, b) in paths {
            // `crate::Outcome` and the like: an item of the crate root.
            let to = if modules.contains(&a) {
                a
            } else {
                "lib".to_owned()
            };
            if CORE.contains(&from.as_str()) && ABOVE_CORE.contains(&to.as_str()) {
                problems.push(format!("{}: the core imports {to}", file.display()));
            }
            if from == "commands"
                && to == "commands"
                && b.chars().next().is_some_and(char::is_lowercase)
            {
                let own = file.file_stem().unwrap().to_string_lossy().into_owned();
                if b != own {
                    problems.push(format!(
                        "{}: a command imports commands::{b}",
                        file.display()
                    ));
                }
            }
            if to != from {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    // Nothing below the root imports it.
    for (from, tos) in &edges {
        if tos.contains("lib") {
            problems.push(format!("{from} imports an item of the crate root"));
        }
    }
    // No circle: depth-first search for a back edge.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
        problems: &mut Vec<String>,
    ) {
        state.insert(m.to_owned(), 1);
        path.push(m.to_owned());
        for to in edges.get(m).into_iter().flatten() {
            match state.get(to.as_str()).copied().unwrap_or(0) {
                0 => visit(to, edges, state, path, problems),
                1 => problems.push(format!("import circle: {} -> {to}", path.join(" -> "))),
                _ => {}
            }
        }
        path.pop();
        state.insert(m.to_owned(), 2);
    }
    let mut state = BTreeMap::new();
    for m in &modules {
        if state.get(m.as_str()).copied().unwrap_or(0) == 0 {
            visit(m, &edges, &mut state, &mut Vec::new(), &mut problems);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The check sees the graph (a parser that finds nothing would pass anything).
    assert!(edges["commands"].contains("db"), "{edges:?}");
    assert!(edges["cli"].contains("commands"), "{edges:?}");
    // The crate root is in the graph too (it imports the modules; none imports it).
    assert!(edges["lib"].contains("fleet"), "{edges:?}");
}
