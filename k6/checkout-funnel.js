// checkout-funnel.js — a realistic shopping mix on one large event.
//
// setup() creates one event with SEATS seats (default 20 000) and takes one "probe" hold on the
// last seat to learn the hold TTL (expiresIn). Each iteration is one shopper:
//   1. looks at the event: the seat map with probability SEATMAP_RATIO (default 0.1; a 20 000-seat
//      map is ~1.8 MB of JSON) and then picks adjacent AVAILABLE seats in a random window of it,
//      else the event detail and then a random block of adjacent seats;
//   2. thinks (THINK_MIN_S..THINK_MAX_S), holds 1..4 seats (on 409 tries other seats, up to
//      RESERVE_TRIES attempts);
//   3. thinks again, then confirms (CONFIRM_RATIO, 70%), releases (RELEASE_RATIO, 20%) or
//      abandons the hold to expiry (the remaining 10%).
// The arrival rate ramps 0 -> RATE over RAMP_UP, stays for DURATION, ramps down over RAMP_DOWN.
//
// Verification (same ledger idea as flash-sale.js; see its header):
//  - `seat_ledger`: +n per confirmed seat in VUs, -BOOKED (seat map) in teardown; must be 0.
//  - hold expiry, decided in setup from the TTL:
//      "wait" (TTL <= EXPIRY_WAIT_MAX_S, default 20): teardown waits until heldSeats == 0, then
//        requires no HELD seat, availableSeats == total - booked in both the detail and the seat
//        map, and a confirm of the (expired) probe hold to answer 410 HOLD_EXPIRED. Run the
//        service with e.g. APP__HOLDS__TTL_SECONDS=10 to get this mode.
//      "live" (the whole run fits well inside the TTL): `held_ledger` gets +n per abandoned seat
//        in VUs and -(HELD seats - probe) in teardown; must be 0 (abandoned holds still held,
//        released and confirmed ones not).
//      "none" (a long run with a long TTL): held seats are not reconciled.
//  - A 410 on confirm earlier than expiresIn - 1 s after the reserve answered is a violation
//    (`integrity_violations`, must be 0), as is a Postgres confirmedSeats differing from the
//    number of BOOKED seats, or a bad seat map.
//  - `confirms_in_flight` must end at 0 and `teardown_done` at 1 (see flash-sale.js).
//
// Knobs (env): RATE (peak iterations/s, default 40), RAMP_UP (5s), DURATION (15s), RAMP_DOWN
// (5s), PRE_VUS (80), MAX_VUS (300), SEATS (20000), SEATMAP_RATIO (0.1), MAX_CONFLICT_RATE (0.3), CONFIRM_RATIO (0.7),
// RELEASE_RATIO (0.2), THINK_MIN_S (0.2), THINK_MAX_S (1.0), RESERVE_TRIES (3),
// EXPIRY_WAIT_MAX_S (20), BASE_URL, RESULTS_DIR.

import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Rate } from 'k6/metrics';
import {
  body,
  confirmHold,
  createEvent,
  durationSeconds,
  envFloat,
  envInt,
  envStr,
  get,
  getWithRetry,
  post,
  randInt,
  req,
  sameSet,
  userId,
} from './lib/common.js';
import { metricValue, summarize } from './lib/summary.js';

const RATE = envInt('RATE', 40);
const RAMP_UP = envStr('RAMP_UP', '5s');
const DURATION = envStr('DURATION', '15s');
const RAMP_DOWN = envStr('RAMP_DOWN', '5s');
const PRE_VUS = envInt('PRE_VUS', 80);
const MAX_VUS = envInt('MAX_VUS', 300);
const SEATS = envInt('SEATS', 20000);
const SEATMAP_RATIO = envFloat('SEATMAP_RATIO', 0.1);
const CONFIRM_RATIO = envFloat('CONFIRM_RATIO', 0.7);
const RELEASE_RATIO = envFloat('RELEASE_RATIO', 0.2);
const THINK_MIN_S = envFloat('THINK_MIN_S', 0.2);
const THINK_MAX_S = envFloat('THINK_MAX_S', 1.0);
const RESERVE_TRIES = envInt('RESERVE_TRIES', 3);
const EXPIRY_WAIT_MAX_S = envInt('EXPIRY_WAIT_MAX_S', 20);
const GRACEFUL_STOP = envStr('GRACEFUL_STOP', '30s');
const MAX_PICK = 4;
const RUN_SECONDS =
  durationSeconds(RAMP_UP) + durationSeconds(DURATION) + durationSeconds(RAMP_DOWN);
