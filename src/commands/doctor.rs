//! `doctor`: the one command a DBA runs before a deploy. Connection, migration state,
//! schema drift, the role's privileges per command, and the audit's critical findings;
//! exit 1 when anything blocks a deploy. Read-only.

use std::fmt::Write as _;

use clap::Args;
use serde::Serialize;
use serde_json::{Value, json};

use super::Ctx;
use crate::audit::{self, rules::Params, rules::Rule};
use crate::db::{self, Db};
use crate::commands::Done;
use crate::spec::{Fleet, Info, Work};
use crate::error::Outcome;
use crate::error::Result;
use crate::migrations::{Alembic, State, known};
use crate::output::{Output, Report, plural, shown};
use crate::privileges::scalar;
use crate::records;
use crate::schema::check as verify_schema;
use crate::schema::introspect::Introspection;

#[derive(Debug, Args)]
pub struct DoctorArgs {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Diagnosis {
    /// `connection`, `writable`, `migrations`, `schema`, `privileges`, `audit`,
    /// `emails`, `audit-key`.
    pub check: &'static str,
    pub status: Status,
    /// One line for humans.
    pub summary: String,
    /// The facts behind the summary, per check (null when the check could not run):
    /// connection `{url, backend, server_version, tls}`; writable `{writable}`;
    /// migrations `{current, alembic_version, pending: [revision]}`; schema `{findings:
    /// 0}` on an empty database, else `{errors, warnings, kinds: [finding kind]}`;
    /// privileges `{<command>: true|false}`; audit `{critical, findings}`; emails
    /// `{unreachable, privileged}`; audit-key `{configured, key_id, path}`.
    pub details: Value,
}

/// Can a deploy go ahead?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    Ready,
    Blocked,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DoctorReport {
    pub database: String,
    pub status: Readiness,
    pub checks: Vec<Diagnosis>,
}

impl Report for DoctorReport {
    fn render(&self, out: &mut String, ui: &Output) {
        let mut t = ui.table(&["check", "status", "summary"]);
        for c in &self.checks {
            let s = match c.status {
                Status::Ok => "ok",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            t.add_row(vec![c.check.to_owned(), s.to_owned(), c.summary.clone()]);
        }
        let _ = writeln!(out, "database: {}", shown(&self.database));
        let _ = writeln!(out, "{t}");
        let blocking: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.check)
            .collect();
        if blocking.is_empty() {
            let _ = writeln!(out, "READY: nothing blocks a deploy.");
        } else {
            let _ = writeln!(out, "BLOCKED by: {}", blocking.join(", "));
        }
    }
}

pub const INFO: Info = Info {
    name: "doctor",
    database: true,
    csv: false,
    fleet: Fleet::Each,
    grants: None,
    fails_when: Some("something blocks a deploy under `doctor`"),
    schema: Some(crate::contracts::document::<DoctorReport>),
};

impl super::Spec for DoctorArgs {
    const INFOS: &'static [&'static Info] = &[&INFO];

    fn info(&self) -> &'static Info {
        &INFO
    }

    fn work(&self) -> Work {
        Work::ReadOnly
    }

    fn lock(&mut self) -> Option<&mut super::LockArgs> {
        None
    }

    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        execute(self, ctx).await
    }
}

async fn execute(_args: &DoctorArgs, ctx: &Ctx) -> Result<Done> {
    let ui = &ctx.ui;
    let report = ctx
        .with_db(db::Open::Existing, async |db| {
            diagnose(db, ui, &(ctx.catalog)()).await
        })
        .await?;
    let outcome = if report.status == Readiness::Ready {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    };
    Ok(Done::report(report, outcome))
}

