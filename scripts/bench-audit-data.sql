-- Data generator for scripts/bench-audit.sh (PostgreSQL, after `migrate up`).
-- psql -v orgs=1000 -v users=100000 -v rows=5000000 -f scripts/bench-audit-data.sql
-- Deterministic: the same sizes make the same data (times are relative to
-- 2026-11-01, not to now). A few planted suspicious accounts; the rest is clean.
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO orgs (id, name, plan, created_at)
SELECT 'org_' || lpad(to_hex(k), 12, '0'), 'Org ' || k, 'free', TIMESTAMP '2026-01-01'
FROM generate_series(1, :orgs) k;

-- Users 1..orgs are the owners of orgs 1..orgs; every 50th is an admin.
INSERT INTO users (id, org_id, email, name, role, created_at, password_hash)
SELECT 'user_' || lpad(to_hex(i), 12, '0'),
       'org_' || lpad(to_hex(1 + (i - 1) % :orgs), 12, '0'),
       'user' || i || '@bench.example.com',
       'User ' || i,
       (CASE WHEN i <= :orgs THEN 'owner' WHEN i % 50 = 0 THEN 'admin' ELSE 'viewer' END)::role,
       TIMESTAMP '2026-01-01' + make_interval(secs => i * 200),
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
         'timestamp', to_char(TIMESTAMP '2026-01-01' + make_interval(secs => i * 200), 'YYYY-MM-DD"T"HH24:MI:SS.US')),
       TIMESTAMP '2026-01-01' + make_interval(secs => i * 200)
FROM generate_series(1, :users) i
WHERE i % 10000 <> 0;

-- Login events over the 30 days before 2026-11-01: 80% success, 19% failed, 1% logout.
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
         CASE WHEN j % 100 < 80 THEN 'login_success' WHEN j % 100 < 99 THEN 'login_failed' ELSE 'logout' END AS a,
         TIMESTAMP '2026-10-02' + make_interval(secs => (j::bigint * 2592000 / (:rows - :users))::double precision) AS t
  FROM generate_series(1, :rows - :users - 200) j
) e;

-- Planted brute force: 200 failures on one account within 50 seconds.
INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts)
SELECT 'audit_' || lpad(to_hex(:rows - 200 + k), 16, '0'), 'org_' || lpad(to_hex(2), 12, '0'), 'user_' || lpad(to_hex(1001), 12, '0'),
       'login_failed', 'authentication',
       json_build_object('email', 'user1001@bench.example.com', 'reason', 'invalid_password', 'success', false),
       TIMESTAMP '2026-10-30 12:00:00' + make_interval(secs => k * 0.25)
FROM generate_series(1, 200) k;
COMMIT;
ANALYZE;
