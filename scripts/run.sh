#!/usr/bin/env bash
# Starts seatlock (release build) with a Postgres and a Redis: the ones at DATABASE_URL / REDIS_URL
# if they answer, else throwaway local ones. Extra arguments go to `cargo run`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/services.sh
source scripts/services.sh
# The service creates its database if missing, so reuse checks the server's maintenance database.
want_db="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/seatlock}"
ensure_postgres "${want_db%/*}/postgres"
export DATABASE_URL="${DATABASE_URL%/*}/${want_db##*/}"
ensure_redis "${REDIS_URL:-redis://127.0.0.1:6379}"
# The allocator settings the container image sets (docs/operating.md, "Memory"); the environment wins.
export MIMALLOC_PURGE_DELAY="${MIMALLOC_PURGE_DELAY:-0}"
export MIMALLOC_ARENA_EAGER_COMMIT="${MIMALLOC_ARENA_EAGER_COMMIT:-0}"
log "starting seatlock on port ${PORT:-8080} (DATABASE_URL=$DATABASE_URL REDIS_URL=$REDIS_URL)"
cargo run --release "$@"
