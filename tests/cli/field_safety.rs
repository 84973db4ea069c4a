//! Field safety (issue 11): hostile rows never reach the terminal raw, CSV cells are
//! neutralized, closed pipes and full disks, secrets in driver logs.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common::*;

const ESC_TITLE_EMAIL: &str = "v@x.com\u{1b}]0;owned\u{7}\u{1b}[32mall clear\r";
const ERASE_ORG_NAME: &str = "Evil\u{1b}[1A\u{1b}[2K\rCorp\u{8}\u{7f}\u{9b}31m";
const BIDI_EMAIL: &str = "admin\u{202e}moc.evil\u{2066}@x.com";
const FAKE_COLUMN: &str = "c\nfake: PASSED";
const FORMULAS: [&str; 6] = [
    "=HYPERLINK(\"http://evil.example/\")@x.com",
    "+cmd@x.com",
    "-2+3@x.com",
    "@SUM(A1)@x.com",
    "\tx@x.com",
    "\rcr@x.com",
];

/// SQL that seeds hostile values into a migrated database (the same text on both
/// backends: control characters sit raw inside the literals).
fn hostile_seed() -> String {
    let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut sql = String::new();
    sql.push_str(&format!(
        "INSERT INTO orgs (id, name, plan, created_at) VALUES ('org_evil', {}, 'free', '2026-09-01 00:00:00');\n",
        q(ERASE_ORG_NAME)
    ));
    let mut emails = vec![ESC_TITLE_EMAIL.to_owned(), BIDI_EMAIL.to_owned()];
    emails.extend(FORMULAS.iter().map(|s| s.to_string()));
    // A case variant of the first, for case-variant-email's evidence.
    emails.push(ESC_TITLE_EMAIL.to_uppercase());
    for (i, e) in emails.iter().enumerate() {
        sql.push_str(&format!(
            "INSERT INTO users (id, org_id, email, name, role, created_at, password_hash) VALUES \
             ('user_evil{i:07}', 'org_evil', {}, {}, 'admin', '2026-09-02 00:00:00', NULL);\n",
            q(e),
            q(ERASE_ORG_NAME)
        ));
    }
    for i in 0..12 {
        sql.push_str(&format!(
            "INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts) VALUES \
             ('audit_evil{i:012}', 'org_evil', NULL, 'login_failed', 'authentication', {}, '2026-09-03 00:00:{i:02}');\n",
            q(&serde_json::json!({"email": FORMULAS[0], "reason": "bad\u{1b}[2Jpw\u{202e}"}).to_string())
        ));
    }
    sql.push_str(&format!(
        "ALTER TABLE users ADD COLUMN \"{FAKE_COLUMN}\" VARCHAR;\n"
    ));
    sql
}

/// No byte that a terminal acts on: C0 but LF, DEL, C1, bidi controls.
#[track_caller]
fn assert_terminal_safe(r: &Run, what: &str) {
    for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        if let Some(c) = text.chars().find(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        }) {
            panic!("{what}: raw {c:?} on {stream}:\n{text}");
        }
    }
}

/// With colors forced on, only our own color sequences: never a hostile one.
#[track_caller]
fn assert_only_our_colors(r: &Run, what: &str) {
    for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        for bad in [
            "\u{1b}]",
            "\u{1b}[1A",
            "\u{1b}[2K",
            "\u{1b}[2J",
            "\u{1b}[32mall clear",
            "\r",
            "\u{7}",
            "\u{202e}",
        ] {
            assert!(!text.contains(bad), "{what}: {bad:?} on {stream}:\n{text}");
        }
    }
}

fn hostile_commands() -> Vec<(Vec<&'static str>, &'static [i32])> {
    let since = "2000-01-01";
    vec![
        (vec!["audit", "suspicious-accounts", "--since", since], &[1]),
        (
            vec![
                "audit",
                "suspicious-accounts",
                "--since",
                since,
                "--format",
                "csv",
            ],
            &[1],
        ),
        (vec!["verify-schema"], &[0]),
        (vec!["verify-schema", "--show-fix", "--strict"], &[1]),
        (vec!["migrate", "status"], &[0]),
        (vec!["migrate", "current"], &[0]),
        (vec!["migrate", "up", "--dry-run"], &[0]),
        (vec!["doctor"], &[1]),
        (vec!["baseline", "--dry-run"], &[4]),
        (
            vec![
                "create-org",
                "--if-not-exists",
                "--id",
                "org_evil",
                "--name",
                "Other",
            ],
            &[4],
        ),
        (
            vec!["create-org", "--name", "Name\u{1b}]0;t\u{7}\u{202e}x\rOK"],
            &[0],
        ),
        (
            vec![
                "create-admin",
                "--org",
                "org_evil",
                "--email",
                "admin\u{202e}x@x.com",
                "--password-stdin",
                "--bcrypt-cost",
                "4",
            ],
            &[2],
        ),
        (
            vec![
                "create-admin",
                "--org",
                "org_evil\u{1b}[2J",
                "--email",
                "a@x.com",
                "--password-stdin",
            ],
            &[4],
        ),
    ]
}

