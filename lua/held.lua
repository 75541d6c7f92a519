-- held.lua: read the live holds of an event by the Redis clock. Writes nothing but the trim of
-- expired tier holds ("tiers"), the same cleanup hold.lua does, so no read walks them twice.
--
-- ARGV[1]  "count", "list", "some" or "tiers"
-- "count" / "list" / "some":
--   KEYS[1]  {e}:held   ZSET seat code -> expiry ms
--   ARGV[2..] ("some") seat codes
--   Returns, for "count", the number of seats held now; for "list", a flat array
--   {code, remaining_ms, code, remaining_ms, ...} of the seats held now; for "some", per code
--   asked the milliseconds its hold has left, or -1 when it is not held now.
-- "tiers":
--   KEYS     per tier, two keys: {e}:tier:<code> and {e}:tierholds:<code>
--   ARGV[2..] per tier, a count c and then c members "<quantity>:<holdGroupId>" not to count
--            (copies of Postgres holds, which the caller counts from Postgres), then a count k
--            and k channel codes
--   Trims each tier's expired entries off its running total, and returns per tier 2 + k
--   numbers: the units held now (less the members named), or -1 when the tier is not cached;
--   the milliseconds until its next hold ends, or -1 when none is live; and the units of each
--   channel's allocation held now (h:<ch>, less the members' channel parts; see pools.lua).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == 'count' then
  return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
end
if ARGV[1] == 'some' then
  local out = {}
  for i = 2, #ARGV do
    local expiry = redis.call('ZSCORE', KEYS[1], ARGV[i])
    if expiry and tonumber(expiry) > now then
      out[#out + 1] = tonumber(expiry) - now
    else
      out[#out + 1] = -1
    end
  end
  return out
end
if ARGV[1] == 'tiers' then
  local out = {}
  local a = 2
  for j = 0, #KEYS / 2 - 1 do
    local tier, holds = KEYS[1 + 2 * j], KEYS[2 + 2 * j]
    local held = redis.call('HGET', tier, 'held')
    local c = tonumber(ARGV[a])
    local copied = {}
    if held then
      held = tonumber(held)
      local back = 0
      local split = redis.call('HEXISTS', tier, 'x') == 1
      local pl = split and pools_lib()
      for _, member in ipairs(redis.call('ZRANGEBYSCORE', holds, '-inf', now)) do
        back = back + tonumber(string.match(member, '^(%d+):'))
        if split then
          pl.unhold(tier, string.match(member, '^%d+:(.*)$'))
        end
      end
      if back > 0 then
        redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
        redis.call('HINCRBY', tier, 'held', -back)
        held = held - back
      end
      for i = a + 1, a + c do
        local expiry = redis.call('ZSCORE', holds, ARGV[i])
        if expiry and tonumber(expiry) > now then
          held = held - tonumber(string.match(ARGV[i], '^(%d+):'))
          local part = redis.call('HGET', tier, 'p:' .. string.match(ARGV[i], '^%d+:(.*)$'))
          if part then
            pools_lib().each(part, function(ch, q)
              copied[ch] = (copied[ch] or 0) + q
            end)
          end
        end
      end
      out[#out + 1] = math.max(held, 0)
      local next_end = redis.call('ZRANGEBYSCORE', holds, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
      out[#out + 1] = next_end[2] and (tonumber(next_end[2]) - now) or -1
    else
      out[#out + 1] = -1
      out[#out + 1] = -1
    end
    local k = tonumber(ARGV[a + c + 1])
    for i = a + c + 2, a + c + 1 + k do
      local h = held and tonumber(redis.call('HGET', tier, 'h:' .. ARGV[i]) or '0') or 0
      out[#out + 1] = math.max(h - ((held and copied[ARGV[i]]) or 0), 0)
    end
    a = a + c + k + 2
  end
  return out
end
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  out[#out + 1] = rows[i]
  out[#out + 1] = tonumber(rows[i + 1]) - now
end
return out
