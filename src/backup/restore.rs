//! `restore FILE`: the rollback plan as one command. Before: the backup and its
//! manifest checked, the migration lock, who is connected, what the restore throws
//! away (the writes since the backup, per table) and the version it goes back to;
//! confirmed. The restore replaces the database's content with the backup's exactly
//! (objects the backup does not have included) in one transaction: PostgreSQL, one
//! psql session fed `BEGIN`, the objects of the dump's schemas dropped, `pg_restore
//! --clean`'s script, and `COMMIT` only once all of it went through (a failure, a
//! signal or a crash of ours ends the session without it: rolled back); SQLite, one
//! `BEGIN IMMEDIATE` on the live file. After: verify-schema and the row counts against
//! the manifest.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait as _;
use serde::Serialize;

use super::manifest::{self, Manifest, RowCheck, TableCount};
use super::verify::{Check, CheckName, CheckStatus, Kind};
use crate::db::{Db, quote_ident, quote_literal};
use crate::error::{Error, Result};
use crate::migrations::Version;
use crate::migrations::known;
use crate::progress::Operator;
use crate::text::{plural, shown};

/// What `restore` is given.
pub struct Options<'a> {
    pub file: &'a Path,
    /// The URL with its password (psql's connection).
    pub secret_url: &'a str,
    pub pg_bin_dir: Option<&'a Path>,
    pub yes: bool,
    /// How long to wait for the migration lock and for the tables' locks.
    pub lock_wait: Duration,
}

/// A session connected to the database (PostgreSQL), other than ours.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Session {
    pub pid: i32,
    pub user: String,
    pub application: String,
    /// The client's address (empty: a local socket).
    pub client: String,
    pub state: String,
}

/// One table: what the restore throws away.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TableChange {
    pub schema: String,
    pub table: String,
    /// Rows in the backup (None: the backup has no such table).
    pub rows_in_backup: Option<i64>,
    /// Rows now (None: the table is not there now).
    pub rows_now: Option<i64>,
    /// Rows inserted, updated, deleted since the backup (PostgreSQL's counters; None:
    /// unknown: the table was made again since, its statistics were reset, or SQLite).
    pub inserted: Option<i64>,
    pub updated: Option<i64>,
    pub deleted: Option<i64>,
}

