-- pin.lua: check a hold before confirming it and make sure it outlives the Postgres transaction.
--
-- KEYS[1]   {e}:hold:<holdGroupId>
-- KEYS[2]   {e}:held   ZSET seat code -> expiry ms
-- KEYS[3]   {e}:user:<userId>  the buyer's live holds (its entry follows the extension)
-- KEYS[4 .. 3+n]  {e}:seat:<code> for every seat of the hold, in ARGV order
-- then {e}:tierholds:<code> for every tier line of the hold, in ARGV order
-- and last (taken off first): {e}:hist, the history stream: a pin that moves the hold's end is
--           noted there (not a change of its own: the history must not expire a hold being
--           confirmed)
-- ARGV[1]   holdGroupId
-- ARGV[2]   userId of the caller
-- ARGV[3]   grace in milliseconds: the hold is extended to live at least this long
-- ARGV[4]   pin token of this confirm attempt (unpin.lua removes only its own token)
-- ARGV[5]   n, the number of seat codes
-- ARGV[6]   units of the hold (seats plus tier quantities): its member in the buyer's record
-- ARGV[7 .. 6+n]  seat codes of the hold
-- then the hold's member "<quantity>:<holdGroupId>" in each tier's holds, in KEYS order
--
-- Returns {"OK"} | {"GONE"} (expired, released or unknown) | {"NOT_OWNER"}
local HIST = table.remove(KEYS)
-- Last of ARGV (taken off first): "1" to record the change in HIST, "0" not to
-- (history.enabled = false).
local RECORD = table.remove(ARGV) == '1'
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'GONE'}
end
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[2] then
  return {'NOT_OWNER'}
end
local n = tonumber(ARGV[5])
for i = 4, 3 + n do
  if redis.call('GET', KEYS[i]) ~= ARGV[1] then
    return {'GONE'}
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 4 + n, #KEYS do
  local expiry = redis.call('ZSCORE', KEYS[i], ARGV[i + 3])
  if not expiry or tonumber(expiry) <= now then
    return {'GONE'}
  end
end
-- Mark the hold as being confirmed, so a release racing this confirm is refused.
redis.call('HSET', KEYS[1], 'pinned', ARGV[4])
local grace = tonumber(ARGV[3])
if redis.call('PTTL', KEYS[1]) < grace then
  local exp = now + grace
  if RECORD then
    redis.call('XADD', HIST, '*', 'k', 'P', 'h', ARGV[1], 'a', now, 'x', exp)
  end
  redis.call('PEXPIRE', KEYS[1], grace)
  redis.call('HSET', KEYS[1], 'exp', exp)
  for i = 4, 3 + n do
    redis.call('PEXPIRE', KEYS[i], grace)
    redis.call('ZADD', KEYS[2], exp, ARGV[i + 3])
  end
  for i = 4 + n, #KEYS do
    redis.call('ZADD', KEYS[i], 'XX', exp, ARGV[i + 3])
  end
  -- The buyer's record (kept while caps are on) counts the hold for as long as it lives.
  local member = ARGV[6] .. ':' .. ARGV[1]
  if redis.call('ZADD', KEYS[3], 'XX', 'CH', exp, member) == 1 and redis.call('PTTL', KEYS[3]) < grace then
    redis.call('PEXPIRE', KEYS[3], grace)
  end
end
return {'OK'}
