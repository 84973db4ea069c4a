//! Connecting (timeout + bounded retry), backend detection, and the migration lock.

use std::time::{Duration, Instant};

use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction,
    DbBackend, IsolationLevel, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};

use crate::config::{DatabaseConfig, UrlSource};
use crate::error::{Error, Result, is_retryable_connect};
use crate::progress::Progress;

/// The key of the PostgreSQL advisory lock that serializes schema changes
/// ("ecomind" in ASCII). Transaction-scoped, so it also holds behind PgBouncer in
/// transaction pooling mode and is released by a crash.
pub const MIGRATION_LOCK_KEY: i64 = 0x0065_636f_6d69_6e64;

/// An open database and what we know about it.
pub struct Db {
    pub conn: DatabaseConnection,
    pub backend: DbBackend,
    /// The URL as it may be printed.
    pub url: String,
    /// `--schema`: `SET LOCAL search_path` at the start of every transaction (inside
    /// the transaction, so that it holds behind PgBouncer in transaction pooling mode).
    search_path: Option<String>,
    /// `--lock-wait`: PostgreSQL `SET LOCAL lock_timeout` at the start of every
    /// transaction, so that no statement (a catalog read included) waits longer for a
    /// lock another session holds. Statements that set their own (a migration's
    /// `--ddl-lock-timeout`) override it.
    pub lock_wait: Duration,
    /// How to open a second connection (PostgreSQL, SQLite on a file): the options
    /// this one was opened with ([`Db::second_reader`]). Never printed.
    reopen: Option<ConnectOptions>,
    /// The task that notes who holds a lock we wait for (dropped with the Db).
    watcher: Option<AbortOnDrop>,
}

/// A spawned task, aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The default lock wait of a Db (commands set theirs: `--lock-wait`).
const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(60);

/// The `application_name` of this process's sessions: `ecomind-admin` and a random
/// tag, so that a signal can cancel exactly our statements (and a DBA sees who we are).
pub fn session_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| format!("ecomind-admin {:08x}", rand::random::<u32>()))
}

/// May connecting create the database? Only `migrate up` makes a new SQLite file;
/// every other command, read-only ones above all, needs it to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// Create a missing SQLite file (`migrate up`).
    MayCreate,
    /// The database must exist (exit 3 when a SQLite file is missing).
    Existing,
    /// A dry run: a missing SQLite file is planned against as a new, empty database
    /// (in memory), and nothing is created.
    DryRun,
}

/// The file a SQLite URL names, as sqlx reads it (its connect options: the name
/// percent-decoded, the parameters applied), unless it is an in-memory database.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    use sea_orm::sqlx::sqlite::SqliteConnectOptions;
    // The scheme sqlx's parser strips (it takes any other text for a file name).
    if !url.starts_with("sqlite:") {
        return None;
    }
    let options: SqliteConnectOptions = url.parse().ok()?;
    let file = options.get_filename();
    // sqlx names `:memory:` `file:sqlx-in-memory-N`; `mode=memory` (its parameters are
    // form-encoded, as sqlx reads them) keeps the name but never opens a file.
    let memory = file.to_string_lossy().starts_with("file:sqlx-in-memory-")
        || url.split_once('?').is_some_and(|(_, q)| {
            url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "mode" && v == "memory")
        });
    (!memory && !file.as_os_str().is_empty()).then(|| file.to_owned())
}

/// The URL to hand the driver: the configured one, except that a missing SQLite file is
/// an error unless `migrate up` may create it, and a dry run plans against an in-memory
/// database instead.
fn url_to_open(config: &DatabaseConfig, open: Open, ui: &dyn Progress) -> Result<String> {
    let secret_url = config.secret_url().to_owned();
    if config.backend != DbBackend::Sqlite || open == Open::MayCreate {
        return Ok(secret_url);
    }
    let Some(file) = sqlite_file(&secret_url).filter(|f| !f.exists()) else {
        return Ok(secret_url);
    };
    let shown = if file.is_relative() && file.parent() == Some(std::path::Path::new("")) {
        format!("./{}", file.display())
    } else {
        file.display().to_string()
    };
    if open == Open::Existing {
        return Err(Error::database(
            format!("no database at {shown}; `migrate up` creates it"),
            "check the path in the database URL, or run `ecomind-admin migrate up` first",
        ));
    }
    ui.note(&format!(
        "no database at {shown} yet: planning for a new, empty database; nothing is created"
    ));
    Ok("sqlite::memory:".to_owned())
}

