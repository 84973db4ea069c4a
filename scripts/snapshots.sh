#!/usr/bin/env bash
# `cargo xtask snapshots`: regenerate src/schema/snapshots/{postgres,sqlite}.json, the
# expected schema of every migration version, from the migrations themselves (the test
# schema_snapshots::snapshots_are_what_the_migrations_make migrates scratch databases to
# each version and introspects them), and add a new migration's lines to
# migration/checksums.txt. Needs PostgreSQL like scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export ECOMIND_TEST_DATABASE_URL="${ECOMIND_TEST_DATABASE_URL:-$(scripts/pg-up.sh)}"
export PATH="/usr/lib/postgresql/15/bin:$PATH"
ECOMIND_WRITE_SNAPSHOTS=1 cargo test -q --test cli \
    schema_snapshots::snapshots_are_what_the_migrations_make -- --exact
# A new migration's checksums (the lines of shipped migrations are never rewritten).
ECOMIND_WRITE_CHECKSUMS=1 cargo test -q --test cli \
    migration_integrity::shipped_migrations_are_never_edited -- --exact
git diff --stat -- src/schema/snapshots/ migration/checksums.txt >&2 || true
