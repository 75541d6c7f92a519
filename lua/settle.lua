-- settle.lua: end a hold, either because it was released or because its booking committed.
-- Only seat keys that still point at this hold are touched, so a stale call never frees a seat
-- that someone else holds now.
--
-- KEYS[1]   {e}:hold:<holdGroupId>
-- KEYS[2]   {e}:seats
-- KEYS[3]   {e}:booked
-- KEYS[4]   {e}:held
-- KEYS[5]   {e}:user:<userId>   the buyer's live holds
-- KEYS[6]   {e}:sold            HASH userId -> confirmed seats
-- KEYS[7]   {e}:sold_by_booking HASH bookingId -> "<seats>:<userId>" (makes "book" count once)
-- KEYS[8]   {e}:gen             bumped by "book" when the inventory is not cached, so a rebuild
--                               from a Postgres snapshot older than this booking is refused
-- KEYS[9..] {e}:seat:<code> for every seat of the hold, in ARGV order
-- ARGV[1]   holdGroupId
-- ARGV[2]   mode:
--           "release"  the owner gives it up: the hold must be alive, owned by ARGV[3] and not
--                      pinned by a confirm in progress
--           "book"     its booking committed in Postgres: unconditional, the seats become booked
--           "drop"     nothing was sold by it: unconditional, nothing becomes booked
-- ARGV[3]   userId (the hold's buyer)
-- ARGV[4..] seat codes of the hold
--
-- Returns {"OK"} | {"GONE"} | {"NOT_OWNER"} | {"PINNED"} (the last three only in "release" mode)
if ARGV[2] == 'release' then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    return {'GONE'}
  end
  if redis.call('HGET', KEYS[1], 'user') ~= ARGV[3] then
    return {'NOT_OWNER'}
  end
  if redis.call('HEXISTS', KEYS[1], 'pinned') == 1 then
    return {'PINNED'}
  end
end
local n = #ARGV - 3
for i = 9, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[4], ARGV[i - 5])
  end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[5], n .. ':' .. ARGV[1])
-- Only a cached inventory gets booked marks: a partial cache would refuse nothing it should.
if ARGV[2] == 'book' then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    for i = 4, #ARGV do
      redis.call('SADD', KEYS[3], ARGV[i])
    end
    if redis.call('HSETNX', KEYS[7], ARGV[1], n .. ':' .. ARGV[3]) == 1 then
      redis.call('HINCRBY', KEYS[6], ARGV[3], n)
    end
  else
    redis.call('INCR', KEYS[8])
  end
end
return {'OK'}
