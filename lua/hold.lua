-- (gcra.lua, rows.lua, caps.lua, policy.lua, pools.lua, pools_take.lua and publish.lua are
-- prepended to this script; see scripts.rs.)
-- hold.lua (after gcra.lua): take an all-or-nothing hold on some seats of one event for one
-- buyer, counting the request against the buyer's rate limit first when asked to (one round trip
-- for both; the rate key lives in another hash slot, so only on a standalone Redis). Checks
-- everything before writing anything, so a refused hold leaves no trace (but its rate count).
--
-- KEYS[1]   {e}:seats   SET of every seat code of the event (the cached inventory)
-- KEYS[2]   {e}:booked  SET of booked seat codes
-- KEYS[3]   {e}:held    ZSET seat code -> hold expiry (ms since epoch, Redis clock)
-- KEYS[4]   {e}:hold:<holdGroupId>  HASH user, exp, seats (codes joined by "\n"), tiers
--           ("<code> <quantity>" lines joined by "\n"), and pools when some units came from
--           channels' allocations ("<code> <part>" lines, see pools.lua)
-- KEYS[5]   {e}:user:<userId>  ZSET "<units>:<holdGroupId>" -> expiry: the buyer's live holds
-- KEYS[6]   {e}:sold    HASH userId -> seats and units in the buyer's confirmed bookings
-- KEYS[7]   rate:{<scope>:<identity>}  the caller's rate key (unused when ARGV[6] is 0)
-- KEYS[8 .. 7+n]  {e}:seat:<code>  one per requested seat, in ARGV order; value = holdGroupId
-- then per tier line, in ARGV order, two keys:
--           {e}:tier:<code>        HASH cap, sold, held (units held by live holds), and the
--                                  channel fields of pools.lua
--           {e}:tierholds:<code>  ZSET "<quantity>:<holdGroupId>" -> hold expiry ms
-- KEYS[last-2] {e}:rowends and KEYS[last-1] {e}:layout: the seat layout (see rows.lua,
--           prepended): held seats are marked
-- KEYS[last] {e}:watched  set while some instance streams the event's seat map: a hold taken
--           then is published on {e}:changes (see src/store/redis/changes.rs)
-- and after all of them (taken off first, so the indexes above hold): {e}:hist, the event's
-- history stream (see src/store/redis/history.rs)
-- ARGV[1]   holdGroupId
-- ARGV[2]   userId
-- ARGV[3]   ttl in milliseconds
-- ARGV[4]   max seats (and tier units) per buyer (held + confirmed) in this event, 0 = no cap
-- ARGV[5]   max live holds per buyer in this event, 0 = no cap
-- ARGV[6]   rate-limit emission interval in microseconds, 0 = no rate check here
-- ARGV[7]   rate-limit burst
-- ARGV[8]   n, the number of seat codes
-- ARGV[9 .. 8+n]  seat codes (distinct)
-- then pairs tier code, quantity (distinct codes, quantity >= 1)
-- then the channel parts a copy of a Postgres hold must take (see GIVEN below)
-- and last (taken off first): "1" to record the hold in {e}:hist, "0" not to (a copy of a
-- Postgres hold, recorded where it was taken)
-- and after all of these (taken off before them): the sales policy's keys and arguments, see
-- policy.lua (prepended)
--
-- Every reply after the cache check carries the rate verdict right after its tag:
-- {tag, remaining, reset_us, ...}; {"RATE_LIMITED", 0, reset_us, retry_us} is a refusal (nothing
-- else was looked at). Otherwise one of
--   {"OK", expires_at_ms, trimmed}     trimmed = seats of expired holds dropped from KEYS[3]
--   {"NOCACHE"}                          the inventory is not cached: rebuild it and retry
--   {"UNKNOWN", {codes}}                 codes that are not seats of the event
--   {"UNKNOWN_TIERS", {codes}}           codes that are not tiers of the event
--   {"UNAVAILABLE", {booked}, {held}, {code, requested, available, ...}, {blocked}}
--                                        the requested seats that are booked (blocked seats are
--                                        in {e}:booked too) / held, the tiers with fewer units
--                                        left than requested, and the blocked seats among the
--                                        booked ones ({e}:blocked, beside {e}:booked)
--   {"USER_LIMIT", cap, max, current}    cap "seats", "live_holds" or
--                                        "max_live_holds_per_admission" would be exceeded
--                                        (checked only when every seat and unit is free)
--   {"ADMISSION"}                        the admission names another event
--   {"NOT_OPEN", opens_ms} / {"CLOSED", closed_ms}  outside the sales window of a seat asked
--   UNAVAILABLE carries a fifth list: the seats of a channel the caller is not in
--
-- A tier's units left = cap - sold - held. `held` is a running total: each hold of the tier first
-- trims its expired entries (a range read by score: O(log n + expired), never a scan of the live
-- holds; at most 1000 of them per hold, see trim below) and subtracts their quantities.
local P = policy_args()
-- The channel functions for tier units (pools.lua, pools_take.lua), built when first needed.
local PC
local HIST = table.remove(KEYS)
local RECORD = table.remove(ARGV)
-- Before RECORD (taken off after it): the channel parts a copy of a Postgres hold must take,
-- "<code> <part>" lines ("" for a new hold: chosen by pools_take.lua).
local GIVEN = table.remove(ARGV)
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'NOCACHE'}
end
-- One clock reading for the whole script: microseconds for the rate limit, ms for the holds.
local clock = now_us()
local now = math.floor(clock / 1000)
-- The rate limit, counted once per request (a NOCACHE retry has not been counted yet).
local rate_refusal, remaining, reset = hold_rate(KEYS[7], clock)
if rate_refusal then
  return rate_refusal
