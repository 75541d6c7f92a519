#!/usr/bin/env bash
# Fuzzes the API with schemathesis (PyPI) from its own OpenAPI document: starts seatlock
# (target/debug/seatlock, or $SEATLOCK_BIN) in token mode on a free port with a database and a
# Redis key prefix of its own, creates an admin key with `seatlock keys create`, and runs every
# operation with positive and negative data under the checks not_a_server_error,
# status_code_conformance, content_type_conformance and response_schema_conformance. Exits
# non-zero on any failure. Needs a Postgres at DATABASE_URL and a Redis at REDIS_URL (defaults:
# the local ones); installs schemathesis into .venv-fuzz/ on first use.
#
# Two passes: as the admin key (every operation; keys must name the buyer), then as a buyer with a
# JWT (userId may be left out, so generated holds reach the seats, the caps and the guard).
#
# The seat-map stream is in, and every event of it that schemathesis reads is checked against the
# document (ST108 when one does not fit). The stream never ends, so scripts/fuzz.toml has the two
# passes read only its first event (the `snapshot`). A third pass (scripts/fuzz-stream.toml)
# reads a few streams of event 1 for longer while a churn holds, confirms, cancels and releases
# seats and a tier unit of it, so they carry `update` events; it fails if no update was sent (the
# update schema would have gone unchecked).
#
# Knobs: FUZZ_EXAMPLES (per operation, default 100), FUZZ_SEED (default 1), FUZZ_MODE (all).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
BIN="${SEATLOCK_BIN:-$ROOT/target/debug/seatlock}"
EXAMPLES="${FUZZ_EXAMPLES:-100}"
SEED="${FUZZ_SEED:-1}"
MODE="${FUZZ_MODE:-all}"
SCHEMATHESIS_VERSION="4.32.5"
log() { echo "[fuzz] $*" >&2; }

[ -x "$BIN" ] || { log "build first: cargo build (no $BIN)"; exit 1; }
if ! .venv-fuzz/bin/st --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into .venv-fuzz/"
  python3 -m venv .venv-fuzz
  .venv-fuzz/bin/pip install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

admin_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
server="${admin_url%/*}"
db="seatlock_fuzz_$$"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
secret="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
workdir="$(mktemp -d -t seatlock-fuzz.XXXXXX)"
pid=""
churn=""
stop_churn() {
  [ -n "$churn" ] && kill "$churn" 2>/dev/null && { wait "$churn" 2>/dev/null || true; }
  churn=""
}
cleanup() {
  stop_churn
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$workdir"
}
trap cleanup EXIT

export DATABASE_URL="$server/$db"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export PORT="$port"
export APP__REDIS__KEY_PREFIX="fuzz-$$"
export APP__AUTH__MODE=token
export APP__AUTH__JWT__HS256_SECRET="$secret"
# Small events keep the run fast; the schema still allows up to 100000 seats (answered 400).
export APP__EVENTS__MAX_SEATS=200
export APP__LOG__LEVEL=warn
# Rate limits stay on, generous enough that the fuzzer is not answered 429 throughout.
export APP__LIMITS__RATE__USER_PER_SECOND=1000
export APP__LIMITS__RATE__USER_BURST=1000
export APP__LOG__FORMAT=json

key="$("$BIN" keys create --name fuzz-admin --role admin 2>"$workdir/keys.err")" \
  || { cat "$workdir/keys.err" >&2; exit 1; }
"$BIN" >"$workdir/seatlock.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
# Event 1 exists (the document's example event id), so generated requests reach the hold logic;
# it has a tier, so its stream shows tiers too.
curl -fsS -XPOST "http://127.0.0.1:$port/events" -H "Authorization: Bearer $key" \
  -d '{"name":"Fuzz","date":"2030-01-10T18:00:00Z","location":"Lab","totalSeats":200,"tiers":[{"code":"FLOOR","name":"Floor","price":10,"capacity":100000}]}' >/dev/null
log "seatlock on :$port (token mode); schemathesis: $EXAMPLES examples per operation, seed $SEED, mode $MODE"
buyer_jwt="$(SECRET="$secret" python3 - <<'PY'
import base64, hashlib, hmac, json, os, time
b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"sub": "fuzz-buyer", "exp": int(time.time()) + 3600}).encode())
sig = hmac.new(os.environ["SECRET"].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
print(f"{head}.{body}.{b64(sig)}")
PY
)"
status=0
for who in admin buyer; do
  token="$key"; [ "$who" = buyer ] && token="$buyer_jwt"
  log "pass as the $who"
  .venv-fuzz/bin/st --config-file scripts/fuzz.toml run "http://127.0.0.1:$port/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --header "Authorization: Bearer $token" \
    --mode "$MODE" --max-examples "$EXAMPLES" --seed "$SEED" \
    --generation-database none --no-color --request-timeout 10 \
    --report junit --report-junit-path "$ROOT/target/schemathesis-$who.xml" || status=$?
done
log "stream pass: the updates of event 1 while it changes"
# The churn: seats S191..S200 in turn with one FLOOR unit, held, then confirmed and cancelled or
# released, a step every 150 ms, over one keep-alive connection. A refused step (a hold the
# fuzzer left on that seat) moves on to the next seat.
PORT="$port" KEY="$key" python3 - >"$workdir/churn.log" 2>&1 <<'PY' &
import http.client, itertools, json, os, time
conn = http.client.HTTPConnection("127.0.0.1", int(os.environ["PORT"]), timeout=10)
def call(path, body):
    conn.request("POST", path, json.dumps(body), {"Authorization": "Bearer " + os.environ["KEY"]})
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"{}")
user = {"userId": "fuzz-churn"}
for n in itertools.count():
    try:
        seat = f"S{191 + n % 10}"
        status, hold = call("/events/1/seats/reserve", {**user, "seatCodes": [seat], "tiers": [{"code": "FLOOR", "quantity": 1}]})
        time.sleep(0.15)
        if status != 200:
            continue
        group = {**user, "holdGroupId": hold["holdGroupId"]}
        if n % 2:
            status, booking = call("/events/1/seats/confirm", group)
            time.sleep(0.15)
            if status == 200:
                call(f"/bookings/{booking['bookingGroupId']}/cancel", user)
        else:
            call("/events/1/seats/release", group)
        time.sleep(0.15)
    except (OSError, http.client.HTTPException, ValueError) as e:
        print("churn:", repr(e), flush=True)
        conn.close()
        time.sleep(0.5)
PY
churn=$!
.venv-fuzz/bin/st --config-file scripts/fuzz-stream.toml run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --header "Authorization: Bearer $key" --include-path "/events/{event_id}/stream" \
  --phases fuzzing --mode positive --max-examples 4 --seed "$SEED" \
  --generation-database none --no-color --request-timeout 10 \
  --report junit --report-junit-path "$ROOT/target/schemathesis-stream.xml" || status=$?
stop_churn
updates="$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^seatlock_stream_updates_sent_total/ {print $2}' || true)"
if [ "${updates:-0}" = 0 ]; then
  log "no stream update was sent: the update events went unchecked (churn log below)"
  tail -20 "$workdir/churn.log" >&2
  status=1
else
  log "stream updates sent (each one read was checked against the document): $updates"
fi
if grep -q '"level":"ERROR"' "$workdir/seatlock.log"; then
  log "seatlock logged errors during the run:"
  grep '"level":"ERROR"' "$workdir/seatlock.log" | head -20 >&2
  status=1
fi
exit "$status"
