//! The manifest kept beside each backup (`FILE.manifest.json`): what the backup is of
//! (the version, the server, the fingerprint), its digest, and each table's row count
//! and write counters at the moment of the dump, read in the dump's own snapshot. It
//! is what `backup verify` compares a restored copy with, and what `restore` measures
//! the writes it will throw away against. Read back as hostile: only a file of ours, of
//! bounded size, with exactly these fields, naming the dump beside it.

use std::path::{Path, PathBuf};

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::{Deserialize, Serialize};

use crate::db::quote_ident;
use crate::error::{Error, Result};

/// This layout's number (a newer build may add one; an unknown one is refused).
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// The ecomind-admin that took it.
    pub tool_version: String,
    /// `postgres` or `sqlite`.
    pub backend: String,
    /// The database it is of (redacted URL).
    pub database: String,
    /// The backup's file name (in the same directory).
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    /// When it was taken (UTC, RFC 3339).
    pub taken_at: String,
    /// The migration version recorded then (None: an empty database).
    pub version: Option<String>,
    pub alembic_revision: Option<String>,
    /// `server_version` (PostgreSQL) or the SQLite library version.
    pub server_version: String,
    /// The database's size then (`pg_database_size`, the SQLite file): what a copy needs.
    pub database_bytes: u64,
    /// What `upgrade` compares to decide that nothing was written since.
    pub fingerprint: String,
    /// verify-schema's findings on the database then (`kind table object`, sorted):
    /// a faithful copy has exactly these (a drifted database's copy is drifted alike).
    pub schema_findings: Vec<String>,
    pub tables: Vec<TableCount>,
}

/// One table at backup time.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableCount {
    /// `public`, or `main` on SQLite.
    pub schema: String,
    pub table: String,
    pub rows: i64,
    /// PostgreSQL: the table's OID and its write counters then (pg_stat_user_tables).
    pub relid: Option<i64>,
    pub inserted: Option<i64>,
    pub updated: Option<i64>,
    pub deleted: Option<i64>,
}

/// Where a backup's manifest is.
pub fn path_of(backup: &Path) -> PathBuf {
    let mut name = backup.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

/// The manifest beside `backup`, checked: ours (owner, not a link, at most 1 MiB),
/// exactly this layout, naming `backup`. Err: why not (exit 4).
pub fn read(backup: &Path) -> Result<Manifest> {
    let path = path_of(backup);
    let shown = crate::text::shown(&path.display().to_string()).into_owned();
    let text = crate::fsafe::read_own_file(&path, 1 << 20).ok_or_else(|| {
        Error::refused(
            format!("no manifest of ours at {shown}"),
            "verify and restore backups taken by `ecomind-admin backup` or `upgrade` (the manifest is written beside the dump)",
        )
    })?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| {
        Error::refused(
            format!("the manifest {shown} does not parse: {e}"),
            "it is not one ecomind-admin wrote; take a new backup",
        )
    })?;
    let name = backup.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if m.format != FORMAT || m.file != name || m.sha256.len() != 64 {
        return Err(Error::refused(
            format!("the manifest {shown} is not the manifest of this backup"),
            "it names another file or a layout this build does not know; take a new backup",
        ));
    }
    Ok(m)
}

pub fn write(backup: &Path, m: &Manifest) -> Result<()> {
    let text = serde_json::to_string_pretty(m)
        .map_err(|e| Error::internal(format!("serializing the manifest: {e}")))?;
    crate::fsafe::write_private(&path_of(backup), text.as_bytes()).map_err(|e| {
        Error::refused(
            format!("cannot write the manifest beside {}: {e}", backup.display()),
            "check the backup directory's permissions",
        )
    })
}

/// verify-schema's findings on `db` (against its recorded version), as the manifest
/// keeps them; and the version's label.
pub async fn schema_findings(db: &crate::db::Db) -> Result<(Vec<String>, String)> {
    let (state, report) = crate::schema::check::check(db, None, false).await?;
    let mut findings: Vec<String> = report
        .findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {}",
                f.kind,
                f.table.as_deref().unwrap_or("-"),
                f.object
            )
        })
        .collect();
    findings.sort();
    let at = crate::migrations::version_label(&crate::migrations::version(state.current()));
    Ok((findings, at))
}

