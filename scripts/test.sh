#!/usr/bin/env bash
# Runs every test against real Postgres and Redis: the ones at DATABASE_URL / REDIS_URL if they
# answer, else throwaway local ones. Then fuzzes the API from its OpenAPI document (schemathesis,
# token mode), drives the buyer page in chromium (scripts/browser-test.sh) and checks the
# observability files against a live /metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/services.sh
source scripts/services.sh
# sqlx::test creates one database per test through this URL's server.
ensure_postgres "${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ensure_redis "${REDIS_URL:-redis://127.0.0.1:6379}"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi
# schemathesis over the OpenAPI document, in token mode (scripts/fuzz.sh).
SEATLOCK_BIN=target/debug/seatlock scripts/fuzz.sh
# The buyer page in a real browser (Debian's chromium, Python playwright).
SEATLOCK_BIN=target/debug/seatlock scripts/browser-test.sh
for report in target/fault-suite-report.txt target/fault-suite-token-report.txt; do
  if [ -f "$report" ]; then
    echo "== fault-injection suite report ($report)"
    cat "$report"
  fi
done
if [ -x scripts/check-observability.sh ]; then
  SEATLOCK_BIN=target/debug/seatlock scripts/check-observability.sh
fi