/// Connect, retrying refused connections until `timeout` has passed (like `dbmate --wait`).
pub async fn connect(
    config: &DatabaseConfig,
    timeout: Duration,
    ui: &dyn Progress,
    open: Open,
) -> Result<Db> {
    if config.source == UrlSource::Default {
        ui.note(&format!(
            "no --database-url, DATABASE_URL or .env: using the embedded default {}",
            config.redacted()
        ));
    }
    let secret_url = url_to_open(config, open, ui)?;
    let deadline = Instant::now() + timeout;
    let mut opts = connect_options(secret_url, ui);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let per_try = remaining.max(Duration::from_millis(200));
        opts.connect_timeout(per_try).acquire_timeout(per_try);
        match tokio::time::timeout(
            per_try + Duration::from_millis(200),
            Database::connect(opts.clone()),
        )
        .await
        {
            Ok(Ok(conn)) => return session(conn, config, &opts).await,
            Ok(Err(err)) => {
                if is_retryable_connect(&err)
                    && Instant::now() + Duration::from_millis(250) < deadline
                {
                    if attempt == 1 {
                        ui.note(&format!(
                            "waiting up to {} for the database to accept connections",
                            humantime::format_duration(timeout)
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
                return Err(Error::from_db(
                    err,
                    &format!("cannot connect to {}", config.redacted()),
                ));
            }
            Err(_elapsed) => {
                return Err(Error::database(
                    format!(
                        "cannot connect to {}: no answer within {}",
                        config.redacted(),
                        humantime::format_duration(timeout)
                    ),
                    "check host, port and firewall; raise --connect-timeout if the server is slow to start",
                ));
            }
        }
    }
}

/// Who holds the locks our sessions wait for (PostgreSQL), for [`Db::watch_lock_waits`].
const BLOCKERS: &str = "SELECT b.pid, COALESCE(b.usename::text, '') AS usename, \
       COALESCE(b.application_name, '') AS app, \
       COALESCE(to_char(b.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), '') AS since, \
       COALESCE((SELECT string_agg(DISTINCT c.relname::text || ' (' || l.mode || ')', ', ') \
                 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                 WHERE l.pid = b.pid AND l.granted AND l.relation IN \
                       (SELECT relation FROM pg_locks WHERE pid = w.pid AND NOT granted)), '') AS what \
FROM pg_stat_activity w CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid) \
JOIN pg_stat_activity b ON b.pid = bp.pid WHERE w.application_name = $1";

async fn watch(url: String, wait: Duration, ui: Box<dyn Progress + Send>) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut opts = ConnectOptions::new(url);
    opts.max_connections(1)
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(2))
        .set_application_name(format!("{} watch", session_tag()))
        .map_sqlx_postgres_opts(|o| o.statement_cache_capacity(0).extra_float_digits(None));
    let Ok(conn) = Database::connect(opts).await else {
        return;
    };
    let mut told = std::collections::HashSet::new();
    loop {
        let rows = conn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                BLOCKERS,
                [session_tag().into()],
            ))
            .await
            .unwrap_or_default();
        for row in rows {
            let get = |c: &str| row.try_get::<String>("", c).unwrap_or_default();
            let pid: i32 = row.try_get("", "pid").unwrap_or_default();
            if !told.insert(pid) {
                continue;
            }
            let what = get("what");
            let since = get("since");
            ui.note(&format!(
                "waiting for a lock{} held by pid {pid} (user {}, application '{}'{}); giving up after {}",
                if what.is_empty() { String::new() } else { format!(" on {what}") },
                get("usename"),
                get("app"),
                if since.is_empty() { String::new() } else { format!(", in a transaction since {since} UTC") },
                humantime::format_duration(wait)
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How we connect: one connection, our application_name (for cancellation), statement
/// logging under -v, and nothing a stock PgBouncer refuses.
fn connect_options(secret_url: String, ui: &dyn Progress) -> ConnectOptions {
    let mut opts = ConnectOptions::new(secret_url);
    opts.max_connections(1)
        .min_connections(1)
        .sqlx_logging(ui.verbosity() > 0)
        .sqlx_logging_level(tracing::log::LevelFilter::Info)
        .set_application_name(session_tag())
        // Idle connections are never reaped mid-command.
        .idle_timeout(None::<Duration>)
        .max_lifetime(None::<Duration>)
        .test_before_acquire(false)
        // No named prepared statements: behind PgBouncer in transaction pooling mode the
        // next transaction may run on another server connection where they do not exist.
        // Unnamed statements live within one Parse/Bind/Execute/Sync, which is safe.
        //
        // No startup parameter a stock PgBouncer rejects: sqlx sends extra_float_digits
        // unless told not to (PgBouncer answers "unsupported startup parameter").
        .map_sqlx_postgres_opts(|o| o.statement_cache_capacity(0).extra_float_digits(None));
    opts
}

/// The connected session: `--schema` checked, the failpoint armed in test builds.
#[allow(unused_mut)]
async fn session(
    mut conn: DatabaseConnection,
    config: &DatabaseConfig,
    opts: &ConnectOptions,
) -> Result<Db> {
    #[cfg(debug_assertions)]
    failpoint(&mut conn);
    let backend = conn.get_database_backend();
    let db = Db {
        backend,
        conn,
        url: config.redacted(),
        search_path: config
            .set_search_path
            .then(|| config.schema.clone())
            .flatten(),
        lock_wait: DEFAULT_LOCK_WAIT,
        watcher: None,
        reopen: (backend == DbBackend::Postgres || sqlite_file(opts.get_url()).is_some())
            .then(|| opts.clone()),
    };
    if let Some(schema) = &config.schema {
        db.ensure_schema_exists(schema).await?;
    }
    Ok(db)
}

impl Db {
    pub fn is_postgres(&self) -> bool {
        self.backend == DbBackend::Postgres
    }

    /// Begin a read-write transaction (in `--schema`'s search_path).
    pub async fn begin(&self) -> Result<DatabaseTransaction> {
        let txn = self
            .conn
            .begin()
            .await
            .map_err(|e| Error::from_db(e, "beginning a transaction"))?;
        self.in_schema(&txn).await?;
        Ok(txn)
    }

    /// `SET LOCAL search_path` to `--schema`, when given, and `lock_timeout` to the lock
    /// wait (PostgreSQL), in one round trip.
    async fn in_schema(&self, txn: &DatabaseTransaction) -> Result<()> {
        if self.backend != DbBackend::Postgres {
            return Ok(());
        }
        let mut sql = format!(
            "SET LOCAL lock_timeout = '{}ms'",
            self.lock_wait.as_millis().clamp(1, i32::MAX as u128)
        );
        if let Some(schema) = &self.search_path {
            sql = format!("SET LOCAL search_path TO {}; {sql}", quote_ident(schema));
        }
        txn.execute_unprepared(&sql)
            .await
            .map_err(|e| Error::from_db(e, "setting the search_path and lock_timeout"))?;
        Ok(())
    }

    /// PostgreSQL: from now on, when a statement of ours waits for a lock, a note says
    /// what it waits for and who holds it (pid, user, application, since when), once per
    /// holder. A task polls once a second through a second connection, opened only once
    /// the command has run for a second (short commands never open it).
    pub fn watch_lock_waits(&mut self, config: &DatabaseConfig, ui: Box<dyn Progress + Send>) {
        if self.backend != DbBackend::Postgres {
            return;
        }
        let url = config.secret_url().to_owned();
        let wait = self.lock_wait;
        self.watcher = Some(AbortOnDrop(tokio::spawn(async move {
            watch(url, wait, ui).await;
        })));
    }

    /// `--schema` (or the URL's search_path) must name an existing schema: otherwise
    /// PostgreSQL silently falls back to the next one (public).
    async fn ensure_schema_exists(&self, schema: &str) -> Result<()> {
        let row = read_in(self.begin().await?, async |txn| {
            txn.query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT to_regnamespace(quote_ident($1)) IS NOT NULL AS present",
                [schema.into()],
            ))
            .await
            .map_err(|e| Error::from_db(e, "looking up the schema"))
        })
        .await;
        let present = row?
            .and_then(|r| r.try_get::<bool>("", "present").ok())
            .unwrap_or(false);
        if !present {
            return Err(Error::refused(
                format!(
                    "schema '{}' does not exist in {}",
                    crate::text::shown(schema),
                    self.url
                ),
                format!(
                    "create it first (CREATE SCHEMA {}), or fix --schema / the URL's search_path",
                    quote_ident(schema)
                ),
            ));
        }
        Ok(())
    }

    /// Cancel every running statement of this process's other sessions (PostgreSQL
    /// `pg_cancel_backend`, allowed on one's own role's sessions), and wait up to a
    /// second for them to stop.
    pub async fn cancel_session_statements(&self) -> Result<()> {
        let tag = session_tag();
        self.query_all(&format!(
            "SELECT pg_cancel_backend(pid) AS cancelled FROM pg_stat_activity \
             WHERE application_name = '{tag}' AND pid <> pg_backend_pid() AND state <> 'idle'"
        ))
        .await?;
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            let active = self
                .query_one(&format!(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = '{tag}' \
                     AND pid <> pg_backend_pid() AND state = 'active'"
                ))
                .await?
                .and_then(|r| r.try_get::<i64>("", "n").ok())
                .unwrap_or(0);
            if active == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Refuse up front, with a clear message, when this session cannot write: a hot
    /// standby, or a role with default_transaction_read_only=on. (SQLite reports a
    /// read-only file when the write happens.)
    pub async fn ensure_writable(&self) -> Result<()> {
        if !self.is_postgres() {
            return Ok(());
        }
        let row = self
            .query_one(
                "SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS ro",
            )
            .await
            .map_err(|e| e.context("checking whether the database is writable"))?;
        let (standby, ro) = match row {
            Some(r) => (
                r.try_get::<bool>("", "standby").unwrap_or(false),
                r.try_get::<String>("", "ro").unwrap_or_default() == "on",
            ),
            None => (false, false),
        };
        if standby {
            return Err(Error::database(
                format!(
                    "{} is read-only: it is a hot standby (recovery in progress)",
                    self.url
                ),
                "run write commands against the primary; read-only commands work here",
            ));
        }
        if ro {
            return Err(Error::database(
                format!(
                    "{} is read-only for this role (default_transaction_read_only is on)",
                    self.url
                ),
                "run write commands with a role that may write; read-only commands work with this one",
            ));
        }
        Ok(())
    }

    /// One query outside any other transaction, run inside a short one of its own: an
    /// extended-protocol query is Parse+Sync, then Bind+Execute+Sync, and behind
    /// PgBouncer in transaction pooling mode only a transaction keeps both halves on
    /// the same server connection.
    pub async fn query_one(&self, sql: &str) -> Result<Option<sea_orm::QueryResult>> {
        Ok(self.query_all(sql).await?.into_iter().next())
    }

    /// Every row of one query, like [`Db::query_one`].
    pub async fn query_all(&self, sql: &str) -> Result<Vec<sea_orm::QueryResult>> {
        read_in(self.begin().await?, async |txn| {
            txn.query_all_raw(Statement::from_string(self.backend, sql.to_owned()))
                .await
                .map_err(|e| Error::from_db(e, "querying"))
        })
        .await
    }

    /// Begin a read-only transaction that sees one consistent snapshot (REPEATABLE READ
    /// on PostgreSQL, which also works on a hot standby; a deferred transaction on SQLite).
    pub async fn snapshot(&self) -> Result<DatabaseTransaction> {
        let txn = match self.backend {
            DbBackend::Postgres => {
                self.conn
                    .begin_with_config(
                        Some(IsolationLevel::RepeatableRead),
                        Some(AccessMode::ReadOnly),
                    )
                    .await
            }
            _ => self.conn.begin().await,
        };
        let txn = txn.map_err(|e| Error::from_db(e, "beginning a read-only transaction"))?;
        self.in_schema(&txn).await?;
        Ok(txn)
    }

    /// SQLite on a file: a read transaction on a second connection (read-only) that sees
    /// what `txn`, a read transaction of ours that has read, sees; None when there can
    /// be none (not a file; WAL mode, where each reader has its own snapshot; a writer
    /// waiting to commit; any error). In the other journal modes `txn` holds the
    /// database's shared lock until it ends, so no write can commit before the second
    /// takes its own: both read the same database.
    pub async fn second_reader(&self, txn: &DatabaseTransaction) -> Option<DatabaseTransaction> {
        if self.backend != DbBackend::Sqlite {
            return None;
        }
        let opts = self.reopen.clone()?;
        let mode = txn
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA journal_mode".to_owned(),
            ))
            .await
            .ok()??
            .try_get_by_index::<String>(0)
            .ok()?;
        if mode.eq_ignore_ascii_case("wal") {
            return None;
        }
        let mut opts = opts;
        opts.min_connections(1)
            // Never wait: a writer waiting to commit refuses new readers; then the
            // caller reads alone.
            .map_sqlx_sqlite_opts(|o| o.read_only(true).busy_timeout(Duration::ZERO));
        let conn = Database::connect(opts).await.ok()?;
        let reader = conn.begin().await.ok()?;
        reader
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT COUNT(*) FROM sqlite_master".to_owned(),
            ))
            .await
            .ok()?;
        Some(reader)
    }

    /// PostgreSQL: a read-only transaction on a second connection that sees `txn`'s
    /// snapshot (a REPEATABLE READ transaction of ours: `pg_export_snapshot`, then
    /// `SET TRANSACTION SNAPSHOT`; a primary or a hot standby, 10+); None when there
    /// can be none (the second connection refused, say: then `txn` reads alone).
    pub async fn snapshot_reader(&self, txn: &DatabaseTransaction) -> Option<DatabaseTransaction> {
        if self.backend != DbBackend::Postgres {
            return None;
        }
        let mut opts = self.reopen.clone()?;
        let run = |sql: &str| Statement::from_string(DbBackend::Postgres, sql.to_owned());
        // Not in a savepoint: PostgreSQL exports no snapshot from a subtransaction.
        let id = txn
            .query_one_raw(run("SELECT pg_export_snapshot() AS id"))
            .await
            .ok()
            .flatten()
            .and_then(|row| row.try_get::<String>("", "id").ok())?;
        opts.min_connections(1);
        let conn = Database::connect(opts).await.ok()?;
        let reader = conn
            .begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await
            .ok()?;
        reader
            .execute_raw(run(&format!(
                "SET TRANSACTION SNAPSHOT {}",
                quote_literal(&id)
            )))
            .await
            .ok()?;
        self.in_schema(&reader).await.ok()?;
        Some(reader)
    }

    /// Another session holds the migration lock now (PostgreSQL; SQLite: never, its
    /// write lock is taken when a command writes).
    pub async fn migration_lock_held(&self) -> Result<bool> {
        if !self.is_postgres() {
            return Ok(false);
        }
        let key = MIGRATION_LOCK_KEY;
        let row = self
            .query_one(&format!(
                "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND classid = {} AND objid = {} AND objsubid = 1",
                (key >> 32) as u32,
                (key & 0xffff_ffff) as u32
            ))
            .await?;
        Ok(row
            .and_then(|r| r.try_get::<i64>("", "n").ok())
            .unwrap_or(0)
            > 0)
    }

    /// Begin a transaction that holds the migration lock, waiting up to `lock_wait` for it.
    ///
    /// PostgreSQL: `pg_try_advisory_xact_lock`, polled, released at commit, rollback or crash.
    /// SQLite: `BEGIN IMMEDIATE`, which takes the database's write lock, retried.
    pub async fn begin_locked(
        &self,
        lock_wait: Duration,
        ui: &dyn Progress,
    ) -> Result<DatabaseTransaction> {
        match self.backend {
            DbBackend::Postgres => {
                let mut wait = Waiter::new(lock_wait);
                let txn = self.begin().await?;
                let sql =
                    format!("SELECT pg_try_advisory_xact_lock({MIGRATION_LOCK_KEY}) AS locked");
                loop {
                    let row = txn
                        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql.clone()))
                        .await
                        .map_err(|e| Error::from_db(e, "taking the migration lock"))?;
                    let locked: bool = row
                        .map(|r| r.try_get("", "locked"))
                        .transpose()
                        .map_err(|e| Error::internal(format!("reading the lock result: {e}")))?
                        .unwrap_or(false);
                    if locked {
                        return Ok(txn);
                    }
                    if let Err(e) = wait
                        .retry(
                            ui,
                            "another ecomind-admin holds the migration lock; waiting for it",
                        )
                        .await
                    {
                        let _ = txn.rollback().await;
                        return Err(e);
                    }
                }
            }
            _ => self.begin_immediate(lock_wait, ui).await,
        }
    }

    /// SQLite: `BEGIN IMMEDIATE` (the database's write lock), retried for `lock_wait`.
    /// SQLite's own busy handler (sqlx sets 5 s) would wait longer than a shorter
    /// `lock_wait` on every try: while polling, it waits at most 100 ms, then it is
    /// set back for the statements of the transaction.
    async fn begin_immediate(
        &self,
        lock_wait: Duration,
        ui: &dyn Progress,
    ) -> Result<DatabaseTransaction> {
        set_busy_timeout(&self.conn, Duration::from_millis(100)).await?;
        match self.poll_immediate(lock_wait, ui).await {
            // The transaction holds the only connection: set it back through it.
            Ok(txn) => {
                set_busy_timeout(&txn, SQLITE_BUSY_TIMEOUT).await?;
                Ok(txn)
            }
            Err(e) => {
                let _ = set_busy_timeout(&self.conn, SQLITE_BUSY_TIMEOUT).await;
                Err(e)
            }
        }
    }

    async fn poll_immediate(
        &self,
        lock_wait: Duration,
        ui: &dyn Progress,
    ) -> Result<DatabaseTransaction> {
        let mut wait = Waiter::new(lock_wait);
        loop {
            let opts = TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            };
            match self.conn.begin_with_options(opts).await {
                Ok(txn) => return Ok(txn),
                Err(e) => {
                    let err = Error::from_db(e, "taking the database write lock");
                    if err.kind != crate::error::Kind::Refused {
                        return Err(err);
                    }
                    wait.retry(
                        ui,
                        "another process is writing to the database; waiting for it",
                    )
                    .await?;
                }
            }
        }
    }

    /// Begin a write transaction serialized with every other one for the same `key`
    /// (an account's email key): PostgreSQL takes a transaction-scoped advisory lock on
    /// (class, hashtext(key)), released at commit, rollback or crash, and safe behind
    /// PgBouncer; SQLite takes the database's write lock (`BEGIN IMMEDIATE`).
    pub async fn begin_serialized(
        &self,
        class: i32,
        key: &str,
        lock_wait: Duration,
        ui: &dyn Progress,
    ) -> Result<DatabaseTransaction> {
        if self.backend != DbBackend::Postgres {
            return self.begin_immediate(lock_wait, ui).await;
        }
        let txn = self.begin().await?;
        set_lock_timeout(&txn, lock_wait).await?;
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            [class.into(), key.into()],
        ))
        .await
        .map_err(|e| Error::from_db(e, "taking the account lock"))?;
        Ok(txn)
    }
}