/// Migrate, plant [`hostile_seed`] with `sql`, and run every command that prints it;
/// then record a hostile migration version and run the commands that print it.
fn run_hostile(cmd: &dyn Fn() -> assert_cmd::Command, sql: &dyn Fn(&str)) {
    let run = |args: &[&str], color: bool| {
        let mut c = cmd();
        if color {
            c.env_remove("NO_COLOR").arg("--color").arg("always");
        }
        Run::from(
            c.args(args)
                .write_stdin("a strong password 1\n")
                .output()
                .unwrap(),
        )
    };
    run(&["migrate", "up"], false).expect_code(0);
    sql(&hostile_seed());
    // JSON stays exact.
    let r = run(
        &[
            "audit",
            "suspicious-accounts",
            "--since",
            "2000-01-01",
            "--format",
            "json",
        ],
        false,
    );
    r.expect_code(1);
    let emails: Vec<String> = r.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["email"].as_str().map(str::to_owned))
        .collect();
    assert!(emails.iter().any(|e| e == ESC_TITLE_EMAIL), "{emails:?}");
    assert!(emails.iter().any(|e| e == BIDI_EMAIL), "{emails:?}");
    // The table shows the escapes visibly.
    let r = run(
        &["audit", "suspicious-accounts", "--since", "2000-01-01"],
        false,
    );
    assert!(
        r.stdout
            .contains("v@x.com\\u{1b}]0;owned\\u{7}\\u{1b}[32mall clear\\r"),
        "{}",
        r.stdout
    );
    let r = run(&["verify-schema"], false);
    assert!(
        !r.stdout.lines().any(|l| l.starts_with("fake: PASSED")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("c\\nfake: PASSED"), "{}", r.stdout);
    let mut commands = hostile_commands();
    commands.push((vec!["__plant_version"], &[]));
    // With a migration this build does not know recorded: status warns and exits 1,
    // current warns, verify-schema and baseline refuse, doctor is blocked.
    for (args, code) in [
        (vec!["migrate", "status"], &[1]),
        (vec!["migrate", "current"], &[0]),
        (vec!["verify-schema"], &[4]),
        (vec!["doctor"], &[1]),
        (vec!["baseline", "--dry-run"], &[4]),
    ] {
        commands.push((args, code));
    }
    for (args, codes) in commands {
        if args == ["__plant_version"] {
            sql(
                "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m_evil\u{1b}[2J\rX', 0)",
            );
            continue;
        }
        let r = run(&args, false);
        assert!(
            codes.contains(&r.code),
            "{args:?}: exit {} not in {codes:?}\n{}",
            r.code,
            r.all()
        );
        if args.contains(&"csv") {
            // CSV piped is for machines: exact values (issue 25 item 13), formula-safe,
            // evidence as valid JSON; a terminal reading it gets it escaped (tested in
            // field_safety2).
            let piped_csv = Run {
                code: r.code,
                stdout: String::new(),
                stderr: r.stderr.clone(),
            };
            assert_terminal_safe(&piped_csv, &format!("{args:?}"));
            check_csv_with_python(&r.stdout);
        } else {
            assert_terminal_safe(&r, &format!("{args:?}"));
        }
        let mut colored = run(&args, true);
        if args.contains(&"csv") {
            colored.stdout.clear();
        }
        assert_only_our_colors(&colored, &format!("{args:?} --color always"));
    }
}

