#!/usr/bin/env bash
# What the history and the webhooks cost (issue 22), in one run on one machine:
#   (a)   random-seat holds: holds/s, and Postgres transactions per hold (the history flush
#         writes in batches; a hold itself asks Postgres nothing)
#   (c0)  hold + confirm pairs, no webhook endpoint
#   (cw)  the same with one endpoint subscribed to every type, a fast local receiver
#         (examples/webhook_sink.rs): confirms/s against (c0), the oldest pending message
#         sampled every 0.5 s, and every message delivered exactly once at the end
# (c0) and (cw) run twice, interleaved (c0 cw c0 cw); medians. Prints a table (also
# bench/results/webhooks.md).
#
# Knobs: DURATION (s per round, 10), CONNECTIONS (64), THREADS (2), SEATS (100000),
# PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
SEATS="${SEATS:-100000}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432}"
DB="seatlock_bench_hooks_$$"
DB_URL="$PG_ADMIN_URL/$DB"
RAW="$ROOT/bench/results/raw-webhooks"
export BENCH_WRK_DIR="$ROOT/bench/wrk"
log() { printf '[webhooks %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
for tool in wrk redis-server redis-cli psql curl python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
PIDS=()
cleanup() {
  local rc=$?
  set +e
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  psql "$PG_ADMIN_URL/postgres" -Atqc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$RAW"
mkdir -p "$RAW"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "cargo build --release (seatlock, webhook_sink)"
  cargo build --release --quiet --bin seatlock --example webhook_sink
fi
REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --logfile "$RAW/redis.log" >/dev/null 2>&1 &
PIDS+=($!)
SINK_PORT="$(free_port)"
PORT="$SINK_PORT" target/release/examples/webhook_sink >"$RAW/sink.log" 2>&1 &
PIDS+=($!)
PORT_SL="$(free_port)"
env MIMALLOC_PURGE_DELAY=0 MIMALLOC_ARENA_EAGER_COMMIT=0 PORT="$PORT_SL" APP__SERVER__HOST=127.0.0.1 \
  DATABASE_URL="$DB_URL" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" APP__LOG__LEVEL=warn \
  APP__HOLDS__TTL_SECONDS=10 APP__EVENTS__MAX_SEATS="$SEATS" APP__DATABASE__MAX_CONNECTIONS=16 \
  APP__WEBHOOKS__ALLOW_PRIVATE_NETWORKS=true target/release/seatlock >"$RAW/seatlock.log" 2>&1 &
SL_PID=$!
PIDS+=("$SL_PID")
BASE="http://127.0.0.1:$PORT_SL"
for _ in $(seq 300); do curl -sf "$BASE/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$BASE/readyz" >/dev/null || die "seatlock did not start (see $RAW/seatlock.log)"
event() {
  curl -sf -XPOST "$BASE/events" -d "{\"name\":\"$1\",\"date\":\"2030-01-01T20:00:00Z\",\"location\":\"bench\",\"totalSeats\":$SEATS}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["eventId"])'
}
psql_db() { psql "$DB_URL" -Atqc "$1"; }
xacts() { psql_db "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"; }
# run NAME SCRIPT ARGS... -> requests/s, and the counters, from wrk's BENCHJSON line
run() {
  local name="$1" script="$2"
  shift 2
  wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 5s --latency \
    -s "bench/wrk/$script" "$BASE" -- "$@" >"$RAW/$name.txt" 2>&1 || die "wrk $name: $(tail -3 "$RAW/$name.txt")"
  grep '^BENCHJSON' "$RAW/$name.txt" | sed 's/^BENCHJSON //' >"$RAW/$name.json"
}
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))" "$RAW/$1.json" "$2"; }

log "(a) random-seat holds, ${DURATION}s"
EV_A="$(event bench-a)"
curl -sf -XPOST "$BASE/events/$EV_A/seats/reserve" -d '{"userId":"warm","seatCodes":["S1"]}' >/dev/null
sleep 1
X0="$(xacts)"
run a hold_random.lua "$EV_A" "$SEATS"
X1="$(xacts)"
HOLDS_A="$(field a 'requests - errors["status"]')"

