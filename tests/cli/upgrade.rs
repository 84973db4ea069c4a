//! `upgrade` on both backends: from empty, from 001, from an Alembic-managed 001; drift
//! stops it before the backup; a failing migration stops it with a restore command that
//! works; the audit decides the exit; no password in the client tools' argv; no backup
//! is never implied.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

/// The backups in `db`'s default backup directory.
fn backups(db: &AnyDb) -> Vec<PathBuf> {
    let dir = db.dir().join("ecomind-backups");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    !name.starts_with('.') && !name.ends_with(".manifest.json")
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn step<'a>(j: &'a Value, name: &str) -> &'a Value {
    j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {j}"))
}

/// The restore command: a line of its own on stderr, starting with `prefix`.
fn restore_line(r: &Run, prefix: &str) -> String {
    r.stderr
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no restore line: {}", r.stderr))
        .to_owned()
}

fn upgrade(db: &AnyDb, extra: &[&str]) -> Run {
    let mut args = vec!["upgrade", "--format", "json"];
    args.extend_from_slice(extra);
    db.run(&args)
}

/// Some rows of every kind, at revision 001 (no password_hash).
fn seed_001(db: &AnyDb) {
    db.run(&["migrate", "up", "--to", V1]).expect_code(0);
    db.query(
        "INSERT INTO orgs (id, name) VALUES ('org_a', 'A'); \
         INSERT INTO users (id, org_id, email, role, created_at) VALUES \
           ('user_000000000001', 'org_a', 'o@a.example', 'owner', '2026-01-01 00:00:00'); \
         INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts) VALUES \
           ('audit_0000000000000001', 'org_a', 'user_000000000001', 'user_registered', 'authentication', \
            '{\"email\": \"o@a.example\", \"role\": \"owner\", \"created_by\": \"ecomind-admin\"}', '2026-01-01 00:00:00')",
    );
}

