-- (gcra.lua, caps.lua and publish.lua are prepended to this script; see scripts.rs.)
-- hold_plain.lua: hold.lua's path for a hold of seats only (no tier units) by a caller without an
-- admission, on an event without a sales policy and without rows (its layout has none): the same
-- checks, writes and replies as hold.lua for such a hold, in fewer Redis calls (one HMGET of
-- the layout's rows count and policy flag, one MGET of the seats' holders, one SMISMEMBER for
-- all the seats; no policy, tier, channel or row bookkeeping) and without hold.lua's libraries.
-- Seats all held by other holds are refused after the MGET, two calls in all. An event that
-- has a policy or rows is answered {"FULL"}, before anything is counted or written: the caller
-- then runs hold.lua.
--
-- One key per event: the event's other keys are named from KEYS[1]'s prefix here (they share
-- its hash tag, so its Redis Cluster slot), instead of being sent as 11 + n keys.
-- KEYS[1]   {e}:seats
-- KEYS[2]   the caller's rate key (only when ARGV[6] > 0)
-- ARGV[1]   holdGroupId  ARGV[2] userId  ARGV[3] TTL ms  ARGV[4] max seats per buyer (0 = none)
-- ARGV[5]   max live holds per buyer (0 = none)  ARGV[6] rate interval us (0 = not counted)
-- ARGV[7]   rate burst  ARGV[8] "1" to record the hold in {e}:hist, "0" not to
-- ARGV[9 .. 8+n]  seat codes (distinct, n >= 1)
-- (Every cached event has a layout hash: n is its number of rows, policy its policy flag.)
local base = string.sub(KEYS[1], 1, -6)
-- The rows count and the policy flag of the layout (see rebuild.lua and set_policy.lua) in one
-- call; a cache without the flag (dropped, cold, or from before the flag) has the policy key
-- looked at instead.
local layout = redis.call('HMGET', base .. 'layout', 'n', 'policy')
if tonumber(layout[1] or '0') > 0 or layout[2] == '1'
    or (not layout[2] and redis.call('EXISTS', base .. 'policy') == 1) then
  return {'FULL'}
end
local codes = {unpack(ARGV, 9)}
local n = #codes
local seat_keys = {}
for i = 1, n do
  seat_keys[i] = base .. 'seat:' .. codes[i]
end
local holders = redis.call('MGET', unpack(seat_keys))
-- Every seat held by another hold (the hot seat's crowd), on a cached event whose flag says it
-- has no policy: refused before anything else is read. (A cache dropped, or without the flag,
-- takes the checks below, which rebuild it, so the answer follows the policy as it is now.)
-- A seat with a live hold is known (a hold is taken only of a known seat) and not booked (a
-- sale deletes the seat key with the hold, a block is refused on a held seat), so the checks
-- below would find the same. (Were one booked too, after a failed settle, the client's answer
-- would still be the same 409 naming the seats; only the refusal metric's reason differs.)
-- The rate is counted as below.
local others, i = layout[2] == '0', 1
while others and i <= n do
  others = holders[i] and holders[i] ~= ARGV[1]
  i = i + 1
end
if others then
  local rate_refusal, remaining, reset = hold_rate(KEYS[2], tonumber(ARGV[6]) > 0 and now_us() or nil)
  if rate_refusal then
    return rate_refusal
  end
  return {'UNAVAILABLE', remaining, reset, {}, codes, {}}
end
local known = redis.call('SMISMEMBER', KEYS[1], unpack(codes))
local unknown = {}
for i = 1, n do
  if known[i] == 0 then
    unknown[#unknown + 1] = codes[i]
  end
end
if #unknown > 0 and redis.call('EXISTS', KEYS[1]) == 0 then
  return {'NOCACHE'}
end
-- The clock is read once, when first needed: at once to count the rate, else for the writes.
local clock = tonumber(ARGV[6]) > 0 and now_us() or nil
local rate_refusal, remaining, reset = hold_rate(KEYS[2], clock)
if rate_refusal then
  return rate_refusal
end
if #unknown > 0 then
  return {'UNKNOWN', remaining, reset, unknown}
end
-- The same hold id again (a keyed retry re-executing): its seats name it; acknowledge the hold
-- it already has (its seats are known: they were checked above).
for i = 1, n do
  if holders[i] == ARGV[1] and redis.call('HGET', base .. 'hold:' .. ARGV[1], 'user') == ARGV[2] then
    return {'OK', remaining, reset, tonumber(redis.call('HGET', base .. 'hold:' .. ARGV[1], 'exp')), 0}
  end
end
local sold = redis.call('SMISMEMBER', base .. 'booked', unpack(codes))
local booked, held = {}, {}
for i = 1, n do
  if sold[i] == 1 then
    booked[#booked + 1] = codes[i]
  elseif holders[i] then
    held[#held + 1] = codes[i]
  end
end
if #booked + #held > 0 then
  -- Which of the "booked" seats are blocked ({e}:blocked beside {e}:booked).
  local blocked = {}
  if #booked > 0 then
    local flags = redis.call('SMISMEMBER', base .. 'blocked', unpack(booked))
    for i, code in ipairs(booked) do
      if flags[i] == 1 then
        blocked[#blocked + 1] = code
      end
    end
  end
  return {'UNAVAILABLE', remaining, reset, booked, held, {}, blocked, {}}
end
clock = clock or now_us()
local now = math.floor(clock / 1000)
local max_seats, max_holds = tonumber(ARGV[4]), tonumber(ARGV[5])
-- The buyer's keys are named only when a cap is on (caps_check reads nothing otherwise).
local capped = max_seats > 0 or max_holds > 0
local user_key = capped and base .. 'user:' .. ARGV[2] or ''
local refusal, caps = caps_check(user_key, capped and base .. 'sold' or '', ARGV[2], n, max_seats,
  max_holds, now)
if refusal then
  return {'USER_LIMIT', remaining, reset, refusal[1], refusal[2], refusal[3]}
end
local exp = now + tonumber(ARGV[3])
-- The integers sent to Redis go as strings, each formatted once: Redis formats a Lua number
-- argument with "%.17g" on every call (~0.3 us each; `bench/README.md`, "Kept: numbers as
-- strings"). ARGV[3] is the TTL as the service sent it.
local exp_s, now_s = string.format('%d', exp), string.format('%d', now)
local scored = {}
for i = 1, n do
  redis.call('SET', seat_keys[i], ARGV[1], 'NX', 'PX', ARGV[3])
  scored[2 * i - 1] = exp_s
  scored[2 * i] = codes[i]
end
local held_key = base .. 'held'
redis.call('ZADD', held_key, unpack(scored))
local joined = table.concat(codes, '\n')
local hold_key = base .. 'hold:' .. ARGV[1]
redis.call('HSET', hold_key, 'user', ARGV[2], 'exp', exp_s, 'seats', joined, 'tiers', '', 'taken', now_s)
redis.call('PEXPIRE', hold_key, ARGV[3])
caps_record(caps, user_key, ARGV[1], n, exp, now)
if ARGV[8] == '1' then
  redis.call('XADD', base .. 'hist', '*', 'k', 'H', 'h', ARGV[1], 'a', now_s, 'u', ARGV[2], 'x', exp_s,
    's', joined, 't', '')
end
-- Entries of holds that ended by expiry are trimmed here (see hold.lua).
local trimmed = redis.call('ZREMRANGEBYSCORE', held_key, '-inf', now_s)
publish_change(base .. 'watched', function()
  return {s = codes, t = {}, at = now, x = exp}
end)
return {'OK', remaining, reset, exp, trimmed}
