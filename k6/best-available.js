// best-available.js — BUYERS buyers (default 1,000) each ask the service for the best COUNT_MIN..
// COUNT_MAX (2..6) seats together on an event of ROWS rows of ROW_SEATS seats (200 x 100 =
// 20,000 seats); CONFIRM_RATIO (70%) of those who get a hold confirm it, RELEASE_RATIO (25%)
// release it, the rest (5%) abandon it (it stays held until its TTL). Every buyer runs once
// (shared iterations over VUS virtual users).
//
// setup() creates the event with `rows` (R1-, R2-, ... : seats R1-1..R1-100, row order = closeness
// to the stage) and learns the hold TTL from a best-available hold on a separate two-seat probe
// event (so the main event's first row is not touched before the buyers come).
//
// What is checked
// ---------------
//  1. Contiguity, in the VU at reserve time: a 200 must hold exactly the requested number of
//     seats, all in one row, numbers consecutive, listed in number order. Each hold that is not
//     adds 1 to `noncontiguous_holds` (threshold count==0). A 409 must be NO_ADJACENT_SEATS with
//     an integer `available`; on this event (20x more seats than asked for) none is expected:
//     `reserve_refused` rate <= MAX_REFUSED_RATE (default 0).
//  2. Nothing sold twice, nothing lost, with the same signed-ledger idea as flash-sale.js (see its
//     header: teardown() cannot read VU state, but its metrics are aggregated with the VUs'):
//       `seat_ledger`     +n per seat of every 200 confirm (n = seats in its body), teardown adds
//                         -(seats BOOKED in GET /events/{id}/seats); must end at 0;
//       `seat_fp_ledger`  the same with a 32-bit fingerprint (FNV-1a of the seat code) instead
//                         of 1: +fp per confirmed seat, -fp per BOOKED seat; must end at 0. Equal
//                         counts with different seats (a seat confirmed to two buyers while
//                         another acknowledged seat is not booked, or any swap) leave it non-zero
//                         (all but ~2^-32 of such mistakes; sums stay exact in float64).
//     Teardown also counts an `integrity_violation` when Postgres's confirmedSeats (active
//     booking rows, GET /events/{id}) differs from the BOOKED seats (a seat with two active
//     bookings), when the seat map does not list every seat exactly once with the row and number
//     its code says, or when heldSeats differs from the HELD seats. Each 200 confirm must name the
//     held seats. `confirms_in_flight` must end at 0 (no confirm cut off), `teardown_done` at 1.
//  3. Abandoned holds (mode "live", decided in setup: the longest possible run fits in the TTL):
//     `held_ledger` +n per abandoned seat in VUs, -HELD in teardown; must be 0. With a short TTL
//     (mode "none") the held seats are not reconciled.
//  4. Orphans, in teardown from the final seat map: a maximal run of exactly one AVAILABLE seat
//     (between taken seats - BOOKED or HELD - or a row end). Reported (`orphans`, `orphan_rows`,
//     also the rows touched); threshold `orphans: count<=MAX_ORPHANS` (default 0: with rows to
//     spare the rule never leaves one, and a release only makes free runs longer; -1 turns the
//     threshold off, e.g. for a hall that sells out).
//  5. No unexpected status at all: `http_req_failed` rate==0 (409 on reserve, and 409/410 on
//     confirm, are expected statuses but confirm 409/410 are counted: `confirm_refused`,
//     `confirm_expired`, both count==0), reserve p95/p99 under RESERVE_P95_MS/RESERVE_P99_MS.
// Any failing threshold makes k6 exit 99; handleSummary writes the verdict and the numbers to
// ${RESULTS_DIR}/best-available.json.
//
// Knobs (env): BUYERS (1000), VUS (50), ROWS (200), ROW_SEATS (100), FILL (0, see below),
// COUNT_MIN (2), COUNT_MAX (6;
// at most holds.max_seats_per_hold), CONFIRM_RATIO (0.7), RELEASE_RATIO (0.25), THINK_MAX_S (0:
// a random pause up to this long between hold and decision), RESERVE_P95_MS (300), RESERVE_P99_MS
// (500), CONFIRM_P95_MS (500), MAX_REFUSED_RATE (0), MAX_ORPHANS (0; -1 = no threshold),
// MAX_DURATION (2m), BASE_URL, RESULTS_DIR, REQUEST_TIMEOUT, JWT_SECRET (token mode, see
// README.md).

