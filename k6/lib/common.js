// Shared helpers for the seatlock k6 scenarios: configuration from __ENV, JSON requests,
// event creation, the idempotent confirm, and small random helpers. No remote imports.

import http from 'k6/http';
import { sleep } from 'k6';
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';

/** Base URL of the service, without a trailing slash. */
export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');

/** Directory handleSummary writes `<scenario>.json` into (it must exist; k6 does not create it). */
export const RESULTS_DIR = (__ENV.RESULTS_DIR || 'k6/results').replace(/\/+$/, '');

/** Client-side timeout of one request. The service answers 503 at its own 10 s deadline. */
export const REQUEST_TIMEOUT = __ENV.REQUEST_TIMEOUT || '15s';

/** Integer from the environment, or `fallback` when unset or empty. Throws on garbage. */
export function envInt(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || Math.floor(n) !== n) {
    throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** Number from the environment, or `fallback`. Throws on garbage. */
export function envFloat(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got ${JSON.stringify(raw)}`);
  return n;
}

/** String from the environment, or `fallback`. */
export function envStr(name, fallback) {
  const raw = __ENV[name];
  return raw === undefined || raw === '' ? fallback : raw;
}

/** k6 duration string ("30s", "2m") to seconds; plain numbers are seconds. */
export function durationSeconds(d) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(d).trim());
  if (!m) throw new Error(`not a duration: ${d}`);
  const n = Number(m[1]);
  return { ms: n / 1000, s: n, m: n * 60, h: n * 3600, undefined: n }[m[2]];
}

const JSON_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json' };

/**
 * Token mode: with JWT_SECRET set (the service's auth.jwt.hs256_secret), every request carries a
 * JWT minted here: the buyer a request's body names gets a token whose `sub` is that buyer;
 * everything else (creating events, reads, teardown checks) goes as an admin.
 */
export const JWT_SECRET = __ENV.JWT_SECRET || '';
export const TOKEN_MODE = JWT_SECRET !== '';

function b64url(text) {
  return encoding.b64encode(text, 'rawurl');
}

/** An HS256 JWT of `claims`, valid for an hour. */
export function mintJwt(claims) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const full = Object.assign({ exp: Math.floor(Date.now() / 1000) + 3600 }, claims);
  const body = b64url(JSON.stringify(full));
  const sig = crypto.hmac('sha256', JWT_SECRET, `${head}.${body}`, 'base64rawurl');
  return `${head}.${body}.${sig}`;
}

const tokens = {};
let tokenCount = 0;

/** The JWT of buyer `sub` (minted once per VU and buyer), or the admin's when `sub` is null. */
export function tokenFor(sub) {
  const key = sub === null ? '\u0000admin' : sub;
  if (!tokens[key]) {
    if (tokenCount > 10000) {
      for (const k of Object.keys(tokens)) delete tokens[k];
      tokenCount = 0;
    }
    tokens[key] = sub === null ? mintJwt({ sub: 'k6-admin', role: 'admin' }) : mintJwt({ sub });
    tokenCount += 1;
  }
  return tokens[key];
}

function params(extra, buyer) {
  const p = Object.assign({ timeout: REQUEST_TIMEOUT }, extra || {});
  p.headers = Object.assign({}, JSON_HEADERS, p.headers || {});
  if (TOKEN_MODE && !p.headers.Authorization) {
    p.headers.Authorization = `Bearer ${tokenFor(buyer === undefined ? null : buyer)}`;
  }
  return p;
}

/** GET `path` (relative to BASE_URL). `extra` is merged into the k6 request params. */
export function get(path, extra) {
  return http.get(`${BASE_URL}${path}`, params(extra));
}

/** POST `body` as JSON (a string is sent as is); in token mode as the buyer it names. */
export function post(path, body, extra) {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  const buyer = body && typeof body === 'object' && typeof body.userId === 'string' ? body.userId : undefined;
  return http.post(`${BASE_URL}${path}`, payload, params(extra, buyer));
}

/** Request params that tag the request with `name` and accept the given statuses. */
export function req(name, ...expected) {
  const p = { tags: { name } };
  if (expected.length > 0) p.responseCallback = http.expectedStatuses(...expected);
  return p;
}

/** The response body parsed as JSON, or null. */
export function body(res) {
  if (!res || !res.body) return null;
  try {
    return JSON.parse(res.body);
  } catch (_) {
    return null;
  }
}

/** True for outcomes that do not say whether the request took effect (network error, 5xx). */
export function ambiguous(res) {
  return res.status === 0 || res.status >= 500;
}

/** RFC 3339 date `days` from now at 19:00 UTC. */
export function futureDate(days) {
  const d = new Date(Date.now() + days * 86400000);
  d.setUTCHours(19, 0, 0, 0);
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Creates an event through the API and returns its id; throws (failing setup) on anything but
 * 201. `seats` is either a number (totalSeats, seats S1..Sn) or a list of {code,type,price}.
 */
export function createEvent(name, seats, extra) {
  const payload = { name, date: futureDate(30), location: 'k6 Arena' };
  if (typeof seats === 'number') payload.totalSeats = seats;
  else payload.seats = seats;
  const res = post('/events', payload, Object.assign(req('POST /events', 201), extra || {}));
  const b = body(res);
  if (res.status !== 201 || !b || !Number.isInteger(b.eventId)) {
    throw new Error(`could not create event ${name}: ${res.status} ${res.body}`);
  }
  return b.eventId;
}

/**
 * GET with a few retries on ambiguous outcomes; for setup/teardown reads that must not fail on
 * one unlucky request. Returns the last response.
 */
export function getWithRetry(path, extra, tries) {
  let res;
  for (let i = 0; i < (tries || 5); i++) {
    res = get(path, extra);
    if (!ambiguous(res)) return res;
    sleep(0.5 * (i + 1));
  }
  return res;
}

/**
 * Confirms a hold. Confirm is idempotent (a repeat returns the same booking), so when the outcome
 * is ambiguous (no response, 5xx) it is retried up to `tries` times: the final answer is then
 * either a definite 200 (booked) or a definite refusal, which keeps client-side confirm counts
 * exactly comparable with what the API reports as booked.
 */
export function confirmHold(eventId, userId, holdGroupId, tries) {
  let res;
  const n = tries || 4;
  for (let i = 0; i < n; i++) {
    res = post(
      `/events/${eventId}/seats/confirm`,
      { userId, holdGroupId },
      req('POST confirm', 200, 409, 410),
    );
    if (!ambiguous(res)) return { res, attempts: i + 1 };
    sleep(0.2 * (i + 1));
  }
  return { res, attempts: n };
}

/** Integer in [min, max]. */
export function randInt(min, max) {
  return min + Math.floor(Math.random() * (max - min + 1));
}

/** `k` distinct integers from [1, n]. */
export function distinctInts(k, n) {
  const out = new Set();
  while (out.size < Math.min(k, n)) out.add(randInt(1, n));
  return Array.from(out);
}

/** Seat codes S<i> for the given numbers. */
export function seatCodes(numbers) {
  return numbers.map((i) => `S${i}`);
}

/** A user id unique to this VU iteration. */
export function userId(prefix) {
  return `${prefix}-${__VU}-${__ITER}-${Math.floor(Math.random() * 1e9)}`;
}

/** Same elements, any order. */
export function sameSet(a, b) {
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True for a lower-case hyphenated UUID string. */
export function isUuid(s) {
  return typeof s === 'string' && UUID_RE.test(s);
}
