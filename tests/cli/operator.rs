//! Operator experience: `doctor` and `man`.

use std::io::Write;
use std::process::{Command, Stdio};

use clap::CommandFactory;
use ecomind_admin::cli::Cli;

use crate::common::*;

fn doctor(db: &PgDb, url: Option<&str>) -> Run {
    let mut cmd = db.cmd();
    if let Some(u) = url {
        cmd.env("DATABASE_URL", u);
    }
    Run::from(cmd.args(["doctor", "--format", "json"]).output().unwrap())
}

fn status_of(r: &Run, check: &str) -> String {
    r.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .map(|c| c["status"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no check {check}: {}", r.stdout))
}

#[test]
fn doctor_on_a_healthy_database() {
    let db = PgDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let r = doctor(&db, None);
    r.expect_code(0);
    assert_eq!(r.json()["status"], "ready");
    for c in ["writable", "migrations", "schema", "privileges", "audit"] {
        assert_eq!(status_of(&r, c), "ok", "{c}: {}", r.stdout);
    }
    let j = r.json();
    let conn = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "connection")
        .unwrap()
        .clone();
    assert!(
        conn["details"]["server_version"]
            .as_str()
            .unwrap()
            .starts_with("15")
    );
    assert!(conn["details"]["url"].as_str().unwrap().contains(":***@"));
    let human = db.run(&["doctor"]);
    human.expect_code(0);
    assert!(human.stdout.contains("READY"), "{}", human.stdout);
}

#[test]
fn doctor_with_pending_migrations_is_ready_but_says_so() {
    let db = PgDb::new();
    db.run(&["migrate", "up", "--to", "001"]).expect_code(0);
    let r = doctor(&db, None);
    r.expect_code(0);
    assert_eq!(status_of(&r, "migrations"), "warn");
    let j = r.json();
    let pending = &j["checks"].as_array().unwrap()[2]["details"]["pending"];
    assert_eq!(pending[0], V2);
}

#[test]
fn doctor_blocks_on_drift() {
    let db = PgDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    db.psql("DROP INDEX ix_events_org_ts");
    let r = doctor(&db, None);
    r.expect_code(1);
    assert_eq!(status_of(&r, "schema"), "fail");
    assert_eq!(r.json()["status"], "blocked");
    let human = db.run(&["doctor"]);
    assert!(
        human.stdout.contains("BLOCKED by: schema"),
        "{}",
        human.stdout
    );
}

#[test]
fn doctor_blocks_a_role_that_cannot_migrate() {
    let db = PgDb::new();
    db.run(&["migrate", "up", "--to", "001"]).expect_code(0);
    let role = format!("reader_{}", db.name);
    db.psql(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'reader-pw-1'; \
         REVOKE CREATE ON SCHEMA public FROM PUBLIC; \
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"
    ));
    let before = db.dump_all();
    let r = doctor(&db, Some(&db.url_as(&role, "reader-pw-1")));
    r.expect_code(1);
    assert_eq!(status_of(&r, "privileges"), "fail", "{}", r.stdout);
    let j = r.json();
    let details = &j["checks"].as_array().unwrap()[4]["details"];
    assert_eq!(details["migrate"], false);
    assert_eq!(details["create-org"], false);
    assert_eq!(details["audit"], true);
    assert!(!r.all().contains("reader-pw-1"));
    assert_eq!(db.dump_all(), before, "doctor writes nothing");
    db.psql(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

/// Every subcommand path, e.g. "ECOMIND-ADMIN MIGRATE UP".
fn subcommand_titles(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("{path} {}", sub.get_name());
        out.push(name.to_uppercase());
        subcommand_titles(sub, &name, out);
    }
}

#[test]
fn man_page_renders_and_names_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let r = Run::from(bin(dir.path()).arg("man").output().unwrap());
    r.expect_code(0);
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH ecomind-admin 1"),
        "not roff"
    );
    let mut groff = Command::new("groff")
        .args(["-man", "-Tascii", "-P-bcou", "-ww"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("groff runs (scripts/test.sh installs groff-base)");
    groff
        .stdin
        .take()
        .unwrap()
        .write_all(r.stdout.as_bytes())
        .unwrap();
    let out = groff.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "groff: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        String::from_utf8_lossy(&out.stderr).trim().is_empty(),
        "groff warnings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut titles = Vec::new();
    subcommand_titles(&Cli::command(), "ecomind-admin", &mut titles);
    assert!(titles.len() >= 12, "{titles:?}");
    for t in titles {
        assert!(text.contains(&t), "the man page does not name {t}");
    }
    assert!(text.contains("Exit codes"), "exit codes missing");
}
