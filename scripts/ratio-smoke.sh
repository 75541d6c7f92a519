#!/usr/bin/env bash
# Ratio smoke: seatlock's hold path against the bare reference handler
# (examples/bench_reference.rs: axum, the JSON body, one EVALSHA, a JSON answer), both release
# builds started here, each on a redis-server of its own. Interleaved rounds of wrk on each side:
# one-seat holds of random seats of a plain numbered event (100,000 seats, none mode), and
# hot-seat refusals. A workload's ratio is the median over the rounds of the reference's CPU per
# request (server + its Redis + wrk) over seatlock's: the throughput ratio of a quiet two-core
# machine, measured so that other load on the machine does not move it (scripts/ratio_smoke.py).
# Prints the ratios every run and fails when one is below its floor, so a change that halves the
# hot path fails the test run. Why release builds, why CPU time and why these floors:
# bench/README.md, "The ratio smoke".
#
# Knobs: RATIO_SMOKE_FLOORS (holds=0.20,refusals=0.25), RATIO_SMOKE_ROUNDS (5),
# RATIO_SMOKE_SECONDS (1 per side, workload and round), RATIO_SMOKE_CONNECTIONS (64),
# RATIO_SMOKE_KEEP (a file to copy the per-run numbers to). DATABASE_URL names the Postgres
# server: a database of the smoke's own is created there and dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/services.sh
source scripts/services.sh

FLOORS="${RATIO_SMOKE_FLOORS:-holds=0.20,refusals=0.25}"
ROUNDS="${RATIO_SMOKE_ROUNDS:-5}"
RUN_SECONDS="${RATIO_SMOKE_SECONDS:-1}"
CONNECTIONS="${RATIO_SMOKE_CONNECTIONS:-64}"
SEATS=100000
STORM_SEATS=10
export BENCH_WRK_DIR="$PWD/bench/wrk"
RUNS="$SEATLOCK_TMP/ratio-smoke-runs.txt"
: >"$RUNS"

die() { log "ratio smoke FAILED: $*"; exit 1; }
for tool in wrk redis-server redis-cli psql curl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (Debian: apt-get install wrk redis-server postgresql-client curl)"
done

build_started=$SECONDS
cargo build --release --quiet --bin seatlock --example bench_reference
build_secs=$((SECONDS - build_started))
started=$SECONDS

ensure_postgres "${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ADMIN_URL="$DATABASE_URL"
SMOKE_DB="seatlock_ratio_smoke_$$"
drop_db() { psql "$ADMIN_URL" -Atqc "DROP DATABASE IF EXISTS \"$SMOKE_DB\" WITH (FORCE)" >/dev/null 2>&1; }
# stop PID: TERM, then KILL after 2 s. Nothing of these processes is kept (seatlock's database is
# dropped next), and seatlock's shutdown waits for its history flush, which after the smoke's
# 100,000-odd holds and their expiries takes longer than that.
stop() {
  local _
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 20); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
# services.sh runs these on exit, in order: the processes started below are put in front.
_seatlock_cleanups+=(drop_db)

# One redis-server per side, so that each side's Redis CPU is its own (seatlock's includes the
# expiry of its holds).
# start_redis NAME: starts a private redis-server; sets redis_pid and redis_url
start_redis() {
  local port _
  port="$(free_port)"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --logfile "$SEATLOCK_TMP/ratio-redis-$1.log" >/dev/null 2>&1 &
  redis_pid=$!
  _seatlock_cleanups=("stop $redis_pid" "${_seatlock_cleanups[@]}")
  redis_url="redis://127.0.0.1:$port"
  for _ in $(seq 50); do
    [ "$(redis-cli -p "$port" PING 2>/dev/null)" = PONG ] && return 0
    sleep 0.1
  done
  die "redis-server did not start (see $SEATLOCK_TMP/ratio-redis-$1.log)"
}
start_redis seatlock
sl_redis_pid=$redis_pid
sl_redis_url=$redis_url
start_redis reference
ref_redis_pid=$redis_pid
ref_redis_url=$redis_url