async fn diagnose(db: &Db, ui: &Output, catalog: &[&'static Info]) -> Result<DoctorReport> {
    let mut checks = vec![check_connection(db).await];
    let writable = db.ensure_writable().await;
    checks.push(check_writable(&writable));
    // State and live schema from one snapshot, shared by the migration and schema checks.
    let (state, intro) = verify_schema::read_live(db).await?;
    checks.push(check_migrations(&state));
    // An empty database has no drift and nothing to audit: migrate up makes the schema.
    let empty = state.current().is_none()
        && state.unrecorded_tables.is_empty()
        && state.alembic == Alembic::Absent;
    checks.push(check_schema(db, &state, &intro, empty));
    checks.push(check_privileges(db, &state, writable.is_ok(), catalog).await);
    let unmanaged = !state.unrecorded_tables.is_empty()
        && state.current().is_none()
        && state.alembic == Alembic::Absent;
    checks.push(check_audit(db, empty || unmanaged, ui).await);
    checks.push(check_emails(db, empty || unmanaged).await);
    checks.push(check_audit_key());
    let blocked = checks.iter().any(|c| c.status == Status::Fail);
    Ok(DoctorReport {
        database: db.url.clone(),
        status: if blocked {
            Readiness::Blocked
        } else {
            Readiness::Ready
        },
        checks,
    })
}

/// Accounts whose stored email the API can never match at login (its EmailStr
/// normalizes what is typed): a warning naming how many, and how many are owners or
/// admins (`audit --rule unreachable-email` lists them).
async fn check_emails(db: &Db, unmanaged: bool) -> Diagnosis {
    let check = "emails";
    if unmanaged {
        return Diagnosis {
            check,
            status: Status::Ok,
            summary: "no managed schema yet: no accounts".into(),
            details: Value::Null,
        };
    }
    let rows = db
        .query_all("SELECT email, CAST(role AS TEXT) AS role FROM users")
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            return Diagnosis {
                check,
                status: Status::Warn,
                summary: format!("the accounts could not be read: {}", e.message()),
                details: Value::Null,
            };
        }
    };
    let (mut unreachable, mut privileged) = (0u64, 0u64);
    for row in rows {
        let email: String = row.try_get("", "email").unwrap_or_default();
        let role: Option<String> = row.try_get("", "role").ok().flatten();
        if crate::emails::normalize(&email).is_ok_and(|n| n.email == email) {
            continue;
        }
        unreachable += 1;
        if matches!(role.as_deref(), Some("owner" | "admin")) {
            privileged += 1;
        }
    }
    Diagnosis {
        check,
        status: if unreachable == 0 {
            Status::Ok
        } else {
            Status::Warn
        },
        summary: if unreachable == 0 {
            "every account's email is the form the API looks up at login".into()
        } else {
            format!(
                "{} the API can never log in ({} of them owner or admin): see `audit suspicious-accounts --rule unreachable-email`",
                plural(unreachable, "account", "accounts"),
                privileged
            )
        },
        details: json!({"unreachable": unreachable, "privileged": privileged}),
    }
}

/// The audit key that makes ecomind-admin's own audit rows tamper-evident: without one
/// they are unauthenticated provenance (a warning, with how to make one); a key that is
/// configured but unusable fails (writes would refuse, the audit could not verify).
fn check_audit_key() -> Diagnosis {
    let check = "audit-key";
    match crate::provenance::configured() {
        Ok(Some(key)) => Diagnosis {
            check,
            status: Status::Ok,
            summary: format!(
                "key {} ({}): ecomind-admin's audit rows are tagged and verified",
                key.id,
                key.path.display()
            ),
            details: json!({"configured": true, "key_id": key.id, "path": key.path}),
        },
        Ok(None) => {
            let path = crate::provenance::default_path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "FILE".into());
            Diagnosis {
                check,
                status: Status::Warn,
                summary: format!(
                    "none: ecomind-admin's audit rows are unauthenticated provenance (anyone who can write \
                     audit_logs can forge them); make one: umask 077; mkdir -p {dir}; openssl rand -hex 32 > {path} \
                     (or set {env})",
                    dir = std::path::Path::new(&path)
                        .parent()
                        .map(|d| d.display().to_string())
                        .unwrap_or_default(),
                    env = crate::provenance::KEY_FILE_ENV,
                ),
                details: json!({"configured": false, "key_id": null, "path": null}),
            }
        }
        Err(e) => Diagnosis {
            check,
            status: Status::Fail,
            summary: format!("{} ({})", e.message(), e.hint().unwrap_or_default()),
            details: json!({"configured": true, "key_id": null, "path": null}),
        },
    }
}

