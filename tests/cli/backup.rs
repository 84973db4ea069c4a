//! Issue 29: `backup`, `backup verify` and `restore` on both backends: a backup
//! verifies; a corrupted or truncated one fails with the reason; a restore after a
//! failed upgrade gives back exactly the backup (pg_dump of both, the row counts) with
//! no `migrate down`; a restore interrupted by SIGINT or killed leaves the database as
//! it was; refused while the API is connected, done with --yes; the writes-since figure.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::api::Api;
use crate::common::*;

/// `backup --dir DIR --format json`: the backup's path (exit 0 asserted).
fn backup(db: &AnyDb, dir: &Path) -> PathBuf {
    let r = db.run(&["backup", "--dir", dir.to_str().unwrap(), "--format", "json"]);
    r.expect_code(0);
    PathBuf::from(r.json()["path"].as_str().unwrap())
}

fn verify(db: &AnyDb, file: &Path) -> Run {
    db.run(&[
        "backup",
        "verify",
        file.to_str().unwrap(),
        "--format",
        "json",
    ])
}

/// `n` more audit rows (ids from 0x1000 on), padded.
fn add_audit_rows(db: &AnyDb, n: u32) {
    let sql = if db.is_postgres() {
        format!(
            "INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts) \
             SELECT 'audit_' || lpad(to_hex(4096 + i), 16, '0'), 'org_a', 'user_000000000001', 'user_login', \
                    'authentication', json_build_object('n', i, 'pad', repeat(md5(i::text), 4)), \
                    '2026-01-02'::timestamp + i * interval '1 second' \
             FROM generate_series(1, {n}) AS i"
        )
    } else {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
             INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts) \
             SELECT printf('audit_%016x', 4096 + i), 'org_a', 'user_000000000001', 'user_login', 'authentication', \
                    '{{\"n\": ' || i || ', \"pad\": \"' || hex(randomblob(64)) || '\"}}', \
                    datetime('2026-01-02', '+' || i || ' seconds') FROM n"
        )
    };
    db.query(&sql);
}

fn check<'a>(j: &'a Value, name: &str) -> &'a Value {
    j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {j}"))
}

/// Some rows of every kind the audit reads, at head.
fn seed(db: &AnyDb) {
    db.run(&["migrate", "up"]).expect_code(0);
    db.query(
        "INSERT INTO orgs (id, name) VALUES ('org_a', 'A'), ('org_b', 'B'); \
         INSERT INTO users (id, org_id, email, role, created_at) VALUES \
           ('user_000000000001', 'org_a', 'o@a.example', 'owner', '2026-01-01 00:00:00'), \
           ('user_000000000002', 'org_b', 'v@b.example', 'viewer', '2026-01-01 00:00:00'); \
         INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts) VALUES \
           ('audit_0000000000000001', 'org_a', 'user_000000000001', 'user_registered', 'authentication', \
            '{\"email\": \"o@a.example\"}', '2026-01-01 00:00:00')",
    );
}

