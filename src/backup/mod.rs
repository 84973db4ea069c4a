//! Backups: taken ([`take`], with their [`manifest`]), proven by a restore into a
//! scratch copy ([`verify`]), put back ([`restore`]). Here, what they share: the client
//! tools (PostgreSQL: `pg_dump --format=custom`, checked with `pg_restore --list`;
//! SQLite: `VACUUM INTO` a copy, checked with `PRAGMA integrity_check`), the private
//! directory, the record a rerun reuses. A password reaches the client tools through a
//! temporary 0600 passfile, never their argv. Knows nothing of the terminal: progress
//! goes through [`Progress`].

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cancel::Cancel;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::progress::Progress;

pub mod manifest;
pub mod restore;
pub mod take;
pub mod verify;

/// A backup that was taken (or reused) and checked.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, PartialEq)]
pub struct Backup {
    pub path: PathBuf,
    pub bytes: u64,
    /// SHA-256 of the file, taken when it was written (a reuse checks it again).
    pub sha256: String,
    pub duration_ms: u64,
    /// How it was checked (`pg_restore --list: 42 entries`, `integrity_check: ok`).
    pub checked: String,
    /// The command that puts it back, runnable as printed (built by this run from the
    /// database it was given, never read from disk).
    pub restore_command: String,
}

/// The PostgreSQL client tools a backup uses.
#[derive(Debug, Clone)]
pub struct PgTools {
    pub pg_dump: PathBuf,
    pub pg_restore: PathBuf,
    pub major: u32,
}

/// The major version a PostgreSQL client tool says it is (`pg_dump (PostgreSQL) 15.18`).
fn tool_major(tool: &Path) -> Option<u32> {
    let out = Command::new(tool).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    version.split(['.', ' ']).next()?.parse().ok()
}

/// Where to look for pg_dump: `bin_dir` when given; else PATH, then Debian's and the
/// PGDG packages' `/usr/lib/postgresql/<N>/bin` (newest first).
fn candidate_dirs(bin_dir: Option<&Path>) -> Vec<PathBuf> {
    if let Some(dir) = bin_dir {
        return vec![dir.to_owned()];
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((n, e.path().join("bin")))
        })
        .collect();
    versioned.sort_by_key(|v| std::cmp::Reverse(v.0));
    dirs.extend(versioned.into_iter().map(|(_, d)| d));
    dirs
}

/// pg_dump and pg_restore not older than the server's major version (pg_dump refuses
/// to dump a newer server), or exit 4 saying which version is needed.
pub fn find_pg_tools(server_major: u32, bin_dir: Option<&Path>) -> Result<PgTools> {
    let mut seen = Vec::new();
    for dir in candidate_dirs(bin_dir) {
        let (dump, restore) = (dir.join("pg_dump"), dir.join("pg_restore"));
        if !dump.is_file() || !restore.is_file() {
            continue;
        }
        match tool_major(&dump) {
            Some(major) if major >= server_major => {
                return Ok(PgTools {
                    pg_dump: dump,
                    pg_restore: restore,
                    major,
                });
            }
            Some(major) => seen.push(format!("{} ({major})", dump.display())),
            None => seen.push(format!("{} (no version)", dump.display())),
        }
    }
    let found = if seen.is_empty() {
        "no pg_dump found".to_owned()
    } else {
        format!("only older ones: {}", seen.join(", "))
    };
    Err(Error::refused(
        format!(
            "the backup needs pg_dump and pg_restore {server_major} or newer (the server is PostgreSQL {server_major}); {found}"
        ),
        format!(
            "install the PostgreSQL {server_major} client tools (Debian: postgresql-client-{server_major}) or pass --pg-bin-dir (`upgrade --no-backup` skips the backup)"
        ),
    ))
}

/// Only what libpq understands of the URL's query (sqlx takes a few more).
const LIBPQ_PARAMS: [&str; 9] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "options",
    "application_name",
    "connect_timeout",
    "host",
    "target_session_attrs",
];