/// Test builds only: `ECOMIND_FAILPOINT_ABORT_AFTER=N` aborts the process (as a
/// `kill -9` would, no destructor runs) right after its Nth SQL statement, so that the
/// crash-safety test can stop a run at every statement in turn.
#[cfg(debug_assertions)]
fn failpoint(conn: &mut DatabaseConnection) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let Some(n) = std::env::var("ECOMIND_FAILPOINT_ABORT_AFTER")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    let seen = AtomicU64::new(0);
    conn.set_metric_callback(move |_| {
        if seen.fetch_add(1, Ordering::SeqCst) + 1 == n {
            std::process::abort();
        }
    });
}

/// How long a SQLite statement waits for another writer (sqlx's default, kept).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

async fn set_busy_timeout<C: ConnectionTrait>(conn: &C, timeout: Duration) -> Result<()> {
    conn.execute_unprepared(&format!("PRAGMA busy_timeout = {}", timeout.as_millis()))
        .await
        .map_err(|e| Error::from_db(e, "setting busy_timeout"))?;
    Ok(())
}

/// The advisory-lock class of account creation (the first key of the two-key form,
/// a lock space apart from the migration lock's one-key form).
pub const ACCOUNT_LOCK_CLASS: i32 = 0x6163_6374; // "acct"
/// The advisory-lock class of changes to an organization's accounts (role changes).
pub const ORG_LOCK_CLASS: i32 = 0x6f72_6773; // "orgs"

