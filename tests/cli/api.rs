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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Api {
    /// Start the API (`--as-released` when `released`) on `pg`'s database and wait for
    /// `GET /health`.
    pub fn start(pg: &PgDb, released: bool) -> Api {
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
        let child = cmd
            .env("DATABASE_URL", url)
            .env("PORT", port.to_string())
            .env("VENV", venv)
            .env("WORK", work.path())
            .env("JWT_SECRET", "a test secret of the API tests, long enough")
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