import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import {
  body,
  confirmHold,
  durationSeconds,
  envFloat,
  envInt,
  envStr,
  futureDate,
  getWithRetry,
  post,
  randInt,
  req,
  sameSet,
  userId,
} from './lib/common.js';
import { metricValue, summarize } from './lib/summary.js';

const BUYERS = envInt('BUYERS', 1000);
const VUS = Math.max(1, Math.min(envInt('VUS', 50), BUYERS));
const ROWS = envInt('ROWS', 200);
const ROW_SEATS = envInt('ROW_SEATS', 100);
const COUNT_MIN = Math.max(1, envInt('COUNT_MIN', 2));
const COUNT_MAX = Math.max(COUNT_MIN, envInt('COUNT_MAX', 6));
const CONFIRM_RATIO = envFloat('CONFIRM_RATIO', 0.7);
const RELEASE_RATIO = envFloat('RELEASE_RATIO', 0.25);
const THINK_MAX_S = envFloat('THINK_MAX_S', 0);
const RESERVE_P95_MS = envInt('RESERVE_P95_MS', 300);
const RESERVE_P99_MS = envInt('RESERVE_P99_MS', 500);
const CONFIRM_P95_MS = envInt('CONFIRM_P95_MS', 500);
// FILL (0..99, default 0): the house as an on-sale leaves it before the buyers come: the front
// rows full and every later row with seats taken at random, every taken seat HELD by a live hold
// (issue 24's fragmented house; e.g. ROWS=1000 FILL=80). From 50 on, the front half is full and
// each later row has (FILL-50)*2 % of its seats taken; below 50, the first FILL % of the rows are
// full. A filled house has orphans and may have no block left: the orphan and refusal thresholds
// are off unless set.
const FILL = Math.max(0, Math.min(99, envInt('FILL', 0)));
const MAX_REFUSED_RATE = envFloat('MAX_REFUSED_RATE', FILL > 0 ? 1 : 0);
const MAX_ORPHANS = envInt('MAX_ORPHANS', FILL > 0 ? -1 : 0);
const MAX_DURATION = envStr('MAX_DURATION', '2m');
const TOTAL_SEATS = ROWS * ROW_SEATS;

const rowName = (i) => `R${i}-`; // R1-..R200-: "R1-12" and "R11-2" cannot collide
const CODE_RE = /^R(\d+)-(\d+)$/;

