-- hold.lua: take an all-or-nothing hold on some seats of one event.
-- Checks every seat before writing anything, so a refused hold leaves no trace.
--
-- KEYS[1]   {e}:seats   SET of every seat code of the event (the cached inventory)
-- KEYS[2]   {e}:booked  SET of booked seat codes
-- KEYS[3]   {e}:held    ZSET seat code -> hold expiry (ms since epoch, Redis clock)
-- KEYS[4]   {e}:hold:<holdGroupId>  HASH user, exp, seats (codes joined by "\n")
-- KEYS[5..] {e}:seat:<code>  one per requested seat, in ARGV order; value = holdGroupId
-- ARGV[1]   holdGroupId
-- ARGV[2]   userId
-- ARGV[3]   ttl in milliseconds
-- ARGV[4..] seat codes (distinct)
--
-- Returns one of
--   {"OK", expires_at_ms, trimmed}     trimmed = seats of expired holds dropped from KEYS[3]
--   {"NOCACHE"}                          the inventory is not cached: rebuild it and retry
--   {"UNKNOWN", {codes}}                 codes that are not seats of the event
--   {"UNAVAILABLE", {booked}, {held}}    the requested seats that are booked / held
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'NOCACHE'}
end
-- The same hold id again (a keyed retry re-executing): acknowledge the hold it already has.
if redis.call('HGET', KEYS[4], 'user') == ARGV[2] then
  return {'OK', tonumber(redis.call('HGET', KEYS[4], 'exp')), 0}
end
local n = #ARGV - 3
local unknown = {}
for i = 1, n do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i + 3]) == 0 then
    unknown[#unknown + 1] = ARGV[i + 3]
  end
end
if #unknown > 0 then
  return {'UNKNOWN', unknown}
end
local booked, held = {}, {}
for i = 1, n do
  local code = ARGV[i + 3]
  if redis.call('SISMEMBER', KEYS[2], code) == 1 then
    booked[#booked + 1] = code
  elseif redis.call('EXISTS', KEYS[i + 4]) == 1 then
    held[#held + 1] = code
  end
end
if #booked + #held > 0 then
  return {'UNAVAILABLE', booked, held}
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local exp = now + ttl
local codes = {}
for i = 1, n do
  redis.call('SET', KEYS[i + 4], ARGV[1], 'NX', 'PX', ttl)
  redis.call('ZADD', KEYS[3], exp, ARGV[i + 3])
  codes[i] = ARGV[i + 3]
end
redis.call('HSET', KEYS[4], 'user', ARGV[2], 'exp', exp, 'seats', table.concat(codes, '\n'))
redis.call('PEXPIRE', KEYS[4], ttl)
-- Entries of holds that ended by expiry are trimmed here, so the ZSET stays the size of the
-- live holds and counts read from it never include an expired seat.
local trimmed = redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
return {'OK', exp, trimmed}
