-- pools_take.lua: choosing and taking tier units by channel (prepended to hold.lua after policy.lua
-- and pools.lua, whose functions it uses; see pools.lua for the fields).
-- Built like pools_lib (only when a hold needs it): `pools_choice(pools_lib())` gives plan,
-- window_own and take.

local function pools_choice(pl)
  -- (hold.lua only) The units of `tier` a caller may take now, and from where. `free`: the tier's
  -- units left over all (cap - sold - held); `alloc`: its policy field ta:<code> (nil: no
  -- allocation, every unit is open). Each allocation keeps back what it has left; the open units
  -- are the rest. A caller in a channel takes its channel's units first (in that channel's sales
  -- window), then open units (in the event's); the public only open units; a box office ("*")
  -- any, open units first. Returns the units the caller may take and the plan: {channel, units}
  -- steps in order (channel false: open units), or nil when every unit is open.
  local function pools_plan(tier, free, alloc, p, f, now)
    free = math.max(free, 0)
    if not alloc then
      return free, nil
    end
    local chans, fields = {}, {}
    pl.each(alloc, function(ch, a)
      chans[#chans + 1] = {ch, a}
      fields[#fields + 1] = 'h:' .. ch
      fields[#fields + 1] = 's:' .. ch
    end)
    local used = redis.call('HMGET', tier, unpack(fields))
    local box = p.who == '*'
    local kept, own = 0, {}
    for i, c in ipairs(chans) do
      local left = math.max(c[2] - tonumber(used[2 * i - 1] or '0') - tonumber(used[2 * i] or '0'), 0)
      kept = kept + left
      if box then
        own[#own + 1] = {c[1], left}
      elseif policy_in(p, c[1]) then
        local s, e = policy_window(f, c[1])
        if policy_state(s, e, now) == 'open' then
          own[#own + 1] = {c[1], left}
        end
      end
    end
    local open = math.max(free - kept, 0)
    if not box and policy_state(tonumber(f.s), tonumber(f.e), now) ~= 'open' then
      open = 0
    end
    local plan, total = {}, 0
    if box then
      plan[1] = {false, open}
      total = open
    end
    for _, o in ipairs(own) do
      plan[#plan + 1] = o
      total = total + o[2]
    end
    if not box then
      plan[#plan + 1] = {false, open}
      total = total + open
    end
    return math.min(total, free), plan
  end

  -- (hold.lua only) Whether the caller may take units of some requested tier from one of its
  -- channels' allocations now: then the event's window is not asked of the hold's tier units
  -- (each allocation is sold in its channel's window; pools_plan counts only what is open).
  local function pools_window_own(p, f, codes, now)
    if not f or p.who == '*' then
      return false
    end
    for _, code in ipairs(codes) do
      local alloc = f['ta:' .. code]
      if alloc then
        for ch in string.gmatch(alloc, '([^,=]+)=%d+') do
          if policy_in(p, ch) then
            local s, e = policy_window(f, ch)
            if policy_state(s, e, now) == 'open' then
              return true
            end
          end
        end
      end
    end
    return false
  end

  -- (hold.lua only) Takes `want` units for hold `id` by `plan`: the channel part is added to the
  -- held counts and kept on the tier as p:<id>. Returns the part, or nil for open units only.
  local function pools_take(tier, id, want, plan)
    if not plan then
      return nil
    end
    local parts = {}
    for _, step in ipairs(plan) do
      if want <= 0 then
        break
      end
      local n = math.min(want, step[2])
      if n > 0 and step[1] then
        parts[#parts + 1] = step[1] .. '=' .. n
        redis.call('HINCRBY', tier, 'h:' .. step[1], n)
      end
      want = want - n
    end
    if #parts == 0 then
      return nil
    end
    local part = table.concat(parts, ',')
    redis.call('HSET', tier, 'p:' .. id, part, 'x', '1')
    return part
  end
  return {plan = pools_plan, window_own = pools_window_own, take = pools_take, lib = pl}
end
