//! `backup verify`: a backup proven by a restore. The dump is restored into a scratch
//! database (made and dropped here, or `--scratch-url`), with `pg_restore
//! --exit-on-error`; the copy then passes verify-schema, its row counts equal the
//! manifest's, and the audit runs on it. SQLite: the same on a temporary copy. One
//! report; verified only when every check passes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::manifest::{self, Manifest, RowCheck};
use crate::cancel::Cancel;
use crate::config::{DatabaseConfig, UrlSource};
use crate::db::{self, Db, quote_ident};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::text::shown;

/// What `backup verify` is given.
pub struct Options<'a> {
    pub file: &'a Path,
    /// `--scratch-url` (with its password): restore there instead of a new database.
    pub scratch_url: Option<&'a str>,
    pub pg_bin_dir: Option<&'a Path>,
    pub connect_timeout: Duration,
    /// `--schema`: the copy's tables are read there too.
    pub schema: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckName {
    /// The manifest beside the file is ours and names it.
    Manifest,
    /// The file's SHA-256 equals the manifest's.
    Sha256,
    /// The scratch has room for the copy.
    FreeSpace,
    /// The backup restores (`pg_restore --exit-on-error`; SQLite: `integrity_check`).
    Restore,
    /// The copy passes verify-schema, at the manifest's version.
    Schema,
    /// The copy's row counts equal the manifest's.
    Rows,
    /// The audit ran on the copy (its findings are reported, not judged).
    Audit,
}

impl CheckName {
    pub fn label(self) -> &'static str {
        match self {
            CheckName::Manifest => "manifest",
            CheckName::Sha256 => "sha256",
            CheckName::FreeSpace => "free space",
            CheckName::Restore => "restore",
            CheckName::Schema => "schema",
            CheckName::Rows => "row counts",
            CheckName::Audit => "audit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    Failed,
    /// Not run (an earlier check failed, or it cannot be done here: the detail says).
    Skipped,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Check {
    pub check: CheckName,
    pub result: CheckStatus,
    pub detail: String,
}

/// `backup verify`'s report.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct VerifyReport {
    pub file: PathBuf,
    /// `postgres` or `sqlite`.
    pub backend: String,
    /// Where the copy was restored (a URL redacted, or a temporary file).
    pub scratch: String,
    /// Every check passed: the copy is a faithful, verified database.
    pub verified: bool,
    pub checks: Vec<Check>,
    /// Each table's rows: in the manifest, in the copy.
    pub tables: Vec<RowCheck>,
    /// The audit's findings on the copy (last 7 days of its audit_logs).
    pub audit: Option<crate::audit::AuditCounts>,
    pub duration_ms: u64,
}

impl VerifyReport {
    fn new(file: &Path, backend: &str) -> Self {
        VerifyReport {
            file: file.to_owned(),
            backend: backend.to_owned(),
            scratch: String::new(),
            verified: false,
            checks: Vec::new(),
            tables: Vec::new(),
            audit: None,
            duration_ms: 0,
        }
    }

    fn push(&mut self, check: CheckName, result: CheckStatus, detail: impl Into<String>) {
        self.checks.push(Check {
            check,
            result,
            detail: detail.into(),
        });
    }

    fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.result == CheckStatus::Failed)
    }

    /// The first failure's detail, for the error line.
    pub fn reason(&self) -> Option<String> {
        self.checks
            .iter()
            .find(|c| c.result == CheckStatus::Failed)
            .map(|c| format!("{}: {}", c.check.label(), c.detail))
    }
}

/// What the file is, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PgDump,
    Sqlite,
}

/// `PGDMP` (pg_dump's custom format) or `SQLite format 3`; anything else is refused.
pub fn sniff(file: &Path) -> Result<Kind> {
    use std::io::Read as _;
    let shown_path = shown(&file.display().to_string()).into_owned();
    let mut f = crate::fsafe::open_own_file(file).ok_or_else(|| {
        Error::refused(
            format!(
                "{shown_path} is not a backup file of ours (missing, a link, or another user's)"
            ),
            "name a file `ecomind-admin backup` wrote",
        )
    })?;
    let mut head = [0u8; 16];
    let n = f.read(&mut head).unwrap_or(0);
    if head[..n].starts_with(b"PGDMP") {
        Ok(Kind::PgDump)
    } else if head[..n].starts_with(b"SQLite format 3\0") {
        Ok(Kind::Sqlite)
    } else {
        Err(Error::refused(
            format!("{shown_path} is neither a pg_dump custom-format file nor a SQLite database"),
            "name a file `ecomind-admin backup` wrote",
        ))
    }
}

