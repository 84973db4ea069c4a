#!/usr/bin/env bash
# Benchmark: `audit suspicious-accounts` (all 12 rules) on PostgreSQL against a floor
# written by hand, independently of the CLI's SQL (scripts/bench-audit-floor.sql),
# on data shaped like a year of a deployment (scripts/bench-audit-data.sql: 1,000
# orgs, 100,000 users created over the year, a month of login traffic with one
# failure in four, failed-login bursts). Not a test. It prints:
#
#   1. that the floor returns the CLI's findings and evidence (else it stops);
#   2. CLI / floor at 5M audit rows, alternating, RUNS runs each (goal: <= 1.25x);
#   3. the CLI's peak RSS (goal: <= 64 MiB);
#   4. the CLI at 20M rows / at 5M (goal: <= 4.5x, i.e. linear or better);
#   5. growth with findings: the 5M database plus 2,000 recently created admins with
#      no provenance / without them, alternating (goal: <= 1.2x).
#
# Usage: scripts/bench-audit.sh [RUNS]     (default 3; ROWS_BIG / ROWS_HUGE override)
# The generated databases are kept between runs (ecomind_bench_audit_*); drop them by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
ROWS_BIG="${ROWS_BIG:-5000000}"
ROWS_HUGE="${ROWS_HUGE:-20000000}"
ORGS=1000
USERS=100000

ADMIN_URL="${ECOMIND_TEST_DATABASE_URL:-$(scripts/pg-up.sh)}"
export PATH="/usr/lib/postgresql/15/bin:$PATH"
cargo build --release -q
# ECOMIND_BENCH_BIN: measure another build (the one before a change) with these scripts.
BIN="${ECOMIND_BENCH_BIN:-$PWD/target/release/ecomind-admin}"
base="${ADMIN_URL%/*}"
psql_admin() { psql -X -q -tA -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "$1"; }

prepare() { # rows attackers -> prints the database name
    local rows=$1 attackers=$2 db="ecomind_bench_audit_${1}_${2}"
    local marker="ecomind-bench orgs=$ORGS users=$USERS rows=$rows attackers=$attackers v3"
    if [[ $(psql_admin "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$db'") != "$marker" ]]; then
        echo "generating $db ..." >&2
        psql_admin "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
        psql_admin "CREATE DATABASE $db" >/dev/null
        DATABASE_URL="$base/$db" "$BIN" -q migrate up >/dev/null
        psql -X -q -v orgs=$ORGS -v users=$USERS -v rows="$rows" -v attackers="$attackers" \
            -f scripts/bench-audit-data.sql "$base/$db" >/dev/null
        psql_admin "COMMENT ON DATABASE $db IS '$marker'" >/dev/null
    fi
    echo "$db"
}
BIG=$(prepare "$ROWS_BIG" 0)
ATTACKED=$(prepare "$ROWS_BIG" 2000)
HUGE=$(prepare "$ROWS_HUGE" 0)

SINCE=2026-10-25
FIXED=2026-06-01
ARGS=(audit suspicious-accounts --since "$SINCE" --fixed-at "$FIXED" --fail-on never --format json)
ours() { DATABASE_URL="$base/$1" "$BIN" "${ARGS[@]}" 2>/dev/null; }
floor() {
    psql -X -q -tA -F $'\t' -v since="'$SINCE'" -v fixed="'$FIXED'" \
        -f scripts/bench-audit-floor.sql "$base/$1"
}

