-- (gcra.lua, rows.lua, caps.lua, policy.lua and publish.lua are prepended to this script; see
-- scripts.rs.)
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
-- Adjacent: same row, numbers differing by one. Rows come from {e}:layout (see rows.lua): rows
-- whose longest free run is too short are skipped without reading their seats, and a hint per
-- block size skips the rows known to be too full; held bits whose holds may have ended (the
-- row's e:<i> passed) are checked against the seat keys first.
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
-- KEYS[11]  {e}:hist      the history stream: the hold taken is appended there
-- ARGV[1]   holdGroupId          ARGV[2]  userId            ARGV[3]  ttl ms
-- ARGV[4]   max seats per buyer (0 = no cap)                ARGV[5]  max live holds (0 = no cap)
-- ARGV[6]   rate-limit interval us (0 = not here)           ARGV[7]  rate-limit burst
-- ARGV[8]   count   ARGV[9] seat type ("" = any)   ARGV[10] max price in cents (-1 = any)
-- ARGV[11]  the seat key prefix "{e}:seat:"
-- ARGV[12]  "1" to record the hold in KEYS[11], "0" not to (history.enabled = false)
-- and after these (taken off first): the sales policy's keys and arguments, see policy.lua
-- (prepended). A seat is chosen only if the caller may hold it now: an open seat while the
-- event's window is open, a seat of one of the caller's channels while that channel's is.
--
-- Replies (after the rate verdict, as hold.lua): {"OK", remaining, reset, expires_ms, trimmed,
-- {codes}} | {"NOCACHE"} | {"RATE_LIMITED", 0, reset, retry} | {"NO_BLOCK", remaining, reset,
-- available} | {"USER_LIMIT", remaining, reset, cap, max, current} | {"ADMISSION", remaining,
-- reset} | {"NOT_OPEN" / "CLOSED", remaining, reset, ms}: no window the caller may buy in is open
local P = policy_args()
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
local rate_refusal, remaining, reset = hold_rate(KEYS[7], clock)
if rate_refusal then
  return rate_refusal
end
if redis.call('HGET', KEYS[4], 'user') == ARGV[2] then
  local fields = redis.call('HMGET', KEYS[4], 'exp', 'seats')
  local seats = {}
  for code in string.gmatch(fields[2] or '', '[^\n]+') do
    seats[#seats + 1] = code
  end
  return {'OK', remaining, reset, tonumber(fields[1]), 0, seats}
end

-- The sales policy: `gate` says which seats the caller may hold now (nil: any seat).
local F = policy_read(P)
if not policy_admitted(P, F) then
  return {'ADMISSION', remaining, reset}
end
local gate = nil
if F and P.who ~= '*' then
  local s, e = policy_window(F, false)
  local public = policy_state(s, e, now) == 'open'
  local open, any = {}, public
  -- Of the windows not open: the first to open, else the last to have closed.
  local opens, closed = nil, nil
  local function note(a, b)
    local state = policy_state(a, b, now)
    if state == 'not' then
      opens = math.min(opens or a, a)
    elseif state == 'closed' then
      closed = math.max(closed or b, b)
    end
  end
  note(s, e)
  for ch in string.gmatch(P.who, '[^,]+') do
    local cs, ce = policy_window(F, ch)
    if policy_state(cs, ce, now) == 'open' then
      open[ch] = true
      any = true
    else
      note(cs, ce)
    end
  end
  if not any then
    if opens then
      return {'NOT_OPEN', remaining, reset, opens}
    end
    return {'CLOSED', remaining, reset, closed}
  end
  if F.c or not public then
    gate = {public = public, open = open, chan = F.c}
  end
end

local count = tonumber(ARGV[8])
local want_type = ARGV[9]
local max_price = tonumber(ARGV[10])
local prefix = ARGV[11]
local rows = tonumber(redis.call('HGET', layout, 'n'))

local function matches(typ, price)
  return (want_type == '' or typ == want_type) and (max_price < 0 or price <= max_price)
end

-- Runs of free seats, {k, length} (k: the first seat's index in the row, from 0), as s:<i>:
-- the longest run's length, "|", then "k:length,..." (so a scan tells a row too full for a
-- block from the first number, without reading its runs).
local function runs_string(runs)
  local parts, longest = {}, 0
  for _, run in ipairs(runs) do
    parts[#parts + 1] = run[1] .. ':' .. run[2]
    longest = math.max(longest, run[2])
  end
  return longest .. '|' .. table.concat(parts, ',')
end

-- Row i: its spec (rows.lua's row_spec), bits, earliest hold end and runs of free seats. The
-- runs come from s:<i> while it is present and no hold in the row has ended since; otherwise
-- the held bits are checked (a hold's end is its seat's score in {e}:held; a seat whose score
-- has passed or is missing is checked against its key) and the runs are computed and stored.
local seen = {}
local function row_at(i)
  if seen[i] then
    return seen[i]
  end
  local v = redis.call('HMGET', layout, 'r:' .. i, 's:' .. i, 'e:' .. i, 'b:' .. i, 'h:' .. i)
  local row = row_spec(v[1])
  local e, b, h = tonumber(v[3] or '0'), v[4] or '', v[5] or ''
  local runs = {}
  if v[2] and not (e > 0 and e <= now) then
    for k, len in string.gmatch(v[2], '(%d+):(%d+)') do
      runs[#runs + 1] = {tonumber(k), tonumber(len)}
    end
  else
    if e > 0 and e <= now then
      -- A hold marked in this row may have ended.
      local marked = {}
      for k = 0, row.m - 1 do
        if bit_get(h, k) then
          marked[#marked + 1] = k
        end
      end
      local codes = {}
      for j, k in ipairs(marked) do
        codes[j] = row.code(k)
      end
      local scores = #codes > 0 and redis.call('ZMSCORE', KEYS[3], unpack(codes)) or {}
      local fresh, ends = '', nil
      for j, k in ipairs(marked) do
        local until_ms = tonumber(scores[j] or '0')
        if until_ms <= now then
          local left = redis.call('PTTL', prefix .. codes[j])
          until_ms = left > 0 and now + left or 0
        end
        if until_ms > now then
          fresh = bit_set(fresh, k, true)
          ends = math.min(ends or until_ms, until_ms)
        end
      end
      h = fresh
      e = ends or 0
      redis.call('HSET', layout, 'h:' .. i, h)
      if ends then
        redis.call('HSET', layout, 'e:' .. i, ends)
        redis.call('ZADD', KEYS[10], ends, i)
      else
        redis.call('HDEL', layout, 'e:' .. i)
      end
    end
    local start, len = nil, 0
    for k = 0, row.m - 1 do
      local free = not bit_get(b, k) and not bit_get(h, k)
      if free and start and row.num(k) == row.num(k - 1) + 1 then
        len = len + 1
      else
        if start then
          runs[#runs + 1] = {start, len}
        end
        start, len = free and k or nil, free and 1 or 0
      end
    end
    if start then
      runs[#runs + 1] = {start, len}
    end
    redis.call('HSET', layout, 's:' .. i, runs_string(runs))
  end
  row.i, row.e, row.b, row.h, row.runs = i, e, b, h, runs
  row.ok = row.plain and matches(row.type, row.price)
  seen[i] = row
  return row
end

-- The runs of free seats of rows from `from` on: s:<i> and e:<i> only, so a scan past full rows
-- costs one HMGET per batch of rows, not one per row. The batches grow (2, 8, 32, then 64
-- rows): a block found in the first rows reads no more than it needs. A row whose runs are not
-- known that way (s:<i> absent, or a hold in it ended) gets false: row_at reads it whole.
local prefetched = {}
local batch = 2
local function prefetch(from)
  local last = math.min(from + batch - 1, rows - 1)
  batch = math.min(batch * 4, 64)
  local fields = {}
  for i = from, last do
    fields[#fields + 1] = 's:' .. i
    fields[#fields + 1] = 'e:' .. i
  end
  local v = redis.call('HMGET', layout, unpack(fields))
  for i = from, last do
    local s, e = v[2 * (i - from) + 1], tonumber(v[2 * (i - from) + 2] or '0')
    if s and not (e > 0 and e <= now) then
      prefetched[i] = {text = s, longest = tonumber(string.match(s, '^(%d+)|'))}
    else
      prefetched[i] = false
    end
  end
end

-- Row i's runs of free seats, read with its neighbours when they are known without the row.
local function runs_of(i)
  if seen[i] then
    return seen[i].runs
  end
  if prefetched[i] == nil then
    prefetch(i)
  end
  local p = prefetched[i]
  if not p then
    return row_at(i).runs
  end
  if not p.runs then
    p.runs = {}
    for k, len in string.gmatch(p.text, '(%d+):(%d+)') do
      p.runs[#p.runs + 1] = {tonumber(k), tonumber(len)}
    end
  end
  return p.runs
end

-- Whether the caller may hold seat k of a row now (see `gate`); a row's channels are read once.
local function gate_ok(row, k)
  if not gate.chan then
    return gate.public
  end
  if not row.ch then
    local codes = {}
    for j = 0, row.m - 1 do
      codes[j + 1] = row.code(j)
    end
    row.ch = redis.call('HMGET', P.chan_key, unpack(codes))
  end
  local ch = row.ch[k + 1]
  if ch then
    return gate.open[ch] == true
  end
  return gate.public
end

-- Whether seat k of a row matches the type and price limit (and the policy lets the caller
-- hold it).
local function eligible(row, k)
  if gate and not gate_ok(row, k) then
    return false
  end
  if row.plain then
    return row.ok
  end
  return matches(row.types[k + 1], row.prices[k + 1])
end

-- Whether runs of free seats can hold a block of `count`: any run long enough, and with the
-- orphan rule one that the block fills exactly or leaves two or more seats of.
local function fits(runs, strict)
  for _, run in ipairs(runs) do
    local len = run[2]
    if len == count or (len > count and (not strict or len >= count + 2)) then
      return true
    end
  end
  return false
end

-- Whether row i's runs can hold a block (see fits), told from its longest run when that is
-- enough: shorter than the block, or (with the orphan rule) two or more seats longer.
local function row_fits(i, strict)
  if not seen[i] then
    if prefetched[i] == nil then
      prefetch(i)
    end
    local p = prefetched[i]
    local longest = p and p.longest
    if longest then
      if longest < count then
        return false
      end
      if not strict or longest >= count + 2 then
        return true
      end
    end
  end
  return fits(runs_of(i), strict)
end

-- The best block's first seat index in a row, or nil. Inside a run of free seats from k0 of
-- length len, a block from s leaves s - k0 free seats before it and k0 + len - count - s after:
-- the orphan rule refuses a block that leaves exactly one on either side.
local function best_in_row(row, strict)
  if row.plain and not row.ok then
    return nil
  end
  local middle2 = row.num(0) + row.num(row.m - 1)
  local best, best_d
  for _, run in ipairs(row.runs) do
    local k0, len = run[1], run[2]
    for s = k0, k0 + len - count do
      local left, right = s - k0, k0 + len - count - s
      if not (strict and (left == 1 or right == 1)) then
        local ok = true
        if not row.plain or gate then
          for j = s, s + count - 1 do
            if not eligible(row, j) then
              ok = false
              break
            end
          end
        end
        if ok then
          local d = math.abs(row.num(s) + row.num(s + count - 1) - middle2)
          if not best_d or d < best_d then
            best, best_d = s, d
          end
        end
      end
    end
  end
  return best
end

-- The scan, from the hint for this size of block (rows before it had no run of `count` free
-- seats), unless a hold in one of them has ended since (its {e}:rowends entry has passed): then
-- from that row. Rows without a long enough run at the start of the scan move the hint on. A
-- chosen seat is checked against its keys before it is taken; if the bits were wrong (they are
-- kept by the scripts, this is a safety net) they are fixed and the search runs again.
for _, row in ipairs(redis.call('ZRANGEBYSCORE', KEYS[10], '-inf', now)) do
  rows_opened(layout, tonumber(row))
end
redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', now)
local hints = hints_get(layout)
local slot = math.min(count, 16)
local hint = hints[slot]
local chosen, at
for _ = 1, 3 do
  chosen, at = nil, nil
  for pass = 1, 2 do
    local strict = pass == 1
    local moving = strict
    for i = hint, rows - 1 do
      if moving and not row_fits(i, false) then
        hint = i + 1
      else
        moving = false
      end
      if row_fits(i, strict) then
        local row = row_at(i)
        local k = best_in_row(row, strict)
        if k then
          chosen, at = row, k
          break
        end
      end
    end
    if chosen then
      break
    end
  end
  local stale = false
  for j = 0, chosen and count - 1 or -1 do
    local code = chosen.code(at + j)
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
  seen = {}
  prefetched = {}
  chosen = nil
end
hints = hints_get(layout)
if count <= 16 and hint > hints[slot] then
  hints[slot] = hint
  redis.call('HSET', layout, 'hints', table.concat(hints, ','))
end
if not chosen then
  -- Nothing together: how many matching seats are free at all. Every row is read, so the
  -- answer is kept until a seat changes (a sold-out house answers the next ones at once).
  -- (Not kept under a policy gate: what a caller may hold depends on who asks, and when.)
  local filter = want_type .. '\t' .. max_price .. '\t'
  local cached = not gate and redis.call('HGET', layout, 'avail')
  if cached and string.sub(cached, 1, #filter) == filter then
    return {'NO_BLOCK', remaining, reset, tonumber(string.sub(cached, #filter + 1))}
  end
  local available = 0
  local any_seat = not gate and want_type == '' and max_price < 0
  for i = 0, rows - 1 do
    if any_seat then
      -- Without a filter every free seat counts: the runs are enough (read 64 rows at a time).
      for _, run in ipairs(runs_of(i)) do
        available = available + run[2]
      end
    else
      local row = row_at(i)
      for _, run in ipairs(row.runs) do
        if row.plain and not gate then
          available = available + (row.ok and run[2] or 0)
        else
          for k = run[1], run[1] + run[2] - 1 do
            if eligible(row, k) then
              available = available + 1
            end
          end
        end
      end
    end
  end
  if not gate then
    redis.call('HSET', layout, 'avail', filter .. available)
  end
  return {'NO_BLOCK', remaining, reset, available}
end
local codes = {}
for j = 0, count - 1 do
  codes[j + 1] = chosen.code(at + j)
end

-- The buyer's caps (caps.lua), as in hold.lua.
local refusal, caps = caps_check(KEYS[5], KEYS[6], ARGV[2], count, tonumber(ARGV[4]),
  tonumber(ARGV[5]), now)
refusal = refusal or policy_admission_check(P, now)
if refusal then
  return {'USER_LIMIT', remaining, reset, refusal[1], refusal[2], refusal[3]}
end

local exp = now + tonumber(ARGV[3])
-- Integers sent to Redis as strings, formatted once (see hold_plain.lua); ARGV[3] is the TTL.
local exp_s, now_s = string.format('%d', exp), string.format('%d', now)
for _, code in ipairs(codes) do
  if not redis.call('SET', prefix .. code, ARGV[1], 'NX', 'PX', ARGV[3]) then
    return redis.error_reply('best.lua: a chosen seat was taken: ' .. code)
  end
  redis.call('ZADD', KEYS[3], exp_s, code)
end
-- The row: the block's held bits, its run split around the block, the earliest end.
local h, runs = chosen.h, {}
for k = at, at + count - 1 do
  h = bit_set(h, k, true)
end
for _, run in ipairs(chosen.runs) do
  local k0, len = run[1], run[2]
  if at >= k0 and at < k0 + len then
    if at > k0 then
      runs[#runs + 1] = {k0, at - k0}
    end
    if k0 + len > at + count then
      runs[#runs + 1] = {at + count, k0 + len - at - count}
    end
  else
    runs[#runs + 1] = run
  end
end
redis.call('HSET', layout, 'h:' .. chosen.i, h, 's:' .. chosen.i, runs_string(runs))
if chosen.e == 0 or exp < chosen.e then
  redis.call('HSET', layout, 'e:' .. chosen.i, exp_s)
end
redis.call('ZADD', KEYS[10], 'LT', exp_s, chosen.i)
redis.call('HDEL', layout, 'avail')
redis.call('HSET', KEYS[4], 'user', ARGV[2], 'exp', exp_s, 'seats', table.concat(codes, '\n'),
  'tiers', '', 'taken', now_s)
redis.call('PEXPIRE', KEYS[4], ARGV[3])
caps_record(caps, KEYS[5], ARGV[1], count, exp, now)
policy_admission_record(P, KEYS[4], ARGV[1], exp, now)
if ARGV[12] == '1' then
  redis.call('XADD', KEYS[11], '*', 'k', 'H', 'h', ARGV[1], 'a', now_s, 'u', ARGV[2], 'x', exp_s,
    's', table.concat(codes, '\n'), 't', '')
end
local trimmed = redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_s)
publish_change(KEYS[9], function()
  return {s = codes, t = {}, at = now, x = exp}
end)
return {'OK', remaining, reset, exp, trimmed, codes}
