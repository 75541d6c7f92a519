#!/usr/bin/env bash
# Best-available on houses sold the way an on-sale leaves them (issue 24): 1,000 rows of 100,
# filled to 80%, 90% and 95%: the front half of the rows full, every later row with seats taken
# at random (60, 80 or 90 of its 100), every taken seat HELD (not booked) by a live hold.
# Against each house, on an identical twin made with the same seed:
#   ba2, ba4   best-available holds of 2 / 4 seats, each released again (the house stays as it is)
#   manual     one-seat holds of a random FREE seat (a buyer who picked from the map), each
#              released again
#   ba10       best-available of 10 on the 95% house, where no 10-block is left: every request
#              refused (NO_ADJACENT_SEATS)
#   taken      one-seat holds of a random TAKEN seat of the same house: every request refused
# Ratios: ba2 and ba4 holds/s over manual holds/s (targets 0.5x at 80%, 0.3x at 95%), ba10
# refusals/s over taken refusals/s (target: as fast). ROUNDS rounds (2), order alternating.
# Run alone (`bash bench/fragmented.sh`, ~4 minutes) or as a phase of bench/run.sh.
# Writes bench/results/fragmented.md and .json.
#
# Knobs: DURATION (s, 8), ROUNDS (2), CONNECTIONS (64), THREADS (2), FILLS ("80 90 95"),
# SKIP_BUILD=1, BIN (target/release/seatlock: another build to compare), PG_ADMIN_URL
# (postgres://postgres@127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
DURATION="${DURATION:-8}"
ROUNDS="${ROUNDS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
FILLS="${FILLS:-80 90 95}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432}"
BIN="${BIN:-$ROOT/target/release/seatlock}"
DB="seatlock_bench_frag_$$"
RAW="$ROOT/bench/results/raw-fragmented"
export BENCH_WRK_DIR="$ROOT/bench/wrk"
log() { printf '[fragmented %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
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
free_port() { python3 "$ROOT/bench/report.py" free-port; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "cargo build --release"
  cargo build --release --quiet --bin seatlock
fi
REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --logfile "$RAW/redis.log" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ "$(redis-cli -p "$REDIS_PORT" PING 2>/dev/null)" = PONG ] && break; sleep 0.1; done
PORT_SL="$(free_port)"
# Holds live 30 minutes: the fill's holds stay alive for the whole run.
env MIMALLOC_PURGE_DELAY=0 MIMALLOC_ARENA_EAGER_COMMIT=0 \
  PORT="$PORT_SL" APP__SERVER__HOST=127.0.0.1 DATABASE_URL="$PG_ADMIN_URL/$DB" \
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT" APP__LOG__LEVEL=warn APP__HOLDS__TTL_SECONDS=1800 \
  APP__HOLDS__MAX_LIFETIME_SECONDS=3600 APP__DATABASE__MAX_CONNECTIONS=8 \
  "$BIN" >"$RAW/seatlock.log" 2>&1 &
PIDS+=($!)
BASE="http://127.0.0.1:$PORT_SL"
for _ in $(seq 600); do curl -sf "$BASE/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$BASE/readyz" >/dev/null || die "seatlock did not start (see $RAW/seatlock.log)"

# house FILL NAME -> event id; writes $RAW/NAME.free and NAME.taken (seat codes, one a line)
house() {
  python3 - "$BASE" "$1" "$2" "$RAW" <<'PY'
import http.client, json, random, sys, threading
base, fill, name, raw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
host, port = base.split("//")[1].split(":")
def call(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, json.loads(r.read() or b"{}")
conn = http.client.HTTPConnection(host, int(port))
rows = [{"name": f"R{i}-", "seats": 100} for i in range(1, 1001)]
status, body = call(conn, "/events", {"name": f"fragmented-{fill}", "date": "2030-01-10T18:00:00Z",
                                      "location": "bench", "rows": rows})
assert status == 201, body
event = body["eventId"]
# The same seed for both twins of a fill: identical houses.
rng = random.Random(fill)
later = round(100 * (fill - 50) / 50)           # seats taken in each of the later 500 rows
taken = []
for r in range(1, 1001):
    numbers = range(1, 101) if r <= 500 else sorted(rng.sample(range(1, 101), later))
    taken.extend(f"R{r}-{n}" for n in numbers)
taken_set = set(taken)
free = [f"R{r}-{n}" for r in range(1, 1001) for n in range(1, 101) if f"R{r}-{n}" not in taken_set]
groups = [taken[i:i + 10] for i in range(0, len(taken), 10)]
failed = []
def worker(part):
    c = http.client.HTTPConnection(host, int(port))
    for g in part:
        s, b = call(c, f"/events/{event}/seats/reserve", {"userId": f"fill-{g[0]}", "seatCodes": g})
        if s != 200:
            failed.append((s, b))
threads = [threading.Thread(target=worker, args=(groups[i::8],)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
assert not failed, failed[:3]
open(f"{raw}/{name}.free", "w").write("\n".join(free) + "\n")
open(f"{raw}/{name}.taken", "w").write("\n".join(taken) + "\n")
print(event)
PY
}

declare -A EV
for fill in $FILLS; do
  log "filling the $fill% houses (two identical twins: best-available and manual)"
  EV[ba$fill]="$(house "$fill" "ba$fill")"
  EV[m$fill]="$(house "$fill" "m$fill")"
done

# run NAME SCRIPT ARGS...
run() {
  local name="$1" script="$2"
  shift 2
  wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 5s --latency \
    -s "bench/wrk/$script" "$BASE" -- "$@" >"$RAW/$name.txt" 2>&1 || die "wrk $name: $(tail -3 "$RAW/$name.txt")"
  grep '^BENCHJSON' "$RAW/$name.txt" | sed 's/^BENCHJSON //' >"$RAW/$name.json" || die "wrk $name: no result"
}
for round in $(seq "$ROUNDS"); do
  for fill in $FILLS; do
    kinds="manual ba2 ba4"
    [ $((round % 2)) = 0 ] && kinds="ba4 ba2 manual"
    for kind in $kinds; do
      log "round $round, $fill%: $kind"
      case "$kind" in
        manual) run "$kind-$fill-$round" hold_release.lua "${EV[m$fill]}" 0 "$RAW/m$fill.free" ;;
        ba2) run "$kind-$fill-$round" best.lua "${EV[ba$fill]}" 2 ;;
        ba4) run "$kind-$fill-$round" best.lua "${EV[ba$fill]}" 4 ;;
      esac
    done
  done
  # Refusals on the fullest house: no 10-block left, against one-seat holds of taken seats.
  last="${FILLS##* }"
  for kind in ba10 taken; do
    log "round $round, $last%: $kind (refused)"
    case "$kind" in
      ba10) run "$kind-$last-$round" best.lua "${EV[ba$last]}" 10 ;;
      taken) run "$kind-$last-$round" hold_release.lua "${EV[m$last]}" 0 "$RAW/m$last.taken" ;;
    esac
  done
