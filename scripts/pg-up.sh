#!/usr/bin/env bash
# Start a PostgreSQL 15 server for the test suite and print the superuser URL
# on stdout (everything else goes to stderr).
#
# - as root: start (or create) the Debian cluster `15 main` as user postgres,
#   installing postgresql-15 with apt when it is missing;
# - as another user: create a throwaway cluster under $ECOMIND_PG_DIR
#   (default: target/pgtest) with the installed binaries, on port 55432.
# The superuser is given a password so that TCP connections use
# scram-sha-256, as in production; ssl is on (Debian's snakeoil certificate or
# a self-signed one for a throwaway cluster).
set -euo pipefail

PGVER=15
PGPASS_TEST="${ECOMIND_TEST_PG_PASSWORD:-ecomind-test-pw}"
log() { echo "pg-up: $*" >&2; }

pgbin() {
    if [[ -x /usr/lib/postgresql/$PGVER/bin/postgres ]]; then
        echo "/usr/lib/postgresql/$PGVER/bin"
    else
        return 1
    fi
}

if ! pgbin >/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
        log "installing postgresql-$PGVER with apt"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq "postgresql-$PGVER" postgresql-client-$PGVER >&2
    else
        log "PostgreSQL $PGVER is not installed and this user cannot install it (run as root or apt-get install postgresql-$PGVER)"
        exit 1
    fi
fi
BIN=$(pgbin)

wait_ready() {
    local port=$1
    for _ in $(seq 1 60); do
        if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then return 0; fi
        sleep 0.5
    done
    log "server on port $port did not become ready"
    return 1
}

if [[ $(id -u) -eq 0 ]]; then
    PORT=5432
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$PGVER main"; then
        log "creating cluster $PGVER main"
        pg_createcluster "$PGVER" main >&2
    fi
    PORT=$(pg_lsclusters -h | awk -v v="$PGVER" '$1==v && $2=="main" {print $3}')
    if ! pg_lsclusters -h | awk -v v="$PGVER" '$1==v && $2=="main" {print $4}' | grep -q online; then
        log "starting cluster $PGVER main on port $PORT"
        runuser -u postgres -- pg_ctlcluster "$PGVER" main start >&2
    fi
    wait_ready "$PORT"
    runuser -u postgres -- psql -q -p "$PORT" -c "ALTER USER postgres PASSWORD '$PGPASS_TEST'" >&2
    echo "postgres://postgres:${PGPASS_TEST}@127.0.0.1:${PORT}/postgres"
else
    PORT=55432
    DIR="${ECOMIND_PG_DIR:-$(pwd)/target/pgtest}"
    if [[ ! -f "$DIR/data/PG_VERSION" ]]; then
        log "creating a throwaway cluster in $DIR"
        mkdir -p "$DIR"
        printf '%s\n' "$PGPASS_TEST" > "$DIR/pwfile"
        "$BIN/initdb" -D "$DIR/data" -U postgres --auth-host=scram-sha-256 --auth-local=trust \
            --pwfile="$DIR/pwfile" >&2
        openssl req -new -x509 -days 3650 -nodes -subj "/CN=localhost" \
            -keyout "$DIR/data/server.key" -out "$DIR/data/server.crt" >&2 2>/dev/null
        chmod 600 "$DIR/data/server.key"
        {
            echo "port = $PORT"
            echo "listen_addresses = '127.0.0.1'"
            echo "unix_socket_directories = '$DIR'"
            echo "ssl = on"
            echo "max_connections = 200"
        } >> "$DIR/data/postgresql.conf"
    fi
    if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
        "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w start >&2
    fi
    wait_ready "$PORT"
    echo "postgres://postgres:${PGPASS_TEST}@127.0.0.1:${PORT}/postgres"
fi
