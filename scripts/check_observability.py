#!/usr/bin/env python3
"""Engine-free checks of the deployable stack: the Grafana dashboard, its provisioning, the
Prometheus config, docker-compose.yml and the Dockerfile, cross-checked against the service's
own declarations (src/telemetry/catalogue.rs, config/default.toml) and a live /metrics dump.

No Docker engine is needed: PromQL is parse-checked by `promtool check rules` (each dashboard
expression becomes a recording rule), metric and label names are compared with what the
service declares and what it actually exposed, and the compose file is checked structurally
(plus against the Compose JSON schema when one is given).

Run by scripts/check-observability.sh, which starts the service, exercises it and passes the
/metrics dump here. Standalone:

    python3 scripts/check_observability.py --metrics /tmp/metrics.txt [--strict]

Prints one line per check (ok / WARN / FAIL / skip) and exits non-zero if any check failed
(or, with --strict, if any check warned).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - the shell wrapper installs it
    sys.exit("check_observability.py needs PyYAML (pip install pyyaml)")

DATASOURCE_UID = "seatlock-prometheus"
DASHBOARD_UID = "seatlock-overview"
DASHBOARD_TITLE = "seatlock overview"
SERVICE = "seatlock"
# Environment variables the service reads besides APP__SECTION__KEY (see src/config.rs).
PLAIN_ENV = {"DATABASE_URL", "REDIS_URL", "PORT", "RUST_LOG", "APP_ENV"}
# Value substituted for Grafana's interval variables when parse-checking.
WINDOW = "5m"
GRAFANA_INTERVAL_VARS = {
    "__rate_interval": WINDOW,
    "__interval": WINDOW,
    "__range": WINDOW,
    "__range_s": "300",
    "__range_ms": "300000",
    "__interval_ms": "300000",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan", "atan2", "start", "end",
}
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
# Functions whose range argument is a rate window: Grafana's $__rate_interval is the only
# window that stays correct for every zoom level and scrape interval.
RATE_FUNCTIONS = {"rate", "irate"}


# --------------------------------------------------------------------------------- reporting
class Report:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.counts = {"ok": 0, "WARN": 0, "FAIL": 0, "skip": 0}

    def _line(self, kind: str, name: str, detail: str = "") -> None:
        self.counts[kind] += 1
        print(f"{kind:<4}  {name}" + (f": {detail}" if detail else ""), flush=True)

    def ok(self, name: str, detail: str = "") -> None:
        self._line("ok", name, detail)

    def warn(self, name: str, detail: str) -> None:
        self._line("FAIL" if self.strict else "WARN", name, detail)

    def fail(self, name: str, detail: str) -> None:
        self._line("FAIL", name, detail)

    def skip(self, name: str, detail: str) -> None:
        self._line("skip", name, detail)

    def check(self, cond: bool, name: str, bad: str, good: str = "") -> bool:
        if cond:
            self.ok(name, good)
        else:
            self.fail(name, bad)
        return cond


# ----------------------------------------------------------------------------- source facts
def balanced(text: str, open_at: int) -> tuple[str, int]:
    """Returns the text inside the bracket at text[open_at] and the index of its closer."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    opener = text[open_at]
    closer = pairs[opener]
    depth = 0
    i = open_at
    quote = None
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c == opener:
            depth += 1
        elif c == closer:
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i], i
        i += 1
    raise ValueError(f"unbalanced {opener!r} in: {text[open_at:open_at + 80]}")


def split_top_level(text: str, sep: str = ",") -> list[str]:
    parts, depth, cur, quote = [], 0, [], None
    for c in text:
        if quote:
            cur.append(c)
            if c == quote:
                quote = None
            continue
        if c in "\"'":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


class Telemetry:
    """What src/telemetry/ declares (catalogue.rs, and the files beside it: live.rs for the live
    seat map, outbox.rs for the history and webhooks, ...): metric names, kinds, labels, and who
    records them."""

    def __init__(self, repo: Path) -> None:
        self.path = repo / "src" / "telemetry" / "catalogue.rs"
        # Every file of src/telemetry/ but its module root and its label enums.
        self.files = [self.path] + sorted(
            f for f in (repo / "src" / "telemetry").glob("*.rs")
            if f.name not in ("catalogue.rs", "mod.rs", "labels.rs"))
        src = "\n".join(f.read_text() for f in self.files)
        self.consts = dict(re.findall(r'pub const (\w+): &str = "([a-zA-Z_:][a-zA-Z0-9_:]*)";', src))
        self.names = set(self.consts.values())
        self.kind: dict[str, str] = {}
        self.labels: dict[str, set[str]] = {n: set() for n in self.names}
        self.recorders: dict[str, set[str]] = {n: set() for n in self.names}
        fn_spans = [
            (m.start(), m.group(1)) for m in re.finditer(r"\bfn (\w+)\s*[(<]", src)
        ]
        # Series registered at zero at start-up are not "recorded" by anyone.
        not_recorders = {"register_at_zero", "describe_metrics", "metrics_handle", "describe"}
        for m in re.finditer(r"\b(counter|gauge|histogram|describe_counter|describe_gauge|describe_histogram)!\(", src):
            body, _ = balanced(src, m.end() - 1)
            args = split_top_level(body)
            if not args or args[0] not in self.consts:
                continue
            name = self.consts[args[0]]
            self.kind[name] = m.group(1).removeprefix("describe_")
            if m.group(1).startswith("describe_"):
                continue
            for arg in args[1:]:
                lm = re.match(r'"(\w+)"\s*=>', arg)
                if lm:
                    self.labels[name].add(lm.group(1))
            owner = [f for start, f in fn_spans if start < m.start()]
            if owner and owner[-1] not in not_recorders:
                self.recorders[name].add(owner[-1])
        callers = ""
        for rs in (repo / "src").rglob("*.rs"):
            if rs not in self.files:
                callers += rs.read_text()
        self.called = {f for fs in self.recorders.values() for f in fs if re.search(rf"\b{f}\(", callers)}
        self.string_literals = set(re.findall(r'"([^"\\\n]*)"', callers + src))

    def recorded(self, name: str) -> bool:
        return any(f in self.called for f in self.recorders.get(name, ()))


