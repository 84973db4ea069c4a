-- The second data generator of scripts/bench-audit.sh (PostgreSQL, after `migrate up`):
-- the same sizes as scripts/bench-audit-data.sql, another shape.
-- psql -v orgs=1000 -v users=100000 -v rows=5000000 -f scripts/bench-audit-data2.sql
-- Deterministic; times relative to 2026-11-01 (the benchmark's --since is 2026-10-25).
--   - several registrations per user: every user registered as a viewer by its org's
--     owner; every 3rd also has an older registration of the same address in another
--     case for an account since deleted (another user_id); every 11th a retried
--     duplicate; a few with no created_by, or as admin by a viewer;
--   - registered as viewers and promoted later: every 40th user to admin by
--     `users set-role` (the last ones inside --since), every 40th + 20 by its org's
--     owner, every 3,000th + 7 by a viewer (unauthorized), every 7,000th + 3 by raw
--     SQL (no row at all);
--   - case-variant emails: every 500th + 250 user is `User<i-1>@Bench.Example.COM`,
--     and one login in 17 is typed in upper case;
--   - a month of logins, one failure in three, with failures for unknown addresses;
--   - failure bursts across the --since boundary: 30 addresses with 6 failures just
--     before it and 6 just after (not brute force inside --since), 20 with 14 after it,
--     and 25 with 6 failures before it and a success just after (success after
--     failures);
--   - 10% malformed `details` among the logins: NULL, an array, a string, an object
--     without email, email null, email a number, email an object, a \u0000 escape.
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO orgs (id, name, plan, created_at)
SELECT 'org_' || lpad(to_hex(k), 12, '0'), 'Org ' || k, 'free', TIMESTAMP '2025-11-01'
FROM generate_series(1, :orgs) k;

CREATE TEMP TABLE g ON COMMIT DROP AS
SELECT i,
       'user_' || lpad(to_hex(i), 12, '0') AS id,
       'org_' || lpad(to_hex(1 + (i - 1) % :orgs), 12, '0') AS org,
       'user_' || lpad(to_hex(1 + (i - 1) % :orgs), 12, '0') AS owner,
       CASE WHEN i % 500 = 250 THEN 'User' || (i - 1) || '@Bench.Example.COM'
            ELSE 'user' || i || '@bench.example.com' END AS email,
       CASE WHEN i <= :orgs THEN 'owner'
            WHEN i % 40 = 0 OR i % 40 = 20 OR i % 3000 = 7 OR i % 7000 = 3 THEN 'admin'
            WHEN i % 100 = 13 THEN 'analyst' ELSE 'viewer' END AS role,
       TIMESTAMP '2025-11-01' + make_interval(secs => i::double precision * 31536000 / :users) AS t
FROM generate_series(1, :users) i;

INSERT INTO users (id, org_id, email, name, role, created_at, password_hash)
SELECT id, org, email, 'User ' || i, role::role, t,
       '$2b$04$abcdefghijklmnopqrstuu5lDfq4ZxX0mYf1q5gUo3Wc3pQxRr2K6'
FROM g;

-- Registrations.
INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts)
SELECT 'audit_r' || lpad(to_hex(i), 15, '0'), org, id, 'user_registered', 'authentication',
       CASE WHEN i % 997 = 5 THEN json_build_object('email', email, 'created_by', owner, 'success', true)
            ELSE json_build_object(
              'email', email,
              'role', CASE WHEN i <= :orgs THEN 'owner' WHEN i % 20000 = 9 THEN 'admin' ELSE 'viewer' END,
              'created_by', CASE WHEN i <= :orgs THEN 'ecomind-admin'
                                 WHEN i % 9000 = 1 THEN NULL
                                 WHEN i % 20000 = 9 THEN 'user_' || lpad(to_hex(i + 1), 12, '0')
                                 ELSE owner END,
              'success', true, 'timestamp', to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS.US')) END,
       t
FROM g;
-- An older registration of the same address, in another case, for a deleted account.
INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts)
SELECT 'audit_o' || lpad(to_hex(i), 15, '0'), org, 'user_d' || lpad(to_hex(i), 11, '0'),
       'user_registered', 'authentication',
       json_build_object('email', upper(email), 'role', 'viewer', 'created_by', owner, 'success', true),
       t - INTERVAL '30 days'
FROM g WHERE i % 3 = 0 AND i > :orgs;
-- A retried duplicate.
INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts)
SELECT 'audit_d' || lpad(to_hex(i), 15, '0'), org, id, 'user_registered', 'authentication',
       json_build_object('email', email, 'role', 'viewer', 'created_by', owner, 'success', true),
       t + INTERVAL '1 second'
FROM g WHERE i % 11 = 0 AND i > :orgs;

