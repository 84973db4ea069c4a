//! `verify-schema` on SQLite.

use crate::common::*;

#[test]
fn clean_at_each_version_and_drift_found() {
    let db = SqliteDb::new();
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
    assert_eq!(f[1]["kind"], "index_missing");
    assert_eq!(f[1]["object"], "ix_audit_logs_ts");
    db.query(f[1]["fix_sql"].as_str().unwrap());
    db.run(&["verify-schema"]).expect_code(0);
}

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

#[test]
fn verify_writes_nothing() {
    let db = SqliteDb::new();
    db.query("CREATE TABLE t (x int); DROP TABLE t;");
    let r = db.run(&["verify-schema", "--format", "json"]);
    r.expect_code(1);
    assert_eq!(r.json()["against"]["source"], "unmanaged");
    assert!(db.tables().is_empty(), "{:?}", db.tables());
}
