// ga-flash-sale.js — general admission: BUYERS buyers (default 1,000) race for CAPACITY units
// (default 500) of one tier, 1..MAX_UNITS (default 4) units each; half of the buyers who get a
// hold confirm it, the other half release it. Nothing may be sold past the capacity, and every
// acknowledged confirm must be in Postgres.
//
// How "sold = units of acknowledged confirms <= capacity" is proved
// ------------------------------------------------------------------
// As in flash-sale.js, the comparison is made inside metrics, since teardown() cannot read VU
// state but its metrics land in the same end-of-test aggregate:
//
//  1. `units_ledger` (Counter, signed): each 200 confirm adds +q (q = the quantity of GA in the
//     confirm's 200 body); teardown() reads the event through the API and adds -confirmed (the
//     tier's `confirmed`, which is Postgres's `tiers.sold`). Threshold `count==0`: the units the
//     clients were told are theirs equal the units sold, exactly.
//  2. teardown() flags `integrity_violations` when `confirmed > capacity`, when the tier's counts
//     do not add up (`confirmed + held + available != capacity`) or when units are still held
//     after every hold was confirmed or released; each VU flags a 409 that does not name GA with
//     the requested quantity and fewer units left, and a confirm body without its units.
//  3. Soundness: confirm is idempotent and retried until definite (`confirms_in_flight` ends at
//     0), `teardown_done` proves the teardown ran.
// Any failing threshold makes k6 exit 99; handleSummary writes `"oversell": true|false` and the
// numbers to ${RESULTS_DIR}/ga-flash-sale.json.
//
// Knobs (env): BUYERS (1000), CAPACITY (500), MAX_UNITS (4), VUS (100), BASE_URL, RESULTS_DIR,
// JWT_SECRET (token mode, see README.md). MAX_UNITS must not pass the service's
// holds.max_seats_per_hold (default 10).

import { check } from 'k6';
import http from 'k6/http';
import { Counter, Rate } from 'k6/metrics';
import { body, confirmHold, envInt, futureDate, getWithRetry, post, randInt, req, userId } from './lib/common.js';
import { metricValue, summarize } from './lib/summary.js';

const BUYERS = envInt('BUYERS', 1000);
const CAPACITY = envInt('CAPACITY', 500);
const MAX_UNITS = Math.max(1, envInt('MAX_UNITS', 4));
const VUS = Math.min(envInt('VUS', 100), BUYERS);

const shortRefusals = new Rate('reserve_short'); // true on 409: the share of buyers turned away
const holdsTaken = new Counter('holds_taken');
const unitsHeld = new Counter('units_held');
const confirmsOk = new Counter('confirms_ok');
const unitsConfirmed = new Counter('units_confirmed');
const releases = new Counter('releases_ok');
const confirmRefused = new Counter('confirm_refused');
const confirmFailed = new Counter('confirm_failed');
const unitsLedger = new Counter('units_ledger');
const confirmsInFlight = new Counter('confirms_in_flight');
const integrityViolations = new Counter('integrity_violations');
const soldApi = new Counter('sold_api');
const teardownDone = new Counter('teardown_done');

