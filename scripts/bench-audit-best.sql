-- The best floor of scripts/bench-audit.sh: every rule of `audit suspicious-accounts`
-- that SQL can answer, and the unparseable-row count, as ONE read-only statement that
-- reads audit_logs once, written by hand for speed, independently of the CLI's SQL.
-- No temporary table, index or write; session settings only.
--
-- psql -X -q -tA -F $'\t' -v since="'2026-10-25'" -v fixed="'2026-06-01'" -f scripts/bench-audit-best.sql URL
-- (brute-force: 10 failures within 60 s inside --since; success-after-failures: 5 in the
-- hour before a success inside --since; no --org.) Each row: rule, org_id, user_id,
-- email, evidence; `unparseable` carries the count.
--
-- How it is fast:
-- - one parallel scan; each row's `details` is parsed once where one key is enough (the
--   rows older than --since - 1h: is there an email?), twice for a recent failure
--   (email, reason); a document with a \u0000 escape (which no text accessor can
--   read) is unparseable, found by a byte search before any parse;
-- - the scan keeps only what the rules read (registrations and role changes, the
--   recent logins' address and time, the unparseable rows' action), as narrow rows;
-- - the login rules look closer only at addresses with enough failures (hash
--   aggregation, then exact windows for the candidates only); every join is a hash join.
\set ON_ERROR_STOP on
SET jit = off;
SET enable_nestloop = off;
SET parallel_tuple_cost = 0.001;
SET work_mem = '64MB';
SET enable_mergejoin = off;
SET enable_sort = off;
WITH w AS MATERIALIZED (
  SELECT CASE a.action WHEN 'user_registered' THEN 1 WHEN 'role_changed' THEN 2 WHEN 'login_failed' THEN 3
                       WHEN 'login_success' THEN 4 ELSE 5 END AS k,
         a.ts,
         CASE WHEN a.action IN ('user_registered', 'role_changed') THEN a.id END AS id,
         CASE WHEN a.action IN ('user_registered', 'role_changed') THEN a.org_id END AS org_id,
         CASE WHEN a.action IN ('user_registered', 'role_changed') THEN a.user_id END AS user_id,
         CASE WHEN a.action IN ('user_registered', 'role_changed') THEN s.ok AND json_typeof(a.details) = 'object' END AS obj,
         CASE WHEN a.action IN ('user_registered', 'role_changed') AND s.ok THEN a.details->>'email' END AS e,
         CASE WHEN a.action IN ('login_failed', 'login_success', 'logout') AND s.ok AND a.ts >= TIMESTAMP :since - INTERVAL '1 hour'
              THEN lower(a.details->>'email') END COLLATE "C" AS el,
         CASE WHEN a.action = 'login_failed' AND s.ok AND a.ts >= TIMESTAMP :since - INTERVAL '1 hour'
              THEN a.details->>'reason' END AS reason,
         CASE WHEN a.action = 'user_registered' AND s.ok THEN a.details->>'role' END AS reg_role,
         CASE WHEN a.action = 'user_registered' AND s.ok THEN a.details->>'created_by' END AS created_by,
         CASE WHEN a.action = 'role_changed' AND s.ok THEN a.details END AS d
  FROM audit_logs a, LATERAL (SELECT strpos(a.details::text, E'\\u0000') = 0 AS ok) s
  WHERE a.action IN ('user_registered', 'role_changed', 'login_failed', 'login_success', 'logout')
    AND (a.action IN ('user_registered', 'role_changed')
         OR a.ts >= TIMESTAMP :since - INTERVAL '1 hour'
         OR NOT s.ok OR a.details->>'email' IS NULL)),
reg AS MATERIALIZED (
  SELECT r.id, r.org_id, r.user_id, r.ts, r.e AS email, lower(r.e) AS email_l, r.reg_role, r.created_by,
         c.id AS creator_id, c.org_id AS creator_org, c.role::text AS creator_role,
         r.created_by IS NOT DISTINCT FROM 'ecomind-admin' AS by_admin,
         (r.created_by = 'ecomind-admin' OR (c.org_id = r.org_id AND c.role IN ('owner', 'admin'))) IS TRUE AS authorized
  FROM w r LEFT JOIN users c ON c.id = r.created_by WHERE r.k = 1 AND r.obj),
rc AS MATERIALIZED (
  SELECT r.id, r.org_id, r.user_id, r.ts, r.new_role, r.old_role, r.changed_by, r.reason, r.os_user, r.host,
         (r.changed_by = 'ecomind-admin' OR (c.org_id = r.org_id AND c.role IN ('owner', 'admin'))) IS TRUE AS authorized
  FROM (SELECT id, org_id, user_id, ts, d->>'new_role' AS new_role, d->>'old_role' AS old_role,
               d->>'changed_by' AS changed_by, d->>'reason' AS reason, d->>'os_user' AS os_user, d->>'host' AS host
        FROM w WHERE k = 2 AND obj) r
  LEFT JOIN users c ON c.id = r.changed_by WHERE r.new_role IS NOT NULL),