/// The manifest and the digest checks, into `report`: the manifest when it is ours.
fn check_manifest(report: &mut VerifyReport, file: &Path) -> Option<Manifest> {
    let m = match manifest::read(file) {
        Ok(m) => {
            report.push(
                CheckName::Manifest,
                CheckStatus::Ok,
                format!(
                    "taken {} of {} at {}",
                    shown(&m.taken_at),
                    shown(&m.database),
                    shown(m.alembic_revision.as_deref().unwrap_or("no version"))
                ),
            );
            m
        }
        Err(e) => {
            report.push(CheckName::Manifest, CheckStatus::Failed, e.message());
            report.push(
                CheckName::Sha256,
                CheckStatus::Skipped,
                "no manifest to compare with",
            );
            return None;
        }
    };
    match super::sha256_file(file) {
        Ok(d) if d == m.sha256 => report.push(CheckName::Sha256, CheckStatus::Ok, d),
        Ok(d) => report.push(
            CheckName::Sha256,
            CheckStatus::Failed,
            format!(
                "the file changed since the backup was taken (sha256 {d}, the manifest says {})",
                shown(&m.sha256)
            ),
        ),
        Err(e) => report.push(CheckName::Sha256, CheckStatus::Failed, e.message()),
    }
    Some(m)
}

/// Free bytes for an unprivileged user on the file system of `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// What a copy needs: the database's size when it was taken, else four times the file.
fn needed(m: Option<&Manifest>, file: &Path) -> u64 {
    let file_bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    m.map(|m| m.database_bytes)
        .filter(|b| *b > 0)
        .unwrap_or(file_bytes.saturating_mul(4))
}

