#!/usr/bin/env bash
# Benchmark: `audit suspicious-accounts` (all rules) on PostgreSQL and SQLite, against
# floors written by hand, independently of the CLI's SQL. Not a test.
#
# Floors (PostgreSQL):
#   best      scripts/bench-audit-best.sql: every rule SQL can answer and the
#             unparseable count as ONE read-only statement reading audit_logs once,
#             written for speed (session settings only). The CLI is judged against it.
#   everyday  scripts/bench-audit-floor.sql: the way a DBA types it in psql
#             (temporary tables, one query per rule). For reference.
#   limit     scripts/bench-audit-limit.sql: a bare parallel scan that parses each
#             row's details once. No audit can be faster.
# Data: two generators, 1,000 orgs, 100,000 users:
#   gen1      scripts/bench-audit-data.sql (a year of a deployment, one registration
#             per user, a month of logins, failure bursts), 5M and 20M audit rows;
#   gen2      scripts/bench-audit-data2.sql (several registrations per user, promoted
#             later by set-role and raw SQL, bursts across --since, case variants, 10%
#             malformed details), 5M rows.
# It prints:
#   1. that every floor returns the CLI's findings, evidence and unparseable count, on
#      every data set (else it stops);
#   2. per data set, alternating CLI, best, everyday, limit, RUNS runs each: medians
#      and the ratios CLI / best (goal: <= 1.0x), CLI / everyday, CLI / limit;
#   3. the CLI at 20M / 5M rows on gen1 (goal: <= 4.5x);
#   4. growth with findings: gen1 5M plus 2,000 recently created admins with no
#      provenance / without them, alternating (goal: <= 1.2x);
#   5. the CLI's peak RSS (goal: <= 64 MiB);
#   6. SQLite: the same on a 520,000-row file (gen1 at 10,000 users, 100 orgs): the
#      CLI against scripts/bench-audit-best-sqlite.sql run by sqlite3 (goal: <= 1.0x).
#
# Usage: scripts/bench-audit.sh [RUNS]     (default 3; ROWS_BIG / ROWS_HUGE override)
# Generated databases are kept between runs (ecomind_bench_audit*); drop them by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
ROWS_BIG="${ROWS_BIG:-5000000}"
ROWS_HUGE="${ROWS_HUGE:-20000000}"
ORGS=1000
USERS=100000

. scripts/bench-lib.sh
bench_pg
command -v sqlite3 >/dev/null || { echo "bench-audit.sh: sqlite3 is required (apt-get install sqlite3)" >&2; exit 1; }

prepare() { # generator rows attackers -> prints the database name
    local gen=$1 rows=$2 attackers=$3 db
    if [[ $gen == gen1 ]]; then
        bench_audit_gen1 "$rows" "$attackers"
        return
    fi
    db="ecomind_bench_audit2_${rows}"
    bench_db "$db" "ecomind-bench gen2 orgs=$ORGS users=$USERS rows=$rows v1" head \
        psql -X -q -o /dev/null -v orgs="$ORGS" -v users="$USERS" -v rows="$rows" \
        -f scripts/bench-audit-data2.sql
    echo "$db"
}
G1=$(prepare gen1 "$ROWS_BIG" 0)
G1A=$(prepare gen1 "$ROWS_BIG" 2000)
G1H=$(prepare gen1 "$ROWS_HUGE" 0)
G2=$(prepare gen2 "$ROWS_BIG" 0)

SINCE=2026-10-25
FIXED=2026-06-01
ARGS=(audit suspicious-accounts --since "$SINCE" --fixed-at "$FIXED" --fail-on never --format json)
cli() { DATABASE_URL="$1" "$BIN" "${ARGS[@]}" 2>/dev/null; }
sqlfile() { # file url
    psql -X -q -tA -F $'\t' -v since="'$SINCE'" -v fixed="'$FIXED'" -f "$1" "$2"
}
best() { sqlfile scripts/bench-audit-best.sql "$1"; }
everyday() { sqlfile scripts/bench-audit-floor.sql "$1"; }
limit() { psql -X -q -tA -f scripts/bench-audit-limit.sql "$1"; }