-- Promotions: by `users set-role` (ecomind-admin), by the org's owner, by a viewer.
INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts)
SELECT 'audit_p' || lpad(to_hex(i), 15, '0'), org, id, 'role_changed', 'users',
       CASE WHEN i % 4001 = 11 THEN json_build_object('old_role', 'viewer', 'changed_by', 'ecomind-admin')
            ELSE json_build_object('email', email, 'old_role', 'viewer', 'new_role', 'admin',
                         'reason', 'promotion ' || i,
                         'changed_by', CASE WHEN i % 40 = 0 THEN 'ecomind-admin'
                                            WHEN i % 3000 = 7 THEN 'user_' || lpad(to_hex(i + 2), 12, '0')
                                            ELSE owner END,
                         'os_user', CASE WHEN i % 40 = 0 THEN 'ops' END,
                         'host', CASE WHEN i % 40 = 0 THEN 'bastion-2' END,
                         'success', true) END,
       CASE WHEN i % 40 = 0 AND i > :users - 2000 THEN TIMESTAMP '2026-10-26' + make_interval(mins => i % 2000)
            ELSE t + INTERVAL '2 days' END
FROM g WHERE role = 'admin' AND i > :orgs AND i % 7000 <> 3;

-- Bursts across the --since boundary (2026-10-25).
INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts)
SELECT 'audit_b' || lpad(to_hex(n), 15, '0'), 'org_' || lpad(to_hex(1 + (u - 1) % :orgs), 12, '0'),
       'user_' || lpad(to_hex(u), 12, '0'), a, 'authentication',
       CASE WHEN a = 'login_failed'
            THEN json_build_object('email', 'user' || u || '@bench.example.com', 'reason', 'invalid_password', 'success', false)
            ELSE json_build_object('email', 'USER' || u || '@BENCH.EXAMPLE.COM', 'success', true) END,
       t
FROM (SELECT row_number() OVER () AS n, u, a, t FROM (
        SELECT 3001 + b * 101 AS u, 'login_failed' AS a,
               TIMESTAMP '2026-10-24 23:59:30' + make_interval(secs => k * 5 - 30 + b) AS t
        FROM generate_series(1, 30) b, generate_series(1, 12) k
        UNION ALL
        SELECT 9001 + b * 103, 'login_failed', TIMESTAMP '2026-10-27 10:00:00' + make_interval(hours => b * 3, secs => k * 3)
        FROM generate_series(1, 20) b, generate_series(1, 14) k
        UNION ALL
        SELECT 15001 + b * 107, CASE WHEN k = 7 THEN 'login_success' ELSE 'login_failed' END,
               TIMESTAMP '2026-10-24 23:40:00' + make_interval(mins => k * 3, secs => b)
        FROM generate_series(1, 25) b, generate_series(1, 7) k) x) y;

SELECT :rows - count(*) AS logins FROM audit_logs \gset
-- A month of logins before 2026-11-01: one failure in three (one in ten of them for
-- an unknown address), 1% logouts, 10% malformed details.
INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts)
SELECT 'audit_' || lpad(to_hex(j), 16, '0'),
       CASE WHEN ghost THEN 'system' ELSE 'org_' || lpad(to_hex(1 + (u - 1) % :orgs), 12, '0') END,
       CASE WHEN ghost THEN NULL ELSE 'user_' || lpad(to_hex(u), 12, '0') END,
       a, 'authentication',
       CASE WHEN j % 10 = 3 THEN
              CASE (j / 10) % 8
                WHEN 0 THEN NULL
                WHEN 1 THEN '["not", "an", "object"]'::json
                WHEN 2 THEN '"a string"'::json
                WHEN 3 THEN json_build_object('success', false)
                WHEN 4 THEN json_build_object('email', NULL, 'success', false)
                WHEN 5 THEN json_build_object('email', 42, 'success', false)
                WHEN 6 THEN json_build_object('email', json_build_object('nested', e), 'success', false)
                ELSE ('{"email": "' || e || '", "note": "nul \u0000 here", "success": false}')::json END
            WHEN a = 'login_failed'
            THEN json_build_object('email', e, 'reason', CASE WHEN ghost THEN 'user_not_found' ELSE 'invalid_password' END,
                                   'success', false, 'timestamp', to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS.US'))
            ELSE json_build_object('email', e, 'success', true, 'timestamp', to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS.US')) END,
       t
FROM (
  SELECT j, u, a, t, ghost AND a = 'login_failed' AS ghost,
         CASE WHEN ghost AND a = 'login_failed' THEN 'ghost' || (u % 5000) || '@bench.example.com'
              WHEN j % 17 = 0 THEN 'USER' || u || '@BENCH.EXAMPLE.COM'
              ELSE 'user' || u || '@bench.example.com' END AS e
  FROM (
    SELECT j,
           1 + ((j::bigint * 7919) % :users)::int AS u,
           CASE WHEN j % 100 = 99 THEN 'logout'
                WHEN (j::bigint * 48271 % 2147483647) % 3 = 0 THEN 'login_failed' ELSE 'login_success' END AS a,
           (j::bigint * 16807 % 2147483647) % 30 = 0 AS ghost,
           TIMESTAMP '2026-10-02' + make_interval(secs => (j::bigint * 2592000 / :logins)::double precision) AS t
    FROM generate_series(1, :logins) j) s
) e;
COMMIT;
ANALYZE;
