#!/usr/bin/env bash
# Regenerate src/schema/snapshots/{postgres,sqlite}.json, the expected schema of every
# migration version, from the migrations themselves: the test
# schema_snapshots::snapshots_are_what_the_migrations_make migrates scratch databases to
# each version and introspects them. Needs PostgreSQL like scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export ECOMIND_TEST_DATABASE_URL="${ECOMIND_TEST_DATABASE_URL:-$(scripts/pg-up.sh)}"
export PATH="/usr/lib/postgresql/15/bin:$PATH"
ECOMIND_WRITE_SNAPSHOTS=1 cargo test -q --test cli \
    schema_snapshots::snapshots_are_what_the_migrations_make -- --exact
git diff --stat -- src/schema/snapshots/ >&2 || true