const PLANNED = Math.round(RATE * (durationSeconds(DURATION) + (durationSeconds(RAMP_UP) + durationSeconds(RAMP_DOWN)) / 2));
const PROBE_SEAT = `S${SEATS}`;

const reserveConflicts = new Rate('reserve_conflicts');
const shopperGotHold = new Rate('shopper_got_hold');
const confirmedOrders = new Counter('orders_confirmed');
const releasedOrders = new Counter('orders_released');
const abandonedOrders = new Counter('orders_abandoned');
const confirmedSeats = new Counter('confirmed_seats');
const releasedSeats = new Counter('released_seats');
const abandonedSeats = new Counter('abandoned_seats');
const confirmExpired = new Counter('confirm_expired');
const confirmFailed = new Counter('confirm_failed');
const seatLedger = new Counter('seat_ledger');
const heldLedger = new Counter('held_ledger');
const confirmsInFlight = new Counter('confirms_in_flight');
const integrityViolations = new Counter('integrity_violations');
const bookedSeatsApi = new Counter('booked_seats_api');
const teardownDone = new Counter('teardown_done');

export const options = {
  scenarios: {
    checkout: {
      executor: 'ramping-arrival-rate',
      startRate: 0,
      timeUnit: '1s',
      preAllocatedVUs: PRE_VUS,
      maxVUs: MAX_VUS,
      stages: [
        { target: RATE, duration: RAMP_UP },
        { target: RATE, duration: DURATION },
        { target: 0, duration: RAMP_DOWN },
      ],
      gracefulStop: GRACEFUL_STOP,
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    'http_req_duration{name:GET event}': ['p(95)<300', 'p(99)<1000'],
    'http_req_duration{name:GET seats}': ['p(95)<2000'],
    'http_req_duration{name:POST reserve}': ['p(95)<300', 'p(99)<1000'],
    'http_req_duration{name:POST confirm}': ['p(95)<500', 'p(99)<1500'],
    'http_req_duration{name:POST release}': ['p(95)<300'],
    dropped_iterations: [`count<=${Math.ceil(PLANNED * 0.05)}`],
    reserve_conflicts: [`rate<${envFloat('MAX_CONFLICT_RATE', 0.3)}`],
    shopper_got_hold: ['rate>0.95'],
    orders_confirmed: ['count>0'],
    confirm_failed: ['count==0'],
    seat_ledger: ['count==0'],
    held_ledger: ['count==0'],
    confirms_in_flight: ['count==0'],
    integrity_violations: ['count==0'],
    teardown_done: ['count==1'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  setupTimeout: '60s',
  teardownTimeout: `${EXPIRY_WAIT_MAX_S + 90}s`,
};

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409, 410));

function think() {
  sleep(THINK_MIN_S + Math.random() * Math.max(0, THINK_MAX_S - THINK_MIN_S));
}

export function setup() {
  const started = Date.now();
  const eventId = createEvent(`k6 checkout funnel ${started}`, SEATS);
  const res = post(
    `/events/${eventId}/seats/reserve`,
    { userId: 'k6-probe', seatCodes: [PROBE_SEAT] },
    req('POST reserve (setup)', 200),
  );
  const probe = body(res);
  if (res.status !== 200 || !probe || !Number.isInteger(probe.expiresIn)) {
    throw new Error(`setup: probe hold failed: ${res.status} ${res.body}`);
  }
  const ttl = probe.expiresIn;
  const worstRun = RUN_SECONDS + durationSeconds(GRACEFUL_STOP) + 30;
  let mode = 'none';
  if (ttl <= EXPIRY_WAIT_MAX_S) mode = 'wait';
  else if (worstRun < ttl) mode = 'live';
  console.log(
    `checkout-funnel: event ${eventId} with ${SEATS} seats, hold TTL ${ttl}s -> expiry check mode "${mode}"; ` +
      `peak ${RATE} it/s, ~${PLANNED} iterations planned`,
  );
  return { eventId, ttl, mode, probeHold: probe.holdGroupId, started };
}

const AVAILABLE_RE = /"code":"([^"]+)"[^}]*"status":"AVAILABLE"/g;

