#!/usr/bin/env bash
# What trace export costs a hold (issue 25): two release instances of seatlock side by side on one
# private redis-server and one database of their own, one with no OTLP endpoint (the default) and
# one exporting to a collector that cannot be reached (a closed local port), measured in
# interleaved wrk rounds of random one-seat holds of a plain 100,000-seat event each. Prints the
# holds/s of every round and the median ratio (unreachable / none); bench/README.md has a run.
#
# Knobs: ROUNDS (4), DURATION (s per round and side, 5), CONNECTIONS (64), THREADS (2),
# PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
ROUNDS="${ROUNDS:-4}"
DURATION="${DURATION:-5}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
SEATS=100000
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432}"
DB="seatlock_bench_otlp_$$"
export BENCH_WRK_DIR="$ROOT/bench/wrk"
log() { printf '[otlp %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
for tool in wrk redis-server redis-cli psql curl python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "cargo build --release"
  cargo build --release --quiet --bin seatlock
fi
BIN="$ROOT/target/release/seatlock"

pids=()
tmp="$(mktemp -d)"
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  psql "$PG_ADMIN_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
  >"$tmp/redis.log" 2>&1 &
pids+=($!)
psql "$PG_ADMIN_URL/postgres" -qc "CREATE DATABASE $DB" >/dev/null
# A port nothing listens on: the collector that cannot be reached.
dead_port="$(free_port)"

# start NAME ENDPOINT -> prints the port
start() {
  local port; port="$(free_port)"
  DATABASE_URL="$PG_ADMIN_URL/$DB" REDIS_URL="redis://127.0.0.1:$redis_port" PORT="$port" \
    APP__REDIS__KEY_PREFIX="otlp-$1" APP__LOG__LEVEL=warn APP__HOLDS__TTL_SECONDS=300 \
    APP__TELEMETRY__OTLP__ENDPOINT="$2" "$BIN" >"$tmp/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && { echo "$port"; return; }
    sleep 0.1
  done
  die "seatlock ($1) did not start: $(tail -3 "$tmp/$1.log")"
}
event() {
  curl -sf -XPOST "http://127.0.0.1:$1/events" -H 'content-type: application/json' \
    -d "{\"name\":\"otlp\",\"date\":\"2030-01-10T18:00:00Z\",\"location\":\"bench\",\"totalSeats\":$SEATS}" \
    | sed -E 's/.*"eventId":([0-9]+).*/\1/'
}
port_none="$(start none "")"
port_dead="$(start dead "http://127.0.0.1:$dead_port")"
ev_none="$(event "$port_none")"
ev_dead="$(event "$port_dead")"
log "instances: none :$port_none (event $ev_none), unreachable collector :$port_dead (event $ev_dead)"

# round NAME PORT EVENT -> prints holds/s
round() {
  wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 5s \
    -s "$ROOT/bench/wrk/hold_random.lua" "http://127.0.0.1:$2" -- "$3" "$SEATS" >"$tmp/$1.txt" 2>&1 \
    || die "wrk $1: $(tail -3 "$tmp/$1.txt")"
  awk '/Requests\/sec/ {print $2}' "$tmp/$1.txt"
}
none=(); dead=()
for r in $(seq 1 "$ROUNDS"); do
  a="$(round "none-$r" "$port_none" "$ev_none")"
  b="$(round "dead-$r" "$port_dead" "$ev_dead")"
  none+=("$a"); dead+=("$b")
  log "round $r: no endpoint $a holds/s, unreachable collector $b holds/s"
done
dropped="$(curl -s "http://127.0.0.1:$port_dead/metrics" | awk '/^seatlock_otel_spans_dropped_total/ {print $2}')"
python3 - "${none[*]}" "${dead[*]}" "${dropped:-0}" <<'EOF'
import statistics, sys
none = [float(x) for x in sys.argv[1].split()]
dead = [float(x) for x in sys.argv[2].split()]
ratios = [d / n for n, d in zip(none, dead)]
print(f"no endpoint: median {statistics.median(none):,.0f} holds/s; "
      f"unreachable collector: median {statistics.median(dead):,.0f} holds/s; "
      f"ratio per round {', '.join(f'{r:.3f}' for r in ratios)}; "
      f"median ratio {statistics.median(ratios):.3f}; spans dropped {sys.argv[3]}")
EOF
