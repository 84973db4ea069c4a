//! `migrate` against a real PostgreSQL server: the schema contract, up/down, Alembic.

use crate::common::*;

/// The schema of the API at revision 001: the Alembic fixture without its bookkeeping.
fn reference_001_schema() -> String {
    let db = PgDb::new();
    db.load(&reference("ecomind-api-alembic-001.sql"));
    db.dump_schema(&["alembic_version"])
}

fn reference_head_schema() -> String {
    normalize_dump(&std::fs::read_to_string(reference("ecomind-api-schema.sql")).unwrap())
}

#[test]
fn up_on_empty_database_matches_the_api_schema_exactly() {
    let db = PgDb::new();
    let r = db.run(&["migrate", "up"]);
    r.expect_code(0);
    assert!(
        r.stdout.contains(V1) && r.stdout.contains(V2),
        "{}",
        r.stdout
    );
    let ours = db.dump_schema(&["seaql_migrations"]);
    let theirs = reference_head_schema();
    assert_eq!(ours, theirs, "pg_dump differs from ecomind-api-schema.sql");
    assert_eq!(db.versions(), all_versions());
}

#[test]
fn up_to_001_matches_the_alembic_001_schema() {
    let db = PgDb::new();
    db.run(&["migrate", "up", "--to", "001"]).expect_code(0);
    assert_eq!(db.versions(), vec![V1]);
    assert_eq!(
        db.dump_schema(&["seaql_migrations"]),
        reference_001_schema()
    );
    // and by name, the rest
    db.run(&["migrate", "up", "--to", V2]).expect_code(0);
    assert_eq!(
        db.dump_schema(&["seaql_migrations"]),
        reference_head_schema()
    );
}

#[test]
fn down_all_removes_every_table_and_enum_type_and_up_works_again() {
    let db = PgDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    assert_eq!(db.enum_types(), vec!["plantype", "role"]);
    let r = db.run(&["migrate", "down", "--all", "--yes"]);
    r.expect_code(0);
    assert_eq!(
        db.tables(),
        vec!["seaql_migrations"],
        "only the bookkeeping table is left"
    );
    assert!(
        db.enum_types().is_empty(),
        "enum types left: {:?}",
        db.enum_types()
    );
    assert!(db.versions().is_empty());
    db.run(&["migrate", "up"]).expect_code(0);
    assert_eq!(
        db.dump_schema(&["seaql_migrations"]),
        reference_head_schema()
    );
}

#[test]
fn down_one_from_head_removes_only_password_hash() {
    let db = PgDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let r = db.run(&["migrate", "down", "-n", "1", "--yes", "--format", "json"]);
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["steps"][0]["version"], V2);
    assert_eq!(j["drops"][0]["kind"], "column");
    assert_eq!(j["drops"][0]["name"], "password_hash");
    assert_eq!(db.versions(), vec![V1]);
    assert_eq!(
        db.dump_schema(&["seaql_migrations"]),
        reference_001_schema()
    );
}