/**
 * Checks a seat-map body cheaply and picks up to n AVAILABLE seats that are next to each other
 * in a random window of it, as a shopper scanning one block of the map would. JSON.parse of a
 * 20 000-seat map costs k6 ~150 ms of CPU, so the body is only scanned with string operations:
 * the envelope, the number of seats, then a regex over a 4 KB window.
 * Returns {ok, codes}; codes is null when the window had no free seat.
 */
function scanSeatMap(res, eventId, n) {
  const b = typeof res.body === 'string' ? res.body : '';
  const ok =
    res.status === 200 &&
    b.startsWith(`{"eventId":${eventId},"seats":[`) &&
    b.endsWith(']}') &&
    b.split('"code":').length - 1 === SEATS;
  if (!ok) return { ok, codes: null };
  const from = randInt(0, Math.max(0, b.length - 4096));
  const window = b.substring(from, from + 4096);
  const free = [];
  AVAILABLE_RE.lastIndex = 0;
  let m;
  while ((m = AVAILABLE_RE.exec(window)) !== null) if (m[1] !== PROBE_SEAT) free.push(m[1]);
  if (free.length === 0) return { ok, codes: null };
  const start = randInt(0, Math.max(0, free.length - n));
  return { ok, codes: free.slice(start, start + n) };
}

/** A block of n adjacent seats at a random place (the probe seat excluded). */
function pickBlock(n) {
  const start = randInt(1, SEATS - n);
  return Array.from({ length: n }, (_, i) => `S${start + i}`);
}

export default function (data) {
  const eventId = data.eventId;
  const user = userId('shopper');
  const want = randInt(1, MAX_PICK);

  // 1. Look at the event.
  let codes;
  if (Math.random() < SEATMAP_RATIO) {
    const res = get(`/events/${eventId}/seats`, req('GET seats'));
    const scan = scanSeatMap(res, eventId, want);
    check(res, { 'seat map 200 with every seat': () => scan.ok });
    codes = scan.codes;
  } else {
    const res = get(`/events/${eventId}`, req('GET event'));
    const b = body(res);
    check(b, {
      'event detail 200 with consistent counts': (e) =>
        res.status === 200 &&
        e !== null &&
        e.id === eventId &&
        e.totalSeats === SEATS &&
        e.availableSeats === Math.max(0, SEATS - e.confirmedSeats - e.heldSeats),
    });
  }
  if (!codes) codes = pickBlock(want);
  think();

  // 2. Hold, trying other seats on a conflict.
  let hold = null;
  let heldAt = 0;
  for (let attempt = 0; attempt < RESERVE_TRIES && hold === null; attempt++) {
    if (attempt > 0) codes = pickBlock(want);
    const res = post(`/events/${eventId}/seats/reserve`, { userId: user, seatCodes: codes }, req('POST reserve'));
    reserveConflicts.add(res.status === 409);
    const b = body(res);
    if (res.status === 409) {
      check(b, {
        'reserve 409 names the taken seats': (x) =>
          x !== null && x.code === 'SEATS_UNAVAILABLE' && x.seats.length > 0 && x.seats.every((s) => codes.includes(s)),
      });
      continue;
    }
    const ok = check(res, {
      'reserve 200 with the requested seats': (r) =>
        r.status === 200 && b !== null && typeof b.holdGroupId === 'string' && sameSet(b.seatCodes, codes) && b.expiresIn > 0,
    });
    if (!ok) break;
    hold = b;
    heldAt = Date.now();
  }
  shopperGotHold.add(hold !== null);
  if (hold === null) return;
  think();

  // 3. Decide.
  const r = Math.random();
  if (r < CONFIRM_RATIO) {
    confirmsInFlight.add(1);
    const { res } = confirmHold(eventId, user, hold.holdGroupId);
    const b = body(res);
    if (res.status === 200) {
      const ok = check(b, {
        'confirm 200: booking of the held seats': (x) =>
          x !== null && x.success === true && x.bookingGroupId === hold.holdGroupId && sameSet(x.seatCodes, codes),
      });
      const got = b && Array.isArray(b.seatCodes) ? b.seatCodes.length : 0;
      confirmedOrders.add(1);
      confirmedSeats.add(got);
      seatLedger.add(got);
      if (!ok) integrityViolations.add(1, { kind: 'confirm_body' });
    } else if (res.status === 410) {
      confirmExpired.add(1);
      if (Date.now() < heldAt + hold.expiresIn * 1000 - 1000) {
        integrityViolations.add(1, { kind: 'hold_expired_early' });
        console.warn(`hold ${hold.holdGroupId} answered 410 ${(Date.now() - heldAt) / 1000}s after a ${hold.expiresIn}s hold`);
      }
    } else {
      confirmFailed.add(1);
      console.warn(`confirm: ${res.status} ${res.body}`);
    }
    confirmsInFlight.add(-1);
  } else if (r < CONFIRM_RATIO + RELEASE_RATIO) {
    const res = post(
      `/events/${eventId}/seats/release`,
      { userId: user, holdGroupId: hold.holdGroupId },
      req('POST release'),
    );
    const ok = check(res, {
      'release 200 released:true': (x) => x.status === 200 && body(x) !== null && body(x).released === true,
    });
    if (ok) {
      releasedOrders.add(1);
      releasedSeats.add(codes.length);
    } else if (data.mode === 'live') {
      // The hold's fate is unknown: it may still be held.
      integrityViolations.add(1, { kind: 'release_failed' });
    }
  } else {
    abandonedOrders.add(1);
    abandonedSeats.add(codes.length);
    if (data.mode === 'live') heldLedger.add(codes.length);
  }
}