/// The server, its version and whether the session is encrypted.
async fn check_connection(db: &Db) -> Diagnosis {
    let pg = db.is_postgres();
    let (version, tls) = if pg {
        (
            scalar::<String>(db, "SELECT current_setting('server_version') AS v").await,
            scalar::<bool>(
                db,
                "SELECT ssl AS v FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            )
            .await,
        )
    } else {
        (
            scalar::<String>(db, "SELECT sqlite_version() AS v").await,
            None,
        )
    };
    let backend = if pg { "PostgreSQL" } else { "SQLite" };
    Diagnosis {
        check: "connection",
        status: if pg && tls != Some(true) {
            Status::Warn
        } else {
            Status::Ok
        },
        summary: format!(
            "{backend} {}{}",
            version.clone().unwrap_or_default(),
            match (pg, tls) {
                (false, _) => ", local file".to_owned(),
                (true, Some(true)) => ", TLS".to_owned(),
                _ => ", no TLS (add ?sslmode=require)".to_owned(),
            }
        ),
        details: json!({"url": db.url, "backend": backend, "server_version": version, "tls": tls}),
    }
}

fn check_writable(writable: &Result<()>) -> Diagnosis {
    Diagnosis {
        check: "writable",
        status: if writable.is_ok() {
            Status::Ok
        } else {
            Status::Fail
        },
        summary: match writable {
            Ok(()) => "the session can write".to_owned(),
            Err(e) => e.message().to_owned(),
        },
        details: json!({"writable": writable.is_ok()}),
    }
}

/// Where the bookkeeping stands: current version, pending ones, consistency.
fn check_migrations(state: &State) -> Diagnosis {
    let pending: Vec<String> = state
        .pending()
        .into_iter()
        .map(|i| known()[i].version.clone())
        .collect();
    let consistent = state.check_writable();
    let current = state
        .current()
        .map(|i| format!("{} ({})", known()[i].alembic_revision, known()[i].version));
    Diagnosis {
        check: "migrations",
        status: match (&consistent, pending.is_empty()) {
            (Err(_), _) => Status::Fail,
            (Ok(()), false) => Status::Warn,
            (Ok(()), true) => Status::Ok,
        },
        summary: match &consistent {
            Err(e) => format!("{} ({})", e.message(), e.hint().unwrap_or_default()),
            Ok(()) if pending.is_empty() => {
                format!("up to date at {}", current.clone().unwrap_or_default())
            }
            Ok(()) => format!(
                "at {}; {} pending (migrate up applies them): {}",
                current.clone().unwrap_or_else(|| "no version".into()),
                pending.len(),
                pending.join(", ")
            ),
        },
        details: json!({
            "current": current,
            "alembic_version": (state.alembic != Alembic::Absent).then(|| state.alembic.clone()),
            "pending": pending,
        }),
    }
}

/// Schema drift against the recorded (or detected) version.
fn check_schema(db: &Db, state: &State, intro: &Introspection, empty: bool) -> Diagnosis {
    if empty {
        return Diagnosis {
            check: "schema",
            status: Status::Ok,
            summary: "empty database: migrate up creates the schema".into(),
            details: json!({"findings": 0}),
        };
    }
    let report = verify_schema::choose_version(state, None).map(|against| {
        verify_schema::build_report(db, against, &intro.schema, intro.queries, false)
    });
    match report {
        Ok(report) => Diagnosis {
            check: "schema",
            status: if report.summary.errors > 0 {
                Status::Fail
            } else if report.summary.warnings > 0 {
                Status::Warn
            } else {
                Status::Ok
            },
            summary: format!(
                "{} against revision {}: {}, {} (see verify-schema)",
                report.summary.status,
                report.against.alembic_revision,
                plural(report.summary.errors as u64, "error", "errors"),
                plural(report.summary.warnings as u64, "warning", "warnings")
            ),
            details: json!({"errors": report.summary.errors, "warnings": report.summary.warnings,
                            "kinds": report.findings.iter().map(|f| f.kind).collect::<Vec<_>>()}),
        },
        Err(e) => Diagnosis {
            check: "schema",
            status: Status::Fail,
            summary: e.message().to_owned(),
            details: Value::Null,
        },
    }
}

/// Which commands the role may run; blocking only when migrations are pending and
/// the role cannot apply them.
async fn check_privileges(
    db: &Db,
    state: &State,
    writable: bool,
    catalog: &[&'static Info],
) -> Diagnosis {
    let grants: Vec<&'static crate::spec::Grants> =
        catalog.iter().filter_map(|i| i.grants.as_ref()).collect();
    let privileges = crate::privileges::per_command(db, writable, &grants).await;
    let missing: Vec<&str> = privileges
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(cmd, _)| *cmd)
        .collect();
    let migrate_blocked = !state.pending().is_empty() && missing.contains(&"migrate");
    Diagnosis {
        check: "privileges",
        status: if migrate_blocked {
            Status::Fail
        } else if missing.is_empty() {
            Status::Ok
        } else {
            Status::Warn
        },
        summary: if missing.is_empty() {
            "the role may run every command".into()
        } else {
            format!(
                "the role may not run: {}{}",
                missing.join(", "),
                if migrate_blocked {
                    " (and migrations are pending)"
                } else {
                    ""
                }
            )
        },
        details: Value::Object(
            privileges
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect(),
        ),
    }
}

/// The audit's critical findings of the last 7 days. `unmanaged`: no schema the
/// audit can read yet.
async fn check_audit(db: &Db, unmanaged: bool, ui: &Output) -> Diagnosis {
    if unmanaged {
        return Diagnosis {
            check: "audit",
            status: Status::Ok,
            summary: "no managed schema yet: nothing to audit".into(),
            details: Value::Null,
        };
    }
    let params = Params {
        since: records::now() - chrono::Duration::days(7),
        fixed_at: None,
        org: None,
        failed_threshold: 10,
        key: crate::provenance::configured().ok().flatten(),
        verified: None,
    };
    match audit::stream(db, &params, &Rule::ALL, ui, &mut |_| Ok(())).await {
        Ok(tally) => {
            let critical = tally.count(audit::Risk::Critical);
            let findings: usize = tally.per_risk.iter().sum();
            Diagnosis {
                check: "audit",
                status: if critical > 0 {
                    Status::Fail
                } else {
                    Status::Ok
                },
                summary: format!(
                    "{} (last 7 days; see audit suspicious-accounts)",
                    plural(critical as u64, "critical finding", "critical findings")
                ),
                details: json!({"critical": critical, "findings": findings}),
            }
        }
        Err(e) => Diagnosis {
            check: "audit",
            status: Status::Warn,
            summary: format!("the audit could not run: {}", e.message()),
            details: Value::Null,
        },
    }
}
