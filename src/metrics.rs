//! `metrics`: what the deployment plan's monitoring asks for, read from the database in
//! one snapshot and written in the Prometheus text exposition format (OpenMetrics,
//! encoded by `prometheus-client`). Every query costs what its window holds: the auth
//! events through the index on `audit_logs.ts`, never the whole table. Label values read
//! from the database (applications, users, reasons) are hostile: bounded in number and
//! length, escaped by the encoder.

use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement};

use crate::db::{self, Db};
use crate::error::{Error, Result};

/// What a scrape reads.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a token the API issued stays valid (its ACCESS_TOKEN_EXPIRE_MINUTES).
    pub token_lifetime: Duration,
    /// Users by org and role (one series per org: only when asked).
    pub by_org: bool,
    /// PostgreSQL `statement_timeout` for the scrape's reads (`SET LOCAL`: it holds
    /// behind a pooler too); None: the server's.
    pub statement_timeout: Option<Duration>,
}

type Labels = Vec<(String, String)>;

/// One scrape's values.
#[derive(Debug, Default)]
pub struct Sample {
    /// (action, reason, window) -> events.
    pub auth_events: Vec<(String, String, &'static str, i64)>,
    /// (org or "", role) -> users.
    pub users: Vec<(String, String, i64)>,
    pub token_holders: i64,
    pub version: Option<(String, String)>,
    pub pending: i64,
    pub drift: i64,
    /// (user, application) -> connections; PostgreSQL only.
    pub connections: Vec<(String, String, i64)>,
    pub max_connections: Option<i64>,
}

/// The auth actions the API writes, counted per window.
const ACTIONS: [&str; 4] = ["login_success", "login_failed", "logout", "user_registered"];
/// The reasons the API gives for a failed login; anything else is `other`.
const REASONS: [&str; 2] = ["user_not_found", "invalid_password"];
/// Distinct (user, application) pairs kept; the rest are summed as `other`.
const MAX_CONNECTION_SERIES: usize = 20;

/// A label value read from the database: at most 64 characters.
fn bounded(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Read everything in one read-only snapshot.
pub async fn collect(db: &Db, opts: &Options) -> Result<Sample> {
    let pg = db.is_postgres();
    let state = crate::migrations::snapshot_state(db).await?;
    let (_, check) = crate::schema::check::check(db, None, false).await?;
    let mut sample = Sample {
        version: state.current().map(|i| {
            let k = &crate::migrations::known()[i];
            (k.version.clone(), k.alembic_revision.to_owned())
        }),
        pending: state.pending().len() as i64,
        drift: check.findings.len() as i64,
        ..Sample::default()
    };
    if state.current().is_none() {
        return Ok(sample);
    }
    let lifetime = opts.token_lifetime.as_secs().max(1);
    db::read_in(db.snapshot().await?, async |txn| {
        if let (true, Some(t)) = (pg, opts.statement_timeout) {
            txn.execute_unprepared(&format!(
                "SET LOCAL statement_timeout = '{}ms'",
                t.as_millis().max(1)
            ))
            .await
            .map_err(|e| Error::from_db(e, "setting statement_timeout"))?;
        }
        sample.auth_events = auth_events(txn, pg).await?;
        sample.users = users(txn, pg, opts.by_org).await?;
        sample.token_holders = token_holders(txn, pg, lifetime).await?;
        if pg {
            (sample.connections, sample.max_connections) = connections(txn).await?;
        }
        Ok(())
    })
    .await?;
    Ok(sample)
}

fn stmt(pg: bool, sql: String) -> Statement {
    Statement::from_string(
        if pg {
            DbBackend::Postgres
        } else {
            DbBackend::Sqlite
        },
        sql,
    )
}

async fn rows(
    txn: &DatabaseTransaction,
    pg: bool,
    sql: String,
) -> Result<Vec<sea_orm::QueryResult>> {
    txn.query_all_raw(stmt(pg, sql))
        .await
        .map_err(|e| Error::from_db(e, "reading the metrics"))
}

/// The auth events of the last minute and of the last five, through the `ts` index.
async fn auth_events(
    txn: &DatabaseTransaction,
    pg: bool,
) -> Result<Vec<(String, String, &'static str, i64)>> {
    let actions = ACTIONS
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = if pg {
        format!(
            // The bound inline (a stable expression, not a subquery): the planner then
            // estimates the window and walks the `ts` index (on 20M rows a CTE's bound
            // made it read far more).
            "SELECT action::text AS action, \
                    CASE WHEN action = 'login_failed' THEN COALESCE(details->>'reason', '') ELSE '' END AS reason, \
                    count(*) FILTER (WHERE ts >= (now() AT TIME ZONE 'utc') - interval '1 minute') AS m1, \
                    count(*) AS m5 \
             FROM audit_logs WHERE ts >= (now() AT TIME ZONE 'utc') - interval '5 minutes' \
               AND action IN ({actions}) GROUP BY 1, 2"
        )
    } else {
        format!(
            "SELECT action, \
                    CASE WHEN action = 'login_failed' AND json_valid(details) \
                         THEN COALESCE(json_extract(details, '$.reason'), '') ELSE '' END AS reason, \
                    sum(ts >= strftime('%Y-%m-%d %H:%M:%S', 'now', '-1 minute')) AS m1, \
                    count(*) AS m5 \
             FROM audit_logs WHERE ts >= strftime('%Y-%m-%d %H:%M:%S', 'now', '-5 minutes') \
               AND action IN ({actions}) GROUP BY 1, 2"
        )
    };
    let mut counts: std::collections::BTreeMap<(String, String), (i64, i64)> = Default::default();
    for action in ACTIONS {
        if action == "login_failed" {
            for reason in REASONS.iter().chain(&["other"]) {
                counts.insert((action.to_owned(), (*reason).to_owned()), (0, 0));
            }
        } else {
            counts.insert((action.to_owned(), String::new()), (0, 0));
        }
    }
    for r in rows(txn, pg, sql).await? {
        let action: String = r.try_get("", "action").unwrap_or_default();
        let mut reason: String = r.try_get("", "reason").unwrap_or_default();
        if action == "login_failed" && !REASONS.contains(&reason.as_str()) {
            reason = "other".into();
        }
        let m1: i64 = r.try_get("", "m1").unwrap_or(0);
        let m5: i64 = r.try_get("", "m5").unwrap_or(0);
        let e = counts.entry((action, reason)).or_default();
        e.0 += m1;
        e.1 += m5;
    }
    Ok(counts
        .into_iter()
        .flat_map(|((a, r), (m1, m5))| [(a.clone(), r.clone(), "1m", m1), (a, r, "5m", m5)])
        .collect())
}

async fn users(
    txn: &DatabaseTransaction,
    pg: bool,
    by_org: bool,
) -> Result<Vec<(String, String, i64)>> {
    let org = if by_org { "org_id" } else { "''" };
    let role = if pg { "role::text" } else { "role" };
    let sql = format!(
        "SELECT {org} AS org, COALESCE({role}, '') AS role, count(*) AS n FROM users GROUP BY 1, 2 ORDER BY 1, 2"
    );
    Ok(rows(txn, pg, sql)
        .await?
        .iter()
        .map(|r| {
            (
                bounded(&r.try_get::<String>("", "org").unwrap_or_default()),
                bounded(&r.try_get::<String>("", "role").unwrap_or_default()),
                r.try_get("", "n").unwrap_or(0),
            )
        })
        .collect())
}

/// Accounts with a successful login within the token lifetime: who may hold a valid
/// token now.
async fn token_holders(txn: &DatabaseTransaction, pg: bool, lifetime: u64) -> Result<i64> {
    let sql = if pg {
        format!(
            "SELECT count(DISTINCT COALESCE(user_id, details->>'email')) AS n FROM audit_logs \
             WHERE action = 'login_success' AND ts >= (now() AT TIME ZONE 'utc') - interval '{lifetime} seconds'"
        )
    } else {
        format!(
            "SELECT count(DISTINCT COALESCE(user_id, CASE WHEN json_valid(details) THEN json_extract(details, '$.email') END)) AS n \
             FROM audit_logs WHERE action = 'login_success' \
               AND ts >= strftime('%Y-%m-%d %H:%M:%S', 'now', '-{lifetime} seconds')"
        )
    };
    Ok(rows(txn, pg, sql)
        .await?
        .first()
        .and_then(|r| r.try_get("", "n").ok())
        .unwrap_or(0))
}

/// Connections to this database by user and application (our own session tag
/// dropped, at most [`MAX_CONNECTION_SERIES`] pairs), and the server's maximum.
async fn connections(
    txn: &DatabaseTransaction,
) -> Result<(Vec<(String, String, i64)>, Option<i64>)> {
    let sql = "SELECT COALESCE(usename::text, '') AS u, \
                      regexp_replace(COALESCE(application_name, ''), '^(ecomind-admin) [0-9a-f]{8}.*$', '\\1') AS a, \
                      count(*) AS n \
               FROM pg_stat_activity WHERE datname = current_database() GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2"
        .to_owned();
    let mut list: Vec<(String, String, i64)> = rows(txn, true, sql)
        .await?
        .iter()
        .map(|r| {
            (
                bounded(&r.try_get::<String>("", "u").unwrap_or_default()),
                bounded(&r.try_get::<String>("", "a").unwrap_or_default()),
                r.try_get("", "n").unwrap_or(0),
            )
        })
        .collect();
    if list.len() > MAX_CONNECTION_SERIES {
        let rest: i64 = list[MAX_CONNECTION_SERIES - 1..].iter().map(|c| c.2).sum();
        list.truncate(MAX_CONNECTION_SERIES - 1);
        list.push(("other".into(), "other".into(), rest));
    }
    let max = rows(
        txn,
        true,
        "SELECT current_setting('max_connections')::bigint AS m".into(),
    )
    .await?
    .first()
    .and_then(|r| r.try_get("", "m").ok());
    Ok((list, max))
}

fn gauge_family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    registry.register(name, help, f.clone());
    f
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The exposition: `sample` (None: the scrape failed) and the scrape's own duration.
pub fn render(sample: Option<&Sample>, took: Duration) -> Result<String> {
    let mut registry = Registry::default();
    let success = Gauge::<i64>::default();
    registry.register(
        "ecomind_scrape_success",
        "1 when the last read of the database succeeded, else 0",
        success.clone(),
    );
    let duration = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    registry.register(
        "ecomind_scrape_duration_seconds",
        "How long reading the database took",
        duration.clone(),
    );
    duration.set(took.as_secs_f64());
    if let Some(s) = sample {
        success.set(1);
        register_sample(&mut registry, s);
    }
    let mut out = String::new();
    encode(&mut out, &registry)
        .map_err(|e| Error::internal(format!("encoding the metrics: {e}")))?;
    Ok(out)
}

fn register_sample(registry: &mut Registry, s: &Sample) {
    let events = gauge_family(
        registry,
        "ecomind_auth_events",
        "Auth events in audit_logs within the window (1m, 5m): logins by result and reason, logouts, registrations",
    );
    for (action, reason, window, n) in &s.auth_events {
        events
            .get_or_create(&labels(&[
                ("action", action),
                ("reason", reason),
                ("window", window),
            ]))
            .set(*n);
    }
    let users = gauge_family(
        registry,
        "ecomind_users",
        "Users by role (and org with --by-org)",
    );
    for (org, role, n) in &s.users {
        let mut l = labels(&[("role", role)]);
        if !org.is_empty() {
            l.insert(0, ("org".into(), org.clone()));
        }
        users.get_or_create(&l).set(*n);
    }
    let holders = Gauge::<i64>::default();
    holders.set(s.token_holders);
    registry.register(
        "ecomind_token_holders",
        "Accounts with a successful login within the token lifetime (who may hold a valid token)",
        holders,
    );
    register_schema(registry, s);
    register_connections(registry, s);
}

/// The version recorded, this build's head, pending migrations, drift.
fn register_schema(registry: &mut Registry, s: &Sample) {
    let version = gauge_family(
        registry,
        "ecomind_schema_version_info",
        "The migration version the database records (value 1)",
    );
    if let Some((v, rev)) = &s.version {
        version
            .get_or_create(&labels(&[("version", v), ("alembic_revision", rev)]))
            .set(1);
    }
    let known = crate::migrations::known();
    let head = known.last();
    let build = gauge_family(
        registry,
        "ecomind_build_info",
        "This ecomind-admin and the newest migration it ships (value 1)",
    );
    build
        .get_or_create(&labels(&[
            ("tool_version", env!("CARGO_PKG_VERSION")),
            ("head", head.map_or("", |k| k.alembic_revision)),
        ]))
        .set(1);
    for (name, help, v) in [
        (
            "ecomind_migrations_pending",
            "Migrations this build ships that the database has not applied",
            s.pending,
        ),
        (
            "ecomind_schema_drift_findings",
            "verify-schema's findings against the recorded version",
            s.drift,
        ),
    ] {
        let g = Gauge::<i64>::default();
        g.set(v);
        registry.register(name, help, g);
    }
}

/// Connections by user and application, and the server's maximum (PostgreSQL).
fn register_connections(registry: &mut Registry, s: &Sample) {
    if let Some(max) = s.max_connections {
        let conns = gauge_family(
            registry,
            "ecomind_db_connections",
            "Connections to this database by user and application",
        );
        for (u, a, n) in &s.connections {
            conns
                .get_or_create(&labels(&[("user", u), ("application", a)]))
                .set(*n);
        }
        let g = Gauge::<i64>::default();
        g.set(max);
        registry.register(
            "ecomind_db_max_connections",
            "The server's max_connections",
            g,
        );
    }
}

/// One scrape: read and render; a failure is a metric, and its error.
pub async fn scrape(db: &Db, opts: &Options) -> (String, Option<Error>) {
    let started = Instant::now();
    match collect(db, opts).await {
        Ok(s) => match render(Some(&s), started.elapsed()) {
            Ok(text) => (text, None),
            Err(e) => (String::new(), Some(e)),
        },
        Err(e) => (render(None, started.elapsed()).unwrap_or_default(), Some(e)),
    }
}

/// `metrics serve`: answers `GET /metrics` from the database, one scrape at a time on
/// one reused connection (a scrape waits at most `timeout` for the one before it and
/// for its statements: a slow database cannot pile scrapes up). A failed read is a
/// scrape with `ecomind_scrape_success 0`; the connection is made again on the next.
/// Returns when `stop` says so (a signal).
pub async fn serve(
    db: Db,
    listener: tokio::net::TcpListener,
    opts: Options,
    timeout: Duration,
    stop: impl Fn() -> bool,
) -> Result<()> {
    let state = std::sync::Arc::new((tokio::sync::Mutex::new(db), opts, timeout));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if stop() {
                    return Ok(());
                }
                continue;
            }
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors, say: do not spin; the next accept may succeed.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let svc = hyper::service::service_fn(move |req| answer(req, state.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
    }
}

type Body = http_body_util::Full<hyper::body::Bytes>;
type Shared = std::sync::Arc<(tokio::sync::Mutex<Db>, Options, Duration)>;

fn response(status: u16, content_type: &str, body: String) -> hyper::Response<Body> {
    let mut r = hyper::Response::new(Body::new(body.into()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    state: Shared,
) -> std::result::Result<hyper::Response<Body>, std::convert::Infallible> {
    if req.method() != hyper::Method::GET || req.uri().path() != "/metrics" {
        return Ok(response(
            404,
            "text/plain; charset=utf-8",
            "not found: GET /metrics\n".into(),
        ));
    }
    let (db, opts, timeout) = (&state.0, &state.1, state.2);
    let started = Instant::now();
    let Ok(db) = tokio::time::timeout(timeout, db.lock()).await else {
        return Ok(response(
            503,
            "text/plain; charset=utf-8",
            "the scrape before this one is still reading the database\n".into(),
        ));
    };
    let read = tokio::time::timeout(timeout, collect(&db, opts)).await;
    let text = match read {
        Ok(Ok(s)) => render(Some(&s), started.elapsed()),
        _ => render(None, started.elapsed()),
    };
    Ok(match text {
        Ok(text) => response(
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            text,
        ),
        Err(_) => response(
            500,
            "text/plain; charset=utf-8",
            "the metrics could not be encoded\n".into(),
        ),
    })
}
