#!/usr/bin/env bash
# Benchmark (issue 29), side by side in one run, alternating, RUNS runs each:
#
#   A. `ecomind-admin backup verify FILE` against the deployment plan's own way, by hand:
#        createdb S; pg_restore --jobs=J --exit-on-error --no-owner --no-privileges -d S FILE;
#        psql -d S -c "<the schema check: every table's columns, types, nullability>";
#        dropdb S
#      with J the jobs the CLI's pg_restore runs (the cores, at most 4): the best way by
#      hand. Goal: at most 1.2x. (The CLI also checks the file's sha256, the row counts
#      of every table against the manifest, and runs the audit on the copy.)
#   B. `ecomind-admin restore FILE --yes` against
#        pg_restore --clean --if-exists --single-transaction -d DB FILE
#      on the same database (each restores the same backup over it). Goal: at most 1.2x.
#      (The CLI also lists the sessions, counts the writes since, drops what the backup
#      does not have, and checks the schema and the row counts after.)
#
# The database: revision 002 (head) with 1,000,000 events_enriched rows, 1,000 orgs,
# 10,000 users (a copy of the template of scripts/bench-upgrade.sh). Not a test.
#
# Usage: scripts/bench-backup.sh [RUNS]     (default 3; EVENTS overrides the row count)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
EVENTS="${EVENTS:-1000000}"

. scripts/bench-lib.sh
bench_pg
bench_upgrade_template "$EVENTS"

JOBS=$(( $(nproc) < 4 ? $(nproc) : 4 ))
SRC="ecomind_bench_backup_src_$$"
SCRATCH="ecomind_bench_backup_scratch_$$"
cleanup() {
    psql_admin "DROP DATABASE IF EXISTS $SRC WITH (FORCE)" >/dev/null || true
    psql_admin "DROP DATABASE IF EXISTS $SCRATCH WITH (FORCE)" >/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
psql_admin "CREATE DATABASE $SRC TEMPLATE $TPL" >/dev/null
export DATABASE_URL="$base/$SRC"
"$BIN" -q migrate up >/dev/null
psql -X -q "$DATABASE_URL" -c "VACUUM ANALYZE" >/dev/null
FILE=$("$BIN" -q backup --dir "$WORK/bk" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
echo "backup: $FILE ($(du -h "$FILE" | cut -f1)), database $(psql_admin "SELECT pg_size_pretty(pg_database_size('$SRC'))")" >&2

SCHEMA_CHECK="SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1, a.attnum"

by_hand_verify() {
    createdb --maintenance-db="$ADMIN_URL" "$SCRATCH"
    pg_restore --jobs="$JOBS" --exit-on-error --no-owner --no-privileges -d "$base/$SCRATCH" "$FILE"
    psql -X -q -c "$SCHEMA_CHECK" "$base/$SCRATCH" >/dev/null
    psql_admin "DROP DATABASE $SCRATCH" >/dev/null
}
cli_verify() { "$BIN" -q backup verify "$FILE" --format json >/dev/null; }
by_hand_restore() { pg_restore --clean --if-exists --single-transaction -d "$DATABASE_URL" "$FILE"; }
cli_restore() { "$BIN" -q restore "$FILE" --yes --format json >/dev/null; }

now_ns() { date +%s%N; }
time_ms() { local t0 t1; t0=$(now_ns); "$@"; t1=$(now_ns); echo $(( (t1 - t0) / 1000000 )); }
va=(); vf=(); ra=(); rf=()
for i in $(seq 1 "$RUNS"); do
    va+=("$(time_ms cli_verify)")
    vf+=("$(time_ms by_hand_verify)")
    ra+=("$(time_ms cli_restore)")
    rf+=("$(time_ms by_hand_restore)")
    echo "run $i: verify ${va[-1]} / ${vf[-1]} ms, restore ${ra[-1]} / ${rf[-1]} ms" >&2
done
rss_kb=$( { /usr/bin/time -f '%M' "$BIN" -q backup verify "$FILE" --format json >/dev/null; } 2>&1 | tail -1 )

mva=$(median "${va[@]}"); mvf=$(median "${vf[@]}"); mra=$(median "${ra[@]}"); mrf=$(median "${rf[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
echo "rows: $EVENTS events_enriched; runs each: $RUNS (alternating)"
echo "A. backup verify:            median $mva ms"
echo "   createdb + pg_restore --jobs=$JOBS + schema check + dropdb (by hand): median $mvf ms"
echo "   ratio:                    $(ratio "$mva" "$mvf")x   (goal: <= 1.2x)"
echo "B. restore --yes:            median $mra ms"
echo "   pg_restore --clean --if-exists --single-transaction:     median $mrf ms"
echo "   ratio:                    $(ratio "$mra" "$mrf")x   (goal: <= 1.2x)"
echo "peak RSS of backup verify:   $(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k/1024}') MiB"
