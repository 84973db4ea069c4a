-- The floor of scripts/bench-metrics.sh: the numbers `ecomind-admin metrics` reads,
-- by one hand-written statement (what a sql_exporter config would run).
WITH events AS (
    SELECT action, CASE WHEN action = 'login_failed' THEN details->>'reason' END AS reason,
           count(*) FILTER (WHERE ts >= (now() AT TIME ZONE 'utc') - interval '1 minute') AS m1,
           count(*) AS m5
    FROM audit_logs
    WHERE ts >= (now() AT TIME ZONE 'utc') - interval '5 minutes'
      AND action IN ('login_success', 'login_failed', 'logout', 'user_registered')
    GROUP BY 1, 2
),
roles AS (SELECT role::text AS role, count(*) AS n FROM users GROUP BY 1),
holders AS (
    SELECT count(DISTINCT COALESCE(user_id, details->>'email')) AS n FROM audit_logs
    WHERE action = 'login_success' AND ts >= (now() AT TIME ZONE 'utc') - interval '60 minutes'
),
conns AS (
    SELECT usename::text AS u, application_name AS a, count(*) AS n
    FROM pg_stat_activity WHERE datname = current_database() GROUP BY 1, 2
)
SELECT 'event', action, reason, m1, m5 FROM events
UNION ALL SELECT 'role', role, NULL, n, NULL FROM roles
UNION ALL SELECT 'holders', NULL, NULL, n, NULL FROM holders
UNION ALL SELECT 'conn', u, a, n, NULL FROM conns
UNION ALL SELECT 'max', NULL, NULL, current_setting('max_connections')::bigint, NULL
UNION ALL SELECT 'version', version, NULL, NULL, NULL FROM (SELECT max(version) AS version FROM seaql_migrations) v;
