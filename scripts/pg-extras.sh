#!/usr/bin/env bash
# Production-like surroundings for the hardening tests, next to the server that
# scripts/pg-up.sh started (its superuser URL is $1). Prints `export` lines for:
#   ECOMIND_TEST_CA             a test CA; the server now presents a certificate it signed
#                               for DNS:localhost only (so 127.0.0.1 fails verify-full)
#   ECOMIND_TEST_STANDBY_URL    a streaming hot standby made with pg_basebackup
#   ECOMIND_TEST_PGBOUNCER_URL  PgBouncer in transaction pooling mode in front of the server
#   ECOMIND_TEST_PGBOUNCER_SESSION_URL  the same in session pooling mode
# Everything else goes to stderr. Installs pgbouncer with apt when missing (as root).
set -euo pipefail
ADMIN_URL="$1"
BIN=/usr/lib/postgresql/15/bin
log() { echo "pg-extras: $*" >&2; }

# Parse the admin URL: postgres://USER:PASS@HOST:PORT/DB
rest="${ADMIN_URL#postgres://}"
USER_PASS="${rest%%@*}"; PGUSER_="${USER_PASS%%:*}"; PGPASS_="${USER_PASS#*:}"
HOSTPORT="${rest#*@}"; HOSTPORT="${HOSTPORT%%/*}"; PORT="${HOSTPORT##*:}"

if [[ $(id -u) -eq 0 ]]; then
    RUNAS=(runuser -u postgres --)
    WORK=/var/lib/postgresql/ecomind-test
else
    RUNAS=()
    WORK="${ECOMIND_PG_DIR:-$(pwd)/target/pgtest}/extras"
fi
mkdir -p "$WORK"
[[ $(id -u) -eq 0 ]] && chown postgres:postgres "$WORK"
psql_admin() { psql -X -q -tA -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "$1"; }

# --- TLS: a test CA and a server certificate for DNS:localhost --------------------
TLS="$WORK/tls"
if [[ ! -f "$TLS/server.crt" ]]; then
    log "making a test CA and a server certificate"
    mkdir -p "$TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ecomind-test-ca" \
        -keyout "$TLS/ca.key" -out "$TLS/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > "$TLS/ext.cnf"
    openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" -CAcreateserial \
        -days 3650 -extfile "$TLS/ext.cnf" -out "$TLS/server.crt" 2>/dev/null
    chmod 600 "$TLS/server.key"
    [[ $(id -u) -eq 0 ]] && chown -R postgres:postgres "$TLS" && chmod 644 "$TLS/ca.crt"
fi
psql_admin "ALTER SYSTEM SET ssl_cert_file = '$TLS/server.crt'" >/dev/null
psql_admin "ALTER SYSTEM SET ssl_key_file = '$TLS/server.key'" >/dev/null
psql_admin "SELECT pg_reload_conf()" >/dev/null
echo "export ECOMIND_TEST_CA='$TLS/ca.crt'"

# --- A streaming hot standby ----------------------------------------------------------
SPORT=$((PORT + 1))
SDIR="$WORK/standby"
if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$SPORT"; then
    log "making a hot standby with pg_basebackup on port $SPORT"
    rm -rf "$SDIR"
    # A replication slot keeps the primary's WAL until the standby has it: the test
    # suite writes a lot of WAL (a database per test) faster than max_wal_size allows.
    psql_admin "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                WHERE slot_name = 'ecomind_test_standby'" >/dev/null
    "${RUNAS[@]}" env PGPASSWORD="$PGPASS_" "$BIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U "$PGUSER_" \
        -D "$SDIR" -R -X stream -c fast -C -S ecomind_test_standby >&2
    # A Debian cluster keeps its configuration outside the data directory.
    if [[ ! -f "$SDIR/postgresql.conf" ]] || [[ $(id -u) -eq 0 ]]; then
        "${RUNAS[@]}" bash -c "cat > '$SDIR/postgresql.conf' <<CONF
listen_addresses = '127.0.0.1'
port = $SPORT
unix_socket_directories = '$SDIR'
hot_standby = on
max_connections = 100
CONF
printf 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n' > '$SDIR/pg_hba.conf'
: > '$SDIR/pg_ident.conf'"
    fi
    "${RUNAS[@]}" "$BIN/pg_ctl" -D "$SDIR" -l "$SDIR/log" -o "-p $SPORT -k $SDIR" -w start >&2
fi
echo "export ECOMIND_TEST_STANDBY_URL='postgres://$PGUSER_:$PGPASS_@127.0.0.1:$SPORT/postgres'"

# --- PgBouncer, transaction pooling --------------------------------------------------
# Stock configuration: only [databases], auth and pool_mode = transaction (no
# ignore_startup_parameters: ecomind-admin must not need it).
if ! command -v pgbouncer >/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
        log "installing pgbouncer with apt"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 && apt-get install -y -qq pgbouncer >&2
        systemctl disable --now pgbouncer >/dev/null 2>&1 || true
    else
        log "pgbouncer is not installed (apt-get install pgbouncer, or run as root)"; exit 1
    fi
fi
# PgBouncer in its stock configuration (only [databases], auth and pool_mode), in
# transaction pooling mode on 6432 and in session pooling mode on 6433.
start_bouncer() { # port mode
    local bport=$1 mode=$2 bdir="$WORK/pgbouncer-$2"
    if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$bport"; then
        log "starting pgbouncer ($mode pooling) on port $bport"
        mkdir -p "$bdir"
        printf '"%s" "%s"\n' "$PGUSER_" "$PGPASS_" > "$bdir/userlist.txt"
        cat > "$bdir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $bdir/userlist.txt
pool_mode = $mode
pidfile = $bdir/pgbouncer.pid
logfile = $bdir/pgbouncer.log
INI
        [[ $(id -u) -eq 0 ]] && chown -R postgres:postgres "$bdir" && chmod 600 "$bdir/userlist.txt"
        "${RUNAS[@]}" pgbouncer -d "$bdir/pgbouncer.ini" >&2
        for _ in $(seq 1 50); do "$BIN/pg_isready" -q -h 127.0.0.1 -p "$bport" && break; sleep 0.2; done
    fi
}
start_bouncer 6432 transaction
start_bouncer 6433 session
echo "export ECOMIND_TEST_PGBOUNCER_URL='postgres://$PGUSER_:$PGPASS_@127.0.0.1:6432/postgres'"
echo "export ECOMIND_TEST_PGBOUNCER_SESSION_URL='postgres://$PGUSER_:$PGPASS_@127.0.0.1:6433/postgres'"