/** 32-bit FNV-1a of a seat code: the seat's weight in `seat_fp_ledger`. */
function fingerprint(code) {
  let h = 0x811c9dc5;
  for (let i = 0; i < code.length; i++) {
    h ^= code.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const reserveRefused = new Rate('reserve_refused'); // true on 409 NO_ADJACENT_SEATS
const holdsTaken = new Counter('holds_taken');
const seatsHeld = new Counter('seats_held');
const holdRow = new Trend('hold_row'); // row index (1 = nearest the stage) of each hold
const noncontiguousHolds = new Counter('noncontiguous_holds');
const confirmsOk = new Counter('confirms_ok');
const confirmedSeats = new Counter('confirmed_seats');
const releasesOk = new Counter('releases_ok');
const releasedSeats = new Counter('released_seats');
const abandonedHolds = new Counter('abandoned_holds');
const abandonedSeats = new Counter('abandoned_seats');
const confirmRefused = new Counter('confirm_refused');
const confirmExpired = new Counter('confirm_expired');
const confirmFailed = new Counter('confirm_failed');
const seatLedger = new Counter('seat_ledger');
const seatFpLedger = new Counter('seat_fp_ledger');
const heldLedger = new Counter('held_ledger');
const confirmsInFlight = new Counter('confirms_in_flight');
const integrityViolations = new Counter('integrity_violations');
const bookedSeatsApi = new Counter('booked_seats_api');
const heldSeatsApi = new Counter('held_seats_api');
const orphans = new Counter('orphans');
const orphanRows = new Counter('orphan_rows');
const rowsTouched = new Counter('rows_touched');
const teardownDone = new Counter('teardown_done');

const thresholds = {
  http_req_failed: ['rate==0'],
  checks: ['rate==1'],
  'http_req_duration{name:POST reserve best}': [`p(95)<${RESERVE_P95_MS}`, `p(99)<${RESERVE_P99_MS}`],
  'http_req_duration{name:POST confirm}': [`p(95)<${CONFIRM_P95_MS}`],
  reserve_refused: [`rate<=${MAX_REFUSED_RATE}`],
  noncontiguous_holds: ['count==0'],
  confirms_ok: ['count>0'],
  confirm_refused: ['count==0'],
  confirm_expired: ['count==0'],
  confirm_failed: ['count==0'],
  seat_ledger: ['count==0'],
  seat_fp_ledger: ['count==0'],
  held_ledger: ['count==0'],
  confirms_in_flight: ['count==0'],
  integrity_violations: ['count==0'],
  teardown_done: ['count==1'],
};
if (MAX_ORPHANS >= 0) thresholds.orphans = [`count<=${MAX_ORPHANS}`];

export const options = {
  scenarios: {
    best_available: {
      executor: 'shared-iterations',
      vus: VUS,
      iterations: BUYERS,
      maxDuration: MAX_DURATION,
    },
  },
  thresholds,
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  setupTimeout: '60s',
  teardownTimeout: '120s',
};

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }));

/** POST /events with rows; returns the event id or throws. */
function createRowsEvent(name, rows) {
  const payload = { name, date: futureDate(30), location: 'k6 Hall', rows };
  const res = post('/events', payload, req('POST /events', 201));
  const b = body(res);
  if (res.status !== 201 || !b || !Number.isInteger(b.eventId)) {
    throw new Error(`could not create event ${name}: ${res.status} ${res.body}`);
  }
  return b.eventId;
}

export function setup() {
  const started = Date.now();
  const rows = [];
  for (let i = 1; i <= ROWS; i++) rows.push({ name: rowName(i), seats: ROW_SEATS, type: 'STANDARD', price: 45 });
  const eventId = createRowsEvent(`k6 best available ${started}`, rows);
  const detail = body(getWithRetry(`/events/${eventId}`, req('GET event (setup)', 200)));
  if (!detail || detail.totalSeats !== TOTAL_SEATS) {
    throw new Error(`setup: event ${eventId} has ${detail && detail.totalSeats} seats, expected ${TOTAL_SEATS}`);
  }

  // The hold TTL, from a best-available hold on a separate two-seat event.
  const probeEvent = createRowsEvent(`k6 best available probe ${started}`, [{ name: 'P-', seats: 2 }]);
  const res = post(
    `/events/${probeEvent}/seats/reserve`,
    { userId: 'k6-probe', bestAvailable: { count: 2 } },
    req('POST reserve (setup)', 200),
  );
  const probe = body(res);
  if (res.status !== 200 || !probe || !Number.isInteger(probe.expiresIn) || !sameSet(probe.seatCodes, ['P-1', 'P-2'])) {
    throw new Error(`setup: probe hold failed: ${res.status} ${res.body}`);
  }
  post(
    `/events/${probeEvent}/seats/release`,
    { userId: 'k6-probe', holdGroupId: probe.holdGroupId },
    req('POST release (setup)', 200),
  );
  const ttl = probe.expiresIn;
  const worstRun = durationSeconds(MAX_DURATION) + 60;
  const mode = worstRun < ttl ? 'live' : 'none';
  const filled = fillHouse(eventId);
  // The fill's holds are HELD seats the buyers did not abandon: the ledger starts with them.
  if (mode === 'live' && filled > 0) heldLedger.add(filled);
  console.log(
    `best-available: event ${eventId}, ${ROWS} rows x ${ROW_SEATS} seats; ${BUYERS} buyers on ${VUS} VUs ask for ` +
      `${COUNT_MIN}..${COUNT_MAX} together; hold TTL ${ttl}s -> abandoned holds ${mode === 'live' ? 'reconciled' : 'not reconciled'} ("${mode}")`,
  );
  return { eventId, ttl, mode, started };
}

