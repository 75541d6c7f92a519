-- settle.lua: end a hold, either because it was released or because its booking committed.
-- Only seat keys that still point at this hold are touched, so a stale call never frees a seat
-- that someone else holds now; a tier's held total drops only by the entry this hold still has.
--
-- KEYS[1]   {e}:hold:<holdGroupId>
-- KEYS[2]   {e}:seats
-- KEYS[3]   {e}:booked
-- KEYS[4]   {e}:held
-- KEYS[5]   {e}:user:<userId>   the buyer's live holds
-- KEYS[6]   {e}:sold            HASH userId -> confirmed seats and units
-- KEYS[7]   {e}:sold_by_booking HASH bookingId -> "<units>:<userId>" (makes "book" count once)
-- KEYS[8]   {e}:gen             bumped by "book" when the inventory is not cached, so a rebuild
--                               from a Postgres snapshot older than this booking is refused
-- KEYS[9 .. 8+n]  {e}:seat:<code> for every seat of the hold, in ARGV order
-- then per tier line of the hold, two keys: {e}:tier:<code> and {e}:tierholds:<code> (the
--           channel part of its units, p:<holdGroupId> there, leaves h:<ch>; booked, it goes to
--           s:<ch> and b:<bookingId>: see pools.lua, prepended)
-- KEYS[last-1] {e}:layout: the seat layout (see rows.lua, prepended)
-- KEYS[last] {e}:watched: when set, what changed is published on {e}:changes
-- and after it (taken off first): {e}:hist, the history stream
-- ARGV[1]   holdGroupId
-- ARGV[2]   mode:
--           "release"  the owner gives it up: the hold must be alive, owned by ARGV[3] and not
--                      pinned by a confirm in progress
--           "book"     its booking committed in Postgres: unconditional, the seats become booked
--                      and the units sold
--           "drop"     nothing was sold by it: unconditional, nothing becomes booked
-- ARGV[3]   userId (the hold's buyer)
-- ARGV[4]   n, the number of seat codes
-- ARGV[5 .. 4+n]  seat codes of the hold
-- then pairs tier code, quantity: the hold's tier lines, then SOLD (below)
-- and last (taken off first): "" not to record (a copy of a Postgres hold, recorded in
--           Postgres), else "1" followed by the seats another booking had sold, each after a
--           "\n" ("drop" only): the hold's end is appended to {e}:hist as R (released), B
--           (booked: the rows are in Postgres) or D (dropped)
--
-- Returns {"OK"} | {"GONE"} | {"NOT_OWNER"} | {"PINNED"} (the last three only in "release" mode)
local HIST = table.remove(KEYS)
local RECORD = table.remove(ARGV)
-- Before RECORD (taken off after it): the channel parts of the hold's units, "<code> <part>"
-- lines, as the caller read them from the hold ("" : those p:<holdGroupId> still has).
local SOLD = table.remove(ARGV)
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
local n = tonumber(ARGV[4])
for i = 0, n - 1 do
  if redis.call('GET', KEYS[9 + i]) == ARGV[1] then
    redis.call('DEL', KEYS[9 + i])
    redis.call('ZREM', KEYS[4], ARGV[5 + i])
    if ARGV[2] ~= 'book' then
      rows_mark(KEYS[#KEYS - 1], ARGV[5 + i], 'free')
    end
  end
end
local tfirst = 5 + n
local kfirst = 9 + n
local lines = (#ARGV - tfirst + 1) / 2
local units = n
local parts = {}
for j = 0, lines - 1 do
  local tier, holds = KEYS[kfirst + 2 * j], KEYS[kfirst + 2 * j + 1]
  local q = tonumber(ARGV[tfirst + 2 * j + 1])
  units = units + q
  -- An entry already trimmed (expired) or dropped with its cache gave its units back then.
  if redis.call('ZREM', holds, q .. ':' .. ARGV[1]) == 1 and redis.call('EXISTS', tier) == 1 then
    redis.call('HINCRBY', tier, 'held', -q)
    if redis.call('HEXISTS', tier, 'x') == 1 then
      parts[j] = pools_lib().unhold(tier, ARGV[1])
    end
  end
  -- Sold by the part the caller read from the hold when it has one (the hold's own p: may have
  -- been trimmed already, if the confirm outlived it).
  local given = SOLD ~= '' and string.match('\n' .. SOLD .. '\n',
    '\n' .. string.gsub(ARGV[tfirst + 2 * j], '%p', '%%%0') .. ' ([^\n]+)\n')
  if given then
    parts[j] = given
  end
end
-- A hold taken under an admission frees its place there ({e}:adm:<buyer>, see policy.lua).
local adm = redis.call('HGET', KEYS[1], 'adm')
if adm then
  redis.call('ZREM', adm, ARGV[1])
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[5], units .. ':' .. ARGV[1])
if RECORD ~= '' then
  local kind = ARGV[2] == 'release' and 'R' or (ARGV[2] == 'book' and 'B' or 'D')
  redis.call('XADD', HIST, '*', 'k', kind, 'h', ARGV[1], 'b', string.sub(RECORD, 3))
end
-- Only a cached inventory gets booked marks: a partial cache would refuse nothing it should.
if ARGV[2] == 'book' then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    for i = 0, n - 1 do
      redis.call('SADD', KEYS[3], ARGV[5 + i])
      rows_mark(KEYS[#KEYS - 1], ARGV[5 + i], 'book')
    end
    if redis.call('HSETNX', KEYS[7], ARGV[1], units .. ':' .. ARGV[3]) == 1 then
      redis.call('HINCRBY', KEYS[6], ARGV[3], units)
      for j = 0, lines - 1 do
        redis.call('HINCRBY', KEYS[kfirst + 2 * j], 'sold', tonumber(ARGV[tfirst + 2 * j + 1]))
        if parts[j] then
          pools_lib().sell(KEYS[kfirst + 2 * j], ARGV[1], parts[j])
        end
      end
    end
  else
    redis.call('INCR', KEYS[8])
  end
end
publish_change(KEYS[#KEYS], function()
  local seats, tiers = {}, {}
  for i = 0, n - 1 do
    seats[i + 1] = ARGV[5 + i]
  end
  for j = 0, lines - 1 do
    tiers[j + 1] = ARGV[tfirst + 2 * j]
  end
  return {s = seats, t = tiers, at = clock_ms()}
end)
return {'OK'}
