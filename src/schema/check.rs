//! Checking a live schema against the expected schema of a version: which version
//! (the bookkeeping's, Alembic's or a flag's), the live schema from one read-only
//! snapshot, the diff and its summary. Shared by verify-schema, baseline and doctor.

use serde::Serialize;

use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::migrations::{self, Alembic, State, known};
use crate::schema::diff::BOOKKEEPING_TABLES;
use crate::schema::introspect::{Introspection, introspect};
use crate::schema::{Drift, Severity, diff, snapshots::expected};

/// Where the version compared against came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VersionSource {
    /// `--against`.
    Flag,
    SeaqlMigrations,
    AlembicVersion,
    /// Nothing recorded: compared with head.
    Unmanaged,
}

/// The version a check compares against, and why.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Against {
    pub version: String,
    pub alembic_revision: &'static str,
    pub source: VersionSource,
    #[serde(skip)]
    pub index: usize,
}

/// Decide which version's schema to expect.
pub fn choose_version(state: &State, flag: Option<usize>) -> Result<Against> {
    let make = |index: usize, source| {
        let k = &known()[index];
        Against {
            version: k.version.clone(),
            alembic_revision: k.alembic_revision,
            source,
            index,
        }
    };
    if let Some(i) = flag {
        return Ok(make(i, VersionSource::Flag));
    }
    if !state.unknown.is_empty() {
        return Err(Error::refused(
            format!(
                "seaql_migrations records migrations this build of ecomind-admin does not know: {}",
                state.unknown.join(", ")
            ),
            "upgrade ecomind-admin, or pass --against VERSION",
        ));
    }
    if let Some(i) = state.current() {
        return Ok(make(i, VersionSource::SeaqlMigrations));
    }
    match &state.alembic {
        Alembic::Revision(rev) => match migrations::resolve_version(rev) {
            Ok(i) => Ok(make(i, VersionSource::AlembicVersion)),
            Err(_) => Err(Error::refused(
                format!(
                    "alembic_version is at revision '{rev}', which this build of ecomind-admin does not know"
                ),
                "upgrade ecomind-admin, or pass --against VERSION",
            )),
        },
        _ => Ok(make(known().len() - 1, VersionSource::Unmanaged)),
    }
}
/// The verdict of a schema check (JSON: `PASSED`, `PASSED WITH WARNINGS`, `FAILED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub enum Verdict {
    #[serde(rename = "PASSED")]
    Passed,
    #[serde(rename = "PASSED WITH WARNINGS")]
    PassedWithWarnings,
    #[serde(rename = "FAILED")]
    Failed,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Passed => "PASSED",
            Verdict::PassedWithWarnings => "PASSED WITH WARNINGS",
            Verdict::Failed => "FAILED",
        })
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CheckSummary {
    pub status: Verdict,
    pub errors: usize,
    pub warnings: usize,
    pub strict: bool,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct VerifyReport {
    pub database: String,
    pub backend: &'static str,
    pub against: Against,
    pub findings: Vec<Drift>,
    pub summary: CheckSummary,
    /// Catalog queries the introspection sent (constant, whatever the table count).
    pub catalog_queries: usize,
    #[serde(skip)]
    pub show_fix: bool,
    #[serde(skip)]
    pub expected_tables: Vec<String>,
    #[serde(skip)]
    pub enum_objects: Vec<String>,
}

impl VerifyReport {
    pub fn failed(&self) -> bool {
        self.summary.status == Verdict::Failed
    }
}

pub fn summarize(findings: &[Drift], strict: bool) -> CheckSummary {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    let status = if errors > 0 || (strict && warnings > 0) {
        Verdict::Failed
    } else if warnings > 0 {
        Verdict::PassedWithWarnings
    } else {
        Verdict::Passed
    };
    CheckSummary {
        status,
        errors,
        warnings,
        strict,
    }
}

/// The bookkeeping state and the live schema, from one read-only snapshot.
pub async fn read_live(db: &Db) -> Result<(State, Introspection)> {
    db::read_in(db.snapshot().await?, async |txn| {
        let state = migrations::read_state(txn).await?;
        let intro = introspect(txn, &api_tables(db)).await?;
        Ok((state, intro))
    })
    .await
}

/// The tables read in detail: every version's tables are a subset of head's.
pub fn api_tables(db: &Db) -> Vec<String> {
    expected(known().len() - 1, db.backend)
        .tables
        .into_keys()
        .collect()
}

/// Introspect and diff against the version the database records (or `against`).
pub async fn check(db: &Db, against: Option<usize>, strict: bool) -> Result<(State, VerifyReport)> {
    let (state, intro) = read_live(db).await?;
    let against = choose_version(&state, against)?;
    let report = build_report(db, against, &intro.schema, intro.queries, strict);
    Ok((state, report))
}

pub fn build_report(
    db: &Db,
    against: Against,
    live: &crate::schema::Schema,
    catalog_queries: usize,
    strict: bool,
) -> VerifyReport {
    let exp = expected(against.index, db.backend);
    let mut findings = diff(&exp, live, db.is_postgres());
    findings.sort_by(|a, b| {
        (a.check, &a.table, a.severity, &a.object).cmp(&(b.check, &b.table, b.severity, &b.object))
    });
    let enum_objects = if db.is_postgres() {
        exp.enums.keys().cloned().collect()
    } else {
        exp.tables
            .values()
            .filter(|t| !t.checks.is_empty())
            .map(|t| t.name.clone())
            .collect()
    };
    let summary = summarize(&findings, strict);
    VerifyReport {
        database: db.url.clone(),
        backend: if db.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        },
        against,
        findings,
        summary,
        catalog_queries,
        show_fix: false,
        expected_tables: exp
            .tables
            .keys()
            .filter(|t| !BOOKKEEPING_TABLES.contains(&t.as_str()))
            .cloned()
            .collect(),
        enum_objects,
    }
}
