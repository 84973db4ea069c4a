//! `baseline`: behaviour tests written once and run on PostgreSQL and SQLite (`both!`),
//! then the PostgreSQL ones that start from the API's reference dumps and Alembic
//! fixtures, and the SQLite prompt.

use crate::common::*;

/// A database made by hand (here: by the migrations, then its bookkeeping dropped).
fn hand_made(db: &AnyDb, to: &str) {
    db.run(&["migrate", "up", "--to", to]).expect_code(0);
    db.query("DROP TABLE seaql_migrations");
}

both! {
    /// A hand-made schema at 001 is detected as 001 and adopted; migrate up then works
    /// from there; a second baseline is refused; --undo removes only the bookkeeping.
    fn adopts_a_hand_made_database(db) {
        hand_made(&db, "001");
        let r = db.run(&["baseline", "--yes", "--format", "json"]);
        r.expect_code(0);
        assert_eq!(r.json()["detected"]["alembic_revision"], "001");
        assert_eq!(db.versions(), vec![V1]);
        db.run(&["migrate", "up"]).expect_code(0);
        db.run(&["verify-schema", "--strict"]).expect_code(0);
        db.run(&["baseline", "--yes"]).expect_clean_error(4);
        db.run(&["baseline", "--undo", "--yes"]).expect_code(0);
        assert!(!db.tables().contains(&"seaql_migrations".to_owned()));
        assert_eq!(db.columns("users"), snapshot_columns(&db, all_versions().len() - 1, "users"));
    }

    /// An empty database matches no version: refused (exit 1), nothing written.
    fn empty_database_is_refused(db) {
        let r = db.run(&["baseline", "--yes", "--format", "json"]);
        r.expect_code(1);
        assert!(r.json()["refused"].is_string(), "{}", r.stdout);
        assert!(db.tables().is_empty(), "{:?}", db.tables());
    }

    /// --dry-run, and a run with neither --yes nor a terminal, leave schema and rows as
    /// they were.
    fn dry_run_and_refusals_leave_everything_identical(db) {
        hand_made(&db, "002");
        db.query("INSERT INTO orgs (id, name) VALUES ('org_0123456789ab', 'Acme')");
        let before = db.dump_all();
        let r = db.run(&["baseline", "--dry-run", "--format", "json"]);
        r.expect_code(0);
        assert_eq!(r.json()["detected"]["alembic_revision"], "002");
        assert_eq!(db.dump_all(), before);
        db.run(&["baseline"]).expect_clean_error(4); // no TTY, no --yes
        assert_eq!(db.dump_all(), before);
    }
}

// PostgreSQL: the API's reference dumps and Alembic fixtures.

fn reference_made() -> PgDb {
    let db = PgDb::new();
    db.load(&reference("ecomind-api-schema.sql"));
    db
}

fn baseline(db: &PgDb, extra: &[&str]) -> Run {
    let mut args = vec!["baseline", "--format", "json"];
    args.extend_from_slice(extra);
    db.run(&args)
}

#[test]
fn hand_made_head_schema_is_detected_as_002_and_adopted() {
    let db = reference_made();
    db.psql("INSERT INTO orgs (id, name, plan) VALUES ('org_0123456789ab', 'Acme', 'pro')");
    let r = baseline(&db, &["--dry-run"]);
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["detected"]["alembic_revision"], "002");
    assert!(
        j["detected"]["reason"]
            .as_str()
            .unwrap()
            .contains("matches")
    );
    assert_eq!(j["tables"].as_array().unwrap().len(), 8);
    let stmts = j["statements"].as_array().unwrap();
    assert!(stmts.iter().any(|s| {
        s.as_str()
            .unwrap()
            .starts_with("INSERT INTO \"seaql_migrations\"")
    }));

    let r = baseline(&db, &["--yes"]);
    r.expect_code(0);
    assert_eq!(r.json()["recorded"].as_array().unwrap().len(), 2);
    assert_eq!(db.versions(), all_versions());

    let up = db.run(&["migrate", "up", "--format", "json"]);
    up.expect_code(0);
    assert!(
        up.json()["steps"].as_array().unwrap().is_empty(),
        "migrate up must do nothing"
    );
    db.run(&["verify-schema"]).expect_code(0);
    assert_eq!(db.psql("SELECT name FROM orgs"), "Acme");
}

