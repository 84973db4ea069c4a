#!/usr/bin/env bash
# Benchmark (issue 30), side by side in one run, alternating, RUNS runs each:
#
#   1. one scrape (`ecomind-admin metrics`) on 20,000,000 audit rows against one on
#      1,000,000 (the audit benchmark's generator, gen1; the same 1,000 recent auth
#      events added to both, removed at the end). Goal: at most 1.2x: a scrape costs
#      its window, not the table.
#   2. the scrape on 20M against the same numbers read by one hand-written statement in
#      psql (scripts/bench-metrics-floor.sql: the windows, users by role, token holders,
#      connections, max_connections, the version). Goal: at most 1.5x. (The CLI also
#      reads verify-schema's findings and the pending migrations, and starts a process.)
#   3. `metrics serve`'s peak RSS after 1,000 scrapes, and after 200 (flat). Goal: under
#      32 MiB.
#
# Usage: scripts/bench-metrics.sh [RUNS]     (default 7)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-7}"
ORGS=1000
USERS=100000

. scripts/bench-lib.sh
bench_pg

SMALL=$(bench_audit_gen1 1000000 0)
BIG=$(bench_audit_gen1 20000000 0)

# The same recent events in both: 1,000 auth events over the last 4 minutes.
RECENT="INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts)
SELECT 'audit_b' || lpad(to_hex(i), 15, '0'), 'system', NULL,
       (ARRAY['login_failed', 'login_success', 'logout'])[1 + i % 3], 'authentication',
       json_build_object('success', i % 3 = 1, 'email', 'u' || i || '@bench.example', 'reason', 'invalid_password'),
       (now() AT TIME ZONE 'utc') - (i % 240) * interval '1 second'
FROM generate_series(1, 1000) AS i"
CLEAN="DELETE FROM audit_logs WHERE id LIKE 'audit_b%'"
for db in "$SMALL" "$BIG"; do psql -X -q "$base/$db" -c "$CLEAN" -c "$RECENT" -c "ANALYZE audit_logs" >/dev/null; done
cleanup() { for db in "$SMALL" "$BIG"; do psql -X -q "$base/$db" -c "$CLEAN" >/dev/null 2>&1 || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

now_ns() { date +%s%N; }
time_us() { local t0 t1; t0=$(now_ns); "$@" >/dev/null; t1=$(now_ns); echo $(( (t1 - t0) / 1000 )); }
cli() { DATABASE_URL="$base/$1" "$BIN" metrics; }
floor() { psql -X -q -tA -f scripts/bench-metrics-floor.sql "$base/$1"; }

ts=(); tb=(); tf=()
for i in $(seq 1 "$RUNS"); do
    ts+=("$(time_us cli "$SMALL")")
    tb+=("$(time_us cli "$BIG")")
    tf+=("$(time_us floor "$BIG")")
done
ms() { awk -v v="$1" 'BEGIN{printf "%.1f", v/1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
ms_=$(median "${ts[@]}"); mb=$(median "${tb[@]}"); mf=$(median "${tf[@]}")
echo "runs each: $RUNS (alternating); 1,000 auth events in the last 4 minutes in both"
echo "1. scrape, 1M audit rows:   median $(ms "$ms_") ms"
echo "   scrape, 20M audit rows:  median $(ms "$mb") ms"
echo "   ratio 20M / 1M:          $(ratio "$mb" "$ms_")x   (goal: <= 1.2x)"
echo "2. one psql statement, 20M: median $(ms "$mf") ms"
echo "   ratio scrape / psql:     $(ratio "$mb" "$mf")x   (goal: <= 1.5x)"

# 3. serve's memory: 200 then 1,000 scrapes against the 20M database.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATABASE_URL="$base/$BIG" "$BIN" -q metrics serve --listen "127.0.0.1:$port" 2>/dev/null &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/metrics" >/dev/null && break; sleep 0.1; done
rss() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status"; }
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/metrics" >/dev/null; done
r200=$(rss)
for _ in $(seq 1 800); do curl -sf "http://127.0.0.1:$port/metrics" >/dev/null; done
r1000=$(rss)
kill -INT "$pid"; wait "$pid" || true
echo "3. metrics serve peak RSS:  $r200 MiB after 200 scrapes, $r1000 MiB after 1,000   (goal: < 32 MiB, flat)"
