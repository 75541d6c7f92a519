#!/usr/bin/env bash
# seatlock on a Redis Cluster: the cost of cluster mode, and the rebuild storm. Run by
# bench/run.sh after its own phases (or alone: bash bench/cluster.sh). See bench/README.md.
#
# Starts a private redis-server and a private Redis Cluster (scripts/redis-cluster.sh: 3 masters
# + 3 replicas on free loopback ports), a fresh database, one seatlock on the standalone Redis and
# three in cluster mode, then measures:
#   (k1/s1)  holds/s, one random seat of one of EVENTS events per request, on one instance:
#            cluster mode vs standalone, ROUNDS interleaved rounds of DURATION s, medians. On 2
#            cores the point is the cost of cluster mode (its client, the rate counted apart),
#            not scaling: client, service and six Redis processes share the same cores.
#   (k3)     the same load spread over the three cluster-mode instances (three wrk at once).
#   (ks)     rebuild storm: that load on the three instances, FLUSHALL on every master a third
#            of the way in: rebuilds and reads of the inventory from Postgres (one per event
#            expected across the three instances), 5xx, max latency.
# Writes $OUT/cluster.md and $OUT/cluster.json. Everything it started is stopped on exit.
#
# Knobs: DURATION (s per round, 5), ROUNDS (3), CONNECTIONS (64), THREADS (2), EVENTS (24),
# EVENT_SEATS (10000), TTL_SECONDS (10), BIN (target/release/seatlock), OUT (bench/results),
# PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432), SKIP_BUILD (1: use the existing binary).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$ROOT/bench"
BIN="${BIN:-$ROOT/target/release/seatlock}"
OUT="${OUT:-$BENCH/results}"
DURATION="${DURATION:-5}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
EVENTS="${EVENTS:-24}"
EVENT_SEATS="${EVENT_SEATS:-10000}"
TTL_SECONDS="${TTL_SECONDS:-10}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432}"
DB="seatlock_bench_cluster"
DB_URL="$PG_ADMIN_URL/$DB"
export BENCH_WRK_DIR="$BENCH/wrk"
mkdir -p "$OUT"
RAW="$(mktemp -d "${TMPDIR:-/tmp}/seatlock-bench-cluster.XXXXXX")"

log() { printf '[bench-cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
for tool in wrk redis-server redis-cli psql curl python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

PIDS=()
CLUSTER_DIR="$RAW/cluster"
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "${CLUSTER_BASE:-}" ] && REDIS_CLUSTER_PORT="$CLUSTER_BASE" \
    "$ROOT/scripts/redis-cluster.sh" stop "$CLUSTER_DIR" >/dev/null 2>&1 || true
  psql "$PG_ADMIN_URL/postgres" -Atqc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

free_port() { python3 "$BENCH/report.py" free-port; }
# The first of 6 consecutive free ports whose cluster bus ports (+10000) are free too.
free_run() {
  python3 - <<'EOF'
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
while True:
    base = random.randint(20000, 22700)
    if all(free(p) and free(p + 10000) for p in range(base, base + 6)):
        print(base); break
EOF
}

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "cargo build --release"
  (cd "$ROOT" && cargo build --release --quiet --bin seatlock)
fi
[ -x "$BIN" ] || die "no binary at $BIN"

REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --logfile "$RAW/redis.log" >/dev/null 2>&1 &
PIDS+=("$!")
CLUSTER_BASE="$(free_run)"
log "standalone redis on $REDIS_PORT; cluster on $CLUSTER_BASE-$((CLUSTER_BASE + 5))"
CLUSTER_URLS="$(REDIS_CLUSTER_PORT="$CLUSTER_BASE" "$ROOT/scripts/redis-cluster.sh" start "$CLUSTER_DIR" 2>"$RAW/cluster.log")" \
  || die "cluster did not start: $(tail -5 "$RAW/cluster.log")"
psql "$PG_ADMIN_URL/postgres" -Atqc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true

# start NAME PORT [env...]
start() {
  local name="$1" port="$2"
  shift 2
  env MIMALLOC_PURGE_DELAY="${MIMALLOC_PURGE_DELAY:-0}" \
    MIMALLOC_ARENA_EAGER_COMMIT="${MIMALLOC_ARENA_EAGER_COMMIT:-0}" \
    PORT="$port" APP__SERVER__HOST=127.0.0.1 DATABASE_URL="$DB_URL" \
    APP__REDIS__KEY_PREFIX=benchk APP__LOG__LEVEL=warn APP__LOG__FORMAT=text \
    APP__HOLDS__TTL_SECONDS="$TTL_SECONDS" APP__DATABASE__MAX_CONNECTIONS=16 \
    "$@" "$BIN" >"$RAW/$name.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] && return 0
    sleep 0.1
  done
  die "seatlock $name did not become ready (see $RAW/$name.log)"
}
PORT_S="$(free_port)"
start s "$PORT_S" REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
PORTS_C=()
for i in 1 2 3; do
  p="$(free_port)"
  start "c$i" "$p" APP__REDIS__MODE=cluster APP__REDIS__CLUSTER_URLS="$CLUSTER_URLS"
  PORTS_C+=("$p")
