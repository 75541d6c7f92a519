#!/usr/bin/env bash
# What trace export costs a hold (issue 25): two release instances of seatlock side by side on one
# private redis-server and one database of their own, one with no OTLP endpoint (the default) and
# one exporting to a collector that cannot be reached (a closed local port), measured in
# interleaved wrk rounds of random one-seat holds of a plain 100,000-seat event each. Prints the
# holds/s of every round and the median ratio (unreachable / none); bench/README.md has a run.
#
# Knobs: AA=1 (both instances without an endpoint: the noise floor), ROUNDS (4), DURATION (s per round and side, 5), CONNECTIONS (64), THREADS (2),
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

# start NAME ENDPOINT: sets port and pid (not in a subshell, so that cleanup stops it)
start() {
  port="$(free_port)"
  DATABASE_URL="$PG_ADMIN_URL/$DB" REDIS_URL="redis://127.0.0.1:$redis_port" PORT="$port" \
    APP__REDIS__KEY_PREFIX="otlp-$1" APP__LOG__LEVEL=warn APP__HOLDS__TTL_SECONDS=300 \
    APP__TELEMETRY__OTLP__ENDPOINT="$2" "$BIN" >"$tmp/$1.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return
    sleep 0.1
  done
  die "seatlock ($1) did not start: $(tail -3 "$tmp/$1.log")"
}
event() {
  curl -sf -XPOST "http://127.0.0.1:$1/events" -H 'content-type: application/json' \
    -d "{\"name\":\"otlp\",\"date\":\"2030-01-10T18:00:00Z\",\"location\":\"bench\",\"totalSeats\":$SEATS}" \
    | sed -E 's/.*"eventId":([0-9]+).*/\1/'
}
start none ""
port_none=$port pid_none=$pid
# AA=1: the second instance has no endpoint either (an A/A run: the noise floor of the ratio)
if [ "${AA:-0}" = 1 ]; then start dead ""; else start dead "http://127.0.0.1:$dead_port"; fi
port_dead=$port pid_dead=$pid
TICK_US=$((1000000 / $(getconf CLK_TCK)))
cpu_us() { awk -v t="$TICK_US" '{ print ($14 + $15) * t }' "/proc/$1/stat"; }
log "instances: none :$port_none, unreachable collector :$port_dead"

# round NAME PORT EVENT PID -> prints "holds/s CPU-us-per-request" (the instance's own CPU)
round() {
  local cpu0; cpu0="$(cpu_us "$4")"
  wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 5s \
    -s "$ROOT/bench/wrk/hold_random.lua" "http://127.0.0.1:$2" -- "$3" "$SEATS" >"$tmp/$1.txt" 2>&1 \
    || die "wrk $1: $(tail -3 "$tmp/$1.txt")"
  local cpu=$(( $(cpu_us "$4") - cpu0 ))
  awk -v cpu="$cpu" '/requests in/ {n = $1} /Requests\/sec/ {r = $2} END {printf "%s %.1f\n", r, cpu / n}' "$tmp/$1.txt"
}
# Every round holds seats of fresh events (holds last 300 s: a reused event would answer more
# 409s each round), and the side that goes first alternates.
none=(); dead=(); cpu_none=(); cpu_dead=()
for r in $(seq 1 "$ROUNDS"); do
  ev_none="$(event "$port_none")"
  ev_dead="$(event "$port_dead")"
  if [ $((r % 2)) = 1 ]; then
    a="$(round "none-$r" "$port_none" "$ev_none" "$pid_none")"
    b="$(round "dead-$r" "$port_dead" "$ev_dead" "$pid_dead")"
  else
    b="$(round "dead-$r" "$port_dead" "$ev_dead" "$pid_dead")"
    a="$(round "none-$r" "$port_none" "$ev_none" "$pid_none")"
  fi
  none+=("${a% *}"); dead+=("${b% *}"); cpu_none+=("${a#* }"); cpu_dead+=("${b#* }")
  log "round $r: no endpoint ${a% *} holds/s (${a#* } us CPU each), unreachable collector ${b% *} holds/s (${b#* } us)"
done
metrics_dead="$(curl -s "http://127.0.0.1:$port_dead/metrics")"
dropped="$(awk '/^seatlock_otel_spans_dropped_total/ {print $2}' <<<"$metrics_dead")"
failures="$(awk '/^seatlock_otel_export_failures_total/ {print $2}' <<<"$metrics_dead")"
log "the unreachable side: $failures failed exports (each pauses span making: 1 s doubling to 30 s)"
python3 - "${none[*]}" "${dead[*]}" "${dropped:-0}" "${cpu_none[*]}" "${cpu_dead[*]}" <<'EOF'
import statistics, sys
none = [float(x) for x in sys.argv[1].split()]
dead = [float(x) for x in sys.argv[2].split()]
cnone = [float(x) for x in sys.argv[4].split()]
cdead = [float(x) for x in sys.argv[5].split()]
ratios = [d / n for n, d in zip(none, dead)]
cratios = [n / d for n, d in zip(cnone, cdead)]
print(f"no endpoint: median {statistics.median(none):,.0f} holds/s; "
      f"unreachable collector: median {statistics.median(dead):,.0f} holds/s; "
      f"ratio per round {', '.join(f'{r:.3f}' for r in ratios)}; "
      f"median ratio {statistics.median(ratios):.3f}; spans dropped {sys.argv[3]}")
print(f"seatlock CPU per hold: no endpoint median {statistics.median(cnone):.1f} us, "
      f"unreachable collector {statistics.median(cdead):.1f} us; "
      f"ratio (none / unreachable) per round {', '.join(f'{r:.3f}' for r in cratios)}; "
      f"median {statistics.median(cratios):.3f} (the throughput ratio of a quiet machine, "
      f"less the shared Redis)")
EOF
