-- mark_booked.lua: add or remove seats from an event's cached booked set.
-- Used after a cancel (remove) and after the Postgres guard refused a confirm (add).
--
-- KEYS[1]  {e}:seats
-- KEYS[2]  {e}:booked
-- ARGV[1]  "add" or "remove"
-- ARGV[2..] seat codes
--
-- Returns the number of codes changed. Does nothing when the inventory is not cached: the next
-- rebuild reads Postgres.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local changed = 0
for i = 2, #ARGV do
  if ARGV[1] == 'add' then
    changed = changed + redis.call('SADD', KEYS[2], ARGV[i])
  else
    changed = changed + redis.call('SREM', KEYS[2], ARGV[i])
  end
end
return changed
