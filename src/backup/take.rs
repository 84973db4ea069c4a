//! Taking a backup (the `backup` command, `upgrade`'s backup step): the dump and its
//! manifest, or the last one in the directory when the database has not changed since
//! (its record and files read back as hostile, checked again).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::manifest::{self, Manifest};
use super::{Backup, PgTools};
use crate::cancel::Cancel;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::migrations::{State, known};
use crate::progress::Progress;
use crate::records;
use crate::text::shown;

/// Where and how to take it.
pub struct Target<'a> {
    pub dir: &'a Path,
    /// The URL with its password (pg_dump's connection).
    pub secret_url: &'a str,
    /// pg_dump / pg_restore (PostgreSQL).
    pub tools: Option<&'a PgTools>,
    /// How long pg_dump waits for its table locks.
    pub lock_wait: Duration,
}

/// A backup taken or reused, with its manifest.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Taken {
    #[serde(flatten)]
    pub backup: Backup,
    /// The manifest beside it.
    pub manifest_path: PathBuf,
    /// The last backup in the directory was reused: the database has not changed since.
    pub reused: bool,
    /// The manifest's content: the version, the server, each table's rows then.
    pub manifest: Manifest,
}

/// The database's versions as the fingerprint spells them.
fn versions(state: &State) -> String {
    format!("{:?}|{:?}", state.current(), state.alembic)
}

/// Take a backup of `db` into `target.dir` (created 0700 when missing), or reuse the
/// last one when nothing was written since.
pub async fn take(
    db: &Db,
    state: &State,
    target: &Target<'_>,
    ui: &dyn Progress,
    cancel: &Cancel,
) -> Result<Taken> {
    super::ensure_dir(target.dir)?;
    let name = super::database_name(target.secret_url, db.backend);
    let fingerprint = super::fingerprint(db, &versions(state)).await?;
    if let Some(taken) = reuse(target, &name, &fingerprint, ui, cancel).await {
        return Ok(taken);
    }
    let revision = state
        .current()
        .map(|i| known()[i].alembic_revision)
        .unwrap_or("empty");
    let stamp = records::now().format("%Y%m%dT%H%M%SZ");
    let stem = format!("ecomind-{name}-{revision}-{stamp}");
    let ext = if target.tools.is_some() { "dump" } else { "db" };
    let path = super::create_backup_file(target.dir, &stem, ext)?;
    // Until the manifest is written, a signal removes the file: half a backup is none.
    let guard = cancel.child(0, Some(&path));
    let made = dump(db, state, target, &path, fingerprint, ui, cancel).await;
    let taken = match made {
        Ok(taken) => taken,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    {
        let _hold = cancel.hold();
        manifest::write(&path, &taken.manifest)?;
        drop(guard);
    }
    super::write_ledger(
        target.dir,
        &name,
        &super::Ledger {
            database: db.url.clone(),
            fingerprint: taken.manifest.fingerprint.clone(),
            path: path.clone(),
            bytes: taken.backup.bytes,
            sha256: taken.backup.sha256.clone(),
        },
    )?;
    Ok(taken)
}

/// The dump (PostgreSQL: pg_dump in the snapshot the row counts were read in) and its
/// manifest (not yet written).
async fn dump(
    db: &Db,
    state: &State,
    target: &Target<'_>,
    path: &Path,
    fingerprint: String,
    ui: &dyn Progress,
    cancel: &Cancel,
) -> Result<Taken> {
    let (schema_findings, _) = manifest::schema_findings(db).await?;
    if target.tools.is_some()
        && let Some(note) = pooler_note(db, target.secret_url).await
    {
        ui.note(&note);
    }
    let (backup, tables, server_version, database_bytes) = match target.tools {
        Some(tools) => {
            let txn = db.snapshot().await?;
            let read = async {
                use sea_orm::ConnectionTrait;
                let row = txn
                    .query_one_raw(sea_orm::Statement::from_string(
                        sea_orm::DbBackend::Postgres,
                        "SELECT pg_export_snapshot() AS id, current_setting('server_version') AS v, \
                                pg_database_size(current_database())::bigint AS b",
                    ))
                    .await
                    .map_err(|e| Error::from_db(e, "exporting the backup's snapshot"))?
                    .ok_or_else(|| Error::internal("no snapshot"))?;
                let get = |c: &str| row.try_get::<String>("", c).unwrap_or_default();
                let bytes: i64 = row.try_get("", "b").unwrap_or(0);
                // The counts in the dump's snapshot, beside pg_dump (a lock that holds
                // one up holds both; the first error ends both).
                let id = get("id");
                let (b, tables) = tokio::try_join!(
                    super::dump_postgres(
                        target.secret_url,
                        tools,
                        path,
                        target.lock_wait,
                        Some(&id),
                        ui,
                        cancel,
                    ),
                    manifest::table_counts(&txn)
                )?;
                Ok::<_, Error>((b, tables, get("v"), bytes.max(0) as u64))
            }
            .await;
            let _ = txn.rollback().await;
            read?
        }
        None => {
            let b = super::copy_sqlite(db, path).await?;
            let (tables, version) = sqlite_counts(path).await?;
            (b, tables, version, b_bytes(path))
        }
    };
    let current = state.current();
    Ok(Taken {
        manifest: Manifest {
            format: manifest::FORMAT,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            backend: if target.tools.is_some() {
                "postgres"
            } else {
                "sqlite"
            }
            .to_owned(),
            database: db.url.clone(),
            file: file_name(path),
            bytes: backup.bytes,
            sha256: backup.sha256.clone(),
            taken_at: records::now().and_utc().to_rfc3339(),
            version: current.map(|i| known()[i].version.clone()),
            alembic_revision: current.map(|i| known()[i].alembic_revision.to_owned()),
            server_version,
            database_bytes,
            fingerprint,
            schema_findings,
            tables,
        },
        manifest_path: manifest::path_of(path),
        backup,
        reused: false,
    })
}

/// When the URL's port is not the server's (a pooler or a proxy in between): pg_dump's
/// session settings (`search_path` emptied, ...) stay, in PgBouncer's transaction mode,
/// on the server connections it used, which then serve other clients (the API).
async fn pooler_note(db: &Db, secret_url: &str) -> Option<String> {
    let url = url::Url::parse(secret_url).ok()?;
    let ours = url.port().unwrap_or(5432);
    let row = db
        .query_one("SELECT inet_server_port() AS p")
        .await
        .ok()??;
    let server: i32 = row.try_get("", "p").ok()?;
    (url.host_str().is_some_and(|h| !h.starts_with('/')) && i32::from(ours) != server).then(|| {
        format!(
            "pg_dump connects through port {ours}, the server listens on {server} (a pooler or a proxy?): \
             in PgBouncer's transaction mode pg_dump's session settings (search_path emptied) stay on the \
             server connections it used and reach their next clients; take backups over a direct \
             connection or a session-mode pool"
        )
    })
}

fn b_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The row counts of a SQLite copy, and the SQLite library's version.
pub async fn sqlite_counts(path: &Path) -> Result<(Vec<manifest::TableCount>, String)> {
    use sea_orm::ConnectionTrait;
    let copy = super::open_sqlite_copy(path, true).await?;
    let counted = manifest::table_counts(&copy).await;
    let version = copy
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT sqlite_version() AS v",
        ))
        .await
        .ok()
        .flatten()
        .and_then(|r| r.try_get::<String>("", "v").ok())
        .unwrap_or_default();
    copy.close().await.ok();
    Ok((counted?, version))
}