/// Polling for a lock: says once that it waits, gives up after the deadline.
struct Waiter {
    started: Instant,
    limit: Duration,
    told: bool,
}

impl Waiter {
    fn new(limit: Duration) -> Self {
        Self {
            started: Instant::now(),
            limit,
            told: false,
        }
    }

    /// Sleep before the next try, or the lock-timeout error when the wait is over.
    async fn retry(&mut self, ui: &dyn Progress, note: &str) -> Result<()> {
        if self.started.elapsed() >= self.limit {
            return Err(lock_timeout_error(self.limit));
        }
        if !self.told {
            ui.note(note);
            self.told = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    }
}

/// A SQL string literal (both backends).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A PostgreSQL identifier, double-quoted.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn lock_timeout_error(waited: Duration) -> Error {
    Error::refused(
        format!(
            "timed out after {} waiting for the migration lock",
            humantime::format_duration(waited)
        ),
        "another ecomind-admin (or migration) is running against this database; retry when it is done, or raise --lock-wait",
    )
}

/// `SET LOCAL lock_timeout` for the rest of the transaction (PostgreSQL only).
pub async fn set_lock_timeout(txn: &DatabaseTransaction, timeout: Duration) -> Result<()> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let ms = timeout.as_millis().max(1);
    txn.execute_unprepared(&format!("SET LOCAL lock_timeout = '{ms}ms'"))
        .await
        .map_err(|e| Error::from_db(e, "setting lock_timeout"))?;
    Ok(())
}

