// flash-sale.js — many buyers race for a few hot seats; nothing may be sold twice.
//
// setup() creates one small event (TOTAL_SEATS, default 50) whose first HOT_SEATS seats
// (S1..S20 by default) are the only ones anybody asks for. A constant-arrival-rate scenario
// (RATE iterations/s for DURATION) has every iteration pick 1..MAX_PICK hot seats, reserve them
// and, on 200, confirm at once, then read the booking back. 409 on reserve is the expected answer
// once the seats are gone (it is an expected status, not an http_req_failed).
//
// How "no oversell" and "confirmed seats == successful confirms" are proved
// ------------------------------------------------------------------------
// k6 teardown() cannot read VU-local state, but metrics emitted in teardown land in the same
// end-of-test aggregation as the VUs' metrics, and thresholds are evaluated on that aggregate.
// So the comparison is made *inside a metric*:
//
//  1. `seat_ledger` (Counter, signed). Each successful confirm adds +n (n = seats in the 200
//     response). teardown() reads the seat map through the API and adds -B (B = seats whose
//     status is BOOKED). Threshold `seat_ledger: count==0` holds iff the seats the clients were
//     told are theirs equal the seats the API reports as booked, exactly. > 0 means a lost sale,
//     < 0 means seats booked that no client was told about (oversell / phantom booking).
//  2. `seat_sales{seat:Sx}` (Counter tagged by seat). Each successful confirm adds 1 per seat it
//     got; one threshold `count<=1` per hot seat fails if any seat was sold to two clients.
//  3. teardown() also compares the event detail's confirmedSeats (Postgres: count of *active*
//     booking rows) with B (distinct seats BOOKED in the seat map): more rows than seats means a
//     seat with two active bookings. That, non-hot seats being booked, a seat map with duplicate
//     codes, each VU's read-back of its own booking (GET /bookings/{id} must be CONFIRMED with
//     exactly the seats confirmed) and a 410 on confirm before the hold's expiresIn was up all add
//     to `integrity_violations` (threshold count==0).
//  4. Soundness of the client-side count: confirm is idempotent, so an ambiguous confirm (no
//     response / 5xx) is retried until it is a definite answer; `confirms_in_flight` (+1 before,
//     -1 after; threshold count==0) proves no iteration was cut off mid-confirm by the graceful
//     stop, and `teardown_done` (count==1) proves the teardown verification ran. With no
//     cancels in this scenario, BOOKED can only come from confirms.
// Any failing threshold makes k6 exit non-zero (99). handleSummary additionally writes
// `"oversell": true|false` (null when teardown did not run) and the numbers behind it into
// ${RESULTS_DIR}/flash-sale.json.
//
// Knobs (env): RATE (iterations/s, default 500), DURATION (20s), PRE_VUS (100), MAX_VUS (600),
// TOTAL_SEATS (50), HOT_SEATS (20), MAX_PICK (2), RESERVE_P95_MS (500), RESERVE_P99_MS (1000),
// CONFIRM_P95_MS (1000), GRACEFUL_STOP (60s), BASE_URL, RESULTS_DIR.

import http from 'k6/http';
import { check } from 'k6';
import { Counter, Rate } from 'k6/metrics';
import {
  body,
  confirmHold,
  createEvent,
  distinctInts,
  durationSeconds,
  envInt,
  envStr,
  get,
  getWithRetry,
  post,
  randInt,
  req,
  sameSet,
  seatCodes,
  userId,
} from './lib/common.js';
import { metricValue, summarize } from './lib/summary.js';

const RATE = envInt('RATE', 500);
const DURATION = envStr('DURATION', '20s');
const PRE_VUS = envInt('PRE_VUS', 100);
const MAX_VUS = envInt('MAX_VUS', 600);
const TOTAL_SEATS = envInt('TOTAL_SEATS', 50);
const HOT_SEATS = Math.min(envInt('HOT_SEATS', 20), TOTAL_SEATS);
const MAX_PICK = Math.max(1, Math.min(envInt('MAX_PICK', 2), HOT_SEATS, 10));
const GRACEFUL_STOP = envStr('GRACEFUL_STOP', '60s');
const PLANNED = Math.round(RATE * durationSeconds(DURATION));

const reserveConflicts = new Rate('reserve_conflicts'); // true on 409: the 409 share
const holdsTaken = new Counter('holds_taken');
const confirmsOk = new Counter('confirms_ok');
const confirmedSeats = new Counter('confirmed_seats');
const confirmExpired = new Counter('confirm_expired'); // 410: hold outlived its TTL
const confirmRefused = new Counter('confirm_refused'); // 409 from the Postgres guard
const confirmFailed = new Counter('confirm_failed'); // no definite answer / unexpected status
const seatSales = new Counter('seat_sales');
const seatLedger = new Counter('seat_ledger');
const confirmsInFlight = new Counter('confirms_in_flight');
const integrityViolations = new Counter('integrity_violations');
const bookedSeatsApi = new Counter('booked_seats_api');
const pgConfirmedSeats = new Counter('pg_confirmed_seats');
const teardownDone = new Counter('teardown_done');

