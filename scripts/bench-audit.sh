#!/usr/bin/env bash
# Benchmark: `audit suspicious-accounts` (all 11 rules) on PostgreSQL with 1,000 orgs,
# 100,000 users and 5,000,000 audit_logs rows (scripts/bench-audit-data.sql), against
# psql running the same SQL (from --show-sql) in the same kind of read-only snapshot,
# alternating, RUNS runs each (default 3). Prints the median ratio (goal: at most
# 1.25x), ecomind-admin's peak RSS (goal: at most 64 MiB), and its time at 1M against
# 5M rows (goal: no worse than linear, i.e. at most 5x). Not a test.
#
# Usage: scripts/bench-audit.sh [RUNS]      (ROWS_BIG / ROWS_SMALL override the sizes)
# The generated databases are kept between runs (ecomind_bench_audit_*); drop them by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
ROWS_BIG="${ROWS_BIG:-5000000}"
ROWS_SMALL="${ROWS_SMALL:-1000000}"
ORGS=1000
USERS=100000

ADMIN_URL="${ECOMIND_TEST_DATABASE_URL:-$(scripts/pg-up.sh)}"
export PATH="/usr/lib/postgresql/15/bin:$PATH"
cargo build --release -q
BIN="$PWD/target/release/ecomind-admin"
base="${ADMIN_URL%/*}"
psql_admin() { psql -X -q -tA -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "$1"; }

prepare() { # name rows
    local db=$1 rows=$2
    local marker="ecomind-bench orgs=$ORGS users=$USERS rows=$rows"
    if [[ $(psql_admin "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$db'") == "$marker" ]]; then
        return
    fi
    echo "generating $db ($rows audit rows)..." >&2
    psql_admin "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    psql_admin "CREATE DATABASE $db" >/dev/null
    DATABASE_URL="$base/$db" "$BIN" -q migrate up >/dev/null
    psql -X -q -v orgs=$ORGS -v users=$USERS -v rows="$rows" -f scripts/bench-audit-data.sql "$base/$db" >/dev/null
    psql_admin "COMMENT ON DATABASE $db IS '$marker'" >/dev/null
}
BIG=ecomind_bench_audit_${ROWS_BIG}
SMALL=ecomind_bench_audit_${ROWS_SMALL}
prepare "$BIG" "$ROWS_BIG"
prepare "$SMALL" "$ROWS_SMALL"

ARGS=(audit suspicious-accounts --since 2026-10-25 --fixed-at 2026-06-01 --fail-on never)
SQL=$(mktemp)
trap 'rm -f "$SQL"' EXIT
{
    echo "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
    DATABASE_URL="$base/$BIG" "$BIN" "${ARGS[@]}" --show-sql
    echo "COMMIT;"
} > "$SQL"

now_ns() { date +%s%N; }
ours() { DATABASE_URL="$base/$1" "$BIN" "${ARGS[@]}" --format json >/dev/null 2>&1; }
floor() { psql -X -q -f "$SQL" "$base/$1" >/dev/null; }
t_ours=(); t_floor=(); t_small=()
for i in $(seq 1 "$RUNS"); do
    t0=$(now_ns); ours "$BIG"; t1=$(now_ns); t_ours+=($(( (t1 - t0) / 1000000 )))
    t0=$(now_ns); floor "$BIG"; t1=$(now_ns); t_floor+=($(( (t1 - t0) / 1000000 )))
    t0=$(now_ns); ours "$SMALL"; t1=$(now_ns); t_small+=($(( (t1 - t0) / 1000000 )))
done
rss_kb=$( { DATABASE_URL="$base/$BIG" /usr/bin/time -f '%M' "$BIN" "${ARGS[@]}" --format json >/dev/null; } 2>&1 | tail -1 )
findings=$(DATABASE_URL="$base/$BIG" "$BIN" "${ARGS[@]}" --format json 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin)["summary"]; print(s["critical"], "critical,", s["warning"], "warning,", s["info"], "info")')

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mo=$(median "${t_ours[@]}"); mf=$(median "${t_floor[@]}"); ms=$(median "${t_small[@]}")
echo "data: $ORGS orgs, $USERS users, $ROWS_BIG audit rows (and $ROWS_SMALL); $RUNS runs each, alternating"
echo "findings on the big set:           $findings"
echo "ecomind-admin audit, $ROWS_BIG rows:  median ${mo} ms  (${t_ours[*]})"
echo "psql, same SQL, $ROWS_BIG rows:       median ${mf} ms  (${t_floor[*]})"
echo "ratio (ours / psql):               $(awk -v a="$mo" -v b="$mf" 'BEGIN {printf "%.2f", a/b}')x   (goal: <= 1.25x)"
echo "peak RSS of ecomind-admin:         $(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k/1024}') MiB   (goal: <= 64 MiB)"
echo "ecomind-admin audit, $ROWS_SMALL rows:  median ${ms} ms"
echo "time 5M / 1M:                      $(awk -v a="$mo" -v b="$ms" 'BEGIN {printf "%.2f", a/b}')x for $(awk -v a="$ROWS_BIG" -v b="$ROWS_SMALL" 'BEGIN {printf "%.0f", a/b}')x the rows   (goal: no worse than linear)"
