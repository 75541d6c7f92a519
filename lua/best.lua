-- best.lua (after gcra.lua and rows.lua): choose `count` seats together, as good as possible,
-- and hold them, in one step (so two requests never get overlapping seats). The choice, among
-- the seats free now that match the type and price limit (src/domain/best.rs is the same rule
-- in Rust, and its reference):
--   1. `count` adjacent seats in one row that leave no orphan (no run of exactly one free seat
--      next to the block, between it and a taken seat, an aisle or the row's end); the first row
--      that has one, and in it the block whose middle is nearest the row's middle (ties: the
--      lower numbers);
--   2. if none, the same without the orphan rule;
--   3. else NO_BLOCK with the number of matching free seats.
-- Adjacent: same row, numbers differing by one. Rows come from {e}:layout (see rows.lua): full
-- rows are skipped by their bits, without reading their seats; held bits whose holds may have
-- ended (the row's e:<i> passed) are checked against the seat keys first.
--
-- The seat keys of the chosen seats are not in KEYS (nobody knows them before the choice); they
-- share the event's hash tag, so they live in the same slot as every declared key.
--
-- KEYS[1]   {e}:seats   the cached inventory's marker
-- KEYS[2]   {e}:booked
-- KEYS[3]   {e}:held    ZSET seat code -> hold expiry ms
-- KEYS[4]   {e}:hold:<holdGroupId>
-- KEYS[5]   {e}:user:<userId>   the buyer's live holds (kept while caps are on)
-- KEYS[6]   {e}:sold    HASH userId -> confirmed seats and units
-- KEYS[7]   rate:{<scope>:<identity>} (unused when ARGV[6] is 0)
-- KEYS[8]   {e}:layout
-- KEYS[9]   {e}:watched
-- KEYS[10]  {e}:rowends
-- ARGV[1]   holdGroupId          ARGV[2]  userId            ARGV[3]  ttl ms
-- ARGV[4]   max seats per buyer (0 = no cap)                ARGV[5]  max live holds (0 = no cap)
-- ARGV[6]   rate-limit interval us (0 = not here)           ARGV[7]  rate-limit burst
-- ARGV[8]   count   ARGV[9] seat type ("" = any)   ARGV[10] max price in cents (-1 = any)
-- ARGV[11]  the seat key prefix "{e}:seat:"
--
-- Replies (after the rate verdict, as hold.lua): {"OK", remaining, reset, expires_ms, trimmed,
-- {codes}} | {"NOCACHE"} | {"RATE_LIMITED", 0, reset, retry} | {"NO_BLOCK", remaining, reset,
-- available} | {"USER_LIMIT", remaining, reset, cap, max, current}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'NOCACHE'}
end
local layout = KEYS[8]
if redis.call('HEXISTS', layout, 'n') == 0 then
  -- A cache from before layouts: rebuild it.
  redis.call('DEL', KEYS[1])
  return {'NOCACHE'}
end
local clock = now_us()
local now = math.floor(clock / 1000)
local remaining, reset = 0, 0
if tonumber(ARGV[6]) > 0 then
  local allowed, retry
  allowed, remaining, retry, reset = gcra(KEYS[7], tonumber(ARGV[6]), tonumber(ARGV[7]), clock)
  if allowed == 0 then
    return {'RATE_LIMITED', 0, reset, retry}
  end
