-- The floor of scripts/bench-audit.sh: every rule of `audit suspicious-accounts` that
-- reads audit_logs, plus the unparseable-row count, written by hand the way a DBA
-- would in psql, independently of the CLI's SQL: one parallel count of the rows no
-- rule can read; the registrations and role changes (one scan), and the logins of the
-- last week (read through the index on ts), into small temporary tables; one plain
-- query per rule. Each query prints `rule <TAB> org_id <TAB> user_id <TAB> email <TAB>
-- evidence`; the benchmark checks that these are the CLI's findings and evidence.
--
-- psql -X -q -tA -F $'\t' -v since="'2026-10-25'" -v fixed="'2026-06-01'" -f scripts/bench-audit-floor.sql URL
-- (brute-force threshold 10 failures within 60 s, success-after-failures 5 within the
-- hour before; no --org.) It writes only temporary tables, dropped at COMMIT.
\set ON_ERROR_STOP on
BEGIN ISOLATION LEVEL REPEATABLE READ;
SET LOCAL jit = off;

-- unparseable rows: one parallel pass over the table, parsing each document's email
-- (a document with a \u0000 escape cannot be read by ->> at all: unparseable).
SELECT 'unparseable', '', '', '', count(*) FROM audit_logs
WHERE action IN ('user_registered', 'role_changed', 'login_failed', 'login_success', 'logout')
  AND CASE WHEN strpos(details::text, E'\\u0000') > 0 THEN true
           ELSE details->>'email' IS NULL OR (action = 'user_registered' AND details->>'role' IS NULL)
                OR (action = 'role_changed' AND details->>'new_role' IS NULL) END;

-- The account events (registrations and role changes, objects only) in one scan that
-- parses only their documents.
CREATE TEMP TABLE acct ON COMMIT DROP AS
SELECT id, org_id, user_id, ts, action, details FROM audit_logs
WHERE action IN ('user_registered', 'role_changed') AND json_typeof(details) = 'object'
  AND strpos(details::text, E'\\u0000') = 0;

-- Registrations, each with whether its creator could make it.
CREATE TEMP TABLE regs ON COMMIT DROP AS
SELECT e.id, e.org_id, e.user_id, e.ts, e.email, lower(e.email) AS email_l, e.reg_role, e.created_by,
       c.id AS creator_id, c.org_id AS creator_org, c.role::text AS creator_role,
       (e.created_by = 'ecomind-admin'
        OR (c.org_id = e.org_id AND c.role IN ('owner', 'admin'))) IS TRUE AS authorized
FROM (SELECT id, org_id, user_id, ts, details->>'email' AS email, details->>'role' AS reg_role,
             details->>'created_by' AS created_by
      FROM acct WHERE action = 'user_registered') e
LEFT JOIN users c ON c.id = e.created_by;
CREATE INDEX ON regs (user_id);
CREATE INDEX ON regs (email_l);
ANALYZE regs;

-- Which registrations are about which user: its user_id, or its email (any case).
CREATE TEMP TABLE about ON COMMIT DROP AS
SELECT u.id AS uid, r.* FROM users u JOIN regs r ON r.user_id = u.id
UNION
SELECT u.id, r.* FROM users u JOIN regs r ON r.email_l = lower(u.email);
CREATE INDEX ON about (uid);
ANALYZE about;

-- Role changes (`users set-role` writes them), each with whether its author could
-- make it.
CREATE TEMP TABLE changes ON COMMIT DROP AS
SELECT e.*, (e.changed_by = 'ecomind-admin'
             OR (c.org_id = e.org_id AND c.role IN ('owner', 'admin'))) IS TRUE AS authorized
FROM (SELECT id, org_id, user_id, ts, details->>'new_role' AS new_role, details->>'old_role' AS old_role,
             details->>'changed_by' AS changed_by, details->>'reason' AS reason,
             details->>'os_user' AS os_user, details->>'host' AS host
      FROM acct WHERE action = 'role_changed' AND details->>'new_role' IS NOT NULL) e
LEFT JOIN users c ON c.id = e.changed_by;
CREATE INDEX ON changes (user_id);
ANALYZE changes;