both! {
    /// A backup and its manifest (0600, the row counts of every table), proven by a
    /// restore: every check passes, exit 0; PostgreSQL's scratch database is dropped.
    fn a_backup_verifies(db) {
        seed(&db);
        let dir = db.dir().join("bk");
        let file = backup(&db, &dir);
        let manifest = PathBuf::from(format!("{}.manifest.json", file.display()));
        use std::os::unix::fs::PermissionsExt;
        for f in [&file, &manifest] {
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.display());
        }
        let m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
        let rows = |t: &str| {
            m["tables"].as_array().unwrap().iter().find(|x| x["table"] == t).unwrap()["rows"].clone()
        };
        assert_eq!(rows("users"), 2, "{m}");
        assert_eq!(rows("orgs"), 2, "{m}");
        let r = verify(&db, &file);
        r.expect_code(0);
        let j = r.json();
        assert_eq!(j["verified"], true, "{j}");
        for c in ["manifest", "sha256", "restore", "schema", "rows", "audit"] {
            assert_eq!(check(&j, c)["result"], "ok", "{c}: {j}");
        }
        assert!(j["tables"].as_array().unwrap().iter().all(|t| t["ok"] == true), "{j}");
        if let AnyDb::Pg(pg) = &db {
            let scratch = j["scratch"].as_str().unwrap();
            let name = scratch.split_whitespace().nth(2).unwrap();
            assert_eq!(
                pg.psql(&format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'")),
                "0",
                "the scratch database is dropped"
            );
        }
        // Nothing written since: a second backup reuses the first.
        let r = db.run(&["backup", "--dir", dir.to_str().unwrap(), "--format", "json"]);
        r.expect_code(0);
        assert_eq!(r.json()["reused"], true);
        assert_eq!(r.json()["path"], file.to_str().unwrap());
    }

    /// A byte flipped in a data block, and a truncated file: `backup verify` exits 1 and
    /// says why (the digest, and on PostgreSQL pg_restore's own error).
    fn corrupted_and_truncated_backups_fail_verify(db) {
        seed(&db);
        // Enough rows that the middle of the file is table data.
        add_audit_rows(&db, 3000);
        let dir = db.dir().join("bk");
        let file = backup(&db, &dir);
        verify(&db, &file).expect_code(0);
        let good = std::fs::read(&file).unwrap();
        let mut bad = good.clone();
        let at = bad.len() * 3 / 5;
        bad[at] ^= 0x5a;
        std::fs::write(&file, &bad).unwrap();
        let r = verify(&db, &file);
        r.expect_code(1);
        let j = r.json();
        assert_eq!(j["verified"], false);
        assert_eq!(check(&j, "sha256")["result"], "failed", "{j}");
        assert!(r.stderr.contains("the backup does not verify"), "{}", r.stderr);
        if db.is_postgres() {
            assert_eq!(check(&j, "restore")["result"], "failed", "{j}");
            assert!(check(&j, "restore")["detail"].as_str().unwrap().contains("pg_restore"), "{j}");
        }
        std::fs::write(&file, &good[..good.len() / 2]).unwrap();
        let r = verify(&db, &file);
        r.expect_code(1);
        let j = r.json();
        assert_eq!(check(&j, "sha256")["result"], "failed", "{j}");
        assert_eq!(check(&j, "restore")["result"], "failed", "{j}");
        if let AnyDb::Pg(pg) = &db {
            let scratch = j["scratch"].as_str().unwrap();
            let name = scratch.split_whitespace().nth(2).unwrap();
            assert_eq!(pg.psql(&format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'")), "0");
        }
        // A restore of it is refused before anything is touched.
        let before = db.dump_all();
        let r = db.run(&["restore", file.to_str().unwrap(), "--yes"]);
        r.expect_clean_error(4);
        assert!(r.stderr.contains("changed since the backup was taken"), "{}", r.stderr);
        assert_eq!(db.dump_all(), before);
    }

    /// After a failed upgrade (a migration stopped by a lock, and a table a failing
    /// migration left behind) and writes since: `restore` gives back exactly the backup,
    /// without `migrate down`; the writes it throws away are counted per table.
    fn restore_after_a_failed_upgrade_is_exact(db) {
        db.run(&["migrate", "up", "--to", "001"]).expect_code(0);
        db.query(
            "INSERT INTO orgs (id, name) VALUES ('org_a', 'A'), ('org_b', 'B'), ('org_c', 'C'); \
             INSERT INTO users (id, org_id, email, role, created_at) VALUES \
               ('user_000000000001', 'org_a', 'o@a.example', 'owner', '2026-01-01 00:00:00')",
        );
        let before = db.dump_all();
        let dir = db.dir().join("bk");
        let r = match &db {
            AnyDb::Pg(pg) => {
                let _reader = Blocker::psql_txn(pg, "SELECT count(*) FROM users;");
                db.run(&["upgrade", "--yes", "--backup-dir", dir.to_str().unwrap(), "--ddl-lock-timeout", "500ms", "--format", "json"])
            }
            AnyDb::Lite(lite) => {
                let _writer = Blocker::sqlite_writer(lite);
                db.run(&["upgrade", "--yes", "--backup-dir", dir.to_str().unwrap(), "--lock-wait", "500ms", "--format", "json"])
            }
        };
        r.expect_code(4);
        let j = r.json();
        assert_eq!(j["failed_step"], "migrate", "{j}");
        let file = j["backup"]["path"].as_str().unwrap().to_owned();
        assert!(r.stderr.contains(&format!("ecomind-admin restore {file}")), "{}", r.stderr);
        // What a migration failing half-way on a server without transactional DDL leaves,
        // and writes after the failure: 2 inserted, 1 updated, 1 deleted in orgs.
        db.query(
            "CREATE TABLE half_made (id TEXT PRIMARY KEY); \
             INSERT INTO orgs (id, name) VALUES ('org_d', 'D'), ('org_e', 'E'); \
             UPDATE orgs SET name = 'B2' WHERE id = 'org_b'; \
             DELETE FROM orgs WHERE id = 'org_c'",
        );
        if let AnyDb::Pg(pg) = &db {
            wait_for("the statistics of the writes", 20, || {
                pg.psql("SELECT n_tup_ins || ' ' || n_tup_upd || ' ' || n_tup_del FROM pg_stat_user_tables WHERE relname = 'orgs'") == "5 1 1"
            });
        }
        let r = db.run(&["restore", &file, "--yes", "--format", "json"]);
        r.expect_code(0);
        let j = r.json();
        assert_eq!(j["status"], "restored", "{j}");
        assert_eq!(j["to"]["alembic_revision"], "001", "{j}");
        let orgs = j["writes_since"].as_array().unwrap().iter().find(|t| t["table"] == "orgs").unwrap();
        assert_eq!(orgs["rows_in_backup"], 3, "{j}");
        assert_eq!(orgs["rows_now"], 4, "{j}");
        if db.is_postgres() {
            assert_eq!((orgs["inserted"].clone(), orgs["updated"].clone(), orgs["deleted"].clone()), (2.into(), 1.into(), 1.into()), "{j}");
        }
        let half = j["writes_since"].as_array().unwrap().iter().find(|t| t["table"] == "half_made").unwrap();
        assert_eq!(half["rows_in_backup"], Value::Null, "{j}");
        assert_eq!(db.dump_all(), before, "the restore gives back exactly the backup");
        assert!(!db.tables().contains(&"half_made".to_owned()));
        assert!(j["checks"].as_array().unwrap().iter().all(|c| c["result"] == "ok"), "{j}");
        assert!(j["next"].as_str().unwrap().contains("verify-deployment"), "{j}");
    }

    /// Destructive: without --yes and without a terminal, refused; nothing changed.
    fn restore_without_yes_is_refused(db) {
        seed(&db);
        let file = backup(&db, &db.dir().join("bk"));
        db.query("INSERT INTO orgs (id, name) VALUES ('org_z', 'Z')");
        let before = db.dump_all();
        let r = db.run(&["restore", file.to_str().unwrap()]);
        r.expect_clean_error(4);
        assert!(r.stderr.contains("without confirmation"), "{}", r.stderr);
        assert_eq!(db.dump_all(), before);
    }
}

/// `--scratch-url` naming the source database, or a database that is not empty, and a
/// server without room for the copy: refused (exit 4), nothing restored.
#[test]
fn a_scratch_that_is_the_source_or_not_empty_is_refused() {
    let db = AnyDb::Pg(PgDb::new());
    seed(&db);
    let pg = db.as_pg();
    let file = backup(&db, &db.dir().join("bk"));
    let before = db.dump_all();
    let r = db.run(&[
        "backup",
        "verify",
        file.to_str().unwrap(),
        "--scratch-url",
        &pg.url(),
    ]);
    r.expect_clean_error(4);
    assert!(
        r.stderr
            .contains("is the database the command is pointed at"),
        "{}",
        r.stderr
    );
    assert_eq!(db.dump_all(), before);
    let other = PgDb::new();
    other.psql("CREATE TABLE keep_me (id int)");
    let r = db.run(&[
        "backup",
        "verify",
        file.to_str().unwrap(),
        "--scratch-url",
        &other.url(),
    ]);
    r.expect_clean_error(4);
    assert!(r.stderr.contains("is not empty"), "{}", r.stderr);
    // A server without room for the copy (the manifest says the database had 1 PB):
    // refused, no scratch database made.
    let manifest = PathBuf::from(format!("{}.manifest.json", file.display()));
    let good = std::fs::read_to_string(&manifest).unwrap();
    let mut m: Value = serde_json::from_str(&good).unwrap();
    m["database_bytes"] = 1_000_000_000_000_000u64.into();
    std::fs::write(&manifest, m.to_string()).unwrap();
    let r = db.run(&["backup", "verify", file.to_str().unwrap()]);
    r.expect_clean_error(4);
    assert!(
        r.stderr.contains("a copy of this backup needs 909.5 TiB"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing was restored"), "{}", r.stderr);
    std::fs::write(&manifest, good).unwrap();
    // An empty one: restored there, checked, emptied again.
    let empty = PgDb::new();
    let r = db.run(&[
        "backup",
        "verify",
        file.to_str().unwrap(),
        "--scratch-url",
        &empty.url(),
        "--format",
        "json",
    ]);
    r.expect_code(0);
    assert_eq!(r.json()["verified"], true);
    assert!(empty.tables().is_empty(), "{:?}", empty.tables());
}

/// SQLite: a temporary directory without room for the copy refuses before copying
/// (exit 4, nothing left there). A 1 MiB tmpfs in a private mount namespace.
#[test]
fn no_room_for_the_copy_is_refused() {
    let db = AnyDb::Lite(SqliteDb::new());
    seed(&db);
    db.query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) \
         INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts) \
         SELECT printf('audit_%016x', 100 + i), 'org_a', 'user_000000000001', 'user_login', 'authentication', \
                '{\"pad\": \"' || hex(randomblob(400)) || '\"}', '2026-01-02 00:00:00' FROM n",
    );
    let file = backup(&db, &db.dir().join("bk"));
    let bin = assert_cmd::cargo::cargo_bin("ecomind-admin");
    let small = db.dir().join("small");
    std::fs::create_dir(&small).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs '{s}' && TMPDIR='{s}' '{bin}' --database-url '{url}' backup verify '{file}'; \
         echo \"rc=$?\"; ls -A '{s}'",
        s = small.display(),
        bin = bin.display(),
        url = db.url(),
        file = file.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux) runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.trim_end().ends_with("rc=4"), "{stdout}\n{stderr}");
    assert!(stderr.contains("the copy needs"), "{stderr}");
    assert!(
        stderr.lines().filter(|l| l.starts_with("error:")).count() == 1,
        "{stderr}"
    );
}

