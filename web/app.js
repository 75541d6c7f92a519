// seatlock buyer page: the events list (/) and an event's live seat map (/e/{id}).
// Plain JavaScript, no build step, no third-party code. The seat map comes from the server-sent
// event stream GET /events/{id}/stream (a snapshot, then updates); holds, payments and releases
// go to the JSON API. Every API error is shown in words.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const MAX_PER_HOLD = 10;
  const TEST_CARD = '4242424242424242';
  let authMode = 'none';

  // ---------------------------------------------------------------- who is buying

  const saved = (key) => { try { return localStorage.getItem(key) || ''; } catch (_) { return ''; } };
  const save = (key, value) => { try { localStorage.setItem(key, value); } catch (_) { /* private mode */ } };

  function setupWho() {
    const buyer = $('buyer');
    const token = $('token');
    buyer.value = saved('seatlock.buyer');
    token.value = saved('seatlock.token');
    buyer.addEventListener('input', () => save('seatlock.buyer', buyer.value.trim()));
    token.addEventListener('input', () => save('seatlock.token', token.value.trim()));
    // A token pasted (or changed) takes effect at once: the page loads again with it.
    token.addEventListener('change', () => {
      save('seatlock.token', token.value.trim());
      if (authMode === 'token') location.reload();
    });
    $('who').addEventListener('submit', (e) => e.preventDefault());
  }

  async function detectAuth() {
    try {
      const r = await fetch('/readyz', { headers: { accept: 'application/json' } });
      const body = await r.json();
      authMode = body.auth || 'none';
    } catch (_) {
      authMode = 'none';
    }
    for (const el of document.querySelectorAll('.token-only')) el.hidden = authMode !== 'token';
    if (authMode === 'token') {
      // A buyer's token names the buyer (its `sub`): the name is not needed.
      $('buyer').required = false;
      $('buyer').placeholder = 'optional: your token names you';
    }
  }

  const buyerName = () => $('buyer').value.trim();
  const token = () => $('token').value.trim();
  /** The body's `userId`: the name given; in token mode left out when empty (the token's buyer). */
  const asBuyer = (body) => (buyerName() ? { userId: buyerName(), ...body } : body);

  async function api(method, path, body) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (authMode === 'token' && token()) headers.authorization = `Bearer ${token()}`;
    try {
      const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      let data = null;
      try { data = await r.json(); } catch (_) { data = null; }
      return { status: r.status, body: data || {} };
    } catch (_) {
      return { status: 0, body: { error: 'the service cannot be reached; check your connection' } };
    }
  }

  const money = (n) => Number(n).toFixed(2);

  /** An API refusal in words a buyer understands. */
  function explain(res) {
    const b = res.body || {};
    switch (b.code) {
      case 'SEATS_UNAVAILABLE': {
        const parts = [];
        if (b.seats && b.seats.length) parts.push(`seat${b.seats.length > 1 ? 's' : ''} ${b.seats.join(', ')} ${b.seats.length > 1 ? 'were' : 'was'} just taken by someone else`);
        for (const t of b.tiers || []) parts.push(`only ${t.available} left of ${t.code} (you asked for ${t.requested})`);
        return `Sorry: ${parts.join('; ') || 'those seats are no longer available'}.`;
      }
      case 'SEATS_ALREADY_BOOKED': return `Sorry: ${(b.seats || []).join(', ')} ${(b.seats || []).length > 1 ? 'were' : 'was'} sold to someone else.`;
      case 'USER_LIMIT_REACHED': return `You can have at most ${b.limit} ${b.cap === 'max_live_holds_per_user' ? 'holds at a time' : 'seats for this event'} (you have ${b.current}).`;
      case 'HOLD_EXPIRED': return 'Your hold has expired; the seats are free again.';
      case 'SALES_NOT_OPEN': return `Sales have not opened yet: they open ${new Date(b.opensAt).toLocaleString()}.`;
      case 'SALES_CLOSED': return `Sales closed ${new Date(b.closedAt).toLocaleString()}.`;
      case 'ADMISSION_REQUIRED': return 'This sale admits buyers through its waiting room: join the queue first.';
      case 'RATE_LIMITED': return `Too many requests; try again in ${b.retryAfterSeconds || 1} s.`;
      case 'UNAUTHENTICATED': return 'This service needs you to sign in: paste a valid token above.';
      case 'USER_MISMATCH': return 'Your token belongs to another buyer than the name above.';
      case 'EVENT_NOT_FOUND': return 'This event does not exist (any more).';
      case 'SERVICE_UNAVAILABLE': case 'REQUEST_TIMEOUT': return 'The service is busy or briefly unavailable; try again in a moment.';
      default:
        if (b.error) return `Sorry: ${b.error}.`;
        return res.status ? `Something went wrong (HTTP ${res.status}).` : 'The service cannot be reached.';
    }
  }

  function say(text, ok) {
    const m = $('message');
    m.textContent = text;
    m.classList.toggle('ok', Boolean(ok));
  }

  // ---------------------------------------------------------------- the events list

  async function eventsPage() {
    const res = await api('GET', '/events?limit=100');
    const list = $('events');
    if (res.status !== 200) return say(explain(res));
    if (!res.body.length) return say('No events yet.', true);
    for (const e of res.body) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = `/e/${e.id}`;
      a.textContent = `${e.name} · ${new Date(e.date).toLocaleString()} · ${e.location}`;
      li.appendChild(a);
      list.appendChild(li);
    }
  }

  // ---------------------------------------------------------------- an event's seat map

  const seats = new Map(); // code -> {code, type, price, status, until, row, number, el}
  const tiers = new Map(); // code -> {code, name, price, available, el, input}
  const selected = new Set();
  let hold = null; // {id, seats: Set, tiers: [], expiresAt: ms}
  let eventId = null;
  let countdown = null;

  const seatName = (s) => (s.row && s.number ? `${s.row}${s.number}` : s.code);

  // What a seat shows on its square: its number in a row, else its code. A code longer than a
  // square holds keeps its head and its tail (where seats of a kind differ: BAL…101, BAL…102);
  // the whole code stays in the button's accessible name and tooltip.
  const LABEL_MAX = 7;
  const seatFace = (s) => (s.row && s.number ? String(s.number) : s.code);
  const shorten = (text) => {
    if (text.length <= LABEL_MAX) return text;
    const chars = [...text]; // whole characters, never half of a surrogate pair
    return chars.length <= LABEL_MAX ? text : `${chars.slice(0, 3).join('')}…${chars.slice(-3).join('')}`;
  };
  // Every square of a map is as wide as its longest label needs, so columns stay aligned.
  const labelWidth = (longest) => (longest <= 3 ? '' : longest <= 5 ? 'labels-5' : 'labels-7');

  function seatState(s) {
    if (hold && hold.seats.has(s.code) && s.status !== 'BOOKED') return 'mine';
    if (s.status === 'HELD' && s.until > Date.now()) return 'held';
    if (s.status === 'BOOKED') return 'booked';
    if (s.status === 'BLOCKED') return 'blocked';
    return selected.has(s.code) ? 'selected' : 'available';
  }

  const WORDS = { available: 'available', selected: 'selected', mine: 'held by you', held: 'held by someone else', booked: 'sold', blocked: 'not for sale' };

  function paintSeat(s) {
    const state = seatState(s);
    const el = s.el;
    el.className = `seat ${state}`;
    el.setAttribute('aria-label', `Seat ${seatName(s)}, ${money(s.price)}, ${WORDS[state]}`);
    el.setAttribute('aria-pressed', state === 'selected' ? 'true' : 'false');
    el.setAttribute('aria-disabled', state === 'held' || state === 'booked' || state === 'blocked' ? 'true' : 'false');
    el.dataset.status = state;
  }

  function renderMap(list) {
    const map = $('map');
    map.textContent = '';
    seats.clear();
    // Rows as created (a seat's row label), seats in a row by number; seats without a row wrap
    // in creation order to the width there is.
    const rows = new Map();
    const loose = [];
    for (const s of list) {
      if (s.row) {
        if (!rows.has(s.row)) rows.set(s.row, []);
        rows.get(s.row).push(s);
      } else {
        loose.push(s);
      }
    }
    const lines = [];
    for (const [label, row] of rows) lines.push([label, row.sort((a, b) => (a.number || 0) - (b.number || 0))]);
    if (loose.length) lines.push([null, loose]);
    let longest = 0;
    for (const [label, row] of lines) {
      const div = document.createElement('div');
      div.className = label === null ? 'row loose' : 'row';
      if (label !== null) {
        const tag = document.createElement('span');
        tag.className = 'row-label';
        tag.textContent = label;
        tag.setAttribute('aria-hidden', 'true');
        div.appendChild(tag);
      }
      for (const raw of row) {
        const el = document.createElement('button');
        el.type = 'button';
        el.dataset.code = raw.code;
        const s = { code: raw.code, type: raw.type, price: raw.price, row: raw.row, number: raw.number, el };
        // The face is the button's only text, set once (the state's glyph is CSS ::before
        // content); a screen reader reads the aria-label, which names the seat in full.
        const full = seatFace(s);
        const shown = shorten(full);
        el.textContent = shown;
        if (shown !== full) el.title = full;
        longest = Math.max(longest, shown.length);
        setStatus(s, raw.status, raw.secondsRemaining);
        el.addEventListener('click', () => clickSeat(s));
        seats.set(s.code, s);
        paintSeat(s);
        div.appendChild(el);
      }
      map.appendChild(div);
    }
    map.className = `map ${labelWidth(longest)}`.trim();
  }

  function setStatus(s, status, secondsRemaining) {
    s.status = status;
    s.until = status === 'HELD' ? Date.now() + (secondsRemaining || 0) * 1000 : 0;
  }

  function renderTiers(list) {
    const box = $('tiers');
    box.textContent = '';
    tiers.clear();
    for (const t of list || []) {
      const div = document.createElement('div');
      div.className = 'tier';
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = `${t.name} · ${money(t.price)}`;
      const left = document.createElement('span');
      left.className = 'left';
      const label = document.createElement('label');
      const input = document.createElement('input');
      input.type = 'number';
      input.min = '0';
      input.value = '0';
      input.id = `tier-${t.code}`;
      label.htmlFor = input.id;
      label.textContent = 'Quantity';
      input.addEventListener('input', updateSelection);
      div.append(name, left, label, input);
      box.appendChild(div);
      const tier = { code: t.code, name: t.name, price: t.price, available: t.available, el: div, left, input };
      tiers.set(t.code, tier);
      paintTier(tier);
    }
  }

  function paintTier(t) {
    t.left.textContent = t.available > 0 ? `${t.available} left` : 'sold out';
    t.el.classList.toggle('sold-out', t.available === 0);
    t.input.max = String(Math.min(t.available, MAX_PER_HOLD));
    t.input.disabled = Boolean(hold) || t.available === 0;
    t.input.setAttribute('aria-label', `Quantity of ${t.name}, ${t.available} left`);
  }

  function clickSeat(s) {
    if (hold) return say('Pay for or release your current hold first.');
    const state = seatState(s);
    if (state === 'held' || state === 'booked' || state === 'blocked') {
      return say(`Seat ${seatName(s)} is not available: it is ${WORDS[state]}.`);
    }
    if (state === 'selected') selected.delete(s.code);
    else if (selected.size >= MAX_PER_HOLD) return say(`You can pick at most ${MAX_PER_HOLD} seats at once.`);
    else selected.add(s.code);
    say('');
    paintSeat(s);
    updateSelection();
  }

  function wantedTiers() {
    const out = [];
    for (const t of tiers.values()) {
      const q = Math.floor(Number(t.input.value) || 0);
      if (q > 0) out.push({ code: t.code, quantity: q });
    }
    return out;
  }

  function updateSelection() {
    if (hold) {
      const held = [...hold.seats].map((c) => (seats.get(c) ? seatName(seats.get(c)) : c));
      const parts = [];
      if (held.length) parts.push(`Seats ${held.join(', ')}`);
      for (const u of hold.tiers) parts.push(`${u.quantity} × ${tiers.has(u.code) ? tiers.get(u.code).name : u.code}`);
      $('selection').textContent = `Held for you: ${parts.join('; ')}`;
      $('hold').disabled = true;
      return;
    }
    const names = [...selected].map((c) => seatName(seats.get(c)));
    const units = wantedTiers();
    const parts = [];
    if (names.length) parts.push(`Seats ${names.join(', ')}`);
    for (const u of units) parts.push(`${u.quantity} × ${tiers.get(u.code).name}`);
    let total = 0;
    for (const c of selected) total += seats.get(c).price;
    for (const u of units) total += u.quantity * tiers.get(u.code).price;
    $('selection').textContent = parts.length ? `${parts.join('; ')} · total ${money(total)}` : 'Nothing selected.';
    $('hold').disabled = Boolean(hold) || parts.length === 0;
  }

  async function takeHold() {
    if (authMode === 'token' && !token()) {
      $('token').focus();
      return say('Paste your token first.');
    }
    if (authMode !== 'token' && !buyerName()) {
      $('buyer').focus();
      return say('Enter your name first.');
    }
    const body = asBuyer({ seatCodes: [...selected], tiers: wantedTiers() });
    $('hold').disabled = true;
    const res = await api('POST', `/events/${eventId}/seats/reserve`, body);
    if (res.status !== 200) {
      for (const code of res.body.seats || []) selected.delete(code);
      for (const s of seats.values()) paintSeat(s);
      updateSelection();
      return say(explain(res));
    }
    hold = {
      id: res.body.holdGroupId,
      seats: new Set(res.body.seatCodes || []),
      tiers: res.body.tiers || [],
      expiresAt: Date.parse(res.body.expiresAt),
    };
    selected.clear();
    for (const s of seats.values()) paintSeat(s);
    for (const t of tiers.values()) paintTier(t);
    updateSelection();
    $('holding').hidden = false;
    $('booked').hidden = true;
    say('Held for you. Pay before the timer runs out.', true);
    tick();
    countdown = setInterval(tick, 250);
    $('card').focus();
  }

  function tick() {
    if (!hold) return;
    const left = Math.max(0, hold.expiresAt - Date.now());
    const m = Math.floor(left / 60000);
    const sec = Math.ceil((left % 60000) / 1000);
    $('countdown').textContent = `Your hold ends in ${m}:${String(sec === 60 ? 59 : sec).padStart(2, '0')}`;
    if (left <= 0) endHold('Your hold expired; the seats are free again.');
  }

  function endHold(text, ok) {
    clearInterval(countdown);
    hold = null;
    $('holding').hidden = true;
    $('countdown').textContent = '';
    for (const s of seats.values()) paintSeat(s);
    for (const t of tiers.values()) {
      t.input.value = '0';
      paintTier(t);
    }
    updateSelection();
    say(text, ok);
  }

  async function pay(e) {
    e.preventDefault();
    if (!hold) return;
    const card = $('card').value.replace(/[\s-]/g, '');
    if (card !== TEST_CARD) {
      return say('Card declined. Your seats stay held until the timer runs out; try another card.');
    }
    const id = hold.id;
    const res = await api('POST', `/events/${eventId}/seats/confirm`, asBuyer({ holdGroupId: id }));
    if (res.status !== 200) {
      if (res.status === 410) return endHold(explain(res));
      return say(explain(res));
    }
    endHold(`Booked! Booking ${res.body.bookingGroupId}, total ${money(res.body.totalPrice)}.`, true);
    const done = $('booked');
    done.hidden = false;
    done.textContent = `Your booking: ${res.body.bookingGroupId}`;
  }

  async function release() {
    if (!hold) return;
    const res = await api('POST', `/events/${eventId}/seats/release`, asBuyer({ holdGroupId: hold.id }));
    if (res.status !== 200 && res.status !== 410) return say(explain(res));
    endHold('Released; the seats are free again.', true);
  }

  // ---------------------------------------------------------------- the stream

  function applySnapshot(data) {
    renderMap(data.seats || []);
    renderTiers(data.tiers || []);
    for (const code of [...selected]) if (!seats.has(code)) selected.delete(code);
    updateSelection();
  }

  function applyUpdate(data) {
    const taken = [];
    for (const u of data.seats || []) {
      const s = seats.get(u.code);
      if (!s) continue;
      setStatus(s, u.status, u.secondsRemaining);
      if (selected.has(s.code) && u.status !== 'AVAILABLE') {
        selected.delete(s.code);
        taken.push(seatName(s));
      }
      paintSeat(s);
    }
    for (const u of data.tiers || []) {
      const t = tiers.get(u.code);
      if (!t) continue;
      t.available = u.available;
      paintTier(t);
    }
    if (taken.length) {
      updateSelection();
      say(`Sorry: ${taken.join(', ')} ${taken.length > 1 ? 'were' : 'was'} just taken by someone else.`);
    }
  }

  function connect() {
    const query = authMode === 'token' && token() ? `?access_token=${encodeURIComponent(token())}` : '';
    const source = new EventSource(`/events/${eventId}/stream${query}`);
    const live = $('live');
    source.addEventListener('snapshot', (e) => {
      live.textContent = 'Live: seats update as they change.';
      applySnapshot(JSON.parse(e.data));
    });
    source.addEventListener('update', (e) => applyUpdate(JSON.parse(e.data)));
    source.addEventListener('error', () => {
      live.textContent = 'Connection lost; reconnecting…';
    });
  }

  // Seats whose hold ran out on this clock are shown free even before the stream says so.
  setInterval(() => {
    const now = Date.now();
    for (const s of seats.values()) if (s.status === 'HELD' && s.until && s.until <= now) paintSeat(s);
  }, 1000);

  /** When sales open (before) or that they closed (after), beside the event's details. */
  function showSalesWindow(e) {
    const el = $('sales');
    const now = Date.now();
    if (e.salesStart && Date.parse(e.salesStart) > now) {
      el.textContent = `Sales open ${new Date(e.salesStart).toLocaleString()}.`;
      el.hidden = false;
      // Opened while the page is open: say so.
      setTimeout(() => { el.textContent = 'Sales are open.'; }, Math.min(Date.parse(e.salesStart) - now, 2 ** 31 - 1));
    } else if (e.salesEnd && Date.parse(e.salesEnd) <= now) {
      el.textContent = `Sales closed ${new Date(e.salesEnd).toLocaleString()}.`;
      el.hidden = false;
    }
  }

  async function eventPage() {
    const match = location.pathname.match(/^\/e\/(\d+)$/);
    if (!match) return say('No event in this address.');
    eventId = Number(match[1]);
    const res = await api('GET', `/events/${eventId}`);
    if (res.status !== 200) {
      $('live').textContent = '';
      return say(explain(res));
    }
    const e = res.body;
    document.title = `${e.name}: seats`;
    $('title').textContent = e.name;
    $('details').textContent = `${new Date(e.date).toLocaleString()} · ${e.location}`;
    showSalesWindow(e);
    $('hold').addEventListener('click', takeHold);
    $('pay').addEventListener('submit', pay);
    $('release').addEventListener('click', release);
    connect();
  }

  document.addEventListener('DOMContentLoaded', async () => {
    setupWho();
    await detectAuth();
    if (document.body.dataset.page === 'events') eventsPage();
    else eventPage();
  });
})();
