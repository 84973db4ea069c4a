#!/usr/bin/env bash
# Benchmark: `ecomind-admin migrate up` on an empty PostgreSQL database against its
# floor, `psql -1 -f ecomind-api-schema.sql` on another empty database; alternating,
# RUNS runs each (default 9), median ratio printed. Not a test: machines are noisy,
# so both sides are measured side by side in one run.
#
# Usage: scripts/bench-migrate.sh [RUNS]   (needs a server: it starts one like test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-9}"
if (( RUNS < 5 )); then echo "at least 5 runs" >&2; exit 2; fi

ADMIN_URL="${ECOMIND_TEST_DATABASE_URL:-$(scripts/pg-up.sh)}"
export PATH="/usr/lib/postgresql/15/bin:$PATH"
cargo build --release -q
# ECOMIND_BENCH_BIN: measure another build (the one before a change) with these scripts.
BIN="${ECOMIND_BENCH_BIN:-$PWD/target/release/ecomind-admin}"
SCHEMA="$PWD/tests/fixtures/ecomind-api-schema.sql"

base="${ADMIN_URL%/*}"
db_url() { echo "$base/$1"; }
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "$1" >/dev/null; }

now_ns() { date +%s%N; }
ours=(); floor=()
for i in $(seq 1 "$RUNS"); do
    for side in ours floor; do
        db="ecomind_bench_${side}_$$_$i"
        psql_admin "CREATE DATABASE $db"
        t0=$(now_ns)
        if [[ $side == ours ]]; then
            DATABASE_URL="$(db_url "$db")" "$BIN" -q migrate up >/dev/null
        else
            psql -X -q -1 -v ON_ERROR_STOP=1 -f "$SCHEMA" "$(db_url "$db")" >/dev/null
        fi
        t1=$(now_ns)
        psql_admin "DROP DATABASE $db"
        if [[ $side == ours ]]; then ours+=($(( (t1 - t0) / 1000 ))); else floor+=($(( (t1 - t0) / 1000 ))); fi
    done
done

# Peak RSS of one more run.
rssdb="ecomind_bench_rss_$$"
psql_admin "CREATE DATABASE $rssdb"
rss_kb=$( { DATABASE_URL="$(db_url "$rssdb")" /usr/bin/time -f '%M' "$BIN" -q migrate up >/dev/null; } 2>&1 | tail -1 )
psql_admin "DROP DATABASE $rssdb"

. scripts/bench-lib.sh
m_ours=$(median "${ours[@]}")
m_floor=$(median "${floor[@]}")
ratio=$(awk -v a="$m_ours" -v b="$m_floor" 'BEGIN {printf "%.2f", a/b}')
echo "runs each:                 $RUNS (alternating)"
echo "ecomind-admin migrate up:  median $(awk -v v="$m_ours" 'BEGIN{printf "%.1f", v/1000}') ms  (${ours[*]} us)"
echo "psql -1 -f schema (floor): median $(awk -v v="$m_floor" 'BEGIN{printf "%.1f", v/1000}') ms  (${floor[*]} us)"
echo "ratio (ours / floor):      ${ratio}x   (goal: <= 1.5x)"
echo "peak RSS of migrate up:    $(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k/1024}') MiB"
