-- mark_booked.lua: add or remove seats from an event's cached booked set.
-- Used after a cancel (remove) and after the Postgres guard refused a confirm (add).
--
-- KEYS[1]  {e}:seats
-- KEYS[2]  {e}:booked
-- KEYS[3]  {e}:gen
-- ARGV[1]  "add" or "remove"
-- ARGV[2..] seat codes
--
-- Returns the number of codes changed. When the inventory is not cached it changes nothing but
-- bumps {e}:gen, so a rebuild whose Postgres snapshot predates this change refuses to write it.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('INCR', KEYS[3])
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
