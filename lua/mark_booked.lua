-- mark_booked.lua: add or remove seats from an event's cached booked set.
-- Used after a cancel (remove: the booking's seats come free, its tier units go back and its
-- buyer's quota back) and after the Postgres guard refused a confirm (add: seats Redis had lost
-- track of).
--
-- KEYS[1]  {e}:seats
-- KEYS[2]  {e}:booked
-- KEYS[3]  {e}:gen
-- KEYS[4]  {e}:sold             HASH userId -> confirmed seats and units
-- KEYS[5]  {e}:sold_by_booking  HASH bookingId -> "<units>:<userId>"
-- KEYS[6..] {e}:tier:<code> for every tier line, in ARGV order (a cancel gives the channel part
--           of its units back too: b:<bookingId> there, see pools.lua, prepended)
-- KEYS[last-1] {e}:layout: the seat layout (see rows.lua, prepended)
-- KEYS[last] {e}:watched: when set, what changed is published on {e}:changes
-- and after it (taken off first): {e}:hist, the history stream: a cancel ("remove" with a
--           bookingId) is noted there as C, so the history puts its rows before later holds
-- ARGV[1]  "add" or "remove"
-- ARGV[2]  bookingId of a cancel ("" for "add")
-- ARGV[3]  n, the number of seat codes
-- ARGV[4 .. 3+n] seat codes
-- then pairs tier code, quantity: the cancelled booking's tier lines ("remove" only)
--
-- Returns the number of codes changed. When the inventory is not cached it changes nothing but
-- bumps {e}:gen, so a rebuild whose Postgres snapshot predates this change refuses to write it.
local HIST = table.remove(KEYS)
-- Last of ARGV (taken off first): "1" to record the change in HIST, "0" not to
-- (history.enabled = false).
local RECORD = table.remove(ARGV) == '1'
if RECORD and ARGV[1] == 'remove' and ARGV[2] ~= '' then
  redis.call('XADD', HIST, '*', 'k', 'C', 'h', ARGV[2])
end
local n = tonumber(ARGV[3])
local tfirst = 4 + n
publish_change(KEYS[#KEYS], function()
  local seats, tiers = {}, {}
  for i = 4, 3 + n do
    seats[#seats + 1] = ARGV[i]
  end
  for j = 0, (#ARGV - tfirst + 1) / 2 - 1 do
    tiers[j + 1] = ARGV[tfirst + 2 * j]
  end
  return {s = seats, t = tiers, at = clock_ms()}
end)
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('INCR', KEYS[3])
  return 0
end
local changed = 0
for i = 4, 3 + n do
  if ARGV[1] == 'add' then
    changed = changed + redis.call('SADD', KEYS[2], ARGV[i])
    rows_mark(KEYS[#KEYS - 1], ARGV[i], 'book')
  else
    changed = changed + redis.call('SREM', KEYS[2], ARGV[i])
    rows_mark(KEYS[#KEYS - 1], ARGV[i], 'unbook')
  end
end
if ARGV[1] == 'remove' and ARGV[2] ~= '' then
  -- Only a booking the cache counts is taken out of its counts (a booking the cache never saw
  -- was never in them).
  local sold = redis.call('HGET', KEYS[5], ARGV[2])
  if sold then
    local units, user = string.match(sold, '^(%d+):(.*)$')
    redis.call('HDEL', KEYS[5], ARGV[2])
    if redis.call('HINCRBY', KEYS[4], user, -tonumber(units)) <= 0 then
      redis.call('HDEL', KEYS[4], user)
    end
    for j = 0, (#ARGV - tfirst + 1) / 2 - 1 do
      if redis.call('EXISTS', KEYS[6 + j]) == 1 then
        redis.call('HINCRBY', KEYS[6 + j], 'sold', -tonumber(ARGV[tfirst + 2 * j + 1]))
        pools_lib().unsell(KEYS[6 + j], ARGV[2])
        changed = changed + 1
      end
    end
  end
end
return changed