/// Verify `file`. `source`: the database the command was pointed at (PostgreSQL: where
/// the scratch database is made, and what a scratch must not be).
pub async fn verify(
    source: Option<(&Db, &str)>,
    opts: &Options<'_>,
    ui: &dyn Progress,
    cancel: &Cancel,
) -> Result<VerifyReport> {
    let started = Instant::now();
    let mut report = match sniff(opts.file)? {
        Kind::PgDump => verify_postgres(source, opts, ui, cancel).await?,
        Kind::Sqlite => verify_sqlite(opts, ui, cancel).await?,
    };
    report.verified = !report.failed();
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// The copy, opened: verify-schema at the manifest's version, the row counts, the
/// audit; into `report`.
async fn check_copy(
    copy: &Db,
    m: Option<&Manifest>,
    report: &mut VerifyReport,
    ui: &dyn Progress,
) -> Result<()> {
    let (ok, detail) = manifest::schema_as_recorded(copy, m, "the copy").await?;
    let recorded = crate::migrations::snapshot_state(copy).await?.current();
    let recorded_version = recorded.map(|i| crate::migrations::known()[i].version.clone());
    if !ok {
        report.push(CheckName::Schema, CheckStatus::Failed, detail);
    } else if let Some(m) = m.filter(|m| m.version != recorded_version) {
        report.push(
            CheckName::Schema,
            CheckStatus::Failed,
            format!(
                "the copy is at {}, the manifest says {}",
                crate::migrations::version_label(&crate::migrations::version(recorded)),
                shown(m.alembic_revision.as_deref().unwrap_or("no version"))
            ),
        );
    } else {
        report.push(CheckName::Schema, CheckStatus::Ok, detail);
    }
    let found = manifest::table_counts(&copy.conn).await?;
    match m {
        Some(m) => {
            report.tables = manifest::compare(&m.tables, &found);
            let rows: i64 = found.iter().map(|t| t.rows).sum();
            if report.tables.iter().all(|t| t.ok) {
                report.push(
                    CheckName::Rows,
                    CheckStatus::Ok,
                    format!(
                        "{} in {}, as recorded",
                        crate::text::plural(rows, "row", "rows"),
                        crate::text::plural(found.len() as i64, "table", "tables")
                    ),
                );
            } else {
                report.push(
                    CheckName::Rows,
                    CheckStatus::Failed,
                    manifest::differences(&report.tables),
                );
            }
        }
        None => report.push(CheckName::Rows, CheckStatus::Skipped, "no manifest"),
    }
    if recorded.is_none() {
        report.push(CheckName::Audit, CheckStatus::Skipped, "no schema");
        return Ok(());
    }
    let counts = crate::audit::AuditCounts::from(&crate::audit::post_deploy(copy, ui).await?);
    report.push(
        CheckName::Audit,
        CheckStatus::Ok,
        format!(
            "{} critical, {} warning, {} info on the copy (last 7 days)",
            counts.critical, counts.warning, counts.info
        ),
    );
    report.audit = Some(counts);
    Ok(())
}

/// Open a database we made or were given, as the commands do (in `schema`, when given).
async fn open(
    secret_url: &str,
    schema: Option<&str>,
    timeout: Duration,
    ui: &dyn Progress,
) -> Result<Db> {
    let mut config = DatabaseConfig::parse(secret_url, UrlSource::FlagOrEnv)?;
    config.apply_schema(schema)?;
    db::connect(&config, timeout, ui, db::Open::Existing).await
}

async fn verify_sqlite(
    opts: &Options<'_>,
    ui: &dyn Progress,
    cancel: &Cancel,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::new(opts.file, "sqlite");
    let m = check_manifest(&mut report, opts.file);
    let dir = std::env::temp_dir();
    let need = needed(m.as_ref(), opts.file);
    match free_bytes(&dir) {
        Some(free) if free < need => {
            return Err(Error::refused(
                format!(
                    "the temporary directory {} has {} free; the copy needs {}",
                    shown(&dir.display().to_string()),
                    super::human_bytes(free),
                    super::human_bytes(need)
                ),
                "free space there, or point TMPDIR at a larger file system",
            ));
        }
        Some(free) => report.push(
            CheckName::FreeSpace,
            CheckStatus::Ok,
            format!(
                "{} free in {}, {} needed",
                super::human_bytes(free),
                dir.display(),
                super::human_bytes(need)
            ),
        ),
        None => report.push(
            CheckName::FreeSpace,
            CheckStatus::Skipped,
            "the temporary directory's file system does not say",
        ),
    }
    let copy = super::create_backup_file(
        &dir,
        &format!(
            "ecomind-verify-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ),
        "db",
    )?;
    report.scratch = format!("temporary file {} (removed)", copy.display());
    let guard = cancel.child(0, Some(&copy));
    let result = async {
        std::fs::copy(opts.file, &copy).map_err(|e| {
            Error::refused(
                format!("cannot copy the backup to {}: {e}", copy.display()),
                "check the temporary directory",
            )
        })?;
        match super::check_sqlite(&copy).await {
            Ok(detail) => report.push(CheckName::Restore, CheckStatus::Ok, detail),
            Err(e) => {
                report.push(CheckName::Restore, CheckStatus::Failed, e.message());
                return Ok(());
            }
        }
        let url = super::sqlite_url(&copy, "rw");
        let db = open(&url, None, opts.connect_timeout, &crate::progress::Silent).await?;
        let checked = check_copy(&db, m.as_ref(), &mut report, ui).await;
        db.conn.close().await.ok();
        checked
    }
    .await;
    let _ = std::fs::remove_file(&copy);
    drop(guard);
    result.map(|()| report)
}

/// The scratch database: made on the source's server, or the one given.
struct Scratch {
    secret_url: String,
    shown: String,
    /// Made by us: dropped at the end (its name).
    made: Option<String>,
}

async fn verify_postgres(
    source: Option<(&Db, &str)>,
    opts: &Options<'_>,
    ui: &dyn Progress,
    cancel: &Cancel,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::new(opts.file, "postgres");
    let m = check_manifest(&mut report, opts.file);
    let need = needed(m.as_ref(), opts.file);
    let source = source.filter(|(db, _)| db.is_postgres());
    // The copy is read in the source's schema, named: behind a pooler in transaction
    // mode, pg_restore's session settings (search_path '') may linger on the server
    // connection the check gets.
    let mut schema = opts.schema.map(str::to_owned);
    if let (None, Some((db, _))) = (&schema, source) {
        schema = db
            .query_one("SELECT current_schema()::text AS s")
            .await?
            .and_then(|r| r.try_get::<String>("", "s").ok());
    }
    let opts = &Options {
        schema: schema.as_deref(),
        ..*opts
    };
    let scratch = match opts.scratch_url {
        Some(url) => given_scratch(url, source, need, opts, &mut report, ui).await?,
        None => {
            let (db, secret) = source.ok_or_else(|| {
                Error::usage(
                    "backup verify of a PostgreSQL dump needs a PostgreSQL server: --database-url (a scratch database is made there) or --scratch-url",
                    "pass the database the backup is of, or an empty database with --scratch-url",
                )
            })?;
            make_scratch(db, secret, need, &mut report).await?
        }
    };
    report.scratch = scratch.shown.clone();
    let result = restore_and_check(&scratch, m.as_ref(), opts, &mut report, ui, cancel).await;
    let cleaned = match (&scratch.made, source) {
        (Some(name), Some((db, _))) => db
            .conn
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(name)
            ))
            .await
            .map(|_| ())
            .map_err(|e| Error::from_db(e, "dropping the scratch database")),
        _ => clear_scratch(&scratch, opts.connect_timeout).await,
    };
    result?;
    cleaned?;
    Ok(report)
}