impl TableChange {
    /// Anything written since (or a difference in rows).
    pub fn changed(&self) -> bool {
        self.rows_in_backup != self.rows_now
            || [self.inserted, self.updated, self.deleted]
                .iter()
                .any(|n| n.is_some_and(|n| n > 0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreStatus {
    /// The database is the backup's, checked.
    Restored,
    /// The restore went through, but a check after it failed.
    CheckFailed,
}

/// `restore`'s report.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RestoreReport {
    pub file: PathBuf,
    pub database: String,
    pub status: RestoreStatus,
    /// When the backup was taken (from its manifest).
    pub taken_at: String,
    /// The version before the restore, and the backup's.
    pub from: Option<Version>,
    pub to: Option<Version>,
    /// Other sessions connected when it started (PostgreSQL).
    pub sessions: Vec<Session>,
    /// What the restore threw away, per table.
    pub writes_since: Vec<TableChange>,
    pub duration_ms: u64,
    /// The checks after the restore: schema, row counts.
    pub checks: Vec<Check>,
    pub tables: Vec<RowCheck>,
    /// What to run next.
    pub next: String,
}

fn version_of(m: &Manifest) -> Option<Version> {
    let v = m.version.as_ref()?;
    known()
        .iter()
        .position(|k| &k.version == v)
        .and_then(|i| crate::migrations::version(Some(i)))
}

/// Everything before the restore, read: the backup checked, where the database is, who
/// is connected, what would be thrown away.
struct Before {
    manifest: Manifest,
    from: Option<Version>,
    to: Option<Version>,
    sessions: Vec<Session>,
    writes_since: Vec<TableChange>,
    schema: String,
}

/// Check the backup (ours, unchanged, of this backend and a version this build knows).
fn check_backup(db: &Db, file: &Path) -> Result<Manifest> {
    let kind = super::verify::sniff(file)?;
    let postgres = kind == Kind::PgDump;
    if postgres != db.is_postgres() {
        return Err(Error::usage(
            format!(
                "{} is a {} backup; the database is {}",
                shown(&file.display().to_string()),
                if postgres { "PostgreSQL" } else { "SQLite" },
                if db.is_postgres() {
                    "PostgreSQL"
                } else {
                    "SQLite"
                }
            ),
            "restore a backup into a database of its own kind",
        ));
    }
    let m = manifest::read(file)?;
    let digest = super::sha256_file(file)?;
    if digest != m.sha256 {
        return Err(Error::refused(
            format!(
                "{} changed since the backup was taken (its sha256 is not the manifest's); nothing was changed",
                shown(&file.display().to_string())
            ),
            "restore an intact backup; `ecomind-admin backup verify FILE` says what is wrong",
        ));
    }
    if m.version.is_some() && version_of(&m).is_none() {
        return Err(Error::refused(
            format!(
                "the backup is at a version this build does not know ({}); nothing was changed",
                shown(m.version.as_deref().unwrap_or(""))
            ),
            "restore it with the ecomind-admin that took it",
        ));
    }
    Ok(m)
}

async fn sessions(db: &Db) -> Result<Vec<Session>> {
    if !db.is_postgres() {
        return Ok(Vec::new());
    }
    let rows = db
        .query_all(&format!(
            "SELECT pid, COALESCE(usename::text, '') AS u, COALESCE(application_name, '') AS a, \
                    COALESCE(host(client_addr), '') AS c, COALESCE(state, '') AS s \
             FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() \
               AND backend_type = 'client backend' AND application_name NOT LIKE {} ORDER BY pid",
            quote_literal(&format!("{}%", crate::db::session_tag()))
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let get = |c: &str| r.try_get::<String>("", c).unwrap_or_default();
            Session {
                pid: r.try_get("", "pid").unwrap_or_default(),
                user: get("u"),
                application: get("a"),
                client: get("c"),
                state: get("s"),
            }
        })
        .collect())
}

/// Per table: the backup's rows and counters against now's.
pub fn writes_since(then: &[TableCount], now: &[TableCount]) -> Vec<TableChange> {
    let mut names: Vec<(String, String)> = then
        .iter()
        .chain(now)
        .map(|t| (t.schema.clone(), t.table.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|(schema, table)| {
            let find = |l: &[TableCount]| {
                l.iter()
                    .find(|t| t.schema == schema && t.table == table)
                    .cloned()
            };
            let (a, b) = (find(then), find(now));
            // The same table (OID) since: its counters' differences (a reset makes them fall).
            let same =
                matches!((&a, &b), (Some(a), Some(b)) if a.relid.is_some() && a.relid == b.relid);
            let since = |f: fn(&TableCount) -> Option<i64>| match (&a, &b) {
                (Some(a), Some(b)) if same => match (f(a), f(b)) {
                    (Some(x), Some(y)) if y >= x => Some(y - x),
                    _ => None,
                },
                _ => None,
            };
            TableChange {
                inserted: since(|t| t.inserted),
                updated: since(|t| t.updated),
                deleted: since(|t| t.deleted),
                rows_in_backup: a.as_ref().map(|t| t.rows),
                rows_now: b.as_ref().map(|t| t.rows),
                schema,
                table,
            }
        })
        .collect()
}

async fn before(db: &Db, file: &Path) -> Result<Before> {
    let manifest = check_backup(db, file)?;
    let state = crate::migrations::snapshot_state(db).await?;
    let now = manifest::table_counts(&db.conn).await?;
    let schema = if db.is_postgres() {
        db.query_one("SELECT current_schema()::text AS s")
            .await?
            .and_then(|r| r.try_get::<String>("", "s").ok())
            .unwrap_or_else(|| "public".into())
    } else {
        "main".into()
    };
    Ok(Before {
        from: crate::migrations::version(state.current()),
        to: version_of(&manifest),
        sessions: sessions(db).await?,
        writes_since: writes_since(&manifest.tables, &now),
        manifest,
        schema,
    })
}

/// What the confirmation shows.
fn details(b: &Before, db: &Db) -> String {
    let mut d = format!(
        "The backup was taken {} at {}.\nThe database goes from {} back to {}.\n",
        shown(&b.manifest.taken_at),
        crate::migrations::version_label(&b.to),
        crate::migrations::version_label(&b.from),
        crate::migrations::version_label(&b.to)
    );
    let lost: Vec<String> = b
        .writes_since
        .iter()
        .filter(|t| t.changed())
        .map(|t| format!("  - {}", change_line(t)))
        .collect();
    if lost.is_empty() {
        d.push_str("Nothing was written since the backup.\n");
    } else {
        d.push_str("Writes since the backup that the restore throws away:\n");
        d.push_str(&lost.join("\n"));
        d.push('\n');
    }
    if db.is_postgres() {
        if b.sessions.is_empty() {
            d.push_str("No other session is connected.\n");
        } else {
            d.push_str(&format!(
                "{} connected now (the API's among them, if it runs): their next statements see the backup's data:\n",
                plural(b.sessions.len() as i64, "other session is", "other sessions are")
            ));
            for s in &b.sessions {
                d.push_str(&format!("  - {}\n", session_line(s)));
            }
        }
    } else {
        d.push_str(
            "SQLite: processes that have the file open are not listed; stop the API first.\n",
        );
    }
    d
}

pub fn session_line(s: &Session) -> String {
    format!(
        "pid {} user {} application '{}'{} ({})",
        s.pid,
        shown(&s.user),
        shown(&s.application),
        if s.client.is_empty() {
            String::new()
        } else {
            format!(" from {}", shown(&s.client))
        },
        shown(&s.state)
    )
}

/// `users: 3 rows in the backup, 5 now (+2 inserted, 1 updated)`.
pub fn change_line(t: &TableChange) -> String {
    let n = |v: Option<i64>| v.map_or("no table".to_owned(), |n| n.to_string());
    let mut counters = Vec::new();
    for (v, what) in [
        (t.inserted, "inserted"),
        (t.updated, "updated"),
        (t.deleted, "deleted"),
    ] {
        if let Some(v) = v.filter(|v| *v > 0) {
            counters.push(format!("{v} {what}"));
        }
    }
    format!(
        "{}: {} in the backup, {} now{}",
        shown(&t.table),
        n(t.rows_in_backup),
        n(t.rows_now),
        if counters.is_empty() {
            String::new()
        } else {
            format!(" ({} since)", counters.join(", "))
        }
    )
}

/// Restore `opts.file` over the database, confirmed through `op`.
pub async fn restore(db: &Db, opts: &Options<'_>, op: &dyn Operator) -> Result<RestoreReport> {
    let b = before(db, opts.file).await?;
    let tools = if db.is_postgres() {
        Some(psql_tools(db, opts.pg_bin_dir).await?)
    } else {
        None
    };
    if db.is_postgres() && db.migration_lock_held().await? {
        return Err(Error::refused(
            "another ecomind-admin holds the migration lock on this database; nothing was changed",
            "wait for it to finish, then run the restore again",
        ));
    }
    let action = format!(
        "restore {} over {}{}",
        shown(&opts.file.display().to_string()),
        db.url,
        if b.sessions.is_empty() {
            String::new()
        } else {
            format!(
                " while {} connected",
                plural(
                    b.sessions.len() as i64,
                    "other session is",
                    "other sessions are"
                )
            )
        }
    );
    op.confirm(opts.yes, &action, &details(&b, db), "Restore the backup?")?;
    let started = Instant::now();
    if !db.is_postgres() {
        // Outside the transaction (SQLite attaches no database within one).
        db.conn
            .execute_unprepared(&format!(
                "ATTACH DATABASE {} AS ecomind_backup",
                quote_literal(&opts.file.display().to_string())
            ))
            .await
            .map_err(|e| Error::from_db(e, "opening the backup"))?;
    }
    let lock = db.begin_locked(opts.lock_wait, op).await;
    let lock = match lock {
        Ok(lock) => lock,
        Err(e) => {
            detach(db).await;
            return Err(e);
        }
    };
    let restored = match &tools {
        Some((pg_restore, psql)) => {
            let schemas = dump_schemas(pg_restore, opts.file, &b.schema, op).await;
            match schemas {
                Ok(schemas) => restore_postgres(opts, pg_restore, psql, &schemas, op).await,
                Err(e) => Err(e),
            }
        }
        None => restore_sqlite(&lock).await,
    };
    let restored = match restored {
        Ok(()) if !db.is_postgres() => lock
            .commit()
            .await
            .map_err(|e| Error::from_db(e, "committing the restore")),
        Ok(()) => {
            let _ = lock.rollback().await;
            Ok(())
        }
        Err(e) => {
            let _ = lock.rollback().await;
            Err(e)
        }
    };
    if !db.is_postgres() {
        detach(db).await;
    }
    restored?;
    let duration_ms = started.elapsed().as_millis() as u64;
    after(db, b, opts.file, duration_ms).await
}

async fn detach(db: &Db) {
    let _ = db
        .conn
        .execute_unprepared("DETACH DATABASE ecomind_backup")
        .await;
}

/// The checks after: verify-schema at the backup's version, the row counts.
async fn after(db: &Db, b: Before, file: &Path, duration_ms: u64) -> Result<RestoreReport> {
    let (ok, detail) = manifest::schema_as_recorded(db, Some(&b.manifest), "the database").await?;
    let now = crate::migrations::version(crate::migrations::snapshot_state(db).await?.current());
    let same_version = now.as_ref().map(|v| &v.version) == b.to.as_ref().map(|v| &v.version);
    let mut checks = vec![Check {
        check: CheckName::Schema,
        result: if ok && same_version {
            CheckStatus::Ok
        } else {
            CheckStatus::Failed
        },
        detail,
    }];
    let found = manifest::table_counts(&db.conn).await?;
    let tables = manifest::compare(&b.manifest.tables, &found);
    checks.push(Check {
        check: CheckName::Rows,
        result: if tables.iter().all(|t| t.ok) {
            CheckStatus::Ok
        } else {
            CheckStatus::Failed
        },
        detail: if tables.iter().all(|t| t.ok) {
            format!(
                "{} in {}, as in the backup",
                plural(found.iter().map(|t| t.rows).sum::<i64>(), "row", "rows"),
                plural(found.len() as i64, "table", "tables")
            )
        } else {
            manifest::differences(&tables)
        },
    });
    let ok = checks.iter().all(|c| c.result == CheckStatus::Ok);
    Ok(RestoreReport {
        file: file.to_owned(),
        database: db.url.clone(),
        status: if ok {
            RestoreStatus::Restored
        } else {
            RestoreStatus::CheckFailed
        },
        taken_at: b.manifest.taken_at.clone(),
        from: b.from,
        to: b.to,
        sessions: b.sessions,
        writes_since: b.writes_since,
        duration_ms,
        checks,
        tables,
        next: "start the API at the backup's version, then run `ecomind-admin verify-deployment --api-url URL`".into(),
    })
}

/// pg_restore and, beside it, psql: of the server's major version or newer.
async fn psql_tools(db: &Db, bin_dir: Option<&Path>) -> Result<(PathBuf, PathBuf)> {
    let major = super::verify::server_major(db).await?;
    let tools = super::find_pg_tools(major, bin_dir)?;
    let psql = tools.pg_restore.with_file_name("psql");
    if !psql.is_file() {
        return Err(Error::refused(
            format!(
                "the restore needs psql beside {}; nothing was changed",
                tools.pg_restore.display()
            ),
            format!(
                "install the PostgreSQL {major} client (Debian: postgresql-client-{major}) or pass --pg-bin-dir"
            ),
        ));
    }
    Ok((tools.pg_restore, psql))
}

/// The schemas the dump has objects in (its table of contents), and `current`: the
/// ones the restore empties first. Names read from the file are only compared with the
/// catalog's, in a literal.
async fn dump_schemas(
    pg_restore: &Path,
    file: &Path,
    current: &str,
    op: &dyn Operator,
) -> Result<Vec<String>> {
    let mut list = super::pg_command(pg_restore, None);
    list.arg("--list").arg(file);
    let toc = super::run_tool(list, "pg_restore --list", None, op, op.cancel()).await?;
    let mut schemas = vec![current.to_owned()];
    for line in toc.lines().filter(|l| !l.starts_with(';')) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let schema = match words.get(3..6) {
            Some(["MATERIALIZED", "VIEW", s]) | Some(["SCHEMA", "-", s]) => Some(*s),
            Some(
                [
                    "TABLE" | "VIEW" | "SEQUENCE" | "TYPE" | "DOMAIN" | "FUNCTION" | "AGGREGATE"
                    | "PROCEDURE",
                    s,
                    _,
                ],
            ) if !["DATA", "OWNED"].contains(s) => Some(*s),
            _ => None,
        };
        if let Some(s) = schema.filter(|s| *s != "-" && !schemas.iter().any(|x| x == s)) {
            schemas.push(s.to_owned());
        }
    }
    Ok(schemas)
}

/// One statement that drops every table, view, sequence, routine and type of
/// `schemas` (not an extension's), CASCADE: what the restore then makes is exactly the
/// backup's. Run inside the restore's transaction.
pub fn clear_sql(schemas: &[String]) -> String {
    let list = schemas
        .iter()
        .map(|s| quote_literal(s))
        .collect::<Vec<_>>()
        .join(", ");
    let not_extension = |catalog: &str, oid: &str| {
        format!(
            "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass \
             AND d.objid = {oid} AND d.deptype = 'e')"
        )
    };
    format!(
        "DO $ecomind_clear$ DECLARE stmt text; stmts text[]; BEGIN \
         SELECT array_agg(format('DROP %s IF EXISTS %I.%I CASCADE', CASE c.relkind WHEN 'v' THEN 'VIEW' \
                WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' \
                ELSE 'TABLE' END, n.nspname, c.relname)) INTO stmts \
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = ANY (ARRAY[{list}]::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') \
            AND NOT c.relispartition AND {rel}; \
         FOREACH stmt IN ARRAY COALESCE(stmts, '{{}}') LOOP EXECUTE stmt; END LOOP; \
         SELECT array_agg(format('DROP %s IF EXISTS %I.%I(%s) CASCADE', CASE p.prokind WHEN 'a' THEN 'AGGREGATE' \
                WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, n.nspname, p.proname, \
                pg_get_function_identity_arguments(p.oid))) INTO stmts \
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
          WHERE n.nspname = ANY (ARRAY[{list}]::text[]) AND {proc}; \
         FOREACH stmt IN ARRAY COALESCE(stmts, '{{}}') LOOP EXECUTE stmt; END LOOP; \
         SELECT array_agg(format('DROP %s IF EXISTS %I.%I CASCADE', CASE t.typtype WHEN 'd' THEN 'DOMAIN' \
                ELSE 'TYPE' END, n.nspname, t.typname)) INTO stmts \
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
          WHERE n.nspname = ANY (ARRAY[{list}]::text[]) AND t.typtype IN ('e', 'd', 'r', 'c') \
            AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c') \
            AND {typ}; \
         FOREACH stmt IN ARRAY COALESCE(stmts, '{{}}') LOOP EXECUTE stmt; END LOOP; \
         END $ecomind_clear$",
        rel = not_extension("pg_class", "c.oid"),
        proc = not_extension("pg_proc", "p.oid"),
        typ = not_extension("pg_type", "t.oid"),
    )
}

/// A pipe's reader drained on a thread (a tool's stderr), so the tool never blocks.
fn drain(mut r: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v.truncate(64 * 1024);
        v
    })
}

