//! `migrate` on SQLite files, and the README quick start on the embedded default.

use crate::common::*;

#[test]
fn quick_start_embedded_default_creates_ecomind_db() {
    let dir = tempfile::tempdir().unwrap();
    let r = Run::from(bin(dir.path()).args(["migrate", "up"]).output().unwrap());
    r.expect_code(0);
    assert!(r.stderr.contains("embedded default"), "{}", r.stderr);
    let file = dir.path().join("ecomind.db");
    assert!(file.exists());
    let db = SqliteDb {
        dir,
        file: "ecomind.db",
    };
    let mut tables = db.tables();
    tables.retain(|t| t != "seaql_migrations");
    assert_eq!(tables, API_TABLES);
    let r = Run::from(
        bin(db.dir.path())
            .args(["migrate", "status", "--format", "json"])
            .output()
            .unwrap(),
    );
    r.expect_code(0);
    let j = r.json();
    let statuses: Vec<&str> = j["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["applied", "applied"]);
}

#[test]
fn up_down_and_up_again() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    assert_eq!(db.versions(), all_versions());
    assert!(db.columns("users").contains(&"password_hash".to_owned()));

    db.run(&["migrate", "down", "--yes"]).expect_code(0);
    assert_eq!(db.versions(), vec![V1]);
    assert_eq!(
        db.columns("users"),
        vec!["id", "org_id", "email", "name", "role", "created_at"]
    );

    db.run(&["migrate", "down", "--all", "--yes"])
        .expect_code(0);
    assert_eq!(db.tables(), vec!["seaql_migrations"]);

    db.run(&["migrate", "up", "--to", "001"]).expect_code(0);
    assert_eq!(db.versions(), vec![V1]);
    db.run(&["migrate", "up"]).expect_code(0);
    assert_eq!(db.versions(), all_versions());
}

#[test]
fn enums_are_checked_and_foreign_keys_enforced() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let ok = db.sql("INSERT INTO orgs (id, name, plan) VALUES ('org_000000000001', 'a', 'free')");
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let bad_plan =
        db.sql("INSERT INTO orgs (id, name, plan) VALUES ('org_000000000002', 'b', 'FREE')");
    assert_ne!(bad_plan.code, 0, "uppercase label accepted");
    assert!(bad_plan.stderr.contains("CHECK"), "{}", bad_plan.stderr);
    let bad_role = db.sql(
        "INSERT INTO users (id, org_id, email, role) VALUES ('user_000000000001', 'org_000000000001', 'a@x', 'root')",
    );
    assert_ne!(bad_role.code, 0);
    // Foreign keys: sqlite3 needs the pragma; the CLI's connections have it on by default.
    let orphan = db.sql(
        "PRAGMA foreign_keys = ON; INSERT INTO users (id, org_id, email, role) \
         VALUES ('user_000000000002', 'org_missing', 'b@x', 'viewer')",
    );
    assert_ne!(orphan.code, 0, "FK not declared");
    assert!(orphan.stderr.contains("FOREIGN KEY"), "{}", orphan.stderr);
}

#[test]
fn dry_run_writes_nothing_not_even_the_tracking_table() {
    let db = SqliteDb::new();
    // An existing, empty database file.
    db.query("CREATE TABLE keep (x int); DROP TABLE keep;");
    let r = db.run(&["migrate", "up", "--dry-run"]);
    r.expect_code(0);
    assert!(r.stdout.contains("CREATE TABLE \"orgs\""), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("CHECK (\"role\" IN ('owner', 'admin', 'analyst', 'viewer', 'billing'))"),
        "{}",
        r.stdout
    );
    assert!(db.tables().is_empty(), "{:?}", db.tables());
}

#[test]
fn down_without_yes_and_no_tty_is_refused_and_changes_nothing() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let r = db.run(&["migrate", "down"]);
    r.expect_clean_error(4);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert_eq!(db.versions(), all_versions());
}

#[test]
fn json_output_is_one_document() {
    let db = SqliteDb::new();
    let r = db.run(&["migrate", "up", "--format", "json"]);
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["direction"], "up");
    assert_eq!(j["steps"].as_array().unwrap().len(), 2);
    assert_eq!(j["to"]["alembic_revision"], "002");
    let j = db.run(&["migrate", "up", "--format", "json"]).json();
    assert!(j["steps"].as_array().unwrap().is_empty());
}

/// Run the binary on a pseudo-terminal (util-linux `script`), answering `answer`.
#[test]
fn down_on_a_tty_asks_and_defaults_to_no() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    db.query("INSERT INTO orgs (id, name) VALUES ('org_000000000001', 'a')");

    let r = on_tty(&db, "migrate down --all", "\n");
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(r.stdout.contains("table orgs (~1 row)"), "{}", r.stdout);
    assert!(r.stdout.contains("[y/N]"), "{}", r.stdout);
    assert!(r.stdout.contains("not confirmed"), "{}", r.stdout);
    assert_eq!(db.versions(), all_versions());

    let r = on_tty(&db, "migrate down", "y\n");
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("column users.password_hash"),
        "{}",
        r.stdout
    );
    assert_eq!(db.versions(), vec![V1]);
}

#[test]
fn concurrent_ups_on_one_sqlite_file() {
    let db = SqliteDb::new();
    let children: Vec<_> = (0..8)
        .map(|_| {
            let mut c = std_bin(db.dir.path());
            c.env("DATABASE_URL", db.url())
                .args(["migrate", "up", "--format", "json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut steps = 0;
    for c in children {
        let r = Run::from(c.wait_with_output().unwrap());
        r.expect_code(0);
        steps += r.json()["steps"].as_array().unwrap().len();
    }
    assert_eq!(steps, 2);
    assert_eq!(db.versions(), all_versions());
}

#[test]
fn verbose_logs_sql_on_stderr_and_keeps_stdout_clean() {
    let db = SqliteDb::new();
    let r = db.run(&["-v", "migrate", "up", "--format", "json"]);
    r.expect_code(0);
    assert!(r.stderr.contains("CREATE TABLE"), "{}", r.stderr);
    assert!(!r.stderr.contains('\u{1b}'), "colors on a pipe");
    r.json();
}
