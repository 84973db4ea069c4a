//! Fleet runs: one command over every database of an environment (20 PostgreSQL
//! databases, 2 SQLite files, one unreachable URL, one drifted database), the summary,
//! the JSON, the exit code, `--canary`, `--fail-fast`.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

/// A config file whose environment `f` lists `urls` (in a 0600 list file: the test
/// URLs carry a password).
fn fleet_file(dir: &Path, urls: &[String], parallel: u32) {
    use std::os::unix::fs::PermissionsExt;
    let list = dir.join("fleet.txt");
    std::fs::write(&list, urls.join("\n") + "\n").unwrap();
    std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        dir.join("ecomind-admin.toml"),
        format!("[environments.f]\nurls_file = \"fleet.txt\"\nparallel = {parallel}\n"),
    )
    .unwrap();
}

fn fleet(dir: &Path, args: &[&str]) -> Run {
    let mut c = assert_cmd::Command::cargo_bin("ecomind-admin").unwrap();
    c.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .args(["--env", "f", "--connect-timeout", "1s"])
        .args(args);
    Run::from(c.output().unwrap())
}

/// A URL nothing listens on.
const UNREACHABLE: &str = "postgres://nobody@127.0.0.1:1/nothing";

fn results(j: &Value) -> Vec<(String, String)> {
    j["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["database"].as_str().unwrap().to_owned(),
                format!(
                    "{} {}",
                    d["result"].as_str().unwrap(),
                    d["exit_code"]
                        .as_u64()
                        .map(|c| c.to_string())
                        .unwrap_or("-".into())
                ),
            )
        })
        .collect()
}

