//! The bad-input matrix: every case gets its documented exit code, one clear error
//! line (plus a hint), no panic or backtrace, no secret in the output, and a database
//! that is exactly as it was.

use crate::common::*;

const SECRET: &str = "hunter2-secret";

struct Case {
    name: &'static str,
    args: Vec<String>,
    /// DATABASE_URL override (None: the migrated SQLite test database).
    url: Option<String>,
    stdin: Vec<u8>,
    code: i32,
    /// A fragment the error line must contain.
    says: &'static str,
}

fn case(name: &'static str, args: &[&str], code: i32, says: &'static str) -> Case {
    Case {
        name,
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        url: None,
        stdin: Vec::new(),
        code,
        says,
    }
}

impl Case {
    fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }
    fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = bytes.into();
        self
    }
}

const ADMIN: [&str; 7] = [
    "create-admin",
    "--org",
    "org_0123456789ab",
    "--email",
    "new@acme.example.com",
    "--password-stdin",
    "--bcrypt-cost=4",
];

fn admin_with(extra: &[&str]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = ADMIN.to_vec();
    for e in extra {
        v.push(Box::leak(e.to_string().into_boxed_str()));
    }
    v
}

#[test]
fn thirty_and_more_bad_inputs() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    db.run(&["create-org", "--name", "Acme", "--id", "org_0123456789ab"])
        .expect_code(0);
    let pw_line = "correct horse battery staple\n";
    let long_name = "n".repeat(256);
    let long_id = "a".repeat(65);
    let long_email = format!("{}@example.com", "a".repeat(300));
    let huge_url = format!("postgres://u:{SECRET}@{}/db", "h".repeat(100_000));
    let unreachable = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        drop(l);
        format!("postgres://postgres:{SECRET}@127.0.0.1:{p}/db")
    };
    let cases = vec![
        // URLs and connections
        case(
            "malformed URL",
            &["migrate", "status"],
            3,
            "invalid database URL",
        )
        .url(format!("postgres://u:{SECRET}@[::1/db")),
        case(
            "mysql URL",
            &["migrate", "up"],
            3,
            "unsupported database URL scheme",
        )
        .url(format!("mysql://u:{SECRET}@h/db")),
        case("ftp URL", &["migrate", "up"], 3, "unsupported").url("ftp://example.com/db"),
        case("no scheme", &["migrate", "up"], 3, "no scheme").url("just words"),
        case("empty URL", &["migrate", "up"], 3, "empty").url(""),
        case(
            "huge URL",
            &["migrate", "status", "--connect-timeout", "1s"],
            3,
            "cannot connect to postgres://u:***@",
        )
        .url(huge_url),
        case(
            "unreachable port",
            &["migrate", "status", "--connect-timeout", "1s"],
            3,
            "cannot",
        )
        .url(unreachable),
        case(
            "SQLite in a missing directory",
            &["migrate", "up"],
            3,
            "database file",
        )
        .url("sqlite:///no/such/dir/x.db"),
        case(
            "URL with a password in the query",
            &["migrate", "up", "--connect-timeout", "1s"],
            3,
            "?password=***",
        )
        .url(format!("postgres://127.0.0.1:1/db?password={SECRET}")),
        // durations, flags
        case(
            "connect timeout not a duration",
            &["--connect-timeout", "soon", "migrate", "status"],
            2,
            "--connect-timeout",
        ),
        case(
            "negative connect timeout",
            &["--connect-timeout", "-5s", "migrate", "status"],
            2,
            "unexpected argument '-5'",
        ),
        case(
            "lock wait not a duration",
            &["migrate", "up", "--lock-wait", "forever"],
            2,
            "--lock-wait",
        ),
        case(
            "unknown format",
            &["--format", "xml", "migrate", "status"],
            2,
            "xml",
        ),
        case(
            "csv outside audit",
            &["--format", "csv", "migrate", "status"],
            2,
            "csv",
        ),
        case(
            "unknown color",
            &["--color", "sometimes", "migrate", "status"],
            2,
            "sometimes",
        ),
        case(
            "unknown subcommand",
            &["migrate", "sideways"],
            2,
            "sideways",
        ),
        case("unknown flag", &["migrate", "up", "--force"], 2, "--force"),
        // versions
        case(
            "unknown --to version",
            &["migrate", "up", "--to", "007"],
            2,
            "unknown version",
        ),
        case(
            "empty --to version",
            &["migrate", "up", "--to", ""],
            2,
            "unknown version",
        ),
        case("-n 0", &["migrate", "down", "-n", "0", "--yes"], 2, "0"),
        case("-n not a number", &["migrate", "up", "-n", "abc"], 2, "abc"),
        case(
            "--to with -n",
            &["migrate", "up", "--to", "001", "-n", "1"],
            2,
            "cannot be used",
        ),
        case(
            "--all with --to",
            &["migrate", "down", "--all", "--to", "001", "--yes"],
            2,
            "cannot be used",
        ),
        case(
            "down without --yes, no TTY",
            &["migrate", "down"],
            4,
            "without confirmation",
        ),
        case(
            "verify against an unknown version",
            &["verify-schema", "--against", "009"],
            2,
            "unknown version",
        ),
        case(
            "baseline --to unknown",
            &["baseline", "--to", "999", "--dry-run"],
            2,
            "unknown version",
        ),
        case(
            "baseline --undo with --to",
            &["baseline", "--undo", "--to", "001"],
            2,
            "cannot be used",
        ),
        case(
            "baseline an already managed database",
            &["baseline", "--yes"],
            4,
            "already managed",
        ),
        // ids and names
        case("empty org name", &["create-org", "--name", ""], 4, "empty"),
        case(
            "blank org name",
            &["create-org", "--name", "   "],
            4,
            "empty",
        ),
        case(
            "256-character org name",
            &["create-org", "--name", &long_name],
            4,
            "256 characters",
        ),
        case(
            "org id with capitals",
            &["create-org", "--name", "X", "--id", "Org-Bad"],
            4,
            "invalid organization id",
        ),
        case(
            "65-character org id",
            &["create-org", "--name", "X", "--id", &long_id],
            4,
            "invalid organization id",
        ),
        case(
            "taken org id",
            &["create-org", "--name", "X", "--id", "org_0123456789ab"],
            4,
            "exists already",
        ),
        case(
            "unknown plan",
            &["create-org", "--name", "X", "--plan", "platinum"],
            2,
            "platinum",
        ),
        case(
            "org id with SQL",
            &[
                "audit",
                "suspicious-accounts",
                "--org",
                "x'; DROP TABLE users; --",
            ],
            4,
            "invalid organization id",
        ),
        // emails and passwords
        case(
            "email without @",
            &admin_with(&[])
                .iter()
                .map(|s| {
                    if *s == "new@acme.example.com" {
                        "no-at-sign"
                    } else {
                        s
                    }
                })
                .collect::<Vec<_>>(),
            2,
            "invalid email",
        )
        .stdin(pw_line),
        case(
            "email without a dotted domain",
            &admin_with(&[])
                .iter()
                .map(|s| {
                    if *s == "new@acme.example.com" {
                        "a@b"
                    } else {
                        s
                    }
                })
                .collect::<Vec<_>>(),
            2,
            "invalid email",
        )
        .stdin(pw_line),
        case(
            "300-character email",
            &admin_with(&[])
                .iter()
                .map(|s| {
                    if *s == "new@acme.example.com" {
                        long_email.as_str()
                    } else {
                        s
                    }
                })
                .collect::<Vec<_>>(),
            2,
            "invalid email",
        )
        .stdin(pw_line),
        case(
            "unknown org",
            &admin_with(&[])
                .iter()
                .map(|s| {
                    if *s == "org_0123456789ab" {
                        "org_ffffffffffff"
                    } else {
                        s
                    }
                })
                .collect::<Vec<_>>(),
            4,
            "not found",
        )
        .stdin(pw_line),
        case("empty stdin", &admin_with(&[]), 4, "stdin is empty"),
        case("stdin not UTF-8", &admin_with(&[]), 4, "not valid UTF-8")
            .stdin(b"\xff\xfe\xfd not text\n".to_vec()),
        case(
            "11-character password",
            &admin_with(&[]),
            4,
            "11 characters",
        )
        .stdin("elevenchars\n"),
        case("73-byte password", &admin_with(&[]), 4, "73 bytes")
            .stdin(format!("{}\n", "p".repeat(73))),
        case("password with NUL", &admin_with(&[]), 4, "NUL")
            .stdin(b"twelve\0characters!\n".to_vec()),
        case("huge stdin", &admin_with(&[]), 4, "bytes").stdin(vec![b'x'; 1 << 20]),
        case("no password source, no TTY", &ADMIN[..5], 4, "no password"),
        case(
            "bcrypt cost 3",
            &[&ADMIN[..6], &["--bcrypt-cost", "3"][..]].concat(),
            2,
            "3",
        ),
        case(
            "bcrypt cost 32",
            &[&ADMIN[..6], &["--bcrypt-cost", "32"][..]].concat(),
            2,
            "32",
        ),
        case("role root", &admin_with(&["--role", "root"]), 2, "root").stdin(pw_line),
        // audit arguments
        case(
            "since not a time",
            &["audit", "suspicious-accounts", "--since", "last tuesday"],
            2,
            "neither a duration",
        ),
        case(
            "since 274 years",
            &["audit", "suspicious-accounts", "--since", "100000d"],
            2,
            "100 years",
        ),
        case(
            "fixed-at not a date",
            &["audit", "suspicious-accounts", "--fixed-at", "2026-13-45"],
            2,
            "not a timestamp",
        ),
        case(
            "failed threshold 0",
            &["audit", "suspicious-accounts", "--failed-threshold", "0"],
            2,
            "0",
        ),
        case(
            "unknown rule",
            &["audit", "suspicious-accounts", "--rule", "everything"],
            2,
            "everything",
        ),
    ];
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let before = db.sql(".dump").stdout;
    for c in &cases {
        let mut cmd = db.cmd();
        if let Some(url) = &c.url {
            cmd.env("DATABASE_URL", url);
        }
        let r = Run::from(
            cmd.args(&c.args)
                .write_stdin(c.stdin.clone())
                .output()
                .unwrap(),
        );
        assert_eq!(
            r.code,
            c.code,
            "{}: exit {} (expected {})\n{}",
            c.name,
            r.code,
            c.code,
            r.all()
        );
        r.expect_clean_error(c.code);
        assert!(
            !c.says.is_empty(),
            "{}: a case must say what the error says",
            c.name
        );
        assert!(
            r.stderr.contains(c.says),
            "{}: the error does not say '{}':\n{}",
            c.name,
            c.says,
            r.stderr
        );
        for secret in [SECRET, "elevenchars", "twelve\0characters", "correct horse"] {
            assert!(
                !r.all().contains(secret),
                "{}: secret in the output:\n{}",
                c.name,
                r.all()
            );
        }
        assert!(
            r.stdout.is_empty(),
            "{}: stdout should be empty on an error:\n{}",
            c.name,
            r.stdout
        );
        assert!(
            r.stderr.len() < 4000,
            "{}: error output is {} bytes",
            c.name,
            r.stderr.len()
        );
    }
    assert_eq!(
        db.sql(".dump").stdout,
        before,
        "a bad input changed the database"
    );
}