use sea_orm::ConnectionTrait as _;

/// Restore into the scratch (`pg_restore --exit-on-error`), then check the copy.
async fn restore_and_check(
    scratch: &Scratch,
    m: Option<&Manifest>,
    opts: &Options<'_>,
    report: &mut VerifyReport,
    ui: &dyn Progress,
    cancel: &Cancel,
) -> Result<()> {
    let db = open(
        &scratch.secret_url,
        None,
        opts.connect_timeout,
        &crate::progress::Silent,
    )
    .await?;
    let major = server_major(&db).await;
    db.conn.close().await.ok();
    let major = major?;
    let tools = super::find_pg_tools(major, opts.pg_bin_dir)?;
    let (url, password) = super::libpq_url(&scratch.secret_url)?;
    let pass = password.as_deref().map(super::PassFile::new).transpose()?;
    let mut cmd = super::pg_command(&tools.pg_restore, pass.as_ref());
    // Parallel jobs: the scratch is ours alone, and its indexes build side by side.
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    cmd.arg(format!("--jobs={jobs}"))
        .args([
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            "--dbname",
        ])
        .arg(&url)
        .arg(opts.file);
    let out = super::run_tool_output(cmd, "pg_restore", None, ui, cancel).await?;
    if !out.status.success() {
        report.push(
            CheckName::Restore,
            CheckStatus::Failed,
            format!(
                "pg_restore --exit-on-error failed: {}",
                super::tool_error(&out)
            ),
        );
        return Ok(());
    }
    report.push(
        CheckName::Restore,
        CheckStatus::Ok,
        format!("pg_restore {} --exit-on-error: ok", tools.major),
    );
    // The restored copy, in `--schema` (which the restore made).
    let db = open(
        &scratch.secret_url,
        opts.schema,
        opts.connect_timeout,
        &crate::progress::Silent,
    )
    .await?;
    let checked = check_copy(&db, m, report, ui).await;
    db.conn.close().await.ok();
    checked
}

pub async fn server_major(db: &Db) -> Result<u32> {
    let row = db
        .query_one("SELECT current_setting('server_version_num')::int AS v")
        .await?;
    let num: i32 = row.and_then(|r| r.try_get("", "v").ok()).unwrap_or(0);
    Ok((num / 10000) as u32)
}

/// The server's free space for a copy, when it can be known from here: its data
/// directory is visible to the role and on this machine (a local host or socket).
async fn server_free(db: &Db, secret_url: &str) -> Option<(u64, String)> {
    let local = url::Url::parse(secret_url).ok().is_some_and(|u| {
        matches!(
            u.host_str(),
            None | Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
        )
    });
    if !local {
        return None;
    }
    let row = db
        .query_one("SELECT setting AS d FROM pg_settings WHERE name = 'data_directory'")
        .await
        .ok()??;
    let dir: String = row.try_get("", "d").ok()?;
    free_bytes(Path::new(&dir)).map(|f| (f, dir))
}

/// Refuse (nothing made) when the server's disk cannot hold the copy; else the check.
async fn check_space(
    db: &Db,
    secret_url: &str,
    need: u64,
    report: &mut VerifyReport,
) -> Result<()> {
    match server_free(db, secret_url).await {
        Some((free, dir)) if free < need => Err(Error::refused(
            format!(
                "the server has {} free in {}; a copy of this backup needs {}; nothing was restored",
                super::human_bytes(free),
                shown(&dir),
                super::human_bytes(need)
            ),
            "free space on the server, or pass --scratch-url on a server with room",
        )),
        Some((free, _)) => {
            report.push(
                CheckName::FreeSpace,
                CheckStatus::Ok,
                format!(
                    "{} free on the server, {} needed",
                    super::human_bytes(free),
                    super::human_bytes(need)
                ),
            );
            Ok(())
        }
        None => {
            report.push(
                CheckName::FreeSpace,
                CheckStatus::Skipped,
                "the server's data directory is not visible from here (a remote server, or a role without pg_read_all_settings)",
            );
            Ok(())
        }
    }
}

