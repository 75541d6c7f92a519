// browse.js — read traffic: the event list, event details and seat maps under load.
//
// setup() creates EVENTS events (default 5) of EVENT_SEATS seats (default 500) and gives each a
// mixed seat map: a few confirmed bookings and a few live holds, so reads cover AVAILABLE, HELD
// and BOOKED seats and the detail's held/confirmed counts are non-zero. A constant-arrival-rate
// scenario (RATE iterations/s for DURATION) then does one read per iteration:
//   LIST_RATIO   (0.3)  GET /events?limit=20
//   DETAIL_RATIO (0.4)  GET /events/{id} of a random setup event
//   the rest     (0.3)  GET /events/{id}/seats of a random setup event
// and checks every body: the list is an array of events, the detail's counts add up
// (available = total - confirmed - held, confirmed >= what setup booked), the seat map lists
// every seat once, in order, with a valid status (secondsRemaining only on HELD seats).
//
// Thresholds: no failed request, >99.9% of checks pass, p95/p99 latency per endpoint
// (tunable: LIST_P95_MS, DETAIL_P95_MS, SEATMAP_P95_MS; p99 limits are 3x the p95 ones), and at
// most 5% of the planned iterations dropped for lack of VUs (a sign the target or the load
// generator is saturated).
//
// Knobs (env): RATE (default 150), DURATION (20s), PRE_VUS (50), MAX_VUS (400), EVENTS (5),
// EVENT_SEATS (500), LIST_RATIO, DETAIL_RATIO, BASE_URL, RESULTS_DIR.

import { check } from 'k6';
import { Counter } from 'k6/metrics';
import {
  body,
  createEvent,
  durationSeconds,
  envFloat,
  envInt,
  envStr,
  get,
  post,
  req,
} from './lib/common.js';
import { metricValue, summarize } from './lib/summary.js';

const RATE = envInt('RATE', 150);
const DURATION = envStr('DURATION', '20s');
const PRE_VUS = envInt('PRE_VUS', 50);
const MAX_VUS = envInt('MAX_VUS', 400);
const EVENTS = envInt('EVENTS', 5);
const EVENT_SEATS = envInt('EVENT_SEATS', 500);
const LIST_RATIO = envFloat('LIST_RATIO', 0.3);
const DETAIL_RATIO = envFloat('DETAIL_RATIO', 0.4);
const LIST_P95 = envInt('LIST_P95_MS', 250);
const DETAIL_P95 = envInt('DETAIL_P95_MS', 250);
const SEATMAP_P95 = envInt('SEATMAP_P95_MS', 400);
const PLANNED = Math.round(RATE * durationSeconds(DURATION));
const BOOKED_PER_EVENT = Math.min(10, Math.floor(EVENT_SEATS / 4));
const HELD_PER_EVENT = Math.min(10, Math.floor(EVENT_SEATS / 4));

const reads = new Counter('reads');

