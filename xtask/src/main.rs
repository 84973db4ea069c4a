//! `cargo xtask <task>`: the maintenance tasks of this repository.
//!
//! - `snapshots`: regenerate the expected schema of every migration version
//!   (`src/schema/snapshots/`) and add a new migration's checksums
//!   (`migration/checksums.txt`); see ARCHITECTURE.md, "How to add the API's next
//!   revision". Runs `scripts/snapshots.sh`.
//! - `completions`: regenerate `completions/` and the man page (`scripts/gen-completions.sh`).

// A developer tool, not the product: its two messages need no escaping.
#![allow(clippy::disallowed_macros)]

use std::path::PathBuf;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let script = match task.as_str() {
        "snapshots" => "scripts/snapshots.sh",
        "completions" => "scripts/gen-completions.sh",
        _ => {
            eprintln!("usage: cargo xtask <snapshots|completions>");
            return ExitCode::from(2);
        }
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    match Command::new(root.join(script)).current_dir(&root).status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => ExitCode::from(status.code().unwrap_or(1).clamp(1, 255) as u8),
        Err(e) => {
            eprintln!("cannot run {script}: {e}");
            ExitCode::from(1)
        }
    }
}