const thresholds = {
  http_req_failed: ['rate<0.01'],
  'http_req_duration{name:POST reserve}': [
    `p(95)<${envInt('RESERVE_P95_MS', 500)}`,
    `p(99)<${envInt('RESERVE_P99_MS', 1000)}`,
  ],
  'http_req_duration{name:POST confirm}': [`p(95)<${envInt('CONFIRM_P95_MS', 1000)}`],
  dropped_iterations: [`count<=${Math.ceil(PLANNED * 0.05)}`],
  confirms_ok: ['count>0'],
  confirm_refused: ['count==0'],
  confirm_failed: ['count==0'],
  seat_ledger: ['count==0'],
  confirms_in_flight: ['count==0'],
  integrity_violations: ['count==0'],
  teardown_done: ['count==1'],
};
for (let i = 1; i <= HOT_SEATS; i++) thresholds[`seat_sales{seat:S${i}}`] = ['count<=1'];

export const options = {
  scenarios: {
    flash_sale: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: PRE_VUS,
      maxVUs: MAX_VUS,
      gracefulStop: GRACEFUL_STOP,
    },
  },
  thresholds,
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  setupTimeout: '60s',
  teardownTimeout: '120s',
};

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409, 410));

export function setup() {
  const eventId = createEvent(`k6 flash sale ${Date.now()}`, TOTAL_SEATS);
  console.log(
    `flash-sale: event ${eventId}, ${HOT_SEATS} hot seats of ${TOTAL_SEATS}, ` +
      `${RATE} it/s for ${DURATION} (${PLANNED} iterations planned)`,
  );
  return { eventId };
}

export default function (data) {
  const eventId = data.eventId;
  const codes = seatCodes(distinctInts(randInt(1, MAX_PICK), HOT_SEATS));
  const user = userId('fan');
  const res = post(`/events/${eventId}/seats/reserve`, { userId: user, seatCodes: codes }, req('POST reserve'));
  reserveConflicts.add(res.status === 409);
  if (res.status === 409) {
    const b = body(res);
    check(b, {
      'reserve 409: SEATS_UNAVAILABLE naming requested seats': (b) =>
        b !== null &&
        b.code === 'SEATS_UNAVAILABLE' &&
        Array.isArray(b.seats) &&
        b.seats.length > 0 &&
        b.seats.every((s) => codes.includes(s)),
    });
    return;
  }
  const hold = body(res);
  const held = check(res, {
    'reserve 200 with a hold of the requested seats': (r) =>
      r.status === 200 && hold !== null && typeof hold.holdGroupId === 'string' && sameSet(hold.seatCodes, codes),
  });
  if (!held) return;
  holdsTaken.add(1);
  const heldAt = Date.now();

  confirmsInFlight.add(1);
  const { res: c } = confirmHold(eventId, user, hold.holdGroupId);
  const cb = body(c);
  if (c.status === 200) {
    const ok = check(cb, {
      'confirm 200: booking of the held seats': (b) =>
        b !== null &&
        b.success === true &&
        b.bookingGroupId === hold.holdGroupId &&
        b.eventId === eventId &&
        sameSet(b.seatCodes, codes),
    });
    // Count what the API told this client it owns.
    const got = cb && Array.isArray(cb.seatCodes) ? cb.seatCodes : [];
    confirmsOk.add(1);
    confirmedSeats.add(got.length);
    seatLedger.add(got.length);
    for (const s of got) seatSales.add(1, { seat: s });
    if (!ok) integrityViolations.add(1, { kind: 'confirm_body' });
  } else if (c.status === 410) {
    confirmExpired.add(1);
    if (Date.now() < heldAt + hold.expiresIn * 1000 - 1000) {
      integrityViolations.add(1, { kind: 'hold_expired_early' });
      console.warn(`hold ${hold.holdGroupId} answered 410 ${(Date.now() - heldAt) / 1000}s into a ${hold.expiresIn}s hold`);
    }
  } else if (c.status === 409) {
    confirmRefused.add(1);
    console.warn(`confirm refused by the guard: ${c.body}`);
  } else {
    confirmFailed.add(1);
    console.warn(`confirm without a definite answer: ${c.status} ${c.body}`);
  }
  confirmsInFlight.add(-1);

  if (c.status === 200) {
    const bk = get(`/bookings/${hold.holdGroupId}`, req('GET booking', 200));
    const b = body(bk);
    const ok = check(bk, {
      'booking read back: CONFIRMED with the confirmed seats': (r) =>
        r.status === 200 &&
        b !== null &&
        b.status === 'CONFIRMED' &&
        b.userId === user &&
        b.eventId === eventId &&
        sameSet(
          b.seats.map((s) => s.code),
          codes,
        ),
    });
    if (!ok) integrityViolations.add(1, { kind: 'booking_readback' });
  }
}