done

# events NAME PORT -> EVENTS event ids, each cached by one hold
events() {
  local port="$1" ids=() id
  for i in $(seq "$EVENTS"); do
    id="$(curl -sf -H 'content-type: application/json' "http://127.0.0.1:$port/events" \
      -d "{\"name\":\"bench-k-$i\",\"date\":\"2031-01-01T20:00:00Z\",\"location\":\"Hall\",\"totalSeats\":$EVENT_SEATS}" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["eventId"])')" || die "create event"
    curl -sf -o /dev/null -H 'content-type: application/json' "http://127.0.0.1:$port/events/$id/seats/reserve" \
      -d "{\"userId\":\"warm\",\"seatCodes\":[\"S$EVENT_SEATS\"]}" || die "warm-up hold on event $id"
    ids+=("$id")
  done
  echo "${ids[@]}"
}
log "creating $EVENTS events of $EVENT_SEATS seats for each mode"
read -r -a EV_S <<<"$(events "$PORT_S")"
read -r -a EV_C <<<"$(events "${PORTS_C[0]}")"
python3 - "$CLUSTER_BASE" "${EV_C[@]}" >"$RAW/shards.txt" <<'EOF'
import subprocess, sys
base, events = int(sys.argv[1]), sys.argv[2:]
shards = {}
for e in events:
    slot = int(subprocess.check_output(["redis-cli", "-p", str(base), "cluster", "keyslot", f"benchk:{{e:{e}}}:seats"]))
    for line in subprocess.check_output(["redis-cli", "-p", str(base), "cluster", "nodes"], text=True).splitlines():
        f = line.split()
        if "master" not in f[2]:
            continue
        for r in f[8:]:
            a, _, b = r.partition("-")
            if a.isdigit() and int(a) <= slot <= int(b or a):
                shards[f[1].split("@")[0]] = shards.get(f[1].split("@")[0], 0) + 1
print(" ".join(f"{k}:{v}" for k, v in sorted(shards.items())))
EOF

# wrk_run NAME PORT CONNS SECONDS EVENTS...
wrk_run() {
  local name="$1" port="$2" conns="$3" secs="$4"
  shift 4
  wrk -t "$THREADS" -c "$conns" -d "${secs}s" --timeout 5s --latency -s "$BENCH/wrk/hold_events.lua" \
    "http://127.0.0.1:$port" -- "$EVENT_SEATS" "$@" >"$RAW/$name.txt" 2>&1 || die "wrk $name: $(tail -3 "$RAW/$name.txt")"
}

log "warm-up"
wrk_run warm_s "$PORT_S" "$CONNECTIONS" 2 "${EV_S[@]}"
wrk_run warm_c "${PORTS_C[0]}" "$CONNECTIONS" 2 "${EV_C[@]}"
for r in $(seq "$ROUNDS"); do
  log "round $r/$ROUNDS: standalone, then cluster (one instance each, ${DURATION}s)"
  wrk_run "s1_$r" "$PORT_S" "$CONNECTIONS" "$DURATION" "${EV_S[@]}"
  wrk_run "k1_$r" "${PORTS_C[0]}" "$CONNECTIONS" "$DURATION" "${EV_C[@]}"
done

log "(k3) the load over three cluster-mode instances"
per=$(( CONNECTIONS / 3 > 1 ? CONNECTIONS / 3 : 1 ))
for i in 0 1 2; do
  wrk_run "k3_$i" "${PORTS_C[$i]}" "$per" "$DURATION" "${EV_C[@]}" &
done
wait_wrk() { for job in $(jobs -p); do case " ${PIDS[*]} " in *" $job "*) ;; *) wait "$job" || die "a wrk failed";; esac; done; }
wait_wrk

log "(ks) rebuild storm: FLUSHALL on every master a third of the way into the load on three instances"
for i in 0 1 2; do curl -sf "http://127.0.0.1:${PORTS_C[$i]}/metrics" >"$RAW/ks_$i.before"; done
STORM=$(( DURATION * 2 ))
for i in 0 1 2; do
  wrk_run "ks_$i" "${PORTS_C[$i]}" "$per" "$STORM" "${EV_C[@]}" &
done
sleep $(( STORM / 3 ))
masters=$(redis-cli -p "$CLUSTER_BASE" cluster nodes | awk '$3 ~ /master/ && $3 !~ /fail/ {split($2, a, "[:@]"); print a[2]}')
for p in $masters; do redis-cli -p "$p" FLUSHALL >/dev/null; done
echo "$masters" >"$RAW/ks.flushed"
wait_wrk
for i in 0 1 2; do curl -sf "http://127.0.0.1:${PORTS_C[$i]}/metrics" >"$RAW/ks_$i.after"; done

