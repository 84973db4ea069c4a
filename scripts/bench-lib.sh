# Shared by the benchmark scripts (sourced, from the repository's root).
#   bench_pg: the release binary ($BIN), the PostgreSQL server of scripts/test.sh
#             ($ADMIN_URL, $base: its URL without the database), psql_admin SQL, and a
#             work directory ($WORK) removed at exit.
#   median N...: the median of the numbers (the mean of the middle two when even).

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

bench_pg() {
    ADMIN_URL="${ECOMIND_TEST_DATABASE_URL:-$(scripts/pg-up.sh)}"
    export PATH="/usr/lib/postgresql/15/bin:$PATH"
    cargo build --release -q
    BIN="${ECOMIND_BENCH_BIN:-$PWD/target/release/ecomind-admin}"
    base="${ADMIN_URL%/*}"
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
    psql_admin() { psql -X -q -tA -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "$1"; }
}