/// The schema of `db` judged against the backup's: (ok, what to say).
pub async fn schema_as_recorded(
    db: &crate::db::Db,
    m: Option<&Manifest>,
    what: &str,
) -> Result<(bool, String)> {
    let (found, at) = schema_findings(db).await?;
    let recorded: &[String] = m.map_or(&[], |m| &m.schema_findings);
    let n = |k: usize| crate::text::plural(k as i64, "finding", "findings");
    Ok(if found == recorded {
        let detail = if found.is_empty() {
            format!("{what} matches {at}")
        } else {
            format!(
                "{what} is at {at} with the {} the database had when the backup was taken",
                n(found.len())
            )
        };
        (true, detail)
    } else {
        let extra = found.iter().filter(|f| !recorded.contains(f)).count();
        let missing = recorded.iter().filter(|f| !found.contains(f)).count();
        (
            false,
            format!(
                "{what} differs from the backup's schema at {at}: {} more, {} fewer than recorded",
                n(extra),
                n(missing)
            ),
        )
    })
}

/// Each table's row count (and PostgreSQL's write counters) as `conn` sees them: in a
/// PostgreSQL snapshot, the dump's. `schemas`: PostgreSQL's user schemas (None: all).
pub async fn table_counts<C: ConnectionTrait>(conn: &C) -> Result<Vec<TableCount>> {
    let backend = conn.get_database_backend();
    let list = if backend == DbBackend::Postgres {
        "SELECT relid::bigint AS relid, schemaname::text AS s, relname::text AS t, \
                n_tup_ins::bigint AS ins, n_tup_upd::bigint AS upd, n_tup_del::bigint AS del \
         FROM pg_stat_user_tables ORDER BY 2, 3"
    } else {
        "SELECT NULL AS relid, 'main' AS s, name AS t, NULL AS ins, NULL AS upd, NULL AS del \
         FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY 3"
    };
    let rows = conn
        .query_all_raw(Statement::from_string(backend, list))
        .await
        .map_err(|e| Error::from_db(e, "listing the tables"))?;
    let mut tables: Vec<TableCount> = rows
        .iter()
        .map(|r| TableCount {
            schema: r.try_get("", "s").unwrap_or_default(),
            table: r.try_get("", "t").unwrap_or_default(),
            rows: 0,
            relid: r.try_get("", "relid").ok(),
            inserted: r.try_get("", "ins").ok(),
            updated: r.try_get("", "upd").ok(),
            deleted: r.try_get("", "del").ok(),
        })
        .collect();
    for chunk in tables.chunks_mut(200) {
        let sql = chunk
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let name = if backend == DbBackend::Postgres {
                    format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.table))
                } else {
                    quote_ident(&t.table)
                };
                format!("SELECT CAST({i} AS BIGINT) AS i, count(*) AS n FROM {name}")
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let counted = conn
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .map_err(|e| Error::from_db(e, "counting the rows"))?;
        for r in counted {
            let i: i64 = r.try_get("", "i").unwrap_or(-1);
            let n: i64 = r.try_get("", "n").unwrap_or(0);
            if let Some(t) = usize::try_from(i).ok().and_then(|i| chunk.get_mut(i)) {
                t.rows = n;
            }
        }
    }
    Ok(tables)
}

/// One table's rows compared: in the manifest and in the database.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, PartialEq)]
pub struct RowCheck {
    pub schema: String,
    pub table: String,
    /// In the backup (None: the table is not in it).
    pub expected: Option<i64>,
    /// In the database (None: the table is not there).
    pub found: Option<i64>,
    pub ok: bool,
}

/// Every table of either side, compared by name.
pub fn compare(expected: &[TableCount], found: &[TableCount]) -> Vec<RowCheck> {
    let key = |t: &TableCount| (t.schema.clone(), t.table.clone());
    let mut names: Vec<(String, String)> = expected.iter().chain(found).map(key).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|(schema, table)| {
            let pick = |list: &[TableCount]| {
                list.iter()
                    .find(|t| t.schema == schema && t.table == table)
                    .map(|t| t.rows)
            };
            let (expected, found) = (pick(expected), pick(found));
            RowCheck {
                ok: expected == found,
                schema,
                table,
                expected,
                found,
            }
        })
        .collect()
}

/// The first few differences, for one line: `users: 3 in the backup, 5 here; ...`.
pub fn differences(checks: &[RowCheck]) -> String {
    let shown = |n: Option<i64>| n.map_or("no table".to_owned(), |n| n.to_string());
    let bad: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| {
            format!(
                "{}: {} in the backup, {} here",
                crate::text::shown(&c.table),
                shown(c.expected),
                shown(c.found)
            )
        })
        .collect();
    let more = bad.len().saturating_sub(5);
    let mut line = bad.into_iter().take(5).collect::<Vec<_>>().join("; ");
    if more > 0 {
        line.push_str(&format!("; and {more} more"));
    }
    line
}
