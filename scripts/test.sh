#!/usr/bin/env bash
# Runs every test against real Postgres and Redis: the ones at DATABASE_URL / REDIS_URL if they
# answer, else throwaway local ones; then the API tests again against a local Redis Cluster.
# Then fuzzes the API from its OpenAPI document (schemathesis, token mode), drives the buyer
# page in chromium (scripts/browser-test.sh), checks the observability files against a live
# /metrics, and measures the hold path against the bare reference handler
# (scripts/ratio-smoke.sh: release builds, fails below its floor).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/services.sh
source scripts/services.sh
# sqlx::test creates one database per test through this URL's server.
ensure_postgres "${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ensure_redis "${REDIS_URL:-redis://127.0.0.1:6379}"
# The webhook tests verify signatures with the Standard Webhooks reference library too.
if ! .venv-webhooks/bin/python -c 'import standardwebhooks' 2>/dev/null; then
  echo "installing standardwebhooks into .venv-webhooks/"
  python3 -m venv .venv-webhooks
  .venv-webhooks/bin/pip install -q standardwebhooks==1.3.0
fi
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi
# The cluster pass: the API tests again against a Redis Cluster (3 masters + 3 replicas from
# scripts/redis-cluster.sh, on ports SEATLOCK_TEST_CLUSTER_PORT.. +5, default 7121), each test
# with three seatlock instances sharing it, requests spread over them. The tests that bring a
# Redis (or a cluster) of their own ran above already and are not repeated.
cluster_dir=target/redis-cluster-test
export REDIS_CLUSTER_PORT=${SEATLOCK_TEST_CLUSTER_PORT:-7121}
cluster_urls=$(scripts/redis-cluster.sh start "$cluster_dir")
trap 'scripts/redis-cluster.sh stop "$cluster_dir" || true' EXIT
echo "== cluster pass against $cluster_urls"
cluster_filter='binary(api) and not test(/^(faults|cluster|cluster_slots|redis_faults|architecture|settings|webhook_faults)::/)'
if cargo nextest --version >/dev/null 2>&1; then
  SEATLOCK_TEST_CLUSTER_URLS=$cluster_urls cargo nextest run --no-fail-fast -E "$cluster_filter"
else
  SEATLOCK_TEST_CLUSTER_URLS=$cluster_urls cargo test --no-fail-fast --test api -- \
    --skip faults:: --skip cluster:: --skip cluster_slots:: --skip redis_faults:: --skip architecture:: --skip settings:: --skip webhook_faults::
fi
scripts/redis-cluster.sh stop "$cluster_dir"
trap - EXIT
unset REDIS_CLUSTER_PORT
# schemathesis over the OpenAPI document, in token mode (scripts/fuzz.sh).
SEATLOCK_BIN=target/debug/seatlock scripts/fuzz.sh
# The buyer page in a real browser (Debian's chromium, Python playwright).
SEATLOCK_BIN=target/debug/seatlock scripts/browser-test.sh
for report in target/fault-suite-report.txt target/fault-suite-token-report.txt \
  target/fault-suite-cluster-report.txt target/cluster-failover-report.txt; do
  if [ -f "$report" ]; then
    echo "== fault-injection suite report ($report)"
    cat "$report"
  fi
done
if [ -x scripts/check-observability.sh ]; then
  SEATLOCK_BIN=target/debug/seatlock scripts/check-observability.sh
fi
# The hot path against a bare axum + one-script handler (release builds of both, about 30 s
# plus the release build): prints the ratios, fails when one falls below the floor.
scripts/ratio-smoke.sh
