//! `create-org` and `create-admin` against PostgreSQL and SQLite: rows in the API's
//! formats, audit rows, refusals that write nothing, passlib interop, the prompt.

use serde_json::Value;

use crate::common::*;

const ORG: &str = "org_0123456789ab";
const PW: &str = "correct horse battery staple";

fn create_org(db: &AnyDb) -> Value {
    let r = db.run(&[
        "create-org",
        "--name",
        "Acme Corp",
        "--id",
        ORG,
        "--plan",
        "pro",
        "--format",
        "json",
    ]);
    r.expect_code(0);
    r.json()
}

fn create_admin(db: &AnyDb, email: &str, password: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "create-admin",
        "--org",
        ORG,
        "--email",
        email,
        "--password-stdin",
        "--bcrypt-cost",
        "4",
    ];
    args.extend_from_slice(extra);
    db.run_stdin(&args, format!("{password}\n").as_bytes())
}

fn is_hex_id(id: &str, prefix: &str, len: usize) -> bool {
    id.strip_prefix(prefix).is_some_and(|h| {
        h.len() == len
            && h.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

#[test]
fn org_then_admin_rows_and_audit_rows_in_the_api_formats() {
    for db in AnyDb::both() {
        let org = create_org(&db);
        assert_eq!(org["id"], ORG);
        assert_eq!(org["plan"], "pro");
        let r = create_admin(
            &db,
            "admin@acme.example.com",
            PW,
            &["--name", "Ada", "--role", "owner", "--format", "json"],
        );
        r.expect_code(0);
        assert!(!r.all().contains(PW), "{}: password in output", db.name());
        let user = r.json();
        let uid = user["id"].as_str().unwrap().to_owned();
        assert!(is_hex_id(&uid, "user_", 12), "{uid}");
        assert_eq!(user["role"], "owner");
        assert!(user.get("password_hash").is_none());

        let row = db.query(&format!(
            "SELECT org_id, email, name, role, password_hash FROM users WHERE id = '{uid}'"
        ));
        let f: Vec<&str> = row.split('|').collect();
        assert_eq!(
            &f[..4],
            [ORG, "admin@acme.example.com", "Ada", "owner"],
            "{}",
            db.name()
        );
        assert!(f[4].starts_with("$2b$04$") && f[4].len() == 60, "{}", f[4]);
        assert!(bcrypt::verify(PW, f[4]).unwrap());

        let audit = db.query("SELECT id, org_id, COALESCE(user_id, '-'), action, resource, details FROM audit_logs ORDER BY action");
        let rows: Vec<&str> = audit.lines().collect();
        assert_eq!(rows.len(), 2, "{audit}");
        let org_row: Vec<&str> = rows[0].splitn(6, '|').collect();
        assert!(is_hex_id(org_row[0], "audit_", 16), "{}", org_row[0]);
        assert_eq!(&org_row[1..5], [ORG, "-", "org_created", "orgs"]);
        let d: Value = serde_json::from_str(org_row[5]).unwrap();
        assert_eq!(d["name"], "Acme Corp");
        assert_eq!(d["plan"], "pro");
        assert_eq!(d["created_by"], "ecomind-admin");
        assert_eq!(d["success"], true);
        assert!(d["os_user"].is_string() && d["host"].is_string());
        let user_row: Vec<&str> = rows[1].splitn(6, '|').collect();
        assert_eq!(
            &user_row[1..5],
            [ORG, uid.as_str(), "user_registered", "authentication"]
        );
        let d: Value = serde_json::from_str(user_row[5]).unwrap();
        assert_eq!(d["email"], "admin@acme.example.com");
        assert_eq!(d["role"], "owner");
        assert_eq!(d["created_by"], "ecomind-admin");
        let ts = d["timestamp"].as_str().unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S%.6f").is_ok(),
            "{ts}"
        );
        assert!(!audit.contains(PW));
    }
}

#[test]
fn refusals_are_exit_4_and_write_nothing() {
    for db in AnyDb::both() {
        create_org(&db);
        create_admin(&db, "admin@acme.example.com", PW, &[]).expect_code(0);
        let before = db.snapshot();
        let cases: Vec<(&str, Run)> = vec![
            (
                "unknown org",
                db.run_stdin(
                    &[
                        "create-admin",
                        "--org",
                        "org_ffffffffffff",
                        "--email",
                        "new@acme.example.com",
                        "--password-stdin",
                    ],
                    format!("{PW}\n").as_bytes(),
                ),
            ),
            (
                "taken email",
                create_admin(&db, "admin@acme.example.com", PW, &[]),
            ),
            (
                "taken email, other case",
                create_admin(&db, "Admin@ACME.example.com", PW, &[]),
            ),
            (
                "11-character password",
                create_admin(&db, "new@acme.example.com", "elevenchars", &[]),
            ),
            (
                "73-byte password",
                create_admin(&db, "new@acme.example.com", &"p".repeat(73), &[]),
            ),
            (
                "password with NUL",
                create_admin(&db, "new@acme.example.com", "twelve\0characters", &[]),
            ),
            (
                "no TTY and no password source",
                Run::from(
                    db.cmd()
                        .args([
                            "create-admin",
                            "--org",
                            ORG,
                            "--email",
                            "new@acme.example.com",
                        ])
                        .output()
                        .unwrap(),
                ),
            ),
            (
                "invalid org id",
                db.run(&["create-org", "--name", "X", "--id", "Org-Bad!"]),
            ),
            (
                "taken org id",
                db.run(&["create-org", "--name", "Other", "--id", ORG]),
            ),
            (
                "empty stdin",
                db.run_stdin(
                    &[
                        "create-admin",
                        "--org",
                        ORG,
                        "--email",
                        "new@acme.example.com",
                        "--password-stdin",
                    ],
                    b"",
                ),
            ),
            (
                "stdin not UTF-8",
                db.run_stdin(
                    &[
                        "create-admin",
                        "--org",
                        ORG,
                        "--email",
                        "new@acme.example.com",
                        "--password-stdin",
                    ],
                    b"\xff\xfe not utf8 at all\n",
                ),
            ),
            (
                "password equals email",
                create_admin(
                    &db,
                    "longer.address@acme.example.com",
                    "longer.address@acme.example.com",
                    &[],
                ),
            ),
        ];
        for (what, r) in cases {
            assert_eq!(r.code, 4, "{}: {what}: {}", db.name(), r.all());
            r.expect_clean_error(4);
            assert!(
                !r.all().contains("elevenchars") && !r.all().contains(&"p".repeat(73)),
                "{what}: password echoed"
            );
        }
        // An address the API refuses (its login could never find it): a usage error.
        for email in ["not-an-email", "root@corp.local", "admin@acme.test"] {
            let r = create_admin(&db, email, PW, &[]);
            r.expect_clean_error(2);
            assert!(r.stderr.contains("invalid email"), "{}", r.stderr);
        }
        let r = db.run_stdin(
            &[
                "create-admin",
                "--org",
                ORG,
                "--email",
                "new@acme.example.com",
                "--password-stdin",
                "--role",
                "viewer",
            ],
            format!("{PW}\n").as_bytes(),
        );
        r.expect_code(2);
        assert_eq!(
            db.snapshot(),
            before,
            "{}: a refusal wrote something",
            db.name()
        );
    }
}

#[test]
fn if_not_exists_changes_nothing() {
    for db in AnyDb::both() {
        create_org(&db);
        let r = db.run(&[
            "create-org",
            "--name",
            "Acme Corp",
            "--id",
            ORG,
            "--plan",
            "pro",
            "--if-not-exists",
            "--format",
            "json",
        ]);
        r.expect_code(0);
        assert_eq!(r.json()["name"], "Acme Corp");
        assert_eq!(r.json()["created"], false);
        assert!(r.stderr.contains("exists already"), "{}", r.stderr);
        create_admin(&db, "admin@acme.example.com", PW, &[]).expect_code(0);
        let before = db.snapshot();
        // Another password, other case: exit 0, no password update.
        let r = create_admin(
            &db,
            "ADMIN@acme.example.com",
            "a completely different pw",
            &["--if-not-exists", "--format", "json"],
        );
        r.expect_code(0);
        assert_eq!(r.json()["created"], false);
        assert!(r.stderr.contains("exists already"), "{}", r.stderr);
        assert_eq!(db.snapshot(), before);
    }
}

#[test]
fn hostile_names_are_stored_literally() {
    for db in AnyDb::both() {
        let before_tables = db.query("SELECT count(*) FROM orgs");
        assert_eq!(before_tables, "0");
        for (i, name) in ["'; DROP TABLE users; --", "Robert\"); DELETE FROM orgs;--"]
            .iter()
            .enumerate()
        {
            let id = format!("org_00000000000{i}");
            let r = db.run(&[
                "create-org",
                "--name",
                name,
                "--id",
                &id,
                "--format",
                "json",
            ]);
            r.expect_code(0);
            assert_eq!(r.json()["name"], *name);
        }
        assert_eq!(db.query("SELECT count(*) FROM orgs"), "2");
        assert_eq!(
            db.query("SELECT name FROM orgs ORDER BY id"),
            "'; DROP TABLE users; --\nRobert\"); DELETE FROM orgs;--"
        );
        // users still exists, and a hostile admin name too.
        let r = db.run_stdin(
            &[
                "create-admin",
                "--org",
                "org_000000000000",
                "--email",
                "bobby@tables.example.com",
                "--name",
                "'; DROP TABLE users; --",
                "--password-stdin",
                "--bcrypt-cost",
                "4",
            ],
            format!("{PW}\n").as_bytes(),
        );
        r.expect_code(0);
        assert_eq!(
            db.query("SELECT name FROM users"),
            "'; DROP TABLE users; --"
        );
    }
}

#[test]
fn name_length_and_generated_ids() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    db.run(&["create-org", "--name", "   "])
        .expect_clean_error(4);
    db.run(&["create-org", "--name", &"n".repeat(256)])
        .expect_clean_error(4);
    let r = db.run(&["create-org", "--name", &"ü".repeat(255), "--format", "json"]);
    r.expect_code(0);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert!(is_hex_id(&id, "org_", 12), "{id}");
    assert_eq!(r.json()["plan"], "free");
}

#[test]
fn env_password_is_used_and_announced() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    db.run(&["create-org", "--name", "Acme", "--id", ORG])
        .expect_code(0);
    let r = Run::from(
        db.cmd()
            .env("ECOMIND_ADMIN_PASSWORD", PW)
            .args([
                "create-admin",
                "--org",
                ORG,
                "--email",
                "ci@acme.example.com",
                "--bcrypt-cost",
                "4",
            ])
            .output()
            .unwrap(),
    );
    r.expect_code(0);
    assert!(r.stderr.contains("ECOMIND_ADMIN_PASSWORD"), "{}", r.stderr);
    assert!(!r.all().contains(PW));
}

