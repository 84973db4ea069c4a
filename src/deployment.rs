//! The deployment checked where it is judged: at the running API, with the database
//! beside it. These are the probes that create nothing: the API answers, every route
//! that should need a token refuses a request without one, tokens signed with the
//! API's published default secret (fresh or expired) are refused, and no owner or
//! admin uses a password the deployment plan itself published. Knows nothing of the
//! terminal; HTTP through ureq.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};

/// The secret the published API signs tokens with when `JWT_SECRET` is unset.
pub const DEFAULT_JWT_SECRET: &str = "dev-secret-change-in-production";

/// Passwords the deployment plan publishes ("DO NOT use in production"): its staging
/// credentials and its examples.
pub const PUBLISHED_PASSWORDS: [&str; 4] = [
    "staging-admin-password-123",
    "staging-viewer-password-123",
    "test123",
    "password123",
];

/// The routes that must refuse a request without a token (method, path). The probe
/// sends `{}` as the body: FastAPI resolves a route's auth dependency before it
/// validates the body, so 401/403 means the route asked for a token, and 422 (or any
/// other answer) means it never did.
pub const PROTECTED_ROUTES: [(&str, &str); 14] = [
    ("POST", "/v1/auth/register"),
    ("GET", "/v1/auth/me"),
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/users"),
    ("GET", "/v1/users/user_000000000000"),
    ("GET", "/v1/orgs/org_000000000000/users"),
    ("POST", "/v1/orgs"),
    ("GET", "/v1/orgs/org_000000000000"),
    ("GET", "/v1/orgs"),
    ("GET", "/v1/audits"),
    ("POST", "/v1/ingest"),
    ("POST", "/v1/alerts"),
    ("POST", "/v1/reports"),
    ("GET", "/v1/today"),
];

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// Failed, and the operator accepted it (`--accept`): listed, never dropped.
    Accepted,
}

/// One check: its name (what `--accept` takes), how it ended, and why.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Check {
    pub check: String,
    pub result: Verdict,
    pub detail: String,
}

/// The API at `base` (`http://host:port`, no trailing slash).
pub struct Api {
    base: String,
    agent: ureq::Agent,
    /// The API answered once: a later dropped connection is its answer (status 0,
    /// a failed check), not "cannot reach the API".
    reached: std::cell::Cell<bool>,
}

/// A status and a body, whatever the status.
struct Answer {
    status: u16,
    body: String,
}

