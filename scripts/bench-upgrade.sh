#!/usr/bin/env bash
# Benchmark: `ecomind-admin upgrade --yes` against the same steps run as separate
# commands in one shell script (the way a pipeline glues them with &&):
#
#   pg_dump -Fc -f FILE; pg_restore --list FILE; ecomind-admin migrate up;
#   ecomind-admin verify-schema; ecomind-admin audit suspicious-accounts
#
# on a PostgreSQL database at revision 001 with 1,000,000 events_enriched rows (and
# 1,000 orgs, 10,000 users, their registrations). Each run starts from a fresh copy of
# one template database (CREATE DATABASE ... TEMPLATE, not timed); the two ways
# alternate, RUNS times each. Goal: upgrade / script <= 1.1x. Not a test.
#
# Usage: scripts/bench-upgrade.sh [RUNS]     (default 5; EVENTS overrides the row count)
# The template (ecomind_bench_upgrade_tpl_*) is kept between runs; drop it by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
EVENTS="${EVENTS:-1000000}"

. scripts/bench-lib.sh
bench_pg

TPL="ecomind_bench_upgrade_tpl_${EVENTS}"
marker="ecomind-bench-upgrade events=$EVENTS v1"
if [[ $(psql_admin "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$TPL'") != "$marker" ]]; then
    echo "generating $TPL ..." >&2
    psql_admin "DROP DATABASE IF EXISTS $TPL WITH (FORCE)" >/dev/null
    psql_admin "CREATE DATABASE $TPL" >/dev/null
    DATABASE_URL="$base/$TPL" "$BIN" -q migrate up --to 001 >/dev/null
    psql -X -q -v ON_ERROR_STOP=1 "$base/$TPL" >/dev/null <<SQL
INSERT INTO orgs (id, name, plan, created_at)
SELECT 'org_' || lpad(to_hex(k), 12, '0'), 'Org ' || k, 'free', TIMESTAMP '2026-01-01'
FROM generate_series(1, 1000) k;
INSERT INTO users (id, org_id, email, name, role, created_at)
SELECT 'user_' || lpad(to_hex(i), 12, '0'), 'org_' || lpad(to_hex(1 + (i - 1) % 1000), 12, '0'),
       'user' || i || '@bench.example.com', 'User ' || i,
       (CASE WHEN i <= 1000 THEN 'owner' ELSE 'viewer' END)::role, TIMESTAMP '2026-01-01'
FROM generate_series(1, 10000) i;
INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts)
SELECT 'audit_' || lpad(to_hex(i), 16, '0'), 'org_' || lpad(to_hex(1 + (i - 1) % 1000), 12, '0'),
       'user_' || lpad(to_hex(i), 12, '0'), 'user_registered', 'authentication',
       json_build_object('email', 'user' || i || '@bench.example.com',
                         'role', CASE WHEN i <= 1000 THEN 'owner' ELSE 'viewer' END,
                         'created_by', CASE WHEN i <= 1000 THEN 'ecomind-admin'
                                            ELSE 'user_' || lpad(to_hex(1 + (i - 1) % 1000), 12, '0') END),
       TIMESTAMP '2026-01-01'
FROM generate_series(1, 10000) i;
INSERT INTO events_enriched (id, org_id, user_id, provider, model, tokens_in, tokens_out, node_type,
                             region, kwh, water_l, co2_kg, ts, source, metadata, created_at)
SELECT 'evt_' || lpad(to_hex(e), 16, '0'), 'org_' || lpad(to_hex(1 + (e - 1) % 1000), 12, '0'),
       'user_' || lpad(to_hex(1 + (e - 1) % 10000), 12, '0'),
       (ARRAY['openai', 'anthropic', 'google'])[1 + e % 3], 'model-' || (e % 7), 100 + e % 900, 50 + e % 400,
       'gpu', 'eu-west-1', (e % 1000) / 1e6, (e % 1000) / 1e4, (e % 1000) / 1e5,
       TIMESTAMP '2026-06-01' + make_interval(secs => e * 10), 'api', '{"k": 1}', TIMESTAMP '2026-06-01'
FROM generate_series(1, $EVENTS) e;
SQL
    psql -X -q "$base/$TPL" -c "VACUUM ANALYZE" >/dev/null
    psql_admin "COMMENT ON DATABASE $TPL IS '$marker'" >/dev/null
fi

fresh() { # name
    psql_admin "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
    psql_admin "CREATE DATABASE $1 TEMPLATE $TPL" >/dev/null
}

ours() { # db
    DATABASE_URL="$base/$1" "$BIN" -q upgrade --yes --backup-dir "$WORK/ours" --fail-on never >/dev/null
}

script() { # db: the same steps as separate commands
    local url="$base/$1" file="$WORK/script/$1.dump"
    mkdir -p "$WORK/script"
    pg_dump -Fc -f "$file" "$url"
    pg_restore --list "$file" >/dev/null
    DATABASE_URL="$url" "$BIN" -q migrate up >/dev/null
    DATABASE_URL="$url" "$BIN" -q verify-schema >/dev/null
    DATABASE_URL="$url" "$BIN" -q audit suspicious-accounts --fail-on never >/dev/null
}

now_ns() { date +%s%N; }
t_ours=(); t_script=()
for i in $(seq 1 "$RUNS"); do
    fresh ecomind_bench_upgrade_a
    t0=$(now_ns); ours ecomind_bench_upgrade_a; t1=$(now_ns)
    t_ours+=($(( (t1 - t0) / 1000000 )))
    fresh ecomind_bench_upgrade_b
    t0=$(now_ns); script ecomind_bench_upgrade_b; t1=$(now_ns)
    t_script+=($(( (t1 - t0) / 1000000 )))
    rm -rf "$WORK/ours" "$WORK/script"
done
# Both end at the same place.
for d in ecomind_bench_upgrade_a ecomind_bench_upgrade_b; do
    DATABASE_URL="$base/$d" "$BIN" -q migrate current --check >/dev/null
done
psql_admin "DROP DATABASE ecomind_bench_upgrade_a WITH (FORCE)" >/dev/null
psql_admin "DROP DATABASE ecomind_bench_upgrade_b WITH (FORCE)" >/dev/null

mo=$(median "${t_ours[@]}"); ms=$(median "${t_script[@]}")
echo "data: 1000 orgs, 10000 users, $EVENTS events_enriched rows, at 001; $RUNS runs each, alternating"
echo "ecomind-admin upgrade --yes:            median ${mo} ms  (${t_ours[*]})"
echo "separate commands (pg_dump ... audit):  median ${ms} ms  (${t_script[*]})"
echo "ratio (upgrade / separate commands):    $(awk -v a="$mo" -v b="$ms" 'BEGIN {printf "%.2f", a/b}')x   (goal: <= 1.1x)"