-- The registrations about each user: by user_id, or by its address where the user_id is another's.
ru AS (
  SELECT u.id AS uid, r.* FROM reg r JOIN users u ON u.id = r.user_id
  UNION ALL
  SELECT u.id, r.* FROM reg r JOIN users u ON lower(u.email) = r.email_l WHERE r.user_id IS DISTINCT FROM u.id),
pu AS MATERIALIZED (
  SELECT uid, count(*) AS registrations, bool_or(authorized AND (reg_role = 'viewer' OR by_admin)) AS has_clean,
         string_agg(coalesce(created_by, '<none>'), ',' ORDER BY coalesce(created_by, '<none>')) AS creators
  FROM ru GROUP BY uid),
le AS MATERIALIZED (
  SELECT DISTINCT ON (uid) uid, action, role, by_, ts, authorized FROM (
    SELECT r.uid COLLATE "C" AS uid, r.ts, r.id, 'user_registered' AS action, r.reg_role AS role, r.created_by AS by_, r.authorized
    FROM ru r JOIN users u ON u.id = r.uid WHERE u.role IN ('owner', 'admin')
    UNION ALL
    SELECT u.id, c.ts, c.id, 'role_changed', c.new_role, c.changed_by, c.authorized FROM rc c JOIN users u ON u.id = c.user_id
    WHERE u.role IN ('owner', 'admin')) e
  ORDER BY uid, ts DESC, id DESC),
fe AS MATERIALIZED (
  SELECT el AS email_l, count(*) AS n, count(*) FILTER (WHERE ts >= TIMESTAMP :since) AS n_since
  FROM w WHERE k = 3 AND el IS NOT NULL GROUP BY el),
bf AS (
  SELECT email_l, max(m) AS m, max(h) AS h, count(*) AS n, min(ts) AS first, max(ts) AS last,
         string_agg(DISTINCT reason, ',') AS reasons
  FROM (SELECT l.el AS email_l, l.ts, l.reason,
               count(*) OVER (PARTITION BY l.el ORDER BY l.ts RANGE BETWEEN CURRENT ROW AND INTERVAL '60 seconds' FOLLOWING) AS m,
               count(*) OVER (PARTITION BY l.el ORDER BY l.ts RANGE BETWEEN CURRENT ROW AND INTERVAL '1 hour' FOLLOWING) AS h
        FROM w l JOIN fe ON fe.email_l = l.el
        WHERE fe.n_since >= 10 AND l.k = 3 AND l.ts >= TIMESTAMP :since) x
  GROUP BY email_l HAVING max(m) >= 10),
fh AS (SELECT l.el AS email_l, date_trunc('hour', l.ts) AS h, count(*) AS n FROM w l JOIN fe ON fe.email_l = l.el
       WHERE fe.n >= 5 AND l.k = 3 GROUP BY 1, 2),
sc AS (SELECT DISTINCT a.email_l FROM fh a LEFT JOIN fh b ON b.email_l = a.email_l AND b.h = a.h - INTERVAL '1 hour'
       WHERE a.n + coalesce(b.n, 0) >= 5),
sa AS (
  SELECT email_l, min(ts) AS first, max(before) AS n, count(*) AS k FROM (
    SELECT l.el AS email_l, l.ts, l.k,
           count(*) FILTER (WHERE l.k = 3)
             OVER (PARTITION BY l.el ORDER BY l.ts RANGE BETWEEN INTERVAL '1 hour' PRECEDING AND CURRENT ROW) AS before
    FROM w l JOIN sc ON sc.email_l = l.el WHERE l.k IN (3, 4)) x
  WHERE k = 4 AND ts >= TIMESTAMP :since AND before >= 5 GROUP BY email_l)
SELECT 'unparseable', '', '', '', count(*)::text FROM w
 WHERE CASE k WHEN 1 THEN e IS NULL OR reg_role IS NULL
              WHEN 2 THEN e IS NULL OR d->>'new_role' IS NULL
              ELSE el IS NULL END