export function teardown(data) {
  const { eventId, mode, probeHold } = data;
  const violation = (kind, bad, detail) => {
    check(null, { [`teardown: ${kind}`]: () => !bad });
    if (bad) {
      integrityViolations.add(1, { kind });
      console.warn(`teardown violation ${kind}: ${detail || ''}`);
    }
  };

  if (mode === 'wait') {
    const deadline = Date.now() + (data.ttl + 10) * 1000;
    let held = -1;
    while (Date.now() < deadline) {
      const d = body(getWithRetry(`/events/${eventId}`, req('GET event (teardown)', 200)));
      held = d ? d.heldSeats : -1;
      if (held === 0) break;
      sleep(1);
    }
    violation('every abandoned hold expired', held !== 0, `heldSeats=${held} after TTL+10s`);
    const late = post(
      `/events/${eventId}/seats/confirm`,
      { userId: 'k6-probe', holdGroupId: probeHold },
      req('POST confirm (teardown)', 410),
    );
    const lb = body(late);
    violation(
      'confirm after expiry answers 410 HOLD_EXPIRED',
      !(late.status === 410 && lb && lb.code === 'HOLD_EXPIRED'),
      `${late.status} ${late.body}`,
    );
  } else if (mode === 'live' && (Date.now() - data.started) / 1000 > data.ttl - 2) {
    console.warn('run outlived the hold TTL: held-seat reconciliation is unreliable');
  }

  const mapRes = getWithRetry(`/events/${eventId}/seats`, req('GET seats (teardown)', 200));
  const map = body(mapRes);
  const detail = body(getWithRetry(`/events/${eventId}`, req('GET event (teardown)', 200)));
  if (!map || !Array.isArray(map.seats) || !detail) {
    throw new Error(`teardown: seat map or event detail unreadable (${mapRes.status})`);
  }
  const codes = map.seats.map((s) => s.code);
  const count = (st) => map.seats.filter((s) => s.status === st).length;
  const booked = count('BOOKED');
  const held = count('HELD');
  const available = count('AVAILABLE');
  violation('seat map lists every seat once', map.seats.length !== SEATS || new Set(codes).size !== codes.length);
  violation(
    'Postgres confirmedSeats equals BOOKED seats',
    detail.confirmedSeats !== booked,
    `confirmedSeats=${detail.confirmedSeats} BOOKED=${booked}`,
  );
  if (mode === 'wait') {
    violation('no HELD seat after expiry', held !== 0 || detail.heldSeats !== 0, `HELD=${held} heldSeats=${detail.heldSeats}`);
    violation(
      'all unbooked seats AVAILABLE after expiry',
      available !== SEATS - booked || detail.availableSeats !== SEATS - booked,
      `AVAILABLE=${available} availableSeats=${detail.availableSeats} expected ${SEATS - booked}`,
    );
  } else {
    violation('detail heldSeats equals HELD seats', detail.heldSeats !== held, `heldSeats=${detail.heldSeats} HELD=${held}`);
    if (mode === 'live') heldLedger.add(-(held - 1)); // the probe hold is not a shopper's
    post(`/events/${eventId}/seats/release`, { userId: 'k6-probe', holdGroupId: probeHold }, req('POST release (teardown)', 200, 410));
  }
  bookedSeatsApi.add(booked);
  seatLedger.add(-booked);
  teardownDone.add(1);
  console.log(
    `checkout-funnel teardown (${mode}): BOOKED ${booked}, HELD ${held}, AVAILABLE ${available}; ` +
      `detail confirmed ${detail.confirmedSeats}, held ${detail.heldSeats}, available ${detail.availableSeats}`,
  );
}

