-- rate_limit.lua: one request against a GCRA (generic cell rate algorithm) limit, shared by
-- every seatlock instance. The key holds the theoretical arrival time (TAT) in microseconds of
-- the Redis clock; a request is allowed when it comes no earlier than TAT - burst * interval.
--
-- KEYS[1]  rate:{<scope>:<identity>}
-- ARGV[1]  emission interval in microseconds (1e6 / requests per second)
-- ARGV[2]  burst: requests allowed at once
--
-- Returns {allowed (1|0), remaining, retry_after_us, reset_us}: remaining requests of the burst
-- now; when refused, how long until one is allowed; how long until the burst is whole again.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