#[test]
fn passlib_verifies_what_create_admin_makes() {
    let db = PgDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    db.run(&["create-org", "--name", "Acme", "--id", ORG])
        .expect_code(0);
    let seventy_two = "x".repeat(70) + "é"; // 72 bytes
    assert_eq!(seventy_two.len(), 72);
    for (email, pw) in [
        ("ascii@acme.example.com", PW.to_owned()),
        ("long@acme.example.com", seventy_two),
        (
            "utf8@acme.example.com",
            "pässwörd-ünïcødé-🔐-2025".to_owned(),
        ),
    ] {
        // The default cost (12), as the API would see it.
        let r = Run::from(
            db.cmd()
                .args([
                    "create-admin",
                    "--org",
                    ORG,
                    "--email",
                    email,
                    "--password-stdin",
                ])
                .write_stdin(format!("{pw}\r\n"))
                .output()
                .unwrap(),
        );
        r.expect_code(0);
        let hash = db.psql(&format!(
            "SELECT password_hash FROM users WHERE email = '{email}'"
        ));
        assert!(hash.starts_with("$2b$12$"), "{hash}");
        assert!(
            passlib_verifies(&pw, &hash),
            "passlib rejects the hash for {email}"
        );
        assert!(!passlib_verifies(&format!("{pw}x"), &hash) || pw.len() >= 72);
    }
}