/// Every cell of the CSV, read by Python's csv module: no formula start; the evidence
/// column valid JSON with nothing a terminal acts on; the hostile emails exact.
fn check_csv_with_python(csv: &str) {
    let script = r#"
import csv, sys, json, unicodedata
rows = list(csv.reader(sys.stdin))
assert len(rows) > 1, rows
assert rows[0][-1] == 'evidence', rows[0]
n = 0
emails = set()
for row in rows:
    for cell in row:
        n += 1
        assert not cell[:1] in ('=', '+', '-', '@', '\t', '\r'), repr(cell)
    if row is rows[0]:
        continue
    emails.add(row[4])
    json.loads(row[-1])
    for ch in row[-1]:
        assert not (unicodedata.category(ch) == 'Cc'), repr(row[-1])
        assert not ('\u202a' <= ch <= '\u202e' or '\u2066' <= ch <= '\u2069'), repr(row[-1])
assert "v@x.com\x1b]0;owned\x07\x1b[32mall clear\r" in emails, emails
print(n)
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(csv.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python csv check failed:\n{}\n{csv}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cells: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(cells > 20, "{cells} cells");
    // The formula cells are there, neutralized.
    assert!(csv.contains("'=HYPERLINK("), "{csv}");
    assert!(csv.contains("'+cmd@x.com"), "{csv}");
    assert!(csv.contains("'-2+3@x.com"), "{csv}");
    assert!(csv.contains("'@SUM(A1)@x.com"), "{csv}");
    assert!(csv.contains("'\tx@x.com"), "{csv}");
}

both! {
    /// The hostile seed, every command, both colour modes: nothing raw reaches the terminal.
    fn hostile_rows_never_reach_the_terminal_raw(db) {
        run_hostile(&|| db.cmd(), &|sql| {
            db.query(sql);
        });
    }
}

/// Read one line of stdout, close the pipe, and return the exit code and stderr.
fn head_one_line(mut cmd: std::process::Command) -> (i32, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut first).unwrap();
    } // stdout's read end closes here
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        first,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const MANY: u32 = 30_000;

