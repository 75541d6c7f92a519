-- held.lua: read the live holds of an event by the Redis clock.
--
-- KEYS[1]  {e}:held   ZSET seat code -> expiry ms
-- ARGV[1]  "count" or "list"
--
-- Returns, for "count", the number of seats held now; for "list", a flat array
-- {code, remaining_ms, code, remaining_ms, ...} of the seats held now.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == 'count' then
  return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
end
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  out[#out + 1] = rows[i]
  out[#out + 1] = tonumber(rows[i + 1]) - now
end
return out
