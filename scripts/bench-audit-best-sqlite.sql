-- The best floor of scripts/bench-audit-sqlite.sh: scripts/bench-audit-best.sql for
-- SQLite, written by hand: every rule SQL can answer, and the unparseable-row count, as
-- ONE read-only statement that reads audit_logs once. __SINCE__ and __FIXED__ are
-- replaced by the script (brute-force: 10 failures within 60 s inside --since;
-- success-after-failures: 5 in the hour before a success inside --since; no --org).
-- Each row: rule, org_id, user_id, email, evidence (all text); `unparseable` carries
-- the count. Comma-joined lists come in SQLite's group order (the script compares them
-- as sets).
--
-- SQLite's AND does not short-circuit: a document is read only inside CASE, after the
-- checks (no \u0000 escape, as on PostgreSQL; valid JSON).
WITH w AS MATERIALIZED (
  SELECT CASE a.action WHEN 'user_registered' THEN 1 WHEN 'role_changed' THEN 2 WHEN 'login_failed' THEN 3
                       WHEN 'login_success' THEN 4 ELSE 5 END AS k,
         a.ts,
         CASE WHEN a.action IN ('user_registered', 'role_changed') THEN a.id END AS id,
         CASE WHEN a.action IN ('user_registered', 'role_changed') THEN a.org_id END AS org_id,
         CASE WHEN a.action IN ('user_registered', 'role_changed') THEN a.user_id END AS user_id,
         CASE WHEN a.action IN ('user_registered', 'role_changed') THEN
           CASE WHEN instr(a.details, '\u0000') = 0 AND json_valid(a.details) THEN json_type(a.details) = 'object' ELSE 0 END END AS obj,
         CASE WHEN a.action IN ('user_registered', 'role_changed') AND instr(a.details, '\u0000') = 0 AND json_valid(a.details)
              THEN CAST(json_extract(a.details, '$.email') AS TEXT) END AS e,
         CASE WHEN a.action = 'login_failed' AND julianday(a.ts) >= julianday('__SINCE__') - 1.0 / 24
                   AND instr(a.details, '\u0000') = 0 AND json_valid(a.details)
              THEN lower(CAST(json_extract(a.details, '$.email') AS TEXT)) END AS el,
         CASE WHEN a.action IN ('login_success', 'logout') AND julianday(a.ts) >= julianday('__SINCE__') - 1.0 / 24
                   AND instr(a.details, '\u0000') = 0 AND json_valid(a.details)
              THEN lower(CAST(json_extract(a.details, '$.email') AS TEXT)) END AS el_other,
         CASE WHEN a.action = 'login_failed' AND julianday(a.ts) >= julianday('__SINCE__') - 1.0 / 24
                   AND instr(a.details, '\u0000') = 0 AND json_valid(a.details)
              THEN CAST(json_extract(a.details, '$.reason') AS TEXT) END AS reason,
         CASE WHEN a.action = 'user_registered' AND instr(a.details, '\u0000') = 0 AND json_valid(a.details)
              THEN CAST(json_extract(a.details, '$.role') AS TEXT) END AS reg_role,
         CASE WHEN a.action = 'user_registered' AND instr(a.details, '\u0000') = 0 AND json_valid(a.details)
              THEN CAST(json_extract(a.details, '$.created_by') AS TEXT) END AS created_by,
         CASE WHEN a.action = 'role_changed' AND instr(a.details, '\u0000') = 0 AND json_valid(a.details)
              THEN a.details END AS d
  FROM audit_logs a
  WHERE a.action IN ('user_registered', 'role_changed', 'login_failed', 'login_success', 'logout')
    AND (a.action IN ('user_registered', 'role_changed')
         OR julianday(a.ts) >= julianday('__SINCE__') - 1.0 / 24
         OR CASE WHEN instr(a.details, '\u0000') = 0 AND json_valid(a.details)
                 THEN json_extract(a.details, '$.email') IS NULL ELSE 1 END)),
reg AS MATERIALIZED (
  SELECT r.id, r.org_id, r.user_id, r.ts, r.e AS email, lower(r.e) AS email_l, r.reg_role, r.created_by,
         c.id AS creator_id, c.org_id AS creator_org, CAST(c.role AS TEXT) AS creator_role,
         coalesce(r.created_by = 'ecomind-admin', 0) AS by_admin,
         coalesce(r.created_by = 'ecomind-admin', 0) OR coalesce(c.org_id = r.org_id AND c.role IN ('owner', 'admin'), 0) AS authorized
  FROM w r LEFT JOIN users c ON c.id = r.created_by WHERE r.k = 1 AND r.obj),