/// PostgreSQL: interrupted while its COPY runs (SIGINT) and killed (SIGKILL): the
/// database is as it was; then it goes through.
#[test]
fn an_interrupted_or_killed_restore_leaves_the_database_as_it_was() {
    let db = AnyDb::Pg(PgDb::new());
    seed(&db);
    add_audit_rows(&db, 600_000);
    let pg = db.as_pg();
    let file = backup(&db, &db.dir().join("bk"));
    db.query(
        "INSERT INTO orgs (id, name) VALUES ('org_after', 'After'); DROP INDEX ix_audit_logs_ts",
    );
    let before = db.dump_all();
    let ours = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                AND application_name LIKE 'ecomind-admin%'";
    for signal in ["-INT", "-KILL"] {
        let child = pg.spawn(&["restore", file.to_str().unwrap(), "--yes"]);
        wait_for("the restore's COPY to run", 30, || {
            pg.psql(&format!(
                "{ours} AND state = 'active' AND query LIKE 'COPY%'"
            )) == "1"
        });
        send(&child, signal);
        let r = Run::from(child.wait_with_output().unwrap());
        if signal == "-INT" {
            assert_eq!(r.code, 130, "{}", r.stderr);
            assert!(r.stderr.contains("rolled back"), "{}", r.stderr);
        }
        wait_for("the restore's sessions to end", 20, || pg.psql(ours) == "0");
        assert_eq!(db.dump_all(), before, "after {signal}");
    }
    db.run(&["restore", file.to_str().unwrap(), "--yes"])
        .expect_code(0);
    assert_eq!(
        pg.psql("SELECT count(*) FROM orgs WHERE id = 'org_after'"),
        "0"
    );
}