impl Api {
    pub fn new(url: &str) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| {
            Error::usage(
                format!("invalid --api-url: {e}"),
                "pass the API's base URL, e.g. --api-url http://127.0.0.1:8000",
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(Error::usage(
                "invalid --api-url: it must be an http:// or https:// URL with a host",
                "e.g. --api-url https://api.example.com",
            ));
        }
        Ok(Self {
            base: url.trim_end_matches('/').to_owned(),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(10))
                .redirects(0)
                .build(),
            reached: std::cell::Cell::new(false),
        })
    }

    fn request(&self, method: &str, path: &str, token: Option<&str>) -> Result<Answer> {
        self.send(method, path, token, "{}")
    }

    /// A request with a JSON `body` (ignored for GET); the status and the body,
    /// whatever the status.
    fn send(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> Result<Answer> {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let sent = if method == "GET" {
            req.call()
        } else {
            req.set("Content-Type", "application/json")
                .send_string(body)
        };
        let resp = match sent {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) if self.reached.get() => {
                return Ok(Answer {
                    status: 0,
                    body: format!("no answer: {}", crate::redact::redact_text(&t.to_string())),
                });
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(Error::database(
                    format!(
                        "cannot reach the API at {}: {}",
                        crate::redact::redact_url(&self.base),
                        crate::redact::redact_text(&t.to_string())
                    ),
                    "check --api-url and that the API runs; --wait waits for it to start",
                ));
            }
        };
        let status = resp.status();
        let mut body = String::new();
        use std::io::Read as _;
        let _ = resp.into_reader().take(64 * 1024).read_to_string(&mut body);
        Ok(Answer { status, body })
    }

    /// Wait up to `wait` for `GET /health` to answer (like dbmate's `--wait`).
    pub fn wait_until_up(&self, wait: Duration) -> Result<()> {
        let deadline = Instant::now() + wait;
        loop {
            match self.request("GET", "/health", None) {
                Ok(_) => {
                    self.reached.set(true);
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    /// `GET /health` and `GET /` answer 200.
    pub fn health(&self) -> Result<Check> {
        let health = self.request("GET", "/health", None)?;
        let root = self.request("GET", "/", None)?;
        let ours = root.body.contains("ecomind-api");
        let ok = health.status == 200 && root.status == 200 && ours;
        Ok(Check {
            check: "api-health".into(),
            result: if ok { Verdict::Pass } else { Verdict::Fail },
            detail: format!(
                "GET /health answered {}, GET / answered {}{}",
                health.status,
                root.status,
                if ours {
                    " (ecomind-api)"
                } else {
                    ", not naming ecomind-api"
                }
            ),
        })
    }

    /// Each protected route, asked without a token.
    pub fn open_routes(&self) -> Result<Vec<Check>> {
        let mut out = Vec::new();
        for (method, path) in PROTECTED_ROUTES {
            let a = self.request(method, path, None)?;
            let asked = matches!(a.status, 401 | 403);
            out.push(Check {
                check: format!("auth-required:{method} {path}"),
                result: if asked { Verdict::Pass } else { Verdict::Fail },
                detail: if asked {
                    format!("refused without a token ({})", a.status)
                } else {
                    format!(
                        "answered {} without a token: the route never asks for one",
                        a.status
                    )
                },
            });
        }
        Ok(out)
    }

    /// Tokens signed with the published default secret: a fresh one for `user_id` (an
    /// existing user, so that only the signature decides) and an expired one.
    pub fn default_secret(&self, user_id: Option<&str>) -> Result<Vec<Check>> {
        let sub = user_id.unwrap_or("user_000000000000");
        let now = chrono::Utc::now().timestamp();
        let fresh = self.request("GET", "/v1/auth/me", Some(&hs256(sub, now + 600)))?;
        let expired = self.request("GET", "/v1/auth/me", Some(&hs256(sub, now - 600)))?;
        let leak = |a: &Answer| a.status < 300;
        let mut fresh_check = Check {
            check: "default-jwt-secret".into(),
            result: if leak(&fresh) {
                Verdict::Fail
            } else {
                Verdict::Pass
            },
            detail: if leak(&fresh) {
                "the API accepts a token signed with its published default secret: set JWT_SECRET to a secret of its own".into()
            } else {
                format!("refused ({})", fresh.status)
            },
        };
        if user_id.is_none() && !leak(&fresh) {
            fresh_check.detail.push_str(
                "; no user in the database to name in the token, so a 401 may also mean \"user not found\"",
            );
        }
        Ok(vec![
            fresh_check,
            Check {
                check: "expired-token".into(),
                result: if leak(&expired) {
                    Verdict::Fail
                } else {
                    Verdict::Pass
                },
                detail: if leak(&expired) {
                    "the API accepts an expired token".into()
                } else {
                    format!("refused ({})", expired.status)
                },
            },
        ])
    }
}

/// An HS256 JWT `{"sub": sub, "exp": exp}` signed with [`DEFAULT_JWT_SECRET`].
fn hs256(sub: &str, exp: i64) -> String {
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64.encode(serde_json::json!({"sub": sub, "exp": exp}).to_string());
    let signing = format!("{header}.{payload}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(DEFAULT_JWT_SECRET.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(signing.as_bytes());
    let sig = b64.encode(mac.finalize().into_bytes());
    format!("{signing}.{sig}")
}

/// Owners and admins whose password hash verifies one of [`PUBLISHED_PASSWORDS`]
/// (`accounts`: email and hash), checked on every core at once.
pub fn published_passwords(accounts: &[(String, String)]) -> Check {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = accounts.len().div_ceil(threads).max(1);
    let hits: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = accounts
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .filter(|(_, hash)| {
                            PUBLISHED_PASSWORDS
                                .iter()
                                .any(|pw| bcrypt::verify(pw, hash).unwrap_or(false))
                        })
                        .map(|(email, _)| email.clone())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    Check {
        check: "published-passwords".into(),
        result: if hits.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        detail: if hits.is_empty() {
            format!(
                "none of {} owners and admins uses a password the deployment plan published",
                accounts.len()
            )
        } else {
            format!(
                "uses a password the deployment plan published: {} (reset it: `users reset-password`)",
                hits.iter()
                    .map(|e| crate::text::shown(e).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    }
}

/// A JUnit XML report of `checks` (for CI systems), suite `name`.
pub fn junit(name: &str, checks: &[Check]) -> String {
    let esc = |s: &str| {
        s.chars()
            .filter(|c| !c.is_control() || *c == '\t')
            .collect::<String>()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let failures = checks.iter().filter(|c| c.result == Verdict::Fail).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{}\">\n",
        esc(name),
        checks.len(),
        checks
            .iter()
            .filter(|c| c.result == Verdict::Accepted)
            .count()
    );
    for c in checks {
        out.push_str(&format!(
            "  <testcase classname=\"{}\" name=\"{}\"",
            esc(name),
            esc(&c.check)
        ));
        match c.result {
            Verdict::Pass => out.push_str("/>\n"),
            Verdict::Fail => out.push_str(&format!(
                ">\n    <failure message=\"{}\"/>\n  </testcase>\n",
                esc(&c.detail)
            )),
            Verdict::Accepted => out.push_str(&format!(
                ">\n    <skipped message=\"accepted: {}\"/>\n  </testcase>\n",
                esc(&c.detail)
            )),
        }
    }
    out.push_str("</testsuite>\n");
    out
}

/// The number a `SELECT COUNT(*) AS n ...` answers.
async fn count(db: &crate::db::Db, sql: &str) -> Result<i64> {
    Ok(db
        .query_one(sql)
        .await?
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .unwrap_or(-1))
}

/// The name prefix of a fixture organization: how a later run (after `kill -9`) finds
/// what an earlier one left.
pub const FIXTURE_ORG_PREFIX: &str = "ecomind-admin verify-deployment ";

/// The throwaway accounts of one run: an org, an admin and a viewer in it (made in the
/// database), and the viewer the admin registers through the API (Test 3). Passwords are random, never
/// printed, never in argv.
pub struct Fixtures {
    pub run: String,
    pub org_id: String,
    pub admin_id: String,
    pub admin_email: String,
    pub admin_password: String,
    pub viewer_email: String,
    pub viewer_password: String,
    /// A viewer made with the fixtures (Test 4 logs in as it: independent of Test 3).
    pub fixture_viewer_id: String,
    pub fixture_viewer_email: String,
    pub fixture_viewer_password: String,
}

fn random_password() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

impl Fixtures {
    pub fn new() -> Self {
        let run = crate::records::new_id("", 8);
        Self {
            org_id: crate::records::new_id("org_", 12),
            admin_id: crate::records::new_id("user_", 12),
            admin_email: format!("verify-admin-{run}@example.com"),
            admin_password: random_password(),
            viewer_email: format!("verify-viewer-{run}@example.com"),
            viewer_password: random_password(),
            fixture_viewer_id: crate::records::new_id("user_", 12),
            fixture_viewer_email: format!("verify-fixture-viewer-{run}@example.com"),
            fixture_viewer_password: random_password(),
            run,
        }
    }
}

impl Default for Fixtures {
    fn default() -> Self {
        Self::new()
    }
}

fn verdict(name: &str, ok: bool, detail: String) -> Check {
    Check {
        check: name.to_owned(),
        result: if ok { Verdict::Pass } else { Verdict::Fail },
        detail,
    }
}

fn token_of(a: &Answer) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(&a.body)
        .ok()
        .and_then(|v| v["access_token"].as_str().map(str::to_owned))
}

impl Api {
    fn register(
        &self,
        f: &Fixtures,
        token: Option<&str>,
        email: &str,
        org: &str,
    ) -> Result<Answer> {
        let body = serde_json::json!({"email": email, "password": f.viewer_password,
                                      "name": "verify-deployment", "org_id": org});
        self.send("POST", "/v1/auth/register", token, &body.to_string())
    }

    fn login(&self, email: &str, password: &str) -> Result<Answer> {
        let body = serde_json::json!({"email": email, "password": password});
        self.send("POST", "/v1/auth/login", None, &body.to_string())
    }
}

/// The plan's Tests 1 to 5 through the API, each checked in the database after its
/// request. (The requests block the runtime's one thread; the database is idle then.)
pub async fn plan_tests(api: &Api, f: &Fixtures, db: &crate::db::Db) -> Result<Vec<Check>> {
    let q = crate::db::quote_literal;
    let users_with =
        |email: &str| format!("SELECT COUNT(*) AS n FROM users WHERE email = {}", q(email));
    let mut out = Vec::new();
    // Test 1: anonymous registration is refused, and no account appears.
    let a = api.register(f, None, &f.viewer_email, &f.org_id)?;
    let rows = count(db, &users_with(&f.viewer_email)).await?;
    out.push(verdict(
        "plan-1-anonymous-registration-refused",
        matches!(a.status, 401 | 403) && rows == 0,
        format!("answered {}; {rows} account(s) made", a.status),
    ));
    // Test 2: the admin logs in, and the API records it.
    let a = api.login(&f.admin_email, &f.admin_password)?;
    let admin_token = token_of(&a);
    let rows = count(
        db,
        &format!(
            "SELECT COUNT(*) AS n FROM audit_logs WHERE action = 'login_success' AND user_id = {}",
            q(&f.admin_id)
        ),
    )
    .await?;
    out.push(verdict(
        "plan-2-admin-login",
        a.status == 200 && admin_token.is_some() && rows == 1,
        if a.status >= 500 {
            format!("answered {}: on a database that verifies, the likely cause is the enum labels (the API as released stores the member names ADMIN, FREE; the migrations create the labels admin, free)", a.status)
        } else {
            format!("answered {}; {rows} login_success row(s)", a.status)
        },
    ));
    let Some(admin_token) = admin_token else {
        for name in [
            "plan-3-admin-registers-viewer",
            "plan-4-viewer-refused",
            "plan-5-unknown-org-clean-error",
        ] {
            out.push(verdict(
                name,
                false,
                "not run: the admin could not log in (plan-2)".into(),
            ));
        }
        return Ok(out);
    };
    out.extend(plan_tests_as_admin(api, f, db, &admin_token).await?);
    Ok(out)
}

/// Make the fixtures in one transaction: the org and the admin (bcrypt of the random
/// password), each with an audit row that names this check and its run (they stay,
/// as evidence, after the fixtures are removed).
pub async fn create_fixtures(db: &crate::db::Db, f: &Fixtures) -> Result<()> {
    use sea_orm::{ActiveModelTrait as _, ActiveValue::Set};
    let admin = (&f.admin_id, &f.admin_email, crate::entities::Role::Admin);
    let viewer = (
        &f.fixture_viewer_id,
        &f.fixture_viewer_email,
        crate::entities::Role::Viewer,
    );
    let hashes = [
        crate::accounts::hash_password(&f.admin_password, 10)?,
        crate::accounts::hash_password(&f.fixture_viewer_password, 10)?,
    ];
    let ts = crate::records::now();
    crate::db::commit_if_ok(
        db.begin().await?,
        "making the verify-deployment fixtures",
        async |txn| {
            crate::entities::orgs::ActiveModel {
                id: Set(f.org_id.clone()),
                name: Set(format!("{FIXTURE_ORG_PREFIX}{}", f.run)),
                plan: Set(Some(crate::entities::PlanType::Free)),
                created_at: Set(Some(ts)),
            }
            .insert(txn)
            .await
            .map_err(|e| Error::from_db(e, "making the fixture organization"))?;
            let mark = serde_json::json!(f.run);
            for ((id, email, role), hash) in [admin, viewer].into_iter().zip(hashes.clone()) {
                fixture_user(txn, &f.org_id, id, email, role, hash, &mark, ts).await?;
            }
            let details = crate::records::details(&[("verify_deployment", mark)], ts);
            crate::records::record(txn, &f.org_id, None, "org_created", "orgs", details, ts)
                .await?;
            Ok(())
        },
    )
    .await
}

/// One fixture account and its `user_registered` row, marked with the run.
#[allow(clippy::too_many_arguments)]
async fn fixture_user(
    txn: &sea_orm::DatabaseTransaction,
    org_id: &str,
    id: &str,
    email: &str,
    role: crate::entities::Role,
    hash: String,
    mark: &serde_json::Value,
    ts: chrono::NaiveDateTime,
) -> Result<()> {
    use sea_orm::{ActiveModelTrait as _, ActiveValue::Set};
    #[allow(clippy::needless_update)]
    crate::entities::users::ActiveModel {
        id: Set(id.to_owned()),
        org_id: Set(org_id.to_owned()),
        email: Set(email.to_owned()),
        name: Set(Some("verify-deployment".into())),
        role: Set(Some(role)),
        created_at: Set(Some(ts)),
        password_hash: Set(Some(hash)),
        // Columns of later revisions keep their database default.
        ..Default::default()
    }
    .insert(txn)
    .await
    .map_err(|e| Error::from_db(e, "making a fixture account"))?;
    let details = crate::records::details(
        &[
            ("email", serde_json::json!(email)),
            (
                "role",
                serde_json::json!(sea_orm::ActiveEnum::to_value(&role)),
            ),
            ("verify_deployment", mark.clone()),
        ],
        ts,
    );
    crate::records::record(
        txn,
        org_id,
        Some(id),
        "user_registered",
        "authentication",
        details,
        ts,
    )
    .await?;
    Ok(())
}

/// Remove every fixture organization (this run's, or one a `kill -9` left) and its
/// users, in one transaction; their audit rows stay. The number of organizations.
pub async fn remove_fixtures(db: &crate::db::Db) -> Result<u64> {
    use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
    crate::db::commit_if_ok(
        db.begin().await?,
        "removing the verify-deployment fixtures",
        async |txn| {
            let orgs: Vec<String> = crate::entities::orgs::Entity::find()
                .filter(crate::entities::orgs::Column::Name.starts_with(FIXTURE_ORG_PREFIX))
                .all(txn)
                .await
                .map_err(|e| Error::from_db(e, "finding the fixtures"))?
                .into_iter()
                .map(|o| o.id)
                .collect();
            if orgs.is_empty() {
                return Ok(0);
            }
            crate::entities::users::Entity::delete_many()
                .filter(crate::entities::users::Column::OrgId.is_in(orgs.clone()))
                .exec(txn)
                .await
                .map_err(|e| Error::from_db(e, "removing the fixture users"))?;
            let n = crate::entities::orgs::Entity::delete_many()
                .filter(crate::entities::orgs::Column::Id.is_in(orgs))
                .exec(txn)
                .await
                .map_err(|e| Error::from_db(e, "removing the fixture organizations"))?
                .rows_affected;
            Ok(n)
        },
    )
    .await
}

/// Tests 3 to 5, with the admin's token.
async fn plan_tests_as_admin(
    api: &Api,
    f: &Fixtures,
    db: &crate::db::Db,
    admin_token: &str,
) -> Result<Vec<Check>> {
    let q = crate::db::quote_literal;
    let users_with =
        |email: &str| format!("SELECT COUNT(*) AS n FROM users WHERE email = {}", q(email));
    let mut out = Vec::new();
    // Test 3: the admin registers a viewer: its row with a hash, the row naming the admin.
    let a = api.register(f, Some(admin_token), &f.viewer_email, &f.org_id)?;
    let viewer = count(db, &format!(
        "SELECT COUNT(*) AS n FROM users WHERE email = {} AND CAST(role AS TEXT) = 'viewer' AND password_hash IS NOT NULL",
        q(&f.viewer_email)
    )).await?;
    let logged = count(db, &format!(
        "SELECT COUNT(*) AS n FROM audit_logs WHERE action = 'user_registered' AND org_id = {} AND CAST(details AS TEXT) LIKE {}",
        q(&f.org_id),
        q(&format!("%{}%", f.admin_id))
    )).await?;
    out.push(verdict(
        "plan-3-admin-registers-viewer",
        a.status == 201 && viewer == 1 && logged == 1,
        format!(
            "answered {}; viewer rows {viewer}, user_registered rows naming the admin {logged}",
            a.status
        ),
    ));
    // Test 4: the viewer may not register anyone.
    let viewer_token = token_of(&api.login(&f.fixture_viewer_email, &f.fixture_viewer_password)?);
    let other = format!("verify-other-{}@example.com", f.run);
    let a = api.register(f, viewer_token.as_deref(), &other, &f.org_id)?;
    let rows = count(db, &users_with(&other)).await?;
    out.push(verdict(
        "plan-4-viewer-refused",
        viewer_token.is_some() && a.status == 403 && rows == 0,
        format!("answered {}; {rows} account(s) made", a.status),
    ));
    // Test 5: an unknown org: a clean refusal, never a server error or a stack trace.
    let a = api.register(f, Some(admin_token), &other, "org_ffffffffffff")?;
    let trace = a.body.contains("Traceback") || a.body.contains("File \"");
    out.push(verdict(
        "plan-5-unknown-org-clean-error",
        a.status < 500 && !trace,
        format!(
            "answered {} (the API answers 403 here, not the plan's 404: it checks the caller's org before the org exists){}",
            a.status,
            if trace { "; the body holds a stack trace" } else { "" }
        ),
    ));
    Ok(out)
}
