#!/usr/bin/env bash
# The cost table (issue 24): what each feature costs a hold, as holds/s and p99 against the bare
# reference (examples/bench_reference.rs: axum + one EVALSHA) measured in the same run.
# Run alone (`bash bench/costs.sh`, ~6 minutes with the defaults) or as the last phase of
# bench/run.sh. Writes bench/results/costs.md (the table kept in bench/README.md) and
# bench/results/costs.json. Besides holds/s and p99, each row has the CPU one request cost its
# process, Redis and Postgres (all its processes) (utime + stime from /proc, over the measured
# run, divided by its requests).
#
# One private redis-server, one fresh database, and these release-built processes on it:
#   ref   the reference handler
#   floor the reference's handler with the contract's floor script (REFERENCE=floor)
#   n     seatlock, none mode, defaults but history.enabled = false (every instance below too,
#         but h: the history is a row of its own)
#   h     seatlock, none mode, defaults (history on; webhooks to loopback allowed)
#   caps  n + per-buyer caps (max seats and live holds per buyer, high enough to refuse nothing)
#   rate  n + the per-buyer rate limit (high enough to refuse nothing)
#   tok   token mode: a service key (the body names the buyer), and buyers' JWTs
#   all   token mode with caps and the rate limit (the issue's ">= 0.6x" row)
#   adm   token mode with admission (jwt), each request with its buyer's admission token
# Rows (each on a fresh event in every round; every request holds 1 random seat, or 1 tier
# unit, of a 100,000-seat event for a random buyer; 3 rounds in a shuffled order, medians):
#   ref, floor, plain, listed, rows, tiers, caps, rate, apikey, jwt, all, stream1, stream500,
#   history (plain with the history recorded), webhook (and one endpoint subscribed), policy,
#   admission; and the hot refusal: ref_storm, floor_storm, plain_storm (every request the same
#   two seats of a fresh event, nearly all 409; their ratios are to ref_storm)
#
# Knobs: DURATION (s per row and round, 5), ROUNDS (3), CONNECTIONS (64), THREADS (2),
# SEATS (100000), TTL_SECONDS (10), STREAMS (500), SKIP_BUILD=1, ONLY="ref plain ..." (a subset;
# ref is always run), BIN (target/release/seatlock: another build to compare), PG_ADMIN_URL
# (postgres://postgres@127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
DURATION="${DURATION:-5}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
SEATS="${SEATS:-100000}"
TTL_SECONDS="${TTL_SECONDS:-10}"
STREAMS="${STREAMS:-500}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432}"
ALL_ROWS="ref floor plain ref_storm floor_storm plain_storm listed rows tiers caps rate apikey jwt all stream1 stream500 history webhook policy admission"
ONLY="${ONLY:-$ALL_ROWS}"
DB="seatlock_bench_costs_$$"
DB_URL="$PG_ADMIN_URL/$DB"
RAW="$ROOT/bench/results/raw-costs"
export BENCH_WRK_DIR="$ROOT/bench/wrk"
log() { printf '[costs %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
for tool in wrk redis-server redis-cli psql curl python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done

PIDS=()
cleanup() {
  local rc=$?
  set +e
  [ -s "$RAW/current.streams" ] && kill -KILL "$(cat "$RAW/current.streams")" 2>/dev/null
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
free_port() { python3 "$ROOT/bench/report.py" free-port; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "cargo build --release (seatlock, bench_reference, webhook_sink)"
  cargo build --release --quiet --bin seatlock --example bench_reference --example webhook_sink
fi
BIN="${BIN:-$ROOT/target/release/seatlock}"
REF_BIN="$ROOT/target/release/examples/bench_reference"
SINK_BIN="$ROOT/target/release/examples/webhook_sink"
for b in "$BIN" "$REF_BIN" "$SINK_BIN"; do [ -x "$b" ] || die "no $b"; done

REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --logfile "$RAW/redis.log" >/dev/null 2>&1 &
PIDS+=($!)
REDIS_PID=$!
for _ in $(seq 50); do [ "$(redis-cli -p "$REDIS_PORT" PING 2>/dev/null)" = PONG ] && break; sleep 0.1; done
REDIS_URL_B="redis://127.0.0.1:$REDIS_PORT"

SINK_PORT="$(free_port)"
PORT="$SINK_PORT" "$SINK_BIN" >"$RAW/sink.log" 2>&1 &
PIDS+=($!)

SECRET="costs-secret-$(date +%s%N)-0123456789abcdefghijklmnop"
ADM_SECRET="costs-admission-$(date +%s%N)-0123456789abcdefghijklmnop"
declare -A BASES
# the process id of each instance (for its CPU time)
declare -A PIDOF
# start NAME [env...]: a seatlock instance on a free port, its own key prefix, one database
start() {
  local name="$1" port
  shift
  port="$(free_port)"
  env MIMALLOC_PURGE_DELAY=0 MIMALLOC_ARENA_EAGER_COMMIT=0 \
    PORT="$port" APP__SERVER__HOST=127.0.0.1 DATABASE_URL="$DB_URL" REDIS_URL="$REDIS_URL_B" \
    APP__REDIS__KEY_PREFIX="costs-$$-$name" APP__LOG__LEVEL=warn APP__LOG__FORMAT=text \
    APP__HOLDS__TTL_SECONDS="$TTL_SECONDS" APP__EVENTS__MAX_SEATS="$SEATS" \
    APP__SERVER__MAX_BODY_BYTES=16000000 APP__DATABASE__MAX_CONNECTIONS=8 \
    APP__WEBHOOKS__ALLOW_PRIVATE_NETWORKS=true "$@" "$BIN" >"$RAW/seatlock-$name.log" 2>&1 &
  PIDS+=($!)
  PIDOF[$name]=$!
  BASES[$name]="http://127.0.0.1:$port"
}
# Token mode keeps its default per-buyer rate limit (5/s: 10,000 buyers stay under it); the
# per-key one (2,000/s) is raised so that one service key is not refused, but still counted.
TOKEN_ENV=(APP__AUTH__MODE=token APP__AUTH__JWT__HS256_SECRET="$SECRET"
  APP__LIMITS__RATE__KEY_PER_SECOND=10000000)
CAPS_ENV=(APP__LIMITS__MAX_SEATS_PER_USER=1000 APP__LIMITS__MAX_LIVE_HOLDS_PER_USER=1000)
RATE_ENV=(APP__LIMITS__RATE__USER_PER_SECOND=100000 APP__LIMITS__RATE__USER_BURST=100000)
# Every row but history and webhook: a deployment that records no history.
OFF=(APP__HISTORY__ENABLED=false)
# The first instance creates the schema; the others start after it is ready.
start n "${OFF[@]}"
for _ in $(seq 600); do curl -sf "${BASES[n]}/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "${BASES[n]}/readyz" >/dev/null || die "seatlock n did not start (see $RAW/seatlock-n.log)"
start h
start caps "${OFF[@]}" "${CAPS_ENV[@]}"
start rate "${OFF[@]}" "${RATE_ENV[@]}"
start tok "${OFF[@]}" "${TOKEN_ENV[@]}"
start all "${OFF[@]}" "${TOKEN_ENV[@]}" "${CAPS_ENV[@]}" "${RATE_ENV[@]}"
start adm "${OFF[@]}" "${TOKEN_ENV[@]}" APP__ADMISSION__MODE=jwt APP__ADMISSION__JWT__HS256_SECRET="$ADM_SECRET" \
  APP__ADMISSION__MAX_LIVE_HOLDS=1000
REF_PORT="$(free_port)"
PORT="$REF_PORT" REDIS_URL="$REDIS_URL_B" KEY_PREFIX="costs-$$-ref" "$REF_BIN" >"$RAW/ref.log" 2>&1 &
PIDS+=($!)
PIDOF[ref]=$!
BASES[ref]="http://127.0.0.1:$REF_PORT"
# The contract's floor: the reference's handler with the least script that keeps seatlock's
# contract for a hold of named seats (see examples/bench_reference.rs), seatlock's TTL.
FLOOR_PORT="$(free_port)"
REFERENCE=floor PORT="$FLOOR_PORT" REDIS_URL="$REDIS_URL_B" KEY_PREFIX="costs-$$-floor" \
  FLOOR_TTL_SECONDS="$TTL_SECONDS" "$REF_BIN" >"$RAW/floor.log" 2>&1 &
PIDS+=($!)
PIDOF[floor]=$!
BASES[floor]="http://127.0.0.1:$FLOOR_PORT"
for name in h caps rate tok all adm; do
  for _ in $(seq 300); do curl -sf "${BASES[$name]}/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -sf "${BASES[$name]}/readyz" >/dev/null || die "seatlock $name did not start (see $RAW/seatlock-$name.log)"
done
for name in ref floor; do
  for _ in $(seq 100); do curl -sf "${BASES[$name]}/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done

ADMIN_KEY="$(DATABASE_URL="$DB_URL" "$BIN" keys create --name "costs-admin-$$" --role admin 2>/dev/null)" \
  || die "admin key"
SERVICE_KEY="$(DATABASE_URL="$DB_URL" "$BIN" keys create --name "costs-service-$$" --role service 2>/dev/null)" \
  || die "service key"
printf 'Authorization: Bearer %s\n' "$SERVICE_KEY" >"$RAW/apikey.headers"

# tokens FILE AUDIENCE: 10,000 buyers' JWTs (and, with an audience, admission tokens for it)
tokens() {
  SECRET="$SECRET" ADM_SECRET="$ADM_SECRET" python3 - "$1" "${2:-}" <<'PY'
import base64, hashlib, hmac, json, os, sys, time
b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
def jwt(secret, claims):
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"
exp = int(time.time()) + 3600
with open(sys.argv[1], "w") as out:
    for i in range(10000):
        line = "Authorization: Bearer " + jwt(os.environ["SECRET"], {"sub": f"u{i}", "exp": exp})
        if sys.argv[2]:
            adm = jwt(os.environ["ADM_SECRET"], {"sub": f"r{i}", "aud": sys.argv[2], "exp": exp,
                                                 "token_use": "access"})
            line += "\tSeatlock-Admission: " + adm
        out.write(line + "\n")
PY
}
tokens "$RAW/jwt.headers"

# new_event INSTANCE BODY -> event id
new_event() {
  local name="$1" body="$2" auth=()
  case "$name" in tok|all|adm) auth=(-H "Authorization: Bearer $ADMIN_KEY") ;; esac
  curl -sf -XPOST "${BASES[$name]}/events" "${auth[@]}" -H 'content-type: application/json' \
    --data-binary "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["eventId"])'
}
numbered() { echo "{\"name\":\"$1\",\"date\":\"2030-01-10T18:00:00Z\",\"location\":\"bench\",\"totalSeats\":$SEATS}"; }
python3 - "$SEATS" >"$RAW/listed.json" <<'PY'
import json, sys
n = int(sys.argv[1])
seats = [{"code": f"S{i}", "type": ("VIP" if i % 10 == 0 else "STANDARD"), "price": 40 + i % 7}
         for i in range(1, n + 1)]
print(json.dumps({"name": "costs-listed", "date": "2030-01-10T18:00:00Z", "location": "bench",
                  "seats": seats}))
PY
ROWS=$((SEATS / 100))
python3 - "$ROWS" >"$RAW/rows.json" <<'PY'
import json, sys
rows = [{"name": f"R{i}-", "seats": 100, "type": "STANDARD", "price": 50}
        for i in range(1, int(sys.argv[1]) + 1)]
print(json.dumps({"name": "costs-rows", "date": "2030-01-10T18:00:00Z", "location": "bench",
                  "rows": rows}))
PY

# streams N BASE EVENT: N idle subscribers of the event's live map (read and thrown away)
streams() {
  python3 - "$@" >"$RAW/streams.log" 2>&1 <<'PY' &
import asyncio, sys
n, base, event = int(sys.argv[1]), sys.argv[2], sys.argv[3]
host, port = base.split("//")[1].split(":")
async def one():
    r, w = await asyncio.open_connection(host, int(port))
    w.write(f"GET /events/{event}/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
    await w.drain()
    while await r.read(1 << 20):
        pass
async def main():
    await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
asyncio.run(main())
PY
  echo $!
}

# floor_event ID SEATS: the floor reference's inventory of event ID, seats S1..SEATS
floor_event() {
  redis-cli -p "$REDIS_PORT" EVAL "for i = 1, tonumber(ARGV[1]) do redis.call('SADD', KEYS[1], 'S' .. i) end" \
    1 "costs-$$-floor:{e:$1}:seats" "$2" >/dev/null || die "floor inventory"
}

# prepare ROW ROUND -> "INSTANCE SCRIPT ARGS..." for wrk, with the row's event made
prepare() {
  local row="$1" round="$2" ev
  case "$row" in
    ref) echo "ref hold_random.lua $((1000 + round)) $SEATS" ;;
    floor) floor_event $((2000 + round)) "$SEATS"; echo "floor hold_random.lua $((2000 + round)) $SEATS" ;;
    ref_storm) echo "ref storm.lua $((3000 + round))" ;;
    floor_storm) floor_event $((4000 + round)) 2; echo "floor storm.lua $((4000 + round))" ;;
    plain_storm) ev="$(new_event n "$(numbered costs-plain-storm)")"; echo "n storm.lua $ev" ;;
    plain) ev="$(new_event n "$(numbered costs-plain)")"; echo "n hold_random.lua $ev $SEATS" ;;
    listed) ev="$(new_event n "@$RAW/listed.json")"; echo "n hold_random.lua $ev $SEATS" ;;
    rows) ev="$(new_event n "@$RAW/rows.json")"; echo "n hold_rows.lua $ev $ROWS" ;;
    tiers)
      ev="$(new_event n '{"name":"costs-tiers","date":"2030-01-10T18:00:00Z","location":"bench","tiers":[{"code":"GA","capacity":1000000}]}')"
      echo "n hold_tier.lua $ev" ;;
    caps) ev="$(new_event caps "$(numbered costs-caps)")"; echo "caps hold_random.lua $ev $SEATS" ;;
    rate) ev="$(new_event rate "$(numbered costs-rate)")"; echo "rate hold_random.lua $ev $SEATS" ;;
    apikey) ev="$(new_event tok "$(numbered costs-apikey)")"; echo "tok hold_headers.lua $ev $SEATS $RAW/apikey.headers 1" ;;
    jwt) ev="$(new_event tok "$(numbered costs-jwt)")"; echo "tok hold_headers.lua $ev $SEATS $RAW/jwt.headers 0" ;;
    all) ev="$(new_event all "$(numbered costs-all)")"; echo "all hold_headers.lua $ev $SEATS $RAW/jwt.headers 0" ;;
    stream1|stream500)
      ev="$(new_event n "$(numbered "costs-$row")")"
      local count=1; [ "$row" = stream500 ] && count="$STREAMS"
      snapshots() { curl -sf "${BASES[n]}/metrics" | awk '/^seatlock_stream_snapshots_sent_total/ {s += $NF} END {printf "%d", s}'; }
      local before; before="$(snapshots)"
      # (prepare runs in a subshell: the caller stops the subscribers by the pid in this file)
      streams "$count" "${BASES[n]}" "$ev" >"$RAW/current.streams"
      # every subscriber connected and sent its snapshot (a 100,000-seat map each) before the
      # holds start: the row measures the updates, not the snapshots
      for _ in $(seq 1200); do
        [ "$(snapshots)" -ge $((before + count)) ] && break
        sleep 0.1
      done
      sleep 2
      echo "n hold_random.lua $ev $SEATS" ;;
    history) ev="$(new_event h "$(numbered costs-history)")"; echo "h hold_random.lua $ev $SEATS" ;;
    webhook)
      ev="$(new_event h "$(numbered costs-webhook)")"
      curl -sf -XPOST "${BASES[h]}/webhooks" -H 'content-type: application/json' \
        -d "{\"url\":\"http://127.0.0.1:$SINK_PORT/hooks\",\"eventIds\":[$ev]}" >"$RAW/webhook-$round.json" \
        || die "webhook endpoint"
      python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$RAW/webhook-$round.json" \
        >"$RAW/current.webhook"
      echo "h hold_random.lua $ev $SEATS" ;;
    policy)
      ev="$(new_event n "$(numbered costs-policy)")"
      curl -sf -XPATCH "${BASES[n]}/events/$ev" -H 'content-type: application/json' \
        -d '{"salesStart":"2020-01-01T00:00:00Z","salesEnd":"2099-01-01T00:00:00Z"}' >/dev/null || die "window"
      python3 -c "import json; print(json.dumps({'channels': [{'code': 'presale', 'seatCodes': ['S%d' % i for i in range(1, 1001)]}]}))" \
        | curl -sf -XPUT "${BASES[n]}/events/$ev/channels" -H 'content-type: application/json' --data-binary @- >/dev/null || die "channels"
      python3 -c "import json; print(json.dumps({'seatCodes': ['S%d' % i for i in range(1001, 1101)], 'reason': 'bench'}))" \
        | curl -sf -XPOST "${BASES[n]}/events/$ev/seats/block" -H 'content-type: application/json' --data-binary @- >/dev/null || die "block"
      echo "n hold_random.lua $ev $SEATS" ;;
    admission)
      ev="$(new_event adm "$(numbered costs-admission)")"
      tokens "$RAW/admission-$round.headers" "$ev"
      echo "adm hold_headers.lua $ev $SEATS $RAW/admission-$round.headers 0" ;;
    *) die "unknown row $row" ;;
  esac
}

