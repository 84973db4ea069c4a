#!/usr/bin/env bash
# Benchmark: `verify-deployment` (the plan's Tests 1 to 5 on fixtures, the 14 route
# probes, the two token probes, the published-passwords check, the cleanup) against
# the same requests and database checks written by hand as a shell script with curl,
# jq and psql (one psql per check, as a DBA would; its fixture hash and its tokens are
# made once, outside the timed runs, which favours the floor). Both against the real
# API (../shared/reference/ecomind-api/run.sh, started once: its start-up is not
# measured), alternating, medians of RUNS. Goal: at most 1.2x. Not a test.
#
# Usage: scripts/bench-verify-deployment.sh [RUNS]   (default 11)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-11}"
. scripts/bench-lib.sh
bench_pg
API_DIR="$(cd .. && pwd)/shared/reference/ecomind-api"
VENV="$PWD/target/ecomind-api-venv"
PY="$VENV/bin/python"
DBN=ecomind_bench_verify
psql_admin "DROP DATABASE IF EXISTS $DBN WITH (FORCE)"
psql_admin "CREATE DATABASE $DBN"
DB="$base/$DBN"
DATABASE_URL="$DB" "$BIN" -q migrate up >/dev/null
DATABASE_URL="$DB" "$BIN" -q create-org --id org_bench0000000 --name Bench >/dev/null
printf 'a strong password 1\n' | DATABASE_URL="$DB" "$BIN" -q create-admin --org org_bench0000000 \
    --email ops@example.com --password-stdin >/dev/null
PORT=18811
DATABASE_URL="${DB/postgres:/postgresql:}" PORT=$PORT VENV="$VENV" WORK="$WORK/api" \
    JWT_SECRET="a secret of the benchmark's own" "$API_DIR/run.sh" >/dev/null 2>&1 &
API_PID=$!
trap 'kill $API_PID 2>/dev/null; rm -rf "$WORK"; psql_admin "DROP DATABASE IF EXISTS $DBN WITH (FORCE)"' EXIT
API="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do curl -fs "$API/health" >/dev/null && break; sleep 0.2; done

