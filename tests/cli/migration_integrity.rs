//! Shipped migrations are never edited: the SQL each one runs, per backend, is pinned
//! by a checksum in `migration/checksums.txt`. The API's schema is the contract, so an
//! edited migration is a test failure here (sqlx and Flyway refuse one at run time).
//!
//! A new migration: `cargo xtask snapshots` (or this test with `ECOMIND_WRITE_CHECKSUMS=1`)
//! adds its lines to the manifest; the lines of shipped migrations are never rewritten.

use sha2::{Digest, Sha256};

use crate::common::*;

const MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/migration/checksums.txt");

/// (version, sha256 of its statements) from `migrate up --dry-run --format json`,
/// without the bookkeeping ecomind-admin adds around each migration.
fn checksums(plan: &serde_json::Value) -> Vec<(String, String)> {
    plan["plan"]
        .as_array()
        .expect("a plan")
        .iter()
        .map(|step| {
            let sql: Vec<&str> = step["sql"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .filter(|s| {
                    let upper = s.trim_start().to_ascii_uppercase();
                    !(upper.starts_with("BEGIN")
                        || upper.starts_with("COMMIT")
                        || upper.starts_with("SET ")
                        || upper.starts_with("SELECT PG_")
                        || s.contains("seaql_migrations")
                        || s.contains("alembic_version"))
                })
                .collect();
            assert!(!sql.is_empty(), "{step}");
            let digest = Sha256::digest(sql.join(";\n").as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            (step["version"].as_str().unwrap().to_owned(), hex)
        })
        .collect()
}

#[test]
fn shipped_migrations_are_never_edited() {
    let pg = PgDb::new();
    let r = pg.run(&["migrate", "up", "--dry-run", "--format", "json"]);
    r.expect_code(0);
    let mut lines: Vec<String> = checksums(&r.json())
        .into_iter()
        .map(|(v, h)| format!("{v} postgres {h}"))
        .collect();
    let lite = tempfile::tempdir().unwrap();
    let r = Run::from(
        bin(lite.path())
            .args(["migrate", "up", "--dry-run", "--format", "json"])
            .output()
            .unwrap(),
    );
    r.expect_code(0);
    lines.extend(
        checksums(&r.json())
            .into_iter()
            .map(|(v, h)| format!("{v} sqlite {h}")),
    );
    lines.sort();
    let actual = lines.join("\n") + "\n";
    if std::env::var_os("ECOMIND_WRITE_CHECKSUMS").is_some() {
        // Add the lines of new migrations; a shipped migration's lines are never rewritten.
        let pinned = std::fs::read_to_string(MANIFEST).unwrap_or_default();
        let shipped = |line: &str| {
            let version = line.split(' ').next().unwrap_or("");
            pinned.lines().any(|l| l.split(' ').next() == Some(version))
        };
        let mut merged: Vec<&str> = pinned.lines().collect();
        merged.extend(actual.lines().filter(|l| !shipped(l)));
        merged.sort();
        std::fs::write(MANIFEST, merged.join("\n") + "\n").unwrap();
    }
    let pinned = std::fs::read_to_string(MANIFEST).expect("migration/checksums.txt");
    for line in pinned.lines() {
        assert!(
            actual.lines().any(|l| l == line),
            "a shipped migration's SQL changed (or was removed): `{line}` no longer holds.\n\
             A shipped migration is never edited: write a new migration instead.\nnow:\n{actual}"
        );
    }
    for line in actual.lines() {
        assert!(
            pinned.lines().any(|l| l == line),
            "`{line}` is not in migration/checksums.txt: a new migration? Run `cargo xtask \
             snapshots` and commit the manifest"
        );
    }
}
