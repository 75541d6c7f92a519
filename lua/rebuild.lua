-- rebuild.lua: load an event's inventory, booked seats, tiers and confirmed units per buyer from
-- Postgres into Redis, atomically. Runs when hold.lua answered NOCACHE (first use, Redis
-- restart, FLUSHALL, eviction, the caches dropped after an outage).
--
-- KEYS[1]  {e}:seats   (always gets the member "", which is never a seat code, so an event of
--                       tiers only has a cache marker too)
-- KEYS[2]  {e}:booked
-- KEYS[3]  {e}:gen     bumped by mark_booked.lua whenever a booked-set change finds no cache
-- KEYS[4]  {e}:sold             HASH userId -> confirmed seats and units
-- KEYS[5]  {e}:sold_by_booking  HASH bookingId -> "<units>:<userId>"
-- KEYS[6..] per tier, two keys: {e}:tier:<code> and {e}:tierholds:<code>, in ARGV order
-- ARGV[1]  the {e}:gen value read before the Postgres snapshot was taken ("0" when absent)
-- ARGV[2]  number of seat codes that follow (n)
-- ARGV[3]  number of booked seat codes after them (m)
-- ARGV[4]  number of tiers after those (t)
-- ARGV[5 .. n+4]          every seat code of the event
-- ARGV[n+5 .. n+m+4]      the booked seat codes
-- ARGV[n+m+5 .. n+m+3t+4] triples tier code, capacity, units sold
-- ARGV[n+m+3t+5 ..]       triples bookingId, userId, seats and units: the confirmed bookings
--
-- A tier's live holds (its :holds ZSET) survive a dropped cache as seat holds do; the held total
-- is recomputed from them.
--
-- Returns 1 if it wrote the cache, 0 if another caller had already rebuilt it, -1 if a booking
-- or cancel changed the booked seats after the snapshot was read (the snapshot is stale: the
-- caller takes a new one).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if (redis.call('GET', KEYS[3]) or '0') ~= ARGV[1] then
  return -1
end
redis.call('DEL', KEYS[2], KEYS[4], KEYS[5])
local n = tonumber(ARGV[2])
local m = tonumber(ARGV[3])
local t = tonumber(ARGV[4])
local batch = 4000
local function add_range(key, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + batch - 1, last)
    redis.call('SADD', key, unpack(ARGV, i, j))
    i = j + 1
  end
end
redis.call('SADD', KEYS[1], '')
add_range(KEYS[1], 5, n + 4)
add_range(KEYS[2], n + 5, n + m + 4)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
for j = 0, t - 1 do
  local tier, holds = KEYS[6 + 2 * j], KEYS[7 + 2 * j]
  local a = n + m + 5 + 3 * j
  redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
  local held = 0
  for _, member in ipairs(redis.call('ZRANGE', holds, 0, -1)) do
    held = held + tonumber(string.match(member, '^(%d+):'))
  end
  redis.call('DEL', tier)
  redis.call('HSET', tier, 'cap', ARGV[a + 1], 'sold', ARGV[a + 2], 'held', held)
end
for i = n + m + 3 * t + 5, #ARGV, 3 do
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 2] .. ':' .. ARGV[i + 1])
  redis.call('HINCRBY', KEYS[4], ARGV[i + 1], tonumber(ARGV[i + 2]))
end
return 1