both! {
    /// From an empty database: every step runs, a checked backup is kept (mode 0600),
    /// the JSON report (also written by --report) says what happened; a second run is
    /// up to date and takes no backup.
    fn upgrade_from_empty_then_up_to_date(db) {
        let r = upgrade(&db, &["--yes", "--report", "report.json"]);
        r.expect_code(0);
        let j = r.json();
        assert_eq!(j["status"], "upgraded", "{j}");
        assert_eq!(j["from"], Value::Null);
        assert_eq!(j["to"]["alembic_revision"], head_revision());
        assert_eq!(j["applied"], serde_json::json!(all_revisions()));
        for s in ["pre-flight", "plan", "backup", "migrate", "verify", "audit"] {
            assert_eq!(step(&j, s)["result"], "ok", "{s}: {j}");
        }
        assert_eq!(db.versions(), all_versions());
        let files = backups(&db);
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(PathBuf::from(j["backup"]["path"].as_str().unwrap()), files[0].strip_prefix(db.dir()).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "the backup holds password hashes");
        }
        let written: Value = serde_json::from_str(&std::fs::read_to_string(db.dir().join("report.json")).unwrap()).unwrap();
        assert_eq!(written, j, "--report writes the same document");
        assert!(!j["plan"].as_array().unwrap().is_empty());

        let r = upgrade(&db, &["--yes"]);
        r.expect_code(0);
        let j = r.json();
        assert_eq!(j["status"], "up-to-date");
        assert_eq!(step(&j, "backup")["result"], "skipped");
        assert_eq!(step(&j, "verify")["result"], "ok");
        assert_eq!(backups(&db).len(), 1, "no second backup");
    }

    /// From 001 with rows: the backup holds them; the rows survive the upgrade.
    fn upgrade_from_001_keeps_the_rows_and_backs_them_up(db) {
        // --no-verify-backup: said in the step, and nothing else changes.
        let other = db.fresh_like();
        seed_001(&other);
        let r = upgrade(&other, &["--yes", "--no-verify-backup"]);
        r.expect_code(0);
        let detail = step(&r.json(), "backup")["detail"].as_str().unwrap().to_owned();
        assert!(detail.ends_with("not verified (--no-verify-backup)"), "{detail}");
        seed_001(&db);
        let r = upgrade(&db, &["--yes"]);
        r.expect_code(0);
        let j = r.json();
        assert_eq!(j["from"]["alembic_revision"], "001");
        assert_eq!(j["applied"], serde_json::json!(all_revisions()[1..]));
        assert_eq!(db.query("SELECT email FROM users"), "o@a.example");
        // The backup was proven by a restore into a scratch copy before migrating.
        let detail = step(&j, "backup")["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains("verified by a restore into a scratch copy"), "{detail}");
        let file = &backups(&db)[0];
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.contains("-001-"), "{name}");
        if db.is_postgres() {
            let toc = std::process::Command::new("pg_restore").arg("--list").arg(file).output().unwrap();
            assert!(String::from_utf8_lossy(&toc.stdout).contains("TABLE DATA public users"));
        } else {
            let copy = std::process::Command::new("sqlite3").arg(file).arg("SELECT email FROM users").output().unwrap();
            assert_eq!(String::from_utf8_lossy(&copy.stdout).trim(), "o@a.example");
        }
    }

    /// Drift stops the upgrade in pre-flight (exit 1): no backup, nothing applied.
    fn drift_stops_it_before_the_backup(db) {
        seed_001(&db);
        db.query("DROP INDEX ix_audit_logs_ts");
        let before = db.dump_all();
        let r = upgrade(&db, &["--yes"]);
        r.expect_code(1);
        assert!(r.stderr.contains("drifted"), "{}", r.stderr);
        assert!(!r.stderr.contains("the upgrade stopped"), "a refusal is one line: {}", r.stderr);
        assert_eq!(step(&r.json(), "pre-flight")["result"], "failed");
        assert!(backups(&db).is_empty());
        assert_eq!(db.dump_all(), before, "nothing changed");
        // --allow-drift: the upgrade goes on and says so at both checks.
        let r = upgrade(&db, &["--yes", "--allow-drift"]);
        r.expect_code(0);
        let j = r.json();
        assert_eq!(step(&j, "pre-flight")["result"], "warn", "{j}");
        assert_eq!(step(&j, "verify")["result"], "warn", "{j}");
        assert_eq!(db.versions(), all_versions());
    }

    /// Without a terminal and without --yes: exit 4 after the plan, nothing written (no
    /// backup either).
    fn no_yes_without_a_terminal_is_refused(db) {
        seed_001(&db);
        let before = db.dump_all();
        let r = upgrade(&db, &[]);
        r.expect_code(4);
        assert!(r.stderr.contains("without confirmation"), "{}", r.stderr);
        assert!(backups(&db).is_empty());
        assert_eq!(db.dump_all(), before);
    }

    /// A critical audit finding exits 1 under the default --fail-on (the upgrade itself
    /// is done); --fail-on never exits 0.
    fn a_critical_finding_exits_1(db) {
        seed_001(&db);
        db.query(
            "INSERT INTO users (id, org_id, email, role, created_at) VALUES \
             ('user_000000000002', 'org_a', 'rogue@a.example', 'admin', '2026-01-02 00:00:00')",
        );
        let r = upgrade(&db, &["--yes"]);
        r.expect_code(1);
        let j = r.json();
        assert_eq!(j["status"], "upgraded");
        assert_eq!(step(&j, "audit")["result"], "failed");
        assert!(j["audit"]["critical"].as_u64().unwrap() >= 1, "{j}");
        assert_eq!(db.versions(), all_versions());
        upgrade(&db, &["--yes", "--fail-on", "never"]).expect_code(0);
    }
}