# 1. The floor answers the same question: the same findings, with the same evidence.
check_same() { # db
    python3 - <(ours "$1") <(floor "$1") "$1" <<'PY'
import json, sys
cli = json.load(open(sys.argv[1]))
def key(rule, org, user, email, ev):
    return (rule, org or "", user or "", email or "", json.dumps(ev, sort_keys=True))
ours = {key(f["rule"], f["org_id"], f["user_id"], f["email"], f["evidence"])
        for f in cli["findings"] if f["rule"] not in ("case-variant-email", "multiple-owners",
                                                       "privileged-without-password", "no-telemetry")}
floor, unparseable = set(), None
for line in open(sys.argv[2]):
    rule, org, user, email, ev = line.rstrip("\n").split("\t")
    if rule == "unparseable":
        unparseable = int(ev)
    elif rule != "no-telemetry":
        floor.add(key(rule, org, user, email, json.loads(ev)))
if ours != floor or unparseable != cli["summary"]["unparseable_rows"]:
    print(f"{sys.argv[3]}: the floor and the CLI disagree", file=sys.stderr)
    for k in sorted(ours - floor)[:5]: print("  only the CLI:  ", k, file=sys.stderr)
    for k in sorted(floor - ours)[:5]: print("  only the floor:", k, file=sys.stderr)
    print(f"  unparseable: CLI {cli['summary']['unparseable_rows']}, floor {unparseable}", file=sys.stderr)
    sys.exit(1)
print(f"{sys.argv[3]}: floor = CLI: {len(ours)} findings with their evidence, {unparseable} unparseable rows")
PY
}
check_same "$BIG"
check_same "$ATTACKED"

now_ns() { date +%s%N; }
ms() { local t0 t1; t0=$(now_ns); "$@" >/dev/null; t1=$(now_ns); echo $(( (t1 - t0) / 1000000 )); }
t_ours=(); t_floor=(); t_att=(); t_base=(); t_huge=()
for _ in $(seq 1 "$RUNS"); do
    t_ours+=("$(ms ours "$BIG")")
    t_floor+=("$(ms floor "$BIG")")
done
for _ in $(seq 1 "$RUNS"); do
    t_att+=("$(ms ours "$ATTACKED")")
    t_base+=("$(ms ours "$BIG")")
done
for _ in $(seq 1 "$RUNS"); do
    t_huge+=("$(ms ours "$HUGE")")
done
RSS_FILE=$(mktemp)
trap 'rm -f "$RSS_FILE"' EXIT
DATABASE_URL="$base/$BIG" /usr/bin/time -o "$RSS_FILE" -f '%M' "$BIN" "${ARGS[@]}" >/dev/null 2>&1
rss_kb=$(tail -1 "$RSS_FILE")
findings=$(ours "$BIG" | python3 -c 'import json,sys; s=json.load(sys.stdin)["summary"]; print(s["critical"], "critical,", s["warning"], "warning,", s["info"], "info")')

. scripts/bench-lib.sh
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
mo=$(median "${t_ours[@]}"); mf=$(median "${t_floor[@]}")
ma=$(median "${t_att[@]}"); mb=$(median "${t_base[@]}"); mh=$(median "${t_huge[@]}")
echo "data: $ORGS orgs, $USERS users, $ROWS_BIG audit rows (and $ROWS_HUGE); $RUNS runs each, alternating"
echo "findings at $ROWS_BIG rows:               $findings"
echo "ecomind-admin audit, $ROWS_BIG rows:      median ${mo} ms  (${t_ours[*]})"
echo "floor (hand-written SQL), $ROWS_BIG rows:  median ${mf} ms  (${t_floor[*]})"
echo "ratio (ours / floor):                   $(ratio "$mo" "$mf")x   (goal: <= 1.25x)"
echo "peak RSS of ecomind-admin:              $(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k/1024}') MiB   (goal: <= 64 MiB)"
echo "ecomind-admin audit, $ROWS_HUGE rows:     median ${mh} ms  (${t_huge[*]})"
echo "time $ROWS_HUGE / $ROWS_BIG rows:            $(ratio "$mh" "$mb")x for $(ratio "$ROWS_HUGE" "$ROWS_BIG")x the rows   (goal: <= 4.5x)"
echo "with 2,000 more admins without provenance: median ${ma} ms against ${mb} ms  (${t_att[*]} / ${t_base[*]})"
echo "growth with findings:                   $(ratio "$ma" "$mb")x   (goal: <= 1.2x)"