/**
 * Holds FILL % of the house (see FILL), 10 seats of one row per hold; returns the seats held.
 */
function fillHouse(eventId) {
  if (FILL <= 0) return 0;
  const fullRows = FILL >= 50 ? Math.floor(ROWS / 2) : Math.round((ROWS * FILL) / 100);
  const later = FILL >= 50 ? Math.round((ROW_SEATS * (FILL - 50)) / 50) : 0;
  const groups = [];
  for (let r = 1; r <= ROWS; r++) {
    let numbers = [];
    if (r <= fullRows) {
      for (let n = 1; n <= ROW_SEATS; n++) numbers.push(n);
    } else if (later > 0) {
      const all = [];
      for (let n = 1; n <= ROW_SEATS; n++) all.push(n);
      for (let i = all.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [all[i], all[j]] = [all[j], all[i]];
      }
      numbers = all.slice(0, later).sort((a, b) => a - b);
    }
    for (let i = 0; i < numbers.length; i += 10) {
      groups.push(numbers.slice(i, i + 10).map((n) => `${rowName(r)}${n}`));
    }
  }
  let held = 0;
  groups.forEach((codes, i) => {
    const res = post(
      `/events/${eventId}/seats/reserve`,
      { userId: `k6-fill-${i}`, seatCodes: codes },
      req('POST reserve (fill)', 200),
    );
    if (res.status !== 200) throw new Error(`setup: fill hold failed: ${res.status} ${res.body}`);
    held += codes.length;
  });
  console.log(`best-available: the house filled to ${FILL}% (${held} seats held) before the buyers`);
  return held;
}

/**
 * Whether `codes` are `count` seats of one row with consecutive numbers, in number order.
 * Returns {ok, ordered, row}; `ok` ignores the order, `ordered` needs it too.
 */
function contiguity(codes, count) {
  if (!Array.isArray(codes) || codes.length !== count) return { ok: false, ordered: false, row: null };
  const parsed = codes.map((c) => CODE_RE.exec(String(c)));
  if (parsed.some((m) => m === null)) return { ok: false, ordered: false, row: null };
  const row = Number(parsed[0][1]);
  const nums = parsed.map((m) => Number(m[2]));
  const sameRow = parsed.every((m) => Number(m[1]) === row) && row >= 1 && row <= ROWS;
  const inRange = nums.every((n) => n >= 1 && n <= ROW_SEATS);
  const ordered = nums.every((n, i) => i === 0 || n === nums[i - 1] + 1);
  const sorted = nums.slice().sort((a, b) => a - b);
  const consecutive = sorted.every((n, i) => i === 0 || n === sorted[i - 1] + 1);
  const ok = sameRow && inRange && consecutive;
  return { ok, ordered: ok && ordered, row };
}

