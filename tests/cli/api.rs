//! The real EcoMind API (../shared/reference/ecomind-api, run by its run.sh, never
//! copied here) as a test oracle: an admin made by ecomind-admin must log in through it.

use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A running API on a free port, serving `db`; stopped when dropped.
pub struct Api {
    child: Child,
    pub base: String,
    _work: tempfile::TempDir,
}

fn api_dir() -> String {
    std::env::var("ECOMIND_TEST_API_DIR").unwrap_or_else(|_| {
        panic!(
            "ECOMIND_TEST_API_DIR is not set: the API tests run the real EcoMind API from \
             ../shared/reference/ecomind-api (its run.sh). Run scripts/test.sh, which checks \
             that folder and prepares the API's venv."
        )
    })
}

impl Api {
    /// Start the API (`--as-released` when `released`) on `pg`'s database and wait for
    /// `GET /health`.
    pub fn start(pg: &PgDb, released: bool) -> Api {
        Self::start_with(
            pg,
            released,
            Some("a test secret of the API tests, long enough"),
        )
    }

    /// The same, with `JWT_SECRET` set to `secret` (None: unset, the API's default).
    pub fn start_with(pg: &PgDb, released: bool, secret: Option<&str>) -> Api {
        let dir = api_dir();
        let venv = std::env::var("ECOMIND_TEST_API_VENV")
            .expect("ECOMIND_TEST_API_VENV (scripts/test.sh)");
        let work = tempfile::tempdir().unwrap();
        let port = free_port();
        // SQLAlchemy 2 knows postgresql://, not postgres://.
        let url = pg.url().replacen("postgres://", "postgresql://", 1);
        let mut cmd = StdCommand::new(format!("{dir}/run.sh"));
        if released {
            cmd.arg("--as-released");
        }
        match secret {
            Some(s) => cmd.env("JWT_SECRET", s),
            None => cmd.env_remove("JWT_SECRET"),
        };
        let child = cmd
            .env("DATABASE_URL", url)
            .env("PORT", port.to_string())
            .env("VENV", venv)
            .env("WORK", work.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run.sh starts");
        let api = Api {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _work: work,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if ureq::get(&format!("{}/health", api.base)).call().is_ok() {
                return api;
            }
            assert!(
                Instant::now() < deadline,
                "the API did not answer /health within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// POST a JSON body; the status and the body (as JSON, or null).
    pub fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = ureq::post(&format!("{}{path}", self.base)).send_json(body);
        let resp = match r {
            Ok(resp) => resp,
            Err(ureq::Error::Status(_, resp)) => resp,
            Err(e) => panic!("POST {path}: {e}"),
        };
        let status = resp.status();
        (status, resp.into_json().unwrap_or(serde_json::Value::Null))
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issue 26, items 1 and 3: an admin made by `create-admin` logs in through the real
/// API for every address form (as typed at creation, and in the API's form), and what
/// create-admin refuses the API refuses too (422 at login).
#[test]
fn create_admin_accounts_log_in_through_the_real_api() {
    let pg = PgDb::new();
    let db = AnyDb::Pg(pg);
    db.run(&["migrate", "up"]).expect_code(0);
    db.run(&["create-org", "--id", "org_a", "--name", "A"])
        .expect_code(0);
    let pw = "a strong password 1";
    let forms = [
        ("Admin@Example.COM", "Admin@example.com"),
        ("ops@xn--bcher-kva.example", "ops@bücher.example"),
        ("ünïcödé@BÜCHER.example", "ünïcödé@bücher.example"),
        ("plain@example.com", "plain@example.com"),
        ("Postmaster@Example.org", "postmaster@example.org"),
    ];
    for (typed, _) in forms {
        db.run_stdin(
            &[
                "create-admin",
                "--org",
                "org_a",
                "--email",
                typed,
                "--password-stdin",
                "--bcrypt-cost",
                "4",
            ],
            format!("{pw}\n").as_bytes(),
        )
        .expect_code(0);
    }
    let api = Api::start(db.as_pg(), false);
    for (typed, stored) in forms {
        for email in [typed, stored] {
            let (status, body) = api.post(
                "/v1/auth/login",
                serde_json::json!({"email": email, "password": pw}),
            );
            assert_eq!(status, 200, "login as {email:?}: {body}");
            assert_eq!(body["user"]["email"], stored, "{body}");
        }
    }
    // What create-admin refuses, the API refuses at login (422), for the same reason.
    for email in ["root@corp.local", "ops@a.test", "\"q\"@example.com"] {
        let r = db.run_stdin(
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
            format!("{pw}\n").as_bytes(),
        );
        r.expect_clean_error(2);
        let (status, body) = api.post(
            "/v1/auth/login",
            serde_json::json!({"email": email, "password": pw}),
        );
        assert_eq!(status, 422, "{email}: {body}");
    }
}

/// Issue 26 item 2 (the probes that create nothing): against the real API, the open
/// routes are reported by name and fail the run; accepted, the run exits 0; the
/// default JWT secret fails only when JWT_SECRET is unset; a published password of an
/// admin fails; nothing is written; JUnit XML for CI.
#[test]
fn verify_deployment_probes_the_real_api() {
    let pg = PgDb::new();
    let db = AnyDb::Pg(pg);
    db.run(&["migrate", "up"]).expect_code(0);
    db.run(&["create-org", "--id", "org_a", "--name", "A"])
        .expect_code(0);
    db.run_stdin(
        &[
            "create-admin",
            "--org",
            "org_a",
            "--email",
            "ops@example.com",
            "--password-stdin",
            "--bcrypt-cost",
            "4",
        ],
        b"a strong password 1\n",
    )
    .expect_code(0);
    let pg = db.as_pg();
    let before = pg.dump_all();
    let api = Api::start(pg, false);
    let run = |extra: &[&str]| {
        let mut args = vec![
            "verify-deployment",
            "--api-url",
            api.base.as_str(),
            "--format",
            "json",
            "--no-fixtures",
        ];
        args.extend_from_slice(extra);
        db.run(&args)
    };
    let r = run(&[]);
    r.expect_code(1);
    let j = r.json();
    let result = |name: &str| check_of(&j, name)["result"].clone();
    assert_eq!(result("api-health"), "pass", "{j}");
    assert_eq!(result("default-jwt-secret"), "pass", "{j}");
    assert_eq!(result("expired-token"), "pass", "{j}");
    assert_eq!(result("published-passwords"), "pass", "{j}");
    assert_eq!(result("auth-required:GET /v1/auth/me"), "pass", "{j}");
    assert_eq!(
        result("auth-required:POST /v1/auth/register"),
        "pass",
        "{j}"
    );
    // The published API's open routes, by name.
    for open in [
        "auth-required:POST /v1/users",
        "auth-required:GET /v1/audits",
        "auth-required:POST /v1/orgs",
    ] {
        assert_eq!(result(open), "fail", "{open}: {j}");
    }
    let open = failed_route_checks(&j);
    // Accepted (a waiver), the run passes and still lists them.
    let mut args: Vec<&str> = Vec::new();
    for c in &open {
        args.extend(["--accept", c.as_str()]);
    }
    let junit = pg.dir.path().join("report.xml");
    args.extend(["--junit", junit.to_str().unwrap()]);
    let r = run(&args);
    r.expect_code(0);
    assert_eq!(r.json()["accepted"].as_u64().unwrap() as usize, open.len());
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuite name=\"verify-deployment\"") && xml.contains("failures=\"0\""),
        "{xml}"
    );
    run(&["--accept", "no-such-check"]).expect_clean_error(2);
    assert_eq!(pg.dump_all(), before, "the probes wrote nothing");
    drop(api);

    // JWT_SECRET unset: the API signs with its published default, and the check says so.
    let api = Api::start_with(pg, false, None);
    let r = db.run(&[
        "verify-deployment",
        "--api-url",
        api.base.as_str(),
        "--format",
        "json",
    ]);
    r.expect_code(1);
    let j = r.json();
    let secret = check_of(&j, "default-jwt-secret");
    assert_eq!(secret["result"], "fail", "{j}");
    assert!(
        secret["detail"].as_str().unwrap().contains("JWT_SECRET"),
        "{j}"
    );
    drop(api);

    // An admin with a password the deployment plan published.
    db.run_stdin(
        &[
            "create-admin",
            "--org",
            "org_a",
            "--email",
            "staging@example.com",
            "--password-stdin",
            "--bcrypt-cost",
            "4",
        ],
        b"staging-admin-password-123\n",
    )
    .expect_code(0);
    let api = Api::start(pg, false);
    let r = db.run(&["verify-deployment", "--api-url", api.base.as_str()]);
    r.expect_code(1);
    assert!(r.stdout.contains("staging@example.com"), "{}", r.stdout);
    assert!(
        !r.all().contains("staging-admin-password-123"),
        "the password is never shown"
    );
    // An API that is not there: exit 3 after --wait.
    db.run(&[
        "verify-deployment",
        "--api-url",
        "http://127.0.0.1:1",
        "--wait",
        "1s",
    ])
    .expect_clean_error(3);
}

/// The fixture rows a run may leave: organizations named like the fixtures, and users
/// in them.
fn fixture_rows(pg: &PgDb) -> String {
    pg.psql(
        "SELECT (SELECT COUNT(*) FROM orgs WHERE name LIKE 'ecomind-admin verify-deployment %') || ',' || \
                (SELECT COUNT(*) FROM users u JOIN orgs o ON o.id = u.org_id WHERE o.name LIKE 'ecomind-admin verify-deployment %')",
    )
}

/// The names of the failed checks, which must all be open routes (the published API's).
fn failed_route_checks(j: &serde_json::Value) -> Vec<String> {
    let open: Vec<String> = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["result"] == "fail")
        .map(|c| c["check"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        open.iter().all(|c| c.starts_with("auth-required:")),
        "{open:?}"
    );
    open
}

fn check_of(j: &serde_json::Value, name: &str) -> serde_json::Value {
    j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no check {name}: {j}"))
}

/// Issue 26 items 2 and 3: the plan's Tests 1 to 5 on fixtures pass against the real
/// API (default variant) and the fixtures are gone after a pass, a failure
/// (`--as-released`: the admin's login fails and names the enum labels), SIGINT, and a
/// kill -9 followed by a rerun; their audit rows stay, labelled.
#[test]
fn verify_deployment_runs_the_plans_tests_on_fixtures() {
    let db = AnyDb::Pg(PgDb::new());
    db.run(&["migrate", "up"]).expect_code(0);
    let pg = db.as_pg();
    let api = Api::start(pg, false);
    // -vv: every log line, and still no token, password or hash anywhere.
    let r = db.run(&[
        "-vv",
        "verify-deployment",
        "--api-url",
        api.base.as_str(),
        "--format",
        "json",
    ]);
    r.expect_code(1);
    for secret in ["eyJ", "$2b$", "Bearer "] {
        assert!(!r.all().contains(secret), "{secret} shown:\n{}", r.all());
    }
    let j = r.json();
    for t in [
        "plan-1-anonymous-registration-refused",
        "plan-2-admin-login",
        "plan-3-admin-registers-viewer",
        "plan-4-viewer-refused",
        "plan-5-unknown-org-clean-error",
    ] {
        assert_eq!(check_of(&j, t)["result"], "pass", "{t}: {j}");
    }
    assert_eq!(fixture_rows(pg), "0,0", "no fixture left after a run");
    assert_eq!(
        pg.psql(
            "SELECT COUNT(*) FROM audit_logs WHERE CAST(details AS TEXT) LIKE '%verify_deployment%'"
        ),
        "3",
        "the fixtures' own audit rows stay, labelled"
    );
    // The open routes accepted (a waiver): the run passes, with Tests 1 to 5.
    let open = failed_route_checks(&j);
    let mut args = vec!["verify-deployment", "--api-url", api.base.as_str()];
    for c in &open {
        args.extend(["--accept", c.as_str()]);
    }
    db.run(&args).expect_code(0);
    assert_eq!(fixture_rows(pg), "0,0");
    drop(api);

    // --as-released: the admin cannot log in, and the check says why.
    let api = Api::start(pg, true);
    let r = db.run(&[
        "verify-deployment",
        "--api-url",
        api.base.as_str(),
        "--format",
        "json",
    ]);
    r.expect_code(1);
    let login = check_of(&r.json(), "plan-2-admin-login");
    assert_eq!(login["result"], "fail");
    assert!(
        login["detail"].as_str().unwrap().contains("enum labels"),
        "{login}"
    );
    assert_eq!(fixture_rows(pg), "0,0", "no fixture left after a failure");
    drop(api);

    // kill -9 left fixtures behind: the next run removes them first.
    pg.psql(
        "INSERT INTO orgs (id, name, plan, created_at) VALUES ('org_0000000000ee', 'ecomind-admin verify-deployment deadbeef', 'free', now()); \
         INSERT INTO users (id, org_id, email, role, created_at) VALUES ('user_0000000000ee', 'org_0000000000ee', 'verify-admin-deadbeef@example.com', 'admin', now())",
    );
    let api = Api::start(pg, false);
    let r = db.run(&["verify-deployment", "--api-url", api.base.as_str()]);
    r.expect_code(1);
    assert!(r.stderr.contains("removed 1 leftover"), "{}", r.stderr);
    assert_eq!(fixture_rows(pg), "0,0");
    drop(api);

    // SIGINT and SIGTERM while it waits for an API that is not there: the fixtures go.
    for (sig, code) in [("-INT", 130), ("-TERM", 143)] {
        let child = pg
            .std_cmd()
            .args([
                "verify-deployment",
                "--api-url",
                "http://127.0.0.1:1",
                "--wait",
                "60s",
            ])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for("the fixtures", 30, || fixture_rows(pg) == "1,2");
        send(&child, sig);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{sig}: {stderr}");
        assert!(stderr.contains("fixtures were removed"), "{sig}: {stderr}");
        assert_eq!(fixture_rows(pg), "0,0", "no fixture left after {sig}");
    }
}
