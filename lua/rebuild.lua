-- rebuild.lua: load an event's inventory and booked seats from Postgres into Redis, atomically.
-- Runs when hold.lua answered NOCACHE (first use, Redis restart, FLUSHALL, eviction).
--
-- KEYS[1]  {e}:seats
-- KEYS[2]  {e}:booked
-- ARGV[1]  number of seat codes that follow (n)
-- ARGV[2 .. n+1]  every seat code of the event
-- ARGV[n+2 ..]    the booked seat codes
--
-- Returns 1 if it wrote the cache, 0 if another caller had already rebuilt it.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('DEL', KEYS[2])
local n = tonumber(ARGV[1])
local batch = 4000
local function add_range(key, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + batch - 1, last)
    redis.call('SADD', key, unpack(ARGV, i, j))
    i = j + 1
  end
end
add_range(KEYS[1], 2, n + 1)
add_range(KEYS[2], n + 2, #ARGV)
return 1
