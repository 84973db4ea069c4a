//! What users see, reviewed as diffs: the human and the JSON output of every command
//! (stdout, stderr and the exit code), on SQLite files and one PostgreSQL database,
//! pinned with `insta`. A change in any of them fails here until its snapshot in
//! `tests/cli/snapshots/` is updated (`INSTA_UPDATE=always`, then review the diff).
//!
//! What differs from run to run is replaced before comparing: temporary paths and
//! database names, timestamps, generated ids, durations, and the padding of table
//! columns (whose width follows those values).

use crate::audit::{WINDOW, sqlite_fixture};
use crate::common::*;

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    for (re, by) in [
        (r"sqlite://[^\s,\x22]+", "[SQLITE_URL]"),
        (r"postgres://[^\s,\x22]+", "[PG_URL]"),
        (r"/tmp/[^\s,\x22]+", "[PATH]"),
        (
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)?",
            "[TIME]",
        ),
        (r"user_[0-9a-z]{12}", "[USER_ID]"),
        (r"\x22duration_ms\x22: \d+", "\x22duration_ms\x22: [MS]"),
        (r"\b\d+(\.\d+)? ?(ms|s)\b", "[DURATION]"),
        (r"\b1[78]\d{8}\b", "[UNIX_TIME]"),
        (r"SQLite \d+\.\d+\.\d+", "SQLite [VERSION]"),
        (r"PostgreSQL \d[^,\x22]*", "PostgreSQL [VERSION]"),
        (
            r"\x22server_version\x22: \x22[^\x22]+\x22",
            "\x22server_version\x22: [VERSION]",
        ),
        // Table padding: runs of spaces and of border lines.
        (r" {2,}", " "),
        (r"─+", "─"),
        (r"═+", "═"),
    ] {
        s.add_filter(re, by);
    }
    s
}

/// Snapshot what one run showed the user.
#[track_caller]
fn snap(name: &str, r: &Run) {
    let shown = format!(
        "exit: {}\n--- stdout\n{}\n--- stderr\n{}",
        r.code, r.stdout, r.stderr
    );
    settings().bind(|| insta::assert_snapshot!(name.to_owned(), shown));
}

/// Both formats of one command.
#[track_caller]
fn snap_both(name: &str, run: impl Fn(&[&str]) -> Run, args: &[&str]) {
    snap(name, &run(args));
    let mut json = args.to_vec();
    json.extend(["--format", "json"]);
    snap(&format!("{name}.json"), &run(&json));
}

#[test]
fn migrate_commands() {
    let db = SqliteDb::new();
    let run = |a: &[&str]| db.run(a);
    snap_both("migrate_up_dry_run", run, &["migrate", "up", "--dry-run"]);
    snap_both("migrate_current_empty", run, &["migrate", "current"]);
    snap("migrate_up", &run(&["migrate", "up", "--to", "001"]));
    snap(
        "migrate_up.json",
        &run(&["migrate", "up", "--format", "json"]),
    );
    snap_both("migrate_status", run, &["migrate", "status"]);
    snap_both("migrate_current", run, &["migrate", "current"]);
    snap_both(
        "migrate_down_dry_run",
        run,
        &["migrate", "down", "--all", "--dry-run"],
    );
    snap_both("migrate_down_refused", run, &["migrate", "down"]);
    snap_both("migrate_down", run, &["migrate", "down", "--yes"]);
}

#[test]
fn verify_and_baseline() {
    let db = SqliteDb::new();
    let run = |a: &[&str]| db.run(a);
    db.run(&["migrate", "up"]).expect_code(0);
    snap_both("verify_clean", run, &["verify-schema"]);
    db.query("DROP INDEX ix_audit_logs_ts; CREATE TABLE extra_stuff (x int); DROP TABLE seaql_migrations");
    snap_both("verify_drift", run, &["verify-schema", "--show-fix"]);
    snap_both("baseline_refused", run, &["baseline", "--dry-run"]);
    db.query("CREATE INDEX ix_audit_logs_ts ON audit_logs (ts); DROP TABLE extra_stuff");
    snap_both("baseline_dry_run", run, &["baseline", "--dry-run"]);
    snap("baseline", &db.run(&["baseline", "--yes"]));
    snap_both(
        "baseline_undo_dry_run",
        run,
        &["baseline", "--undo", "--dry-run"],
    );
}

#[test]
fn bootstrap_commands() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let run = |a: &[&str]| db.run(a);
    let org = [
        "create-org",
        "--id",
        "org_0123456789ab",
        "--name",
        "Acme",
        "--plan",
        "pro",
    ];
    snap("create_org", &db.run(&org));
    snap_both("create_org_exists", run, &org);
    let admin = |extra: &[&str], format: &[&str]| {
        let mut args = vec![
            "create-admin",
            "--org",
            "org_0123456789ab",
            "--email",
            "ops@acme.example",
            "--password-stdin",
            "--bcrypt-cost",
            "4",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(format);
        Run::from(
            db.cmd()
                .args(&args)
                .write_stdin("a strong password 1\n")
                .output()
                .unwrap(),
        )
    };
    snap("create_admin", &admin(&[], &[]));
    snap("create_admin_taken", &admin(&[], &[]));
    snap(
        "create_admin_if_not_exists.json",
        &admin(&["--if-not-exists"], &["--format", "json"]),
    );
    snap_both("doctor_sqlite", run, &["doctor"]);
}

#[test]
fn audit_formats() {
    let db = sqlite_fixture();
    let run = |extra: &[&str]| {
        let mut args = vec!["audit", "suspicious-accounts"];
        args.extend_from_slice(&WINDOW);
        args.extend_from_slice(extra);
        db.run(&args)
    };
    snap("audit", &run(&[]));
    snap("audit.json", &run(&["--format", "json"]));
    snap("audit.csv", &run(&["--format", "csv"]));
}

#[test]
fn errors_human_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let run = |a: &[&str]| Run::from(bin(dir.path()).args(a).output().unwrap());
    snap_both(
        "error_no_database",
        run,
        &[
            "--database-url",
            "sqlite:///nonexistent/dir/x.db",
            "migrate",
            "status",
        ],
    );
    snap("error_usage", &run(&["migrate", "up", "--to", "999"]));
}

#[test]
fn doctor_on_postgres() {
    let db = PgDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let run = |a: &[&str]| db.run(a);
    snap_both("doctor_postgres", run, &["doctor"]);
}
