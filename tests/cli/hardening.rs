//! Production surroundings: PgBouncer in transaction pooling, a hot standby, kill -9,
//! connection loss, TLS verify-full (set up by scripts/pg-extras.sh).

use std::process::{Child, Command, Stdio};

use crate::common::*;

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run scripts/test.sh, which sets it up"))
}

/// `base` (a URL to the postgres database) pointed at `db`.
fn at(base: &str, db: &str) -> String {
    let mut u = url::Url::parse(base).unwrap();
    u.set_path(db);
    u.to_string()
}

#[test]
fn pgbouncer_transaction_pooling_concurrent_migrations() {
    through_pgbouncer("ECOMIND_TEST_PGBOUNCER_URL");
}

#[test]
fn pgbouncer_session_pooling_concurrent_migrations() {
    through_pgbouncer("ECOMIND_TEST_PGBOUNCER_SESSION_URL");
}

/// 8 concurrent `migrate up`, verify-schema and the audit through a stock PgBouncer.
fn through_pgbouncer(url_env: &str) {
    let db = PgDb::new();
    let via = at(&env(url_env), &db.name);
    let children: Vec<Child> = (0..8)
        .map(|_| {
            db.std_cmd()
                .env("DATABASE_URL", &via)
                .args(["migrate", "up", "--format", "json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
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
    assert_eq!(steps, all_versions().len(), "each migration applied once");
    assert_eq!(db.versions(), all_versions());
    assert_eq!(db.psql(ADVISORY_LOCKS), "0", "no advisory lock left held");
    db.run_at(&via, &["verify-schema"]).expect_code(0);
    db.load(&reference("audit-fixture.sql"));
    let r = db.run_at(
        &via,
        &[
            "audit",
            "suspicious-accounts",
            "--since",
            "2026-10-10",
            "--format",
            "json",
        ],
    );
    r.expect_code(1);
    assert_eq!(r.json()["summary"]["critical"], 7);
}

#[test]
fn hot_standby_reads_work_and_writes_are_refused() {
    let standby = env("ECOMIND_TEST_STANDBY_URL");
    let managed = PgDb::new();
    managed.run(&["migrate", "up"]).expect_code(0);
    managed
        .run(&["create-org", "--name", "Acme", "--id", "org_0123456789ab"])
        .expect_code(0);
    let hand_made = PgDb::new();
    hand_made.load(&reference("ecomind-api-schema.sql"));
    let empty = PgDb::new();
    let on = |db: &PgDb| at(&standby, &db.name);
    // Wait for replication.
    wait_for("the standby to replay", 60, || {
        Command::new("psql")
            .args([
                "-X",
                "-qtA",
                "-c",
                "SELECT count(*) FROM orgs",
                &on(&managed),
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "1")
            .unwrap_or(false)
            && Command::new("psql")
                .args([
                    "-X",
                    "-qtA",
                    "-c",
                    "SELECT count(*) FROM users",
                    &on(&hand_made),
                ])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
            && Command::new("psql")
                .args(["-X", "-qtA", "-c", "SELECT 1", &on(&empty)])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
    });
    let url = on(&managed);
    managed
        .run_at(&url, &["migrate", "current", "--check"])
        .expect_code(0);
    managed.run_at(&url, &["migrate", "status"]).expect_code(0);
    managed
        .run_at(&url, &["verify-schema", "--strict"])
        .expect_code(0);
    managed
        .run_at(
            &url,
            &["audit", "suspicious-accounts", "--fail-on", "never"],
        )
        .expect_code(0);
    let r = hand_made.run_at(
        &on(&hand_made),
        &["baseline", "--dry-run", "--format", "json"],
    );
    r.expect_code(0);
    assert_eq!(r.json()["detected"]["alembic_revision"], "002");

    let writes: Vec<(&PgDb, Vec<&str>, &[u8])> = vec![
        (&empty, vec!["migrate", "up"], b""),
        (&managed, vec!["migrate", "down", "--yes"], b""),
        (&managed, vec!["create-org", "--name", "X"], b""),
        (
            &managed,
            vec![
                "create-admin",
                "--org",
                "org_0123456789ab",
                "--email",
                "a@b.example.com",
                "--password-stdin",
            ],
            b"correct horse battery staple\n",
        ),
        (&hand_made, vec!["baseline", "--yes"], b""),
        (&managed, vec!["baseline", "--undo", "--yes"], b""),
    ];
    for (db, args, stdin) in writes {
        let r = Run::from(
            db.cmd()
                .env("DATABASE_URL", on(db))
                .args(&args)
                .write_stdin(stdin.to_vec())
                .output()
                .unwrap(),
        );
        assert!(r.code == 3 || r.code == 4, "{args:?}: {}", r.all());
        r.expect_clean_error(r.code);
        assert!(r.stderr.contains("read-only"), "{args:?}: {}", r.stderr);
    }
    // A backup reads: it works on the standby (pg_dump in an exported snapshot there);
    // its proof needs a scratch database a standby cannot make (refused, pointing at
    // --scratch-url), and restoring it there is a write (refused).
    let dir = managed.dir.path().join("bk");
    let r = managed.run_at(
        &url,
        &["backup", "--dir", dir.to_str().unwrap(), "--format", "json"],
    );
    r.expect_code(0);
    let file = r.json()["path"].as_str().unwrap().to_owned();
    let r = managed.run_at(&url, &["backup", "verify", &file]);
    r.expect_clean_error(4);
    assert!(
        r.stderr.contains("hot standby") && r.stderr.contains("--scratch-url"),
        "{}",
        r.stderr
    );
    let scratch = PgDb::new();
    managed
        .run_at(
            &url,
            &["backup", "verify", &file, "--scratch-url", &scratch.url()],
        )
        .expect_code(0);
    let r = managed.run_at(&url, &["restore", &file, "--yes"]);
    r.expect_clean_error(r.code);
    assert!(r.code == 3 || r.code == 4, "{}", r.all());
    assert!(r.stderr.contains("read-only"), "{}", r.stderr);
}

/// Crash safety, deterministically: a test-build failpoint aborts `migrate up` (as
/// `kill -9` would) right after its Nth SQL statement, for every N in turn, on both
/// backends. After each crash the recorded version must be exactly the schema there
/// (nothing recorded: no API table; 001 or 002: verify-schema --strict clean against
/// it), and a rerun must complete.
#[test]
fn a_crash_after_any_statement_of_migrate_up_leaves_a_true_recorded_version() {
    for kind in AnyDb::both() {
        let known = ecomind_admin::migrations::known();
        let mut at = vec![0usize; known.len() + 1];
        let mut n = 1u64;
        loop {
            assert!(n < 500, "{}: migrate up never finished", kind.name());
            let db = kind.fresh_like();
            let r = Run::from(
                db.cmd()
                    .env("ECOMIND_FAILPOINT_ABORT_AFTER", n.to_string())
                    .args(["migrate", "up"])
                    .output()
                    .unwrap(),
            );
            if r.code == 0 {
                break; // fewer than n statements: the whole run
            }
            assert_eq!(
                r.code,
                -1,
                "{} N={n}: not aborted:\n{}",
                kind.name(),
                r.all()
            );
            let versions = db.versions();
            at[versions.len()] += 1;
            if versions.is_empty() {
                let mut t = db.tables();
                t.retain(|t| t != "seaql_migrations");
                assert!(
                    t.is_empty(),
                    "{} N={n}: no version but tables {t:?}",
                    kind.name()
                );
            } else {
                let against = known[versions.len() - 1].alembic_revision;
                let r = db.run(&["verify-schema", "--strict", "--against", against]);
                assert_eq!(
                    r.code,
                    0,
                    "{} N={n}: at {against} but:\n{}",
                    kind.name(),
                    r.stdout
                );
            }
            db.run(&["migrate", "up"]).expect_code(0);
            db.run(&["verify-schema", "--strict"]).expect_code(0);
            n += 1;
        }
        // The crashes landed before the first commit, after each migration's commit.
        assert!(
            at.iter().all(|&k| k > 0),
            "{}: crashes at no version / 001 / 002: {at:?}",
            kind.name()
        );
        eprintln!(
            "{}: {} statements; crashes by versions left recorded (0, 1, ...): {at:?}",
            kind.name(),
            n - 1,
        );
    }
}

/// Start `args`, wait until its backend waits on a lock, terminate that backend.
fn terminate_while_blocked(db: &PgDb, args: &[&str]) -> Run {
    let child = db.spawn(args);
    wait_for("the command to block", 30, || {
        db.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'ecomind-admin%' \
             AND wait_event_type = 'Lock' AND datname = current_database()",
        ) == "1"
    });
    db.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name LIKE 'ecomind-admin%' AND datname = current_database()",
    );
    Run::from(child.wait_with_output().unwrap())
}

#[test]
fn connection_loss_mid_command_is_one_error_and_nothing_half_applied() {
    let db = PgDb::new();
    db.run(&["migrate", "up", "--to", "001"]).expect_code(0);
    {
        let _blocker = Blocker::lock(&db, "users");
        let r = terminate_while_blocked(&db, &["migrate", "up", "--ddl-lock-timeout", "60s"]);
        r.expect_clean_error(3);
        assert!(
            r.stderr.contains("connection") || r.stderr.contains("terminat"),
            "{}",
            r.stderr
        );
        assert_eq!(db.versions(), vec![V1], "nothing half-applied");
    }
    db.run(&["migrate", "up"]).expect_code(0);
    assert_eq!(db.versions(), all_versions());

    db.load(&reference("audit-fixture.sql"));
    let before = db.dump_all();
    {
        let _blocker = Blocker::lock(&db, "audit_logs");
        let r = terminate_while_blocked(&db, &["audit", "suspicious-accounts"]);
        r.expect_clean_error(3);
    }
    assert_eq!(db.dump_all(), before);
}

#[test]
fn tls_verify_full_with_the_test_ca() {
    let db = PgDb::new();
    let ca = env("ECOMIND_TEST_CA");
    let pw = db.password();
    let good = format!(
        "postgres://postgres:{pw}@localhost:5432/{}?sslmode=verify-full&sslrootcert={ca}",
        db.name
    );
    let port = url::Url::parse(&db.url()).unwrap().port().unwrap_or(5432);
    let good = good.replace(":5432/", &format!(":{port}/"));
    let r = db.run_at(&good, &["migrate", "current", "--format", "json"]);
    r.expect_code(0);
    // The certificate names localhost only: 127.0.0.1 is another host.
    let bad = good.replace("@localhost:", "@127.0.0.1:");
    let r = db.run_at(&bad, &["migrate", "current"]);
    r.expect_clean_error(3);
    assert!(r.stderr.contains("TLS error"), "{}", r.stderr);
    assert!(!r.all().contains(&pw));
}