# cpu_ticks PID: the process's CPU time so far (user + system), in clock ticks
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# pg_ticks: the same for every Postgres process (a backend that exits meanwhile is not counted)
pg_ticks() {
  local total=0 pid t
  for pid in $(pgrep -x postgres); do
    t="$(cpu_ticks "$pid" 2>/dev/null)" || continue
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
CLK_TCK="$(getconf CLK_TCK)"

# idle_share SECONDS: the share of the machine's CPU time idle over that long
idle_share() {
  python3 - "$1" <<'PY'
import sys, time
def idle():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return v[3] + v[4], sum(v)
i0, t0 = idle(); time.sleep(float(sys.argv[1])); i1, t1 = idle()
print(f"{(i1 - i0) / max(t1 - t0, 1):.3f}")
PY
}
# quiet: waits (up to 20 s) until the machine is as idle as it was before the first row (less
# 5 points), so a row does not pay for the work the previous one left behind (the history
# flush copying its holds into Postgres, deliveries, expiries).
quiet() {
  local deadline=$((SECONDS + 20))
  while [ $SECONDS -lt $deadline ]; do
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) - 0.05 else 1)" \
      "$(idle_share 0.5)" "$BASELINE_IDLE" && return 0
  done
  log "not quiet after 20 s (measuring anyway)"
  return 0
}

