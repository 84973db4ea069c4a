-- Data generator for scripts/bench-audit.sh (PostgreSQL, after `migrate up`).
-- psql -v orgs=1000 -v users=100000 -v rows=5000000 -v attackers=0 -f scripts/bench-audit-data.sql
-- Deterministic: the same sizes make the same data (times are relative to
-- 2026-11-01, not to now). Shaped like a year of a real deployment:
--   - users created evenly over the year before 2026-11-01, so some privileged
--     accounts are recent (inside the benchmark's --since 2026-10-25);
--   - one registration row per user (a few planted without, or registered as admin
--     by a viewer);
--   - a month of login traffic (2026-10-02 .. 2026-11-01) with one failure in four,
--     1% logouts;
--   - failed-login bursts: 40 accounts with 12 failures within 30 s, one with 200
--     within 50 s;
--   - role changes: analysts made by set-role, admins promoted by set-role in the
--     last week, and a few admins promoted by hand-written SQL (no row);
--   - `attackers` (default 0) admin accounts created in the last 3 days with no
--     registration row at all: the growth-with-findings benchmark.
\set ON_ERROR_STOP on
\if :{?attackers}
\else
\set attackers 0
\endif
BEGIN;
INSERT INTO orgs (id, name, plan, created_at)
SELECT 'org_' || lpad(to_hex(k), 12, '0'), 'Org ' || k, 'free', TIMESTAMP '2025-11-01'
FROM generate_series(1, :orgs) k;

-- Users 1..orgs are the owners of orgs 1..orgs; every 50th is an admin. User i is
-- created at 2025-11-01 + i/users of a year.
INSERT INTO users (id, org_id, email, name, role, created_at, password_hash)
SELECT 'user_' || lpad(to_hex(i), 12, '0'),
       'org_' || lpad(to_hex(1 + (i - 1) % :orgs), 12, '0'),
       'user' || i || '@bench.example.com',
       'User ' || i,
       (CASE WHEN i <= :orgs THEN 'owner' WHEN i % 50 = 0 THEN 'admin'
             WHEN i % 1000 = 17 OR i % 5000 = 23 THEN 'admin' WHEN i % 100 = 13 THEN 'analyst'
             ELSE 'viewer' END)::role,
       TIMESTAMP '2025-11-01' + make_interval(secs => i::double precision * 31536000 / :users),
       '$2b$04$abcdefghijklmnopqrstuu5lDfq4ZxX0mYf1q5gUo3Wc3pQxRr2K6'
FROM generate_series(1, :users) i;

-- One registration per user: owners and admins by ecomind-admin, viewers by their
-- org's owner. Planted: every 10,000th user has none; every 20,000th + 7 was
-- registered as admin by a viewer.
INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts)
SELECT 'audit_' || lpad(to_hex(i), 16, '0'),
       'org_' || lpad(to_hex(1 + (i - 1) % :orgs), 12, '0'),
       'user_' || lpad(to_hex(i), 12, '0'),
       'user_registered', 'authentication',
       json_build_object(
         'email', 'user' || i || '@bench.example.com',
         'role', CASE WHEN i % 20000 = 7 THEN 'admin' WHEN i <= :orgs THEN 'owner' WHEN i % 50 = 0 THEN 'admin' ELSE 'viewer' END,
         'created_by', CASE WHEN i % 20000 = 7 THEN 'user_' || lpad(to_hex(i + 1), 12, '0')
                            WHEN i <= :orgs OR i % 50 = 0 THEN 'ecomind-admin'
                            ELSE 'user_' || lpad(to_hex(1 + (i - 1) % :orgs), 12, '0') END,
         'success', true,
         'timestamp', to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS.US')),
       t
FROM (SELECT i, TIMESTAMP '2025-11-01' + make_interval(secs => i::double precision * 31536000 / :users) AS t
      FROM generate_series(1, :users) i) r
WHERE i % 10000 <> 0;

-- Role changes by `users set-role`: every 100th user + 13 made analyst a day after
-- its registration; every 1,000th + 17 promoted to admin in the last week (each
-- listed by role-changed-recently, none without provenance). Every 5,000th + 23 is an
-- admin promoted by hand-written SQL: no row (flagged).
INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts)
SELECT 'audit_f' || lpad(to_hex(i), 15, '0'),
       'org_' || lpad(to_hex(1 + (i - 1) % :orgs), 12, '0'),
       'user_' || lpad(to_hex(i), 12, '0'),
       'role_changed', 'users',
       json_build_object('email', 'user' || i || '@bench.example.com', 'old_role', 'viewer',
                         'new_role', CASE WHEN i % 1000 = 17 THEN 'admin' ELSE 'analyst' END,
                         'reason', 'bench ' || i, 'changed_by', 'ecomind-admin', 'os_user', 'ops',
                         'host', 'bastion-1', 'success', true,
                         'timestamp', to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS.US')),
       t
FROM (SELECT i, CASE WHEN i % 1000 = 17 THEN TIMESTAMP '2026-10-25 01:00:00' + make_interval(mins => i / 1000)
                     ELSE TIMESTAMP '2025-11-02' + make_interval(secs => i::double precision * 31536000 / :users) END AS t
      FROM generate_series(:orgs + 1, :users) i) r
WHERE i % 1000 = 17 OR (i % 100 = 13 AND i % 50 <> 0);

-- A month of logins before 2026-11-01: one failure in four, 1% logouts.
INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts)
SELECT 'audit_' || lpad(to_hex(:users + j), 16, '0'),
       'org_' || lpad(to_hex(1 + (u - 1) % :orgs), 12, '0'),
       'user_' || lpad(to_hex(u), 12, '0'),
       a, 'authentication',
       CASE WHEN a = 'login_failed'
            THEN json_build_object('email', 'user' || u || '@bench.example.com', 'reason', 'invalid_password',
                                   'success', false, 'timestamp', to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS.US'))
            ELSE json_build_object('email', 'user' || u || '@bench.example.com', 'success', true,
                                   'timestamp', to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS.US')) END,
       t
FROM (
  SELECT j,
         1 + ((j::bigint * 7919) % :users)::int AS u,
         -- Independent of the user (a Lehmer generator, not j itself): failures spread over every account.
         CASE WHEN j % 100 = 99 THEN 'logout' WHEN (j::bigint * 48271 % 2147483647) % 4 = 0 THEN 'login_failed' ELSE 'login_success' END AS a,
         TIMESTAMP '2026-10-02' + make_interval(secs => (j::bigint * 2592000 / (:rows - :users))::double precision) AS t
  FROM generate_series(1, :rows - :users - 680) j
) e;

-- Bursts: 40 accounts with 12 failures within 30 s (warnings), one with 200 within
-- 50 s (critical), spread over the last week.
INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts)
SELECT 'audit_' || lpad(to_hex(:rows - 680 + n), 16, '0'),
       'org_' || lpad(to_hex(1 + (u - 1) % :orgs), 12, '0'), 'user_' || lpad(to_hex(u), 12, '0'),
       'login_failed', 'authentication',
       json_build_object('email', 'user' || u || '@bench.example.com', 'reason', 'invalid_password', 'success', false),
       t
FROM (
  SELECT row_number() OVER () AS n, u, t FROM (
    SELECT 2000 + b * 37 AS u, TIMESTAMP '2026-10-25 06:00:00' + make_interval(hours => b * 4, secs => k * 2.5) AS t
    FROM generate_series(1, 40) b, generate_series(1, 12) k
    UNION ALL
    SELECT 1001, TIMESTAMP '2026-10-30 12:00:00' + make_interval(secs => k * 0.25)
    FROM generate_series(1, 200) k
  ) x
) y;

-- The growth benchmark: admins created in the last 3 days, with no registration row.
INSERT INTO users (id, org_id, email, name, role, created_at, password_hash)
SELECT 'user_a' || lpad(to_hex(k), 11, '0'),
       'org_' || lpad(to_hex(1 + (k - 1) % :orgs), 12, '0'),
       'intruder' || k || '@bench.example.com',
       'Intruder ' || k, 'admin',
       TIMESTAMP '2026-10-29' + make_interval(secs => k * 60),
       '$2b$04$abcdefghijklmnopqrstuu5lDfq4ZxX0mYf1q5gUo3Wc3pQxRr2K6'
FROM generate_series(1, :attackers) k;
COMMIT;
ANALYZE;