/// An Alembic-managed database at 001 (the API's own fixture): upgraded, Alembic kept
/// in step.
#[test]
fn upgrade_an_alembic_managed_001() {
    let db = PgDb::new();
    db.load(&reference("ecomind-api-alembic-001.sql"));
    let r = db.run(&["upgrade", "--yes", "--format", "json"]);
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["from"]["alembic_revision"], "001", "{j}");
    assert_eq!(j["to"]["alembic_revision"], head_revision());
    assert_eq!(
        db.psql("SELECT version_num FROM alembic_version"),
        head_revision()
    );
    assert_eq!(db.versions(), all_versions());
    let migrate = step(&j, "migrate")["detail"].as_str().unwrap().to_owned();
    assert!(
        migrate.starts_with("adopted 001 (baseline); applied 002"),
        "{migrate}"
    );
}

/// A migration that cannot take its lock (a long transaction holds the table past the
/// DDL lock timeout) stops the upgrade at step migrate (exit 4) with the database at
/// the last recorded version, and prints a restore command that, run as printed,
/// brings back the pre-upgrade database exactly; a rerun reuses the backup.
#[test]
fn a_failing_migration_stops_with_a_restore_command_that_works() {
    let db = AnyDb::Pg(PgDb::new());
    let pg = db.as_pg();
    seed_001(&db);
    let before = pg.dump_all();
    let r = {
        // A long transaction that has read users: pg_dump may read it too, the
        // migration's ALTER TABLE users waits past --ddl-lock-timeout.
        let _reader = Blocker::psql_txn(pg, "SELECT count(*) FROM users;");
        upgrade(
            &db,
            &[
                "--yes",
                "--ddl-lock-timeout",
                "500ms",
                "--report",
                "report.json",
            ],
        )
    };
    r.expect_code(4);
    let j = r.json();
    assert_eq!(j["failed_step"], "migrate", "{j}");
    // The change record is the whole report (where it stopped, how to restore), as on
    // stdout: not replaced by the error.
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(pg.dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(kept, j);
    assert_eq!(step(&j, "backup")["result"], "ok");
    assert_eq!(pg.versions(), vec![V1], "at the last recorded version");
    assert!(
        r.stderr.contains("the upgrade stopped at step migrate"),
        "{}",
        r.stderr
    );
    // The restore command is a line of its own, runnable as printed (the database from
    // the same settings as this run), without the password.
    let cmd = restore_line(&r, "ecomind-admin restore ");
    assert!(!cmd.contains(&pg.password()), "{cmd}");
    assert_eq!(j["restore_command"], cmd.as_str());
    assert!(
        r.stderr.contains("no `migrate down` needed"),
        "{}",
        r.stderr
    );
    // Someone writes after the failure; the restore brings back the database as before.
    pg.psql("INSERT INTO orgs (id, name) VALUES ('org_later', 'Later')");
    run_restore_line(&cmd, pg.dir.path(), &pg.url());
    assert_eq!(pg.dump_all(), before, "the restore is exact");
    // The restore wrote to the database since the backup: the rerun takes a new one.
    let r = upgrade(&db, &["--yes"]);
    r.expect_code(0);
    assert_eq!(pg.versions(), all_versions());
    assert_eq!(backups(&db).len(), 2);
}

both! {
    /// A rerun after a failure that changed nothing reuses the backup.
    fn a_rerun_reuses_the_backup_when_nothing_changed(db) {
        seed_001(&db);
        let r = match &db {
            AnyDb::Pg(pg) => {
                let _reader = Blocker::psql_txn(pg, "SELECT count(*) FROM users;");
                upgrade(&db, &["--yes", "--ddl-lock-timeout", "500ms"])
            }
            AnyDb::Lite(lite) => {
                let _writer = Blocker::sqlite_writer(lite);
                upgrade(&db, &["--yes", "--lock-wait", "500ms"])
            }
        };
        r.expect_code(4);
        assert_eq!(db.versions(), vec![V1]);
        let first = backups(&db);
        assert_eq!(first.len(), 1);
        let r = upgrade(&db, &["--yes"]);
        r.expect_code(0);
        let detail = step(&r.json(), "backup")["detail"].as_str().unwrap().to_owned();
        assert!(detail.starts_with("reused"), "{detail}");
        assert_eq!(backups(&db), first, "no second backup");
        assert_eq!(db.versions(), all_versions());
    }
}

/// Run the printed `ecomind-admin restore FILE` line with `--yes` (this binary, the
/// database from DATABASE_URL as the run had it).
fn run_restore_line(cmd: &str, dir: &Path, url: &str) {
    let path = path_with_bin();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{cmd} --yes"))
        .current_dir(dir)
        .env("PATH", path)
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// On SQLite the restore command puts the copy back.
#[test]
fn sqlite_restore_command_puts_the_copy_back() {
    let db = AnyDb::Lite(SqliteDb::new());
    seed_001(&db);
    let lite = db.as_lite();
    let before = db.dump_all();
    let r = {
        let _writer = Blocker::sqlite_writer(lite);
        upgrade(&db, &["--yes", "--lock-wait", "500ms"])
    };
    r.expect_code(4);
    let cmd = restore_line(&r, "ecomind-admin restore ");
    db.query("INSERT INTO orgs (id, name) VALUES ('org_later', 'Later')");
    run_restore_line(&cmd, db.dir(), &lite.url());
    assert_eq!(db.dump_all(), before);
}

/// Shims for pg_dump and pg_restore that record their argv and environment, then run
/// the real tools.
fn recording_tools(dir: &Path) -> PathBuf {
    let bin = dir.join("shim-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["pg_dump", "pg_restore"] {
        let real = which(tool);
        let script = format!(
            "#!/bin/sh\n\
             printf '%s\\n' \"$0\" \"$@\" >> \"{log}/argv\"\n\
             cat /proc/$$/cmdline | tr '\\0' ' ' >> \"{log}/proc\"; echo >> \"{log}/proc\"\n\
             if [ -n \"$PGPASSFILE\" ]; then stat -c '%a %n' \"$PGPASSFILE\" >> \"{log}/passfile\"; fi\n\
             exec {real} \"$@\"\n",
            log = dir.display(),
            real = real.display()
        );
        write_executable(&bin.join(tool), &script);
    }
    bin
}

/// A shell script at `path`, executable.
fn write_executable(path: &Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, script).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn which(tool: &str) -> PathBuf {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The password reaches pg_dump through a 0600 passfile (removed after), never argv.
#[test]
fn no_password_in_the_client_tools_argv() {
    let any = AnyDb::Pg(PgDb::new());
    let db = any.as_pg();
    seed_001(&any);
    let bin = recording_tools(db.dir.path());
    let r = any.run(&["upgrade", "--yes", "--pg-bin-dir", bin.to_str().unwrap()]);
    r.expect_code(0);
    let argv = std::fs::read_to_string(db.dir.path().join("argv")).unwrap();
    let proc_ = std::fs::read_to_string(db.dir.path().join("proc")).unwrap();
    assert!(argv.contains("--format=custom"), "{argv}");
    assert!(
        !argv.contains(&db.password()),
        "the password is in argv: {argv}"
    );
    assert!(
        !proc_.contains(&db.password()),
        "the password is in /proc/PID/cmdline: {proc_}"
    );
    let passfiles = std::fs::read_to_string(db.dir.path().join("passfile")).unwrap();
    let (mode, path) = passfiles.lines().next().unwrap().split_once(' ').unwrap();
    assert_eq!(mode, "600", "{passfiles}");
    assert!(
        !Path::new(path).exists(),
        "the passfile {path} was left behind"
    );
}

/// No pg_dump to be found: the upgrade refuses in pre-flight (exit 4), it never skips
/// the backup by itself; --no-backup, given explicitly, upgrades without one.
#[test]
fn no_backup_is_never_implied() {
    let any = AnyDb::Pg(PgDb::new());
    seed_001(&any);
    let db = any.as_pg();
    let before = db.dump_all();
    let empty = db.dir.path().join("no-tools");
    std::fs::create_dir_all(&empty).unwrap();
    let r = any.run(&["upgrade", "--yes", "--pg-bin-dir", empty.to_str().unwrap()]);
    r.expect_clean_error(4);
    assert!(
        r.stderr.contains("pg_dump and pg_restore 15 or newer"),
        "{}",
        r.stderr
    );
    assert_eq!(db.dump_all(), before);
    // An older pg_dump than the server: refused, naming the version needed.
    let old = db.dir.path().join("old-tools");
    std::fs::create_dir_all(&old).unwrap();
    for tool in ["pg_dump", "pg_restore"] {
        write_executable(
            &old.join(tool),
            &format!("#!/bin/sh\necho '{tool} (PostgreSQL) 12.22'\n"),
        );
    }
    let r = any.run(&["upgrade", "--yes", "--pg-bin-dir", old.to_str().unwrap()]);
    r.expect_clean_error(4);
    assert!(
        r.stderr.contains("only older ones") && r.stderr.contains("(12)"),
        "{}",
        r.stderr
    );
    assert_eq!(db.dump_all(), before);

    let r = any.run(&["upgrade", "--yes", "--no-backup", "--format", "json"]);
    r.expect_code(0);
    assert_eq!(step(&r.json(), "backup")["detail"], "--no-backup");
    assert!(!db.dir.path().join("ecomind-backups").exists());
}

/// SIGINT while pg_dump waits for a table: pg_dump is stopped with us, the partial
/// backup removed, nothing applied, exit 130 and one line.
#[test]
fn sigint_during_the_backup_stops_pg_dump_and_applies_nothing() {
    let any = AnyDb::Pg(PgDb::new());
    seed_001(&any);
    let db = any.as_pg();
    let r = interrupt_while_pg_dump_waits(db, &["upgrade", "--yes"]);
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(r.stderr.contains("interrupted by SIGINT"), "{}", r.stderr);
    assert!(
        backups(&any).is_empty(),
        "a partial backup was left: {:?}",
        backups(&any)
    );
    assert_eq!(db.versions(), vec![V1]);
}

/// Another ecomind-admin holding the migration lock: the pre-flight refuses at once
/// (exit 4), nothing written.
#[test]
fn a_held_migration_lock_is_refused_in_pre_flight() {
    let any = AnyDb::Pg(PgDb::new());
    seed_001(&any);
    let db = any.as_pg();
    let before = db.dump_all();
    let holder = Blocker::psql_txn(db, "SELECT pg_advisory_xact_lock(28538302875922020);");
    let r = any.run(&["upgrade", "--yes"]);
    r.expect_clean_error(4);
    assert!(
        r.stderr.contains("holds the migration lock"),
        "{}",
        r.stderr
    );
    drop(holder);
    assert_eq!(db.dump_all(), before);
    assert!(backups(&any).is_empty());
}

/// On a terminal the plan is shown and asked (default No): "n" changes nothing.
#[test]
fn the_plan_is_asked_on_a_terminal() {
    let any = AnyDb::Lite(SqliteDb::new());
    seed_001(&any);
    let db = any.as_lite();
    let before = any.dump_all();
    let r = on_tty(db, "upgrade", "n");
    assert_eq!(r.code, 4, "{}", r.stdout);
    assert!(r.stdout.contains("Tables touched:"), "{}", r.stdout);
    assert!(
        r.stdout.contains("users (~1 row): ACCESS EXCLUSIVE"),
        "{}",
        r.stdout
    );
    assert_eq!(any.dump_all(), before);
    assert!(backups(&any).is_empty());
    let r = on_tty(db, "upgrade", "y");
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(any.versions(), all_versions());
}