# The floor's fixtures and tokens, made once (outside the timed runs).
HASH=$("$PY" -c 'import bcrypt; print(bcrypt.hashpw(b"fixture password 123", bcrypt.gensalt(10)).decode())')
read -r FRESH EXPIRED < <("$PY" - <<'PY'
import time
from jose import jwt
s = "dev-secret-change-in-production"
print(jwt.encode({"sub": "user_000000000000", "exp": int(time.time()) + 86400}, s),
      jwt.encode({"sub": "user_000000000000", "exp": int(time.time()) - 600}, s))
PY
)
q() { psql -X -q -tA -v ON_ERROR_STOP=1 "$DB" -c "$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
floor() {
    local run org admin viewer token vtoken
    run=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
    org="org_f${run}000"; admin="user_f${run}000"
    q "DELETE FROM users WHERE org_id IN (SELECT id FROM orgs WHERE name LIKE 'floor-verify %'); DELETE FROM orgs WHERE name LIKE 'floor-verify %'"
    # The owners' and admins' passwords, read before the fixtures exist (as ecomind-admin does).
    q "SELECT email || ' ' || password_hash FROM users WHERE role IN ('owner', 'admin') AND password_hash IS NOT NULL" \
        | "$PY" -c '
import sys, bcrypt
pw = [b"staging-admin-password-123", b"staging-viewer-password-123", b"test123", b"password123"]
for line in sys.stdin:
    e, h = line.split()
    if any(bcrypt.checkpw(p, h.encode()) for p in pw): print(e)' >/dev/null
    q "BEGIN; INSERT INTO orgs (id, name, plan, created_at) VALUES ('$org', 'floor-verify $run', 'free', now());
       INSERT INTO users (id, org_id, email, role, created_at, password_hash)
       VALUES ('$admin', '$org', 'floor-admin-$run@example.com', 'admin', now(), '$HASH'); COMMIT" >/dev/null
    code "$API/health" >/dev/null; code "$API/" >/dev/null
    local reg="{\"email\":\"floor-viewer-$run@example.com\",\"password\":\"viewer password 12\",\"name\":\"f\",\"org_id\":\"$org\"}"
    code -X POST -H 'Content-Type: application/json' -d "$reg" "$API/v1/auth/register" >/dev/null
    q "SELECT COUNT(*) FROM users WHERE email = 'floor-viewer-$run@example.com'" >/dev/null
    token=$(curl -s -X POST -H 'Content-Type: application/json' \
        -d "{\"email\":\"floor-admin-$run@example.com\",\"password\":\"fixture password 123\"}" "$API/v1/auth/login" | jq -r .access_token)
    q "SELECT COUNT(*) FROM audit_logs WHERE action = 'login_success' AND user_id = '$admin'" >/dev/null
    code -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $token" -d "$reg" "$API/v1/auth/register" >/dev/null
    q "SELECT COUNT(*) FROM users WHERE email = 'floor-viewer-$run@example.com' AND role = 'viewer' AND password_hash IS NOT NULL" >/dev/null
    q "SELECT COUNT(*) FROM audit_logs WHERE action = 'user_registered' AND org_id = '$org' AND details::text LIKE '%$admin%'" >/dev/null
    vtoken=$(curl -s -X POST -H 'Content-Type: application/json' \
        -d "{\"email\":\"floor-viewer-$run@example.com\",\"password\":\"viewer password 12\"}" "$API/v1/auth/login" | jq -r .access_token)
    code -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $vtoken" \
        -d "{\"email\":\"floor-other-$run@example.com\",\"password\":\"other password 12\",\"name\":\"f\",\"org_id\":\"$org\"}" "$API/v1/auth/register" >/dev/null
    q "SELECT COUNT(*) FROM users WHERE email = 'floor-other-$run@example.com'" >/dev/null
    curl -s -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $token" \
        -d "{\"email\":\"floor-other-$run@example.com\",\"password\":\"other password 12\",\"name\":\"f\",\"org_id\":\"org_ffffffffffff\"}" "$API/v1/auth/register" >/dev/null
    for r in "POST /v1/auth/register" "GET /v1/auth/me" "POST /v1/auth/logout" "POST /v1/users" \
             "GET /v1/users/user_000000000000" "GET /v1/orgs/org_000000000000/users" "POST /v1/orgs" \
             "GET /v1/orgs/org_000000000000" "GET /v1/orgs" "GET /v1/audits" "POST /v1/ingest" \
             "POST /v1/alerts" "POST /v1/reports" "GET /v1/today"; do
        set -- $r
        if [[ $1 == GET ]]; then code "$API$2" >/dev/null
        else code -X POST -H 'Content-Type: application/json' -d '{}' "$API$2" >/dev/null; fi
    done
    code -H "Authorization: Bearer $FRESH" "$API/v1/auth/me" >/dev/null
    code -H "Authorization: Bearer $EXPIRED" "$API/v1/auth/me" >/dev/null
    q "DELETE FROM users WHERE org_id = '$org'; DELETE FROM orgs WHERE id = '$org'" >/dev/null
}
ours() { DATABASE_URL="$DB" "$BIN" -q verify-deployment --api-url "$API" >/dev/null || true; }

floor; ours # warm both
t_ours=(); t_floor=()
for _ in $(seq 1 "$RUNS"); do
    t0=$(date +%s%N); ours; t1=$(date +%s%N); t_ours+=($(( (t1 - t0) / 1000000 )))
    t0=$(date +%s%N); floor; t1=$(date +%s%N); t_floor+=($(( (t1 - t0) / 1000000 )))
done
o=$(median "${t_ours[@]}"); f=$(median "${t_floor[@]}")
echo "verify-deployment (Tests 1-5 on fixtures, 14 route probes, 2 token probes, published passwords, cleanup)"
echo "  ecomind-admin:            $o ms (median of $RUNS)"
echo "  curl + jq + psql floor:   $f ms"
echo "  ratio:                    $(awk -v a="$o" -v b="$f" 'BEGIN {printf "%.2fx", a/b}')   (goal: at most 1.2x)"