/// SQLite: interrupted (SIGINT) and killed (SIGKILL) once its transaction writes (the
/// rollback journal exists): the database is as it was; then it goes through.
#[test]
fn an_interrupted_or_killed_sqlite_restore_leaves_the_database_as_it_was() {
    let db = AnyDb::Lite(SqliteDb::new());
    seed(&db);
    add_audit_rows(&db, 300_000);
    let lite = db.as_lite();
    let file = backup(&db, &db.dir().join("bk"));
    db.query(
        "INSERT INTO orgs (id, name) VALUES ('org_after', 'After'); CREATE TABLE half_made (x)",
    );
    let before = db.dump_all();
    let journal = PathBuf::from(format!("{}-journal", lite.path().display()));
    for signal in ["-INT", "-KILL"] {
        let child = std_bin(db.dir())
            .env("DATABASE_URL", db.url())
            .args(["restore", file.to_str().unwrap(), "--yes"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_for("the restore to write", 30, || journal.exists());
        send(&child, signal);
        let r = Run::from(child.wait_with_output().unwrap());
        assert_ne!(r.code, 0, "it was stopped: {}", r.stderr);
        assert_eq!(db.dump_all(), before, "after {signal}");
    }
    db.run(&["restore", file.to_str().unwrap(), "--yes"])
        .expect_code(0);
    assert_eq!(
        db.query("SELECT count(*) FROM orgs WHERE id = 'org_after'"),
        "0"
    );
    assert!(!db.tables().contains(&"half_made".to_owned()));
}

/// While the real API holds connections: refused without --yes (the sessions named),
/// done with --yes (the report lists them).
#[test]
fn restore_is_refused_while_the_api_is_connected_and_done_with_yes() {
    let db = AnyDb::Pg(PgDb::new());
    seed(&db);
    let pg = db.as_pg();
    let file = backup(&db, &db.dir().join("bk"));
    db.query("INSERT INTO orgs (id, name) VALUES ('org_after', 'After')");
    let api = Api::start(pg, false);
    let (status, _) = api.post(
        "/v1/auth/login",
        serde_json::json!({"email": "o@a.example", "password": "not the password"}),
    );
    assert_eq!(status, 401, "a wrong password, answered from the database");
    let others = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                  AND pid <> pg_backend_pid() AND backend_type = 'client backend'";
    wait_for("the API's pooled connection", 20, || pg.psql(others) != "0");
    let before = db.dump_all();
    let r = db.run(&["restore", file.to_str().unwrap()]);
    r.expect_clean_error(4);
    assert!(r.stderr.contains("other session"), "{}", r.stderr);
    assert_eq!(db.dump_all(), before);
    let r = db.run(&[
        "restore",
        file.to_str().unwrap(),
        "--yes",
        "--format",
        "json",
    ]);
    r.expect_code(0);
    let j = r.json();
    assert!(!j["sessions"].as_array().unwrap().is_empty(), "{j}");
    assert_eq!(
        pg.psql("SELECT count(*) FROM orgs WHERE id = 'org_after'"),
        "0"
    );
    // The API works on the restored database.
    let (status, _) = api.post(
        "/v1/auth/login",
        serde_json::json!({"email": "o@a.example", "password": "not the password"}),
    );
    assert_eq!(status, 401, "the API answers from the restored database");
}

/// On a terminal the restore shows what it throws away and asks (default No): "n"
/// changes nothing, "y" restores.
#[test]
fn restore_asks_on_a_terminal() {
    let any = AnyDb::Lite(SqliteDb::new());
    seed(&any);
    let file = backup(&any, &any.dir().join("bk"));
    any.query("INSERT INTO orgs (id, name) VALUES ('org_after', 'After')");
    let before = any.dump_all();
    let args = format!("restore {}", file.display());
    let r = on_tty(any.as_lite(), &args, "n");
    assert_eq!(r.code, 4, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("Writes since the backup that the restore throws away"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("orgs: 2 in the backup, 3 now"),
        "{}",
        r.stdout
    );
    assert_eq!(any.dump_all(), before);
    let r = on_tty(any.as_lite(), &args, "y");
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(
        any.query("SELECT count(*) FROM orgs WHERE id = 'org_after'"),
        "0"
    );
}

/// Another ecomind-admin holding the migration lock: refused at once (exit 4),
/// nothing changed.
#[test]
fn restore_is_refused_while_the_migration_lock_is_held() {
    let any = AnyDb::Pg(PgDb::new());
    seed(&any);
    let db = any.as_pg();
    let file = backup(&any, &any.dir().join("bk"));
    any.query("INSERT INTO orgs (id, name) VALUES ('org_after', 'After')");
    let before = any.dump_all();
    let holder = Blocker::psql_txn(db, "SELECT pg_advisory_xact_lock(28538302875922020);");
    let r = any.run(&["restore", file.to_str().unwrap(), "--yes"]);
    r.expect_clean_error(4);
    assert!(
        r.stderr.contains("holds the migration lock"),
        "{}",
        r.stderr
    );
    drop(holder);
    assert_eq!(any.dump_all(), before);
}

/// SIGINT while pg_dump waits for a table: exit 130, pg_dump stopped, no partial file
/// and no manifest left.
#[test]
fn an_interrupted_backup_leaves_no_partial_file() {
    let any = AnyDb::Pg(PgDb::new());
    seed(&any);
    let db = any.as_pg();
    let dir = any.dir().join("bk");
    let r = interrupt_while_pg_dump_waits(db, &["backup", "--dir", dir.to_str().unwrap()]);
    assert_eq!(r.code, 130, "{}", r.stderr);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Through PgBouncer in transaction mode: `backup` says pg_dump's settings may linger
/// there; `backup verify` and `restore` work, and the restore's session settings do
/// not stay on the pool's server connections (the API's next transactions get them).
#[test]
fn backup_verify_and_restore_through_pgbouncer() {
    let db = AnyDb::Pg(PgDb::new());
    seed(&db);
    let pg = db.as_pg();
    let mut via = url::Url::parse(
        &std::env::var("ECOMIND_TEST_PGBOUNCER_URL")
            .expect("ECOMIND_TEST_PGBOUNCER_URL: run scripts/test.sh"),
    )
    .unwrap();
    via.set_path(&pg.name);
    let via = via.to_string();
    let dir = db.dir().join("bk");
    // Taken directly: pg_dump's own settings would stay on the pool's connections.
    let file = backup(&db, &dir);
    let r = pg.run_at(&via, &["backup", "verify", file.to_str().unwrap()]);
    r.expect_code(0);
    db.query("INSERT INTO orgs (id, name) VALUES ('org_after', 'After')");
    let r = pg.run_at(&via, &["restore", file.to_str().unwrap(), "--yes"]);
    r.expect_code(0);
    assert_eq!(
        pg.psql("SELECT count(*) FROM orgs WHERE id = 'org_after'"),
        "0"
    );
    // Every server connection of the pool at once (each client holds one through a
    // statement that sleeps): none kept the restore's emptied search_path.
    let clients: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new("psql")
                .args(["-X", "-qtA", "-c"])
                .arg("SELECT current_setting('search_path') || '|' || pg_sleep(1)")
                .arg(&via)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in clients {
        let out = c.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "\"$user\", public|",
            "no setting of the restore lingers"
        );
    }
    // A backup through the pooler works, and says what pg_dump leaves there.
    let r = pg.run_at(
        &via,
        &["backup", "--dir", db.dir().join("bk2").to_str().unwrap()],
    );
    r.expect_code(0);
    assert!(r.stderr.contains("a pooler or a proxy?"), "{}", r.stderr);
}
