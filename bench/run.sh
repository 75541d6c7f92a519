#!/usr/bin/env bash
# seatlock benchmark: one command, ~15 minutes (~5 with SKIP_COSTS=1 SKIP_FRAGMENTED=1
# SKIP_CLUSTER=1). See bench/README.md.
#
# Builds seatlock (release), starts a private redis-server on a free port, creates a fresh
# database on the local Postgres, starts seatlock on a free port, then measures in one run:
#   ceilings   redis-benchmark EVAL (one SET NX PX per call); pgbench guarded-confirm transaction
#   (a)        wrk: random-seat holds in a big event
#   (ra) (rb)  wrk: (a) and (b) against examples/bench_reference.rs, a minimal axum + Redis
#              handler (JSON body parsed, one EVALSHA, JSON answer): the reference of (a) and (b)
#   (t)        wrk: (a) in token mode on a second instance
#   (g)        wrk: 1-unit holds of a general-admission tier (the tier twin of (a))
#   (m)        wrk: manual one-seat holds, each released again (hold -> release pairs)
#   (ba0/ba80) wrk: best-available holds of 2-4 seats on a house of rows of 100 seats, 0% and 80%
#              sold (the first 80% of the rows), each released again: the house stays as sold
#   (b)        wrk: hot-seat storm (same 2 seats, nearly all 409) + Postgres transactions per refusal
#   (c)        wrk: hold + confirm pairs
#   (cs)       wrk: cold start: FLUSHALL of the private Redis during a hot-seat storm on a
#              100,000-seat event (5xx, reads of the inventory from Postgres, max latency)
#   (a)-(c)    again in the Postgres-only mode (APP__HOLDS__BACKEND=postgres) if the binary
#              accepts it, else a pgbench SELECT ... FOR UPDATE reference, labelled as such
#   (s1/k1/k3/ks) bench/cluster.sh: holds/s across many events in cluster mode vs standalone,
#              three instances on a cluster, and the rebuild storm (FLUSHALL on every master);
#              SKIP_CLUSTER=1 leaves it out
#   costs      bench/costs.sh: the cost table, each feature against the reference (SKIP_COSTS=1)
#   fragmented bench/fragmented.sh: best-available 2 and 4 against manual holds on houses
#              80/90/95% taken the way an on-sale leaves them (SKIP_FRAGMENTED=1)
# and prints a table (also bench/results/latest.md and latest.json). Everything it started is
# stopped on exit, and its database dropped (KEEP_DB=1 keeps it).
#
# Knobs (environment): DURATION (s, per workload, default 15), CONNECTIONS (wrk, 64),
# THREADS (wrk, 2), PG_CLIENTS (pgbench -c, 16), PG_JOBS (pgbench -j, 2), TTL_SECONDS (hold TTL,
# 10), SEATS (seats of the big events, 100000), EVAL_REQUESTS (redis-benchmark -n, 200000),
# BENCH_DB (seatlock_bench), PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432),
# SKIP_BUILD (1 = use the existing target/release/seatlock), KEEP_DB (1 = do not drop BENCH_DB).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
BENCH="$ROOT/bench"

DURATION="${DURATION:-15}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
PG_CLIENTS="${PG_CLIENTS:-16}"
PG_JOBS="${PG_JOBS:-2}"
TTL_SECONDS="${TTL_SECONDS:-10}"
SEATS="${SEATS:-100000}"
STORM_SEATS=10
EVAL_REQUESTS="${EVAL_REQUESTS:-200000}"
BENCH_DB="${BENCH_DB:-seatlock_bench}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432}"
SKIP_BUILD="${SKIP_BUILD:-0}"
KEEP_DB="${KEEP_DB:-0}"
KEY_PREFIX="seatlock-bench-$$"
WARMUP=2
HEALTHZ_DURATION="${HEALTHZ_DURATION:-5}"

RESULTS="$BENCH/results"
RAW="$RESULTS/raw"
BIN="$ROOT/target/release/seatlock"
DB_URL="$PG_ADMIN_URL/$BENCH_DB"
# The Postgres-only mode instance gets a database of its own, so that its hold sweeps never
# count as Postgres work of the Redis-mode storm.
PG_MODE_DB="${BENCH_DB}_pgmode"
ADMIN_DB_URL="$PG_ADMIN_URL/postgres"
export BENCH_WRK_DIR="$BENCH/wrk"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

for tool in wrk pgbench redis-benchmark redis-server redis-cli psql curl python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (Debian: apt-get install wrk postgresql-client redis-server curl python3)"
done

# ------------------------------------------------------------------------------------------
# cleanup of everything started here

