-- policy.lua: who may buy what, and when (prepended to hold.lua and best.lua; the same rules as
-- src/domain/policy.rs, and the Postgres fallback's). The hold scripts pass, after everything
-- else (taken off first, so their own indexes hold):
--   KEYS: {e}:policy, {e}:chan, then {e}:adm:<buyer> (the admission's live holds; {e}:policy
--         again when the hold has no admission)
--   ARGV: the caller's channels (",presale,vip," ; "," for none; "*" for a box office: any
--         channel, any time), the admission's live-hold limit ("0": no admission), the
--         admission's Queue-it event ("" : not a Queue-it token), the event id
--
-- {e}:policy HASH (absent for an event without a policy, so a plain hold pays one empty read):
--   s, e        the event's sales window, ms since the epoch (a bound left out is open-ended)
--   s:<ch>, e:<ch>  a channel's bounds (each one left out is the event's)
--   c           "1" when some seats belong to a channel ({e}:chan: seat code -> channel)
--   q           the event's Queue-it event id
-- {e}:adm:<buyer> ZSET holdGroupId -> hold expiry ms: the admission's holds (see settle.lua).

local function policy_args()
  local p = {}
  p.event = table.remove(ARGV)
  p.adm_event = table.remove(ARGV)
  p.adm_max = tonumber(table.remove(ARGV))
  p.who = table.remove(ARGV)
  p.adm_key = table.remove(KEYS)
  p.chan_key = table.remove(KEYS)
  p.key = table.remove(KEYS)
  return p
end

-- The event's policy fields (nil when it has none).
local function policy_read(p)
  local flat = redis.call('HGETALL', p.key)
  if #flat == 0 then
    return nil
  end
  local f = {}
  for i = 1, #flat, 2 do
    f[flat[i]] = flat[i + 1]
  end
  return f
end

-- Whether the admission may be used for this event: a Queue-it token names the event's Queue-it
-- id when it has one, else the event id.
local function policy_admitted(p, f)
  if p.adm_event == '' then
    return true
  end
  return p.adm_event == ((f and f.q) or p.event)
end

-- The window of a seat of channel `ch` (false: an open seat): start, end in ms (nil: open-ended).
local function policy_window(f, ch)
  local s, e = f.s, f.e
  if ch then
    s = f['s:' .. ch] or s
    e = f['e:' .. ch] or e
  end
  return tonumber(s), tonumber(e)
end

-- Where `now` stands in a window from `s` (inclusive) to `e` (exclusive), either nil when
-- open-ended: 'not' (not open yet), 'closed' or 'open'.
local function policy_state(s, e, now)
  if s and now < s then
    return 'not'
  elseif e and now >= e then
    return 'closed'
  end
  return 'open'
end

local function policy_in(p, ch)
  return string.find(p.who, ',' .. ch .. ',', 1, true) ~= nil
end

-- The policy's verdict on a hold of `codes` (and of tier units when `tiers` is true) at `now`:
-- {'NOT_OPEN', opens} (the latest opening among them) or {'CLOSED', closed} (the earliest
-- closing), or nil and the seats of a channel the caller is not in.
local function policy_check(p, f, codes, tiers, now)
  if not f or p.who == '*' then
    return nil, {}
  end
  local chans = {}
  if f.c and #codes > 0 then
    chans = redis.call('HMGET', p.chan_key, unpack(codes))
  end
  local opens, closed = nil, nil
  local foreign = {}
  local function judge(ch)
    local s, e = policy_window(f, ch)
    local state = policy_state(s, e, now)
    if state == 'not' then
      opens = math.max(opens or s, s)
    elseif state == 'closed' then
      closed = math.min(closed or e, e)
    end
  end
  for i, code in ipairs(codes) do
    local ch = chans[i] or false
    if ch and not policy_in(p, ch) then
      foreign[#foreign + 1] = code
    end
    judge(ch)
  end
  if tiers then
    judge(false)
  end
  if opens then
    return {'NOT_OPEN', opens}, foreign
  end
  if closed then
    return {'CLOSED', closed}, foreign
  end
  return nil, foreign
end

-- The admission's live holds: a refusal {cap, max, current} when one more would pass its limit.
local function policy_admission_check(p, now)
  if p.adm_max <= 0 then
    return nil
  end
  redis.call('ZREMRANGEBYSCORE', p.adm_key, '-inf', now)
  local live = redis.call('ZCARD', p.adm_key)
  if live + 1 > p.adm_max then
    return {'max_live_holds_per_admission', p.adm_max, live}
  end
  return nil
end

-- Records a hold taken under an admission (its key lives as long as its longest hold), and
-- which admission it was on the hold, so its end frees the place (settle.lua).
local function policy_admission_record(p, hold_key, hold_id, exp, now)
  if p.adm_max <= 0 then
    return
  end
  redis.call('ZADD', p.adm_key, exp, hold_id)
  local latest = redis.call('ZRANGE', p.adm_key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', p.adm_key, math.max(exp, tonumber(latest[2] or exp)) - now)
  redis.call('HSET', hold_key, 'adm', p.adm_key)
end