export function handleSummary(data) {
  const count = (name) => metricValue(data, name, 'count') || 0;
  const teardownRan = count('teardown_done') === 1;
  const confirmedClient = count('confirmed_seats');
  const bookedApi = teardownRan ? count('booked_seats_api') : null;
  const orders = count('orders_confirmed') + count('orders_released') + count('orders_abandoned');
  const share = (n) => (orders ? n / orders : null);
  const extra = {
    knobs: { RATE, RAMP_UP, DURATION, RAMP_DOWN, SEATS, SEATMAP_RATIO, CONFIRM_RATIO, RELEASE_RATIO, THINK_MIN_S, THINK_MAX_S },
    oversell: teardownRan ? bookedApi > confirmedClient : null,
    lostSales: teardownRan ? confirmedClient > bookedApi : null,
    mix: {
      confirmed: count('orders_confirmed'),
      released: count('orders_released'),
      abandoned: count('orders_abandoned'),
      confirmedShare: share(count('orders_confirmed')),
      releasedShare: share(count('orders_released')),
      abandonedShare: share(count('orders_abandoned')),
    },
    seats: {
      confirmedClient,
      bookedApi,
      released: count('released_seats'),
      abandoned: count('abandoned_seats'),
    },
    reserve409Share: metricValue(data, 'reserve_conflicts', 'rate'),
    confirmExpired: count('confirm_expired'),
    ledgerDiff: metricValue(data, 'seat_ledger', 'count'),
    heldLedgerDiff: metricValue(data, 'held_ledger', 'count'),
    integrityViolations: count('integrity_violations'),
  };
  const pct = (x) => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
  const lines = [
    `orders            ${orders}: confirmed ${extra.mix.confirmed} (${pct(extra.mix.confirmedShare)}), released ${extra.mix.released} (${pct(extra.mix.releasedShare)}), abandoned ${extra.mix.abandoned} (${pct(extra.mix.abandonedShare)})`,
    `reserve 409 share ${pct(extra.reserve409Share)}, confirm 410 ${extra.confirmExpired}`,
    `seats             confirmed (clients) ${confirmedClient}, BOOKED (API) ${bookedApi === null ? '-' : bookedApi}, released ${extra.seats.released}, abandoned ${extra.seats.abandoned}`,
    `oversell          ${extra.oversell === null ? 'UNKNOWN (teardown did not run)' : extra.oversell ? 'YES' : 'no'}, lost sales ${extra.lostSales === null ? '-' : extra.lostSales ? 'YES' : 'no'}`,
  ];
  return summarize('checkout-funnel', data, extra, lines, extra.oversell === false && extra.lostSales === false);
}