end
if redis.call('HGET', KEYS[4], 'user') == ARGV[2] then
  local fields = redis.call('HMGET', KEYS[4], 'exp', 'seats')
  local seats = {}
  for code in string.gmatch(fields[2] or '', '[^\n]+') do
    seats[#seats + 1] = code
  end
  return {'OK', remaining, reset, tonumber(fields[1]), 0, seats}
end

local count = tonumber(ARGV[8])
local want_type = ARGV[9]
local max_price = tonumber(ARGV[10])
local prefix = ARGV[11]
local rows = tonumber(redis.call('HGET', layout, 'n'))

-- Whether every seat of a row is taken, from its bits alone.
local function full(size, b, h)
  for byte = 1, math.ceil(size / 8) do
    local taken = bit.bor(string.byte(b, byte) or 0, string.byte(h, byte) or 0)
    local bits = math.min(8, size - (byte - 1) * 8)
    if taken ~= bit.lshift(1, bits) - 1 then
      return false
    end
  end
  return true
end

-- Row i as {codes, nums, free, elig, eligible_count}, or false when it is full; the earliest
-- end of a hold in it (for the hint). Stale held bits are checked and fixed first.
local loaded = {}
local function load(i)
  if loaded[i] ~= nil then
    return loaded[i]
  end
  local v = redis.call('HMGET', layout, 'r:' .. i, 'b:' .. i, 'h:' .. i, 'e:' .. i)
  local spec, b, h, e = v[1] or '', v[2] or '', v[3] or '', tonumber(v[4] or '0')
  local codes, nums, types, prices
  local function parse()
    if codes then
      return
    end
    codes, nums, types, prices = {}, {}, {}, {}
    for code, num, typ, price in string.gmatch(spec, '([^\t\n]+)\t(%d+)\t([^\t\n]*)\t(%-?%d+)') do
      codes[#codes + 1] = code
      nums[#nums + 1] = tonumber(num)
      types[#types + 1] = typ
      prices[#prices + 1] = tonumber(price)
    end
  end
  local size = #spec > 0 and select(2, string.gsub(spec, '\n', '')) + 1 or 0
  if e > 0 and e <= now then
    -- A hold marked in this row may have ended: look at each held seat's key.
    parse()
    local fresh, ends = '', nil
    for k = 0, #codes - 1 do
      if bit_get(h, k) then
        local left = redis.call('PTTL', prefix .. codes[k + 1])
        if left > 0 then
          fresh = bit_set(fresh, k, true)
          ends = math.min(ends or now + left, now + left)
        end
      end
    end
    h = fresh
    redis.call('HSET', layout, 'h:' .. i, h)
    if ends then
      redis.call('HSET', layout, 'e:' .. i, ends)
      redis.call('ZADD', KEYS[10], ends, i)
    else
      redis.call('HDEL', layout, 'e:' .. i)
    end
  end
  if full(size, b, h) then
    loaded[i] = false
    return false
  end
  parse()
  local free, elig, n_elig = {}, {}, 0
  for k = 1, #codes do
    free[k] = not bit_get(b, k - 1) and not bit_get(h, k - 1)
    elig[k] = free[k] and (want_type == '' or types[k] == want_type)
      and (max_price < 0 or prices[k] <= max_price)
    if elig[k] then
      n_elig = n_elig + 1
    end
  end
  loaded[i] = {codes = codes, nums = nums, free = free, elig = elig, n_elig = n_elig}
  return loaded[i]
end

-- A free seat at index l whose free run, away from the block at `toward`, is one seat long.
local function lone(row, l, toward)
  local nums, free = row.nums, row.free
  if not free[l] or math.abs(nums[l] - nums[toward]) ~= 1 then
    return false
  end
  local far = l < toward and l - 1 or l + 1
  return not (far >= 1 and far <= #nums and math.abs(nums[far] - nums[l]) == 1 and free[far])
end

-- The best block's first index in a row, or nil.
local function best_in_row(row, strict)
  local nums, elig, m = row.nums, row.elig, #row.nums
  if row.n_elig < count then
    return nil
  end
  local middle2 = nums[1] + nums[m]
  local best, best_d
  for k = 1, m - count + 1 do
    local ok = true
    for j = 0, count - 1 do
      if not elig[k + j] or (j > 0 and nums[k + j] ~= nums[k + j - 1] + 1) then
        ok = false
        break
      end
    end
    local last = k + count - 1
    if ok and strict and ((k > 1 and lone(row, k - 1, k)) or (last < m and lone(row, last + 1, last))) then
      ok = false
    end
    if ok then
      local d = math.abs(nums[k] + nums[last] - middle2)
      if not best_d or d < best_d then
        best, best_d = k, d
      end
    end
  end
  return best
end

-- The scan, from the hint: rows before it were full, unless a hold in one of them has ended
-- since (its {e}:rowends entry has passed): then from that row. Full rows at the start of the
-- scan move the hint on. A chosen seat is checked against its keys before it is taken; if the
-- bits were wrong (they are kept by the scripts, this is a safety net) they are fixed and the
-- search runs again.
local hint = tonumber(redis.call('HGET', layout, 'f') or '0')
for _, row in ipairs(redis.call('ZRANGEBYSCORE', KEYS[10], '-inf', now)) do
  hint = math.min(hint, tonumber(row))
end
redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', now)
local chosen, available
for _ = 1, 3 do
  chosen, available = nil, 0
  for pass = 1, 2 do
    local moving = pass == 1
    for i = hint, rows - 1 do
      local row = load(i)
      if not row then
        if moving then
          hint = i + 1
        end
      else
        moving = false
        if pass == 1 then
          available = available + row.n_elig
        end
        local k = best_in_row(row, pass == 1)
        if k then
          chosen = {}
          for j = 0, count - 1 do
            chosen[#chosen + 1] = row.codes[k + j]
          end
          break
        end
      end
    end
    if chosen then
      break
    end
  end
  local stale = false
  for _, code in ipairs(chosen or {}) do
    if redis.call('SISMEMBER', KEYS[2], code) == 1 then
      rows_mark(layout, code, 'book')
      stale = true
    elseif redis.call('EXISTS', prefix .. code) == 1 then
      rows_mark(layout, code, 'hold', now + redis.call('PTTL', prefix .. code), KEYS[10])
      stale = true
    end
  end
  if not stale then
    break
  end
  loaded = {}
  chosen = nil
end
redis.call('HSET', layout, 'f', hint)
if not chosen then
  return {'NO_BLOCK', remaining, reset, available}
end

-- The buyer's caps, as in hold.lua.
local max_seats = tonumber(ARGV[4])
local max_holds = tonumber(ARGV[5])
local capped = max_seats > 0 or max_holds > 0
local latest, expired = 0, 0
if capped then
  local entries = redis.call('ZRANGE', KEYS[5], 0, -1, 'WITHSCORES')
  local holds, current = 0, 0
  for i = 1, #entries, 2 do
    local expiry = tonumber(entries[i + 1])
    if expiry > now then
      holds = holds + 1
      current = current + tonumber(string.match(entries[i], '^(%d+):'))
      latest = math.max(latest, expiry)
    else
      expired = expired + 1
    end
  end
  if max_holds > 0 and holds + 1 > max_holds then
    return {'USER_LIMIT', remaining, reset, 'live_holds', max_holds, holds}
  end
  if max_seats > 0 then
    current = current + tonumber(redis.call('HGET', KEYS[6], ARGV[2]) or '0')
    if current + count > max_seats then
      return {'USER_LIMIT', remaining, reset, 'seats', max_seats, current}
    end
  end
end

local ttl = tonumber(ARGV[3])
local exp = now + ttl
for _, code in ipairs(chosen) do
  if not redis.call('SET', prefix .. code, ARGV[1], 'NX', 'PX', ttl) then
    return redis.error_reply('best.lua: a chosen seat was taken: ' .. code)
  end
  redis.call('ZADD', KEYS[3], exp, code)
  rows_mark(layout, code, 'hold', exp, KEYS[10])
end
redis.call('HSET', KEYS[4], 'user', ARGV[2], 'exp', exp, 'seats', table.concat(chosen, '\n'),
  'tiers', '', 'taken', now)
redis.call('PEXPIRE', KEYS[4], ttl)
if capped then
  if expired > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
  end
  redis.call('ZADD', KEYS[5], exp, count .. ':' .. ARGV[1])
  redis.call('PEXPIRE', KEYS[5], math.max(exp, latest) - now)
end
local trimmed = redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('EXISTS', KEYS[9]) == 1 then
  redis.call('PUBLISH', string.sub(KEYS[9], 1, -8) .. 'changes',
    cjson.encode({s = chosen, t = {}, at = now, x = exp}))
end
return {'OK', remaining, reset, exp, trimmed, chosen}
