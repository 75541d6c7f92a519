-- hold.lua: take an all-or-nothing hold on some seats of one event for one buyer.
-- Checks everything before writing anything that matters, so a refused hold leaves no trace (it
-- may only trim expired entries from the buyer's record).
--
-- KEYS[1]   {e}:seats   SET of every seat code of the event (the cached inventory)
-- KEYS[2]   {e}:booked  SET of booked seat codes
-- KEYS[3]   {e}:held    ZSET seat code -> hold expiry (ms since epoch, Redis clock)
-- KEYS[4]   {e}:hold:<holdGroupId>  HASH user, exp, seats (codes joined by "\n")
-- KEYS[5]   {e}:user:<userId>  ZSET "<seats>:<holdGroupId>" -> expiry: the buyer's live holds
-- KEYS[6]   {e}:sold    HASH userId -> seats in the buyer's confirmed bookings
-- KEYS[7..] {e}:seat:<code>  one per requested seat, in ARGV order; value = holdGroupId
-- ARGV[1]   holdGroupId
-- ARGV[2]   userId
-- ARGV[3]   ttl in milliseconds
-- ARGV[4]   max seats per buyer (held + confirmed) in this event, 0 = no cap
-- ARGV[5]   max live holds per buyer in this event, 0 = no cap
-- ARGV[6..] seat codes (distinct)
--
-- Returns one of
--   {"OK", expires_at_ms, trimmed}     trimmed = seats of expired holds dropped from KEYS[3]
--   {"NOCACHE"}                          the inventory is not cached: rebuild it and retry
--   {"UNKNOWN", {codes}}                 codes that are not seats of the event
--   {"USER_LIMIT", cap, max, current}    cap "seats" or "live_holds" would be exceeded
--   {"UNAVAILABLE", {booked}, {held}}    the requested seats that are booked / held
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'NOCACHE'}
end
-- The same hold id again (a keyed retry re-executing): acknowledge the hold it already has.
if redis.call('HGET', KEYS[4], 'user') == ARGV[2] then
  return {'OK', tonumber(redis.call('HGET', KEYS[4], 'exp')), 0}
end
local first = 6
local n = #ARGV - first + 1
local unknown = {}
for i = 0, n - 1 do
  if redis.call('SISMEMBER', KEYS[1], ARGV[first + i]) == 0 then
    unknown[#unknown + 1] = ARGV[first + i]
  end
end
if #unknown > 0 then
  return {'UNKNOWN', unknown}
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max_seats = tonumber(ARGV[4])
local max_holds = tonumber(ARGV[5])
if max_seats > 0 or max_holds > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
  local live = redis.call('ZRANGE', KEYS[5], 0, -1)
  if max_holds > 0 and #live + 1 > max_holds then
    return {'USER_LIMIT', 'live_holds', max_holds, #live}
  end
  if max_seats > 0 then
    local current = tonumber(redis.call('HGET', KEYS[6], ARGV[2]) or '0')
    for _, member in ipairs(live) do
      current = current + tonumber(string.match(member, '^(%d+):'))
    end
    if current + n > max_seats then
      return {'USER_LIMIT', 'seats', max_seats, current}
    end
  end
end

local booked, held = {}, {}
for i = 0, n - 1 do
  local code = ARGV[first + i]
  if redis.call('SISMEMBER', KEYS[2], code) == 1 then
    booked[#booked + 1] = code
  elseif redis.call('EXISTS', KEYS[7 + i]) == 1 then
    held[#held + 1] = code
  end
end
if #booked + #held > 0 then
  return {'UNAVAILABLE', booked, held}
end

local ttl = tonumber(ARGV[3])
local exp = now + ttl
local codes = {}
for i = 0, n - 1 do
  redis.call('SET', KEYS[7 + i], ARGV[1], 'NX', 'PX', ttl)
  redis.call('ZADD', KEYS[3], exp, ARGV[first + i])
  codes[i + 1] = ARGV[first + i]
end
redis.call('HSET', KEYS[4], 'user', ARGV[2], 'exp', exp, 'seats', table.concat(codes, '\n'))
redis.call('PEXPIRE', KEYS[4], ttl)
if max_seats > 0 or max_holds > 0 then
  redis.call('ZADD', KEYS[5], exp, n .. ':' .. ARGV[1])
  if redis.call('PTTL', KEYS[5]) < ttl then
    redis.call('PEXPIRE', KEYS[5], ttl)
  end
end
-- Entries of holds that ended by expiry are trimmed here, so the ZSET stays the size of the
-- live holds and counts read from it never include an expired seat.
local trimmed = redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
return {'OK', exp, trimmed}