# all_rows: ONLY with ref, and with ref_storm when a refusal row (NAME_storm) is asked
all_rows() {
  local rows="ref $ONLY"
  case " $ONLY " in *_storm\ *) rows="ref ref_storm $ONLY" ;; esac
  echo "$rows"
}

BASELINE_IDLE="$(idle_share 3)"
log "the machine is ${BASELINE_IDLE} idle with every instance started (the baseline for quiet)"
log "warm-up"
for name in n h caps rate tok all adm ref floor; do
  wrk -t1 -c4 -d1s -s bench/wrk/healthz.lua "${BASES[$name]}" >/dev/null 2>&1 || true
done

for round in $(seq "$ROUNDS"); do
  order="$(python3 -c "import random,sys; r=sys.argv[2].split(); random.Random(int(sys.argv[1])).shuffle(r); print(' '.join(r))" "$round" "$(all_rows)")"
  order="$(echo "$order" | tr ' ' '\n' | awk '!seen[$0]++' | tr '\n' ' ')"
  log "round $round: $order"
  for row in $order; do
    read -r inst script args <<<"$(prepare "$row" "$round")"
    quiet
    # a second of the row with its statuses counted: builds the cache, and checks the row
    # answers 200 (or 409 on a seat taken) and nothing else before it is measured
    # (an instance still busy, e.g. sending 500 subscribers their snapshots, may answer nothing
    # within the second: then the check is tried again, up to 10 times)
    for attempt in $(seq 10); do
      CHECK_SCRIPT="$script" wrk -t1 -c4 -d1s -s bench/wrk/check.lua "${BASES[$inst]}" -- $args \
        >"$RAW/$row-$round.check" 2>&1 || die "wrk check of $row: $(tail -3 "$RAW/$row-$round.check")"
      verdict="$(python3 - "$RAW/$row-$round.check" <<'PY'