/// Run `work` in a read-only `txn` and roll it back, whatever `work` returns.
pub async fn read_in<T>(
    txn: DatabaseTransaction,
    work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T>,
) -> Result<T> {
    let result = work(&txn).await;
    let _ = txn.rollback().await;
    result
}

/// Run `work` in `txn`: commit when it succeeds, roll back when it fails (the one
/// place transactions end; they begin in [`Db`], which takes locks and sets the
/// search_path, so sea-orm's `TransactionTrait::transaction` cannot begin them).
/// `what` names the commit in an error ("committing the baseline").
pub async fn commit_if_ok<T>(
    txn: DatabaseTransaction,
    what: &str,
    work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T>,
) -> Result<T> {
    match work(&txn).await {
        Ok(value) => {
            #[cfg(debug_assertions)]
            commit_delay().await;
            txn.commit().await.map_err(|e| Error::from_db(e, what))?;
            Ok(value)
        }
        Err(e) => {
            let _ = txn.rollback().await;
            Err(e)
        }
    }
}

/// Test builds only: `ECOMIND_FAILPOINT_COMMIT_DELAY_MS=N` holds every write
/// transaction open N ms before its commit, so that the concurrency tests make two
/// runs overlap for certain instead of by chance.
#[cfg(debug_assertions)]
async fn commit_delay() {
    if let Some(ms) = std::env::var("ECOMIND_FAILPOINT_COMMIT_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_file;
    use std::path::PathBuf;

    #[test]
    fn sqlite_files() {
        assert_eq!(
            sqlite_file("sqlite://ecomind.db?mode=rwc"),
            Some(PathBuf::from("ecomind.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:/tmp/a%20b.db"),
            Some(PathBuf::from("/tmp/a b.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=memory"), None);
        assert_eq!(sqlite_file("postgres://h/db"), None);
    }
}