done

python3 - "$RAW" "$ROUNDS" "$FILLS" "$ROOT/bench/results" <<'PY'
import json, os, statistics, sys
raw, rounds, fills, out = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4]
def stat(name):
    runs = []
    for r in range(1, rounds + 1):
        p = f"{raw}/{name}-{r}.json"
        if not os.path.exists(p):
            continue
        d = json.load(open(p))
        secs = d["duration_us"] / 1e6
        c = d["counters"]
        runs.append({"held": c.get("held", 0) / secs, "refused": (c.get("no_block", 0) + c.get("reserve_409", 0)) / secs,
                     "rps": d["requests"] / secs, "p99": d["latency_us"]["p99"] / 1000})
    if not runs:
        return None
    return {k: statistics.median(x[k] for x in runs) for k in runs[0]}
lines = ["| house | manual holds/s | ba2 holds/s (ratio) | ba4 holds/s (ratio) | p99 ms manual / ba2 / ba4 |",
         "|---|---|---|---|---|"]
table = {}
for f in fills:
    m, b2, b4 = stat(f"manual-{f}"), stat(f"ba2-{f}"), stat(f"ba4-{f}")
    table[f] = {"manual": m, "ba2": b2, "ba4": b4}
    lines.append(f"| {f}% | {m['held']:,.0f} | {b2['held']:,.0f} ({b2['held'] / m['held']:.2f}x) | "
                 f"{b4['held']:,.0f} ({b4['held'] / m['held']:.2f}x) | "
                 f"{m['p99']:.1f} / {b2['p99']:.1f} / {b4['p99']:.1f} |")
last = fills[-1]
b10, tk = stat(f"ba10-{last}"), stat(f"taken-{last}")
if b10 and tk:
    table["refusals"] = {"ba10": b10, "taken": tk}
    lines += ["", "| refusals on the " + last + "% house | requests/s | p99 ms |", "|---|---|---|",
              f"| best-available of 10 (no 10-block left) | {b10['rps']:,.0f} ({b10['rps'] / tk['rps']:.2f}x) | {b10['p99']:.1f} |",
              f"| one-seat hold of a taken seat | {tk['rps']:,.0f} | {tk['p99']:.1f} |"]
text = "\n".join(lines)
print(text)
open(f"{out}/fragmented.md", "w").write(text + "\n")
json.dump(table, open(f"{out}/fragmented.json", "w"), indent=1)
PY