python3 - "$RAW" "$OUT" "$ROUNDS" "$EVENTS" "$EVENT_SEATS" "$CONNECTIONS" "$DURATION" <<'EOF'
import json, os, statistics, sys
raw, out, rounds, events, seats, conns, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:]
bench = os.path.join(os.environ.get("BENCH_WRK_DIR", "bench/wrk"), "..")
sys.path.insert(0, bench)
from report import parse_wrk, parse_metrics, metric_delta  # noqa: E402

def rate(w):
    return w["requests"] / (w["duration_us"] / 1e6) if w else 0.0

def counts(w, cls):
    return (w or {}).get("counters", {}).get(cls, 0)

s1 = [parse_wrk(os.path.join(raw, f"s1_{r}.txt")) for r in range(1, rounds + 1)]
k1 = [parse_wrk(os.path.join(raw, f"k1_{r}.txt")) for r in range(1, rounds + 1)]
k3 = [parse_wrk(os.path.join(raw, f"k3_{i}.txt")) for i in range(3)]
ks = [parse_wrk(os.path.join(raw, f"ks_{i}.txt")) for i in range(3)]
med = lambda xs: statistics.median(xs) if xs else 0.0
s_rate, k_rate = med([rate(w) for w in s1]), med([rate(w) for w in k1])
s_p99 = med([w["latency_us"]["p99"] / 1000 for w in s1 if w])
k_p99 = med([w["latency_us"]["p99"] / 1000 for w in k1 if w])
k3_rate = sum(rate(w) for w in k3)
k3_p99 = max((w["latency_us"]["p99"] / 1000 for w in k3 if w), default=0)
reads = rebuilds = errors = 0.0
for i in range(3):
    b = parse_metrics(os.path.join(raw, f"ks_{i}.before"))
    a = parse_metrics(os.path.join(raw, f"ks_{i}.after"))
    reads += metric_delta(b, a, "seatlock_postgres_query_duration_seconds_count", op="fetch_inventory")
    rebuilds += metric_delta(b, a, "seatlock_cache_rebuilds_total")
    errors += metric_delta(b, a, "seatlock_http_requests_total", status="5xx")
ks_rate = sum(rate(w) for w in ks)
ks_max = max((w["latency_us"]["max"] / 1000 for w in ks if w), default=0)
ks_p99 = max((w["latency_us"]["p99"] / 1000 for w in ks if w), default=0)
shards = open(os.path.join(raw, "shards.txt")).read().strip()
five = lambda ws: sum(counts(w, "5xx") for w in ws)
res = {
    "standalone_holds_per_s": s_rate, "cluster_holds_per_s": k_rate,
    "cluster_vs_standalone": k_rate / s_rate if s_rate else None,
    "standalone_p99_ms": s_p99, "cluster_p99_ms": k_p99,
    "cluster_three_instances_holds_per_s": k3_rate, "cluster_three_instances_p99_ms": k3_p99,
    "storm_inventory_reads": reads, "storm_rebuilds": rebuilds, "storm_5xx": errors,
    "storm_max_ms": ks_max, "storm_p99_ms": ks_p99, "storm_holds_per_s": ks_rate,
    "events": int(events), "events_per_master": shards,
    "rounds_standalone": [rate(w) for w in s1], "rounds_cluster": [rate(w) for w in k1],
    "wrk_5xx": {"s1": five(s1), "k1": five(k1), "k3": five(k3), "ks": five(ks)},
}
per_conn = max(int(conns) // 3, 1)
ok = reads == int(events) and rebuilds == int(events) and errors == 0
md = f"""## Redis Cluster (bench/cluster.sh)

{events} events of {seats} seats, spread over the masters ({shards}); one random seat of a random
event per request, {conns} connections; standalone and cluster rounds interleaved, {rounds} rounds
of {duration} s, medians. Three masters and three replicas, one standalone Redis, four seatlock
processes, wrk and Postgres on the same cores.

| workload | holds/s | p99 | note |
|---|---|---|---|
| (s1) one instance, standalone Redis | {s_rate:,.0f} | {s_p99:.1f} ms | rounds {", ".join(f"{rate(w):,.0f}" for w in s1)} |
| (k1) one instance, cluster mode | {k_rate:,.0f} | {k_p99:.1f} ms | **{(k_rate / s_rate if s_rate else 0):.2f}x standalone**; rounds {", ".join(f"{rate(w):,.0f}" for w in k1)} |
| (k3) three instances, cluster mode | {k3_rate:,.0f} | {k3_p99:.1f} ms | {per_conn} connections each |
| (ks) rebuild storm: FLUSHALL on every master under (k3) | {ks_rate:,.0f} | {ks_p99:.1f} ms | inventory reads {reads:.0f}, rebuilds {rebuilds:.0f} for {events} events (expected one each: {"YES" if ok else "NO"}), 5xx {errors:.0f}, max latency {ks_max:.0f} ms |
"""
open(os.path.join(out, "cluster.md"), "w").write(md)
json.dump(res, open(os.path.join(out, "cluster.json"), "w"), indent=2)
print(md)
EOF
log "written $OUT/cluster.md and $OUT/cluster.json (raw outputs in $RAW)"
