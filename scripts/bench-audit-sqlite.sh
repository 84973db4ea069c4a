#!/usr/bin/env bash
# Benchmark: `audit suspicious-accounts` on SQLite (the embedded default) against the
# best hand-written statement for SQLite (scripts/bench-audit-best-sqlite.sql), on a
# 520,000-row file: gen1 (scripts/bench-audit-data.sql) at 100 orgs and 10,000 users,
# made on PostgreSQL and copied into a file that `migrate up` made. The floor runs on
# the SQLite the binary embeds (`cargo xtask sqlite-query`, built in release; Debian's
# sqlite3 shell is an older SQLite). Not a test. Called by scripts/bench-audit.sh; on
# its own: scripts/bench-audit-sqlite.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
ROWS=520000
ORGS=100
USERS=10000

. scripts/bench-lib.sh
bench_pg
command -v sqlite3 >/dev/null || { echo "bench-audit-sqlite.sh: sqlite3 is required (apt-get install sqlite3)" >&2; exit 1; }
cargo build --release -q -p xtask
QUERY="$PWD/target/release/xtask"

SRC=ecomind_bench_audit_sqlite_src
marker="ecomind-bench sqlite-src orgs=$ORGS users=$USERS rows=$ROWS v1"
FILE="$PWD/target/bench/audit-$ROWS.db"
if [[ $(psql_admin "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$SRC'") != "$marker" || ! -f $FILE ]]; then
    echo "generating $FILE ..." >&2
    psql_admin "DROP DATABASE IF EXISTS $SRC WITH (FORCE)" >/dev/null
    psql_admin "CREATE DATABASE $SRC" >/dev/null
    DATABASE_URL="$base/$SRC" "$BIN" -q migrate up >/dev/null
    psql -X -q -v orgs=$ORGS -v users=$USERS -v rows=$ROWS -v attackers=0 \
        -f scripts/bench-audit-data.sql "$base/$SRC" >/dev/null
    mkdir -p "$(dirname "$FILE")"
    rm -f "$FILE"
    DATABASE_URL="sqlite://$FILE?mode=rwc" "$BIN" -q migrate up >/dev/null
    # Timestamps as the API's SQLAlchemy writes them on SQLite.
    ts() { echo "to_char($1, 'YYYY-MM-DD HH24:MI:SS.US')"; }
    psql -X -q "$base/$SRC" -c "\\copy (SELECT id, name, plan, $(ts created_at) FROM orgs) TO '$WORK/orgs.csv' CSV"
    psql -X -q "$base/$SRC" -c "\\copy (SELECT id, org_id, email, name, role, $(ts created_at), password_hash FROM users) TO '$WORK/users.csv' CSV"
    psql -X -q "$base/$SRC" -c "\\copy (SELECT id, org_id, user_id, action, resource, details, $(ts ts) FROM audit_logs) TO '$WORK/audit.csv' CSV"
    sqlite3 "$FILE" <<SQL
CREATE TEMP TABLE o (id, name, plan, created_at);
CREATE TEMP TABLE u (id, org_id, email, name, role, created_at, password_hash);
CREATE TEMP TABLE a (id, org_id, user_id, action, resource, details, ts);
.mode csv
.import $WORK/orgs.csv o
.import $WORK/users.csv u
.import $WORK/audit.csv a
INSERT INTO orgs (id, name, plan, created_at) SELECT id, name, plan, created_at FROM o;
INSERT INTO users (id, org_id, email, name, role, created_at, password_hash)
  SELECT id, org_id, email, nullif(name, ''), role, created_at, nullif(password_hash, '') FROM u;
INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts)
  SELECT id, org_id, nullif(user_id, ''), action, resource, nullif(details, ''), ts FROM a;
ANALYZE;
SQL
    psql_admin "COMMENT ON DATABASE $SRC IS '$marker'" >/dev/null
fi

SINCE=2026-10-25
FIXED=2026-06-01
sed -e "s/__SINCE__/$SINCE 00:00:00/g" -e "s/__FIXED__/$FIXED 00:00:00/g" \
    scripts/bench-audit-best-sqlite.sql >"$WORK/best.sql"
cli() { DATABASE_URL="sqlite://$FILE" "$BIN" audit suspicious-accounts --since "$SINCE" --fixed-at "$FIXED" \
    --fail-on never --format json 2>/dev/null; }
best() { "$QUERY" sqlite-query "$WORK/best.sql" "$FILE"; }

cli >"$WORK/cli.json"
best >"$WORK/best.tsv"
python3 scripts/bench-audit-same.py "SQLite best floor, $(basename "$FILE")" "$WORK/cli.json" "$WORK/best.tsv" --lists-as-sets

now_ns() { date +%s%N; }
ms() { local t0 t1; t0=$(now_ns); "$@" >/dev/null; t1=$(now_ns); echo $(( (t1 - t0) / 1000000 )); }
c=(); b=()
for _ in $(seq 1 "$RUNS"); do
    c+=("$(ms cli)"); b+=("$(ms best)")
done
mc=$(median "${c[@]}"); mb=$(median "${b[@]}")
echo "SQLite, $ROWS audit rows ($USERS users): CLI ${mc} ms  best ${mb} ms  CLI/best $(awk -v a="$mc" -v b="$mb" 'BEGIN {printf "%.2f", a/b}')x   (goal: <= 1.0x)"
echo "           runs: CLI ${c[*]} / best ${b[*]}"
