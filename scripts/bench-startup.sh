#!/usr/bin/env bash
# Start-up: `ecomind-admin --version` and `migrate current` on SQLite, median wall time
# over RUNS runs (default 51) and peak RSS, side by side with their floors
# (`psql --version`; sqlite3 reading seaql_migrations). Goals: under 20 ms and 16 MiB.
# Also the release binary's size. Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-51}"
cargo build --release -q
# ECOMIND_BENCH_BIN: measure another build (the one before a change) with these scripts.
BIN="${ECOMIND_BENCH_BIN:-$PWD/target/release/ecomind-admin}"
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
DB="$DIR/bench.db"
DATABASE_URL="sqlite://$DB?mode=rwc" "$BIN" -q migrate up >/dev/null

now_ns() { date +%s%N; }
. scripts/bench-lib.sh
time_us() { # command...
    local t=()
    for _ in $(seq 1 "$RUNS"); do
        local t0 t1; t0=$(now_ns); "$@" >/dev/null 2>&1; t1=$(now_ns); t+=($(( (t1 - t0) / 1000 )))
    done
    median "${t[@]}"
}
rss_kib() { /usr/bin/time -o "$DIR/rss" -f '%M' "$@" >/dev/null 2>&1; tail -1 "$DIR/rss"; }
ms() { awk -v v="$1" 'BEGIN{printf "%.1f", v/1000}'; }
mib() { awk -v v="$1" 'BEGIN{printf "%.1f", v/1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }

v_ours=$(time_us "$BIN" --version)
v_floor=$(time_us psql --version)
c_ours=$(time_us env DATABASE_URL="sqlite://$DB" "$BIN" migrate current)
c_floor=$(time_us sqlite3 "$DB" "SELECT version FROM seaql_migrations")
v_rss=$(rss_kib "$BIN" --version)
c_rss=$(rss_kib env DATABASE_URL="sqlite://$DB" "$BIN" migrate current)
size=$(stat -c %s "$BIN")
echo "runs each: $RUNS (median)"
echo "--version:               $(ms "$v_ours") ms (floor psql --version $(ms "$v_floor") ms, ratio $(ratio "$v_ours" "$v_floor")x), peak RSS $(mib "$v_rss") MiB   (goal: < 20 ms, < 16 MiB)"
echo "migrate current, SQLite: $(ms "$c_ours") ms (floor sqlite3 query $(ms "$c_floor") ms, ratio $(ratio "$c_ours" "$c_floor")x), peak RSS $(mib "$c_rss") MiB   (goal: < 20 ms, < 16 MiB)"
echo "release binary:          $(mib $((size / 1024))) MiB ($size bytes)"
