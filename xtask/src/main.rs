//! `cargo xtask <task>`: the maintenance tasks of this repository.
//!
//! - `snapshots`: regenerate the expected schema of every migration version
//!   (`src/schema/snapshots/`) and add a new migration's checksums
//!   (`migration/checksums.txt`); see ARCHITECTURE.md, "How to add the API's next
//!   revision". Runs `scripts/snapshots.sh`.
//! - `completions`: regenerate `completions/` and the man page (`scripts/gen-completions.sh`).
//! - `schemas`: regenerate `schemas/`, the JSON Schema of each command's output, from
//!   the output types (a test fails when a committed schema is stale).
//! - `sqlite-query FILE DB`: run the one SQL statement in FILE on the SQLite file DB,
//!   with the SQLite the binary embeds, and print its rows tab-separated (every column
//!   text): the `sqlite3` shell of the benchmarks' floors, on the same engine as the
//!   CLI (Debian's `sqlite3` is an older SQLite). No audit logic: the SQL is the floor.

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
        "sqlite-query" => return sqlite_query(),
        _ => {
            eprintln!("usage: cargo xtask <snapshots|completions|schemas|sqlite-query FILE DB>");
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

/// `sqlite-query FILE DB` (see the module's doc).
fn sqlite_query() -> ExitCode {
    use sea_orm::{ConnectionTrait as _, Database, DbBackend, Statement, StreamTrait as _};
    let args: Vec<String> = std::env::args().skip(2).collect();
    let [file, db] = args.as_slice() else {
        eprintln!("usage: cargo xtask sqlite-query FILE DB");
        return ExitCode::from(2);
    };
    let run = async {
        let sql = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
        let conn = Database::connect(format!("sqlite://{db}?mode=ro"))
            .await
            .map_err(|e| e.to_string())?;
        conn.execute_unprepared("BEGIN")
            .await
            .map_err(|e| e.to_string())?;
        let mut out = String::new();
        {
            use futures_util::StreamExt as _;
            let mut rows = conn
                .stream_raw(Statement::from_string(DbBackend::Sqlite, sql))
                .await
                .map_err(|e| e.to_string())?;
            while let Some(row) = rows.next().await {
                let row = row.map_err(|e| e.to_string())?;
                let cols: Vec<String> = (0..5)
                    .map(|i| {
                        row.try_get_by_index::<Option<String>>(i)
                            .map(Option::unwrap_or_default)
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|e| e.to_string())?;
                out.push_str(&cols.join("\t"));
                out.push('\n');
            }
        }
        conn.execute_unprepared("ROLLBACK")
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(out)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(run) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sqlite-query: {e}");
            ExitCode::from(1)
        }
    }
}