/// `CREATE DATABASE ecomind_verify_…` on the source's server.
async fn make_scratch(
    db: &Db,
    secret_url: &str,
    need: u64,
    report: &mut VerifyReport,
) -> Result<Scratch> {
    let standby = db
        .query_one("SELECT pg_is_in_recovery() AS r")
        .await?
        .and_then(|r| r.try_get::<bool>("", "r").ok())
        .unwrap_or(false);
    if standby {
        return Err(Error::refused(
            "the server is a hot standby: no scratch database can be made on it; nothing was restored",
            "pass --scratch-url with an empty database on a primary",
        ));
    }
    check_space(db, secret_url, need, report).await?;
    let name = format!("ecomind_verify_{:012x}", rand::random::<u64>() >> 16);
    db.conn
        .execute_unprepared(&format!(
            "CREATE DATABASE {} TEMPLATE template0",
            quote_ident(&name)
        ))
        .await
        .map_err(|e| {
            Error::from_db(e, "creating a scratch database")
                .with_hint("the role needs CREATEDB; or pass --scratch-url with an empty database")
        })?;
    let mut url = url::Url::parse(secret_url)
        .map_err(|e| Error::internal(format!("the database URL no longer parses: {e}")))?;
    url.set_path(&format!("/{name}"));
    Ok(Scratch {
        shown: format!("temporary database {name} (dropped)"),
        secret_url: url.to_string(),
        made: Some(name),
    })
}

/// `--scratch-url`: refused when it is the source database or not empty.
async fn given_scratch(
    secret_url: &str,
    source: Option<(&Db, &str)>,
    need: u64,
    opts: &Options<'_>,
    report: &mut VerifyReport,
    ui: &dyn Progress,
) -> Result<Scratch> {
    let config = DatabaseConfig::parse(secret_url, UrlSource::FlagOrEnv)?;
    if config.backend != sea_orm::DbBackend::Postgres {
        return Err(Error::usage(
            "--scratch-url must be a postgres:// URL for a pg_dump backup",
            "pass an empty PostgreSQL database",
        ));
    }
    let db = db::connect(&config, opts.connect_timeout, ui, db::Open::Existing).await?;
    let checked = async {
        const WHO: &str = "SELECT pg_postmaster_start_time()::text AS t, current_database()::text AS d";
        let id = |r: Option<sea_orm::QueryResult>| {
            r.map(|r| {
                (
                    r.try_get::<String>("", "t").unwrap_or_default(),
                    r.try_get::<String>("", "d").unwrap_or_default(),
                )
            })
        };
        let here = id(db.query_one(WHO).await?);
        if let Some((src, _)) = source
            && id(src.query_one(WHO).await?) == here
        {
            return Err(Error::refused(
                "--scratch-url is the database the command is pointed at; nothing was restored",
                "pass an empty scratch database, or leave --scratch-url out to have one made and dropped",
            ));
        }
        let row = db
            .query_one(
                "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
                   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
                   AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')",
            )
            .await?;
        let n: i64 = row.and_then(|r| r.try_get("", "n").ok()).unwrap_or(0);
        if n > 0 {
            return Err(Error::refused(
                format!(
                    "--scratch-url is not empty ({}); nothing was restored",
                    crate::text::plural(n, "relation", "relations")
                ),
                "pass an empty database: a restore there would mix with what it holds",
            ));
        }
        check_space(&db, secret_url, need, report).await
    }
    .await;
    db.conn.close().await.ok();
    checked?;
    Ok(Scratch {
        shown: format!("{} (emptied again)", config.redacted()),
        secret_url: secret_url.to_owned(),
        made: None,
    })
}

/// `--scratch-url` after the check: what the restore made there, dropped.
async fn clear_scratch(scratch: &Scratch, timeout: Duration) -> Result<()> {
    let db = open(&scratch.secret_url, None, timeout, &crate::progress::Silent).await?;
    let schemas = db
        .query_all(
            "SELECT nspname::text AS s FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') \
             AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp%'",
        )
        .await?
        .into_iter()
        .filter_map(|r| r.try_get::<String>("", "s").ok())
        .collect::<Vec<_>>();
    let result = db
        .conn
        .execute_unprepared(&super::restore::clear_sql(&schemas))
        .await
        .map(|_| ())
        .map_err(|e| Error::from_db(e, "emptying the scratch database again"));
    db.conn.close().await.ok();
    result
}
