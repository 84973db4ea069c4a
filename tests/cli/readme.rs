//! The README's quick starts, run as a new operator would type them.

use std::path::Path;
use std::process::Command as StdCommand;

use crate::common::*;

const PASSWORD: &str = "correct horse battery staple 42";

/// The first ```sh block after `heading` in README.md.
fn readme_block(heading: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let at = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README.md has no {heading:?}"));
    let after = &readme[at..];
    let start = after.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = after[start..].find("```").expect("the block ends");
    after[start..start + end].to_owned()
}

/// The block run by bash (-e, pipefail) in `dir`, with the built binary first on PATH.
fn run_block(block: &str, dir: &Path, env: &[(&str, String)]) -> Run {
    let path = path_with_bin();
    let mut c = StdCommand::new("bash");
    c.args(["-euo", "pipefail", "-c", block])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("DATABASE_URL")
        .env_remove("ECOMIND_ADMIN_PASSWORD");
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.output().expect("bash"))
}

/// "Quick start: SQLite, no server": every line as printed, in an empty directory;
/// afterwards ./ecomind.db holds the org and its admin, and the password is the one
/// piped in (the audit found nothing: exit 0).
#[test]
fn readme_sqlite_quick_start_runs_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let block = readme_block("## Quick start: SQLite");
    assert!(block.contains(PASSWORD), "{block}");
    run_block(&block, dir.path(), &[]).expect_code(0);
    let out = StdCommand::new("sqlite3")
        .arg(dir.path().join("ecomind.db"))
        .arg("SELECT u.email || ' ' || u.role || ' ' || o.name FROM users u JOIN orgs o ON o.id = u.org_id")
        .output()
        .expect("sqlite3");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "admin@example.com admin Acme"
    );
}

/// "Quick start: PostgreSQL": the database is the test's own (the README's `createdb`
/// and `export DATABASE_URL` lines name a host of the reader's), the rest as printed;
/// the admin's password comes from ECOMIND_ADMIN_PASSWORD, as the prompt would take it.
#[test]
fn readme_postgres_quick_start_runs_on_a_server() {
    let db = PgDb::new();
    let block = readme_block("## Quick start: PostgreSQL");
    let lines: Vec<&str> = block.lines().collect();
    assert!(
        lines[0].starts_with("createdb ") && lines[1].starts_with("export DATABASE_URL="),
        "{block}"
    );
    let rest = lines[2..].join("\n");
    run_block(
        &rest,
        db.dir.path(),
        &[
            ("DATABASE_URL", db.url()),
            ("ECOMIND_ADMIN_PASSWORD", PASSWORD.to_owned()),
        ],
    )
    .expect_code(0);
    assert_eq!(
        db.psql("SELECT u.email || ' ' || u.role || ' ' || o.name FROM users u JOIN orgs o ON o.id = u.org_id")
            .trim(),
        "admin@example.com admin Acme"
    );
    assert_eq!(db.versions(), all_versions());
}
