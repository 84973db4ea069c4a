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
# The backup's proof by a restore (issue 29) is not in that script: it is measured
# here with --no-verify-backup (VERIFY=1 keeps it), and against its own floor by
# scripts/bench-backup.sh.
#
# Usage: scripts/bench-upgrade.sh [RUNS]     (default 5; EVENTS overrides the row count)
# The template (ecomind_bench_upgrade_tpl_*) is kept between runs; drop it by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
VERIFY_FLAG="--no-verify-backup"
[[ "${VERIFY:-0}" == 1 ]] && VERIFY_FLAG=""
EVENTS="${EVENTS:-1000000}"

. scripts/bench-lib.sh
bench_pg

bench_upgrade_template "$EVENTS"

fresh() { # name
    psql_admin "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
    psql_admin "CREATE DATABASE $1 TEMPLATE $TPL" >/dev/null
}

ours() { # db
    DATABASE_URL="$base/$1" "$BIN" -q upgrade --yes --backup-dir "$WORK/ours" --fail-on never $VERIFY_FLAG >/dev/null
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
