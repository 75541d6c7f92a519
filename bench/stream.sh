#!/usr/bin/env bash
# Live seat map under load: SUBSCRIBERS (2000) streams of one event while a hold storm of HOLDS
# (1000) one-seat holds runs at RATE (200) per second; reports the lag from each hold to each
# subscriber seeing it (p50/p90/p99/max), and seatlock's memory (VmRSS at the end, VmHWM).
# Starts its own redis-server and seatlock (release) on free ports and a database of its own
# (dropped on exit). Results: bench/results/stream.json. Not part of the test run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
SUBSCRIBERS="${SUBSCRIBERS:-2000}"
HOLDS="${HOLDS:-1000}"
RATE="${RATE:-200}"
SEATS="${SEATS:-5000}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432}"
DB="seatlock_stream_bench_$$"
log() { printf '[stream-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  psql "$PG_ADMIN_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((SUBSCRIBERS * 2 + 200)) ] || { log "ulimit -n $(ulimit -n) is too low for $SUBSCRIBERS streams"; exit 1; }

[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --quiet --bin seatlock --example stream_load
redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
pids+=($!)
port="$(free_port)"
MIMALLOC_PURGE_DELAY="${MIMALLOC_PURGE_DELAY:-0}" MIMALLOC_ARENA_EAGER_COMMIT="${MIMALLOC_ARENA_EAGER_COMMIT:-0}" \
  PORT="$port" DATABASE_URL="$PG_ADMIN_URL/$DB" REDIS_URL="redis://127.0.0.1:$redis_port" \
  APP__LOG__LEVEL=warn APP__HOLDS__TTL_SECONDS=300 target/release/seatlock >"$ROOT/target/stream-bench.log" 2>&1 &
seatlock_pid=$!
pids+=("$seatlock_pid")
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
event="$(curl -fsS -XPOST "http://127.0.0.1:$port/events" \
  -d "{\"name\":\"stream bench\",\"date\":\"2030-01-10T18:00:00Z\",\"location\":\"bench\",\"totalSeats\":$SEATS}" \
  | sed -E 's/.*"eventId":([0-9]+).*/\1/')"
rss_before="$(awk '/VmRSS/ {print $2}' /proc/$seatlock_pid/status)"
log "event $event ($SEATS seats); $SUBSCRIBERS streams, then $HOLDS holds at $RATE/s"
result="$(target/release/examples/stream_load "127.0.0.1:$port" "$event" "$SEATS" "$SUBSCRIBERS" "$HOLDS" "$RATE")"
rss_after="$(awk '/VmRSS/ {print $2}' /proc/$seatlock_pid/status)"
hwm="$(awk '/VmHWM/ {print $2}' /proc/$seatlock_pid/status)"
mkdir -p bench/results
python3 - "$result" "$rss_before" "$rss_after" "$hwm" "$(nproc)" <<'PY' | tee bench/results/stream.json
import json, sys
r = json.loads(sys.argv[1])
r["seatlock_rss_kib"] = {"before_streams": int(sys.argv[2]), "end": int(sys.argv[3]), "peak": int(sys.argv[4])}
r["nproc"] = int(sys.argv[5])
r["p99_under_1s"] = r["lag_ms"]["p99"] < 1000
print(json.dumps(r, indent=2))
PY