import json, sys
line = next(l for l in open(sys.argv[1]) if l.startswith("BENCHJSON"))
counts = json.loads(line.split(" ", 1)[1])["counters"]
bad = {k: v for k, v in counts.items() if k not in ("status_200", "status_409")}
print("bad" if bad else ("ok" if counts.get("status_200") else "none"))
PY
)"
      [ "$verdict" = none ] || break
      sleep 1
    done
    [ "$verdict" = ok ] || die "row $row answers other statuses (or none): $(grep BENCHJSON "$RAW/$row-$round.check")"
    svc0="$(cpu_ticks "${PIDOF[$inst]}")"
    redis0="$(cpu_ticks "$REDIS_PID")"
    pg0="$(pg_ticks)"
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 5s --latency \
      -s "bench/wrk/$script" "${BASES[$inst]}" -- $args >"$RAW/$row-$round.txt" 2>&1 \
      || die "wrk $row: $(tail -3 "$RAW/$row-$round.txt")"
    echo "$(($(cpu_ticks "${PIDOF[$inst]}") - svc0)) $(($(cpu_ticks "$REDIS_PID") - redis0)) $(($(pg_ticks) - pg0)) $CLK_TCK" \
      >"$RAW/$row-$round.cpu"
    grep '^BENCHJSON' "$RAW/$row-$round.txt" | sed 's/^BENCHJSON //' >"$RAW/$row-$round.json" \
      || die "wrk $row printed no result"
    # The subscribers and the endpoint go with their row, so they do not run on into the next.
    if [ -s "$RAW/current.streams" ]; then
      pid="$(cat "$RAW/current.streams")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      # The event's hub outlives its last subscriber by up to 30 s and reads every seat whose
      # hold ends meanwhile (the TTL): that work is the stream row's, so it is let run here
      # rather than slow the next row down (it did: plain 11,000 after stream1, 21,000 before).
      sleep $((TTL_SECONDS + 2))
    fi
    if [ -s "$RAW/current.webhook" ]; then
      curl -sf -XDELETE "${BASES[h]}/webhooks/$(cat "$RAW/current.webhook")" >/dev/null \
        || log "could not delete the webhook endpoint"
    fi
    rm -f "$RAW/current.streams" "$RAW/current.webhook"
  done