/// The URL for the client tools: no password, only libpq's parameters; and the
/// password (percent-decoded), if the URL has one.
pub fn libpq_url(secret_url: &str) -> Result<(String, Option<String>)> {
    let mut url = url::Url::parse(secret_url)
        .map_err(|e| Error::internal(format!("the database URL no longer parses: {e}")))?;
    let password = url.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    let _ = url.set_password(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| LIBPQ_PARAMS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    Ok((url.to_string(), password))
}

/// A 0600 passfile in the temporary directory, removed when dropped.
pub(crate) struct PassFile(PathBuf);

impl PassFile {
    pub(crate) fn new(password: &str) -> Result<Self> {
        use std::io::Write;
        #[cfg(unix)]
        use std::os::unix::fs::OpenOptionsExt;
        let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
        let path = std::env::temp_dir().join(format!(
            "ecomind-admin-{}-{}.pgpass",
            std::process::id(),
            rand::random::<u64>()
        ));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        opts.mode(0o600);
        let mut f = opts.open(&path).map_err(|e| {
            Error::refused(
                format!("cannot write a passfile for pg_dump: {e}"),
                "check the temporary directory (TMPDIR)",
            )
        })?;
        writeln!(f, "*:*:*:*:{escaped}")
            .map_err(|e| Error::internal(format!("writing the passfile: {e}")))?;
        Ok(Self(path))
    }
}

impl Drop for PassFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A client tool's command: the connection through the environment (the passfile when
/// the URL has a password), never the password in argv.
pub(crate) fn pg_command(tool: &Path, pass: Option<&PassFile>) -> Command {
    let mut cmd = Command::new(tool);
    if let Some(p) = pass {
        cmd.env("PGPASSFILE", &p.0).env_remove("PGPASSWORD");
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// A client tool running: killed and reaped when dropped before it ends (an error on
/// our side, the future dropped), so that no pg_dump outlives the run.
pub(crate) struct Running(pub(crate) Option<std::process::Child>);

impl Running {
    pub(crate) fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, std::process::Child::id)
    }

    /// Whether it has ended (reaped then).
    pub(crate) fn try_wait(&mut self) -> std::io::Result<bool> {
        match self.0.as_mut() {
            Some(child) => child.try_wait().map(|s| s.is_some()),
            None => Ok(true),
        }
    }

    /// The ended process, to read its output.
    pub(crate) fn finished(mut self) -> Option<std::process::Child> {
        self.0.take()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Run `cmd` to the end, polling (the async runtime keeps running: a signal is
/// handled), reporting the size of `growing` on `ui` while it runs: its stdout, or the
/// error that it failed.
async fn run_tool(
    cmd: Command,
    what: &str,
    growing: Option<&Path>,
    ui: &dyn Progress,
    cancel: &Cancel,
) -> Result<String> {
    let out = run_tool_output(cmd, what, growing, ui, cancel).await?;
    if !out.status.success() {
        return Err(Error::refused(
            format!("{what} failed ({}): {}", out.status, tool_error(&out)),
            "nothing was changed; fix the cause and run the command again",
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A tool's first error line, redacted.
pub(crate) fn tool_error(out: &std::process::Output) -> String {
    let stderr = crate::redact::redact_text(String::from_utf8_lossy(&out.stderr).trim());
    let line = stderr
        .lines()
        .find(|l| l.contains("error"))
        .unwrap_or_else(|| first_line(&stderr));
    crate::text::shown(line).into_owned()
}

/// [`run_tool`], whatever the tool's exit status.
pub(crate) async fn run_tool_output(
    mut cmd: Command,
    what: &str,
    growing: Option<&Path>,
    ui: &dyn Progress,
    cancel: &Cancel,
) -> Result<std::process::Output> {
    let mut child = Running(Some(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Error::refused(
                    format!("cannot run {what}: {e}"),
                    "check the PostgreSQL client tools",
                )
            })?,
    ));
    // A signal stops it (and removes what it was writing) until it ends.
    let running = cancel.child(child.id(), growing);
    let started = Instant::now();
    let mut told = Duration::ZERO;
    let mut _spinner = ui.step(what);
    loop {
        if child
            .try_wait()
            .map_err(|e| Error::internal(format!("waiting for {what}: {e}")))?
        {
            break;
        }
        if started.elapsed() >= told + Duration::from_secs(1) {
            told = started.elapsed();
            let done = match growing {
                Some(path) => {
                    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                    format!("{} written in {} s", human_bytes(bytes), told.as_secs())
                }
                None => format!("{} s", told.as_secs()),
            };
            _spinner = ui.step(&format!("{what}: {done}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(running);
    child
        .finished()
        .ok_or_else(|| Error::internal(format!("{what} is gone")))?
        .wait_with_output()
        .map_err(|e| Error::internal(format!("reading {what}'s output: {e}")))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// `12.3 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A word for a shell: single-quoted unless plainly safe.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Create the backup file `DIR/STEM.EXT` empty and readable by its owner only (a backup
/// holds password hashes), never through a symlink; `STEM-2.EXT`, ... when that name is
/// taken (two backups in one second). The tools write into it.
pub fn create_backup_file(dir: &Path, stem: &str, ext: &str) -> Result<PathBuf> {
    for n in 1..100 {
        let name = if n == 1 {
            format!("{stem}.{ext}")
        } else {
            format!("{stem}-{n}.{ext}")
        };
        let path = dir.join(name);
        match crate::fsafe::create_new_private(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::refused(
                    format!("cannot create the backup file {}: {e}", path.display()),
                    "check --backup-dir",
                ));
            }
        }
    }
    Err(Error::refused(
        format!(
            "cannot create a backup file {stem}.{ext} in {}: the names are taken",
            dir.display()
        ),
        "clean up --backup-dir",
    ))
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest as _;
    let mut file = crate::fsafe::open_own_file(path).ok_or_else(|| {
        Error::refused(
            format!("the backup {} is not a file of ours", path.display()),
            "check --backup-dir",
        )
    })?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        use std::io::Read as _;
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) => {
                return Err(Error::refused(
                    format!("reading {}: {e}", path.display()),
                    "check the disk",
                ));
            }
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The command that restores a backup (the database from the same settings as this
/// run: `--database-url`, `DATABASE_URL`, `--env`).
pub fn restore_command(path: &Path) -> String {
    format!(
        "ecomind-admin restore {}",
        shell_quote(&path.display().to_string())
    )
}

/// `pg_restore --list` of a dump: how many entries its table of contents has.
pub async fn check_postgres(
    tools: &PgTools,
    path: &Path,
    ui: &dyn Progress,
    cancel: &Cancel,
) -> Result<String> {
    let mut list = pg_command(&tools.pg_restore, None);
    list.arg("--list").arg(path);
    let toc = run_tool(list, "pg_restore --list", None, ui, cancel).await?;
    let entries = toc
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .count();
    Ok(format!("pg_restore --list: {entries} entries"))
}

/// `pg_dump --format=custom` of the database into `path` (made by [`create_backup_file`]), checked with `pg_restore
/// --list`. pg_dump waits at most `lock_wait` for its table locks (a long transaction
/// holding a table exclusively fails the backup instead of hanging it).
pub async fn dump_postgres(
    secret_url: &str,
    tools: &PgTools,
    path: &Path,
    lock_wait: Duration,
    snapshot: Option<&str>,
    ui: &dyn Progress,
    cancel: &Cancel,
) -> Result<Backup> {
    let (url, password) = libpq_url(secret_url)?;
    let pass = password.as_deref().map(PassFile::new).transpose()?;
    let started = Instant::now();
    let mut dump = pg_command(&tools.pg_dump, pass.as_ref());
    dump.arg("--format=custom")
        .arg(format!(
            "--lock-wait-timeout={}ms",
            lock_wait.as_millis().max(1)
        ))
        .arg("--file")
        .arg(path)
        .arg("--dbname")
        .arg(&url);
    if let Some(id) = snapshot {
        dump.arg(format!("--snapshot={id}"));
    }
    let dumped = run_tool(dump, "pg_dump", Some(path), ui, cancel).await;
    if let Err(e) = dumped {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    let checked = check_postgres(tools, path, ui, cancel).await?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(Backup {
        path: path.to_owned(),
        bytes,
        sha256: sha256_file(path)?,
        duration_ms: started.elapsed().as_millis() as u64,
        checked,
        restore_command: restore_command(path),
    })
}

/// `VACUUM INTO` a copy of the SQLite database at `path` (made by [`create_backup_file`]), checked with `PRAGMA
/// integrity_check` on the copy.
pub async fn copy_sqlite(db: &Db, path: &Path) -> Result<Backup> {
    use sea_orm::ConnectionTrait;
    let started = Instant::now();
    let target = path.display().to_string();
    db.conn
        .execute_unprepared(&format!(
            "VACUUM INTO {}",
            crate::db::quote_literal(&target)
        ))
        .await
        .map_err(|e| Error::from_db(e, "copying the database (VACUUM INTO)"))?;
    let checked = check_sqlite(path).await?;
    Ok(Backup {
        path: path.to_owned(),
        bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        sha256: sha256_file(path)?,
        duration_ms: started.elapsed().as_millis() as u64,
        checked,
        restore_command: restore_command(path),
    })
}

/// The URL of the SQLite file `path`, opened in `mode` (`ro`, `rw`): the name
/// percent-encoded where sqlx would read it otherwise.
pub fn sqlite_url(path: &Path, mode: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::CONTROLS.add(b'%').add(b'?').add(b'#');
    let target = path.display().to_string();
    format!(
        "sqlite://{}?mode={mode}",
        percent_encoding::utf8_percent_encode(&target, SET)
    )
}

/// A SQLite file opened on one connection (read-only when `ro`).
pub async fn open_sqlite_copy(path: &Path, ro: bool) -> Result<sea_orm::DatabaseConnection> {
    let mut opts = sea_orm::ConnectOptions::new(sqlite_url(path, if ro { "ro" } else { "rw" }));
    opts.max_connections(1).sqlx_logging(false);
    sea_orm::Database::connect(opts)
        .await
        .map_err(|e| Error::from_db(e, "opening the copy"))
}

/// `PRAGMA integrity_check` on a SQLite copy, opened read-only.
pub async fn check_sqlite(path: &Path) -> Result<String> {
    use sea_orm::ConnectionTrait;
    let target = path.display().to_string();
    let copy = open_sqlite_copy(path, true).await?;
    let row = copy
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "PRAGMA integrity_check",
        ))
        .await
        .map_err(|e| Error::from_db(e, "checking the copy"));
    copy.close().await.ok();
    let verdict: String = row?
        .and_then(|r| r.try_get_by_index::<String>(0).ok())
        .unwrap_or_default();
    if verdict != "ok" {
        return Err(Error::refused(
            format!(
                "the copy at {} fails PRAGMA integrity_check: {}",
                crate::text::shown(&target),
                crate::text::shown(&verdict)
            ),
            "nothing was changed; check the disk and run the command again",
        ));
    }
    Ok("integrity_check: ok".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_urls_lose_the_password_and_sqlx_params() {
        let (url, pw) = libpq_url(
            "postgres://ops:s%3Acret@db.example.com:6432/ecomind?sslmode=require&statement-cache-capacity=0",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://ops@db.example.com:6432/ecomind?sslmode=require"
        );
        assert_eq!(pw.as_deref(), Some("s:cret"));
        let (url, pw) = libpq_url("postgres://ops@h/db").unwrap();
        assert_eq!(url, "postgres://ops@h/db");
        assert_eq!(pw, None);
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_quote("/tmp/a.dump"), "/tmp/a.dump");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(
            shell_quote("postgres://u@h:5432/db?sslmode=require"),
            "'postgres://u@h:5432/db?sslmode=require'"
        );
    }
}

/// What the database is now, cheaply: its recorded versions, and PostgreSQL's write
/// counters (rows inserted, updated, deleted) of each table by OID (a table dropped and
/// made again is another), or SQLite's row counts and schema version. Equal fingerprints: nothing was written in between, so a
/// backup taken then still is the database's state.
pub async fn fingerprint(db: &Db, versions: &str) -> Result<String> {
    let sql = if db.is_postgres() {
        "SELECT COALESCE(string_agg(relid || ':' || n_tup_ins || ':' || n_tup_upd || ':' || n_tup_del, ',' \
                                    ORDER BY relid), '') AS v FROM pg_stat_user_tables \
         WHERE schemaname = current_schema() AND relname NOT IN ('seaql_migrations', 'alembic_version')"
            .to_owned()
    } else {
        let tables = crate::migrations::tables_present(&db.conn).await?;
        let mut parts = vec!["(SELECT schema_version FROM pragma_schema_version)".to_owned()];
        for t in tables.iter().filter(|t| *t != "seaql_migrations") {
            parts.push(format!(
                "(SELECT count(*) FROM \"{}\")",
                t.replace('"', "\"\"")
            ));
        }
        format!("SELECT {} AS v", parts.join(" || ',' || "))
    };
    let row = db
        .query_one(&sql)
        .await
        .map_err(|e| e.context("reading what the database is now"))?;
    let v: String = row
        .and_then(|r| r.try_get("", "v").ok())
        .unwrap_or_default();
    Ok(format!("{versions}|{v}"))
}

/// The record of the last backup of one database in a backup directory, so that a
/// rerun after a failure reuses it when the database has not changed since. It is read
/// back as hostile: only from a private directory, only a file of ours, naming a file of
/// ours in that directory whose digest still matches; and it holds no command.
#[derive(Debug, Serialize, schemars::JsonSchema, serde::Deserialize)]
pub struct Ledger {
    pub database: String,
    pub fingerprint: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

pub fn ledger_path(dir: &Path, db_name: &str) -> PathBuf {
    dir.join(format!(".ecomind-upgrade-{db_name}.json"))
}

/// The backup file the ledger names, when its fingerprint is `fingerprint` and the file
/// is ours, in `dir`, named like our backups of `db_name`, with its size and digest. The
/// caller checks it again (`check_postgres` / `check_sqlite`) before relying on it.
pub fn reusable(dir: &Path, db_name: &str, fingerprint: &str) -> Option<(PathBuf, u64, String)> {
    let text = crate::fsafe::read_own_file(&ledger_path(dir, db_name), 64 * 1024)?;
    let ledger: Ledger = serde_json::from_str(&text).ok()?;
    let name = ledger.path.file_name()?.to_str()?;
    let ours = ledger.path.parent() == Some(dir)
        && name.starts_with(&format!("ecomind-{db_name}-"))
        && (name.ends_with(".dump") || name.ends_with(".db"));
    if !ours || ledger.fingerprint != fingerprint {
        return None;
    }
    let size = crate::fsafe::open_own_file(&ledger.path)?
        .metadata()
        .ok()?
        .len();
    let digest = sha256_file(&ledger.path).ok()?;
    (size == ledger.bytes && digest == ledger.sha256).then_some((ledger.path, size, digest))
}

pub fn write_ledger(dir: &Path, db_name: &str, ledger: &Ledger) -> Result<()> {
    let text = serde_json::to_string_pretty(ledger)
        .map_err(|e| Error::internal(format!("serializing the backup ledger: {e}")))?;
    crate::fsafe::write_private(&ledger_path(dir, db_name), text.as_bytes()).map_err(|e| {
        Error::refused(
            format!("cannot write the backup ledger in {}: {e}", dir.display()),
            "check the backup directory's permissions",
        )
    })
}

/// The backup directory, created (0700) when missing.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    use std::os::unix::fs::DirBuilderExt;
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    b.mode(0o700);
    b.create(dir).map_err(|e| {
        Error::refused(
            format!("cannot create the backup directory {}: {e}", dir.display()),
            "pass --backup-dir with a writable directory",
        )
    })?;
    crate::fsafe::check_private_dir(dir, "the backup directory")
}

/// A name for files: the database's name (PostgreSQL) or file stem (SQLite), with
/// anything but letters, digits, `-` and `_` replaced.
pub fn database_name(secret_url: &str, backend: sea_orm::DbBackend) -> String {
    let raw = if backend == sea_orm::DbBackend::Postgres {
        url::Url::parse(secret_url)
            .ok()
            .map(|u| u.path().trim_start_matches('/').to_owned())
            .unwrap_or_default()
    } else {
        crate::db::sqlite_file(secret_url)
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default()
    };
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() { "db".into() } else { clean }
}
