-- (rows.lua and publish.lua are prepended to this script; see scripts.rs.)
-- block.lua: hold seats back from sale, or put them on sale again, in the event's cache. A
-- blocked seat is refused as a booked one is (it is in {e}:booked and its layout bit is set, so
-- neither a hold nor best-available takes it) and is also in {e}:blocked.
--
-- KEYS[1]   {e}:seats    the cached inventory's marker
-- KEYS[2]   {e}:booked
-- KEYS[3]   {e}:blocked
-- KEYS[4]   {e}:gen      bumped when the inventory is not cached, so a rebuild from a Postgres
--                        snapshot older than this change is refused
-- KEYS[5 .. 4+n]  {e}:seat:<code> for every seat, in ARGV order
-- KEYS[last-1] {e}:layout (see rows.lua, prepended)
-- KEYS[last]   {e}:watched: when set, an unblock is published on {e}:changes
-- ARGV[1]   "block" or "unblock"
-- ARGV[2 .. 1+n]  seat codes
--
-- Returns {"OK"}, or for "block" {"HELD", {codes}}: the seats a live hold has (nothing changed).
local n = #ARGV - 1
if ARGV[1] == 'block' then
  local held = {}
  for i = 1, n do
    if redis.call('EXISTS', KEYS[4 + i]) == 1 then
      held[#held + 1] = ARGV[1 + i]
    end
  end
  if #held > 0 then
    return {'HELD', held}
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('INCR', KEYS[4])
else
  for i = 1, n do
    local code = ARGV[1 + i]
    if ARGV[1] == 'block' then
      redis.call('SADD', KEYS[2], code)
      redis.call('SADD', KEYS[3], code)
      rows_mark(KEYS[#KEYS - 1], code, 'book')
    else
      redis.call('SREM', KEYS[2], code)
      redis.call('SREM', KEYS[3], code)
      rows_mark(KEYS[#KEYS - 1], code, 'unbook')
    end
  end
end
-- An unblock is published here (Postgres committed it first). A block is not: it reaches Redis
-- before Postgres commits it, and a stream reads a change's seats from Postgres, so the service
-- announces it once committed.
if ARGV[1] == 'unblock' then
  publish_change(KEYS[#KEYS], function()
    -- (a loop, not unpack: an unblock may name more seats than Lua's stack holds)
    local seats = {}
    for i = 1, n do
      seats[i] = ARGV[1 + i]
    end
    return {s = seats, t = {}, at = clock_ms()}
  end)
end
return {'OK'}
