#!/usr/bin/env bash
# Benchmark: `audit suspicious-accounts` on 150,000 findings (75,000 admins written by
# hand, without provenance and without a password: two critical findings each) in
# every format: the peak RSS of jsonl, csv and the human table (streamed: goal under
# 64 MiB each, and no growth with the number of findings: jsonl against 15,000
# findings) and of json (one document that holds the findings, not its text).
# BEFORE_BIN=path/to/ecomind-admin measures another build side by side, in the same
# run. Not a test.
#
# Usage: [BEFORE_BIN=...] scripts/bench-jsonl.sh [RUNS]   (default 3; USERS overrides 75,000)
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

run() { # binary db format -> "rss_kb ms lines"
    local t0 t1
    t0=$(date +%s%N)
    DATABASE_URL="$base/$2" /usr/bin/time -o "$WORK/rss" -f '%M' "$1" -q audit suspicious-accounts \
        --fail-on never --format "$3" > "$WORK/out" || true
    t1=$(date +%s%N)
    echo "$(tail -1 "$WORK/rss") $(( (t1 - t0) / 1000000 )) $(wc -l < "$WORK/out")"
}

# Every format on the big database (the human table is what a pipe gets), jsonl on the
# small one too (growth), for this build and, with BEFORE_BIN, another build side by side.
declare -A rss ms
bins=("$BIN")
[[ -n "${BEFORE_BIN:-}" ]] && bins+=("$BEFORE_BIN")
for _ in $(seq 1 "$RUNS"); do
    for b in "${bins[@]}"; do
        for f in jsonl csv table json; do
            read -r r m lines < <(run "$b" ecomind_bench_jsonl_big "$f")
            rss["$b $f"]+="$r "; ms["$b $f"]+="$m "
            [[ "$f" == jsonl && "$b" == "$BIN" ]] && findings=$((lines - 1))
        done
        read -r r _ _ < <(run "$b" ecomind_bench_jsonl_small jsonl); rss["$b small"]+="$r "
    done
done
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k/1024}'; }
echo "findings (jsonl lines before the summary line): $findings"
for b in "${bins[@]}"; do
    label="this build"; [[ "$b" != "$BIN" ]] && label="before ($b)"
    echo "$label:"
    for f in jsonl csv table json; do
        # shellcheck disable=SC2086
        r=$(median ${rss["$b $f"]}); m=$(median ${ms["$b $f"]})
        goal="(goal: < 64 MiB)"; [[ "$f" == json ]] && goal="(one document: holds the findings)"
        printf '  peak RSS, %-5s %s findings: %7s MiB  %6s ms  %s\n' "$f," "$findings" "$(mib "$r")" "$m" "$goal"
    done
    # shellcheck disable=SC2086
    s=$(median ${rss["$b small"]}); r=$(median ${rss["$b jsonl"]})
    echo "  jsonl growth, 10x the findings: $(awk -v a="$r" -v b="$s" 'BEGIN {printf "%.2fx", a/b}')   (flat: about 1.00x)"
done