#[test]
fn current_and_status_report_versions_and_check_exits_1_when_pending() {
    let db = PgDb::new();
    let r = db.run(&["migrate", "current", "--check", "--format", "json"]);
    r.expect_code(1);
    assert_eq!(r.json()["up_to_date"], false);
    assert_eq!(r.json()["pending"].as_array().unwrap().len(), 2);
    // A read-only look must not create the bookkeeping table.
    assert!(db.tables().is_empty(), "current created {:?}", db.tables());

    db.run(&["migrate", "up", "-n", "1"]).expect_code(0);
    let r = db.run(&["migrate", "status", "--format", "json"]);
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["migrations"][0]["status"], "applied");
    assert_eq!(j["migrations"][0]["alembic_revision"], "001");
    assert!(
        j["migrations"][0]["applied_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(j["migrations"][1]["status"], "pending");
    assert!(j["migrations"][1]["applied_at"].is_null());

    db.run(&["migrate", "up"]).expect_code(0);
    let r = db.run(&["migrate", "current", "--check"]);
    r.expect_code(0);
    assert!(r.stdout.contains("up to date"), "{}", r.stdout);
}

#[test]
fn dry_run_prints_the_sql_and_changes_nothing() {
    let db = PgDb::new();
    let before = db.dump_all();
    let r = db.run(&["migrate", "up", "--dry-run"]);
    r.expect_code(0);
    for needle in [
        "CREATE TYPE \"plantype\" AS ENUM ('free', 'pro', 'enterprise')",
        "CREATE TABLE \"orgs\"",
        "CREATE TABLE \"users\"",
        "CREATE TABLE \"audit_logs\"",
        "CREATE INDEX \"ix_events_org_ts\"",
        "ALTER TABLE \"users\" ADD COLUMN \"password_hash\" varchar",
        "CREATE TABLE IF NOT EXISTS \"seaql_migrations\"",
        "INSERT INTO \"seaql_migrations\" (\"version\", \"applied_at\") VALUES ('m20251007_000001_initial_schema', ",
        "pg_try_advisory_xact_lock",
    ] {
        assert!(
            r.stdout.contains(needle),
            "dry run lacks {needle}:\n{}",
            r.stdout
        );
    }
    assert!(db.tables().is_empty(), "dry run created {:?}", db.tables());
    assert_eq!(db.dump_all(), before);

    // JSON carries the SQL per step.
    let j = db
        .run(&["migrate", "up", "--dry-run", "--format", "json"])
        .json();
    assert_eq!(j["dry_run"], true);
    assert_eq!(j["plan"].as_array().unwrap().len(), 2);

    // down --dry-run on a migrated database: lists the drops, changes nothing, needs no --yes.
    db.run(&["migrate", "up"]).expect_code(0);
    db.psql("INSERT INTO orgs (id, name) VALUES ('org_000000000001', 'a'), ('org_000000000002', 'b'); ANALYZE orgs");
    let before = db.dump_all();
    let r = db.run(&["migrate", "down", "--all", "--dry-run"]);
    r.expect_code(0);
    assert!(r.stdout.contains("DROP TABLE \"orgs\""), "{}", r.stdout);
    assert!(
        r.stdout.contains("drops table orgs (~2 rows)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("DROP TYPE \"role\""), "{}", r.stdout);
    assert_eq!(db.dump_all(), before);
}

#[test]
fn alembic_managed_database_is_kept_in_step() {
    let db = PgDb::new();
    db.load(&reference("ecomind-api-alembic-001.sql"));
    // Not baselined yet: refused, nothing changed.
    let before = db.dump_all();
    let r = db.run(&["migrate", "up"]);
    r.expect_clean_error(4);
    assert!(r.stderr.contains("baseline"), "{}", r.stderr);
    assert_eq!(db.dump_all(), before);

    // Record 001 the way a baseline would.
    db.psql(
        "CREATE TABLE seaql_migrations (version varchar NOT NULL PRIMARY KEY, applied_at bigint NOT NULL); \
         INSERT INTO seaql_migrations VALUES ('m20251007_000001_initial_schema', 1700000000)",
    );
    let r = db.run(&["migrate", "status"]);
    r.expect_code(0);
    assert!(r.stdout.contains("alembic_version: 001"), "{}", r.stdout);

    db.run(&["migrate", "up"]).expect_code(0);
    assert_eq!(db.psql("SELECT version_num FROM alembic_version"), "002");
    let j = db.run(&["migrate", "current", "--format", "json"]).json();
    assert_eq!(j["alembic_version"]["revision"], "002");
    assert_eq!(j["alembic_in_step"], true);

    db.run(&["migrate", "down", "-n", "1", "--yes"])
        .expect_code(0);
    assert_eq!(db.psql("SELECT version_num FROM alembic_version"), "001");
    assert_eq!(
        db.psql(
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'password_hash'"
        ),
        "0"
    );

    db.run(&["migrate", "down", "--all", "--yes"])
        .expect_code(0);
    assert_eq!(
        db.psql("SELECT count(*) FROM alembic_version"),
        "0",
        "row removed when everything is reverted"
    );
}

#[test]
fn unknown_alembic_revision_is_refused() {
    let db = PgDb::new();
    db.load(&reference("ecomind-api-alembic-002.sql"));
    db.psql("UPDATE alembic_version SET version_num = '003abc'");
    let before = db.dump_all();
    let r = db.run(&["migrate", "up"]);
    r.expect_clean_error(4);
    assert!(
        r.stderr.contains("003abc") && r.stderr.contains("upgrade ecomind-admin"),
        "{}",
        r.stderr
    );
    assert_eq!(db.dump_all(), before);
    // Read-only commands still report it.
    let r = db.run(&["migrate", "status"]);
    r.expect_code(0);
    assert!(r.stderr.contains("003abc"), "{}", r.stderr);
}

#[test]
fn tls_sslmode_require_connects() {
    let db = PgDb::new();
    let url = format!("{}?sslmode=require", db.url());
    let r = Run::from(
        db.cmd()
            .env("DATABASE_URL", &url)
            .args(["migrate", "current", "--format", "json"])
            .output()
            .unwrap(),
    );
    r.expect_code(0);
    assert!(
        r.json()["database"]
            .as_str()
            .unwrap()
            .contains("sslmode=require")
    );
    let r = Run::from(
        db.cmd()
            .env("DATABASE_URL", &url)
            .args(["migrate", "up"])
            .output()
            .unwrap(),
    );
    r.expect_code(0);
    assert_eq!(db.versions(), all_versions());
}

#[test]
fn hand_made_database_without_bookkeeping_is_refused_by_up() {
    let db = PgDb::new();
    db.load(&reference("ecomind-api-schema.sql"));
    let before = db.dump_all();
    let r = db.run(&["migrate", "up"]);
    r.expect_clean_error(4);
    assert!(r.stderr.contains("baseline"), "{}", r.stderr);
    assert_eq!(db.dump_all(), before);
}
