#!/usr/bin/env bash
# Run every benchmark script and write BENCHMARKS.md: each figure as measured side by
# side with its floor in one run, peak RSS, and the machine it ran on.
# Usage: scripts/bench.sh     (needs PostgreSQL like scripts/test.sh; the audit data set
# is generated once, ~4 minutes, and kept)
set -euo pipefail
cd "$(dirname "$0")/.."
export ECOMIND_TEST_DATABASE_URL="${ECOMIND_TEST_DATABASE_URL:-$(scripts/pg-up.sh)}"
out=BENCHMARKS.md
section() { # title script args...
    local title=$1; shift
    echo "==> $title" >&2
    printf '\n## %s\n\n`%s`\n\n```\n' "$title" "$*"
    "$@" 2>/dev/null
    printf '```\n'
}
{
    echo "# Benchmarks"
    echo
    echo "Written by \`scripts/bench.sh\` on $(date -u +%Y-%m-%dT%H:%MZ). Every ratio is measured side by"
    echo "side with its floor in the same run (alternating), so machine noise hits both."
    echo
    echo "## Machine"
    echo
    echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) ($(nproc) cores)"
    echo "- memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "- OS: $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r)"
    echo "- PostgreSQL: $(psql -X -qtA "$ECOMIND_TEST_DATABASE_URL" -c 'SHOW server_version')"
    echo "- rustc: $(rustc --version)"
    section "Start-up" scripts/bench-startup.sh
    section "migrate up against psql -1 -f" scripts/bench-migrate.sh 9
    section "verify-schema, and with 2,000 unrelated tables" scripts/bench-verify.sh 9
    section "audit suspicious-accounts against the best single statement, two generators, 5M and 20M rows, and SQLite" scripts/bench-audit.sh 3
    section "upgrade against the same steps as separate commands, 1M events_enriched rows" scripts/bench-upgrade.sh 5
    section "A fleet run against a shell loop, 40 empty PostgreSQL databases" scripts/bench-fleet.sh 3
    section "audit in every format on 150,000 findings" scripts/bench-jsonl.sh 3
    section "verify-deployment against curl, jq and psql" scripts/bench-verify-deployment.sh 7
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