rounds=()
for round in 1 2; do
  for kind in c0 cw; do
    ev="$(event "bench-$kind-$round")"
    ENDPOINT=""
    if [ "$kind" = cw ]; then
      ENDPOINT="$(curl -sf -XPOST "$BASE/webhooks" -d "{\"url\":\"http://127.0.0.1:$SINK_PORT/hooks\"}" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
      ( while true; do
          psql_db "SELECT COALESCE(extract(epoch FROM now() - min(created_at)), 0) FROM webhook_messages WHERE status = 'pending'" 2>/dev/null
          sleep 0.5
        done >"$RAW/oldest-$round.txt" ) &
      SAMPLER=$!
    fi
    log "($kind) hold + confirm pairs, round $round"
    run "$kind-$round" hold_confirm.lua "$ev" "$SEATS"
    if [ -n "$ENDPOINT" ]; then
      for _ in $(seq 100); do
        [ "$(psql_db "SELECT count(*) FROM webhook_messages WHERE status = 'pending'")" = 0 ] && break
        sleep 0.2
      done
      kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true
      psql_db "SELECT count(*) FROM webhook_messages WHERE endpoint_id = '$ENDPOINT'" >"$RAW/messages-$round.txt"
      psql_db "SELECT count(*) FROM webhook_messages WHERE endpoint_id = '$ENDPOINT' AND status <> 'delivered'" >"$RAW/undelivered-$round.txt"
      curl -sf -XDELETE "$BASE/webhooks/$ENDPOINT" >/dev/null
    fi
    rounds+=("$kind-$round")
  done
done
curl -sf "http://127.0.0.1:$SINK_PORT/count" >"$RAW/sink.json"

python3 - "$RAW" "$DURATION" "$HOLDS_A" "$X0" "$X1" <<'PY'
import json, statistics, sys
raw, duration, holds_a, x0, x1 = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def load(n): return json.load(open(f"{raw}/{n}.json"))
def rate(n, key): return load(n)["counters"].get(key, 0) / duration
a = load("a")
holds = holds_a / duration
c0 = [rate(f"c0-{r}", "confirmed") for r in (1, 2)]
cw = [rate(f"cw-{r}", "confirmed") for r in (1, 2)]
p99 = lambda n: load(n)["latency_us"]["p99"] / 1000
oldest = []
for r in (1, 2):
    vals = [float(v) for v in open(f"{raw}/oldest-{r}.txt").read().split() if v]
    oldest.append(max(vals) if vals else 0.0)
messages = sum(int(open(f"{raw}/messages-{r}.txt").read()) for r in (1, 2))
undelivered = sum(int(open(f"{raw}/undelivered-{r}.txt").read()) for r in (1, 2))
sink = json.load(open(f"{raw}/sink.json"))
m0, mw = statistics.median(c0), statistics.median(cw)
lines = [
    "| measure | value |",
    "|---|---|",
    f"| (a) random-seat holds/s | {holds:,.0f} (p99 {p99('a'):.1f} ms) |",
    f"| (a) Postgres transactions per hold (the flush's batches; a hold asks none) | {(x1 - x0 - 1) / max(holds_a, 1):.4f} ({x1 - x0 - 1} in {holds_a:,} holds) |",
    f"| (c0) confirms/s, no endpoint (rounds) | {m0:,.0f} ({', '.join(f'{v:,.0f}' for v in c0)}); p99 {p99('c0-1'):.1f} / {p99('c0-2'):.1f} ms |",
    f"| (cw) confirms/s, one endpoint subscribed (rounds) | {mw:,.0f} ({', '.join(f'{v:,.0f}' for v in cw)}); p99 {p99('cw-1'):.1f} / {p99('cw-2'):.1f} ms |",
    f"| (cw) / (c0) | {mw / m0:.3f}x |",
    f"| oldest pending message during (cw), max of samples every 0.5 s | {max(oldest):.2f} s ({', '.join(f'{v:.2f}' for v in oldest)}) |",
    f"| messages queued / not delivered at the end | {messages:,} / {undelivered} |",
    f"| the receiver got (requests / distinct webhook-ids) | {sink['requests']:,} / {sink['distinct']:,} |",
]
text = "\n".join(lines)
print(text)
open(f"{raw}/../webhooks.md", "w").write(text + "\n")
PY
