//! `verify-schema`: behaviour tests written once and run on PostgreSQL and SQLite
//! (`both!`), then end-to-end drift cases on PostgreSQL with their fix SQL applied to
//! a real server, and SQLite's CHECK-based enums. Every kind of drift on every object
//! is covered by the unit tests on the schema model (`schema::diff`).

use serde_json::Value;

use crate::common::*;

both! {
    /// Clean at each version; a dropped index and an extra table are found, in check
    /// order, and the index's fix SQL makes it clean again.
    fn clean_at_each_version_and_drift_found(db) {
        db.run(&["migrate", "up", "--to", "001"]).expect_code(0);
        let r = db.run(&["verify-schema", "--strict", "--format", "json"]);
        r.expect_code(0);
        assert_eq!(r.json()["against"]["alembic_revision"], "001");
        db.run(&["migrate", "up"]).expect_code(0);
        db.run(&["verify-schema", "--strict"]).expect_code(0);

        db.query("DROP INDEX ix_audit_logs_ts; CREATE TABLE extra_stuff (x int)");
        let r = db.run(&["verify-schema", "--format", "json"]);
        r.expect_code(1);
        let f = r.json()["findings"].as_array().unwrap().clone();
        assert_eq!(f.len(), 2, "{f:#?}");
        assert_eq!(f[0]["kind"], "table_extra");
        assert_eq!(f[0]["severity"], "warning");
        assert_eq!(f[1]["kind"], "index_missing");
        assert_eq!(f[1]["object"], "ix_audit_logs_ts");
        db.query(f[1]["fix_sql"].as_str().unwrap());
        db.run(&["verify-schema"]).expect_code(0);
    }

    /// An unmanaged, empty database is compared with head (exit 1: every table is
    /// missing), and verify-schema writes nothing.
    fn verify_writes_nothing(db) {
        let before = db.dump_all();
        let r = db.run(&["verify-schema", "--format", "json"]);
        r.expect_code(1);
        assert_eq!(r.json()["against"]["source"], "unmanaged");
        assert!(db.tables().is_empty(), "{:?}", db.tables());
        assert_eq!(db.dump_all(), before);
    }
}

// PostgreSQL: each drift end to end, and its fix applied.

fn migrated() -> PgDb {
    let db = PgDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    db
}

fn verify(db: &PgDb, extra: &[&str]) -> Run {
    let mut args = vec!["verify-schema", "--format", "json"];
    args.extend_from_slice(extra);
    db.run(&args)
}

fn findings(r: &Run) -> Vec<Value> {
    r.json()["findings"].as_array().unwrap().clone()
}

/// Exactly one finding, of this kind on this object, with this severity.
#[track_caller]
fn only_finding(r: &Run, kind: &str, object: &str, severity: &str) -> Value {
    let f = findings(r);
    assert_eq!(f.len(), 1, "expected exactly one finding, got {f:#?}");
    assert_eq!(f[0]["kind"], kind, "{f:#?}");
    assert_eq!(f[0]["object"], object, "{f:#?}");
    assert_eq!(f[0]["severity"], severity, "{f:#?}");
    f[0].clone()
}

/// Apply every finding's fix_sql; verify-schema is then clean.
#[track_caller]
fn apply_fixes_then_clean(db: &PgDb, r: &Run) {
    for f in findings(r) {
        let sql = f["fix_sql"]
            .as_str()
            .unwrap_or_else(|| panic!("no fix for {f}"));
        db.psql(sql);
    }
    let again = verify(db, &["--strict"]);
    again.expect_code(0);
    assert!(findings(&again).is_empty(), "{:#?}", findings(&again));
}