#[test]
fn the_prompt_asks_again_on_a_mismatch() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    db.run(&["create-org", "--name", "Acme", "--id", ORG])
        .expect_code(0);
    let mut tty = Tty::spawn(
        &db,
        &format!("create-admin --org {ORG} --email tty@acme.example.com --bcrypt-cost 4"),
    );
    // A password the policy refuses, a mismatched confirmation, then a matching pair;
    // none of it is an "error:" (the run goes on asking).
    tty.expect("Password for tty@acme.example.com");
    tty.type_secret("short");
    tty.expect("not accepted: the password has 5 characters");
    tty.expect("Password for tty@acme.example.com");
    tty.type_secret(PW);
    tty.expect("Repeat the password");
    tty.type_secret("something else entirely");
    tty.expect("do not match");
    tty.expect("Password for tty@acme.example.com");
    tty.type_secret(PW);
    tty.expect("Repeat the password");
    tty.type_secret(PW);
    let r = tty.finish_secret(PW);
    assert!(r.stdout.contains("do not match"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("error:"),
        "issue 25 item 16: {}",
        r.stdout
    );
    let hash = db.query("SELECT password_hash FROM users WHERE email = 'tty@acme.example.com'");
    assert!(bcrypt::verify(PW, &hash).unwrap());
}
