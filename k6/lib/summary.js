// handleSummary helper: writes `${RESULTS_DIR}/<scenario>.json` and a short text summary to
// stdout. Hand-written on purpose (no remote k6-summary import).

import { BASE_URL, RESULTS_DIR } from './common.js';

/** Value of `data.metrics[name].values[field]`, or null when the metric is absent. */
export function metricValue(data, name, field) {
  const m = data.metrics[name];
  if (!m || !m.values || m.values[field] === undefined) return null;
  return m.values[field];
}

/** Every threshold of the run as {metric, expression, ok}. */
export function thresholdResults(data) {
  const out = [];
  for (const [metric, m] of Object.entries(data.metrics)) {
    for (const [expression, t] of Object.entries(m.thresholds || {})) {
      out.push({ metric, expression, ok: t.ok });
    }
  }
  out.sort((a, b) => a.metric.localeCompare(b.metric));
  return out;
}

/**
 * Folds long families of per-tag thresholds (e.g. one `seat_sales{seat:Sx}` per hot seat) into
 * one text line; failing members are still named.
 */
function collapse(thresholds) {
  const families = {};
  for (const t of thresholds) {
    const m = /^([^{]+)\{(\w+):/.exec(t.metric);
    const key = m ? `${m[1]}{${m[2]}:*}|${t.expression}` : null;
    if (key) (families[key] = families[key] || []).push(t);
  }
  const out = [];
  const done = new Set();
  for (const t of thresholds) {
    const m = /^([^{]+)\{(\w+):/.exec(t.metric);
    const key = m ? `${m[1]}{${m[2]}:*}|${t.expression}` : null;
    if (!key || families[key].length <= 3) {
      out.push(t);
      continue;
    }
    if (done.has(key)) continue;
    done.add(key);
    const fam = families[key];
    const failed = fam.filter((x) => !x.ok).map((x) => x.metric);
    out.push({
      metric: key.split('|')[0],
      expression: `${t.expression} (${fam.length - failed.length}/${fam.length} ok${failed.length ? `; failed: ${failed.join(', ')}` : ''})`,
      ok: failed.length === 0,
    });
  }
  return out;
}

function fmt(n, digits) {
  if (n === null || n === undefined || Number.isNaN(n)) return '-';
  return Number(n).toFixed(digits === undefined ? 2 : digits);
}

/** The headline numbers shared by every scenario. */
export function keyNumbers(data) {
  const dur = (name, f) => metricValue(data, name, f);
  return {
    testRunSeconds: data.state ? data.state.testRunDurationMs / 1000 : null,
    iterations: dur('iterations', 'count'),
    iterationsPerSecond: dur('iterations', 'rate'),
    droppedIterations: dur('dropped_iterations', 'count') || 0,
    httpRequests: dur('http_reqs', 'count'),
    httpRequestsPerSecond: dur('http_reqs', 'rate'),
    httpFailedRate: dur('http_req_failed', 'rate'),
    latencyMs: {
      avg: dur('http_req_duration', 'avg'),
      med: dur('http_req_duration', 'med'),
      p95: dur('http_req_duration', 'p(95)'),
      p99: dur('http_req_duration', 'p(99)'),
      max: dur('http_req_duration', 'max'),
    },
    checksPassRate: dur('checks', 'rate'),
    checksPassed: dur('checks', 'passes'),
    checksFailed: dur('checks', 'fails'),
  };
}

/**
 * Builds the handleSummary result. `extra` is merged into the JSON; `lines` are extra text
 * lines for stdout; `verdictOk` (optional) lets a scenario fail the JSON verdict on top of the
 * thresholds (the exit code is decided by the thresholds alone).
 */
export function summarize(scenario, data, extra, lines, verdictOk) {
  const thresholds = thresholdResults(data);
  const thresholdsOk = thresholds.every((t) => t.ok);
  const passed = thresholdsOk && verdictOk !== false;
  const key = keyNumbers(data);
  const result = Object.assign(
    {
      scenario,
      baseUrl: BASE_URL,
      finishedAt: new Date().toISOString(),
      passed,
      thresholdsOk,
      key,
      thresholds,
    },
    extra || {},
    { metrics: data.metrics },
  );

  const text = [];
  text.push('');
  text.push(`=== seatlock k6: ${scenario} — ${passed ? 'PASSED' : 'FAILED'} ===`);
  text.push(`target            ${BASE_URL}`);
  text.push(`run time          ${fmt(key.testRunSeconds, 1)} s`);
  text.push(
    `iterations        ${key.iterations} (${fmt(key.iterationsPerSecond, 1)}/s), dropped ${key.droppedIterations}`,
  );
  text.push(`http requests     ${key.httpRequests} (${fmt(key.httpRequestsPerSecond, 1)}/s), failed ${fmt(100 * (key.httpFailedRate || 0), 3)}%`);
  const l = key.latencyMs;
  text.push(
    `latency ms        avg ${fmt(l.avg)}  med ${fmt(l.med)}  p95 ${fmt(l.p95)}  p99 ${fmt(l.p99)}  max ${fmt(l.max)}`,
  );
  if (key.checksPassRate !== null) {
    text.push(
      `checks            ${fmt(100 * key.checksPassRate, 3)}% passed (${key.checksPassed} ok, ${key.checksFailed} failed)`,
    );
  }
  for (const line of lines || []) text.push(line);
  text.push('thresholds:');
  for (const t of collapse(thresholds)) text.push(`  ${t.ok ? 'ok  ' : 'FAIL'} ${t.metric}: ${t.expression}`);
  const file = `${RESULTS_DIR}/${scenario}.json`;
  text.push(`result written to ${file}`);
  text.push('');

  return {
    [file]: JSON.stringify(result, null, 2),
    stdout: text.join('\n') + '\n',
  };
}