#[test]
fn without_password_hash_is_detected_as_001_and_up_adds_it() {
    let db = reference_made();
    db.psql("ALTER TABLE users DROP COLUMN password_hash");
    let r = baseline(&db, &["--yes"]);
    r.expect_code(0);
    assert_eq!(r.json()["detected"]["alembic_revision"], "001");
    assert_eq!(db.versions(), vec![V1]);
    let up = db.run(&["migrate", "up", "--format", "json"]);
    up.expect_code(0);
    assert_eq!(up.json()["steps"][0]["version"], V2);
    db.run(&["verify-schema", "--strict"]).expect_code(0);
}

#[test]
fn alembic_fixtures_are_detected_from_alembic_version_and_kept_in_step() {
    for (fixture, rev) in [
        ("ecomind-api-alembic-001.sql", "001"),
        ("ecomind-api-alembic-002.sql", "002"),
    ] {
        let db = PgDb::new();
        db.load(&reference(fixture));
        let r = baseline(&db, &["--yes"]);
        r.expect_code(0);
        let j = r.json();
        assert_eq!(j["detected"]["alembic_revision"], rev, "{fixture}");
        assert!(
            j["detected"]["reason"]
                .as_str()
                .unwrap()
                .contains("alembic_version"),
            "{j}"
        );
        assert_eq!(
            db.psql("SELECT version_num FROM alembic_version"),
            rev,
            "baseline leaves alembic_version alone"
        );
        db.run(&["migrate", "up"]).expect_code(0);
        assert_eq!(
            db.psql("SELECT version_num FROM alembic_version"),
            head_revision(),
            "{fixture}"
        );
        db.run(&["verify-schema", "--strict"]).expect_code(0);
    }
}

#[test]
fn uppercase_enums_and_extra_tables_are_refused_until_fixed() {
    let db = reference_made();
    for l in ["owner", "admin", "analyst", "viewer", "billing"] {
        db.psql(&format!(
            "ALTER TYPE role RENAME VALUE '{l}' TO '{}'",
            l.to_uppercase()
        ));
    }
    for l in ["free", "pro", "enterprise"] {
        db.psql(&format!(
            "ALTER TYPE plantype RENAME VALUE '{l}' TO '{}'",
            l.to_uppercase()
        ));
    }
    db.psql("CREATE TABLE legacy_a (id int); CREATE TABLE legacy_b (id int); CREATE TABLE legacy_c (id int)");
    let before = db.dump_all();
    let r = baseline(&db, &["--yes"]);
    r.expect_code(1);
    assert!(
        r.stderr.starts_with("error: baseline refused"),
        "{}",
        r.stderr
    );
    let j = r.json();
    assert!(
        j["refused"]
            .as_str()
            .unwrap()
            .contains("matches no known version"),
        "{j}"
    );
    let errors = j["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    for e in errors {
        assert_eq!(e["kind"], "enum_labels");
        assert!(
            e["fix_sql"].as_str().unwrap().contains("RENAME VALUE"),
            "{e}"
        );
    }
    let warnings = j["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 3);
    assert!(warnings.iter().all(|w| w["kind"] == "table_extra"));
    assert_eq!(db.dump_all(), before, "a refusal writes nothing");

    for e in errors {
        db.psql(e["fix_sql"].as_str().unwrap());
    }
    let r = baseline(&db, &["--yes"]);
    r.expect_code(0);
    assert_eq!(
        r.json()["warnings"].as_array().unwrap().len(),
        3,
        "warnings are allowed and listed"
    );
    // The reference dump is the API at 002: 001 and 002 are recorded.
    assert_eq!(db.versions(), vec![V1, V2]);
}

#[test]
fn missing_table_is_refused_and_nothing_is_written() {
    let db = reference_made();
    db.psql("DROP TABLE daily_provider_agg");
    let before = db.dump_all();
    let r = baseline(&db, &["--yes"]);
    r.expect_code(1);
    let errors = r.json()["errors"].as_array().unwrap().clone();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["kind"], "table_missing");
    assert_eq!(db.dump_all(), before);
    assert!(!db.tables().contains(&"seaql_migrations".to_owned()));
}