export default function (data) {
  const eventId = data.eventId;
  const user = userId('best');
  const count = randInt(COUNT_MIN, COUNT_MAX);

  const res = post(
    `/events/${eventId}/seats/reserve`,
    { userId: user, bestAvailable: { count } },
    req('POST reserve best', 200, 409),
  );
  reserveRefused.add(res.status === 409);
  const b = body(res);
  if (res.status === 409) {
    check(b, {
      'reserve 409: NO_ADJACENT_SEATS with available': (x) =>
        x !== null && x.code === 'NO_ADJACENT_SEATS' && Number.isInteger(x.available) && x.available >= 0,
    });
    return;
  }
  const held = check(res, {
    'reserve 200: a hold with seat codes': (r) =>
      r.status === 200 &&
      b !== null &&
      typeof b.holdGroupId === 'string' &&
      Array.isArray(b.seatCodes) &&
      Number.isInteger(b.expiresIn) &&
      b.expiresIn > 0 &&
      typeof b.expiresAt === 'string' &&
      Array.isArray(b.tiers) &&
      b.tiers.length === 0,
  });
  if (!held) return;
  const shape = contiguity(b.seatCodes, count);
  if (!shape.ok) {
    noncontiguousHolds.add(1);
    console.warn(`non-contiguous hold for ${count} seats: ${JSON.stringify(b.seatCodes)}`);
  }
  check(b, {
    'reserve 200: count seats together in one row': () => shape.ok,
    'reserve 200: seats listed in number order': () => shape.ordered,
  });
  const codes = b.seatCodes;
  holdsTaken.add(1);
  seatsHeld.add(codes.length);
  if (shape.row !== null) holdRow.add(shape.row);
  if (THINK_MAX_S > 0) sleep(Math.random() * THINK_MAX_S);

  const r = Math.random();
  if (r < CONFIRM_RATIO) {
    confirmsInFlight.add(1);
    const { res: c } = confirmHold(eventId, user, b.holdGroupId);
    const cb = body(c);
    if (c.status === 200) {
      const got = cb && Array.isArray(cb.seatCodes) ? cb.seatCodes : [];
      const ok = check(cb, {
        'confirm 200: a booking of the held seats': (x) =>
          x !== null && x.success === true && x.bookingGroupId === b.holdGroupId && sameSet(got, codes),
      });
      if (!ok) integrityViolations.add(1, { kind: 'confirm_body' });
      confirmsOk.add(1);
      confirmedSeats.add(got.length);
      seatLedger.add(got.length);
      seatFpLedger.add(got.reduce((sum, code) => sum + fingerprint(code), 0));
    } else if (c.status === 409) {
      confirmRefused.add(1);
      console.warn(`confirm refused: ${c.body}`);
    } else if (c.status === 410) {
      confirmExpired.add(1);
      console.warn(`confirm: hold expired: ${c.body}`);
    } else {
      confirmFailed.add(1);
      console.warn(`confirm without a definite answer: ${c.status} ${c.body}`);
    }
    confirmsInFlight.add(-1);
  } else if (r < CONFIRM_RATIO + RELEASE_RATIO) {
    const rel = post(
      `/events/${eventId}/seats/release`,
      { userId: user, holdGroupId: b.holdGroupId },
      req('POST release', 200),
    );
    const ok = check(rel, {
      'release 200 released:true': (x) => x.status === 200 && body(x) !== null && body(x).released === true,
    });
    if (ok) {
      releasesOk.add(1);
      releasedSeats.add(codes.length);
    } else if (data.mode === 'live') {
      integrityViolations.add(1, { kind: 'release_failed' }); // the hold's fate is unknown
    }
  } else {
    abandonedHolds.add(1);
    abandonedSeats.add(codes.length);
    if (data.mode === 'live') heldLedger.add(codes.length);
  }
}

/** Orphans of one row (seats in number order): maximal runs of exactly one AVAILABLE seat. */
function rowOrphans(seats) {
  if (seats.length < 2) return 0;
  let n = 0;
  let run = 0;
  for (let i = 0; i <= seats.length; i++) {
    const free = i < seats.length && seats[i].status === 'AVAILABLE';
    if (free) {
      run += 1;
    } else {
      if (run === 1) n += 1;
      run = 0;
    }
  }
  return n;
}