fn first_error(stderr: &[u8]) -> String {
    let text = crate::redact::redact_text(String::from_utf8_lossy(stderr).trim());
    let line = text
        .lines()
        .find(|l| l.contains("ERROR") || l.contains("error"))
        .or_else(|| text.lines().next())
        .unwrap_or("no message");
    shown(line).into_owned()
}

/// psql and pg_restore started, their pipes taken (stderr drained on threads).
struct Tools {
    psql: super::Running,
    dump: super::Running,
    stdin: std::process::ChildStdin,
    stdout: std::process::ChildStdout,
    psql_err: std::thread::JoinHandle<Vec<u8>>,
    dump_err: std::thread::JoinHandle<Vec<u8>>,
}

fn start_tools(
    opts: &Options<'_>,
    pg_restore: &Path,
    psql: &Path,
    pass: Option<&super::PassFile>,
) -> Result<Tools> {
    let (url, _) = super::libpq_url(opts.secret_url)?;
    let mut sql = super::pg_command(psql, pass);
    sql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(&url)
        .env("PGAPPNAME", crate::db::session_tag())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut script = super::pg_command(pg_restore, None);
    script
        .args(["--clean", "--if-exists", "--file", "-"])
        .arg(opts.file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawn = |cmd: &mut std::process::Command, what: &str| {
        cmd.spawn().map(|c| super::Running(Some(c))).map_err(|e| {
            Error::refused(
                format!("cannot run {what}: {e}; nothing was changed"),
                "check the PostgreSQL client tools",
            )
        })
    };
    let mut psql = spawn(&mut sql, "psql")?;
    let mut dump = spawn(&mut script, "pg_restore")?;
    let pipes = |r: &mut super::Running| {
        r.0.as_mut()
            .map(|c| (c.stdin.take(), c.stdout.take(), c.stderr.take()))
    };
    let (Some((Some(stdin), _, Some(psql_err))), Some((_, Some(stdout), Some(dump_err)))) =
        (pipes(&mut psql), pipes(&mut dump))
    else {
        return Err(Error::internal("the restore's pipes are missing"));
    };
    Ok(Tools {
        psql,
        dump,
        stdin,
        stdout,
        psql_err: drain(psql_err),
        dump_err: drain(dump_err),
    })
}

/// The restore, in one psql session: `BEGIN`, our lock timeout, the dump's schemas
/// emptied, pg_restore's script relayed, then `COMMIT` only when pg_restore ended well.
async fn restore_postgres(
    opts: &Options<'_>,
    pg_restore: &Path,
    psql: &Path,
    schemas: &[String],
    op: &dyn Operator,
) -> Result<()> {
    let (_, password) = super::libpq_url(opts.secret_url)?;
    let pass = password.as_deref().map(super::PassFile::new).transpose()?;
    let t = start_tools(opts, pg_restore, psql, pass.as_ref())?;
    let cancel = op.cancel();
    let _psql_guard = cancel.child(t.psql.id(), None);
    let _dump_guard = cancel.child(t.dump.id(), None);
    let sent = Arc::new(AtomicU64::new(0));
    let prelude = format!(
        "SET client_min_messages = warning;\nBEGIN;\nSET LOCAL lock_timeout = '{}ms';\n{};\n",
        opts.lock_wait.as_millis().max(1),
        clear_sql(schemas)
    );
    let relay = {
        let sent = sent.clone();
        let (from, to) = (t.stdout, t.stdin);
        std::thread::spawn(move || relay(prelude, from, to, &sent))
    };
    let started = Instant::now();
    let mut _step = op.step("restoring");
    let mut told = Duration::ZERO;
    while !relay.is_finished() {
        if started.elapsed() >= told + Duration::from_secs(1) {
            told = started.elapsed();
            _step = op.step(&format!(
                "restoring: {} of SQL sent in {} s",
                super::human_bytes(sent.load(Ordering::Relaxed)),
                told.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (relayed, stdin) = relay
        .join()
        .map_err(|_| Error::internal("the restore's relay panicked"))?;
    let dump_status = wait(t.dump).await?;
    let dump_ok = relayed.is_ok() && dump_status.success();
    if let (true, Some(mut stdin)) = (dump_ok, stdin) {
        // Everything went through: only now the transaction may commit. The script's
        // session settings (search_path '', ...) are reset first: behind a pooler in
        // transaction mode the server connection goes on to serve others (the API).
        let _ = stdin.write_all(b"RESET ALL;\nCOMMIT;\n");
        drop(stdin);
    }
    let psql_status = wait(t.psql).await?;
    drop(_step);
    let psql_err = t.psql_err.join().unwrap_or_default();
    let dump_err = t.dump_err.join().unwrap_or_default();
    if dump_ok && psql_status.success() {
        return Ok(());
    }
    let why = if !psql_err.is_empty() {
        format!("psql: {}", first_error(&psql_err))
    } else if !dump_status.success() {
        format!("pg_restore ({dump_status}): {}", first_error(&dump_err))
    } else {
        format!("psql ended ({psql_status})")
    };
    Err(Error::refused(
        format!("the restore failed and was rolled back; the database is as it was: {why}"),
        "fix the cause (a lock held by a session: see the sessions listed; the backup: `ecomind-admin backup verify FILE`) and run the restore again",
    ))
}

/// The relay thread: our prelude, then pg_restore's script, into psql. Gives psql's
/// stdin back (None when psql is gone) so that the caller decides on `COMMIT`.
fn relay(
    prelude: String,
    mut from: std::process::ChildStdout,
    mut to: std::process::ChildStdin,
    sent: &AtomicU64,
) -> (std::io::Result<()>, Option<std::process::ChildStdin>) {
    if let Err(e) = to.write_all(prelude.as_bytes()) {
        return (Err(e), None);
    }
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return (Ok(()), Some(to)),
            Ok(n) => {
                if let Err(e) = to.write_all(&buf[..n]) {
                    return (Err(e), None);
                }
                sent.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), Some(to)),
        }
    }
}

/// A child's exit, polled (a signal is handled meanwhile).
async fn wait(mut child: super::Running) -> Result<std::process::ExitStatus> {
    loop {
        if child
            .try_wait()
            .map_err(|e| Error::internal(format!("waiting for a client tool: {e}")))?
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
        .finished()
        .ok_or_else(|| Error::internal("a client tool is gone"))?
        .wait()
        .map_err(|e| Error::internal(format!("waiting for a client tool: {e}")))
}

/// SQLite: in `txn` (`BEGIN IMMEDIATE` on the live file, the backup attached), every
/// table and view dropped and made again from the backup, rows copied, indexes and
/// triggers after. Foreign keys are checked at the commit.
async fn restore_sqlite(txn: &sea_orm::DatabaseTransaction) -> Result<()> {
    let run = async |sql: String| {
        txn.execute_unprepared(&sql)
            .await
            .map(|_| ())
            .map_err(|e| Error::from_db(e, "restoring"))
    };
    let objects = async |schema: &str| -> Result<Vec<(String, String, String)>> {
        let rows = txn
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                format!(
                    "SELECT type, name, COALESCE(sql, '') AS sql FROM {schema}.sqlite_master \
                     WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid"
                ),
            ))
            .await
            .map_err(|e| Error::from_db(e, "reading the schema"))?;
        Ok(rows
            .iter()
            .map(|r| {
                let g = |c: &str| r.try_get::<String>("", c).unwrap_or_default();
                (g("type"), g("name"), g("sql"))
            })
            .collect())
    };
    run("PRAGMA defer_foreign_keys = ON".into()).await?;
    for (kind, name, _) in objects("main").await? {
        if kind == "table" || kind == "view" {
            run(format!(
                "DROP {} IF EXISTS main.{}",
                kind.to_uppercase(),
                quote_ident(&name)
            ))
            .await?;
        }
    }
    let backup = objects("ecomind_backup").await?;
    let of = |k: &'static str| {
        backup
            .iter()
            .filter(move |(kind, _, sql)| kind == k && !sql.is_empty())
    };
    for (_, _, sql) in of("table") {
        run(sql.clone()).await?;
    }
    for (_, name, _) in of("table") {
        let t = quote_ident(name);
        run(format!(
            "INSERT INTO main.{t} SELECT * FROM ecomind_backup.{t}"
        ))
        .await?;
    }
    for kind in ["index", "view", "trigger"] {
        for (_, _, sql) in of(kind) {
            run(sql.clone()).await?;
        }
    }
    Ok(())
}
