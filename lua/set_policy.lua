-- set_policy.lua: write an event's sales policy into its cache after Postgres changed it
-- (PATCH /events/{id}, PUT /events/{id}/channels), unless a newer version is there already.
--
-- KEYS[1]  {e}:seats    the cached inventory's marker
-- KEYS[2]  {e}:gen      bumped when the inventory is not cached, so a rebuild from a Postgres
--                       snapshot older than this change is refused
-- KEYS[3]  {e}:policy   the policy fields (see policy.lua); its version is {e}:policyv
-- KEYS[4]  {e}:chan     seat code -> channel
-- KEYS[5]  {e}:layout   its field `policy` (see below)
-- ARGV[1]  the policy: its version, then field, value, ... all joined by "\n"
-- ARGV[2]  "1" to replace the seats' channels with ARGV[3], "0" to keep them
-- ARGV[3]  seat code, channel, ... joined by "\n"
--
-- Returns 1 if written (or the cache is cold: the next rebuild reads it), 0 if a newer
-- version was there.
local version_key = KEYS[3] .. 'v'
local parts = {}
for part in string.gmatch(ARGV[1], '[^\n]+') do
  parts[#parts + 1] = part
end
local version = tonumber(parts[1])
if tonumber(redis.call('GET', version_key) or '-1') >= version then
  return 0
end
redis.call('SET', version_key, version)
-- The layout's field `policy` (written by rebuild.lua): "1" while the event has a policy, "0"
-- while it has none; hold_plain.lua reads it instead of the policy key. A cold cache's policy
-- is the next rebuild's to write: the field goes until then (as when the cache is dropped), so
-- hold_plain.lua neither trusts it nor refuses a held seat as a plain event's.
local layout = KEYS[5]
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HDEL', layout, 'policy')
  redis.call('INCR', KEYS[2])
  return 1
end
redis.call('DEL', KEYS[3])
if #parts > 1 then
  redis.call('HSET', KEYS[3], unpack(parts, 2))
end
if redis.call('EXISTS', layout) == 1 then
  redis.call('HSET', layout, 'policy', #parts > 1 and '1' or '0')
end
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[4])
  local pairs_ = {}
  for part in string.gmatch(ARGV[3], '[^\n]+') do
    pairs_[#pairs_ + 1] = part
    if #pairs_ >= 4000 then
      redis.call('HSET', KEYS[4], unpack(pairs_))
      pairs_ = {}
    end
  end
  if #pairs_ > 0 then
    redis.call('HSET', KEYS[4], unpack(pairs_))
  end
end
return 1
