-- gcra.lua: the shared rate limit, prepended to the scripts that count a request (rate_limit.lua,
-- hold.lua, hold_plain.lua, best.lua); not a script of its own. GCRA (generic cell rate
-- algorithm): the key holds the theoretical arrival time (TAT) in microseconds of the Redis clock;
-- a request is allowed when it comes no earlier than TAT - burst * interval.
--
-- gcra(key, interval_us, burst, now_us) returns allowed (1|0), remaining requests of the burst,
-- how long until one request is allowed (us, when refused), how long until the burst is whole
-- again (us).
local function gcra(key, interval, burst, now)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then
    tat = now
  end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if now < allow_at then
    return 0, 0, allow_at - now, tat - now
  end
  -- Integers passed as strings: Redis formats a Lua number argument with "%.17g", ~0.3 us each.
  redis.call('SET', key, string.format('%d', new_tat), 'PX',
    string.format('%d', math.ceil((new_tat - now) / 1000) + 1))
  return 1, math.floor((now - allow_at) / interval), 0, new_tat - now
end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- hold_rate(key, now_us): counts a hold script's request (hold.lua, hold_plain.lua, best.lua:
-- ARGV[6] the interval in us, 0 = not counted; ARGV[7] the burst). Returns the refusal
-- {"RATE_LIMITED", 0, reset, retry} or nil, then the remaining requests and the reset (0, 0 when
-- not counted); now_us may be nil when ARGV[6] is 0.
local function hold_rate(key, now)
  local interval = tonumber(ARGV[6])
  if interval == 0 then
    return nil, 0, 0
  end
  local allowed, remaining, retry, reset = gcra(key, interval, tonumber(ARGV[7]), now)
  if allowed == 0 then
    return {'RATE_LIMITED', 0, reset, retry}, 0, 0
  end
  return nil, remaining, reset
end