PIDS=()          # background processes to stop on exit (seatlock, redis-server, samplers)
DB_CREATED=0
cleanup() {
  local rc=$?
  set +e
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [ "$DB_CREATED" = 1 ] && [ "$KEEP_DB" != 1 ]; then
    for db in "$BENCH_DB" "$PG_MODE_DB"; do
      psql "$ADMIN_DB_URL" -Atqc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1
    done
  fi
  [ $rc -ne 0 ] && log "exit code $rc; raw outputs in $RAW"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$RAW"
mkdir -p "$RAW"

free_port() { python3 "$BENCH/report.py" free-port; }

# the process stays listed in PIDS; stop_pid stops one early
stop_pid() {
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# CPU use per command group over a phase: starts after the warm-up part, runs in background
# (window: from 2 s after the start to 2 s before the end of a DURATION-long phase)
cpu_sample() { # name [start window] (seconds)
  local secs=$(( DURATION > 6 ? DURATION - 4 : (DURATION > 2 ? DURATION - 2 : 1) ))
  local start=$(( DURATION > 6 ? 2 : 1 ))
  if [ $# -ge 3 ]; then start=$2; secs=$3; fi
  local labels=("seatlock (bench)=${SEATLOCK_PID:-0}" "redis-server (bench)=${REDIS_PID:-0}")
  [ -n "${PGMODE_PID:-}" ] && labels+=("seatlock PG-only mode (bench)=$PGMODE_PID")
  labels+=("pgdbs:$ADMIN_DB_URL=$BENCH_DB,$PG_MODE_DB")
  ( sleep "$start"; python3 "$BENCH/report.py" cpu "$secs" "$RAW/$1.cpu.json" "${labels[@]}" ) &
  PIDS+=($!)
}

# ------------------------------------------------------------------------------------------
# machine and run description

{
  echo "nproc=$(nproc)"
  echo "mem=$(free -h | awk '/^Mem:/ {print $2}')"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "kernel=$(uname -r)"
  echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RAW/machine.env"
{
  echo "DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "DURATION=$DURATION"
  echo "CONNECTIONS=$CONNECTIONS"
  echo "THREADS=$THREADS"
  echo "PG_CLIENTS=$PG_CLIENTS"
  echo "PG_JOBS=$PG_JOBS"
  echo "TTL_SECONDS=$TTL_SECONDS"
  echo "SEATS=$SEATS"
  echo "STORM_SEATS=$STORM_SEATS"
  echo "EVAL_REQUESTS=$EVAL_REQUESTS"
  echo "HEALTHZ_DURATION=$HEALTHZ_DURATION"
  echo "BENCH_DB=$BENCH_DB"
} >"$RAW/run.env"

# ------------------------------------------------------------------------------------------
# 1. build, redis, database, seatlock

if [ "$SKIP_BUILD" != 1 ]; then
  log "cargo build --release (and the reference handler)"
  cargo build --release --quiet --bin seatlock --example bench_reference 2>&1 | tail -20 >&2
fi
[ -x "$BIN" ] || die "no binary at $BIN"
REF_BIN="$ROOT/target/release/examples/bench_reference"
[ -x "$REF_BIN" ] || die "no reference handler at $REF_BIN (cargo build --release --example bench_reference)"

REDIS_PORT="$(free_port)"
log "redis-server on 127.0.0.1:$REDIS_PORT (private, no persistence)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --logfile "$RAW/redis.log" >/dev/null 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 50); do
  [ "$(redis-cli -p "$REDIS_PORT" PING 2>/dev/null)" = PONG ] && break
  sleep 0.1
done
[ "$(redis-cli -p "$REDIS_PORT" PING 2>/dev/null)" = PONG ] || die "redis-server did not start"
REDIS_URL_BENCH="redis://127.0.0.1:$REDIS_PORT"

psql "$ADMIN_DB_URL" -Atqc 'SELECT 1' >/dev/null || die "Postgres not reachable at $ADMIN_DB_URL"
log "fresh databases $BENCH_DB and $PG_MODE_DB"
for db in "$BENCH_DB" "$PG_MODE_DB"; do
  psql "$ADMIN_DB_URL" -Atqc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1
done
DB_CREATED=1   # seatlock creates them; dropped on exit

# start_seatlock PORT LOGFILE [extra env...]; sets SL_PID
start_seatlock() {
  local port="$1" logfile="$2"
  shift 2
  env MIMALLOC_PURGE_DELAY="${MIMALLOC_PURGE_DELAY:-0}" \
    MIMALLOC_ARENA_EAGER_COMMIT="${MIMALLOC_ARENA_EAGER_COMMIT:-0}" \
    PORT="$port" APP__SERVER__HOST=127.0.0.1 DATABASE_URL="$DB_URL" REDIS_URL="$REDIS_URL_BENCH" \
    APP__REDIS__KEY_PREFIX="$KEY_PREFIX" APP__LOG__LEVEL=warn APP__LOG__FORMAT=text \
    APP__HOLDS__TTL_SECONDS="$TTL_SECONDS" APP__EVENTS__MAX_SEATS="$SEATS" \
    APP__DATABASE__MAX_CONNECTIONS="${APP__DATABASE__MAX_CONNECTIONS:-16}" \
    APP__REDIS__POOL_SIZE="${APP__REDIS__POOL_SIZE:-8}" \
    "$@" "$BIN" >"$logfile" 2>&1 &
  SL_PID=$!
  PIDS+=("$SL_PID")
}

# wait_ready PORT PID SECONDS -> 0 when /readyz answers 200, 1 if the process died or timed out
wait_ready() {
  local port="$1" pid="$2" secs="$3"
  for _ in $(seq $((secs * 10))); do
    kill -0 "$pid" 2>/dev/null || return 1
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}

PORT_R="$(free_port)"
log "seatlock (Redis mode) on 127.0.0.1:$PORT_R"
start_seatlock "$PORT_R" "$RAW/seatlock.log"
SEATLOCK_PID=$SL_PID
wait_ready "$PORT_R" "$SEATLOCK_PID" 60 || { cat "$RAW/seatlock.log" >&2; die "seatlock did not become ready"; }
BASE="http://127.0.0.1:$PORT_R"

# create_event BASE SEATS NAME -> prints the event id
create_event() {
  local base="$1" n="$2" name="$3" body
  body="$(curl -sf -XPOST "$base/events" -H 'content-type: application/json' \
    -d "{\"name\":\"$name\",\"date\":\"2030-01-10T18:00:00Z\",\"location\":\"bench\",\"totalSeats\":$n}")" \
    || die "POST /events ($name, $n seats) failed"
  echo "$body" | sed -E 's/.*"eventId":([0-9]+).*/\1/'
}

# hold_status BASE EVENT SEAT USER -> HTTP status of one reserve
hold_status() {
  curl -s -o /dev/null -w '%{http_code}' -XPOST "$1/events/$2/seats/reserve" \
    -H 'content-type: application/json' -d "{\"userId\":\"$4\",\"seatCodes\":[\"$3\"]}"
}

# Postgres-side context of a phase: WAL volume (full-page images follow checkpoints), checkpoints,
# and what the bench databases' backends are doing half-way through (autovacuum, waits).
pg_wal() { # name tag
  psql "$ADMIN_DB_URL" -Atqc "SELECT '$2', w.wal_records, w.wal_fpi, w.wal_bytes,
      b.checkpoints_timed + b.checkpoints_req FROM pg_stat_wal w, pg_stat_bgwriter b" \
    >>"$RAW/$1.pgwal" 2>/dev/null || true
}
pg_activity_mid() { # name
  ( sleep $(( ${WRK_DURATION:-$DURATION} / 2 ))
    psql "$ADMIN_DB_URL" -Atqc "SELECT backend_type, coalesce(state, '-'), coalesce(wait_event_type, '-'),
        coalesce(wait_event, '-'), count(*) FROM pg_stat_activity
        WHERE datname IN ('$BENCH_DB', '$PG_MODE_DB') GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC" \
      >"$RAW/$1.pgactivity" 2>/dev/null || true ) &
  PIDS+=($!)
}

psql_db() { psql "$DB_URL" -v ON_ERROR_STOP=1 -Atq "$@"; }
xacts() {
  psql "$ADMIN_DB_URL" -Atqc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$BENCH_DB'"
}

# ------------------------------------------------------------------------------------------
# 4 (probe first). Postgres-only mode: does the binary accept APP__HOLDS__BACKEND=postgres?

PG_MODE=0
PORT_P="$(free_port)"
log "probing APP__HOLDS__BACKEND=postgres on 127.0.0.1:$PORT_P"
start_seatlock "$PORT_P" "$RAW/seatlock-pgmode.log" APP__HOLDS__BACKEND=postgres \
  APP__REDIS__KEY_PREFIX="$KEY_PREFIX-pgmode" DATABASE_URL="$PG_ADMIN_URL/$PG_MODE_DB"
PGMODE_PID=$SL_PID
if wait_ready "$PORT_P" "$PGMODE_PID" 20; then
  probe_event="$(create_event "http://127.0.0.1:$PORT_P" 10 probe)"
  st="$(hold_status "http://127.0.0.1:$PORT_P" "$probe_event" S1 probe)"
  if [ "$st" = 200 ] && kill -0 "$PGMODE_PID" 2>/dev/null; then
    PG_MODE=1
    PROBE="accepted: started and served a hold (200)"
  else
    PROBE="started but a hold answered $st; using the pgbench reference"
    stop_pid "$PGMODE_PID"
  fi
else
  why="$(grep -m1 -iE 'invalid|error|unknown' "$RAW/seatlock-pgmode.log" | cut -c1-200 || true)"
  PROBE="not available (${why:-did not become ready}); using the pgbench SELECT ... FOR UPDATE reference"
  stop_pid "$PGMODE_PID"
fi
log "Postgres-only mode: $PROBE"
echo "PG_MODE=$PG_MODE" >>"$RAW/run.env"
echo "PG_MODE_PROBE=$PROBE" >>"$RAW/run.env"

# ------------------------------------------------------------------------------------------
# events and caches

log "creating events (3 x $SEATS seats, 1 x $STORM_SEATS) and warming their Redis caches"
EV_A="$(create_event "$BASE" "$SEATS" bench-a-random)"
EV_B="$(create_event "$BASE" "$STORM_SEATS" bench-b-storm)"
EV_C="$(create_event "$BASE" "$SEATS" bench-c-pairs)"
EV_P="$(create_event "$BASE" "$SEATS" bench-pgbench-confirm)"
# One hold each builds the inventory cache (the only Postgres read of the hold path), on a seat
# no workload asks for first... S<last> of (a)/(c) is a random seat like any other, 1 in $SEATS.
for ev in "$EV_A" "$EV_C"; do
  st="$(hold_status "$BASE" "$ev" "S$SEATS" warm)"; [ "$st" = 200 ] || die "warm-up hold on event $ev: $st"
done
st="$(hold_status "$BASE" "$EV_B" "S$STORM_SEATS" warm)"; [ "$st" = 200 ] || die "warm-up hold on event $EV_B: $st"

if [ "$PG_MODE" = 1 ]; then
  BASE_P="http://127.0.0.1:$PORT_P"
  EV_PA="$(create_event "$BASE_P" "$SEATS" bench-pa-random)"
  EV_PB="$(create_event "$BASE_P" "$STORM_SEATS" bench-pb-storm)"
  EV_PC="$(create_event "$BASE_P" "$SEATS" bench-pc-pairs)"
else
  EV_RA="$(create_event "$BASE" "$SEATS" bench-ref-a-random)"
  EV_RB="$(create_event "$BASE" "$STORM_SEATS" bench-ref-b-storm)"
  EV_RC="$(create_event "$BASE" "$SEATS" bench-ref-c-pairs)"
  psql_db -f "$BENCH/sql/ref_schema.sql"
fi
# Fresh 100 000-row seat tables: set hint bits and statistics now rather than in autovacuum
# during a measurement.
psql_db -c "VACUUM ANALYZE" || log "VACUUM ANALYZE $BENCH_DB failed"
if [ "$PG_MODE" = 1 ]; then
  psql "$PG_ADMIN_URL/$PG_MODE_DB" -Atqc "VACUUM ANALYZE" || log "VACUUM ANALYZE $PG_MODE_DB failed"
fi
{
  echo "EV_A=$EV_A"; echo "EV_B=$EV_B"; echo "EV_C=$EV_C"; echo "EV_P=$EV_P"
} >>"$RAW/run.env"

# ------------------------------------------------------------------------------------------
# 2a. ceiling: redis-benchmark, one EVAL with a SET NX PX per call (own keys, own redis)

log "ceiling: redis-benchmark EVAL SET NX PX (-c $CONNECTIONS -n $EVAL_REQUESTS)"
cpu_sample ceiling_eval 1 2   # redis-benchmark runs -n requests, a few seconds
redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$CONNECTIONS" -n "$EVAL_REQUESTS" -r 100000 --csv \
  EVAL "return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', 300000)" 1 "bench-ceiling:__rand_int__" v \
  >"$RAW/ceiling_eval.csv" 2>"$RAW/ceiling_eval.err" || die "redis-benchmark failed: $(cat "$RAW/ceiling_eval.err")"
redis-cli -p "$REDIS_PORT" --scan --pattern 'bench-ceiling:*' 2>/dev/null | xargs -r -n 1000 redis-cli -p "$REDIS_PORT" UNLINK >/dev/null

# ------------------------------------------------------------------------------------------
# 3. workloads against seatlock (Redis mode)

metrics() { curl -sf "$1/metrics" >"$2" || true; }

# run_wrk NAME BASE SCRIPT ARGS...
run_wrk() {
  local name="$1" base="$2" script="$3"
  shift 3
  metrics "$base" "$RAW/$name.metrics.before"
  cpu_sample "$name"
  pg_wal "$name" before
  pg_activity_mid "$name"
  local t0; t0="$(date +%s.%N)"
  wrk -t "$THREADS" -c "$CONNECTIONS" -d "${WRK_DURATION:-$DURATION}s" --timeout 5s --latency \
    -s "$BENCH/wrk/$script" "$base" -- "$@" >"$RAW/$name.txt" 2>&1 || die "wrk $name failed: $(tail -5 "$RAW/$name.txt")"
  echo "$name $t0 $(date +%s.%N)" >>"$RAW/phases.txt"
  pg_wal "$name" after
  metrics "$base" "$RAW/$name.metrics.after"
  grep -q '^BENCHJSON' "$RAW/$name.txt" || die "wrk $name printed no result: $(tail -5 "$RAW/$name.txt")"
  kill -0 "$SEATLOCK_PID" 2>/dev/null || die "seatlock died during $name (see $RAW/seatlock.log)"
}

log "warm-up ${WARMUP}s"
wrk -t "$THREADS" -c "$CONNECTIONS" -d "${WARMUP}s" -s "$BENCH/wrk/storm.lua" "$BASE" -- "$EV_B" >/dev/null 2>&1 || true

log "(a) random-seat holds: $SEATS seats, ${DURATION}s, $CONNECTIONS connections"
run_wrk a "$BASE" hold_random.lua "$EV_A" "$SEATS"

# The reference handler, on the same Redis (own key prefix), right after (a) with the same
# script and knobs; it holds for 300 s, so its event is fresh (no seat is held before it runs).
PORT_REF="$(free_port)"
PORT="$PORT_REF" REDIS_URL="$REDIS_URL_BENCH" KEY_PREFIX="$KEY_PREFIX-ref" "$REF_BIN" \
  >"$RAW/reference.log" 2>&1 &
REF_PID=$!
PIDS+=("$REF_PID")
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_REF/healthz")" = 200 ] && break
  sleep 0.1
done
BASE_REF="http://127.0.0.1:$PORT_REF"
SEATLOCK_MAIN_PID=$SEATLOCK_PID
SEATLOCK_PID=$REF_PID   # run_wrk checks this one is alive
log "(ra) the reference handler: random-seat holds"
run_wrk ra "$BASE_REF" hold_random.lua 1 "$SEATS"
SEATLOCK_PID=$SEATLOCK_MAIN_PID

# (t): workload (a) again, right after it, on a second instance in token mode: every request
# carries a buyer's JWT (HS256, verified), the per-buyer caps are checked in hold.lua and the
# shared rate limit (one more Redis script per request) is on. Caps and rates are set high enough
# that they count every request without refusing it, so (t) over (a) is the cost of auth itself.
PORT_T="$(free_port)"
log "(t) token mode: seatlock on 127.0.0.1:$PORT_T"
TOKEN_SECRET="bench-secret-$(date +%s%N)-0123456789abcdefghijklmnop"
start_seatlock "$PORT_T" "$RAW/seatlock-token.log" APP__AUTH__MODE=token \
  APP__AUTH__JWT__HS256_SECRET="$TOKEN_SECRET" APP__REDIS__KEY_PREFIX="$KEY_PREFIX-token" \
  APP__LIMITS__MAX_SEATS_PER_USER=1000 APP__LIMITS__MAX_LIVE_HOLDS_PER_USER=1000 \
  APP__LIMITS__RATE__USER_PER_SECOND=100000 APP__LIMITS__RATE__USER_BURST=100000
TOKEN_PID=$SL_PID
wait_ready "$PORT_T" "$TOKEN_PID" 60 || { cat "$RAW/seatlock-token.log" >&2; die "token-mode seatlock did not become ready"; }
ADMIN_KEY="$(DATABASE_URL="$DB_URL" "$BIN" keys create --name "bench-admin-$$" --role admin 2>/dev/null)" \
  || die "could not create an admin key"
TOKENS_FILE="$RAW/tokens.txt"
SECRET="$TOKEN_SECRET" python3 - "$TOKENS_FILE" <<'PY'
import base64, hashlib, hmac, json, os, sys, time
b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
secret, exp = os.environ["SECRET"].encode(), int(time.time()) + 3600
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
with open(sys.argv[1], "w") as out:
    for i in range(10000):
        body = b64(json.dumps({"sub": f"u{i}", "exp": exp}).encode())
        sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        out.write(f"{head}.{body}.{b64(sig)}\n")
PY
BASE_T="http://127.0.0.1:$PORT_T"
EV_T="$(curl -sf -XPOST "$BASE_T/events" -H "Authorization: Bearer $ADMIN_KEY" \
  -d "{\"name\":\"bench-t\",\"date\":\"2030-01-10T18:00:00Z\",\"location\":\"bench\",\"totalSeats\":$SEATS}" \
  | sed -E 's/.*"eventId":([0-9]+).*/\1/')" || die "token-mode event"
SEATLOCK_MAIN_PID=$SEATLOCK_PID
SEATLOCK_PID=$TOKEN_PID
log "(t) random-seat holds in token mode (JWT, caps, shared rate limit)"
run_wrk t "$BASE_T" hold_token.lua "$EV_T" "$SEATS" "$TOKENS_FILE"
SEATLOCK_PID=$SEATLOCK_MAIN_PID
stop_pid "$TOKEN_PID"
echo "EV_T=$EV_T" >>"$RAW/run.env"

# (g): general admission, right after (a) on the same instance: 1 unit of a tier per hold.
EV_G="$(curl -sf -XPOST "$BASE/events" -H 'content-type: application/json' \
  -d '{"name":"bench-g-tier","date":"2030-01-10T18:00:00Z","location":"bench","tiers":[{"code":"GA","capacity":1000000}]}' \
  | sed -E 's/.*"eventId":([0-9]+).*/\1/')" || die "tier event"
st="$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$BASE/events/$EV_G/seats/reserve" \
  -H 'content-type: application/json' -d '{"userId":"warm","tiers":[{"code":"GA","quantity":1}]}')"
[ "$st" = 200 ] || die "warm-up tier hold on event $EV_G: $st"
log "(g) general-admission holds: 1 unit of a tier per request"
run_wrk g "$BASE" hold_tier.lua "$EV_G"
echo "EV_G=$EV_G" >>"$RAW/run.env"

# (m), (ba0), (ba80): best-available beside manual holds, on the same instance. Each hold is
# released by the next request of its wrk thread, so the house stays 0% / 80% sold for the run
# (without the releases it would be full within a second and the run would measure refusals).
BEST_ROWS=$(( SEATS / 100 ))
rows_json="$(python3 -c "import json; print(json.dumps([{'name': 'R%d-' % i, 'seats': 100} for i in range(1, $BEST_ROWS + 1)]))")"
# create_rows_event NAME -> prints the event id
create_rows_event() {
  curl -sf -XPOST "$BASE/events" -H 'content-type: application/json' \
    -d "{\"name\":\"$1\",\"date\":\"2030-01-10T18:00:00Z\",\"location\":\"bench\",\"rows\":$rows_json}" \
    | sed -E 's/.*"eventId":([0-9]+).*/\1/' || die "POST /events ($1, $BEST_ROWS rows of 100) failed"
}
EV_M="$(create_event "$BASE" "$SEATS" bench-m-manual)"
EV_BA0="$(create_rows_event bench-ba0)"
EV_BA80="$(create_rows_event bench-ba80)"
# 80% sold: one booking of the first 80% of the rows' seats, written before the cache is built.
psql_db -c "INSERT INTO bookings (event_id, booking_group_id, user_id, total_price_cents)
  VALUES ($EV_BA80, '00000000-0000-4000-8000-000000000080', 'bench-sold', 0)" >/dev/null
psql_db -c "INSERT INTO booking_seats (event_id, booking_group_id, seat_code, price_cents)
  SELECT event_id, '00000000-0000-4000-8000-000000000080', seat_code, 0 FROM seats
  WHERE event_id = $EV_BA80 AND position <= $(( SEATS * 8 / 10 ))" >/dev/null
psql_db -c "VACUUM ANALYZE seats, bookings, booking_seats" >/dev/null || true
st="$(hold_status "$BASE" "$EV_M" "S$SEATS" warm)"; [ "$st" = 200 ] || die "warm-up hold on event $EV_M: $st"
for ev in "$EV_BA0" "$EV_BA80"; do
  st="$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$BASE/events/$ev/seats/reserve" \
    -H 'content-type: application/json' -d '{"userId":"warm","bestAvailable":{"count":1}}')"
  [ "$st" = 200 ] || die "warm-up best-available hold on event $ev: $st"
done
log "(m) manual one-seat holds, each released"
run_wrk m "$BASE" hold_release.lua "$EV_M" "$SEATS"
log "(ba0) best-available holds of 2-4 seats, $BEST_ROWS rows of 100, 0% sold, each released"
run_wrk ba0 "$BASE" best.lua "$EV_BA0"
log "(ba80) best-available holds of 2-4 seats, 80% sold, each released"
run_wrk ba80 "$BASE" best.lua "$EV_BA80"
{ echo "EV_M=$EV_M"; echo "EV_BA0=$EV_BA0"; echo "EV_BA80=$EV_BA80"; } >>"$RAW/run.env"

log "(b) hot-seat storm on S1,S2 of a $STORM_SEATS-seat event"
# Postgres transactions of the bench database around the storm: the last Postgres activity of
# seatlock (cache builds) was > 10 s ago, so pg_stat_database has flushed it.
echo "before=$(xacts)" >"$RAW/b.pgstat"
run_wrk b "$BASE" storm.lua "$EV_B"
sleep 1.5
echo "after=$(xacts)" >>"$RAW/b.pgstat"
SEATLOCK_PID=$REF_PID
log "(rb) the reference handler: hot-seat storm"
run_wrk rb "$BASE_REF" storm.lua 2
SEATLOCK_PID=$SEATLOCK_MAIN_PID
stop_pid "$REF_PID"

log "reference: GET /healthz (HTTP stack only), ${HEALTHZ_DURATION}s"
DURATION=$HEALTHZ_DURATION WRK_DURATION=$HEALTHZ_DURATION run_wrk h "$BASE" healthz.lua

# ------------------------------------------------------------------------------------------
# 2b. ceiling: pgbench guarded confirm

# run_pgbench NAME SQLFILE VARS...
run_pgbench() {
  local name="$1" file="$2"
  shift 2
  local vars=()
  for v in "$@"; do vars+=(-D "$v"); done
  cpu_sample "$name"
  pg_wal "$name" before
  pg_activity_mid "$name"
  local t0; t0="$(date +%s.%N)"
  pgbench -n -M prepared -c "$PG_CLIENTS" -j "$PG_JOBS" -T "$DURATION" -f "$BENCH/sql/$file" \
    "${vars[@]}" -l --log-prefix="$RAW/$name.log" "$DB_URL" >"$RAW/$name.txt" 2>&1 \
    || die "pgbench $name failed: $(grep -v '^pgbench: client' "$RAW/$name.txt" | tail -5)"
  echo "$name $t0 $(date +%s.%N)" >>"$RAW/phases.txt"
  pg_wal "$name" after
}

log "ceiling: pgbench guarded confirm (-c $PG_CLIENTS -j $PG_JOBS -T $DURATION)"
run_pgbench ceiling_confirm confirm_ceiling.sql "event=$EV_P" "nseats=$SEATS"
{
  b="$(psql_db -c "SELECT count(*) FROM bookings WHERE event_id = $EV_P")"
  s="$(psql_db -c "SELECT count(*) FROM booking_seats WHERE event_id = $EV_P")"
  echo "bookings=$b"
  echo "seat_rows=$s"
  echo "collision_pct=$(python3 -c "print(f'{100*($b-$s)/max($b,1):.1f}')")"
} >"$RAW/ceiling_confirm.counts"

log "(c) hold + confirm pairs"
run_wrk c "$BASE" hold_confirm.lua "$EV_C" "$SEATS"

# (cs) cold start, last of the Redis-mode phases (it empties the private Redis): a hot-seat storm
# on a big event, FLUSHALL a third of the way in. The storm's requests all find the cache gone
# at once; the rebuild must happen once (one read of the inventory), with no 5xx.
EV_CS="$(create_event "$BASE" "$SEATS" bench-cs-cold)"
st="$(hold_status "$BASE" "$EV_CS" "S$SEATS" warm)"; [ "$st" = 200 ] || die "warm-up hold on event $EV_CS: $st"
log "(cs) cold start: FLUSHALL during a hot-seat storm on a $SEATS-seat event"
# cs.flushall: the time before the FLUSHALL, its reply, the time after (the report shows how
# long Redis itself was blocked by the flush, beside the storm's slowest answer).
( sleep $(( DURATION / 3 )); date +%s.%N >"$RAW/cs.flushall"; redis-cli -p "$REDIS_PORT" FLUSHALL >>"$RAW/cs.flushall" 2>&1; date +%s.%N >>"$RAW/cs.flushall" ) &
run_wrk cs "$BASE" storm.lua "$EV_CS"
echo "EV_CS=$EV_CS" >>"$RAW/run.env"

# ------------------------------------------------------------------------------------------
# 4. the same workloads in the Postgres-only mode (or its reference)

if [ "$PG_MODE" = 1 ]; then
  for ev in "$EV_PA" "$EV_PC"; do hold_status "$BASE_P" "$ev" "S$SEATS" warm >/dev/null; done
  SEATLOCK_MAIN_PID=$SEATLOCK_PID
  SEATLOCK_PID=$PGMODE_PID   # run_wrk checks this one is alive
  log "(a) Postgres-only mode"
  run_wrk pa "$BASE_P" hold_random.lua "$EV_PA" "$SEATS"
  log "(b) Postgres-only mode"
  pg_mode_xacts() {
    psql "$ADMIN_DB_URL" -Atqc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$PG_MODE_DB'"
  }
  echo "before=$(pg_mode_xacts)" >"$RAW/pb.pgstat"
  run_wrk pb "$BASE_P" storm.lua "$EV_PB"
  sleep 1.5
  echo "after=$(pg_mode_xacts)" >>"$RAW/pb.pgstat"
  log "(c) Postgres-only mode"
  run_wrk pc "$BASE_P" hold_confirm.lua "$EV_PC" "$SEATS"
  SEATLOCK_PID=$SEATLOCK_MAIN_PID
else
  log "(a) Postgres-only reference (pgbench SELECT ... FOR UPDATE)"
  run_pgbench ref_a ref_hold_random.sql "event=$EV_RA" "nseats=$SEATS" "ttl=$TTL_SECONDS"
  log "(b) Postgres-only reference"
  run_pgbench ref_b ref_storm.sql "event=$EV_RB" "ttl=$TTL_SECONDS"
  log "(c) Postgres-only reference"
  run_pgbench ref_c ref_hold_confirm.sql "event=$EV_RC" "nseats=$SEATS" "ttl=$TTL_SECONDS"
  echo "bookings=$(psql_db -c "SELECT count(*) FROM bookings WHERE event_id = $EV_RC")" >"$RAW/ref_c.counts"
fi

# ------------------------------------------------------------------------------------------
# 5. RSS, report

vmhwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
{
  echo "seatlock_vmhwm_kib=$(vmhwm "$SEATLOCK_PID")"
  echo "redis_vmhwm_kib=$(vmhwm "$REDIS_PID")"
  [ "$PG_MODE" = 1 ] && echo "seatlock_pgmode_vmhwm_kib=$(vmhwm "$PGMODE_PID")"
  echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RAW/rss.env"

python3 "$BENCH/report.py" report "$RAW" "$RESULTS"

# ------------------------------------------------------------------------------------------
# 6. Redis Cluster: cluster mode vs standalone, the rebuild storm (bench/cluster.sh, its own
# Redis, cluster, database and instances; the ones above are stopped first).
cleanup_main() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done; }
if [ "${SKIP_CLUSTER:-0}" != 1 ]; then
  cleanup_main
  PIDS=()
  log "Redis Cluster phases (bench/cluster.sh)"
  if SKIP_BUILD=1 BIN="$BIN" OUT="$RESULTS" DURATION="${CLUSTER_DURATION:-5}" \
      CONNECTIONS="$CONNECTIONS" THREADS="$THREADS" TTL_SECONDS="$TTL_SECONDS" \
      PG_ADMIN_URL="$PG_ADMIN_URL" bash "$BENCH/cluster.sh"; then
    { echo; cat "$RESULTS/cluster.md"; } >>"$RESULTS/latest.md"
  else
    log "the cluster phases failed (see above); latest.md has no cluster table"
  fi
fi
# ------------------------------------------------------------------------------------------
# 7. The cost table (bench/costs.sh: every feature against the bare reference in one run) and
# best-available on fragmented houses (bench/fragmented.sh); each with its own Redis, database
# and instances. SKIP_COSTS=1 / SKIP_FRAGMENTED=1 leave them out.
# extra_phase SCRIPT TITLE TABLE: bench/SCRIPT alone (the instances above stopped first), its
# TABLE (in $RESULTS) appended to latest.md under TITLE
extra_phase() {
  local script="$1" title="$2" table="$3"
  cleanup_main
  PIDS=()
  log "$title (bench/$script)"
  if SKIP_BUILD=1 BIN="$BIN" CONNECTIONS="$CONNECTIONS" THREADS="$THREADS" \
      PG_ADMIN_URL="$PG_ADMIN_URL" bash "$BENCH/$script"; then
    { echo; echo "### $title (bench/$script)"; echo; cat "$RESULTS/$table"; } >>"$RESULTS/latest.md"
  else
    log "$title failed (see above)"
  fi
}
[ "${SKIP_COSTS:-0}" = 1 ] || extra_phase costs.sh "The cost table" costs.md
[ "${SKIP_FRAGMENTED:-0}" = 1 ] || extra_phase fragmented.sh "Best-available on fragmented houses" fragmented.md
log "written $RESULTS/latest.md and $RESULTS/latest.json (raw outputs in $RAW)"