export const options = {
  scenarios: {
    browse: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: PRE_VUS,
      maxVUs: MAX_VUS,
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.001'],
    checks: ['rate>0.999'],
    'http_req_duration{name:GET /events}': [`p(95)<${LIST_P95}`, `p(99)<${3 * LIST_P95}`],
    'http_req_duration{name:GET event}': [`p(95)<${DETAIL_P95}`, `p(99)<${3 * DETAIL_P95}`],
    'http_req_duration{name:GET seats}': [`p(95)<${SEATMAP_P95}`, `p(99)<${3 * SEATMAP_P95}`],
    dropped_iterations: [`count<=${Math.ceil(PLANNED * 0.05)}`],
    'reads{kind:list}': ['count>0'],
    'reads{kind:detail}': ['count>0'],
    'reads{kind:seatmap}': ['count>0'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  setupTimeout: '120s',
};

export function setup() {
  const events = [];
  for (let e = 0; e < EVENTS; e++) {
    const id = createEvent(`k6 browse ${Date.now()} #${e + 1}`, EVENT_SEATS);
    // Book the first seats (two per booking) and hold a few more, so the map is mixed.
    for (let i = 1; i + 1 <= BOOKED_PER_EVENT; i += 2) {
      const codes = [`S${i}`, `S${i + 1}`];
      const h = body(post(`/events/${id}/seats/reserve`, { userId: 'k6-browse', seatCodes: codes }, req('POST reserve (setup)', 200)));
      if (!h || !h.holdGroupId) throw new Error(`setup: could not hold ${codes} of event ${id}`);
      const c = post(`/events/${id}/seats/confirm`, { userId: 'k6-browse', holdGroupId: h.holdGroupId }, req('POST confirm (setup)', 200));
      if (c.status !== 200) throw new Error(`setup: could not confirm: ${c.status} ${c.body}`);
    }
    const heldCodes = [];
    for (let i = 0; i < HELD_PER_EVENT; i++) heldCodes.push(`S${EVENT_SEATS - i}`);
    if (heldCodes.length > 0) {
      post(`/events/${id}/seats/reserve`, { userId: 'k6-browse', seatCodes: heldCodes }, req('POST reserve (setup)', 200));
    }
    events.push(id);
  }
  console.log(`browse: events ${events.join(', ')} of ${EVENT_SEATS} seats; ${RATE} reads/s for ${DURATION}`);
  return { events, booked: BOOKED_PER_EVENT - (BOOKED_PER_EVENT % 2) };
}

const STATUSES = { AVAILABLE: true, HELD: true, BOOKED: true };

export default function (data) {
  const r = Math.random();
  const id = data.events[Math.floor(Math.random() * data.events.length)];
  if (r < LIST_RATIO) {
    const res = get('/events?limit=20', req('GET /events'));
    const b = body(res);
    reads.add(1, { kind: 'list' });
    check(res, {
      'list 200: array of up to 20 events': (x) =>
        x.status === 200 &&
        Array.isArray(b) &&
        b.length > 0 &&
        b.length <= 20 &&
        b.every((e) => Number.isInteger(e.id) && typeof e.name === 'string' && typeof e.date === 'string' && Number.isInteger(e.totalSeats)),
    });
  } else if (r < LIST_RATIO + DETAIL_RATIO) {
    const res = get(`/events/${id}`, req('GET event'));
    const b = body(res);
    reads.add(1, { kind: 'detail' });
    check(res, {
      'detail 200: counts add up': (x) =>
        x.status === 200 &&
        b !== null &&
        b.id === id &&
        b.totalSeats === EVENT_SEATS &&
        b.confirmedSeats >= data.booked &&
        b.availableSeats === Math.max(0, b.totalSeats - b.confirmedSeats - b.heldSeats),
    });
  } else {
    const res = get(`/events/${id}/seats`, req('GET seats'));
    const b = body(res);
    reads.add(1, { kind: 'seatmap' });
    check(res, {
      'seat map 200: every seat once, in order, valid status': (x) =>
        x.status === 200 &&
        b !== null &&
        b.eventId === id &&
        b.seats.length === EVENT_SEATS &&
        b.seats.every(
          (s, i) =>
            s.code === `S${i + 1}` &&
            STATUSES[s.status] === true &&
            (s.status === 'HELD' ? s.secondsRemaining > 0 : s.secondsRemaining === null),
        ),
      'seat map: setup bookings BOOKED': () =>
        b !== null && Array.isArray(b.seats) && b.seats.slice(0, data.booked).every((s) => s.status === 'BOOKED'),
    });
  }
}

export function handleSummary(data) {
  const c = (kind) => metricValue(data, `reads{kind:${kind}}`, 'count') || 0;
  const p = (name, q) => metricValue(data, `http_req_duration{name:${name}}`, q);
  const extra = {
    knobs: { RATE, DURATION, EVENTS, EVENT_SEATS, LIST_RATIO, DETAIL_RATIO },
    reads: { list: c('list'), detail: c('detail'), seatmap: c('seatmap') },
    latencyByEndpointMs: {
      list: { p95: p('GET /events', 'p(95)'), p99: p('GET /events', 'p(99)') },
      detail: { p95: p('GET event', 'p(95)'), p99: p('GET event', 'p(99)') },
      seatmap: { p95: p('GET seats', 'p(95)'), p99: p('GET seats', 'p(99)') },
    },
  };
  const f = (x) => (x === null ? '-' : x.toFixed(2));
  const l = extra.latencyByEndpointMs;
  const lines = [
    `reads             list ${extra.reads.list}, detail ${extra.reads.detail}, seat map ${extra.reads.seatmap} (${EVENTS} events x ${EVENT_SEATS} seats)`,
    `p95/p99 ms        list ${f(l.list.p95)}/${f(l.list.p99)}, detail ${f(l.detail.p95)}/${f(l.detail.p99)}, seat map ${f(l.seatmap.p95)}/${f(l.seatmap.p99)}`,
  ];
  return summarize('browse', data, extra, lines);
}