#[test]
fn a_fleet_runs_every_database_and_reports_each() {
    let dir = tempfile::tempdir().unwrap();
    let pgs: Vec<PgDb> = (0..20).map(|_| PgDb::new()).collect();
    let drifted = &pgs[7];
    let mut urls: Vec<String> = pgs.iter().map(PgDb::url).collect();
    urls.insert(3, UNREACHABLE.to_owned());
    urls.push("sqlite://one.db?mode=rwc".into());
    urls.push("sqlite://two.db?mode=rwc".into());
    fleet_file(dir.path(), &urls, 8);

    let r = fleet(dir.path(), &["migrate", "up", "--format", "json"]);
    assert_eq!(r.code, 3, "the unreachable database's code: {}", r.stderr);
    let j = r.json();
    assert_eq!(j["ok"], 22, "{j}");
    assert_eq!(j["failed"], 1);
    assert_eq!(j["exit_code"], 3);
    let res = results(&j);
    assert_eq!(res.len(), 23);
    assert_eq!(res[3], (UNREACHABLE.to_owned(), "failed 3".to_owned()));
    for (db, got) in res.iter().filter(|(d, _)| d != UNREACHABLE) {
        assert_eq!(got, "ok 0", "{db}");
        assert!(
            !db.contains(&pgs[0].password()),
            "a password in the summary: {db}"
        );
    }
    for pg in &pgs {
        assert_eq!(pg.versions(), all_versions());
    }
    assert!(dir.path().join("one.db").exists() && dir.path().join("two.db").exists());
    assert!(!r.all().contains(&pgs[0].password()));

    // One database drifts: verify-schema names it (exit 1), the unreachable one is 3.
    drifted.psql("DROP INDEX ix_audit_logs_ts");
    let r = fleet(dir.path(), &["verify-schema"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stdout.contains("FAILED (1)") && r.stdout.contains("FAILED (3)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("21 ok, 2 failed, 0 skipped"),
        "{}",
        r.stdout
    );
    let r = fleet(dir.path(), &["verify-schema", "--format", "json"]);
    let j = r.json();
    let drift = &j["databases"][8];
    assert_eq!(drift["exit_code"], 1, "{drift}");
    assert_eq!(
        drift["report"]["findings"][0]["kind"], "index_missing",
        "{drift}"
    );
}

/// `--canary 1` with a failing first database touches no other; `--fail-fast` starts
/// nothing after the first failure. Databases not started are listed as skipped.
#[test]
fn canary_and_fail_fast_stop_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let pgs: Vec<PgDb> = (0..3).map(|_| PgDb::new()).collect();
    let mut urls = vec![UNREACHABLE.to_owned()];
    urls.extend(pgs.iter().map(PgDb::url));
    fleet_file(dir.path(), &urls, 4);
    let r = fleet(
        dir.path(),
        &["migrate", "up", "--canary", "1", "--format", "json"],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    let j = r.json();
    assert_eq!(
        (j["ok"].clone(), j["failed"].clone(), j["skipped"].clone()),
        (0.into(), 1.into(), 3.into()),
        "{j}"
    );
    for pg in &pgs {
        assert!(
            pg.tables().is_empty(),
            "the canary failed, yet {} was migrated",
            pg.name
        );
    }
    let r = fleet(
        dir.path(),
        &[
            "migrate",
            "up",
            "--parallel",
            "1",
            "--fail-fast",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 3);
    assert_eq!(r.json()["skipped"], 3, "{}", r.stdout);
    for pg in &pgs {
        assert!(pg.tables().is_empty());
    }
    // Without them, the others run although the first fails.
    let r = fleet(
        dir.path(),
        &["migrate", "up", "--canary", "2", "--format", "json"],
    );
    assert_eq!(r.code, 3);
    assert_eq!(r.json()["skipped"], 2, "the canary of two had a failure");
    let r = fleet(dir.path(), &["migrate", "up", "--format", "json"]);
    assert_eq!(r.json()["ok"], 3);
    for pg in &pgs {
        assert_eq!(pg.versions(), all_versions());
    }
    // A command that runs on one database only is refused for a fleet, and so is CSV.
    let r = fleet(dir.path(), &["users", "list"]);
    r.expect_clean_error(2);
    let r = fleet(
        dir.path(),
        &["audit", "suspicious-accounts", "--format", "csv"],
    );
    r.expect_clean_error(2);
    assert!(
        r.stderr.contains("--format csv is for one database"),
        "{}",
        r.stderr
    );
}

/// `migrate status` on a fleet: a database behind this build's head makes it exit 1,
/// naming it; all at head: exit 0.
#[test]
fn fleet_status_is_a_version_skew_gate() {
    let dir = tempfile::tempdir().unwrap();
    let pgs: Vec<PgDb> = (0..3).map(|_| PgDb::new()).collect();
    fleet_file(
        dir.path(),
        &pgs.iter().map(PgDb::url).collect::<Vec<_>>(),
        4,
    );
    fleet(dir.path(), &["migrate", "up", "-q"]).expect_code(0);
    fleet(dir.path(), &["migrate", "status"]).expect_code(0);
    pgs[1]
        .run(&["migrate", "down", "--to", "001", "--yes", "-q"])
        .expect_code(0);
    let r = fleet(dir.path(), &["migrate", "status", "--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["databases"][1]["to"], "001", "{j}");
    assert!(
        j["databases"][1]["error"]
            .as_str()
            .unwrap()
            .contains(&format!("behind this build's head {}", head_revision())),
        "{j}"
    );
    assert_eq!(j["databases"][0]["error"], Value::Null);
    let r = fleet(dir.path(), &["migrate", "status"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains(&format!(
            "behind this build's head {} (at 001)",
            head_revision()
        )),
        "{}",
        r.stdout
    );
}

/// `--format jsonl`: one line per database as it finishes, the skipped ones, then a
/// summary line; every line is a JSON document.
#[test]
fn jsonl_is_a_line_per_database_then_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let pgs: Vec<PgDb> = (0..4).map(|_| PgDb::new()).collect();
    let mut urls: Vec<String> = pgs.iter().map(PgDb::url).collect();
    urls.insert(0, UNREACHABLE.to_owned());
    fleet_file(dir.path(), &urls, 2);
    let r = fleet(dir.path(), &["migrate", "up", "--format", "jsonl"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 6, "{}", r.stdout);
    let mut dbs: Vec<&str> = lines[..5]
        .iter()
        .map(|l| l["database"].as_str().unwrap())
        .collect();
    dbs.sort();
    let mut want: Vec<String> = urls
        .iter()
        .map(|u| u.replace(&pgs[0].password(), "***"))
        .collect();
    want.sort();
    assert_eq!(dbs, want.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(lines[5]["summary"]["ok"], 4, "{}", r.stdout);
    assert_eq!(lines[5]["summary"]["exit_code"], 3);
}

/// SIGTERM mid-fleet: no new database starts, the running ones' statements are
/// cancelled, the summary still comes, exit 143, and every database is at a recorded
/// version.
#[test]
fn sigterm_mid_fleet_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let pgs: Vec<PgDb> = (0..6).map(|_| PgDb::new()).collect();
    for pg in &pgs {
        pg.run(&["migrate", "up", "--to", V1, "-q"]).expect_code(0);
    }
    fleet_file(
        dir.path(),
        &pgs.iter().map(PgDb::url).collect::<Vec<_>>(),
        2,
    );
    // The first two wait on a lock held elsewhere, so the run is mid-fleet.
    let _held: Vec<Blocker> = pgs[..2]
        .iter()
        .map(|pg| Blocker::lock(pg, "users"))
        .collect();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ecomind-admin"))
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .args([
            "--env",
            "f",
            "migrate",
            "up",
            "--ddl-lock-timeout",
            "60s",
            "--format",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiting = |pg: &PgDb| {
        pg.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name LIKE 'ecomind-admin%' AND wait_event_type = 'Lock'",
        ) == "1"
    };
    wait_for("both running databases to wait", 20, || {
        pgs[..2].iter().all(waiting)
    });
    send(&child, "-TERM");
    let r = Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 143, "{}", r.stderr);
    assert!(r.stderr.contains("interrupted by SIGTERM"), "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["skipped"], 4, "{j}");
    assert_eq!(j["failed"], 2, "{j}");
    for pg in &pgs {
        assert_eq!(
            pg.versions(),
            vec![V1],
            "{} is at a recorded version",
            pg.name
        );
    }
}

/// `--database-url` given twice is a fleet of those two.
#[test]
fn database_url_twice_is_a_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = assert_cmd::Command::cargo_bin("ecomind-admin").unwrap();
    c.current_dir(dir.path()).env_remove("DATABASE_URL").args([
        "--database-url",
        "sqlite://one.db?mode=rwc",
        "--database-url",
        "sqlite://two.db?mode=rwc",
        "migrate",
        "up",
        "--format",
        "json",
    ]);
    let r = Run::from(c.output().unwrap());
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["environment"], "--database-url");
    assert_eq!(j["ok"], 2, "{j}");
    assert!(dir.path().join("one.db").exists() && dir.path().join("two.db").exists());
}

/// On a terminal, a line per running database while it runs, then the summary.
#[test]
fn a_terminal_shows_a_line_per_running_database() {
    let lite = SqliteDb::new();
    let pgs: Vec<PgDb> = (0..2).map(|_| PgDb::new()).collect();
    for pg in &pgs {
        pg.run(&["migrate", "up", "--to", V1, "-q"]).expect_code(0);
    }
    let blocker = Blocker::lock(&pgs[0], "users");
    let args = format!(
        "--database-url {} --database-url {} migrate up --ddl-lock-timeout 60s",
        pgs[0].url(),
        pgs[1].url()
    );
    let mut tty = Tty::spawn(&lite, &args);
    tty.expect(&format!("{}: running", pgs[0].name));
    drop(blocker);
    tty.expect("2 ok, 0 failed, 0 skipped");
    let r = tty.finish();
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(!r.stdout.contains(&pgs[0].password()), "{}", r.stdout);
}

/// `migrate up --canary 1`: the canary migrates, but fails verify-schema afterwards (it
/// had drifted): the rest of the fleet does not start.
#[test]
fn a_canary_that_does_not_verify_stops_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let pgs: Vec<PgDb> = (0..3).map(|_| PgDb::new()).collect();
    for pg in &pgs {
        pg.run(&["migrate", "up", "--to", V1, "-q"]).expect_code(0);
    }
    pgs[0].psql("DROP INDEX ix_audit_logs_ts");
    fleet_file(
        dir.path(),
        &pgs.iter().map(PgDb::url).collect::<Vec<_>>(),
        4,
    );
    let r = fleet(
        dir.path(),
        &["migrate", "up", "--canary", "1", "--format", "json"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["skipped"], 2, "{j}");
    let canary = &j["databases"][0];
    assert_eq!(canary["result"], "failed", "{canary}");
    assert!(
        canary["error"]
            .as_str()
            .unwrap()
            .contains("verify-schema after migrate up"),
        "{canary}"
    );
    assert_eq!(pgs[0].versions(), all_versions(), "the canary ran");
    for pg in &pgs[1..] {
        assert_eq!(pg.versions(), vec![V1], "{} was touched", pg.name);
    }
}

/// `upgrade` on a fleet: each database's typed result. One that upgrades says from and
/// to; one whose pre-flight refuses (drift) fails with the step, its report, and the
/// version it is still at, and its exit code decides the fleet's.
#[test]
fn fleet_upgrade_reports_each_database_typed() {
    let dir = tempfile::tempdir().unwrap();
    let pgs: Vec<PgDb> = (0..2).map(|_| PgDb::new()).collect();
    fleet_file(
        dir.path(),
        &pgs.iter().map(PgDb::url).collect::<Vec<_>>(),
        2,
    );
    pgs[1].run(&["migrate", "up", "-q"]).expect_code(0);
    pgs[1].psql("DROP INDEX ix_audit_logs_ts");
    let r = fleet(
        dir.path(),
        &["upgrade", "--yes", "--no-backup", "--format", "json"],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    let (ok, failed) = (&j["databases"][0], &j["databases"][1]);
    assert_eq!(ok["result"], "ok", "{j}");
    assert_eq!(ok["from"], "none", "{j}");
    assert_eq!(ok["to"], head_revision(), "{j}");
    assert_eq!(ok["report"]["status"], "upgraded", "{j}");
    assert_eq!(failed["result"], "failed", "{j}");
    assert_eq!(failed["exit_code"], 1, "{j}");
    assert_eq!(failed["to"], head_revision(), "{j}");
    assert_eq!(failed["report"]["failed_step"], "pre-flight", "{j}");
    assert!(failed["error"].as_str().unwrap().contains("drifted"), "{j}");
    // Nothing was written to the drifted database.
    assert_eq!(
        pgs[1].psql("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_audit_logs_ts'"),
        "0"
    );
}