#[test]
fn clean_after_migrate_up() {
    let db = migrated();
    let r = verify(&db, &[]);
    r.expect_code(0);
    let j = r.json();
    assert!(findings(&r).is_empty(), "{:#?}", findings(&r));
    assert_eq!(j["summary"]["status"], "PASSED");
    assert_eq!(j["against"]["alembic_revision"], head_revision());
    assert_eq!(j["against"]["source"], "seaql_migrations");
    let human = db.run(&["verify-schema"]);
    human.expect_code(0);
    assert!(
        human.stdout.trim_end().ends_with("PASSED"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("✓"), "{}", human.stdout);
}

#[test]
fn every_version_agrees_with_what_the_migrations_make() {
    let db = PgDb::new();
    db.run(&["migrate", "up", "--to", "001"]).expect_code(0);
    let r = verify(&db, &["--strict"]);
    r.expect_code(0);
    assert_eq!(r.json()["against"]["alembic_revision"], "001");
    db.run(&["migrate", "up"]).expect_code(0);
    verify(&db, &["--strict"]).expect_code(0);
}

#[test]
fn alembic_002_fixture_is_clean_and_named() {
    let db = PgDb::new();
    db.load(&reference("ecomind-api-alembic-002.sql"));
    let r = verify(&db, &[]);
    r.expect_code(0);
    assert_eq!(r.json()["against"]["source"], "alembic_version");
    assert_eq!(r.json()["against"]["alembic_revision"], "002");
    let human = db.run(&["verify-schema"]);
    human.expect_code(0);
    assert!(human.stdout.contains("revision 002"), "{}", human.stdout);
    assert!(human.stdout.contains("alembic_version"), "{}", human.stdout);
}

#[test]
fn alembic_001_fixture_is_clean_against_001() {
    let db = PgDb::new();
    db.load(&reference("ecomind-api-alembic-001.sql"));
    let r = verify(&db, &["--strict"]);
    r.expect_code(0);
    assert_eq!(r.json()["against"]["alembic_revision"], "001");
    // Against 002 the missing password_hash is an error.
    let r = verify(&db, &["--against", "002"]);
    r.expect_code(1);
    only_finding(&r, "column_missing", "users.password_hash", "error");
}

#[test]
fn unmanaged_database_is_compared_with_head_and_says_so() {
    let db = PgDb::new();
    db.load(&reference("ecomind-api-schema.sql"));
    let r = verify(&db, &[]);
    r.expect_code(0);
    assert_eq!(r.json()["against"]["source"], "unmanaged");
    assert!(r.stderr.contains("compared with head"), "{}", r.stderr);
    assert!(db.tables().iter().all(|t| t != "seaql_migrations"));
}

#[test]
fn dropped_table() {
    let db = migrated();
    db.psql("DROP TABLE daily_model_agg");
    let r = verify(&db, &[]);
    r.expect_code(1);
    let f = only_finding(&r, "table_missing", "daily_model_agg", "error");
    assert!(
        f["fix_sql"]
            .as_str()
            .unwrap()
            .starts_with("CREATE TABLE daily_model_agg")
    );
    assert_eq!(r.json()["summary"]["status"], "FAILED");
    apply_fixes_then_clean(&db, &r);
}

#[test]
fn dropped_column() {
    let db = migrated();
    db.psql("ALTER TABLE events_enriched DROP COLUMN region");
    let r = verify(&db, &[]);
    r.expect_code(1);
    let f = only_finding(&r, "column_missing", "events_enriched.region", "error");
    assert_eq!(
        f["fix_sql"],
        "ALTER TABLE events_enriched ADD COLUMN region character varying"
    );
    apply_fixes_then_clean(&db, &r);
}

#[test]
fn extra_column_is_a_warning_unless_strict() {
    let db = migrated();
    db.psql("ALTER TABLE users ADD COLUMN nickname character varying");
    let r = verify(&db, &[]);
    r.expect_code(0);
    only_finding(&r, "column_extra", "users.nickname", "warning");
    assert_eq!(r.json()["summary"]["status"], "PASSED WITH WARNINGS");
    let human = db.run(&["verify-schema"]);
    assert!(
        human.stdout.contains("PASSED WITH WARNINGS: 1"),
        "{}",
        human.stdout
    );
    let r = verify(&db, &["--strict"]);
    r.expect_code(1);
    assert_eq!(r.json()["summary"]["status"], "FAILED");
}

#[test]
fn column_type_changed() {
    let db = migrated();
    db.psql("ALTER TABLE orgs ALTER COLUMN name TYPE text");
    let r = verify(&db, &[]);
    r.expect_code(1);
    let f = only_finding(&r, "column_type", "orgs.name", "error");
    assert_eq!(f["expected"], "character varying");
    assert_eq!(f["actual"], "text");
    apply_fixes_then_clean(&db, &r);
}

#[test]
fn nullability_changed() {
    let db = migrated();
    db.psql("ALTER TABLE users ALTER COLUMN name SET NOT NULL");
    let r = verify(&db, &[]);
    r.expect_code(1);
    let f = only_finding(&r, "column_nullability", "users.name", "error");
    assert_eq!(f["expected"], "NULL");
    assert_eq!(f["actual"], "NOT NULL");
    apply_fixes_then_clean(&db, &r);
}

#[test]
fn dropped_index() {
    let db = migrated();
    db.psql("DROP INDEX ix_events_org_ts");
    let r = verify(&db, &[]);
    r.expect_code(1);
    let f = only_finding(&r, "index_missing", "ix_events_org_ts", "error");
    assert_eq!(
        f["fix_sql"],
        "CREATE INDEX ix_events_org_ts ON events_enriched (org_id, ts)"
    );
    apply_fixes_then_clean(&db, &r);
}

#[test]
fn index_on_other_columns() {
    let db = migrated();
    db.psql("DROP INDEX ix_events_user_ts; CREATE INDEX ix_events_user_ts ON events_enriched (ts, user_id)");
    let r = verify(&db, &[]);
    r.expect_code(1);
    let f = only_finding(&r, "index_columns", "ix_events_user_ts", "error");
    assert_eq!(f["expected"], "user_id, ts");
    assert_eq!(f["actual"], "ts, user_id");
    apply_fixes_then_clean(&db, &r);
}

#[test]
fn unique_constraint_dropped() {
    let db = migrated();
    db.psql("ALTER TABLE users DROP CONSTRAINT users_email_key");
    let r = verify(&db, &[]);
    r.expect_code(1);
    let f = only_finding(&r, "unique_missing", "users_email_key", "error");
    assert_eq!(
        f["fix_sql"],
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)"
    );
    apply_fixes_then_clean(&db, &r);
}