#[test]
fn alembic_revision_that_disagrees_with_the_schema_is_refused_showing_both() {
    let db = PgDb::new();
    db.load(&reference("ecomind-api-alembic-002.sql"));
    db.psql("ALTER TABLE users DROP COLUMN password_hash");
    let before = db.dump_all();
    let r = baseline(&db, &["--yes"]);
    r.expect_code(1);
    let why = r.json()["refused"].as_str().unwrap().to_owned();
    assert!(why.contains("alembic_version says 002"), "{why}");
    assert!(why.contains("matches 001"), "{why}");
    assert_eq!(r.json()["errors"][0]["kind"], "column_missing");
    assert_eq!(db.dump_all(), before);
}

#[test]
fn to_picks_the_version_but_still_requires_the_match() {
    let db = reference_made();
    let before = db.dump_all();
    // Head schema at 001: password_hash is extra, a warning; allowed.
    let r = baseline(&db, &["--to", "001", "--dry-run"]);
    r.expect_code(0);
    assert_eq!(r.json()["detected"]["alembic_revision"], "001");
    assert_eq!(r.json()["warnings"][0]["object"], "users.password_hash");
    db.psql("ALTER TABLE users DROP COLUMN password_hash");
    let before2 = db.dump_all();
    let r = baseline(&db, &["--to", "002", "--yes"]);
    r.expect_code(1);
    assert_eq!(db.dump_all(), before2);
    assert_ne!(before, before2);
}

#[test]
fn already_baselined_is_exit_4_and_undo_removes_only_the_bookkeeping() {
    let db = reference_made();
    db.psql("INSERT INTO orgs (id, name) VALUES ('org_0123456789ab', 'Acme')");
    baseline(&db, &["--yes"]).expect_code(0);
    let r = db.run(&["baseline", "--yes"]);
    r.expect_clean_error(4);
    assert!(
        r.stderr.contains("002") && r.stderr.contains("--undo"),
        "{}",
        r.stderr
    );

    // undo without --yes and no TTY: refused, nothing changed.
    let before = db.dump_all();
    db.run(&["baseline", "--undo"]).expect_clean_error(4);
    let r = db.run(&["baseline", "--undo", "--dry-run"]);
    r.expect_code(0);
    assert!(
        r.stdout.contains("DROP TABLE \"seaql_migrations\""),
        "{}",
        r.stdout
    );
    assert_eq!(db.dump_all(), before);

    let data_before = db.dump_schema(&["seaql_migrations"]);
    db.run(&["baseline", "--undo", "--yes"]).expect_code(0);
    assert!(!db.tables().contains(&"seaql_migrations".to_owned()));
    assert_eq!(db.psql("SELECT name FROM orgs"), "Acme");
    assert_eq!(
        db.dump_schema(&[]),
        data_before,
        "the API's schema is untouched"
    );
}

#[test]
fn dry_run_and_refusals_leave_catalog_and_data_identical() {
    let db = reference_made();
    let before = db.dump_all();
    baseline(&db, &["--dry-run"]).expect_code(0);
    assert_eq!(db.dump_all(), before);
    db.run(&["baseline"]).expect_clean_error(4); // no TTY, no --yes
    assert_eq!(db.dump_all(), before);
}

#[test]
fn undo_keeps_alembic_version() {
    let db = PgDb::new();
    db.load(&reference("ecomind-api-alembic-002.sql"));
    baseline(&db, &["--yes"]).expect_code(0);
    db.run(&["baseline", "--undo", "--yes"]).expect_code(0);
    assert_eq!(db.psql("SELECT version_num FROM alembic_version"), "002");
}

// SQLite: the prompt on a terminal.

#[test]
fn baseline_on_a_tty_shows_the_plan_and_asks() {
    let made = SqliteDb::new();
    made.run(&["migrate", "up", "--to", "001"]).expect_code(0);
    made.query("DROP TABLE seaql_migrations");
    // Enter: the default is No; nothing is written.
    let r = on_tty(&made, "baseline", "");
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(r.stdout.contains("[y/N]"), "{}", r.stdout);
    assert!(
        r.stdout.contains("seaql_migrations"),
        "the plan is shown: {}",
        r.stdout
    );
    assert!(r.stdout.contains("not confirmed"), "{}", r.stdout);
    assert!(!made.tables().contains(&"seaql_migrations".to_owned()));
    // y: recorded.
    let r = on_tty(&made, "baseline", "y");
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(made.versions(), vec![V1]);
}
