#!/usr/bin/env python3
"""Helpers of bench/run.sh (Python 3 standard library only).

  report.py free-port                     print a free TCP port on 127.0.0.1
  report.py cpu SECONDS OUT [label=pid..] CPU use per command group over SECONDS, from /proc, as
                                          JSON; the labelled pids (this run's) are reported apart
  report.py report RAW_DIR OUT_DIR        parse the raw outputs, print the table, write
                                          OUT_DIR/latest.md and OUT_DIR/latest.json
"""

import glob
import json
import os
import re
import socket
import sys
import time

# --------------------------------------------------------------------------------------------
# small helpers used while the benchmark runs


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def _proc_times():
    """pid -> (comm, utime+stime in ticks) for every process readable now."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        # comm is in parentheses and may contain spaces
        lp, rp = raw.find("("), raw.rfind(")")
        comm = raw[lp + 1 : rp]
        fields = raw[rp + 2 :].split()
        # fields[0] is state (field 3); utime is field 14, stime field 15 (1-based)
        out[int(d)] = (comm, int(fields[11]) + int(fields[12]))
    return out


GROUPS = [
    ("seatlock (other instances)", re.compile(r"^seatlock")),
    ("redis-server (shared)", re.compile(r"^redis-server")),
    ("postgres (other backends, shared processes)", re.compile(r"^postgres")),
    ("wrk", re.compile(r"^wrk")),
    ("pgbench", re.compile(r"^pgbench")),
    ("redis-benchmark", re.compile(r"^redis-benchmark")),
    ("others' builds (rustc/cargo/cc/ld)", re.compile(r"^(rustc|cargo|cc|ld|collect2|lld|cc1|build-script)")),
    ("others' load tests (k6)", re.compile(r"^k6")),
]


def cpu(seconds, out, labelled):
    """CPU used per command group over a window, in cores (CPU-seconds per second).

    labelled: ["label=pid", ...] processes of this benchmark, reported under their own label
    (another seatlock or the shared redis-server on the same machine is reported apart).
    """
    mine = {}
    for item in labelled:
        label, _, pid = item.partition("=")
        if pid.isdigit():
            mine[int(pid)] = label
        elif label.startswith("pgdbs:"):
            # "pgdbs:ADMIN_URL=db1,db2": Postgres backends serving these databases right now
            import subprocess
            dbs = ",".join("'" + d.replace("'", "") + "'" for d in pid.split(",") if d)
            try:
                pids = subprocess.run(
                    ["psql", label[len("pgdbs:"):], "-Atqc",
                     f"SELECT pid FROM pg_stat_activity WHERE datname IN ({dbs})"],
                    capture_output=True, text=True, timeout=5).stdout.split()
            except (OSError, subprocess.SubprocessError):
                pids = []
            for p in pids:
                if p.isdigit():
                    mine[int(p)] = "postgres backends (bench dbs)"
    hz = os.sysconf("SC_CLK_TCK")
    a = _proc_times()
    t0 = time.monotonic()
    time.sleep(float(seconds))
    b = _proc_times()
    wall = time.monotonic() - t0
    per, other = {}, {}
    for pid, (comm, ticks) in b.items():
        before = a.get(pid)
        if before is None or ticks < before[1]:
            delta = ticks  # started inside the window (or a reused pid)
        else:
            delta = ticks - before[1]  # (kworker threads rename themselves as they go)
        if delta <= 0:
            continue
        group = mine.get(pid) or next((g for g, rx in GROUPS if rx.search(comm)), None)
        if group is None:
            group = "other"
            other[comm] = other.get(comm, 0) + delta
        per[group] = per.get(group, 0) + delta
    cores = {g: round(v / hz / wall, 3) for g, v in sorted(per.items(), key=lambda kv: -kv[1])}
    top_other = {c: round(v / hz / wall, 3)
                 for c, v in sorted(other.items(), key=lambda kv: -kv[1])[:5]}
    with open(out, "w") as f:
        json.dump({"window_s": round(wall, 2), "cores": cores, "other_top": top_other,
                   "total": round(sum(per.values()) / hz / wall, 3), "ncpu": os.cpu_count()}, f)


# --------------------------------------------------------------------------------------------
# parsing


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def read_env(path):
    env = {}
    for line in read(path).splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    return env


def parse_wrk(path):
    text = read(path)
    m = re.search(r"^BENCHJSON (.*)$", text, re.M)
    if not m:
        return None
    d = json.loads(m.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    d["non_2xx_3xx"] = int(non2xx.group(1)) if non2xx else 0
    secs = d["duration_us"] / 1e6 if d["duration_us"] else 0
    d["rps"] = d["requests"] / secs if secs else 0.0
    d["seconds"] = secs
    return d


def parse_metrics(path):
    """Prometheus text -> {(name, frozenset(labels)): value}."""
    out = {}
    for line in read(path).splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(4))
        except ValueError:
            pass
    return out


def flushall_ms(path):
    """How long the (cs) FLUSHALL took, from the times written before and after it."""
    try:
        with open(path) as f:
            lines = [l.strip() for l in f if l.strip()]
        return (float(lines[-1]) - float(lines[0])) * 1000.0
    except (OSError, ValueError, IndexError):
        return None


def metric_delta(before, after, name, **want):
    """Sum of (after - before) over series of `name` whose labels include `want`."""
    total = 0.0
    for (n, labels), v in after.items():
        if n != name:
            continue
        d = dict(labels)
        if all(d.get(k) == val for k, val in want.items()):
            total += v - before.get((n, labels), 0.0)
    return total


def status_mix(raw, name):
    """HTTP status classes of the reserve/confirm routes during workload `name` (from /metrics)."""
    before = parse_metrics(os.path.join(raw, f"{name}.metrics.before"))
    after = parse_metrics(os.path.join(raw, f"{name}.metrics.after"))
    if not after:
        return None
    mix = {}
    for route in ("reserve", "confirm"):
        path = f"/events/{{event_id}}/seats/{route}"
        for cls in ("2xx", "4xx", "5xx"):
            v = metric_delta(before, after, "seatlock_http_requests_total", route=path, status=cls)
            if v:
                mix[f"{route} {cls}"] = int(v)
    refused = {}
    for (n, labels), v in after.items():
        if n == "seatlock_holds_refused_total":
            r = dict(labels).get("reason", "?")
            d = v - before.get((n, labels), 0.0)
            if d:
                refused[r] = int(d)
    confirms = {}
    for (n, labels), v in after.items():
        if n == "seatlock_confirms_total":
            o = dict(labels).get("outcome", "?")
            d = v - before.get((n, labels), 0.0)
            if d:
                confirms[o] = int(d)
    def mean_ms(name, **want):
        n = metric_delta(before, after, name + "_count", **want)
        return round(1000.0 * metric_delta(before, after, name + "_sum", **want) / n, 3) if n else None

    server_ms = {}
    for route in ("reserve", "confirm"):
        v = mean_ms("seatlock_http_request_duration_seconds",
                    route=f"/events/{{event_id}}/seats/{route}")
        if v is not None:
            server_ms[f"http {route}"] = v
    for op in ("hold", "pin", "settle"):
        v = mean_ms("seatlock_redis_command_duration_seconds", op=op)
        if v is not None:
            server_ms[f"redis {op}"] = v
    v = mean_ms("seatlock_postgres_query_duration_seconds", op="confirm")
    if v is not None:
        server_ms["postgres confirm"] = v
    pg_ops = metric_delta(before, after, "seatlock_postgres_query_duration_seconds_count")
    background = {}
    for (n, labels), v in after.items():
        op = dict(labels).get("op", "")
        if n == "seatlock_postgres_query_duration_seconds_count" and op.startswith("sweep"):
            d = v - before.get((n, labels), 0.0)
            if d:
                background[op] = int(d)
    rebuilds = metric_delta(before, after, "seatlock_cache_rebuilds_total")
    return {
        "http": mix,
        "holds_refused": refused,
        "confirms": confirms,
        "server_mean_ms": server_ms,
        "postgres_ops": int(pg_ops),
        "postgres_background_ops": background,
        "cache_rebuilds": int(rebuilds),
    }


def percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def parse_pgbench(raw, name):
    text = read(os.path.join(raw, f"{name}.txt"))
    if not text:
        return None
    d = {}
    m = re.search(r"^tps = ([\d.]+)", text, re.M)
    d["tps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"number of transactions actually processed: (\d+)", text)
    d["transactions"] = int(m.group(1)) if m else 0
    m = re.search(r"number of failed transactions: (\d+)", text)
    d["failed"] = int(m.group(1)) if m else 0
    m = re.search(r"latency average = ([\d.]+) ms", text)
    d["latency_avg_ms"] = float(m.group(1)) if m else None
    m = re.search(r"^duration: (\d+) s", text, re.M)
    d["duration_s"] = int(m.group(1)) if m else None
    m = re.search(r"number of clients: (\d+)", text)
    d["clients"] = int(m.group(1)) if m else None
    lat = []
    for f in glob.glob(os.path.join(raw, f"{name}.log*")):
        for line in read(f).splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                lat.append(int(parts[2]))
    lat.sort()
    d["logged"] = len(lat)
    d["p50_us"] = percentile(lat, 50)
    d["p99_us"] = percentile(lat, 99)
    errors = [l for l in text.splitlines() if "error" in l.lower() or "aborted" in l.lower()]
    d["error_lines"] = errors[:5]
    return d


def parse_redis_benchmark(path):
    rows = [l for l in read(path).splitlines() if l.startswith('"') and not l.startswith('"test"')]
    if not rows:
        return None
    cols = [c.strip('"') for c in rows[-1].split('","')]
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
    # "p99_latency_ms","max_latency_ms"
    return {
        "rps": float(cols[1]),
        "avg_ms": float(cols[2]),
        "p50_ms": float(cols[4]),
        "p99_ms": float(cols[6]),
        "max_ms": float(cols[7]),
    }


ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z\s+(WARN|ERROR)\s+(.*)$")


def summarize_log(path, phases):
    """WARN/ERROR lines of a seatlock log, grouped by message, with the phase they fell in."""
    from datetime import datetime, timezone

    groups = {}
    for line in read(path).splitlines():
        m = LOG_LINE.match(ANSI.sub("", line))
        if not m:
            continue
        ts = datetime.strptime(m.group(1)[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(
            tzinfo=timezone.utc).timestamp() if "." in m.group(1) else 0
        msg = m.group(3)
        # key: target + message up to the first field, without volatile values
        key = re.sub(r"\s+\w[\w.]*=.*$", "", msg)[:120]
        if "slow statement" in msg:
            st = re.search(r'summary="([^"]*)"', msg)
            key = f"{key} [{st.group(1) if st else '?'}]"
        where = "setup"
        for name, t0, t1 in phases:
            if t0 - 0.5 <= ts <= t1 + 0.5:
                where = f"{name}{' (end: wrk closing connections)' if ts >= t1 - 0.5 else ''}"
                break
            if t1 < ts:
                where = f"after {name}"
        g = groups.setdefault((m.group(2), key), {"count": 0, "phases": {}})
        g["count"] += 1
        g["phases"][where] = g["phases"].get(where, 0) + 1
    return [{"level": lvl, "message": key, **g} for (lvl, key), g in groups.items()]


def read_phases(raw):
    out = []
    for line in read(os.path.join(raw, "phases.txt")).splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.append((parts[0], float(parts[1]), float(parts[2])))
    return out


# --------------------------------------------------------------------------------------------
# the report


def ms(us):
    return None if us is None else us / 1000.0


def fmt_ms(v):
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def fmt_rate(v):
    return "-" if v is None else f"{v:,.0f}"


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}x"


def yes_no(ok):
    return "-" if ok is None else ("yes" if ok else "NO")


def report(raw, out_dir):
    env = read_env(os.path.join(raw, "run.env"))
    conns = env.get("CONNECTIONS", "?")
    pg_clients = env.get("PG_CLIENTS", "?")
    eval_c = parse_redis_benchmark(os.path.join(raw, "ceiling_eval.csv"))
    pgb = parse_pgbench(raw, "ceiling_confirm")
    ceil_counts = read_env(os.path.join(raw, "ceiling_confirm.counts"))
    a = parse_wrk(os.path.join(raw, "a.txt"))
    b = parse_wrk(os.path.join(raw, "b.txt"))
    c = parse_wrk(os.path.join(raw, "c.txt"))
    h = parse_wrk(os.path.join(raw, "h.txt"))
    mix_a, mix_b, mix_c = (status_mix(raw, n) for n in ("a", "b", "c"))
    pg_mode = env.get("PG_MODE") == "1"
    storm_pg = read_env(os.path.join(raw, "b.pgstat"))
    rss = read_env(os.path.join(raw, "rss.env"))
    cpu = {n: read_json(os.path.join(raw, f"{n}.cpu.json")) for n in
           ("ceiling_eval", "h", "a", "b", "ceiling_confirm", "c", "pa", "pb", "pc",
            "ref_a", "ref_b", "ref_c")}

    # Postgres-only mode: the real thing (wrk against APP__HOLDS__BACKEND=postgres) or the
    # pgbench SELECT ... FOR UPDATE reference.
    if pg_mode:
        pa, pb, pc = (parse_wrk(os.path.join(raw, f"{n}.txt")) for n in ("pa", "pb", "pc"))
        mix_pc = status_mix(raw, "pc")
        pa_rate = pa and pa["rps"]
        pb_rate = pb and pb["rps"]
        pc_pairs = None
        if pc:
            held = pc["counters"].get("confirmed", 0)
            pc_pairs = held / pc["seconds"] if pc["seconds"] else None
        p_lat = {k: (v and (ms(v["latency_us"]["p50"]), ms(v["latency_us"]["p99"])))
                 for k, v in (("pa", pa), ("pb", pb), ("pc", pc))}
        p_label = "Postgres-only mode (seatlock APP__HOLDS__BACKEND=postgres, wrk)"
        p_raw = {"pa": pa, "pb": pb, "pc": pc, "pc_status": mix_pc}
    else:
        pa, pb, pc = (parse_pgbench(raw, n) for n in ("ref_a", "ref_b", "ref_c"))
        pa_rate = pa and pa["tps"]
        pb_rate = pb and pb["tps"]
        pairs = read_env(os.path.join(raw, "ref_c.counts")).get("bookings")
        pc_pairs = (int(pairs) / pc["duration_s"]) if (pc and pairs and pc["duration_s"]) else None
        p_lat = {k: (v and (ms(v["p50_us"]), ms(v["p99_us"])))
                 for k, v in (("pa", pa), ("pb", pb), ("pc", pc))}
        p_label = (f"Postgres-only REFERENCE (pgbench SELECT ... FOR UPDATE, -c {pg_clients}, "
                   "no HTTP; the binary has no Postgres hold backend)")
        p_raw = {"ref_a": pa, "ref_b": pb, "ref_c": pc,
                 "ref_c_bookings": pairs}

    eval_rps = eval_c and eval_c["rps"]
    pgb_tps = pgb and pgb["tps"]

    def refused_rate(w, mix):
        if not w or not mix:
            return None
        refused = mix["http"].get("reserve 4xx", 0)
        return refused / w["seconds"] if w["seconds"] else None

    a_rps = a and a["rps"]
    b_rps = b and b["rps"]
    b_refused_rps = refused_rate(b, mix_b)
    c_pairs = None
    if c and c["seconds"]:
        c_pairs = c["counters"].get("confirmed", 0) / c["seconds"]

    def ratio(x, y):
        return (x / y) if (x is not None and y) else None

    def share(mix, route, cls):
        if not mix:
            return "-"
        tot = sum(v for k, v in mix["http"].items() if k.startswith(route))
        v = mix["http"].get(f"{route} {cls}", 0)
        return f"{100.0 * v / tot:.1f}%" if tot else "-"

    def mix_text(mix):
        if not mix:
            return "-"
        parts = []
        for k in ("reserve 2xx", "reserve 4xx", "reserve 5xx", "confirm 2xx", "confirm 4xx",
                  "confirm 5xx"):
            if mix["http"].get(k):
                parts.append(f"{k.replace('reserve ', 'R').replace('confirm ', 'C')}"
                             f" {mix['http'][k]:,}")
        return ", ".join(parts) or "-"

    def wrk_errors(w):
        if not w:
            return 0
        e = w["errors"]
        return e["connect"] + e["read"] + e["write"] + e["timeout"]

    p99_limit = 10.0
    rows = []

    def row(name, rate, unit, p50, p99, mix, ceiling_name, r, target, ok, p99_target=None):
        rows.append({
            "workload": name, "rate": rate, "unit": unit, "p50_ms": p50, "p99_ms": p99,
            "status": mix, "vs": ceiling_name, "ratio": r, "target": target, "met": ok,
            "p99_met": (None if (p99_target is None or p99 is None) else p99 < p99_target),
        })

    row("ceiling: redis-benchmark EVAL SET NX PX", eval_rps, "req/s",
        eval_c and eval_c["p50_ms"], eval_c and eval_c["p99_ms"], f"-c {conns}", "", None, "", None)
    row("ceiling: pgbench guarded confirm", pgb_tps, "tx/s",
        pgb and ms(pgb["p50_us"]), pgb and ms(pgb["p99_us"]),
        f"-c {pg_clients}, failed {pgb['failed'] if pgb else '-'}, seat collisions "
        f"{ceil_counts.get('collision_pct', '-')}%", "", None, "", None)
    row("reference: GET /healthz (HTTP stack only)", h and h["rps"], "req/s",
        h and ms(h["latency_us"]["p50"]), h and ms(h["latency_us"]["p99"]),
        f"{env.get('HEALTHZ_DURATION', '?')} s; no Redis/Postgres call: the most any route can do "
        "here", "EVAL", ratio(h and h["rps"], eval_rps), "info", None)
    r_a = ratio(a_rps, eval_rps)
    row("(a) random-seat holds, Redis mode", a_rps, "req/s",
        a and ms(a["latency_us"]["p50"]), a and ms(a["latency_us"]["p99"]),
        f"409 {share(mix_a, 'reserve', '4xx')}; {mix_text(mix_a)}", "EVAL", r_a, ">= 0.45x",
        None if r_a is None else r_a >= 0.45, p99_limit)
    t = parse_wrk(os.path.join(raw, "t.txt"))
    if t:
        mix_t = status_mix(raw, "t")
        t_rps = t["rps"]
        r_t = ratio(t_rps, a_rps)
        row("(t) random-seat holds, token mode", t_rps, "req/s",
            ms(t["latency_us"]["p50"]), ms(t["latency_us"]["p99"]),
            f"JWT per buyer, caps and shared rate limit on; 409 {share(mix_t, 'reserve', '4xx')}; "
            f"{mix_text(mix_t)}", "(a) none mode", r_t, ">= 0.8x",
            None if r_t is None else r_t >= 0.8, p99_limit)
    g = parse_wrk(os.path.join(raw, "g.txt"))
    if g:
        mix_g = status_mix(raw, "g")
        r_g = ratio(g["rps"], a_rps)
        row("(g) general-admission holds (1 unit of a tier)", g["rps"], "req/s",
            ms(g["latency_us"]["p50"]), ms(g["latency_us"]["p99"]),
            f"held {share(mix_g, 'reserve', '2xx')}; {mix_text(mix_g)}", "(a) seat holds", r_g,
            ">= 0.9x", None if r_g is None else r_g >= 0.9, p99_limit)
    m = parse_wrk(os.path.join(raw, "m.txt"))
    m_held = m and m["counters"].get("held", 0) / m["seconds"]
    if m:
        mc = m["counters"]
        row("(m) manual one-seat holds, each released (holds/s)", m_held, "holds/s",
            ms(m["latency_us"]["p50"]), ms(m["latency_us"]["p99"]),
            f"{m['rps']:,.0f} req/s; held {mc.get('held', 0):,}, released "
            f"{mc.get('released', 0):,}, reserve 409 {mc.get('reserve_409', 0):,}",
            "", None, "", None, p99_limit)
    for name, label, target in (("ba0", "0% sold", None), ("ba80", "80% sold", 0.5)):
        w = parse_wrk(os.path.join(raw, f"{name}.txt"))
        if not w:
            continue
        wc = w["counters"]
        held = wc.get("held", 0) / w["seconds"]
        r_w = ratio(held, m_held)
        other = {k: v for k, v in wc.items() if k.startswith("status_")}
        row(f"({name}) best-available 2-4 seats, {label}, each released (holds/s)", held,
            "holds/s", ms(w["latency_us"]["p50"]), ms(w["latency_us"]["p99"]),
            f"{w['rps']:,.0f} req/s; held {wc.get('held', 0):,}, released "
            f"{wc.get('released', 0):,}, no block {wc.get('no_block', 0):,}"
            + (f", other {other}" if other else ""),
            "(m) holds/s", r_w, "info" if target is None else f">= {target}x",
            None if (target is None or r_w is None) else r_w >= target, p99_limit)
    for name, mine, label in (("ra", a, "(a) random-seat holds"), ("rb", b, "(b) hot-seat storm")):
        ref = parse_wrk(os.path.join(raw, f"{name}.txt"))
        if not ref:
            continue
        r_ref = ratio(mine and mine["rps"], ref["rps"])
        row(f"({name}) reference handler (axum + one EVALSHA): {label[4:]}", ref["rps"], "req/s",
            ms(ref["latency_us"]["p50"]), ms(ref["latency_us"]["p99"]),
            f"non-2xx {ref['non_2xx_3xx']:,}; ratio = {label[:3]} req/s over this",
            f"{label[:3]} over this", r_ref, ">= 0.75x",
            None if r_ref is None else r_ref >= 0.75, p99_limit)
    r_b = ratio(b_refused_rps, eval_rps)
    row("(b) hot-seat storm, Redis mode (refusals/s)", b_refused_rps, "409/s",
        b and ms(b["latency_us"]["p50"]), b and ms(b["latency_us"]["p99"]),
        f"409 {share(mix_b, 'reserve', '4xx')}; {mix_text(mix_b)}", "EVAL", r_b, ">= 0.5x",
        None if r_b is None else r_b >= 0.5, p99_limit)
    r_c = ratio(c_pairs, pgb_tps)
    c_note = "-"
    if c:
        cc = c["counters"]
        c_note = (f"{c['rps']:,.0f} req/s; held {cc.get('held', 0):,}, confirmed "
                  f"{cc.get('confirmed', 0):,}, reserve 409 {cc.get('reserve_409', 0):,}, "
                  f"confirm 409/410 {cc.get('confirm_409', 0)}/{cc.get('confirm_410', 0)}")
        other = {k: v for k, v in cc.items() if k.startswith("status_")}
        if other:
            c_note += f", other {other}"
    row("(c) hold+confirm pairs, Redis mode", c_pairs, "pairs/s",
        c and ms(c["latency_us"]["p50"]), c and ms(c["latency_us"]["p99"]), c_note,
        "pgbench confirm", r_c, ">= 0.6x", None if r_c is None else r_c >= 0.6, p99_limit)
    cs = parse_wrk(os.path.join(raw, "cs.txt"))
    if cs:
        before = parse_metrics(os.path.join(raw, "cs.metrics.before"))
        after = parse_metrics(os.path.join(raw, "cs.metrics.after"))
        reads = metric_delta(before, after, "seatlock_postgres_query_duration_seconds_count",
                             op="fetch_inventory")
        rebuilds = metric_delta(before, after, "seatlock_cache_rebuilds_total")
        errors = metric_delta(before, after, "seatlock_http_requests_total", status="5xx")
        rebuild_s = metric_delta(before, after, "seatlock_cache_rebuild_duration_seconds_sum")
        flush_ms = flushall_ms(os.path.join(raw, "cs.flushall"))
        max_ms = cs["latency_us"]["max"] / 1000.0
        ok = reads == 1 and errors == 0 and max_ms < 500
        row("(cs) cold start: FLUSHALL during a hot-seat storm (max latency)", max_ms, "ms",
            ms(cs["latency_us"]["p50"]), ms(cs["latency_us"]["p99"]),
            f"{cs['rps']:,.0f} req/s; inventory reads from Postgres {reads:.0f}, rebuilds "
            f"{rebuilds:.0f} ({rebuild_s * 1000:.0f} ms), FLUSHALL itself "
            f"{'?' if flush_ms is None else f'{flush_ms:.0f}'} ms, 5xx {errors:.0f}, "
            f"socket errors {wrk_errors(cs)}", "", None,
            "1 read, 0 5xx, max < 500 ms", ok)
    tag = "PG-only" if pg_mode else "PG-only ref"
    row(f"(a) random-seat holds, {tag}", pa_rate, "req/s" if pg_mode else "tx/s",
        p_lat["pa"] and p_lat["pa"][0], p_lat["pa"] and p_lat["pa"][1],
        "" if pg_mode else f"-c {pg_clients}", "Redis (a)", ratio(a_rps, pa_rate), "info", None)
    r_storm = ratio(b_rps, pb_rate)
    row(f"(b) hot-seat storm, {tag}", pb_rate, "req/s" if pg_mode else "tx/s",
        p_lat["pb"] and p_lat["pb"][0], p_lat["pb"] and p_lat["pb"][1],
        "" if pg_mode else f"-c {pg_clients}", "Redis (b) req/s over this", r_storm,
        ">= 3x", None if r_storm is None else r_storm >= 3.0)
    row(f"(c) hold+confirm pairs, {tag}", pc_pairs, "pairs/s",
        p_lat["pc"] and p_lat["pc"][0], p_lat["pc"] and p_lat["pc"][1],
        "" if pg_mode else f"-c {pg_clients}", "Redis (c) over this", ratio(c_pairs, pc_pairs),
        "info", None)
    rss_kib = int(rss["seatlock_vmhwm_kib"]) if rss.get("seatlock_vmhwm_kib") else None
    rss_mib = rss_kib / 1024.0 if rss_kib else None
    rows.append({"workload": "seatlock peak RSS (VmHWM, whole run)", "rate": rss_mib,
                 "unit": "MiB", "p50_ms": None, "p99_ms": None,
                 "status": f"redis-server VmHWM {int(rss.get('redis_vmhwm_kib', 0)) / 1024:.1f} MiB",
                 "vs": "", "ratio": None, "target": "< 64 MiB",
                 "met": None if rss_mib is None else rss_mib < 64, "p99_met": None})

    # zero Postgres work per refused hold during the storm (Redis mode)
    refused_b = mix_b["http"].get("reserve 4xx", 0) if mix_b else 0
    xacts = None
    if storm_pg.get("before") and storm_pg.get("after"):
        xacts = int(storm_pg["after"]) - int(storm_pg["before"])
    background = sum((mix_b or {}).get("postgres_background_ops", {}).values())
    request_xacts = None if xacts is None else max(0, xacts - background)
    per_refusal = (request_xacts / refused_b) if (request_xacts is not None and refused_b) else None

    # ---- text table
    headers = ["workload", "rate", "unit", "p50 ms", "p99 ms", "p99<10ms", "ratio", "vs",
               "target", "met"]
    table = []
    for r in rows:
        rate = (f"{r['rate']:.1f}" if r["unit"] == "MiB" and r["rate"] is not None
                else fmt_rate(r["rate"]))
        table.append([r["workload"], rate, r["unit"], fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]),
                      yes_no(r["p99_met"]), fmt_ratio(r["ratio"]), r["vs"], r["target"],
                      yes_no(r["met"])])
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *table)]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    out = [line(headers), sep] + [line(t) for t in table]
    notes = []
    notes.append("status mix / notes per row:")
    for r in rows:
        if r["status"]:
            notes.append(f"  - {r['workload']}: {r['status']}")
    notes.append(
        f"Postgres work per refused hold (Redis-mode storm): {xacts if xacts is not None else '?'}"
        f" transactions in {env.get('BENCH_DB', '?')} (pg_stat_database) for {refused_b:,} "
        f"refused holds, of which {background} are seatlock's periodic background sweeps "
        f"({(mix_b or {}).get('postgres_background_ops', {})}) -> "
        f"{'%.6f' % per_refusal if per_refusal is not None else '?'} per refused hold; seatlock "
        f"Postgres ops {mix_b['postgres_ops'] if mix_b else '?'} in all, cache rebuilds "
        f"{mix_b['cache_rebuilds'] if mix_b else '?'}")
    for n, m in (("(a)", mix_a), ("(b)", mix_b), ("(c)", mix_c)):
        if m and m.get("server_mean_ms"):
            notes.append(f"seatlock-side mean times {n} (ms, from /metrics; wrk's latency adds "
                         "queueing in the kernel and the client): " +
                         ", ".join(f"{k} {v:.2f}" for k, v in m["server_mean_ms"].items()))
    notes.append(f"Postgres-only rows: {p_label}.")
    if env.get("PG_MODE_PROBE"):
        notes.append(f"probe of APP__HOLDS__BACKEND=postgres: {env['PG_MODE_PROBE']}")
    wrks = [("a", a), ("b", b), ("c", c), ("healthz", h)]
    if pg_mode:
        wrks += [("pa", pa), ("pb", pb), ("pc", pc)]
    errs = {n: wrk_errors(w) for n, w in wrks if w}
    if any(errs.values()):
        notes.append(f"wrk socket errors (connect+read+write+timeout): {errs}")
    phases = read_phases(raw)
    logs = {}
    for logname in ("seatlock.log", "seatlock-pgmode.log"):
        summary = summarize_log(os.path.join(raw, logname), phases)
        if summary:
            logs[logname] = summary
            for g in summary:
                where = ", ".join(f"{p} x{n}" for p, n in g["phases"].items())
                notes.append(f"{logname}: {g['level']} x{g['count']} \"{g['message']}\" ({where})")
    pb_pg = read_env(os.path.join(raw, "pb.pgstat"))
    if pg_mode and pb_pg.get("before") and pb_pg.get("after") and pb:
        x = int(pb_pg["after"]) - int(pb_pg["before"])
        notes.append(f"for contrast, Postgres-only mode storm: {x:,} transactions in its database for "
                     f"{pb['requests']:,} requests ({x / max(pb['requests'], 1):.2f} per request)")
    mixes = [("a", mix_a), ("b", mix_b), ("c", mix_c)]
    if pg_mode:
        mixes += [(n, status_mix(raw, n)) for n in ("pa", "pb", "pc")]
    fives = {n: (m["http"].get("reserve 5xx", 0) + m["http"].get("confirm 5xx", 0))
             for n, m in mixes if m}
    if any(fives.values()):
        notes.append(f"!! 5xx responses from seatlock: {fives}")
    cpu_lines = ["CPU use during each phase (cores = CPU-seconds per second, from /proc; "
                 f"{os.cpu_count()} CPUs in all; the Postgres server is shared, its backends of "
                 "the bench databases are counted apart):"]
    for n, label in (("ceiling_eval", "EVAL ceiling"), ("ceiling_confirm", "pgbench ceiling"),
                     ("h", "GET /healthz"), ("a", "(a) Redis"), ("b", "(b) Redis"),
                     ("c", "(c) Redis"),
                     ("pa", "(a) PG-only"), ("pb", "(b) PG-only"), ("pc", "(c) PG-only"),
                     ("ref_a", "(a) PG-only reference"), ("ref_b", "(b) PG-only reference"),
                     ("ref_c", "(c) PG-only reference")):
        s = cpu.get(n)
        if s:
            top = ", ".join(f"{g} {v:.2f}" for g, v in s["cores"].items() if v >= 0.01)
            extra = ""
            big = [f"{c} {v:.2f}" for c, v in s.get("other_top", {}).items() if v >= 0.01]
            if big:
                extra = " (other: " + ", ".join(big) + ")"
            cpu_lines.append(f"  - {label}: total {s.get('total', 0):.2f} = {top}{extra}")

    pg_lines = ["Postgres during each phase (cluster-wide WAL, so other users' writes count too; "
                "bench databases' backends half-way through):"]
    pg_side = {}
    for n in ("a", "b", "ceiling_confirm", "c", "ref_a", "ref_b", "ref_c", "pa", "pb", "pc"):
        rows_ = [l.split("|") for l in read(os.path.join(raw, f"{n}.pgwal")).splitlines()]
        snap = {r[0]: [float(x) for x in r[1:]] for r in rows_ if len(r) == 5}
        act = [l.split("|") for l in read(os.path.join(raw, f"{n}.pgactivity")).splitlines()]
        if "before" not in snap or "after" not in snap:
            continue
        d = [y - x for x, y in zip(snap["before"], snap["after"])]
        pg_side[n] = {"wal_records": int(d[0]), "wal_fpi": int(d[1]), "wal_bytes": int(d[2]),
                      "checkpoints": int(d[3]),
                      "activity": [{"backend": a[0], "state": a[1], "wait": f"{a[2]}:{a[3]}",
                                    "n": int(a[4])} for a in act if len(a) == 5]}
        act_txt = ", ".join(f"{a['n']} {a['backend'] if a['backend'] != 'client backend' else ''}"
                            f"{a['state']}{'' if a['wait'] == '-:-' else ' ' + a['wait']}".strip()
                            for a in pg_side[n]["activity"])
        pg_lines.append(f"  - {n}: WAL {d[2] / 1048576:.1f} MiB, {int(d[0]):,} records, "
                        f"{int(d[1]):,} full-page images, checkpoints {int(d[3])}; backends: "
                        f"{act_txt or '-'}")
    per_req = []
    for n, w in (("GET /healthz", h), ("(a) Redis", a), ("(b) Redis", b), ("(c) Redis", c)):
        key = {"GET /healthz": "h", "(a) Redis": "a", "(b) Redis": "b", "(c) Redis": "c"}[n]
        smp = cpu.get(key)
        if not (smp and w and w["rps"]):
            continue
        parts = []
        for g in ("seatlock (bench)", "redis-server (bench)", "postgres backends (bench dbs)", "wrk"):
            v = smp["cores"].get(g)
            if v:
                parts.append(f"{g.split(' (')[0]} {v * 1e6 / w['rps']:.0f}")
        per_req.append(f"{n} {', '.join(parts)}")
    if per_req:
        cpu_lines.append("  CPU per HTTP request (microseconds): " + "; ".join(per_req))
    machine = read_env(os.path.join(raw, "machine.env"))
    header = (f"seatlock benchmark, {env.get('DATE', '?')} on {machine.get('cpu', '?')} "
              f"({machine.get('nproc', '?')} CPUs, {machine.get('mem', '?')} RAM, kernel "
              f"{machine.get('kernel', '?')}); {conns} connections / {env.get('THREADS', '?')} "
              f"wrk threads, {env.get('DURATION', '?')} s per workload, hold TTL "
              f"{env.get('TTL_SECONDS', '?')} s, {env.get('SEATS', '?')}-seat events")
    text = "\n".join([header, ""] + out + [""] + notes + [""] + cpu_lines + [""] + pg_lines)
    print(text)

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "latest.md"), "w") as f:
        f.write("# seatlock benchmark: latest run\n\n")
        f.write(header + "\n\n")
        f.write("\n".join(out) + "\n\n")
        f.write("\n".join(f"{n}" if n.startswith("  ") else n for n in notes) + "\n\n")
        f.write("\n".join(cpu_lines) + "\n\n")
        f.write("\n".join(pg_lines) + "\n")
    result = {
        "run": env,
        "machine": machine,
        "rows": rows,
        "storm_postgres": {"xacts": xacts, "background_sweeps": background,
                           "refused": refused_b, "per_refused": per_refusal},
        "raw": {
            "ceiling_eval": eval_c, "ceiling_confirm": pgb, "ceiling_confirm_counts": ceil_counts,
            "a": a, "b": b, "c": c, "healthz": h, "a_status": mix_a, "b_status": mix_b, "c_status": mix_c,
            "postgres_only": p_raw, "rss": rss, "cpu": cpu, "logs": logs, "phases": phases,
            "postgres_side": pg_side,
        },
    }
    with open(os.path.join(out_dir, "latest.json"), "w") as f:
        json.dump(result, f, indent=2, default=str)


def main(argv):
    if len(argv) >= 2 and argv[1] == "free-port":
        free_port()
    elif len(argv) >= 4 and argv[1] == "cpu":
        cpu(argv[2], argv[3], argv[4:])
    elif len(argv) == 4 and argv[1] == "report":
        report(argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
