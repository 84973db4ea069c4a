#!/usr/bin/env bash
# Benchmark: verify-schema on a migrated PostgreSQL database (A), and on one that also
# has 2,000 unrelated tables (B), alternating, RUNS runs each (default 9). Prints the
# median time ratio B/A (goal: at most 1.5x), the number of SQL statements each run
# sent (goal: the same), and verify-schema on A against its floor: one psql catalog
# query. Not a test: both sides are measured side by side in one run.
#
# Usage: scripts/bench-verify.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-9}"
if (( RUNS < 5 )); then echo "at least 5 runs" >&2; exit 2; fi
EXTRA_TABLES="${EXTRA_TABLES:-2000}"

ADMIN_URL="${ECOMIND_TEST_DATABASE_URL:-$(scripts/pg-up.sh)}"
export PATH="/usr/lib/postgresql/15/bin:$PATH"
cargo build --release -q
# ECOMIND_BENCH_BIN: measure another build (the one before a change) with these scripts.
BIN="${ECOMIND_BENCH_BIN:-$PWD/target/release/ecomind-admin}"
base="${ADMIN_URL%/*}"
A="ecomind_bench_verify_a_$$"
B="ecomind_bench_verify_b_$$"
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "$1" >/dev/null; }
cleanup() { psql_admin "DROP DATABASE IF EXISTS $A" || true; psql_admin "DROP DATABASE IF EXISTS $B" || true; }
trap cleanup EXIT

for db in "$A" "$B"; do
    psql_admin "CREATE DATABASE $db"
    DATABASE_URL="$base/$db" "$BIN" -q migrate up >/dev/null
done
echo "creating $EXTRA_TABLES unrelated tables in B..." >&2
psql -X -q -v ON_ERROR_STOP=1 "$base/$B" >/dev/null <<SQL
DO \$\$
BEGIN
  FOR i IN 1..$EXTRA_TABLES LOOP
    EXECUTE format('CREATE TABLE other_%s (id bigint PRIMARY KEY, name text NOT NULL, created timestamptz DEFAULT now())', i);
    EXECUTE format('CREATE INDEX other_%s_name ON other_%s (name)', i, i);
  END LOOP;
END
\$\$;
ANALYZE;
SQL

FLOOR_SQL="SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1, a.attnum"

now_ns() { date +%s%N; }
run_verify() { DATABASE_URL="$base/$1" "$BIN" verify-schema --format json >/dev/null 2>&1 || true; }
ta=(); tb=(); tf=()
for i in $(seq 1 "$RUNS"); do
    t0=$(now_ns); run_verify "$A"; t1=$(now_ns); ta+=($(( (t1 - t0) / 1000 )))
    t0=$(now_ns); run_verify "$B"; t1=$(now_ns); tb+=($(( (t1 - t0) / 1000 )))
    t0=$(now_ns); psql -X -q -c "$FLOOR_SQL" "$base/$A" >/dev/null; t1=$(now_ns); tf+=($(( (t1 - t0) / 1000 )))
done

count_statements() {
    DATABASE_URL="$base/$1" "$BIN" -v --color never verify-schema --format json 2>&1 >/dev/null | grep -c 'db.statement' || true
}
rss_kb=$( { DATABASE_URL="$base/$B" /usr/bin/time -f '%M' "$BIN" verify-schema --format json >/dev/null; } 2>&1 | tail -1 )
sa=$(count_statements "$A")
sb=$(count_statements "$B")

. scripts/bench-lib.sh
ms() { awk -v v="$1" 'BEGIN{printf "%.1f", v/1000}'; }
ma=$(median "${ta[@]}"); mb=$(median "${tb[@]}"); mf=$(median "${tf[@]}")
echo "runs each:                           $RUNS (alternating A, B, floor)"
echo "verify-schema, migrated database (A): median $(ms "$ma") ms, $sa SQL statements"
echo "verify-schema, +$EXTRA_TABLES tables (B):    median $(ms "$mb") ms, $sb SQL statements"
echo "ratio B / A:                          $(awk -v a="$mb" -v b="$ma" 'BEGIN {printf "%.2f", a/b}')x   (goal: <= 1.5x; statements equal: $([[ $sa == "$sb" ]] && echo yes || echo NO))"
echo "floor, one psql catalog query on A:   median $(ms "$mf") ms"
echo "ratio A / floor:                      $(awk -v a="$ma" -v b="$mf" 'BEGIN {printf "%.2f", a/b}')x"
echo "peak RSS (B):                         $(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k/1024}') MiB"
