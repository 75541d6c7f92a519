-- extend.lua: run a hold again for a TTL, on every seat and tier unit at once, within its limits:
-- never past `max lifetime` from when it was taken, at most `max renewals` times.
--
-- KEYS[1]   {e}:hold:<holdGroupId>
-- KEYS[2]   {e}:held     ZSET seat code -> expiry ms
-- KEYS[3]   {e}:user:<userId>  the buyer's live holds (its entry follows the extension)
-- KEYS[4 .. 3+n]  {e}:seat:<code> for every seat of the hold, in ARGV order
-- then {e}:tierholds:<code> for every tier line of the hold, in ARGV order
-- KEYS[last] {e}:watched: when set, the change is published on {e}:changes
-- and after it (taken off first): {e}:hist, the history stream: an extension is recorded there
-- ARGV[1]   holdGroupId      ARGV[2]  userId      ARGV[3]  ttl ms
-- ARGV[4]   max lifetime ms  ARGV[5]  max renewals
-- ARGV[6]   n, the number of seats     ARGV[7]  units of the hold (its member in the buyer's record)
-- ARGV[8 .. 7+n]  seat codes; then per tier line its code and its member "<quantity>:<holdGroupId>"
--
-- Returns {"OK", expires_ms, renewals_left} | {"GONE"} | {"NOT_OWNER"} | {"PINNED"} (a confirm is
-- in progress) | {"LOST", {codes}} (Redis lost some of its seats or units) | {"LIMIT", "renewals"
-- or "lifetime"}
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
if redis.call('HEXISTS', KEYS[1], 'pinned') == 1 then
  return {'PINNED'}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[6])
local lines = (#ARGV - 7 - n) / 2
local lost = {}
for i = 0, n - 1 do
  if redis.call('GET', KEYS[4 + i]) ~= ARGV[1] then
    lost[#lost + 1] = ARGV[8 + i]
  end
end
for j = 0, lines - 1 do
  local expiry = redis.call('ZSCORE', KEYS[4 + n + j], ARGV[9 + n + 2 * j])
  if not expiry or tonumber(expiry) <= now then
    lost[#lost + 1] = ARGV[8 + n + 2 * j]
  end
end
if #lost > 0 then
  return {'LOST', lost}
end
local renewals = tonumber(redis.call('HGET', KEYS[1], 'renewals') or '0')
if renewals >= tonumber(ARGV[5]) then
  return {'LIMIT', 'renewals'}
end
local taken = tonumber(redis.call('HGET', KEYS[1], 'taken') or now)
local current = tonumber(redis.call('HGET', KEYS[1], 'exp') or '0')
local last = taken + tonumber(ARGV[4])
if last <= current then
  -- The hold already runs to the end of its life.
  return {'LIMIT', 'lifetime'}
end
-- Never shorter than it runs now (two extensions in one millisecond).
local exp = math.max(math.min(now + tonumber(ARGV[3]), last), current)
local ttl = math.max(exp - now, 1)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('HSET', KEYS[1], 'exp', exp, 'renewals', renewals + 1)
-- A hold taken under an admission keeps its place in the admission's live holds as long.
local adm = redis.call('HGET', KEYS[1], 'adm')
if adm and redis.call('ZADD', adm, 'XX', 'CH', exp, ARGV[1]) == 1 and redis.call('PTTL', adm) < ttl then
  redis.call('PEXPIRE', adm, ttl)
end
local seats, tiers = {}, {}
for i = 0, n - 1 do
  redis.call('PEXPIRE', KEYS[4 + i], ttl)
  redis.call('ZADD', KEYS[2], exp, ARGV[8 + i])
  seats[#seats + 1] = ARGV[8 + i]
end
for j = 0, lines - 1 do
  redis.call('ZADD', KEYS[4 + n + j], 'XX', exp, ARGV[9 + n + 2 * j])
  tiers[#tiers + 1] = ARGV[8 + n + 2 * j]
end
if RECORD then
  redis.call('XADD', HIST, '*', 'k', 'E', 'h', ARGV[1], 'a', now, 'x', exp)
end
local member = ARGV[7] .. ':' .. ARGV[1]
if redis.call('ZADD', KEYS[3], 'XX', 'CH', exp, member) == 1 and redis.call('PTTL', KEYS[3]) < ttl then
  redis.call('PEXPIRE', KEYS[3], ttl)
end
publish_change(KEYS[#KEYS], function()
  return {s = seats, t = tiers, at = now, x = exp}
end)
return {'OK', exp, tonumber(ARGV[5]) - renewals - 1}