/// The backup the directory's record names, when the database has not changed since
/// and the file, its manifest and its check pass again (all may have been planted).
/// A recorded backup that fails is not used (a note says why).
async fn reuse(
    target: &Target<'_>,
    name: &str,
    fingerprint: &str,
    ui: &dyn Progress,
    cancel: &Cancel,
) -> Option<Taken> {
    let (path, bytes, sha256) = super::reusable(target.dir, name, fingerprint)?;
    let started = Instant::now();
    let checked = async {
        let m = manifest::read(&path)?;
        if m.sha256 != sha256 || m.fingerprint != fingerprint {
            return Err(Error::refused("its manifest is not this backup's", ""));
        }
        let checked = match target.tools {
            Some(tools) => super::check_postgres(tools, &path, ui, cancel).await?,
            None => super::check_sqlite(&path).await?,
        };
        Ok((m, checked))
    }
    .await;
    match checked {
        Ok((manifest, checked)) => Some(Taken {
            backup: Backup {
                restore_command: super::restore_command(&path),
                path: path.clone(),
                bytes,
                sha256,
                duration_ms: started.elapsed().as_millis() as u64,
                checked,
            },
            manifest_path: manifest::path_of(&path),
            reused: true,
            manifest,
        }),
        Err(e) => {
            ui.note(&format!(
                "the recorded backup {} fails its check ({}): taking a new one",
                shown(&path.display().to_string()),
                e.message()
            ));
            None
        }
    }
}
