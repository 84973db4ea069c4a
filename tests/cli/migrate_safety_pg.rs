//! Concurrency, lock timeouts and crashes on PostgreSQL.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn has_password_hash(db: &PgDb) -> bool {
    db.psql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'password_hash'")
        == "1"
}

#[test]
fn blocked_migration_fails_after_ddl_lock_timeout_and_survives_kill_9() {
    let db = PgDb::new();
    db.run(&["migrate", "up", "--to", "001"]).expect_code(0);
    let blocker = Blocker::lock(&db, "users");

    // 1. lock_timeout: exit 4, version unchanged.
    let r = db.run(&["migrate", "up", "--ddl-lock-timeout", "1s"]);
    r.expect_clean_error(4);
    assert!(r.stderr.contains("lock"), "{}", r.stderr);
    assert_eq!(db.versions(), vec![V1]);
    assert!(!has_password_hash(&db));

    // 2. kill -9 while blocked: version unchanged.
    let mut child = db
        .std_cmd()
        .args(["migrate", "up", "--ddl-lock-timeout", "120s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let waiting = db.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'ecomind-admin%' \
             AND wait_event_type = 'Lock' AND datname = current_database()",
        );
        if waiting == "1" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "migration never blocked"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(db.versions(), vec![V1]);
    assert!(!has_password_hash(&db));

    // 3. Release the lock; the killed run's orphaned transaction can never commit.
    drop(blocker);
    let r = db.run(&["migrate", "up"]);
    r.expect_code(0);
    assert_eq!(db.versions(), all_versions());
    assert!(has_password_hash(&db));
}

#[test]
fn lock_wait_times_out_with_exit_4_when_another_run_holds_the_lock() {
    let db = PgDb::new();
    // Hold the migration lock from another session.
    let mut holder = Command::new("psql")
        .arg("-X")
        .arg("-q")
        .arg(db.url())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let key = 0x0065_636f_6d69_6e64_i64;
    writeln!(
        holder.stdin.as_mut().unwrap(),
        "BEGIN; SELECT pg_advisory_xact_lock({key});"
    )
    .unwrap();
    let start = Instant::now();
    while db.psql(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    ) != "1"
    {
        assert!(start.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = db.run(&["migrate", "up", "--lock-wait", "1s"]);
    r.expect_clean_error(4);
    assert!(r.stderr.contains("migration lock"), "{}", r.stderr);
    assert!(
        db.tables().is_empty(),
        "nothing may be created: {:?}",
        db.tables()
    );
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test]
fn read_only_role_cannot_migrate_but_can_read_status() {
    let db = PgDb::new();
    let role = format!("ro_{}", db.name);
    db.psql(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'ro-pass-123'; \
         ALTER ROLE {role} SET default_transaction_read_only = on; \
         GRANT ALL ON SCHEMA public TO {role}"
    ));
    let url = db.url_as(&role, "ro-pass-123");
    let run = |args: &[&str]| {
        Run::from(
            db.cmd()
                .env("DATABASE_URL", &url)
                .args(args)
                .output()
                .unwrap(),
        )
    };
    let r = run(&["migrate", "up"]);
    r.expect_clean_error(3);
    assert!(r.stderr.contains("read-only"), "{}", r.stderr);
    assert!(!r.all().contains("ro-pass-123"));
    assert!(db.tables().is_empty());
    run(&["migrate", "status"]).expect_code(0);
    run(&["migrate", "current"]).expect_code(0);
    run(&["migrate", "up", "--dry-run"]).expect_code(0);
    db.psql(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}
