-- rebuild.lua: load an event's inventory and booked seats from Postgres into Redis, atomically.
-- Runs when hold.lua answered NOCACHE (first use, Redis restart, FLUSHALL, eviction).
--
-- KEYS[1]  {e}:seats
-- KEYS[2]  {e}:booked
-- KEYS[3]  {e}:gen     bumped by mark_booked.lua whenever a booked-set change finds no cache
-- ARGV[1]  the {e}:gen value read before the Postgres snapshot was taken ("0" when absent)
-- ARGV[2]  number of seat codes that follow (n)
-- ARGV[3 .. n+2]  every seat code of the event
-- ARGV[n+3 ..]    the booked seat codes
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
redis.call('DEL', KEYS[2])
local n = tonumber(ARGV[2])
local batch = 4000
local function add_range(key, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + batch - 1, last)
    redis.call('SADD', key, unpack(ARGV, i, j))
    i = j + 1
  end
end
add_range(KEYS[1], 3, n + 2)
add_range(KEYS[2], n + 3, #ARGV)
return 1