end
-- The same hold id again (a keyed retry re-executing): acknowledge the hold it already has.
if redis.call('HGET', KEYS[4], 'user') == ARGV[2] then
  return {'OK', remaining, reset, tonumber(redis.call('HGET', KEYS[4], 'exp')), 0}
end
-- The event's sales policy (nil for most events: one read of a missing key).
local F = policy_read(P)
if not policy_admitted(P, F) then
  return {'ADMISSION', remaining, reset}
end
local n = tonumber(ARGV[8])
local first = 9
local unknown = {}
for i = 0, n - 1 do
  if redis.call('SISMEMBER', KEYS[1], ARGV[first + i]) == 0 then
    unknown[#unknown + 1] = ARGV[first + i]
  end
end
if #unknown > 0 then
  return {'UNKNOWN', remaining, reset, unknown}
end
-- Tier lines: ARGV[tfirst + 2j] code, ARGV[tfirst + 2j + 1] quantity; KEYS[kfirst + 2j] its
-- HASH, KEYS[kfirst + 2j + 1] its holds.
local tfirst = first + n
local kfirst = 8 + n
local lines = (#ARGV - tfirst + 1) / 2
-- One read per tier: its counts, or nothing for a code that is not a tier of the event.
local counts = {}
for j = 0, lines - 1 do
  counts[j] = redis.call('HMGET', KEYS[kfirst + 2 * j], 'cap', 'sold', 'held', 'x')
  if not counts[j][1] then
    unknown[#unknown + 1] = ARGV[tfirst + 2 * j]
  end
end
if #unknown > 0 then
  return {'UNKNOWN_TIERS', remaining, reset, unknown}
end

local foreign = {}
if F then
  local verdict
  local tier_codes = {}
  for j = 0, lines - 1 do
    tier_codes[j + 1] = ARGV[tfirst + 2 * j]
  end
  -- Tier units are sold in the event's window, unless the caller may take units of every tier
  -- asked from its own channels' allocations now (then only those count: pools_plan).
  local tiers_in_event_window = false
  for _, code in ipairs(tier_codes) do
    if not F['ta:' .. code] then
      tiers_in_event_window = true
      break
    end
    PC = PC or pools_choice(pools_lib())
    if not PC.window_own(P, F, {code}, now) then
      tiers_in_event_window = true
      break
    end
  end
  verdict, foreign = policy_check(P, F, {unpack(ARGV, first, first + n - 1)},
    tiers_in_event_window, now)
  if verdict then
    return {verdict[1], remaining, reset, verdict[2]}
  end
end
local booked, held = {}, {}
for i = 0, n - 1 do
  local code = ARGV[first + i]
  if redis.call('SISMEMBER', KEYS[2], code) == 1 then
    booked[#booked + 1] = code
  elseif redis.call('EXISTS', KEYS[8 + i]) == 1 then
    held[#held + 1] = code
  end
end
-- Each requested tier: trim the holds that expired (their units come back), then count.
-- Trims up to 1000 of a tier's expired holds, oldest first, and takes their units off its
-- running total; returns the units that came back. One batch is enough for an exact answer:
-- every entry holds at least one unit, so a full batch frees at least 1000 units, more than a
-- hold may ask for (holds.max_seats_per_hold <= 1000), and what remains is trimmed by later
-- holds (or a read). Each entry is walked once, by whichever script trims it.
-- A tier with channel parts (`split`, its x field) gives each ended hold's part back too.
local function trim(tier, holds, split)
  local gone = redis.call('ZRANGEBYSCORE', holds, '-inf', now, 'LIMIT', 0, 1000)
  if #gone == 0 then
    return 0
  end
  local back = 0
  for _, member in ipairs(gone) do
    back = back + tonumber(string.match(member, '^(%d+):'))
    if split then
      PC = PC or pools_choice(pools_lib())
      PC.lib.unhold(tier, string.match(member, '^%d+:(.*)$'))
    end
  end
  redis.call('ZREMRANGEBYRANK', holds, 0, #gone - 1)
  redis.call('HINCRBY', tier, 'held', -back)
  return back
end
local short = {}
local units = n
local plans = {}
for j = 0, lines - 1 do
  local tier, holds = KEYS[kfirst + 2 * j], KEYS[kfirst + 2 * j + 1]
  local c = counts[j]
  local free = tonumber(c[1]) - tonumber(c[2] or '0') - tonumber(c[3] or '0')
  free = free + trim(tier, holds, c[4])
  local want = tonumber(ARGV[tfirst + 2 * j + 1])
  -- Only the units this caller may take: channels' allocations are kept for their callers.
  local alloc = F and F['ta:' .. ARGV[tfirst + 2 * j]]
  local left = math.max(free, 0)
  local given = GIVEN ~= '' and string.match('\n' .. GIVEN .. '\n',
    '\n' .. string.gsub(ARGV[tfirst + 2 * j], '%p', '%%%0') .. ' ([^\n]+)\n')
  if given then
    -- A copy of a Postgres hold: the allocations it was taken from, then open units.
    PC = PC or pools_choice(pools_lib())
    plans[j] = {}
    PC.lib.each(given, function(ch, q)
      plans[j][#plans[j] + 1] = {ch, q}
    end)
    plans[j][#plans[j] + 1] = {false, math.huge}
  elseif alloc then
    PC = PC or pools_choice(pools_lib())
    left, plans[j] = PC.plan(tier, free, alloc, P, F, now)
  end
  units = units + want
  if want > left then
    short[#short + 1] = ARGV[tfirst + 2 * j]
    short[#short + 1] = want
    short[#short + 1] = left
  end
end
if #booked + #held + #short + #foreign > 0 then
  -- Which of the "booked" seats are blocked ({e}:blocked beside {e}:booked): only on this path.
  local blocked = {}
  if #booked > 0 then
    local blocked_key = string.sub(KEYS[2], 1, -7) .. 'blocked'
    for _, code in ipairs(booked) do
      if redis.call('SISMEMBER', blocked_key, code) == 1 then
        blocked[#blocked + 1] = code
      end
    end
  end
  return {'UNAVAILABLE', remaining, reset, booked, held, short, blocked, foreign}
end

-- The buyer's caps, checked only for a hold that could otherwise be taken (so a refusal because
-- of other buyers costs nothing extra).
local refusal, caps = caps_check(KEYS[5], KEYS[6], ARGV[2], units, tonumber(ARGV[4]),
  tonumber(ARGV[5]), now)
refusal = refusal or policy_admission_check(P, now)
if refusal then
  return {'USER_LIMIT', remaining, reset, refusal[1], refusal[2], refusal[3]}
end

local exp = now + tonumber(ARGV[3])
-- Integers sent to Redis as strings, formatted once (see hold_plain.lua); ARGV[3] is the TTL.
local exp_s, now_s = string.format('%d', exp), string.format('%d', now)
local codes = {}
for i = 0, n - 1 do
  redis.call('SET', KEYS[8 + i], ARGV[1], 'NX', 'PX', ARGV[3])
  redis.call('ZADD', KEYS[3], exp_s, ARGV[first + i])
  rows_mark(KEYS[#KEYS - 1], ARGV[first + i], 'hold', exp, KEYS[#KEYS - 2])
  codes[i + 1] = ARGV[first + i]
end
local tiers, pools = {}, {}
for j = 0, lines - 1 do
  local want = ARGV[tfirst + 2 * j + 1]
  redis.call('ZADD', KEYS[kfirst + 2 * j + 1], exp_s, want .. ':' .. ARGV[1])
  redis.call('HINCRBY', KEYS[kfirst + 2 * j], 'held', want)
  tiers[j + 1] = ARGV[tfirst + 2 * j] .. ' ' .. want
  local part = plans[j] and PC.take(KEYS[kfirst + 2 * j], ARGV[1], tonumber(want), plans[j])
  if part then
    pools[#pools + 1] = ARGV[tfirst + 2 * j] .. ' ' .. part
  end
end
redis.call('HSET', KEYS[4], 'user', ARGV[2], 'exp', exp_s, 'seats', table.concat(codes, '\n'),
  'tiers', table.concat(tiers, '\n'), 'taken', now_s)
if #pools > 0 then
  redis.call('HSET', KEYS[4], 'pools', table.concat(pools, '\n'))
end
redis.call('PEXPIRE', KEYS[4], ARGV[3])
caps_record(caps, KEYS[5], ARGV[1], units, exp, now)
policy_admission_record(P, KEYS[4], ARGV[1], exp, now)
if RECORD == '1' then
  redis.call('XADD', HIST, '*', 'k', 'H', 'h', ARGV[1], 'a', now_s, 'u', ARGV[2], 'x', exp_s,
    's', table.concat(codes, '\n'), 't', table.concat(tiers, '\n'))
end
-- Entries of holds that ended by expiry are trimmed here, so the ZSET stays the size of the
-- live holds and counts read from it never include an expired seat.
-- (A hold of tier units only leaves that to the next seat hold.)
local trimmed = 0
if n > 0 then
  trimmed = redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_s)
end
publish_change(KEYS[#KEYS], function()
  local tier_codes = {}
  for j = 0, lines - 1 do
    tier_codes[j + 1] = ARGV[tfirst + 2 * j]
  end
  return {s = codes, t = tier_codes, at = now, x = exp}
end)
return {'OK', remaining, reset, exp, trimmed}
