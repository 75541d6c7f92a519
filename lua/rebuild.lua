-- rebuild.lua: load an event's inventory, booked seats and confirmed seats per buyer from
-- Postgres into Redis, atomically. Runs when hold.lua answered NOCACHE (first use, Redis
-- restart, FLUSHALL, eviction).
--
-- KEYS[1]  {e}:seats
-- KEYS[2]  {e}:booked
-- KEYS[3]  {e}:gen     bumped by mark_booked.lua whenever a booked-set change finds no cache
-- KEYS[4]  {e}:sold             HASH userId -> confirmed seats
-- KEYS[5]  {e}:sold_by_booking  HASH bookingId -> "<seats>:<userId>"
-- ARGV[1]  the {e}:gen value read before the Postgres snapshot was taken ("0" when absent)
-- ARGV[2]  number of seat codes that follow (n)
-- ARGV[3]  number of booked seat codes after them (m)
-- ARGV[4 .. n+3]        every seat code of the event
-- ARGV[n+4 .. n+m+3]    the booked seat codes
-- ARGV[n+m+4 ..]        triples bookingId, userId, seats: the confirmed bookings
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
local batch = 4000
local function add_range(key, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + batch - 1, last)
    redis.call('SADD', key, unpack(ARGV, i, j))
    i = j + 1
  end
end
add_range(KEYS[1], 4, n + 3)
add_range(KEYS[2], n + 4, n + m + 3)
for i = n + m + 4, #ARGV, 3 do
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 2] .. ':' .. ARGV[i + 1])
  redis.call('HINCRBY', KEYS[4], ARGV[i + 1], tonumber(ARGV[i + 2]))
end
return 1