# wait_for URL PID: 0 once URL answers 200 (within 60 s), 1 if PID died or the time ran out
wait_for() {
  local _
  for _ in $(seq 600); do
    kill -0 "$2" 2>/dev/null || return 1
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}

sl_port="$(free_port)"
env MIMALLOC_PURGE_DELAY=0 MIMALLOC_ARENA_EAGER_COMMIT=0 \
  PORT="$sl_port" APP__SERVER__HOST=127.0.0.1 APP__AUTH__MODE=none \
  DATABASE_URL="${DATABASE_URL%/*}/$SMOKE_DB" REDIS_URL="$sl_redis_url" \
  APP__LOG__LEVEL=warn APP__LOG__FORMAT=text APP__HOLDS__TTL_SECONDS=1 \
  target/release/seatlock >"$SEATLOCK_TMP/ratio-seatlock.log" 2>&1 &
sl_pid=$!
_seatlock_cleanups=("stop $sl_pid" "${_seatlock_cleanups[@]}")
ref_port="$(free_port)"
PORT="$ref_port" REDIS_URL="$ref_redis_url" \
  target/release/examples/bench_reference >"$SEATLOCK_TMP/ratio-reference.log" 2>&1 &
ref_pid=$!
_seatlock_cleanups=("stop $ref_pid" "${_seatlock_cleanups[@]}")
SL="http://127.0.0.1:$sl_port"
REF="http://127.0.0.1:$ref_port"
if ! wait_for "$SL/readyz" "$sl_pid"; then
  cat "$SEATLOCK_TMP/ratio-seatlock.log" >&2
  die "seatlock did not become ready"
fi
if ! wait_for "$REF/healthz" "$ref_pid"; then
  cat "$SEATLOCK_TMP/ratio-reference.log" >&2
  die "the reference handler did not start"
fi

# create_event SEATS -> the id of a new plain numbered event (seats S1..Sn)
create_event() {
  curl -sf -XPOST "$SL/events" -H 'content-type: application/json' \
    -d "{\"name\":\"ratio smoke\",\"date\":\"2030-01-10T18:00:00Z\",\"location\":\"smoke\",\"totalSeats\":$1}" \
    | sed -E 's/.*"eventId":([0-9]+).*/\1/'
}
# The random holds of a round go to an event that no hold has touched for several seconds (two
# events take turns; holds last 1 s), so nearly every hold is taken on both sides whatever the
# rate (a fuller event would answer more cheap 409s the faster a side runs). The reference takes
# any event id: a new one per round.
EV_HOLDS=()
for _ in 1 2; do EV_HOLDS+=("$(create_event "$SEATS")") || die "POST /events failed"; done
EV_STORM="$(create_event "$STORM_SEATS")" || die "POST /events failed"
# The first hold of an event builds its Redis cache.
for ev in "${EV_HOLDS[@]}" "$EV_STORM"; do
  st="$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$SL/events/$ev/seats/reserve" \
    -H 'content-type: application/json' -d "{\"userId\":\"smoke\",\"seatCodes\":[\"S$STORM_SEATS\"]}")"
  [ "$st" = 200 ] || die "the warm-up hold on event $ev answered $st"
done

TICK_US=$((1000000 / $(getconf CLK_TCK)))
# cpu_us PID: the CPU time the process has used, in µs
cpu_us() {
  awk -v t="$TICK_US" '{ print ($14 + $15) * t }' "/proc/$1/stat"
}
# answers CLASS: seatlock's answers of that status class (2xx, 5xx) so far
answers() {
  curl -sf "$SL/metrics" \
    | awk -v c="status=\"$1\"" '/^seatlock_http_requests_total\{/ && index($0, c) { n += $NF } END { print n + 0 }'
}