export function teardown(data) {
  const { eventId, mode } = data;
  const violation = (kind, bad, detail) => {
    check(null, { [`teardown: ${kind}`]: () => !bad });
    if (bad) {
      integrityViolations.add(1, { kind });
      console.warn(`teardown violation ${kind}: ${detail || ''}`);
    }
  };
  if (mode === 'live' && (Date.now() - data.started) / 1000 > data.ttl - 5) {
    console.warn('best-available: the run outlived the hold TTL; abandoned holds may have expired');
  }

  const mapRes = getWithRetry(`/events/${eventId}/seats`, req('GET seats (teardown)', 200));
  const map = body(mapRes);
  const detail = body(getWithRetry(`/events/${eventId}`, req('GET event (teardown)', 200)));
  if (!map || !Array.isArray(map.seats) || !detail) {
    throw new Error(`teardown: seat map or event detail unreadable (${mapRes.status})`);
  }

  const byRow = {};
  const seen = new Set();
  let badPlace = 0;
  let badStatus = 0;
  let booked = 0;
  let held = 0;
  let available = 0;
  let bookedFp = 0;
  for (const s of map.seats) {
    seen.add(s.code);
    const m = CODE_RE.exec(String(s.code));
    if (!m || s.row !== rowName(Number(m[1])) || s.number !== Number(m[2])) badPlace += 1;
    if (s.status === 'BOOKED') {
      booked += 1;
      bookedFp += fingerprint(s.code);
    } else if (s.status === 'HELD') held += 1;
    else if (s.status === 'AVAILABLE') available += 1;
    else badStatus += 1;
    (byRow[s.row] = byRow[s.row] || []).push(s);
  }
  violation(
    'seat map lists every seat once',
    map.seats.length !== TOTAL_SEATS || seen.size !== TOTAL_SEATS,
    `${map.seats.length} entries, ${seen.size} codes, expected ${TOTAL_SEATS}`,
  );
  violation('seat map rows and numbers match the codes', badPlace !== 0, `${badPlace} seats`);
  violation('seat map statuses are AVAILABLE, HELD or BOOKED', badStatus !== 0, `${badStatus} seats`);
  violation(
    'Postgres confirmedSeats equals BOOKED seats',
    detail.confirmedSeats !== booked,
    `confirmedSeats=${detail.confirmedSeats} BOOKED=${booked}`,
  );
  violation('detail heldSeats equals HELD seats', detail.heldSeats !== held, `heldSeats=${detail.heldSeats} HELD=${held}`);
  violation(
    'detail availableSeats equals AVAILABLE seats',
    detail.availableSeats !== available,
    `availableSeats=${detail.availableSeats} AVAILABLE=${available}`,
  );

  let orphanCount = 0;
  let rowsWithOrphans = 0;
  let touched = 0;
  let lastTouched = 0;
  const orphanSample = [];
  for (let i = 1; i <= ROWS; i++) {
    const seats = (byRow[rowName(i)] || []).slice().sort((a, b) => a.number - b.number);
    if (seats.some((s) => s.status !== 'AVAILABLE')) {
      touched += 1;
      lastTouched = i;
    }
    const n = rowOrphans(seats);
    if (n > 0) {
      orphanCount += n;
      rowsWithOrphans += 1;
      if (orphanSample.length < 5) {
        orphanSample.push(`${rowName(i)}: ${seats.map((s) => (s.status === 'AVAILABLE' ? '.' : s.status === 'HELD' ? 'h' : 'x')).join('')}`);
      }
    }
  }
  if (orphanSample.length > 0) console.warn(`best-available: rows with orphans (. free, x booked, h held):\n  ${orphanSample.join('\n  ')}`);

  bookedSeatsApi.add(booked);
  heldSeatsApi.add(held);
  seatLedger.add(-booked);
  seatFpLedger.add(-bookedFp);
  if (mode === 'live') heldLedger.add(-held);
  orphans.add(orphanCount);
  orphanRows.add(rowsWithOrphans);
  rowsTouched.add(touched);
  teardownDone.add(1);
  console.log(
    `best-available teardown: BOOKED ${booked}, HELD ${held}, AVAILABLE ${available}; Postgres confirmed ${detail.confirmedSeats}; ` +
      `rows touched ${touched} (last R${lastTouched}-), orphans ${orphanCount} in ${rowsWithOrphans} rows`,
  );
}

