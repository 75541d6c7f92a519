-- mark_booked.lua: add or remove seats from an event's cached booked set.
-- Used after a cancel (remove: the booking's seats come free and its buyer's quota back) and
-- after the Postgres guard refused a confirm (add: seats Redis had lost track of).
--
-- KEYS[1]  {e}:seats
-- KEYS[2]  {e}:booked
-- KEYS[3]  {e}:gen
-- KEYS[4]  {e}:sold             HASH userId -> confirmed seats
-- KEYS[5]  {e}:sold_by_booking  HASH bookingId -> "<seats>:<userId>"
-- ARGV[1]  "add" or "remove"
-- ARGV[2]  bookingId of a cancel ("" for "add")
-- ARGV[3..] seat codes
--
-- Returns the number of codes changed. When the inventory is not cached it changes nothing but
-- bumps {e}:gen, so a rebuild whose Postgres snapshot predates this change refuses to write it.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('INCR', KEYS[3])
  return 0
end
local changed = 0
for i = 3, #ARGV do
  if ARGV[1] == 'add' then
    changed = changed + redis.call('SADD', KEYS[2], ARGV[i])
  else
    changed = changed + redis.call('SREM', KEYS[2], ARGV[i])
  end
end
if ARGV[1] == 'remove' and ARGV[2] ~= '' then
  local sold = redis.call('HGET', KEYS[5], ARGV[2])
  if sold then
    local n, user = string.match(sold, '^(%d+):(.*)$')
    redis.call('HDEL', KEYS[5], ARGV[2])
    if redis.call('HINCRBY', KEYS[4], user, -tonumber(n)) <= 0 then
      redis.call('HDEL', KEYS[4], user)
    end
  end
end
return changed
