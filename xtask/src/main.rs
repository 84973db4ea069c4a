//! `cargo xtask <task>`: the maintenance tasks of this repository.
//!
//! - `snapshots`: regenerate the expected schema of every migration version
//!   (`src/schema/snapshots/`) and add a new migration's checksums
//!   (`migration/checksums.txt`); see ARCHITECTURE.md, "How to add the API's next
//!   revision". Runs `scripts/snapshots.sh`.
//! - `completions`: regenerate `completions/` and the man page (`scripts/gen-completions.sh`).
//! - `schemas`: regenerate `schemas/`, the JSON Schema of each command's output, from
//!   the output types (a test fails when a committed schema is stale).

// A developer tool, not the product: its two messages need no escaping.
#![allow(clippy::disallowed_macros)]

use std::path::PathBuf;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = match task.as_str() {
        "snapshots" => "scripts/snapshots.sh",
        "completions" => "scripts/gen-completions.sh",
        "schemas" => return schemas(&root),
        _ => {
            eprintln!("usage: cargo xtask <snapshots|completions|schemas>");
            return ExitCode::from(2);
        }
    };
    match Command::new(root.join(script)).current_dir(&root).status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => ExitCode::from(status.code().unwrap_or(1).clamp(1, 255) as u8),
        Err(e) => {
            eprintln!("cannot run {script}: {e}");
            ExitCode::from(1)
        }
    }
}

/// Write `schemas/` from the output types; remove the files no command has any more.
fn schemas(root: &std::path::Path) -> ExitCode {
    use ecomind_admin::contracts;
    let dir = root.join(contracts::DIR);
    let write = || -> std::io::Result<usize> {
        std::fs::create_dir_all(&dir)?;
        let files = ecomind_admin::cli::schema_files();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if !files.iter().any(|(f, _)| *f == name) {
                std::fs::remove_file(&path)?;
            }
        }
        for (name, text) in &files {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(files.len())
    };
    match write() {
        Ok(n) => {
            eprintln!("schemas/: {n} schemas written");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write schemas/: {e}");
            ExitCode::from(1)
        }
    }
}
