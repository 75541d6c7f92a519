-- pools.lua: tier units allocated to sales channels (prepended to hold.lua after policy.lua, and
-- to settle.lua, held.lua, mark_booked.lua and rebuild.lua). A channel's allocation of a tier is
-- held only by callers in the channel; the rest of the tier is open to everyone.
--
-- The allocations are policy fields (see policy.lua): ta:<tier code> = "presale=4,vip=2". Once a
-- hold has taken units of an allocation, the tier's HASH {e}:tier:<code> keeps, beside cap, sold
-- and held:
--   x                "1": some hold or booking has a channel part, so ending one looks for it
--   h:<ch>, s:<ch>   units of channel ch's allocation held by live holds / sold
--   p:<holdGroupId>  the channel part of a live hold's units of the tier: "presale=3,vip=1"
--   b:<bookingId>    the same for a booking of them, so a cancel gives them back
-- A tier without allocations has none of these: its holds pay one more field in one HMGET.
--
-- The functions are built only when a script needs them (local functions are closures made on
-- every run of a script, and most runs need none of these): `local pl = pools_lib()`, then
-- pl.each, pl.unhold, pl.sell, pl.unsell.

local function pools_lib()
  local function pools_each(part, fn)
    for ch, q in string.gmatch(part, '([^,=]+)=(%d+)') do
      fn(ch, tonumber(q))
    end
  end

  -- The channel part of hold `id`'s units of `tier` leaves the held counts (the hold ended, or is
  -- being booked). Returns the part, or nil when its units were all open ones.
  local function pools_unhold(tier, id)
    local part = redis.call('HGET', tier, 'p:' .. id)
    if not part then
      return nil
    end
    pools_each(part, function(ch, q)
      redis.call('HINCRBY', tier, 'h:' .. ch, -q)
    end)
    redis.call('HDEL', tier, 'p:' .. id)
    return part
  end

  -- A booking `id` sold `part` (the channel part its hold had): counted as sold, and remembered.
  local function pools_sell(tier, id, part)
    pools_each(part, function(ch, q)
      redis.call('HINCRBY', tier, 's:' .. ch, q)
    end)
    redis.call('HSET', tier, 'b:' .. id, part, 'x', '1')
  end

  -- A cancelled booking `id` gives its channel part back.
  local function pools_unsell(tier, id)
    local part = redis.call('HGET', tier, 'b:' .. id)
    if not part then
      return
    end
    pools_each(part, function(ch, q)
      redis.call('HINCRBY', tier, 's:' .. ch, -q)
    end)
    redis.call('HDEL', tier, 'b:' .. id)
  end
  return {each = pools_each, unhold = pools_unhold, sell = pools_sell, unsell = pools_unsell}
end
