#!/usr/bin/env bash
# Benchmark: `migrate up` on 40 empty PostgreSQL databases as one fleet run with
# --parallel 8, against a shell loop running `ecomind-admin migrate up` once per
# database; side by side, alternating, RUNS times each (the databases are dropped and
# made again, empty, before every run; not timed). Also the fleet run's peak RSS.
# Goals: the fleet at least 3x faster; peak RSS under 64 MiB. Not a test.
#
# Usage: scripts/bench-fleet.sh [RUNS]     (default 3; DBS overrides the count)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
DBS="${DBS:-40}"

. scripts/bench-lib.sh
bench_pg

names=()
for i in $(seq 1 "$DBS"); do names+=("ecomind_bench_fleet_$i"); done
fresh() {
    for n in "${names[@]}"; do
        psql_admin "DROP DATABASE IF EXISTS $n WITH (FORCE)"
        psql_admin "CREATE DATABASE $n"
    done
}
# The fleet's list file holds passwords: 0600, as ecomind-admin requires.
: > "$WORK/fleet.txt"
chmod 600 "$WORK/fleet.txt"
for n in "${names[@]}"; do echo "$base/$n" >> "$WORK/fleet.txt"; done
printf '[environments.bench]\nurls_file = "fleet.txt"\n' > "$WORK/ecomind-admin.toml"

fleet() { (cd "$WORK" && "$BIN" -q --env bench --parallel 8 migrate up --format json >/dev/null); }
loop() { for n in "${names[@]}"; do DATABASE_URL="$base/$n" "$BIN" -q migrate up >/dev/null; done; }

now_ns() { date +%s%N; }
t_fleet=(); t_loop=()
for _ in $(seq 1 "$RUNS"); do
    fresh; t0=$(now_ns); fleet; t1=$(now_ns); t_fleet+=($(( (t1 - t0) / 1000000 )))
    fresh; t0=$(now_ns); loop; t1=$(now_ns); t_loop+=($(( (t1 - t0) / 1000000 )))
done
fresh
(cd "$WORK" && /usr/bin/time -o "$WORK/rss" -f '%M' "$BIN" -q --env bench --parallel 8 migrate up --format json >/dev/null)
rss_kb=$(tail -1 "$WORK/rss")
for n in "${names[@]}"; do psql_admin "DROP DATABASE IF EXISTS $n WITH (FORCE)"; done

mf=$(median "${t_fleet[@]}"); ml=$(median "${t_loop[@]}")
echo "data: $DBS empty PostgreSQL databases; $RUNS runs each, alternating"
echo "fleet run (--parallel 8):     median ${mf} ms  (${t_fleet[*]})"
echo "shell loop, one per database: median ${ml} ms  (${t_loop[*]})"
echo "speed-up (loop / fleet):      $(awk -v a="$ml" -v b="$mf" 'BEGIN {printf "%.2f", a/b}')x   (goal: >= 3x)"
echo "peak RSS of the fleet run:    $(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k/1024}') MiB   (goal: < 64 MiB)"