done

python3 - "$RAW" "$ROUNDS" "$(all_rows)" "$ROOT/bench/results" <<'PY'
import json, statistics, sys
raw, rounds, rows, out = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4]
rows = list(dict.fromkeys(rows))
why = {
    "ref": "axum, one JSON parse, one EVALSHA (SET NX PX of every seat, all or nothing: EXISTS of each, then SET PX), one JSON answer",
    "floor": "the contract's floor: the reference's handler (no middleware) with the least script that keeps seatlock's contract for a hold of seats (holders MGET, known and booked SMISMEMBERs, SET NX PX, the hold record HSET + PEXPIRE, the held index ZADD) and seatlock's answer",
    "ref_storm": "the reference, hot-seat storm: the same two seats asked by every request (nearly all 409); the base of the _storm rows' ratios",
    "floor_storm": "the contract's floor, hot-seat storm: one MGET of the holders, then the 409",
    "plain_storm": "plain, hot-seat storm: hold_plain.lua's two-call refusal (the layout HMGET, the holders MGET), the metrics and middleware, the 409 body",
    "plain": "a numbered event in none mode, history.enabled = false (as every row but history and webhook): hold_plain.lua (the policy and rows check, one SMISMEMBER of the seats, one MGET of their holders, the writes), the metrics and middleware",
    "listed": "listed seats with types and prices: the same script (types and prices are Postgres's), a bigger inventory set",
    "rows": "rows: hold.lua (the plain path answers FULL once per instance and event), which also marks the seat in the row layout (rows_mark: one HGET and HSET of the row's bits)",
    "tiers": "1 unit of a tier: the tier's HMGET and its holds ZSET (ZADD, trim by score) instead of a seat key",
    "caps": "per-buyer caps: the buyer's ZSET of live holds read, written and expired in the hold script",
    "rate": "the per-buyer rate limit: a GCRA key read and written in the same script",
    "apikey": "token mode with a service key: the key looked up (cached) and its rate limit counted per request",
    "jwt": "token mode with buyers' JWTs: an HS256 verification and the buyer's rate limit (token mode's default, 5/s) per request",
    "all": "token mode (JWT), caps and the rate limit together (the issue's >= 0.6x row)",
    "stream1": "one live-map subscriber: each hold is also PUBLISHed; the hub shows a hold from its message and reads releases, sales and expiries (coalesced)",
    "stream500": "500 subscribers: one PUBLISH per hold as with one; the hub fans each coalesced update out 500 times",
    "history": "plain with the history recorded (the default): a stream entry per hold in the hold script, and the flush copying each hold (and its expiry) into Postgres",
    "webhook": "the history and one endpoint subscribed to the event: every hold becomes a hold.created message in the outbox (Postgres) and a delivery",
    "policy": "a sales window, 1,000 channel seats and 100 blocked seats: hold.lua (as rows), the policy HASH read and a channel lookup per hold",
    "admission": "admission tokens (jwt): a second HS256 verification per request, and hold.lua (an admission takes the full path) counts the admission's live holds",
}
table = []
for row in rows:
    runs = []
    for r in range(1, rounds + 1):
        try:
            d = json.load(open(f"{raw}/{row}-{r}.json"))
        except FileNotFoundError:
            continue
        secs = d["duration_us"] / 1e6
        svc, rds, pg, tck = (int(x) for x in open(f"{raw}/{row}-{r}.cpu").read().split())
        per_request = lambda ticks: ticks / tck * 1e6 / max(d["requests"], 1)
        runs.append({"rps": d["requests"] / secs, "ok": (d["requests"] - d["errors"]["status"]) / secs,
                     "p99": d["latency_us"]["p99"] / 1000, "errors": d["errors"],
                     "svc_us": per_request(svc), "redis_us": per_request(rds),
                     "pg_us": per_request(pg)})
    if runs:
        table.append({"row": row, "rps": statistics.median(x["rps"] for x in runs),
                      "p99_ms": statistics.median(x["p99"] for x in runs),
                      "rounds": [round(x["rps"]) for x in runs],
                      "service_us": statistics.median(x["svc_us"] for x in runs),
                      "redis_us": statistics.median(x["redis_us"] for x in runs),
                      "postgres_us": statistics.median(x["pg_us"] for x in runs)})
base = {t["row"]: t for t in table if t["row"] in ("ref", "ref_storm")}
lines = ["| row | requests/s (median) | ratio to ref | p99 ms | rounds | CPU us per request: process, Redis, Postgres | what it costs and why |",
         "|---|---|---|---|---|---|---|"]
for t in table:
    ref = base.get("ref_storm" if t["row"].endswith("_storm") else "ref")
    t["ratio"] = t["rps"] / ref["rps"] if ref else None
    ratio = f"{t['ratio']:.2f}x" if ref else "-"
    lines.append(f"| {t['row']} | {t['rps']:,.0f} | {ratio} | {t['p99_ms']:.1f} | "
                 f"{', '.join(f'{x:,}' for x in t['rounds'])} | "
                 f"{t['service_us']:.1f}, {t['redis_us']:.1f}, {t['postgres_us']:.1f} | "
                 f"{why.get(t['row'], '')} |")
text = "\n".join(lines)
print(text)
open(f"{out}/costs.md", "w").write(text + "\n")
json.dump(table, open(f"{out}/costs.json", "w"), indent=1)
PY
