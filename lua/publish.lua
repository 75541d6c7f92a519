-- publish.lua: the live seat map's change feed, prepended to every script that changes a seat
-- (hold.lua, hold_plain.lua, best.lua, extend.lua, settle.lua, mark_booked.lua, block.lua); not
-- a script of its own. `{e}:watched` is set while some instance streams the event's map, and
-- holds the command its subscribers listen with (SPUBLISH on a cluster, PUBLISH else); without
-- it nothing is built or published, so an event nobody watches pays one GET.

-- publish_change(watched_key, change): when the event is watched, publishes the JSON of
-- change() (a function, so the message is built only then) on `{e}:changes`, the channel named
-- beside `{e}:watched`.
local function publish_change(watched_key, change)
  local cmd = redis.call('GET', watched_key)
  if cmd then
    redis.call(cmd == 'SPUBLISH' and 'SPUBLISH' or 'PUBLISH', string.sub(watched_key, 1, -8) .. 'changes',
      cjson.encode(change()))
  end
end

-- The Redis clock in ms (for scripts that have not read it already).
local function clock_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