class MetricsDump:
    """Families, types, label names and values of a Prometheus text exposition."""

    def __init__(self, path: Path) -> None:
        self.types: dict[str, str] = {}
        self.labels: dict[str, set[str]] = {}
        self.values: dict[tuple[str, str], set[str]] = {}
        samples: list[tuple[str, str]] = []
        for line in path.read_text().splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(maxsplit=3)
                self.types[name] = kind
            elif line and not line.startswith("#"):
                m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s", line)
                if m:
                    samples.append((m.group(1), m.group(3) or ""))
        for name, labels in samples:
            family = self.family_of(name)
            self.labels.setdefault(family, set())
            for lname, lval in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels):
                if lname in ("le", "quantile"):
                    continue
                self.labels[family].add(lname)
                self.values.setdefault((family, lname), set()).add(lval)

    def family_of(self, sample: str) -> str:
        for suffix in HISTOGRAM_SUFFIXES:
            base = sample.removesuffix(suffix)
            if base != sample and self.types.get(base) in ("histogram", "summary"):
                return base
        return sample

    def has(self, family: str) -> bool:
        return family in self.labels


def load_toml_keys(path: Path) -> set[str]:
    try:
        import tomllib

        data = tomllib.loads(path.read_text())

        def flatten(table: dict, prefix: str) -> set[str]:
            out = set()
            for k, v in table.items():
                out |= flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}"}
            return out

        return {k for s, table in data.items() if isinstance(table, dict) for k in flatten(table, f"{s}.")}
    except ImportError:  # Python < 3.11: the file is flat [section] key = value
        keys, section = set(), None
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if m := re.fullmatch(r"\[(\w+)\]", line):
                section = m.group(1)
            elif (m := re.match(r"(\w+)\s*=", line)) and section:
                keys.add(f"{section}.{m.group(1)}")
        return keys


# ----------------------------------------------------------------------------------- PromQL
def strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)


def selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Every `metric{matchers}` and bare `metric` in expr, with its label matchers."""
    out = []
    text = expr
    i = 0
    while i < len(text):
        m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(text, i)
        if not m or (i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_:$")):
            if text[i] in "\"'":
                q = text[i]
                j = i + 1
                while j < len(text) and text[j] != q:
                    j += 2 if text[j] == "\\" else 1
                i = j + 1
            elif text[i] == "[":
                i = text.index("]", i) + 1
            else:
                i += 1
            continue
        word = m.group(0)
        j = m.end()
        while j < len(text) and text[j] == " ":
            j += 1
        nxt = text[j] if j < len(text) else ""
        if word.lower() in PROMQL_KEYWORDS:
            # by (...), on (...), group_left (...): label lists, not selectors.
            if nxt == "(":
                _, close = balanced(text, j)
                i = close + 1
            else:
                i = m.end()
            continue
        if nxt == "(" or word in AGGREGATIONS:  # a call, or `sum by (x) (...)`
            i = j + 1 if nxt == "(" else m.end()
            continue
        if re.fullmatch(r"\d+[smhdwy]?|0x[0-9a-f]+", word):
            i = m.end()
            continue
        matchers = []
        if nxt == "{":
            body, close = balanced(text, j)
            for part in split_top_level(body):
                mm = re.match(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', part)
                if mm:
                    matchers.append((mm.group(1), mm.group(2), mm.group(3)))
            i = close + 1
        else:
            i = m.end()
        out.append((word, matchers))
    return out


def grouping_labels(expr: str) -> set[str]:
    found = set()
    clean = strip_strings(expr)
    for m in re.finditer(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(", clean):
        body, _ = balanced(clean, m.end() - 1)
        found |= {x.strip() for x in body.split(",") if x.strip()}
    return found


def range_windows(expr: str) -> list[tuple[str, str]]:
    """(function, window) for every range selector, the function being the innermost call."""
    out = []
    clean = strip_strings(expr)
    for m in re.finditer(r"\[([^\]]+)\]", clean):
        depth, k = 0, m.start() - 1
        func = ""
        while k >= 0:
            c = clean[k]
            if c == ")":
                depth += 1
            elif c == "(":
                if depth == 0:
                    fm = re.search(r"(\w+)\s*$", clean[:k])
                    func = fm.group(1) if fm else ""
                    break
                depth -= 1
            k -= 1
        out.append((func, m.group(1).strip()))
    return out


# ---------------------------------------------------------------------------------- alerts
def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


def check_alerts(r: Report, repo: Path, tel: Telemetry) -> None:
    """prometheus/alerts.yml: every metric an alert reads is one the service declares (or
    Prometheus's `up`), every label it matches or groups by exists on it (or is a target label),
    and every alert links a runbook section that exists."""
    path = repo / "prometheus" / "alerts.yml"
    rules = [rule for g in (yaml.safe_load(path.read_text()) or {}).get("groups", []) for rule in g.get("rules", [])]
    r.check(bool(rules), "alerts: rules present", f"{path.relative_to(repo)} has no rules", f"{len(rules)} alerts")
    target_labels = {"instance", "job", "le"}
    problems, runbooks = [], []
    doc = repo / "docs" / "operating.md"
    anchors = heading_anchors(doc.read_text()) if doc.exists() else set()
    for rule in rules:
        name, expr = rule.get("alert", "?"), rule.get("expr", "")
        for metric, matchers in selectors(expr):
            family = metric
            for suffix in HISTOGRAM_SUFFIXES:
                if metric.endswith(suffix) and metric.removesuffix(suffix) in tel.names:
                    family = metric.removesuffix(suffix)
            if family == "up":
                continue
            if family not in tel.names:
                problems.append(f"{name}: {metric} is not a metric of the service")
                continue
            for lname, _, _ in matchers:
                if lname not in tel.labels.get(family, set()) | target_labels:
                    problems.append(f"{name}: {metric} has no label {lname!r}")
        url = (rule.get("annotations") or {}).get("runbook_url", "")
        file, _, anchor = url.partition("#")
        if file != "docs/operating.md" or anchor not in anchors:
            runbooks.append(f"{name}: {url or 'no runbook_url'}")
    r.check(not problems, "alerts: every metric and label an alert reads is one the service has", "; ".join(problems))
    r.check(not runbooks, "alerts: every alert links an existing section of docs/operating.md", "; ".join(runbooks),
            f"{len(rules)} runbook links")


# -------------------------------------------------------------------------------- dashboard
def walk_panels(panels: list[dict]) -> list[dict]:
    out = []
    for p in panels:
        out.append(p)
        out.extend(walk_panels(p.get("panels", [])))
    return out


def variable_values(dashboard: dict) -> dict[str, str]:
    values = {}
    for var in dashboard.get("templating", {}).get("list", []):
        name = var.get("name")
        if var.get("includeAll"):
            values[name] = var.get("allValue") or ".*"
        elif var.get("type") in ("interval",):
            values[name] = WINDOW
        else:
            cur = var.get("current", {}).get("value")
            if isinstance(cur, list):
                cur = cur[0] if cur else ""
            values[name] = cur if cur and cur != "$__all" else ".*"
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    allv = {**GRAFANA_INTERVAL_VARS, **values}

    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        return allv.get(name, m.group(0))

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", repl, expr)


def check_dashboard(r: Report, repo: Path, tel: Telemetry, dump: MetricsDump | None, promtool: str,
                    fresh: MetricsDump | None = None) -> None:
    path = repo / "grafana" / "dashboards" / "seatlock-overview.json"
    try:
        dash = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        r.fail("dashboard: JSON parses", f"{path.relative_to(repo)}: {e}")
        return
    r.ok("dashboard: JSON parses", str(path.relative_to(repo)))
    r.check(dash.get("uid") == DASHBOARD_UID, "dashboard: uid", f"uid is {dash.get('uid')!r}, want {DASHBOARD_UID!r}", DASHBOARD_UID)
    r.check(dash.get("title") == DASHBOARD_TITLE, "dashboard: title", f"title is {dash.get('title')!r}, want {DASHBOARD_TITLE!r}", DASHBOARD_TITLE)
    r.check(dash.get("id") is None, "dashboard: no numeric id", "remove \"id\": provisioning assigns it")

    panels = walk_panels(dash.get("panels", []))
    ids = [p.get("id") for p in panels]
    dup = sorted({i for i in ids if ids.count(i) > 1 or i is None}, key=str)
    r.check(not dup, "dashboard: panel ids unique", f"duplicate or missing ids: {dup}", f"{len(panels)} panels")

    # Layout: inside the 24-column grid, no two panels overlapping, every panel under a row.
    boxes, problems = [], []
    for p in panels:
        g = p.get("gridPos") or {}
        if not all(k in g for k in "xywh"):
            problems.append(f"{p.get('title')!r} has no gridPos")
            continue
        if g["x"] < 0 or g["x"] + g["w"] > 24:
            problems.append(f"{p.get('title')!r} is outside the 24-column grid")
        boxes.append((g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"], p.get("title")))
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            A, B = boxes[a], boxes[b]
            if A[0] < B[2] and B[0] < A[2] and A[1] < B[3] and B[1] < A[3]:
                problems.append(f"{A[4]!r} overlaps {B[4]!r}")
    rows = [p for p in panels if p.get("type") == "row"]
    first_row_y = min((p["gridPos"]["y"] for p in rows), default=None)
    orphans = [p.get("title") for p in panels if p.get("type") != "row" and (first_row_y is None or p.get("gridPos", {}).get("y", 0) < first_row_y)]
    if orphans:
        problems.append(f"panels above the first row: {orphans}")
    r.check(not problems, "dashboard: layout (grid, overlaps, rows)", "; ".join(problems),
            f"{len(rows)} rows: " + ", ".join(p.get("title", "") for p in rows))

    # Datasources: every data panel, every target and every query variable by the fixed uid.
    bad = []
    for p in panels:
        if p.get("type") == "row":
            continue
        ds = p.get("datasource")
        if not (isinstance(ds, dict) and ds.get("uid") == DATASOURCE_UID):
            bad.append(f"panel {p.get('title')!r}: {ds!r}")
        for t in p.get("targets", []):
            tds = t.get("datasource")
            if tds is not None and not (isinstance(tds, dict) and tds.get("uid") == DATASOURCE_UID):
                bad.append(f"panel {p.get('title')!r} target {t.get('refId')}: {tds!r}")
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            ds = var.get("datasource")
            if not (isinstance(ds, dict) and ds.get("uid") == DATASOURCE_UID):
                bad.append(f"variable ${var.get('name')}: {ds!r}")
    r.check(not bad, f"dashboard: every panel, target and variable uses datasource uid {DATASOURCE_UID}", "; ".join(bad))

    # Collect expressions.
    exprs = []  # (where, expr)
    for p in panels:
        for t in p.get("targets", []):
            if t.get("hide"):
                continue
            e = t.get("expr", "")
            if e.strip():
                exprs.append((f"{p.get('title')!r}/{t.get('refId')}", e))
            elif p.get("type") != "row":
                r.fail("dashboard: target has an expression", f"{p.get('title')!r}/{t.get('refId')} is empty")
    no_targets = [p.get("title") for p in panels if p.get("type") not in ("row", "text") and not p.get("targets")]
    r.check(not no_targets, "dashboard: every data panel has a query", f"no targets: {no_targets}")
    var_queries = []
    for var in dash.get("templating", {}).get("list", []):
        q = var.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        if var.get("type") == "query":
            var_queries.append((var.get("name"), q))

    # Rate windows.
    bad = []
    for where, e in exprs:
        for func, window in range_windows(e):
            if not window.startswith("$"):
                bad.append(f"{where}: hard-coded window [{window}] in {func}()")
            elif func in RATE_FUNCTIONS and window not in ("$__rate_interval", "${__rate_interval}"):
                bad.append(f"{where}: {func}() over [{window}], want [$__rate_interval]")
    r.check(not bad, "dashboard: rate()/irate() windows are $__rate_interval, no hard-coded ranges", "; ".join(bad),
            f"{len(exprs)} expressions")

    # Parse-check every expression with promtool, as recording rules.
    values = variable_values(dash)
    rules, leftovers = [], []
    for n, (where, e) in enumerate(exprs):
        concrete = substitute(e, values)
        if "$" in concrete:
            leftovers.append(f"{where}: {concrete}")
        rules.append({"record": f"seatlock_dashboard:expr_{n}", "expr": concrete})
    r.check(not leftovers, "dashboard: every $variable is defined", "unresolved: " + "; ".join(leftovers),
            "substituted: " + ", ".join(f"${k}={v}" for k, v in sorted(values.items())) + f", $__rate_interval/$__interval/$__range={WINDOW}")
    with tempfile.TemporaryDirectory() as tmp:
        rules_file = Path(tmp) / "dashboard-rules.yml"
        rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False))
        proc = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True)
        if proc.returncode == 0:
            r.ok("dashboard: promtool check rules (every expression parses)", f"{len(rules)} expressions")
        else:
            r.fail("dashboard: promtool check rules (every expression parses)", (proc.stdout + proc.stderr).strip().replace("\n", " | "))
            # Pinpoint the offending expressions one by one.
            for rule, (where, _) in zip(rules, exprs, strict=True):
                one = Path(tmp) / "one.yml"
                one.write_text(yaml.safe_dump({"groups": [{"name": "one", "rules": [rule]}]}))
                p1 = subprocess.run([promtool, "check", "rules", str(one)], capture_output=True, text=True)
                if p1.returncode != 0:
                    r.fail(f"dashboard: expression {where}", (p1.stdout + p1.stderr).strip().splitlines()[-1] + f" -- {rule['expr']}")

    # Metric names, labels and label values against telemetry.rs and the live dump.
    used: dict[str, list[str]] = {}
    label_problems, value_problems = [], []
    all_exprs = list(exprs)
    for name, q in var_queries:
        m = re.match(r"\s*label_values\(\s*([a-zA-Z_:][\w:]*)\s*(?:\{[^}]*\})?\s*,\s*(\w+)\s*\)", q)
        if m:
            all_exprs.append((f"variable ${name}", f'{m.group(1)}{{{m.group(2)}!=""}}'))
        elif q:
            r.warn("dashboard: variable query understood", f"${name}: {q!r} is not label_values(metric, label); not checked")
    for where, e in all_exprs:
        families_here, bucket_here = set(), False
        for name, matchers in selectors(substitute(e, {k: "x" for k in variable_values(dash)})):
            used.setdefault(name, []).append(where)
            family = name
            for suffix in HISTOGRAM_SUFFIXES:
                if name.endswith(suffix) and name.removesuffix(suffix) in tel.names:
                    family = name.removesuffix(suffix)
                    bucket_here |= suffix == "_bucket"
            families_here.add(family)
            known = set(tel.labels.get(family, set()))
            if dump:
                known |= dump.labels.get(family, set())
            if name.endswith("_bucket"):
                known.add("le")
            for lname, op, lval in matchers:
                if lname == "__name__":
                    continue
                if family in tel.names and lname not in known:
                    label_problems.append(f"{where}: {name} has no label {lname!r} (has {sorted(known) or 'none'})")
                    continue
                # Values: each literal alternative must be a value the service can produce:
                # seen in the dump or written as a string literal somewhere in src/.
                if lval in ("", ".*", ".+", "x") or "$" in lval:
                    continue
                alts = lval.split("|") if op in ("=~", "!~") else [lval]
                seen = dump.values.get((family, lname), set()) if dump else set()
                for alt in alts:
                    if re.search(r"[\\.*+?()\[\]{}^$]", alt) and op in ("=~", "!~"):
                        continue  # a real regex: not enumerable
                    if alt not in seen and alt not in tel.string_literals:
                        value_problems.append(f"{where}: {name}{{{lname}{op}\"{lval}\"}}: {alt!r} is never produced")
        allowed = set().union(*(tel.labels.get(f, set()) | (dump.labels.get(f, set()) if dump else set()) for f in families_here)) if families_here else set()
        if bucket_here:
            allowed.add("le")
        for lname in grouping_labels(e):
            if lname not in allowed:
                label_problems.append(f"{where}: grouping by {lname!r}, which none of {sorted(families_here)} has")
    # On a fresh instance (its first scrape, before any request), every family a panel queries
    # already has a series: otherwise the panel reads "No data" instead of 0 until the first
    # event of its kind. A target may instead handle absence itself with `or vector(0)`.
    if fresh is not None:
        absent = []
        for name, wheres in sorted(used.items()):
            family = fresh.family_of(name) if name not in tel.names else name
            for suffix in HISTOGRAM_SUFFIXES:
                if name.endswith(suffix) and name.removesuffix(suffix) in tel.names:
                    family = name.removesuffix(suffix)
            if fresh.has(family):
                continue
            unguarded = [w for w in wheres if not any(
                w == where and re.search(r"\bor\s+vector\(\s*0\s*\)", e) for where, e in all_exprs)]
            if unguarded:
                absent.append(f"{name} (panel {unguarded[0]})")
        r.check(not absent, "dashboard: every queried series exists on a fresh instance (no \"No data\" panels)",
                "absent from the first scrape: " + "; ".join(absent) +
                " -- register it at start-up (telemetry::catalogue register_at_zero) or add `or vector(0)`",
                f"{len(used)} metrics in the first scrape")
    r.check(not label_problems, "dashboard: label names exist on their metrics", "; ".join(label_problems))
    r.check(not value_problems, "dashboard: label values in matchers are values the service emits", "; ".join(value_problems))

    for name in sorted(used):
        family, suffix = name, ""
        for s in HISTOGRAM_SUFFIXES:
            if name.endswith(s) and name.removesuffix(s) in tel.names:
                family, suffix = name.removesuffix(s), s
        check = f"metric {name}"
        if family not in tel.names:
            r.fail(check, f"not declared in src/telemetry/catalogue.rs (used by {used[name][0]})")
            continue
        kind = tel.kind.get(family, "?")
        if suffix and kind != "histogram":
            r.fail(check, f"{family} is a {kind}, not a histogram: it has no {suffix}")
            continue
        if kind == "histogram" and not suffix:
            r.fail(check, f"{family} is a histogram: query {family}_bucket/_sum/_count")
            continue
        if kind == "counter" and not family.endswith("_total"):
            r.warn(check, "counter without the _total suffix")
        if dump is None:
            r.skip(check, "declared; no /metrics dump given")
            continue
        if dump.has(family):
            dtype = dump.types.get(family)
            if dtype and dtype != kind and not (kind == "histogram" and dtype == "summary"):
                r.fail(check, f"declared {kind} but exposed as {dtype}")
            elif kind == "histogram" and dtype == "summary":
                r.fail(check, "exposed as a summary (no buckets): histogram_quantile() gets nothing; give it buckets in telemetry::metrics_handle")
            else:
                r.ok(check, f"{dtype} in /metrics")
        elif not tel.recorded(family):
            fns = ", ".join(sorted(tel.recorders.get(family, ()))) or "no recorder"
            r.warn(check, f"declared but never recorded: {fns} is not called outside telemetry/catalogue.rs, so the panel stays empty")
        elif "_errors_" in family:
            r.ok(check, "declared and recorded; appears after the first failure")
        else:
            r.warn(check, "declared and recorded, but the exercise did not produce it")


# ---------------------------------------------------------------------------------- compose
def interpolate(value):
    """Compose interpolation using defaults only, so the checks see what a bare
    `docker compose up` sees: ${VAR:-d} and ${VAR-d} become d, ${VAR} and $VAR become ""."""
    if isinstance(value, str):
        return re.sub(r"\$\$|\$\{(\w+)(?:(:?[-?+])([^}]*))?\}|\$(\w+)", _interpolate_one, value)
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


def required_variables(value):
    """The variables written ${VAR:?err} or ${VAR?err}: compose stops when one is unset."""
    if isinstance(value, str):
        yield from re.findall(r"(?<!\$)\$\{(\w+):?\?", value)
    elif isinstance(value, list):
        for v in value:
            yield from required_variables(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from required_variables(v)


def _interpolate_one(m: re.Match) -> str:
    if m.group(0) == "$$":
        return "$"
    if m.group(2) and m.group(2).endswith("-"):
        return m.group(3)
    return ""


def env_map(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            k, _, v = str(item).partition("=")
            out[k] = v
        return out
    return {k: "" if v is None else str(v) for k, v in env.items()}


def parse_ports(service: dict) -> list[tuple[str, str]]:
    """(published, target) pairs."""
    out = []
    for p in service.get("ports") or []:
        if isinstance(p, dict):
            out.append((str(p.get("published", "")), str(p.get("target", ""))))
            continue
        spec = str(p).split("/")[0]
        parts = spec.rsplit(":", 2)
        if len(parts) == 1:
            out.append(("", parts[0]))
        else:
            out.append((parts[-2], parts[-1]))
    return out


def mounts(service: dict) -> list[tuple[str, str, str]]:
    """(type, source, target) of every volume entry."""
    out = []
    for v in service.get("volumes") or []:
        if isinstance(v, dict):
            out.append((v.get("type", "volume"), str(v.get("source", "")), str(v.get("target", ""))))
            continue
        parts = str(v).split(":")
        if len(parts) == 1:
            out.append(("volume", "", parts[0]))
            continue
        src, dst = parts[0], parts[1]
        kind = "bind" if src.startswith((".", "/", "~")) else "volume"
        out.append((kind, src, dst))
    return out


def check_compose(r: Report, repo: Path, schema: Path | None) -> dict | None:
    path = repo / "docker-compose.yml"
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        r.fail("compose: YAML parses", str(e))
        return None
    r.ok("compose: YAML parses", "docker-compose.yml")
    if schema:
        try:
            import jsonschema

            spec = json.loads(schema.read_text())
            # The Compose schema says draft 2019-09 under an http:// URI jsonschema does not map.
            validator_cls = getattr(jsonschema, "Draft201909Validator", jsonschema.Draft7Validator)
            validator = validator_cls(spec)
            errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.path))
            r.check(not errors, "compose: valid against the Compose specification schema",
                    "; ".join(f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors[:5]), schema.name)
        except ImportError:
            r.skip("compose: Compose specification schema", "jsonschema not installed")
    else:
        r.skip("compose: Compose specification schema", "no schema given (--compose-schema)")

    required = sorted(set(required_variables(raw)))
    r.check(not required, "compose: a bare `docker compose up` needs no variable",
            "required (${VAR:?...}): " + ", ".join(required))
    compose = interpolate(raw)
    services = compose.get("services") or {}
    r.check(bool(services), "compose: has services", "no services")
    declared_volumes = set((compose.get("volumes") or {}).keys())

    for name, svc in services.items():
        svc = svc or {}
        r.check("image" in svc or "build" in svc, f"compose: {name} has image or build", "neither image nor build")
        if "image" in svc and "build" not in svc and ":" not in str(svc["image"]).rsplit("/", 1)[-1]:
            r.warn(f"compose: {name} image is pinned", f"{svc['image']} has no tag (means :latest)")

    for name, svc in services.items():
        deps = (svc or {}).get("depends_on")
        if not deps:
            continue
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        problems = []
        for target, spec in deps.items():
            if target not in services:
                problems.append(f"{target} is not a service")
                continue
            hc = (services[target] or {}).get("healthcheck")
            has_hc = bool(hc) and not hc.get("disable") and hc.get("test") not in (None, ["NONE"], "NONE")
            cond = (spec or {}).get("condition", "service_started")
            if has_hc and cond != "service_healthy":
                problems.append(f"{target} has a healthcheck but the condition is {cond}")
            if cond == "service_healthy" and not has_hc:
                problems.append(f"{target}: service_healthy but it has no healthcheck (would never start)")
        r.check(not problems, f"compose: {name} depends_on", "; ".join(problems), ", ".join(f"{t} ({(s or {}).get('condition', 'service_started')})" for t, s in deps.items()))

    for name, svc in services.items():
        profiled = bool((svc or {}).get("profiles"))
        for kind, src, dst in mounts(svc or {}):
            if kind == "bind":
                host = (repo / src).resolve() if not src.startswith("/") else Path(src)
                inside = str(host).startswith(str(repo.resolve()))
                label = f"compose: {name} bind mount {src} -> {dst}"
                if not inside:
                    r.fail(label, "host path is outside the repository")
                elif host.exists():
                    r.ok(label, "exists")
                elif profiled:
                    r.warn(label, f"{src} does not exist yet (service only runs under profiles {svc['profiles']})")
                else:
                    r.fail(label, f"{src} does not exist in the repository")
            elif kind == "volume" and src:
                r.check(src in declared_volumes, f"compose: {name} named volume {src}", "not declared under top-level volumes:")

    svc = services.get(SERVICE)
    if not svc:
        r.fail(f"compose: service {SERVICE}", "missing")
        return compose
    env = env_map(svc)
    keys = load_toml_keys(repo / "config" / "default.toml")
    bad = []
    for var in env:
        if var in PLAIN_ENV:
            continue
        m = re.fullmatch(r"APP__([A-Z0-9_]+?(?:__[A-Z0-9_]+?)*)__([A-Z0-9_]+)", var)
        if not m:
            bad.append(f"{var} is neither one of {sorted(PLAIN_ENV)} nor APP__SECTION__KEY")
        elif (key := f"{m.group(1).lower().replace('__', '.')}.{m.group(2).lower()}") not in keys:
            bad.append(f"{var}: {key} is not a key of config/default.toml")
    r.check(not bad, f"compose: {SERVICE} environment names", "; ".join(bad), ", ".join(env))
    port = env.get("PORT") or str(read_default_port(repo))
    ports = parse_ports(svc)
    r.check(any(t == port for _, t in ports), f"compose: {SERVICE} publishes PORT", f"PORT={port} but ports are {ports}", f"{ports[0][0]}:{ports[0][1]}" if ports else "")
    hc = json.dumps((svc.get("healthcheck") or {}).get("test", ""))
    r.check("/readyz" in hc and port in hc, f"compose: {SERVICE} healthcheck probes /readyz on PORT", f"healthcheck test is {hc}")
    return compose


def read_default_port(repo: Path) -> int:
    m = re.search(r"^\[server\][^\[]*?^port\s*=\s*(\d+)", (repo / "config" / "default.toml").read_text(), re.M | re.S)
    return int(m.group(1)) if m else 8080


# ------------------------------------------------------------------------ cross-file checks
def check_wiring(r: Report, repo: Path, compose: dict | None) -> None:
    services = (compose or {}).get("services") or {}
    svc = services.get(SERVICE) or {}
    port = env_map(svc).get("PORT") or str(read_default_port(repo))

    prom = yaml.safe_load((repo / "prometheus" / "prometheus.yml").read_text()) or {}
    targets, interval = [], (prom.get("global") or {}).get("scrape_interval", "1m")
    for job in prom.get("scrape_configs") or []:
        for sc in job.get("static_configs") or []:
            for t in sc.get("targets") or []:
                targets.append((job.get("job_name"), job.get("metrics_path", "/metrics"), t, job.get("scrape_interval", interval)))
    ours = [t for t in targets if t[2] == f"{SERVICE}:{port}"]
    r.check(bool(ours) and all(t[1] == "/metrics" for t in ours), "prometheus: scrapes seatlock /metrics",
            f"no target {SERVICE}:{port} with metrics_path /metrics in {targets}", f"{SERVICE}:{port} every {ours[0][3] if ours else '?'}")
    for _job, _, target, _ in targets:
        host = target.rsplit(":", 1)[0]
        if host not in ("localhost", "127.0.0.1") and services:
            r.check(host in services, f"prometheus: target {target} is a compose service", f"no compose service {host!r}")

    ds_file = repo / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    ds = yaml.safe_load(ds_file.read_text()) or {}
    sources = ds.get("datasources") or []
    ours = [d for d in sources if d.get("uid") == DATASOURCE_UID]
    if r.check(bool(ours), f"grafana: datasource uid {DATASOURCE_UID} provisioned", f"no datasource with uid {DATASOURCE_UID} in {ds_file.relative_to(repo)}"):
        d = ours[0]
        m = re.match(r"https?://([^:/]+):(\d+)", d.get("url", ""))
        prom_svc = services.get(m.group(1)) if m else None
        r.check(d.get("type") == "prometheus" and bool(m) and (not services or prom_svc is not None),
                "grafana: datasource points at the prometheus service", f"type={d.get('type')} url={d.get('url')}", d.get("url", ""))
        ti = (d.get("jsonData") or {}).get("timeInterval")
        r.check(ti in (None, interval), "grafana: datasource timeInterval matches the scrape interval", f"timeInterval {ti} vs scrape_interval {interval}", str(ti))

    prov = yaml.safe_load((repo / "grafana" / "provisioning" / "dashboards" / "seatlock.yml").read_text()) or {}
    paths = [((p.get("options") or {}).get("path"), p.get("type")) for p in prov.get("providers") or []]
    graf = services.get("grafana") or {}
    graf_mounts = {dst: src for kind, src, dst in mounts(graf) if kind == "bind"}
    dash_target = next((dst for dst, src in graf_mounts.items() if src.rstrip("/") in ("./grafana/dashboards", "grafana/dashboards")), None)
    r.check(bool(paths) and all(t == "file" for _, t in paths) and dash_target in [p for p, _ in paths],
            "grafana: dashboard provider reads the mounted dashboards directory",
            f"provider paths {paths}, ./grafana/dashboards mounted at {dash_target}", str(dash_target))
    r.check(any(src.rstrip("/") in ("./grafana/provisioning", "grafana/provisioning") and dst == "/etc/grafana/provisioning" for dst, src in graf_mounts.items()),
            "grafana: provisioning mounted at /etc/grafana/provisioning", f"grafana binds: {graf_mounts}")

    k6 = services.get("k6")
    if k6:
        cmd = k6.get("command")
        cmd = " ".join(cmd) if isinstance(cmd, list) else str(cmd or "")
        script = re.search(r"/scripts/(\S+\.js)", cmd)
        k6_binds = {dst: src for kind, src, dst in mounts(k6) if kind == "bind"}
        host_dir = k6_binds.get("/scripts")
        if not (script and host_dir):
            r.fail("k6: default scenario", f"command {cmd!r} / binds {k6_binds}")
        else:
            f = (repo / host_dir / script.group(1))
            if f.exists():
                r.ok("k6: default scenario exists", str(f.relative_to(repo)))
            else:
                r.warn("k6: default scenario exists", f"{host_dir}/{script.group(1)} is missing (k6 scripts not in the repo yet)")
        results = env_map(k6).get("RESULTS_DIR")
        if results:
            writable = [
                str(v).split(":")[1] for v in k6.get("volumes") or []
                if isinstance(v, str) and len(str(v).split(":")) >= 2 and not str(v).endswith(":ro")
            ]
            r.check(any(results == w or results.startswith(w.rstrip("/") + "/") for w in writable),
                    "k6: RESULTS_DIR is on a writable mount", f"RESULTS_DIR={results}, writable mounts {writable}", results)
        base = env_map(k6).get("BASE_URL", "")
        r.check(base == f"http://{SERVICE}:{port}", "k6: BASE_URL points at the service", f"BASE_URL={base!r}", base)


# ------------------------------------------------------------------------------- Dockerfile
def dockerignore_matcher(repo: Path):
    rules = []
    f = repo / ".dockerignore"
    if f.exists():
        for line in f.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            neg = line.startswith("!")
            pat = line[1:] if neg else line
            pat = pat.strip("/")
            rx = ""
            i = 0
            while i < len(pat):
                if pat.startswith("**/", i):
                    rx += "(?:.*/)?"
                    i += 3
                elif pat.startswith("**", i):
                    rx += ".*"
                    i += 2
                elif pat[i] == "*":
                    rx += "[^/]*"
                    i += 1
                elif pat[i] == "?":
                    rx += "[^/]"
                    i += 1
                else:
                    rx += re.escape(pat[i])
                    i += 1
            rules.append((re.compile(rx + r"(?:/.*)?\Z"), neg))

    def ignored(rel: str) -> bool:
        result = False
        for rx, neg in rules:
            if rx.match(rel):
                result = not neg
        return result

    return ignored


def check_dockerfile(r: Report, repo: Path, compose: dict | None, hadolint: str | None) -> None:
    path = repo / "Dockerfile"
    if not r.check(path.exists(), "dockerfile: exists", "no Dockerfile"):
        return
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    stages, cur = [], None
    for ln in lines:
        word, _, rest = ln.partition(" ")
        word = word.upper()
        if word == "FROM":
            cur = {"from": rest.split()[0], "name": rest.split()[-1] if " as " in rest.lower() else None, "ins": []}
            stages.append(cur)
        elif cur is not None:
            cur["ins"].append((word, rest.strip()))
    r.check(len(stages) >= 2, "dockerfile: multi-stage", f"{len(stages)} stage(s)", " -> ".join(s["from"] for s in stages))
    final = stages[-1] if stages else {"ins": []}
    users = [rest for w, rest in final["ins"] if w == "USER"]
    r.check(bool(users) and users[-1].split(":")[0] not in ("root", "0"), "dockerfile: runtime runs as non-root", f"USER {users[-1] if users else '(none)'}", f"USER {users[-1] if users else ''}")
    expose = " ".join(rest for w, rest in final["ins"] if w == "EXPOSE")
    port = str(read_default_port(repo))
    if compose:
        port = env_map((compose.get("services") or {}).get(SERVICE) or {}).get("PORT") or port
    r.check(re.search(rf"\b{port}\b", expose) is not None, "dockerfile: EXPOSE matches PORT", f"EXPOSE {expose!r}, PORT {port}", f"EXPOSE {expose}")
    hcs = [rest for w, rest in final["ins"] if w == "HEALTHCHECK"]
    r.check(bool(hcs) and "/readyz" in hcs[-1], "dockerfile: HEALTHCHECK probes /readyz", f"HEALTHCHECK {hcs}")
    if hcs and re.search(r"\bcurl\b|\bwget\b", hcs[-1]):
        tools = re.findall(r"\b(curl|wget)\b", hcs[-1])
        installed = " ".join(rest for w, rest in final["ins"] if w == "RUN")
        r.check(all(t in installed for t in tools), "dockerfile: HEALTHCHECK tool installed in the runtime stage", f"{tools} not installed")
    copies = [rest for w, rest in final["ins"] if w == "COPY" and "--from" not in rest]
    r.check(any(re.search(r"\bconfig/?\s", c + " ") for c in copies), "dockerfile: runtime stage ships config/", "no COPY of config/")

    # Build context: the builder's COPY sources exist and are not excluded by .dockerignore, and
    # every file the crate embeds at compile time is inside something copied.
    ignored = dockerignore_matcher(repo)
    builder_copies = []
    for s in stages[:-1] or stages:
        for w, rest in s["ins"]:
            if w == "COPY" and "--from" not in rest:
                args = [a for a in rest.split() if not a.startswith("--")]
                builder_copies += args[:-1]
    problems = []
    for src in builder_copies:
        rel = src.strip("./") or "."
        if not (repo / rel).exists():
            problems.append(f"COPY {src}: not in the repository")
        elif ignored(rel):
            problems.append(f"COPY {src}: excluded by .dockerignore")
    embedded = set()
    for rs in (repo / "src").rglob("*.rs"):
        body = rs.read_text()
        for m in re.finditer(r'include_(?:str|bytes)!\(\s*"([^"]+)"', body):
            embedded.add(os.path.relpath((rs.parent / m.group(1)).resolve(), repo.resolve()))
        for m in re.finditer(r'migrate!\(\s*"([^"]+)"', body):
            embedded.add(os.path.normpath(m.group(1)))
    copied = [c.strip("./") for c in builder_copies]
    for e in sorted(embedded):
        if not any(e == c or e.startswith(c.rstrip("/") + "/") for c in copied):
            problems.append(f"{e} is compiled in (include_str!/migrate!) but the builder does not COPY it")
        elif ignored(e):
            problems.append(f"{e} is compiled in but excluded by .dockerignore")
    r.check(not problems, "dockerfile: build context has everything the compile embeds", "; ".join(problems),
            f"{len(embedded)} embedded paths covered by COPY {' '.join(builder_copies)}")
    # The dependency layer builds a placeholder crate (src/main.rs + src/lib.rs) from the real
    # Cargo.toml: any target or build script the manifest names explicitly must exist there too.
    try:
        import tomllib

        manifest = tomllib.loads((repo / "Cargo.toml").read_text())
        explicit = []
        if manifest.get("package", {}).get("build") not in (None, False):
            explicit.append(f"build script {manifest['package']['build']}")
        if (repo / "build.rs").exists():
            explicit.append("build.rs")
        for kind in ("test", "bench", "example"):
            explicit += [f"[[{kind}]] {t.get('name')}" for t in manifest.get(kind, [])]
        explicit += [f"[[bin]] {b.get('name')} at {b['path']}" for b in manifest.get("bin", []) if b.get("path") not in (None, "src/main.rs")]
        if manifest.get("lib", {}).get("path") not in (None, "src/lib.rs"):
            explicit.append(f"[lib] at {manifest['lib']['path']}")
        r.check(not explicit, "dockerfile: dependency layer placeholder satisfies Cargo.toml",
                f"Cargo.toml names {explicit}; the placeholder build (src/main.rs + src/lib.rs only, tests/ not in the context) would fail: create them in that RUN step",
                "no explicit targets or build script")
    except ImportError:
        r.skip("dockerfile: dependency layer placeholder satisfies Cargo.toml", "needs Python 3.11 (tomllib)")
    big = [d for d in ("target", ".git") if (repo / d).exists() and not ignored(d)]
    r.check(not big, "dockerignore: excludes target/ and .git", f"{big} would be sent as build context")

    if hadolint:
        proc = subprocess.run([hadolint, "--no-color", "--failure-threshold", "warning", str(path)], capture_output=True, text=True)
        out = (proc.stdout + proc.stderr).strip().replace("\n", " | ")
        r.check(proc.returncode == 0, "dockerfile: hadolint (warnings and errors fail)", out, out or "clean")
    else:
        r.skip("dockerfile: hadolint", "not installed")


# ------------------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--metrics", type=Path, help="a /metrics dump of the running service")
    ap.add_argument("--fresh-metrics", type=Path, help="the first /metrics dump of a fresh instance, before any request")
    ap.add_argument("--promtool", default=shutil.which("promtool") or "promtool")
    ap.add_argument("--hadolint", default=shutil.which("hadolint"))
    ap.add_argument("--compose-schema", type=Path, help="Compose specification JSON schema")
    ap.add_argument("--strict", action="store_true", help="treat warnings as failures")
    args = ap.parse_args()
    repo = args.repo.resolve()
    r = Report(args.strict)

    tel = Telemetry(repo)
    r.check(bool(tel.names), "telemetry: metric names declared in src/telemetry/catalogue.rs", "none found", f"{len(tel.names)} metrics")
    dump = None
    if args.metrics:
        dump = MetricsDump(args.metrics)
        r.check(bool(dump.types), "metrics dump: has metric families", f"{args.metrics} holds no # TYPE lines", f"{len(dump.types)} families")
        undeclared = sorted(f for f in dump.types if f.startswith("seatlock_") and f not in tel.names)
        r.check(not undeclared, "metrics dump: every seatlock_* family is declared in telemetry/catalogue.rs", f"undeclared: {undeclared}")
    if not shutil.which(args.promtool) and not Path(args.promtool).exists():
        r.fail("promtool", f"{args.promtool} not found")
        return 1

    fresh = MetricsDump(args.fresh_metrics) if args.fresh_metrics else None
    check_dashboard(r, repo, tel, dump, args.promtool, fresh)
    check_alerts(r, repo, tel)
    compose = check_compose(r, repo, args.compose_schema if args.compose_schema and args.compose_schema.exists() else None)
    check_wiring(r, repo, compose)
    check_dockerfile(r, repo, compose, args.hadolint)

    c = r.counts
    print(f"observability checks: {c['ok']} ok, {c['WARN']} warnings, {c['skip']} skipped, {c['FAIL']} FAILED")
    return 1 if c["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
