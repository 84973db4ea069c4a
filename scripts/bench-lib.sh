# Shared by the benchmark scripts (sourced, from the repository's root).
#   bench_pg: the release binary ($BIN), the PostgreSQL server of scripts/test.sh
#             ($ADMIN_URL, $base: its URL without the database), psql_admin SQL, and a
#             work directory ($WORK) removed at exit.
#   median N...: the median of the numbers (the mean of the middle two when even).

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

bench_pg() {
    ADMIN_URL="${ECOMIND_TEST_DATABASE_URL:-$(scripts/pg-up.sh)}"
    export PATH="/usr/lib/postgresql/15/bin:$PATH"
    cargo build --release -q
    BIN="${ECOMIND_BENCH_BIN:-$PWD/target/release/ecomind-admin}"
    base="${ADMIN_URL%/*}"
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
    psql_admin() { psql -X -q -tA -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "$1"; }
}

# bench_upgrade_template EVENTS: the database ecomind_bench_upgrade_tpl_EVENTS ($TPL), at
# revision 001 with EVENTS events_enriched rows, 1,000 orgs, 10,000 users and their
# registrations; made once, kept (a marker comment says what it holds).
fill_upgrade_template() { # EVENTS URL
    local EVENTS=$1
    psql -X -q -v ON_ERROR_STOP=1 "$2" >/dev/null <<SQL
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
    psql -X -q "$2" -c "VACUUM ANALYZE" >/dev/null
}

bench_upgrade_template() {
    TPL="ecomind_bench_upgrade_tpl_$1"
    bench_db "$TPL" "ecomind-bench-upgrade events=$1 v1" 001 fill_upgrade_template "$1"
}

# bench_audit_gen1 ROWS ATTACKERS: the audit benchmark's first generator's database
# (ecomind_bench_audit_ROWS_ATTACKERS, $ORGS orgs, $USERS users), made when missing or
# made by another version of the generator; prints its name.
bench_audit_gen1() {
    local db="ecomind_bench_audit_$1_$2"
    bench_db "$db" "ecomind-bench orgs=$ORGS users=$USERS rows=$1 attackers=$2 v3" head \
        psql -X -q -o /dev/null -v orgs="$ORGS" -v users="$USERS" -v rows="$1" -v attackers="$2" \
        -f scripts/bench-audit-data.sql
    echo "$db"
}

# bench_db NAME MARKER VERSION FILL...: the database NAME, made (migrated up to VERSION,
# `head` for all, then `FILL... URL` run) unless its comment already is MARKER (what it
# holds); kept between runs.
bench_db() {
    local db=$1 marker=$2 to=$3
    shift 3
    if [[ $(psql_admin "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$db'") != "$marker" ]]; then
        echo "generating $db ..." >&2
        psql_admin "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
        psql_admin "CREATE DATABASE $db" >/dev/null
        if [[ $to == head ]]; then
            DATABASE_URL="$base/$db" "$BIN" -q migrate up >/dev/null
        else
            DATABASE_URL="$base/$db" "$BIN" -q migrate up --to "$to" >/dev/null
        fi
        "$@" "$base/$db"
        psql_admin "COMMENT ON DATABASE $db IS '$marker'" >/dev/null
    fi
}