export const options = {
  scenarios: {
    ga_flash_sale: {
      executor: 'shared-iterations',
      vus: VUS,
      iterations: BUYERS,
      maxDuration: '5m',
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{name:POST reserve GA}': ['p(95)<500'],
    confirms_ok: ['count>0'],
    confirm_refused: ['count==0'],
    confirm_failed: ['count==0'],
    units_ledger: ['count==0'],
    confirms_in_flight: ['count==0'],
    integrity_violations: ['count==0'],
    teardown_done: ['count==1'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  setupTimeout: '60s',
  teardownTimeout: '60s',
};

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409));

export function setup() {
  const payload = {
    name: `k6 GA flash sale ${Date.now()}`,
    date: futureDate(30),
    location: 'k6 Field',
    tiers: [{ code: 'GA', name: 'General admission', price: 39.5, capacity: CAPACITY }],
  };
  const res = post('/events', payload, req('POST /events', 201));
  const b = body(res);
  if (res.status !== 201 || !b || !Number.isInteger(b.eventId)) {
    throw new Error(`could not create the GA event: ${res.status} ${res.body}`);
  }
  console.log(`ga-flash-sale: event ${b.eventId}, ${BUYERS} buyers for ${CAPACITY} units, 1..${MAX_UNITS} each`);
  return { eventId: b.eventId };
}

export default function (data) {
  const eventId = data.eventId;
  const user = userId('ga');
  const q = randInt(1, MAX_UNITS);
  const res = post(
    `/events/${eventId}/seats/reserve`,
    { userId: user, tiers: [{ code: 'GA', quantity: q }] },
    req('POST reserve GA'),
  );
  shortRefusals.add(res.status === 409);
  const b = body(res);
  if (res.status === 409) {
    const short = b && Array.isArray(b.tiers) ? b.tiers[0] : null;
    const ok = check(b, {
      'reserve 409: SEATS_UNAVAILABLE naming GA with fewer units left': () =>
        b.code === 'SEATS_UNAVAILABLE' &&
        short !== null &&
        short.code === 'GA' &&
        short.requested === q &&
        short.available < q,
    });
    if (!ok) integrityViolations.add(1, { kind: 'refusal_body' });
    return;
  }
  const held = check(res, {
    'reserve 200: a hold of the requested units': (r) =>
      r.status === 200 &&
      b !== null &&
      typeof b.holdGroupId === 'string' &&
      Array.isArray(b.tiers) &&
      b.tiers.length === 1 &&
      b.tiers[0].quantity === q,
  });
  if (!held) return;
  holdsTaken.add(1);
  unitsHeld.add(q);

  if (Math.random() < 0.5) {
    confirmsInFlight.add(1);
    const { res: c } = confirmHold(eventId, user, b.holdGroupId);
    const cb = body(c);
    if (c.status === 200) {
      const got = cb && Array.isArray(cb.tiers) && cb.tiers.length === 1 ? cb.tiers[0].quantity : 0;
      confirmsOk.add(1);
      unitsConfirmed.add(got);
      unitsLedger.add(got);
      if (got !== q) integrityViolations.add(1, { kind: 'confirm_body' });
    } else if (c.status === 409) {
      confirmRefused.add(1);
      console.warn(`confirm refused by the guard: ${c.body}`);
    } else {
      confirmFailed.add(1);
      console.warn(`confirm without a definite answer: ${c.status} ${c.body}`);
    }
    confirmsInFlight.add(-1);
  } else {
    const r = post(
      `/events/${eventId}/seats/release`,
      { userId: user, holdGroupId: b.holdGroupId },
      req('POST release', 200),
    );
    if (r.status === 200) releases.add(1);
  }
}

export function teardown(data) {
  const res = getWithRetry(`/events/${data.eventId}`, req('GET event (teardown)', 200));
  const e = body(res);
  const tier = e && Array.isArray(e.tiers) ? e.tiers.find((t) => t.code === 'GA') : null;
  if (res.status !== 200 || !tier) {
    throw new Error(`teardown: event unreadable: ${res.status} ${res.body}`);
  }
  const violations = {
    sold_over_capacity: tier.confirmed > CAPACITY,
    counts_do_not_add_up: tier.confirmed + tier.held + tier.available !== tier.capacity,
    units_still_held: tier.held !== 0,
  };
  for (const [kind, bad] of Object.entries(violations)) {
    check(null, { [`teardown: no ${kind}`]: () => !bad });
    if (bad) integrityViolations.add(1, { kind });
  }
  soldApi.add(tier.confirmed);
  unitsLedger.add(-tier.confirmed);
  teardownDone.add(1);
  console.log(
    `ga-flash-sale teardown: confirmed ${tier.confirmed} of ${tier.capacity}, held ${tier.held}, available ${tier.available}`,
  );
}

export function handleSummary(data) {
  const count = (name) => metricValue(data, name, 'count') || 0;
  const teardownRan = count('teardown_done') === 1;
  const told = count('units_confirmed');
  const sold = teardownRan ? count('sold_api') : null;
  const oversell = teardownRan ? sold > CAPACITY || sold > told : null;
  const lostSales = teardownRan ? told > sold : null;
  const extra = {
    knobs: { BUYERS, CAPACITY, MAX_UNITS, VUS },
    oversell,
    lostSales,
    verification: {
      teardownRan,
      confirmsOk: count('confirms_ok'),
      unitsConfirmedClient: told,
      soldApi: sold,
      ledgerDiff: metricValue(data, 'units_ledger', 'count'),
      integrityViolations: count('integrity_violations'),
      confirmsInFlightAtEnd: count('confirms_in_flight'),
    },
    reserveShortShare: metricValue(data, 'reserve_short', 'rate'),
    holdsTaken: count('holds_taken'),
    unitsHeld: count('units_held'),
    releases: count('releases_ok'),
  };
  const pct = (x) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);
  const lines = [
    `event             GA tier of ${CAPACITY} units, ${BUYERS} buyers, 1..${MAX_UNITS} units each`,
    `holds             ${extra.holdsTaken} taken (${extra.unitsHeld} units), ${extra.releases} released, 409 share ${pct(extra.reserveShortShare)}`,
    `confirms          ${extra.verification.confirmsOk} ok, ${told} units told to clients`,
    `sold (API)        ${sold === null ? '-' : sold} units confirmed of ${CAPACITY}`,
    `oversell          ${oversell === null ? 'UNKNOWN (teardown did not run)' : oversell ? 'YES' : 'no'}, lost sales ${lostSales === null ? '-' : lostSales ? 'YES' : 'no'}`,
  ];
  return summarize('ga-flash-sale', data, extra, lines, oversell === false && lostSales === false);
}
