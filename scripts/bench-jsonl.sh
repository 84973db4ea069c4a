#!/usr/bin/env bash
# Benchmark: `audit suspicious-accounts --format jsonl` on 150,000 findings (75,000
# admins written by hand, without provenance and without a password: two critical
# findings each), its peak RSS against 15,000 findings (flat memory: the same) and
# against `--format json` on the same data (which keeps and sorts every finding).
# Goal: jsonl peak RSS under 64 MiB, and no growth with the number of findings.
# Not a test.
#
# Usage: scripts/bench-jsonl.sh [RUNS]     (default 3; USERS overrides 75,000)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
USERS="${USERS:-75000}"

. scripts/bench-lib.sh
bench_pg

# Two databases: USERS admins, and a tenth of them.
make_db() { # name users
    psql_admin "DROP DATABASE IF EXISTS $1 WITH (FORCE)"
    psql_admin "CREATE DATABASE $1"
    DATABASE_URL="$base/$1" "$BIN" -q migrate up >/dev/null
    psql -X -q -v ON_ERROR_STOP=1 "$base/$1" >/dev/null <<SQL
INSERT INTO orgs (id, name, plan, created_at) VALUES ('org_bench0000000', 'Bench', 'free', '2025-01-01');
INSERT INTO users (id, org_id, email, role, created_at)
SELECT 'user_' || lpad(g::text, 12, '0'), 'org_bench0000000', 'admin' || g || '@bench.test',
       'admin', '2025-01-01'::timestamp + g * interval '1 second'
FROM generate_series(1, $2) g;
ANALYZE;
SQL
}
make_db ecomind_bench_jsonl_big "$USERS"
make_db ecomind_bench_jsonl_small $((USERS / 10))
trap 'rm -rf "$WORK"; psql_admin "DROP DATABASE IF EXISTS ecomind_bench_jsonl_big WITH (FORCE)"; psql_admin "DROP DATABASE IF EXISTS ecomind_bench_jsonl_small WITH (FORCE)"' EXIT

run() { # db format -> "rss_kb ms lines"
    local t0 t1
    t0=$(date +%s%N)
    DATABASE_URL="$base/$1" /usr/bin/time -o "$WORK/rss" -f '%M' "$BIN" -q audit suspicious-accounts \
        --fail-on never --format "$2" > "$WORK/out" || true
    t1=$(date +%s%N)
    echo "$(tail -1 "$WORK/rss") $(( (t1 - t0) / 1000000 )) $(wc -l < "$WORK/out")"
}

big_jsonl=(); small_jsonl=(); big_json=(); ms_jsonl=(); ms_json=()
for _ in $(seq 1 "$RUNS"); do
    read -r rss ms lines < <(run ecomind_bench_jsonl_big jsonl); big_jsonl+=("$rss"); ms_jsonl+=("$ms"); findings=$((lines - 1))
    read -r rss _ _ < <(run ecomind_bench_jsonl_small jsonl); small_jsonl+=("$rss")
    read -r rss ms _ < <(run ecomind_bench_jsonl_big json); big_json+=("$rss"); ms_json+=("$ms")
done
# The last line is the summary: the stream is complete.
tail -1 "$WORK/out" >/dev/null
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k/1024}'; }
b=$(median "${big_jsonl[@]}"); s=$(median "${small_jsonl[@]}"); j=$(median "${big_json[@]}")
echo "findings (jsonl lines before the summary line): $findings"
echo "peak RSS, jsonl, $findings findings:      $(mib "$b") MiB   (goal: < 64 MiB)"
echo "peak RSS, jsonl, a tenth of the findings: $(mib "$s") MiB"
echo "growth, 10x the findings:                 $(awk -v a="$b" -v b="$s" 'BEGIN {printf "%.2fx", a/b}')   (flat: about 1.00x)"
echo "peak RSS, json (all findings kept):       $(mib "$j") MiB"
echo "time, jsonl / json:                       $(median "${ms_jsonl[@]}") ms / $(median "${ms_json[@]}") ms"