# 1. Every floor answers the same question: the same findings, with the same evidence.
same() { python3 scripts/bench-audit-same.py "$@"; }
for db in "$G1" "$G1A" "$G2" "$G1H"; do
    cli "$base/$db" >"$WORK/cli.json"
    best "$base/$db" >"$WORK/best.tsv"
    same "best floor, $db" "$WORK/cli.json" "$WORK/best.tsv"
    if [[ $db != "$G1H" ]]; then
        everyday "$base/$db" >"$WORK/everyday.tsv"
        same "everyday floor, $db" "$WORK/cli.json" "$WORK/everyday.tsv"
    fi
done

now_ns() { date +%s%N; }
ms() { local t0 t1; t0=$(now_ns); "$@" >/dev/null; t1=$(now_ns); echo $(( (t1 - t0) / 1000000 )); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }

# 2. Side by side, alternating, per data set.
declare -A MED
measure() { # label db
    local label=$1 url="$base/$2" c=() b=() e=() l=()
    for _ in $(seq 1 "$RUNS"); do
        c+=("$(ms cli "$url")"); b+=("$(ms best "$url")")
        e+=("$(ms everyday "$url")"); l+=("$(ms limit "$url")")
    done
    local mc mb me ml
    mc=$(median "${c[@]}"); mb=$(median "${b[@]}"); me=$(median "${e[@]}"); ml=$(median "${l[@]}")
    MED[$label]=$mc
    printf '%-10s CLI %6s ms  best %6s ms  everyday %6s ms  limit %6s ms   CLI/best %sx  CLI/everyday %sx  CLI/limit %sx\n' \
        "$label" "$mc" "$mb" "$me" "$ml" "$(ratio "$mc" "$mb")" "$(ratio "$mc" "$me")" "$(ratio "$mc" "$ml")"
    echo "           runs: CLI ${c[*]} / best ${b[*]} / everyday ${e[*]} / limit ${l[*]}"
}
echo "data: $ORGS orgs, $USERS users; --since $SINCE; $RUNS runs each, alternating (CLI, best, everyday, limit)"
findings() { cli "$base/$1" | python3 -c 'import json,sys; s=json.load(sys.stdin)["summary"]; print(s["critical"], "critical,", s["warning"], "warning,", s["info"], "info,", s["unparseable_rows"], "unparseable")'; }
echo "findings: gen1 5M: $(findings "$G1"); gen2 5M: $(findings "$G2")"
measure "gen1 5M" "$G1"
measure "gen2 5M" "$G2"
measure "gen1 20M" "$G1H"
echo "goal: CLI/best <= 1.0x in every row"

# 3. Linear in the table.
echo "CLI 20M / 5M (gen1):      $(ratio "${MED[gen1 20M]}" "${MED[gen1 5M]}")x for $(ratio "$ROWS_HUGE" "$ROWS_BIG")x the rows   (goal: <= 4.5x)"

# 4. Flat in the number of findings.
t_att=(); t_base=()
for _ in $(seq 1 "$RUNS"); do
    t_att+=("$(ms cli "$base/$G1A")"); t_base+=("$(ms cli "$base/$G1")")
done
ma=$(median "${t_att[@]}"); mb=$(median "${t_base[@]}")
echo "with 2,000 more admins without provenance: median ${ma} ms against ${mb} ms  (${t_att[*]} / ${t_base[*]})"
echo "growth with findings:     $(ratio "$ma" "$mb")x   (goal: <= 1.2x)"

# 5. Memory.
DATABASE_URL="$base/$G1H" /usr/bin/time -o "$WORK/rss" -f '%M' "$BIN" "${ARGS[@]}" >/dev/null 2>&1
echo "peak RSS of the CLI, 20M: $(awk -v k="$(tail -1 "$WORK/rss")" 'BEGIN {printf "%.1f", k/1024}') MiB   (goal: <= 64 MiB)"

# 6. SQLite: the 520,000-row file, made from gen1 at a tenth of the users.
scripts/bench-audit-sqlite.sh "$RUNS"