-- privileged-without-provenance: the latest recorded event that set the user's role
-- (a registration about it, or a role change) must exist, be authorized, and give
-- the role it has now.
SELECT 'privileged-without-provenance', u.org_id, u.id, u.email,
       json_build_object('registrations', (SELECT count(*) FROM about a WHERE a.uid = u.id),
                         'created_by', (SELECT string_agg(coalesce(a.created_by, '<none>'), ',' ORDER BY coalesce(a.created_by, '<none>'))
                                        FROM about a WHERE a.uid = u.id),
                         'recorded_action', l.action, 'recorded_role', l.role, 'recorded_by', l.by_,
                         'recorded_at', to_char(l.ts, 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                         'recorded_authorized', l.authorized)
FROM users u
LEFT JOIN LATERAL (
  SELECT * FROM (SELECT 'user_registered' AS action, a.reg_role AS role, a.created_by AS by_, a.ts, a.id, a.authorized
                 FROM about a WHERE a.uid = u.id
                 UNION ALL
                 SELECT 'role_changed', c.new_role, c.changed_by, c.ts, c.id, c.authorized
                 FROM changes c WHERE c.user_id = u.id) ev
  ORDER BY ts DESC, id DESC LIMIT 1) l ON true
WHERE u.role IN ('owner', 'admin')
  AND NOT coalesce(l.authorized AND lower(l.role) = u.role::text, false);

-- role-changed-recently: every change to owner or admin inside --since.
SELECT 'role-changed-recently', c.org_id, coalesce(u.id, c.user_id), u.email,
       json_build_object('audit_id', c.id, 'changed_at', to_char(c.ts, 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                         'old_role', c.old_role, 'new_role', c.new_role, 'changed_by', c.changed_by,
                         'os_user', c.os_user, 'host', c.host, 'reason', c.reason)
FROM changes c LEFT JOIN users u ON u.id = c.user_id
WHERE lower(c.new_role) IN ('owner', 'admin') AND c.ts >= TIMESTAMP :since;

-- registered-before-fix
SELECT 'registered-before-fix', u.org_id, u.id, u.email,
       json_build_object('fixed_at', to_char(TIMESTAMP :fixed, 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                         'created_by', (SELECT string_agg(coalesce(a.created_by, '<none>'), ',' ORDER BY coalesce(a.created_by, '<none>'))
                                        FROM about a WHERE a.uid = u.id))
FROM users u
WHERE u.created_at < TIMESTAMP :fixed
  AND NOT EXISTS (SELECT 1 FROM about a WHERE a.uid = u.id AND a.authorized
                  AND (a.reg_role = 'viewer' OR a.created_by = 'ecomind-admin'));

-- privileged-created-recently
SELECT 'privileged-created-recently', u.org_id, u.id, u.email,
       json_build_object('created_by', (SELECT string_agg(coalesce(a.created_by, '<none>'), ',' ORDER BY coalesce(a.created_by, '<none>'))
                                        FROM about a WHERE a.uid = u.id))
FROM users u
WHERE u.role IN ('owner', 'admin') AND u.created_at >= TIMESTAMP :since;

-- The user a registration row names: its user_id, else the first user with its email.
CREATE TEMP TABLE reg_user ON COMMIT DROP AS
SELECT r.id AS reg_id,
       CASE WHEN r.user_id IS NOT NULL THEN (SELECT u.id FROM users u WHERE u.id = r.user_id)
            ELSE (SELECT min(u.id) FROM users u WHERE lower(u.email) = r.email_l) END AS uid
FROM regs r
WHERE (r.reg_role <> 'viewer' AND coalesce(r.created_by, '') <> 'ecomind-admin')
   OR r.created_by IS NULL
   OR (r.created_by <> 'ecomind-admin' AND (r.creator_id IS NULL OR r.creator_org <> r.org_id
                                            OR r.creator_role NOT IN ('owner', 'admin')));

-- elevated-role-at-registration
SELECT 'elevated-role-at-registration', r.org_id, coalesce(u.id, r.user_id), coalesce(u.email, r.email),
       json_build_object('audit_id', r.id, 'created_by', r.created_by,
                         'registered_at', to_char(r.ts, 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                         'registered_role', r.reg_role)
FROM regs r JOIN reg_user x ON x.reg_id = r.id LEFT JOIN users u ON u.id = x.uid
WHERE r.reg_role <> 'viewer' AND coalesce(r.created_by, '') <> 'ecomind-admin';

-- registered-by-unauthorized
SELECT 'registered-by-unauthorized', r.org_id, coalesce(u.id, r.user_id), coalesce(u.email, r.email),
       json_build_object('audit_id', r.id, 'created_by', r.created_by,
                         'registered_at', to_char(r.ts, 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                         'creator_org', r.creator_org, 'creator_role', r.creator_role)
FROM regs r JOIN reg_user x ON x.reg_id = r.id LEFT JOIN users u ON u.id = x.uid
WHERE r.created_by IS NULL
   OR (r.created_by <> 'ecomind-admin' AND (r.creator_id IS NULL OR r.creator_org <> r.org_id
                                            OR r.creator_role NOT IN ('owner', 'admin')));

-- The login rules: the last week's logins (and the hour before), read once through the
-- index on ts into a small indexed temporary table.
CREATE TEMP TABLE logins ON COMMIT DROP AS
SELECT lower(details->>'email') AS email_l, ts, action, details->>'reason' AS reason FROM audit_logs
WHERE action IN ('login_failed', 'login_success') AND ts >= TIMESTAMP :since - INTERVAL '1 hour'
  AND CASE WHEN strpos(details::text, E'\\u0000') = 0 THEN details->>'email' IS NOT NULL END;
ANALYZE logins;

-- brute-force: among the emails with 10 failures, those with 10 within 60 s (the 9th
-- next failure within 60 s), then their exact windows.
WITH f AS (SELECT email_l, ts, reason FROM logins WHERE action = 'login_failed' AND ts >= TIMESTAMP :since),
many AS (SELECT email_l FROM f GROUP BY email_l HAVING count(*) >= 10),
hot AS (SELECT DISTINCT email_l FROM (
          SELECT email_l, ts, lead(ts, 9) OVER (PARTITION BY email_l ORDER BY ts) AS ts9
          FROM f JOIN many USING (email_l)) s
        WHERE ts9 <= ts + INTERVAL '60 seconds'),
win AS (SELECT f.email_l, f.ts, f.reason,
               count(*) OVER (PARTITION BY f.email_l ORDER BY f.ts RANGE BETWEEN CURRENT ROW AND INTERVAL '60 seconds' FOLLOWING) AS m,
               count(*) OVER (PARTITION BY f.email_l ORDER BY f.ts RANGE BETWEEN CURRENT ROW AND INTERVAL '1 hour' FOLLOWING) AS h
        FROM f JOIN hot USING (email_l)),
agg AS (SELECT email_l, max(m) AS m, max(h) AS h, count(*) AS n, min(ts) AS first, max(ts) AS last,
               string_agg(DISTINCT reason, ',') AS reasons
        FROM win GROUP BY email_l)
SELECT 'brute-force', u.org_id, u.id, coalesce(u.email, a.email_l),
       json_build_object('max_in_60s', a.m, 'max_in_1h', a.h, 'failures', a.n,
                         'first', to_char(a.first, 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                         'last', to_char(a.last, 'YYYY-MM-DD"T"HH24:MI:SS.US'), 'reasons', a.reasons)
FROM agg a LEFT JOIN users u ON lower(u.email) = a.email_l;

-- success-after-failures: a success with 5 failures of the same email in the hour
-- before it (inclusive), inside --since.
WITH many AS (SELECT email_l FROM logins WHERE action = 'login_failed' GROUP BY email_l HAVING count(*) >= 5),
hot AS (SELECT DISTINCT email_l FROM (
          SELECT email_l, ts, lag(ts, 4) OVER (PARTITION BY email_l ORDER BY ts) AS ts4
          FROM logins JOIN many USING (email_l) WHERE action = 'login_failed') s
        WHERE ts4 >= ts - INTERVAL '1 hour'),
win AS (SELECT l.email_l, l.ts, l.action,
               count(*) FILTER (WHERE l.action = 'login_failed')
                 OVER (PARTITION BY l.email_l ORDER BY l.ts RANGE BETWEEN INTERVAL '1 hour' PRECEDING AND CURRENT ROW) AS before
        FROM logins l JOIN hot USING (email_l)),
agg AS (SELECT email_l, min(ts) AS first, max(before) AS n, count(*) AS k FROM win
        WHERE action = 'login_success' AND ts >= TIMESTAMP :since AND before >= 5 GROUP BY email_l)
SELECT 'success-after-failures', u.org_id, u.id, coalesce(u.email, a.email_l),
       json_build_object('failures_in_prior_hour', a.n, 'successes_after_failures', a.k,
                         'first_success', to_char(a.first, 'YYYY-MM-DD"T"HH24:MI:SS.US'))
FROM agg a LEFT JOIN users u ON lower(u.email) = a.email_l;

-- no-telemetry: only when the audit is inconclusive (n: whether any login exists).
SELECT 'no-telemetry', '', '', '', json_build_object('login_events_since', n)
FROM (SELECT (SELECT count(*) FROM (SELECT 1 FROM audit_logs WHERE action IN ('login_success', 'login_failed', 'logout')
                                      AND ts >= TIMESTAMP :since LIMIT 1) x) AS n,
             (SELECT min(ts) FROM audit_logs) AS oldest,
             (SELECT max(created_at) FROM users WHERE role IN ('owner', 'admin')) AS newest) s
WHERE n = 0 OR (oldest IS NULL AND newest IS NOT NULL) OR oldest > newest;
COMMIT;