export function handleSummary(data) {
  const count = (name) => metricValue(data, name, 'count') || 0;
  const teardownRan = count('teardown_done') === 1;
  const told = count('confirmed_seats');
  const sold = teardownRan ? count('booked_seats_api') : null;
  const ledger = metricValue(data, 'seat_ledger', 'count');
  const fpLedger = metricValue(data, 'seat_fp_ledger', 'count');
  const oversell = teardownRan ? sold > told || fpLedger !== 0 : null;
  const lostSales = teardownRan ? told > sold : null;
  const reserveMs = (f) => metricValue(data, 'http_req_duration{name:POST reserve best}', f);
  const holds = count('holds_taken');
  const extra = {
    knobs: { BUYERS, VUS, ROWS, ROW_SEATS, COUNT_MIN, COUNT_MAX, CONFIRM_RATIO, RELEASE_RATIO, THINK_MAX_S, MAX_ORPHANS },
    oversell,
    lostSales,
    seatSetsMatch: teardownRan ? ledger === 0 && fpLedger === 0 : null,
    sold,
    orphans: teardownRan ? count('orphans') : null,
    orphanRows: teardownRan ? count('orphan_rows') : null,
    rowsTouched: teardownRan ? count('rows_touched') : null,
    lastRowUsed: metricValue(data, 'hold_row', 'max'),
    noncontiguousHolds: count('noncontiguous_holds'),
    reserveMs: { avg: reserveMs('avg'), med: reserveMs('med'), p95: reserveMs('p(95)'), p99: reserveMs('p(99)'), max: reserveMs('max') },
    reserveRefusedShare: metricValue(data, 'reserve_refused', 'rate'),
    mix: {
      holds,
      confirmed: count('confirms_ok'),
      released: count('releases_ok'),
      abandoned: count('abandoned_holds'),
      confirmedShare: holds ? count('confirms_ok') / holds : null,
    },
    seats: {
      held: count('seats_held'),
      confirmedClient: told,
      bookedApi: sold,
      released: count('released_seats'),
      abandoned: count('abandoned_seats'),
      heldApi: teardownRan ? count('held_seats_api') : null,
    },
    verification: {
      teardownRan,
      ledgerDiff: ledger,
      fingerprintDiff: fpLedger,
      heldLedgerDiff: metricValue(data, 'held_ledger', 'count'),
      integrityViolations: count('integrity_violations'),
      confirmsInFlightAtEnd: count('confirms_in_flight'),
      confirmRefused: count('confirm_refused'),
      confirmExpired: count('confirm_expired'),
      confirmFailed: count('confirm_failed'),
    },
  };
  const fmt = (x) => (x === null || x === undefined ? '-' : Number(x).toFixed(2));
  const pct = (x) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);
  const lines = [
    `event             ${ROWS} rows x ${ROW_SEATS} seats, ${BUYERS} buyers asking for ${COUNT_MIN}..${COUNT_MAX} together`,
    `reserve ms        med ${fmt(extra.reserveMs.med)}  p95 ${fmt(extra.reserveMs.p95)}  p99 ${fmt(extra.reserveMs.p99)}  max ${fmt(extra.reserveMs.max)}`,
    `holds             ${holds} (${extra.seats.held} seats; rows up to R${extra.lastRowUsed === null ? '-' : extra.lastRowUsed}-), 409 share ${pct(extra.reserveRefusedShare)}, non-contiguous ${extra.noncontiguousHolds}`,
    `decisions         confirmed ${extra.mix.confirmed} (${pct(extra.mix.confirmedShare)}), released ${extra.mix.released}, abandoned ${extra.mix.abandoned}`,
    `seats             confirmed (clients) ${told}, BOOKED (API) ${sold === null ? '-' : sold}, HELD (API) ${extra.seats.heldApi === null ? '-' : extra.seats.heldApi}; ledger ${ledger}, fingerprint ${fpLedger}`,
    `orphans           ${extra.orphans === null ? '-' : extra.orphans} in ${extra.orphanRows === null ? '-' : extra.orphanRows} rows (of ${extra.rowsTouched === null ? '-' : extra.rowsTouched} rows touched)`,
    `oversell          ${oversell === null ? 'UNKNOWN (teardown did not run)' : oversell ? 'YES' : 'no'}, lost sales ${lostSales === null ? '-' : lostSales ? 'YES' : 'no'}`,
  ];
  return summarize('best-available', data, extra, lines, oversell === false && lostSales === false);
}