fn check_closed_pipe(mut cmd: std::process::Command) {
    cmd.args([
        "audit",
        "suspicious-accounts",
        "--rule",
        "privileged-without-password",
        "--fail-on",
        "info",
        "--format",
        "csv",
    ]);
    let (code, first, stderr) = head_one_line(cmd);
    assert!(first.starts_with("severity,rule"), "{first}");
    // Findings at or above --fail-on: the exit code the command would have had.
    assert_eq!(code, 1, "stderr:\n{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

both! {
    /// 30,000 findings piped to `head -1`: the output stops quietly and the exit code is
    /// the one the command would have had.
    fn closed_pipe_stops_quietly_with_the_commands_exit_code(db) {
        db.run(&["migrate", "up"]).expect_code(0);
        let users = if db.is_postgres() {
            format!("SELECT 'user_' || lpad(g::text, 12, '0'), 'org_many', 'u' || g || '@x.com', 'admin' \
                     FROM generate_series(1, {MANY}) g")
        } else {
            format!("WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {MANY}) \
                     SELECT printf('user_%012d', n), 'org_many', 'u' || n || '@x.com', 'admin' FROM g")
        };
        db.query(&format!(
            "INSERT INTO orgs (id, name) VALUES ('org_many', 'Many'); \
             INSERT INTO users (id, org_id, email, role) {users}"
        ));
        let mut cmd = std_bin(db.dir());
        cmd.env("DATABASE_URL", db.url());
        check_closed_pipe(cmd);
    }
}

#[test]
fn closed_pipe_on_completions_and_man_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    for args in [vec!["completions", "zsh"], vec!["man"]] {
        let mut cmd = std_bin(dir.path());
        cmd.args(&args);
        let (code, _, stderr) = head_one_line(cmd);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

fn dev_full() -> std::fs::File {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full")
}

#[test]
fn a_full_stdout_is_exit_6_and_the_result_is_not_lost() {
    // PostgreSQL
    let db = PgDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let out = db
        .std_cmd()
        .args(["create-org", "--name", "Full", "--format", "json"])
        .stdout(dev_full())
        .output()
        .unwrap();
    let r = Run::from(out);
    r.expect_clean_error(6);
    let id = db.psql("SELECT id FROM orgs WHERE name = 'Full'");
    assert!(id.starts_with("org_"), "{id}");
    assert!(
        r.stderr.contains(&id),
        "the new id is on stderr: {}",
        r.stderr
    );
    // SQLite
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let mut cmd = std_bin(db.dir.path());
    cmd.env("DATABASE_URL", db.url());
    let r = Run::from(
        cmd.args(["create-org", "--name", "Full"])
            .stdout(dev_full())
            .output()
            .unwrap(),
    );
    r.expect_clean_error(6);
    let id = db.query("SELECT id FROM orgs WHERE name = 'Full'");
    assert!(r.stderr.contains(&id), "{}", r.stderr);
    // A read-only command too.
    let mut cmd = std_bin(db.dir.path());
    cmd.env("DATABASE_URL", db.url());
    let r = Run::from(
        cmd.args(["migrate", "status"])
            .stdout(dev_full())
            .output()
            .unwrap(),
    );
    r.expect_clean_error(6);
}

/// Commands that need the database (and its API tables) to exist already.
const NEED_A_DATABASE: [&[&str]; 7] = [
    &["migrate", "status"],
    &["migrate", "current"],
    &["verify-schema"],
    &["doctor"],
    &["audit", "suspicious-accounts"],
    &["baseline", "--dry-run"],
    &["create-org", "--name", "Acme"],
];

#[test]
fn read_only_commands_never_create_the_embedded_database() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ecomind.db");
    for args in NEED_A_DATABASE {
        let r = Run::from(bin(dir.path()).args(args).output().unwrap());
        r.expect_clean_error(3);
        assert!(
            r.stderr
                .contains("no database at ./ecomind.db; `migrate up` creates it"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(!file.exists(), "{args:?} created {}", file.display());
    }
    // An explicit URL that allows creation is not a reason for a read-only command either.
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("other.db").display()
    );
    let r = Run::from(
        bin(dir.path())
            .env("DATABASE_URL", &url)
            .args(["migrate", "status"])
            .output()
            .unwrap(),
    );
    r.expect_clean_error(3);
    assert!(!dir.path().join("other.db").exists());
    // A dry run plans for a new database and creates nothing.
    let r = Run::from(
        bin(dir.path())
            .args(["migrate", "up", "--dry-run"])
            .output()
            .unwrap(),
    );
    r.expect_code(0);
    assert!(r.stdout.contains("CREATE TABLE"), "{}", r.stdout);
    assert!(!file.exists());
    // migrate up creates it.
    Run::from(bin(dir.path()).args(["migrate", "up"]).output().unwrap()).expect_code(0);
    assert!(file.exists());
}

#[test]
fn if_not_exists_refuses_a_mismatch() {
    for db in AnyDb::both() {
        let run = |a: &[&str]| db.run_stdin(a, b"a strong password 1\n");
        check_if_not_exists_mismatch(&run, &|sql| db.query(sql));
    }
}

fn check_if_not_exists_mismatch(run: &dyn Fn(&[&str]) -> Run, count: &dyn Fn(&str) -> String) {
    let org = |extra: &[&str]| {
        let mut a = vec!["create-org", "--id", "org_one", "--if-not-exists"];
        a.extend_from_slice(extra);
        run(&a)
    };
    org(&["--name", "One", "--plan", "pro"]).expect_code(0);
    org(&["--name", "One", "--plan", "pro"]).expect_code(0);
    let r = org(&["--name", "Two", "--plan", "pro"]);
    r.expect_clean_error(4);
    assert!(
        r.stderr.contains("its name is 'One', not 'Two'"),
        "{}",
        r.stderr
    );
    let r = org(&["--name", "One"]);
    r.expect_clean_error(4);
    assert!(
        r.stderr.contains("its plan is pro, not free"),
        "{}",
        r.stderr
    );
    assert_eq!(
        count("SELECT count(*) || ' ' || max(name) FROM orgs"),
        "1 One"
    );
    run(&["create-org", "--id", "org_two", "--name", "Two"]).expect_code(0);
    let admin = |extra: &[&str]| {
        let mut a = vec![
            "create-admin",
            "--email",
            "boss@x.com",
            "--password-stdin",
            "--bcrypt-cost",
            "4",
            "--if-not-exists",
        ];
        a.extend_from_slice(extra);
        run(&a)
    };
    admin(&["--org", "org_one"]).expect_code(0);
    admin(&["--org", "org_one"]).expect_code(0);
    let r = admin(&["--org", "org_two"]);
    r.expect_clean_error(4);
    assert!(
        r.stderr.contains("it belongs to 'org_one', not 'org_two'"),
        "{}",
        r.stderr
    );
    let r = admin(&["--org", "org_one", "--role", "owner"]);
    r.expect_clean_error(4);
    assert!(
        r.stderr.contains("its role is admin, not owner"),
        "{}",
        r.stderr
    );
    assert_eq!(
        count("SELECT count(*) || ' ' || max(CAST(role AS TEXT)) || ' ' || max(org_id) FROM users"),
        "1 admin org_one"
    );
}

#[test]
fn audit_at_revision_001_skips_what_it_cannot_read_and_refuses_unknown_orgs() {
    for db in AnyDb::both() {
        db.run(&["migrate", "down", "--to", "001", "--yes"])
            .expect_code(0);
        db.query(
            "INSERT INTO orgs (id, name) VALUES ('org_a', 'A'); \
             INSERT INTO users (id, org_id, email, role, created_at) \
             VALUES ('user_a', 'org_a', 'rogue@x.com', 'admin', '2026-09-01 00:00:00')",
        );
        let r = db.run(&["audit", "suspicious-accounts", "--format", "json"]);
        r.expect_code(1);
        let j = r.json();
        assert_eq!(
            j["summary"]["skipped"][0]["rule"],
            "privileged-without-password",
            "{}",
            db.name()
        );
        assert!(
            j["summary"]["rules_run"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r != "privileged-without-password")
        );
        assert!(
            j["findings"].as_array().unwrap().iter().any(|f| f["rule"]
                == "privileged-without-provenance"
                && f["email"] == "rogue@x.com"),
            "{}",
            r.stdout
        );
        assert!(
            r.stderr.contains("privileged-without-password skipped"),
            "{}",
            r.stderr
        );
        let r = db.run(&["audit", "suspicious-accounts"]);
        r.expect_code(1);
        assert!(
            r.stdout.contains("skipped: privileged-without-password"),
            "{}",
            r.stdout
        );
        // An unknown org is a refusal, not a clean result.
        let r = db.run(&["audit", "suspicious-accounts", "--org", "org_typo"]);
        r.expect_clean_error(4);
        assert!(
            r.stderr.contains("organization 'org_typo' not found"),
            "{}",
            r.stderr
        );
        db.run(&["audit", "suspicious-accounts", "--org", "org_a"])
            .expect_code(1);
        // create-admin needs revision 002 (password_hash): a refusal, not a SQL error.
        let r = db.run_stdin(&CREATE_ADMIN_A, b"a strong password 1\n");
        r.expect_clean_error(4);
        assert!(r.stderr.contains("revision 001"), "{}", r.stderr);
        // A window that starts in the future is a usage error.
        let r = db.run(&["audit", "suspicious-accounts", "--since", "2999-01-01"]);
        r.expect_clean_error(2);
        assert!(r.stderr.contains("in the future"), "{}", r.stderr);
    }
}

#[test]
fn non_ascii_case_and_idna_domains_are_one_address_on_both_backends() {
    let mut audits = Vec::new();
    for db in AnyDb::both() {
        db.run(&["create-org", "--id", "org_a", "--name", "A"])
            .expect_code(0);
        let admin = |email: &str| {
            db.run_stdin(
                &[
                    "create-admin",
                    "--org",
                    "org_a",
                    "--email",
                    email,
                    "--password-stdin",
                    "--bcrypt-cost",
                    "4",
                ],
                b"a strong password 1\n",
            )
        };
        admin("ünïcödé@x.com").expect_code(0);
        let r = admin("ÜNÏCÖDÉ@x.com");
        r.expect_clean_error(4);
        assert!(r.stderr.contains("is taken"), "{}: {}", db.name(), r.stderr);
        admin("user@bücher.example").expect_code(0);
        let r = admin("user@xn--bcher-kva.example");
        r.expect_clean_error(4);
        assert!(r.stderr.contains("is taken"), "{}: {}", db.name(), r.stderr);
        assert_eq!(db.query("SELECT count(*) FROM users"), "2");
        // Rows the API (or raw SQL) made: the audit sees the same accounts on both.
        db.query(
            "INSERT INTO users (id, org_id, email, role, created_at) VALUES \
             ('user_u1', 'org_a', 'ÜNÏCÖDÉ@x.com', 'viewer', '2026-09-01 00:00:00'), \
             ('user_u2', 'org_a', 'USER@xn--bcher-kva.example', 'viewer', '2026-09-01 00:00:00')",
        );
        let r = db.run(&[
            "audit",
            "suspicious-accounts",
            "--rule",
            "case-variant-email",
            "--format",
            "json",
        ]);
        r.expect_code(0);
        let mut found: Vec<(String, String)> = r.json()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["email"].as_str().unwrap().to_owned(),
                    f["evidence"]["variants"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        found.sort();
        assert_eq!(found.len(), 4, "{}: {found:?}", db.name());
        audits.push(found);
    }
    assert_eq!(audits[0], audits[1], "the same answer on both backends");
}

#[test]
fn racing_case_variant_create_admins_make_one_user() {
    for db in AnyDb::both() {
        db.run(&["create-org", "--id", "org_a", "--name", "A"])
            .expect_code(0);
        for i in 0..20 {
            let spawn = |email: String| {
                let mut c =
                    std::process::Command::new(assert_cmd::cargo::cargo_bin("ecomind-admin"));
                c.current_dir(db.dir())
                    .env("DATABASE_URL", db.url())
                    .env("NO_COLOR", "1")
                    .args([
                        "create-admin",
                        "--org",
                        "org_a",
                        "--email",
                        &email,
                        "--bcrypt-cost",
                        "4",
                    ])
                    .env("ECOMIND_ADMIN_PASSWORD", "a strong password 1")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            };
            let a = spawn(format!("Case{i}@x.com"));
            let b = spawn(format!("case{i}@x.com"));
            let mut codes = [a, b]
                .map(|c| Run::from(c.wait_with_output().unwrap()))
                .map(|r| {
                    assert!(
                        r.code == 0 || r.stderr.contains("is taken"),
                        "{}: {}",
                        db.name(),
                        r.all()
                    );
                    r.code
                });
            codes.sort();
            assert_eq!(codes, [0, 4], "{}: pair {i}", db.name());
            assert_eq!(
                db.query(&format!(
                    "SELECT count(*) FROM users WHERE lower(email) = 'case{i}@x.com'"
                )),
                "1",
                "{}: pair {i}",
                db.name()
            );
        }
    }
}

#[test]
fn refusals_in_json_plurals_and_the_evidence_column() {
    for db in AnyDb::both() {
        let who = db.name();
        // A refusal in JSON mode is a JSON document on stdout, and one line on stderr.
        let r = db.run(&["baseline", "--dry-run", "--format", "json"]);
        r.expect_clean_error(4);
        let j = r.json();
        assert_eq!(j["error"]["kind"], "refused", "{who}: {}", r.stdout);
        assert_eq!(j["error"]["exit_code"], 4);
        assert!(
            j["error"]["message"].as_str().unwrap().contains("already"),
            "{who}: {j}"
        );
        assert!(j["error"]["hint"].is_string());
        db.run(&["create-org", "--id", "org_a", "--name", "A"])
            .expect_code(0);
        let r = db.run(&[
            "create-org",
            "--id",
            "org_a",
            "--name",
            "A",
            "--format",
            "json",
        ]);
        r.expect_clean_error(4);
        assert_eq!(r.json()["error"]["kind"], "refused");
        // One of everything: singular nouns.
        db.query(
            "INSERT INTO users (id, org_id, email, role, created_at) \
             VALUES ('user_a', 'org_a', 'rogue@x.com', 'admin', '2026-09-01 00:00:00')",
        );
        if who == "postgres" {
            db.query("ANALYZE users");
        }
        let r = db.run(&["doctor"]);
        r.expect_code(1);
        assert!(
            r.stdout.contains("1 critical finding ("),
            "{who}: {}",
            r.stdout
        );
        let r = db.run(&["migrate", "down", "--dry-run"]);
        r.expect_code(0);
        assert!(r.stdout.contains("(~1 row)"), "{who}: {}", r.stdout);
        // The audit table's evidence column shows the evidence.
        let r = db.run(&[
            "audit",
            "suspicious-accounts",
            "--rule",
            "privileged-without-provenance",
        ]);
        r.expect_code(1);
        assert!(r.stdout.contains("evidence"), "{}", r.stdout);
        assert!(
            r.stdout.contains("evidence registrations: 0"),
            "{who}: {}",
            r.stdout
        );
    }
}

/// An admin a@x.com in org_a (the password comes from ECOMIND_ADMIN_PASSWORD).
const CREATE_ADMIN_A: [&str; 7] = [
    "create-admin",
    "--org",
    "org_a",
    "--email",
    "a@x.com",
    "--bcrypt-cost",
    "4",
];

/// Start `args` against `db` while `table` is locked, wait until its statement waits on
/// the lock, send `sig`, and check: within 1 s nothing of ours is left on the server,
/// exit `code`, one line on stderr that contains `says`.
fn interrupt_while_waiting(
    db: &PgDb,
    table: &str,
    args: &[&str],
    sig: &str,
    code: i32,
    says: &str,
) {
    let blocker = Blocker::lock(db, table);
    let ours = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'ecomind-admin%' \
                AND datname = current_database()";
    let child = db
        .std_cmd()
        .args(args)
        .env("ECOMIND_ADMIN_PASSWORD", "a strong password 1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&format!("{args:?} waiting on the lock"), 20, || {
        db.psql(&format!("{ours} AND wait_event_type = 'Lock'")) == "1"
    });
    let sent = send(&child, sig);
    // One look, 1 s after the signal: nothing of ours is left on the server.
    std::thread::sleep(std::time::Duration::from_secs(1).saturating_sub(sent.elapsed()));
    let left = db.psql(&ours.replace("count(*)", "state, wait_event_type, query"));
    assert_eq!(left, "", "{args:?}: sessions of ours left 1 s after {sig}");
    let r = Run::from(child.wait_with_output().unwrap());
    r.expect_clean_error(code);
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| !l.starts_with("warning:"))
        .collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line:\n{}", r.stderr);
    assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    drop(blocker);
}

#[test]
fn signals_cancel_our_statements_roll_back_and_say_so_postgres() {
    let db = PgDb::new();
    db.run(&["migrate", "up", "--to", V1]).expect_code(0);
    interrupt_while_waiting(
        &db,
        "users",
        &["migrate", "up", "--ddl-lock-timeout", "60s"],
        "-INT",
        130,
        "interrupted by SIGINT: the running statement was cancelled; each migration is one transaction: the database is at 001",
    );
    assert_eq!(db.versions(), vec![V1]);
    db.run(&["migrate", "up"]).expect_code(0);
    interrupt_while_waiting(
        &db,
        "audit_logs",
        &["audit", "suspicious-accounts"],
        "-TERM",
        143,
        "interrupted by SIGTERM: the running statement was cancelled; nothing was written (read-only)",
    );
    interrupt_while_waiting(
        &db,
        "seaql_migrations",
        &["baseline", "--undo", "--yes"],
        "-INT",
        130,
        // The version cannot be read behind that lock: the line says so.
        "nothing half-applied",
    );
    assert_eq!(db.versions(), all_versions());
    db.run(&["create-org", "--id", "org_a", "--name", "A"])
        .expect_code(0);
    interrupt_while_waiting(&db, "users", &CREATE_ADMIN_A, "-TERM", 143, "rolled back");
    assert_eq!(db.psql("SELECT count(*) FROM users"), "0");
    // A role change waiting to write its audit row: rolled back, the role unchanged.
    db.psql(
        "INSERT INTO users (id, org_id, email, role) VALUES ('user_000000000009', 'org_a', 'b@x.com', 'viewer')",
    );
    interrupt_while_waiting(
        &db,
        "audit_logs",
        &["users", "set-role", "b@x.com", "analyst", "--reason", "x"],
        "-INT",
        130,
        "its transaction was rolled back",
    );
    assert_eq!(
        db.psql("SELECT role FROM users WHERE email = 'b@x.com'"),
        "viewer"
    );
}

#[test]
fn signals_end_a_waiting_migration_on_sqlite() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up", "--to", V1]).expect_code(0);
    let writer = Blocker::sqlite_writer(&db);
    let mut cmd = std_bin(db.dir.path());
    cmd.env("DATABASE_URL", db.url())
        .args(["migrate", "up", "--lock-wait", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    send(&child, "-TERM");
    let r = Run::from(child.wait_with_output().unwrap());
    drop(writer);
    r.expect_clean_error(143);
    assert!(
        r.stderr.contains("interrupted by SIGTERM") && r.stderr.contains("the database is at 001"),
        "{}",
        r.stderr
    );
    assert_eq!(db.versions(), vec![V1]);
}

#[test]
fn every_command_works_on_schema_app_and_no_second_copy_is_made() {
    let db = PgDb::new();
    db.psql("CREATE SCHEMA app");
    let app = |args: &[&str]| {
        let mut a = vec!["--schema", "app"];
        a.extend_from_slice(args);
        Run::from(
            db.cmd()
                .args(&a)
                .env("ECOMIND_ADMIN_PASSWORD", "a strong password 1")
                .output()
                .unwrap(),
        )
    };
    let in_schema = |s: &str| {
        db.psql(&format!(
            "SELECT count(*) FROM pg_tables WHERE schemaname = '{s}'"
        ))
    };
    app(&["migrate", "up"]).expect_code(0);
    assert_eq!(
        in_schema("app"),
        (api_tables().len() + 1).to_string(),
        "the API tables and seaql_migrations"
    );
    assert_eq!(in_schema("public"), "0");
    app(&["migrate", "status"]).expect_code(0);
    let r = app(&["migrate", "current", "--check", "--format", "json"]);
    r.expect_code(0);
    assert_eq!(r.json()["up_to_date"], true);
    app(&["verify-schema"]).expect_code(0);
    let r = app(&["doctor"]);
    r.expect_code(0);
    assert!(r.stdout.contains("READY"), "{}", r.stdout);
    app(&["create-org", "--id", "org_a", "--name", "A"]).expect_code(0);
    app(&CREATE_ADMIN_A).expect_code(0);
    assert_eq!(db.psql("SELECT count(*) FROM app.users"), "1");
    let r = app(&["audit", "suspicious-accounts", "--format", "json"]);
    r.expect_code(0);
    app(&["baseline", "--dry-run"]).expect_clean_error(4);
    app(&["migrate", "down", "--to", "001", "--yes"]).expect_code(0);
    assert_eq!(
        db.psql("SELECT count(*) FROM app.seaql_migrations"),
        "1",
        "at 001"
    );
    app(&["migrate", "up"]).expect_code(0);
    // A backup, proven and put back, in schema app.
    let bk = db.dir.path().join("bk");
    let r = app(&["backup", "--dir", bk.to_str().unwrap(), "--format", "json"]);
    r.expect_code(0);
    let file = r.json()["path"].as_str().unwrap().to_owned();
    app(&["backup", "verify", &file]).expect_code(0);
    db.psql("INSERT INTO app.orgs (id, name) VALUES ('org_after', 'After')");
    app(&["restore", &file, "--yes"]).expect_code(0);
    assert_eq!(
        db.psql("SELECT count(*) FROM app.orgs WHERE id = 'org_after'"),
        "0"
    );
    assert_eq!(in_schema("public"), "0");
    // Through a stock PgBouncer in transaction pooling mode too.
    let mut via = url::Url::parse(
        &std::env::var("ECOMIND_TEST_PGBOUNCER_URL")
            .expect("ECOMIND_TEST_PGBOUNCER_URL: run scripts/test.sh"),
    )
    .unwrap();
    via.set_path(&db.name);
    db.run_at(via.as_str(), &["--schema", "app", "verify-schema"])
        .expect_code(0);
    // The URL's options name the schema as well.
    let mut opts = url::Url::parse(&db.url()).unwrap();
    opts.query_pairs_mut()
        .append_pair("options", "-c search_path=app");
    db.run_at(opts.as_str(), &["migrate", "current", "--check"])
        .expect_code(0);
    // Without --schema: every command refuses (exit 4, naming the schema), and
    // nothing is created in public.
    for args in [&["migrate", "up"][..]].into_iter().chain(NEED_A_DATABASE) {
        let r = db.run(args);
        r.expect_clean_error(4);
        assert!(
            r.stderr.contains("schema 'app'") && r.stderr.contains("--schema app"),
            "{args:?}: {}",
            r.stderr
        );
    }
    assert_eq!(in_schema("public"), "0");
    // baseline adopts an Alembic-managed database whose tables are in schema app.
    let alembic = PgDb::new();
    alembic.psql("CREATE SCHEMA app");
    let dump = std::fs::read_to_string(reference("ecomind-api-alembic-002.sql"))
        .unwrap()
        .replace("public.", "app.");
    let file = alembic.dir.path().join("in-app.sql");
    std::fs::write(&file, dump).unwrap();
    alembic.load(&file);
    alembic
        .run(&["baseline", "--dry-run"])
        .expect_clean_error(4);
    let baseline = |args: &[&str]| {
        let mut a = vec!["--schema", "app", "baseline"];
        a.extend_from_slice(args);
        alembic.run(&a)
    };
    let r = baseline(&["--dry-run", "--format", "json"]);
    r.expect_code(0);
    assert_eq!(r.json()["detected"]["alembic_revision"], "002");
    baseline(&["--yes"]).expect_code(0);
    assert_eq!(
        alembic.psql("SELECT count(*) FROM app.seaql_migrations"),
        "2"
    );
    assert_eq!(
        alembic.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
        "0"
    );
    // A schema that does not exist, and SQLite.
    let r = db.run(&["--schema", "nope", "migrate", "up"]);
    r.expect_clean_error(4);
    assert!(
        r.stderr.contains("schema 'nope' does not exist"),
        "{}",
        r.stderr
    );
    let lite = SqliteDb::new();
    lite.run(&["--schema", "app", "migrate", "up"])
        .expect_clean_error(2);
    assert!(!lite.path().exists());
}