UNION ALL
SELECT 'privileged-without-provenance', u.org_id, u.id, u.email,
       json_build_object('registrations', coalesce(pu.registrations, 0), 'created_by', pu.creators,
                         'recorded_action', le.action, 'recorded_role', le.role, 'recorded_by', le.by_,
                         'recorded_at', to_char(le.ts, 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                         'recorded_authorized', le.authorized)::text
FROM users u LEFT JOIN pu ON pu.uid = u.id LEFT JOIN le ON le.uid = u.id
WHERE u.role IN ('owner', 'admin') AND NOT coalesce(le.authorized AND lower(le.role) = u.role::text, false)
UNION ALL
SELECT 'role-changed-recently', c.org_id, coalesce(u.id, c.user_id), u.email,
       json_build_object('audit_id', c.id, 'changed_at', to_char(c.ts, 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                         'old_role', c.old_role, 'new_role', c.new_role, 'changed_by', c.changed_by,
                         'os_user', c.os_user, 'host', c.host, 'reason', c.reason)::text
FROM rc c LEFT JOIN users u ON u.id = c.user_id
WHERE lower(c.new_role) IN ('owner', 'admin') AND c.ts >= TIMESTAMP :since
UNION ALL
SELECT 'registered-before-fix', u.org_id, u.id, u.email,
       json_build_object('fixed_at', to_char(TIMESTAMP :fixed, 'YYYY-MM-DD"T"HH24:MI:SS.US'), 'created_by', pu.creators)::text
FROM users u LEFT JOIN pu ON pu.uid = u.id
WHERE u.created_at < TIMESTAMP :fixed AND NOT coalesce(pu.has_clean, false)
UNION ALL
SELECT 'privileged-created-recently', u.org_id, u.id, u.email, json_build_object('created_by', pu.creators)::text
FROM users u LEFT JOIN pu ON pu.uid = u.id
WHERE u.role IN ('owner', 'admin') AND u.created_at >= TIMESTAMP :since
UNION ALL
SELECT CASE WHEN k THEN 'elevated-role-at-registration' ELSE 'registered-by-unauthorized' END,
       r.org_id, coalesce(u.id, r.user_id), coalesce(u.email, r.email),
       CASE WHEN k THEN json_build_object('audit_id', r.id, 'created_by', r.created_by,
                                          'registered_at', to_char(r.ts, 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                                          'registered_role', r.reg_role)
            ELSE json_build_object('audit_id', r.id, 'created_by', r.created_by,
                                   'registered_at', to_char(r.ts, 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                                   'creator_org', r.creator_org, 'creator_role', r.creator_role) END::text
FROM reg r
CROSS JOIN LATERAL (VALUES
  (true, r.reg_role <> 'viewer' AND NOT r.by_admin),
  (false, r.created_by IS NULL OR (NOT r.by_admin AND (r.creator_id IS NULL OR r.creator_org <> r.org_id
                                                      OR r.creator_role NOT IN ('owner', 'admin'))))) f(k, hit)
LEFT JOIN (SELECT lower(email) AS email_l, min(id) AS id FROM users
           WHERE lower(email) IN (SELECT email_l FROM reg WHERE user_id IS NULL) GROUP BY 1) tx
  ON r.user_id IS NULL AND tx.email_l = r.email_l
LEFT JOIN users u ON u.id = coalesce(r.user_id, tx.id)
WHERE f.hit
UNION ALL
SELECT 'brute-force', u.org_id, u.id, coalesce(u.email, b.email_l),
       json_build_object('max_in_60s', b.m, 'max_in_1h', b.h, 'failures', b.n,
                         'first', to_char(b.first, 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                         'last', to_char(b.last, 'YYYY-MM-DD"T"HH24:MI:SS.US'), 'reasons', b.reasons)::text
FROM bf b LEFT JOIN users u ON lower(u.email) = b.email_l
UNION ALL
SELECT 'success-after-failures', u.org_id, u.id, coalesce(u.email, a.email_l),
       json_build_object('failures_in_prior_hour', a.n, 'successes_after_failures', a.k,
                         'first_success', to_char(a.first, 'YYYY-MM-DD"T"HH24:MI:SS.US'))::text
FROM sa a LEFT JOIN users u ON lower(u.email) = a.email_l
UNION ALL
SELECT 'multiple-owners', org_id, '', '',
       json_build_object('owners', count(*), 'owner_ids', string_agg(id, ',' ORDER BY id),
                         'owner_emails', string_agg(email, ',' ORDER BY email))::text
FROM users WHERE role = 'owner' GROUP BY org_id HAVING count(*) > 1
UNION ALL
SELECT 'privileged-without-password', org_id, id, email, json_build_object('password_hash', NULL)::text
FROM users WHERE role IN ('owner', 'admin') AND password_hash IS NULL
UNION ALL
SELECT 'no-telemetry', '', '', '', json_build_object('login_events_since', n)::text
FROM (SELECT (SELECT count(*) FROM (SELECT 1 FROM w WHERE k >= 3 AND ts >= TIMESTAMP :since LIMIT 1) x) AS n,
             (SELECT min(ts) FROM audit_logs) AS oldest,
             (SELECT max(created_at) FROM users WHERE role IN ('owner', 'admin')) AS newest) s
WHERE n = 0 OR (oldest IS NULL AND newest IS NOT NULL) OR oldest > newest;