rc AS MATERIALIZED (
  SELECT r.id, r.org_id, r.user_id, r.ts, r.new_role, r.old_role, r.changed_by, r.reason, r.os_user, r.host,
         coalesce(r.changed_by = 'ecomind-admin', 0) OR coalesce(c.org_id = r.org_id AND c.role IN ('owner', 'admin'), 0) AS authorized
  FROM (SELECT id, org_id, user_id, ts,
               CAST(json_extract(d, '$.new_role') AS TEXT) AS new_role, CAST(json_extract(d, '$.old_role') AS TEXT) AS old_role,
               CAST(json_extract(d, '$.changed_by') AS TEXT) AS changed_by, CAST(json_extract(d, '$.reason') AS TEXT) AS reason,
               CAST(json_extract(d, '$.os_user') AS TEXT) AS os_user, CAST(json_extract(d, '$.host') AS TEXT) AS host
        FROM w WHERE k = 2 AND obj) r
  LEFT JOIN users c ON c.id = r.changed_by WHERE r.new_role IS NOT NULL),
ru AS (
  SELECT u.id AS uid, r.* FROM reg r JOIN users u ON u.id = r.user_id
  UNION ALL
  SELECT u.id, r.* FROM reg r JOIN users u ON lower(u.email) = r.email_l WHERE r.user_id IS NOT u.id),
pu AS MATERIALIZED (
  SELECT uid, count(*) AS registrations, max(authorized AND (reg_role = 'viewer' OR by_admin)) AS has_clean,
         group_concat(coalesce(created_by, '<none>'), ',') AS creators
  FROM ru GROUP BY uid),
le AS MATERIALIZED (
  SELECT uid, action, role, by_, ts, authorized FROM (
    SELECT e.*, row_number() OVER (PARTITION BY uid ORDER BY ts DESC, id DESC) AS n FROM (
      SELECT r.uid, r.ts, r.id, 'user_registered' AS action, r.reg_role AS role, r.created_by AS by_, r.authorized
      FROM ru r JOIN users u ON u.id = r.uid WHERE u.role IN ('owner', 'admin')
      UNION ALL
      SELECT u.id, c.ts, c.id, 'role_changed', c.new_role, c.changed_by, c.authorized FROM rc c JOIN users u ON u.id = c.user_id
      WHERE u.role IN ('owner', 'admin')) e)
  WHERE n = 1),
fe AS MATERIALIZED (
  SELECT el AS email_l, count(*) AS n, sum(julianday(ts) >= julianday('__SINCE__')) AS n_since
  FROM w WHERE k = 3 AND el IS NOT NULL GROUP BY el),
bf AS (
  SELECT email_l, max(m) AS m, max(h) AS h, count(*) AS n, min(ts) AS first, max(ts) AS last,
         group_concat(DISTINCT reason) AS reasons
  FROM (SELECT l.el AS email_l, l.ts, l.reason,
               count(*) OVER (PARTITION BY l.el ORDER BY julianday(l.ts) * 86400.0 RANGE BETWEEN CURRENT ROW AND 60 FOLLOWING) AS m,
               count(*) OVER (PARTITION BY l.el ORDER BY julianday(l.ts) * 86400.0 RANGE BETWEEN CURRENT ROW AND 3600 FOLLOWING) AS h
        FROM w l JOIN fe ON fe.email_l = l.el
        WHERE fe.n_since >= 10 AND l.k = 3 AND julianday(l.ts) >= julianday('__SINCE__'))
  GROUP BY email_l HAVING max(m) >= 10),
fh AS (SELECT l.el AS email_l, CAST(strftime('%s', l.ts) AS INTEGER) / 3600 AS h, count(*) AS n
       FROM w l JOIN fe ON fe.email_l = l.el WHERE fe.n >= 5 AND l.k = 3 GROUP BY 1, 2),
sc AS (SELECT DISTINCT a.email_l FROM fh a LEFT JOIN fh b ON b.email_l = a.email_l AND b.h = a.h - 1
       WHERE a.n + coalesce(b.n, 0) >= 5),
sa AS (
  SELECT email_l, min(ts) AS first, max(before) AS n, count(*) AS k FROM (
    SELECT l.email_l, l.ts, l.k,
           sum(l.k = 3) OVER (PARTITION BY l.email_l ORDER BY julianday(l.ts) * 86400.0 RANGE BETWEEN 3600 PRECEDING AND CURRENT ROW) AS before
    FROM (SELECT coalesce(el, el_other) AS email_l, ts, k FROM w WHERE k IN (3, 4)) l JOIN sc ON sc.email_l = l.email_l)
  WHERE k = 4 AND julianday(ts) >= julianday('__SINCE__') AND before >= 5 GROUP BY email_l)
SELECT 'unparseable', '', '', '', CAST(count(*) AS TEXT) FROM w
 WHERE CASE k WHEN 1 THEN e IS NULL OR reg_role IS NULL
              WHEN 2 THEN e IS NULL OR json_extract(d, '$.new_role') IS NULL
              WHEN 3 THEN el IS NULL OR julianday(ts) < julianday('__SINCE__') - 1.0 / 24
              ELSE el_other IS NULL END
UNION ALL
SELECT 'privileged-without-provenance', u.org_id, u.id, u.email,
       json_object('registrations', coalesce(pu.registrations, 0), 'created_by', pu.creators,
                   'recorded_action', le.action, 'recorded_role', le.role, 'recorded_by', le.by_,
                   'recorded_at', strftime('%Y-%m-%dT%H:%M:%f', le.ts) || '000',
                   'recorded_authorized', CASE WHEN le.authorized THEN json('true') WHEN NOT le.authorized THEN json('false') END)
