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
        })
    }

    fn request(&self, method: &str, path: &str, token: Option<&str>) -> Result<Answer> {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let sent = if method == "GET" {
            req.call()
        } else {
            req.set("Content-Type", "application/json")
                .send_string("{}")
        };
        let resp = match sent {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
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
                Ok(_) => return Ok(()),
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