# run ROUND WORKLOAD SIDE SECONDS: one wrk run; appends "round workload side requests duration-µs
# server-CPU-µs Redis-CPU-µs wrk-CPU-µs" to RUNS
run() {
  local round="$1" workload="$2" side="$3" secs="$4" base pid redis script out server0 redis0 result wrk_cpu
  local args=()
  if [ "$side" = seatlock ]; then
    base="$SL"; pid="$sl_pid"; redis="$sl_redis_pid"
  else
    base="$REF"; pid="$ref_pid"; redis="$ref_redis_pid"
  fi
  case "$workload $side" in
    "holds seatlock") script=hold_random.lua; args=("${EV_HOLDS[$((round % 2))]}" "$SEATS") ;;
    "holds reference") script=hold_random.lua; args=("$((1000 + round))" "$SEATS") ;;
    "refusals seatlock") script=storm.lua; args=("$EV_STORM") ;;
    "refusals reference") script=storm.lua; args=(1) ;;
  esac
  server0="$(cpu_us "$pid")"
  redis0="$(cpu_us "$redis")"
  # bash's time keyword reports wrk's own CPU (user and system seconds)
  out="$( { TIMEFORMAT='WRKCPU %3U %3S'; time wrk -t 2 -c "$CONNECTIONS" -d "${secs}s" --timeout 5s \
    -s "bench/wrk/$script" "$base" -- "${args[@]}" 2>&1; } 2>&1)" || die "wrk $workload against $side failed: $out"
  result="$(sed -nE 's/^BENCHJSON \{"requests":([0-9]+),"duration_us":([0-9]+),.*/\1 \2/p' <<<"$out")"
  wrk_cpu="$(awk '/^WRKCPU/ { printf "%.0f", ($2 + $3) * 1e6 }' <<<"$out")"
  if [ -z "$result" ] || [ -z "$wrk_cpu" ]; then die "wrk $workload against $side printed no result: $out"; fi
  echo "$round $workload $side $result $(($(cpu_us "$pid") - server0))" \
    "$(($(cpu_us "$redis") - redis0)) $wrk_cpu" >>"$RUNS"
  kill -0 "$sl_pid" 2>/dev/null || die "seatlock died (log: $(tail -5 "$SEATLOCK_TMP/ratio-seatlock.log"))"
}

# rounds FIRST LAST WORKLOAD...: interleaved rounds; the side that goes first alternates, so
# neither always gets the fresher machine
rounds() {
  local first="$1" last="$2" round workload side sides
  shift 2
  for round in $(seq "$first" "$last"); do
    if [ $((round % 2)) = 1 ]; then sides=(seatlock reference); else sides=(reference seatlock); fi
    for workload in "$@"; do
      for side in "${sides[@]}"; do run "$round" "$workload" "$side" "$RUN_SECONDS"; done
    done
  done
}

# A second of each workload on each side first: connections, caches, page faults.
for workload in holds refusals; do
  for side in seatlock reference; do run 0 "$workload" "$side" 1; done
done
: >"$RUNS"
taken_before="$(answers 2xx)"
errors_before="$(answers 5xx)"
rounds 1 "$ROUNDS" holds refusals
# A workload below its floor is measured again as many rounds, and judged on all of its rounds:
# a halved hot path stays below, a burst of someone else's load on the machine does not.
again="$(python3 scripts/ratio_smoke.py "$RUNS" "$FLOORS" --below)"
if [ -n "$again" ]; then
  log "ratio smoke: $again below its floor after $ROUNDS rounds; $ROUNDS more rounds"
  read -r -a again_workloads <<<"$again"
  rounds $((ROUNDS + 1)) $((ROUNDS * 2)) "${again_workloads[@]}"
fi
taken=$(($(answers 2xx) - taken_before))
errors=$(($(answers 5xx) - errors_before))
if [ -n "${RATIO_SMOKE_KEEP:-}" ]; then cp "$RUNS" "$RATIO_SMOKE_KEEP"; fi
note="release builds, ${RUN_SECONDS} s rounds, $((SECONDS - started)) s (+ ${build_secs} s build)"
python3 scripts/ratio_smoke.py "$RUNS" "$FLOORS" "$taken" "$errors" "$note"