FROM users u LEFT JOIN pu ON pu.uid = u.id LEFT JOIN le ON le.uid = u.id
WHERE u.role IN ('owner', 'admin') AND NOT coalesce(le.authorized AND lower(le.role) = u.role, 0)
UNION ALL
SELECT 'role-changed-recently', c.org_id, coalesce(u.id, c.user_id), u.email,
       json_object('audit_id', c.id, 'changed_at', strftime('%Y-%m-%dT%H:%M:%f', c.ts) || '000',
                   'old_role', c.old_role, 'new_role', c.new_role, 'changed_by', c.changed_by,
                   'os_user', c.os_user, 'host', c.host, 'reason', c.reason)
FROM rc c LEFT JOIN users u ON u.id = c.user_id
WHERE lower(c.new_role) IN ('owner', 'admin') AND julianday(c.ts) >= julianday('__SINCE__')
UNION ALL
SELECT 'registered-before-fix', u.org_id, u.id, u.email,
       json_object('fixed_at', strftime('%Y-%m-%dT%H:%M:%f', '__FIXED__') || '000', 'created_by', pu.creators)
FROM users u LEFT JOIN pu ON pu.uid = u.id
WHERE julianday(u.created_at) < julianday('__FIXED__') AND NOT coalesce(pu.has_clean, 0)
UNION ALL
SELECT 'privileged-created-recently', u.org_id, u.id, u.email, json_object('created_by', pu.creators)
FROM users u LEFT JOIN pu ON pu.uid = u.id
WHERE u.role IN ('owner', 'admin') AND julianday(u.created_at) >= julianday('__SINCE__')
UNION ALL
SELECT 'elevated-role-at-registration', r.org_id, coalesce(u.id, r.user_id), coalesce(u.email, r.email),
       json_object('audit_id', r.id, 'created_by', r.created_by,
                   'registered_at', strftime('%Y-%m-%dT%H:%M:%f', r.ts) || '000', 'registered_role', r.reg_role)
FROM reg r
LEFT JOIN (SELECT lower(email) AS email_l, min(id) AS id FROM users
           WHERE lower(email) IN (SELECT email_l FROM reg WHERE user_id IS NULL) GROUP BY 1) tx
  ON r.user_id IS NULL AND tx.email_l = r.email_l
LEFT JOIN users u ON u.id = coalesce(r.user_id, tx.id)
WHERE r.reg_role <> 'viewer' AND NOT r.by_admin
UNION ALL
SELECT 'registered-by-unauthorized', r.org_id, coalesce(u.id, r.user_id), coalesce(u.email, r.email),
       json_object('audit_id', r.id, 'created_by', r.created_by,
                   'registered_at', strftime('%Y-%m-%dT%H:%M:%f', r.ts) || '000',
                   'creator_org', r.creator_org, 'creator_role', r.creator_role)
FROM reg r
LEFT JOIN (SELECT lower(email) AS email_l, min(id) AS id FROM users
           WHERE lower(email) IN (SELECT email_l FROM reg WHERE user_id IS NULL) GROUP BY 1) tx
  ON r.user_id IS NULL AND tx.email_l = r.email_l
LEFT JOIN users u ON u.id = coalesce(r.user_id, tx.id)
WHERE r.created_by IS NULL OR (NOT r.by_admin AND (r.creator_id IS NULL OR r.creator_org <> r.org_id
                                                   OR r.creator_role NOT IN ('owner', 'admin')))
UNION ALL
SELECT 'brute-force', u.org_id, u.id, coalesce(u.email, b.email_l),
       json_object('max_in_60s', b.m, 'max_in_1h', b.h, 'failures', b.n,
                   'first', strftime('%Y-%m-%dT%H:%M:%f', b.first) || '000',
                   'last', strftime('%Y-%m-%dT%H:%M:%f', b.last) || '000', 'reasons', b.reasons)
FROM bf b LEFT JOIN users u ON lower(u.email) = b.email_l
UNION ALL
SELECT 'success-after-failures', u.org_id, u.id, coalesce(u.email, a.email_l),
       json_object('failures_in_prior_hour', a.n, 'successes_after_failures', a.k,
                   'first_success', strftime('%Y-%m-%dT%H:%M:%f', a.first) || '000')
FROM sa a LEFT JOIN users u ON lower(u.email) = a.email_l
UNION ALL
SELECT 'multiple-owners', org_id, '', '',
       json_object('owners', count(*), 'owner_ids', group_concat(id, ','), 'owner_emails', group_concat(email, ','))
FROM users WHERE role = 'owner' GROUP BY org_id HAVING count(*) > 1
UNION ALL
SELECT 'privileged-without-password', org_id, id, email, json_object('password_hash', NULL)
FROM users WHERE role IN ('owner', 'admin') AND password_hash IS NULL;