#[test]
fn foreign_key_dropped() {
    let db = migrated();
    db.psql("ALTER TABLE users DROP CONSTRAINT users_org_id_fkey");
    let r = verify(&db, &[]);
    r.expect_code(1);
    let f = only_finding(&r, "foreign_key_missing", "users_org_id_fkey", "error");
    assert_eq!(
        f["fix_sql"],
        "ALTER TABLE users ADD CONSTRAINT users_org_id_fkey FOREIGN KEY (org_id) REFERENCES orgs(id)"
    );
    apply_fixes_then_clean(&db, &r);
}

#[test]
fn primary_key_on_the_wrong_columns() {
    let db = migrated();
    db.psql("ALTER TABLE daily_org_agg DROP CONSTRAINT daily_org_agg_pkey; ALTER TABLE daily_org_agg ADD PRIMARY KEY (org_id, date)");
    let r = verify(&db, &[]);
    r.expect_code(1);
    let f = only_finding(&r, "primary_key_columns", "daily_org_agg_pkey", "error");
    assert_eq!(f["expected"], "date, org_id");
    assert_eq!(f["actual"], "org_id, date");
    apply_fixes_then_clean(&db, &r);
}

#[test]
fn uppercase_enum_labels_and_their_fix() {
    let db = migrated();
    for l in ["owner", "admin", "analyst", "viewer", "billing"] {
        db.psql(&format!(
            "ALTER TYPE role RENAME VALUE '{l}' TO '{}'",
            l.to_uppercase()
        ));
    }
    let r = verify(&db, &[]);
    r.expect_code(1);
    let f = only_finding(&r, "enum_labels", "role", "error");
    assert_eq!(f["expected"], "owner, admin, analyst, viewer, billing");
    assert_eq!(f["actual"], "OWNER, ADMIN, ANALYST, VIEWER, BILLING");
    assert!(f["table"].is_null());
    assert!(
        f["fix_sql"]
            .as_str()
            .unwrap()
            .contains("ALTER TYPE role RENAME VALUE 'OWNER' TO 'owner'"),
        "{f}"
    );
    let human = db.run(&["verify-schema", "--show-fix"]);
    human.expect_code(1);
    assert!(
        human
            .stdout
            .contains("fix: ALTER TYPE role RENAME VALUE 'OWNER' TO 'owner'"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("FAILED: 1 error\n"),
        "{}",
        human.stdout
    );
    // The finding's fix, applied with psql, makes the next run clean.
    apply_fixes_then_clean(&db, &r);
}

#[test]
fn extra_table_is_a_warning() {
    let db = migrated();
    db.psql("CREATE TABLE notes (id int)");
    let r = verify(&db, &[]);
    r.expect_code(0);
    only_finding(&r, "table_extra", "notes", "warning");
    verify(&db, &["--strict"]).expect_code(1);
}

#[test]
fn read_only_role_verifies_and_changes_nothing() {
    let db = PgDb::new();
    db.load(&reference("ecomind-api-alembic-002.sql"));
    let role = format!("ro_{}", db.name);
    db.psql(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'ro-pass-456'; \
         ALTER ROLE {role} SET default_transaction_read_only = on; \
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"
    ));
    let before = db.dump_all();
    let url = db.url_as(&role, "ro-pass-456");
    let r = Run::from(
        db.cmd()
            .env("DATABASE_URL", &url)
            .args(["verify-schema", "--format", "json"])
            .output()
            .unwrap(),
    );
    r.expect_code(0);
    assert!(findings(&r).is_empty());
    assert!(!r.all().contains("ro-pass-456"));
    assert_eq!(db.dump_all(), before);
    db.psql(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

#[test]
fn connection_errors_are_exit_3_and_redacted() {
    let db = PgDb::new();
    let url = db.url_as("postgres", "wrong-pw-789");
    let r = Run::from(
        db.cmd()
            .env("DATABASE_URL", &url)
            .arg("verify-schema")
            .output()
            .unwrap(),
    );
    r.expect_clean_error(3);
    assert!(r.stderr.contains("postgres:***@"), "{}", r.stderr);
    assert!(!r.all().contains("wrong-pw-789"));
}

// SQLite: enum labels live in CHECK constraints.

#[test]
fn enum_check_labels_are_verified() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    // Rebuild orgs with an UPPERCASE CHECK, as an old development database would have.
    db.query(
        "PRAGMA foreign_keys = OFF; \
         CREATE TABLE orgs_new (\"id\" varchar NOT NULL PRIMARY KEY, \"name\" varchar NOT NULL, \
           \"plan\" varchar CHECK (\"plan\" IN ('FREE', 'PRO', 'ENTERPRISE')), \"created_at\" datetime_text); \
         DROP TABLE orgs; ALTER TABLE orgs_new RENAME TO orgs;",
    );
    let r = db.run(&["verify-schema", "--format", "json"]);
    r.expect_code(1);
    let f = r.json()["findings"].as_array().unwrap().clone();
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["kind"], "enum_labels");
    assert_eq!(f[0]["object"], "orgs.plan");
    assert_eq!(f[0]["actual"], "FREE, PRO, ENTERPRISE");
}