export function teardown(data) {
  const eventId = data.eventId;
  const mapRes = getWithRetry(`/events/${eventId}/seats`, req('GET seats (teardown)', 200));
  const map = body(mapRes);
  if (mapRes.status !== 200 || !map || !Array.isArray(map.seats)) {
    throw new Error(`teardown: seat map unreadable: ${mapRes.status} ${mapRes.body}`);
  }
  const detailRes = getWithRetry(`/events/${eventId}`, req('GET event (teardown)', 200));
  const detail = body(detailRes);
  if (detailRes.status !== 200 || !detail) {
    throw new Error(`teardown: event detail unreadable: ${detailRes.status} ${detailRes.body}`);
  }

  const codes = map.seats.map((s) => s.code);
  const booked = map.seats.filter((s) => s.status === 'BOOKED').map((s) => s.code);
  const hot = new Set(seatCodes(Array.from({ length: HOT_SEATS }, (_, i) => i + 1)));
  const violations = {
    seat_map_size: map.seats.length !== TOTAL_SEATS,
    seat_map_duplicate_codes: new Set(codes).size !== codes.length,
    cold_seat_booked: booked.some((c) => !hot.has(c)),
    more_bookings_than_seats: detail.confirmedSeats !== booked.length,
    booked_over_capacity: booked.length > HOT_SEATS,
  };
  for (const [kind, bad] of Object.entries(violations)) {
    check(null, { [`teardown: no ${kind}`]: () => !bad });
    if (bad) integrityViolations.add(1, { kind });
  }

  bookedSeatsApi.add(booked.length);
  pgConfirmedSeats.add(detail.confirmedSeats);
  seatLedger.add(-booked.length);
  teardownDone.add(1);
  const unsold = Array.from(hot).filter((c) => !booked.includes(c));
  console.log(
    `flash-sale teardown: ${booked.length} seats BOOKED in the seat map, Postgres confirmedSeats=` +
      `${detail.confirmedSeats}, heldSeats=${detail.heldSeats}, hot seats unsold: ${unsold.length}`,
  );
}

export function handleSummary(data) {
  const count = (name) => metricValue(data, name, 'count');
  const teardownRan = (count('teardown_done') || 0) === 1;
  const confirmedClient = count('confirmed_seats') || 0;
  const bookedApi = teardownRan ? count('booked_seats_api') || 0 : null;
  const pgConfirmed = teardownRan ? count('pg_confirmed_seats') || 0 : null;
  const seatsSoldTwice = [];
  for (let i = 1; i <= HOT_SEATS; i++) {
    const m = data.metrics[`seat_sales{seat:S${i}}`];
    if (m && (m.values.count || 0) > 1) seatsSoldTwice.push(`S${i}`);
  }
  const oversell = teardownRan
    ? bookedApi > confirmedClient || pgConfirmed > bookedApi || seatsSoldTwice.length > 0
    : null;
  const lostSales = teardownRan ? confirmedClient > bookedApi : null;
  const extra = {
    knobs: { RATE, DURATION, PRE_VUS, MAX_VUS, TOTAL_SEATS, HOT_SEATS, MAX_PICK },
    oversell,
    lostSales,
    verification: {
      teardownRan,
      confirmsOk: count('confirms_ok') || 0,
      confirmedSeatsClient: confirmedClient,
      bookedSeatsApi: bookedApi,
      postgresConfirmedSeats: pgConfirmed,
      ledgerDiff: count('seat_ledger'),
      seatsSoldTwice,
      integrityViolations: count('integrity_violations') || 0,
      confirmsInFlightAtEnd: count('confirms_in_flight') || 0,
    },
    reserve409Share: metricValue(data, 'reserve_conflicts', 'rate'),
    holdsTaken: count('holds_taken') || 0,
    confirmExpired: count('confirm_expired') || 0,
    confirmRefused: count('confirm_refused') || 0,
  };
  const pct = (x) => (x === null ? '-' : `${(100 * x).toFixed(2)}%`);
  const lines = [
    `event             ${HOT_SEATS} hot seats of ${TOTAL_SEATS}, ${RATE} it/s for ${DURATION}, 1..${MAX_PICK} seats per hold`,
    `reserve 409 share ${pct(extra.reserve409Share)}, holds taken ${extra.holdsTaken}, confirm 410 ${extra.confirmExpired}, confirm 409 ${extra.confirmRefused}`,
    `confirms          ${extra.verification.confirmsOk} ok, ${confirmedClient} seats told to clients`,
    `booked (API)      ${bookedApi === null ? '-' : bookedApi} seats BOOKED in the seat map, Postgres confirmedSeats ${pgConfirmed === null ? '-' : pgConfirmed}`,
    `oversell          ${oversell === null ? 'UNKNOWN (teardown did not run)' : oversell ? 'YES' : 'no'}` +
      `${seatsSoldTwice.length ? ` (sold twice: ${seatsSoldTwice.join(', ')})` : ''}, lost sales ${lostSales === null ? '-' : lostSales ? 'YES' : 'no'}`,
  ];
  return summarize('flash-sale', data, extra, lines, oversell === false && lostSales === false);
}
