//! `migrate`: behaviour tests written once and run on PostgreSQL and SQLite (`both!`),
//! then what only one backend has: the API's reference dumps and Alembic (PostgreSQL),
//! the embedded default and the CHECK-based enums (SQLite).

use crate::common::*;

both! {
    /// up, down one, down all, up to a version, up again: the recorded versions and the
    /// columns follow each step; only the bookkeeping table survives `down --all`.
    fn up_down_and_up_again(db) {
        db.run(&["migrate", "up"]).expect_code(0);
        assert_eq!(db.versions(), all_versions());
        assert!(db.columns("users").contains(&"password_hash".to_owned()));

        let head = all_versions().len() - 1;
        db.run(&["migrate", "down", "--yes"]).expect_code(0);
        assert_eq!(db.versions(), all_versions()[..head]);
        assert_eq!(db.columns("users"), snapshot_columns(&db, head - 1, "users"));

        db.run(&["migrate", "down", "--to", "001", "--yes"]).expect_code(0);
        assert_eq!(db.versions(), vec![V1]);
        assert_eq!(
            db.columns("users"),
            vec!["id", "org_id", "email", "name", "role", "created_at"]
        );

        db.run(&["migrate", "down", "--all", "--yes"]).expect_code(0);
        assert_eq!(db.tables(), vec!["seaql_migrations"]);
        assert!(db.versions().is_empty());
        if let AnyDb::Pg(pg) = &db {
            assert!(pg.enum_types().is_empty(), "enum types left: {:?}", pg.enum_types());
        }

        db.run(&["migrate", "up", "--to", "001"]).expect_code(0);
        assert_eq!(db.versions(), vec![V1]);
        db.run(&["migrate", "up"]).expect_code(0);
        assert_eq!(db.versions(), all_versions());
    }

    /// `down -n 1` from head reverts only the newest migration, and its JSON report names
    /// the step and what it dropped; reverting 002 drops users.password_hash.
    fn down_one_reports_the_step_and_its_drops(db) {
        db.run(&["migrate", "up"]).expect_code(0);
        let head = all_versions().len() - 1;
        let r = db.run(&["migrate", "down", "-n", "1", "--yes", "--format", "json"]);
        r.expect_code(0);
        let j = r.json();
        assert_eq!(j["steps"].as_array().unwrap().len(), 1, "{j}");
        assert_eq!(j["steps"][0]["version"], head_version().as_str());
        assert!(!j["drops"].as_array().unwrap().is_empty(), "{j}");
        assert_eq!(db.versions(), all_versions()[..head]);
        assert_eq!(db.columns("users"), snapshot_columns(&db, head - 1, "users"));

        db.run(&["migrate", "up"]).expect_code(0);
        let r = db.run(&["migrate", "down", "--to", "001", "--yes", "--format", "json"]);
        r.expect_code(0);
        let j = r.json();
        assert_eq!(j["steps"].as_array().unwrap().last().unwrap()["version"], V2);
        let drops = j["drops"].as_array().unwrap();
        let password = drops.iter().find(|d| d["name"] == "password_hash").expect("password_hash dropped");
        assert_eq!(password["kind"], "column");
        assert_eq!(password["table"], "users");
        assert_eq!(db.versions(), vec![V1]);
    }

    /// current and status read without writing; `current --check` exits 1 while
    /// something is pending.
    fn current_and_status_report_versions_and_check_exits_1_when_pending(db) {
        let r = db.run(&["migrate", "current", "--check", "--format", "json"]);
        r.expect_code(1);
        assert_eq!(r.json()["up_to_date"], false);
        assert_eq!(r.json()["pending"].as_array().unwrap().len(), all_versions().len());
        // A read-only look must not create the bookkeeping table.
        assert!(db.tables().is_empty(), "current created {:?}", db.tables());

        db.run(&["migrate", "up", "-n", "1"]).expect_code(0);
        let r = db.run(&["migrate", "status", "--format", "json"]);
        r.expect_code(0);
        let j = r.json();
        assert_eq!(j["migrations"][0]["status"], "applied");
        assert_eq!(j["migrations"][0]["alembic_revision"], "001");
        assert!(j["migrations"][0]["applied_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(j["migrations"][1]["status"], "pending");
        assert!(j["migrations"][1]["applied_at"].is_null());

        db.run(&["migrate", "up"]).expect_code(0);
        let r = db.run(&["migrate", "current", "--check"]);
        r.expect_code(0);
        assert!(r.stdout.contains("up to date"), "{}", r.stdout);
    }

    /// `up --dry-run` prints every statement (the DDL, the lock, the bookkeeping) and
    /// changes nothing; `down --dry-run` lists the drops with row estimates and needs no
    /// --yes.
    fn dry_runs_print_the_sql_and_change_nothing(db) {
        let before = db.dump_all();
        let r = db.run(&["migrate", "up", "--dry-run"]);
        r.expect_code(0);
        let mut needles = vec![
            "CREATE TABLE \"orgs\"",
            "CREATE TABLE \"users\"",
            "CREATE TABLE \"audit_logs\"",
            "CREATE INDEX \"ix_events_org_ts\"",
            "ALTER TABLE \"users\" ADD COLUMN \"password_hash\" varchar",
            "CREATE TABLE IF NOT EXISTS \"seaql_migrations\"",
            "INSERT INTO \"seaql_migrations\" (\"version\", \"applied_at\") VALUES ('m20251007_000001_initial_schema', ",
        ];
        if db.is_postgres() {
            needles.push("CREATE TYPE \"plantype\" AS ENUM ('free', 'pro', 'enterprise')");
            needles.push("pg_try_advisory_xact_lock");
        } else {
            needles.push("CHECK (\"role\" IN ('owner', 'admin', 'analyst', 'viewer', 'billing'))");
            needles.push("BEGIN IMMEDIATE");
        }
        for needle in needles {
            assert!(r.stdout.contains(needle), "dry run lacks {needle}:\n{}", r.stdout);
        }
        assert!(db.tables().is_empty(), "dry run created {:?}", db.tables());
        assert_eq!(db.dump_all(), before);

        // JSON carries the SQL per step.
        let j = db.run(&["migrate", "up", "--dry-run", "--format", "json"]).json();
        assert_eq!(j["dry_run"], true);
        assert_eq!(j["plan"].as_array().unwrap().len(), all_versions().len());

        db.run(&["migrate", "up"]).expect_code(0);
        db.query("INSERT INTO orgs (id, name) VALUES ('org_000000000001', 'a'), ('org_000000000002', 'b')");
        if db.is_postgres() {
            db.query("ANALYZE orgs");
        }
        let before = db.dump_all();
        let r = db.run(&["migrate", "down", "--all", "--dry-run"]);
        r.expect_code(0);
        assert!(r.stdout.contains("DROP TABLE \"orgs\""), "{}", r.stdout);
        assert!(r.stdout.contains("drops table orgs (~2 rows)"), "{}", r.stdout);
        if db.is_postgres() {
            assert!(r.stdout.contains("DROP TYPE \"role\""), "{}", r.stdout);
        }
        assert_eq!(db.dump_all(), before);
    }

    /// Without --yes and without a terminal, a revert is refused (exit 4): nothing changes.
    fn down_without_yes_and_no_tty_is_refused_and_changes_nothing(db) {
        db.run(&["migrate", "up"]).expect_code(0);
        let before = db.dump_all();
        let r = db.run(&["migrate", "down"]);
        r.expect_clean_error(4);
        assert!(r.stderr.contains("--yes"), "{}", r.stderr);
        assert_eq!(db.versions(), all_versions());
        assert_eq!(db.dump_all(), before);
    }

    /// `--format json` is one document, also when there is nothing to do.
    fn json_output_is_one_document(db) {
        let r = db.run(&["migrate", "up", "--format", "json"]);
        r.expect_code(0);
        let j = r.json();
        assert_eq!(j["direction"], "up");
        assert_eq!(j["steps"].as_array().unwrap().len(), all_versions().len());
        assert_eq!(j["to"]["alembic_revision"], head_revision());
        let j = db.run(&["migrate", "up", "--format", "json"]).json();
        assert!(j["steps"].as_array().unwrap().is_empty());
    }

    /// Eight `migrate up` at once: each migration is applied exactly once, every run
    /// exits 0, and the versions are all recorded.
    fn eight_concurrent_ups_apply_each_migration_once(db) {
        let children: Vec<_> = (0..8)
            .map(|_| {
                let mut c = std_bin(db.dir());
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
        assert_eq!(steps, all_versions().len(), "each migration applied by exactly one process");
        assert_eq!(db.versions(), all_versions());
        if db.is_postgres() {
            assert_eq!(
                db.query(ADVISORY_LOCKS),
                "0",
                "no advisory lock left held"
            );
        }
    }

    /// -v logs the SQL on stderr; stdout stays one JSON document, stderr has no colour.
    fn verbose_logs_sql_on_stderr_and_keeps_stdout_clean(db) {
        let r = db.run(&["-v", "migrate", "up", "--format", "json"]);
        r.expect_code(0);
        assert!(r.stderr.contains("CREATE TABLE"), "{}", r.stderr);
        assert!(!r.stderr.contains('\u{1b}'), "colors on a pipe");
        r.json();
    }
}

// PostgreSQL: the API's reference dumps, Alembic, TLS.

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
    assert_eq!(
        db.psql("SELECT version_num FROM alembic_version"),
        head_revision()
    );
    let j = db.run(&["migrate", "current", "--format", "json"]).json();
    assert_eq!(j["alembic_version"]["revision"], head_revision());
    assert_eq!(j["alembic_in_step"], true);

    db.run(&["migrate", "down", "--to", "001", "--yes"])
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
    // Read-only commands still report it (status: exit 1, the database is ahead of
    // this build).
    let r = db.run(&["migrate", "status"]);
    r.expect_code(1);
    assert!(r.stderr.contains("003abc"), "{}", r.stderr);
}

#[test]
fn tls_sslmode_require_connects() {
    let db = PgDb::new();
    let url = format!("{}?sslmode=require", db.url());
    let r = db.run_at(&url, &["migrate", "current", "--format", "json"]);
    r.expect_code(0);
    assert!(
        r.json()["database"]
            .as_str()
            .unwrap()
            .contains("sslmode=require")
    );
    let r = db.run_at(&url, &["migrate", "up"]);
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

#[test]
fn down_and_up_again_reproduce_the_reference_schemas() {
    let db = PgDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    db.run(&["migrate", "down", "-n", "1", "--yes"])
        .expect_code(0);
    assert_eq!(
        db.dump_schema(&["seaql_migrations"]),
        reference_001_schema()
    );
    db.run(&["migrate", "down", "--all", "--yes"])
        .expect_code(0);
    db.run(&["migrate", "up"]).expect_code(0);
    assert_eq!(
        db.dump_schema(&["seaql_migrations"]),
        reference_head_schema()
    );
}

// SQLite: the embedded default, CHECK enums, the file itself, the prompt.

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
    assert_eq!(tables, api_tables());
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
    assert_eq!(statuses, vec!["applied"; all_versions().len()]);
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

/// On a pseudo-terminal (expectrl), the revert asks; Enter is No.
#[test]
fn down_on_a_tty_asks_and_defaults_to_no() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    db.query("INSERT INTO orgs (id, name) VALUES ('org_000000000001', 'a')");

    let r = on_tty(&db, "migrate down --all", "");
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(r.stdout.contains("table orgs (~1 row)"), "{}", r.stdout);
    assert!(r.stdout.contains("[y/N]"), "{}", r.stdout);
    assert!(r.stdout.contains("not confirmed"), "{}", r.stdout);
    assert_eq!(db.versions(), all_versions());

    let r = on_tty(&db, "migrate down --to 001", "y");
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("column users.password_hash"),
        "{}",
        r.stdout
    );
    assert_eq!(db.versions(), vec![V1]);
}
