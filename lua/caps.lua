-- caps.lua: a buyer's caps on a new hold (prepended to hold.lua and best.lua, which pass the
-- same keys: KEYS[5] {e}:user:<userId>, the buyer's live holds "<units>:<holdGroupId>" -> expiry
-- ms; KEYS[6] {e}:sold, userId -> confirmed seats and units).

-- Whether a hold of `units` more stays within `max_holds` live holds and `max_seats` seats and
-- units (confirmed ones included; 0 = no cap). Returns the refusal {cap, max, current} or nil,
-- and what caps_record needs. The buyer's record is small (a few live holds and the expired
-- ones not trimmed yet), and one read tells both counts.
local function caps_check(user_key, sold_key, user, units, max_seats, max_holds, now)
  local state = {capped = max_seats > 0 or max_holds > 0, latest = 0, expired = 0}
  if not state.capped then
    return nil, state
  end
  local entries = redis.call('ZRANGE', user_key, 0, -1, 'WITHSCORES')
  local holds, current = 0, 0
  for i = 1, #entries, 2 do
    local expiry = tonumber(entries[i + 1])
    if expiry > now then
      holds = holds + 1
      current = current + tonumber(string.match(entries[i], '^(%d+):'))
      state.latest = math.max(state.latest, expiry)
    else
      state.expired = state.expired + 1
    end
  end
  if max_holds > 0 and holds + 1 > max_holds then
    return {'live_holds', max_holds, holds}, state
  end
  if max_seats > 0 then
    current = current + tonumber(redis.call('HGET', sold_key, user) or '0')
    if current + units > max_seats then
      return {'seats', max_seats, current}, state
    end
  end
  return nil, state
end

-- Adds the new hold to the buyer's record (kept only while caps are on), dropping expired
-- entries, and keeps the record alive as long as its longest hold.
local function caps_record(state, user_key, hold_id, units, exp, now)
  if not state.capped then
    return
  end
  -- (Integers as strings: see hold_plain.lua.)
  if state.expired > 0 then
    redis.call('ZREMRANGEBYSCORE', user_key, '-inf', string.format('%d', now))
  end
  redis.call('ZADD', user_key, string.format('%d', exp), units .. ':' .. hold_id)
  redis.call('PEXPIRE', user_key, string.format('%d', math.max(exp, state.latest) - now))
end
