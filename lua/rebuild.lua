-- rebuild.lua: load an event's inventory, booked seats, tiers and confirmed units per buyer from
-- Postgres into Redis, atomically. Runs when hold.lua answered NOCACHE (first use, Redis
-- restart, FLUSHALL, eviction, the caches dropped after an outage).
--
-- KEYS[1]  {e}:seats   (always gets the member "", which is never a seat code, so an event of
--                       tiers only has a cache marker too)
-- KEYS[2]  {e}:booked
-- KEYS[3]  {e}:gen     bumped by mark_booked.lua whenever a booked-set change finds no cache
-- KEYS[4]  {e}:sold             HASH userId -> confirmed seats and units
-- KEYS[5]  {e}:sold_by_booking  HASH bookingId -> "<units>:<userId>"
-- KEYS[6..] per tier, two keys: {e}:tier:<code> and {e}:tierholds:<code>, in ARGV order
-- KEYS[last-2] {e}:rowends, KEYS[last-1] {e}:layout (see rows.lua, prepended): rewritten whole
-- KEYS[last]   {e}:held (live holds are marked in the layout's held bits)
-- ARGV[1]  the {e}:gen value read before the Postgres snapshot was taken ("0" when absent)
-- ARGV[2]  number of seat codes that follow (n)
-- ARGV[3]  number of booked seat codes after them (m)
-- ARGV[4]  number of tiers after those (t)
-- ARGV[5]  number of rows after those (r)
-- ARGV[6 .. n+5]            every seat code of the event
-- ARGV[n+6 .. n+m+5]        the booked seat codes
-- ARGV[n+m+6 .. n+m+3t+5]   triples tier code, capacity, units sold
-- ARGV[.. + r]              the rows in creation order, as r:<i> of rows.lua (a plain row
--                           in one line, else a "code\tnumber\ttype\tprice" line per seat, in
--                           number order
-- ARGV[n+m+3t+r+6 ..]       triples bookingId, userId, seats and units: the confirmed bookings
--
-- A tier's live holds (its :holds ZSET) survive a dropped cache as seat holds do; the held total
-- is recomputed from them.
--
-- Returns 1 if it wrote the cache, 0 if another caller had already rebuilt it, -1 if a booking
-- or cancel changed the booked seats after the snapshot was read (the snapshot is stale: the
-- caller takes a new one).
-- The last ARGV (taken off first): the blocked seat codes joined by "\n" ("" for none); they are
-- among the booked codes too (a blocked seat is refused as a booked one is) and are also kept in
-- {e}:blocked, beside {e}:booked, so a refusal can tell them apart.
-- And after it (taken off before it): the sales policy, as set_policy.lua takes it (its
-- version then its fields, joined by "\n"), and the seats' channels (code, channel, ...), for
-- {e}:policy, {e}:policyv and {e}:chan (named after {e}:booked, like {e}:blocked).
-- And first of all (the very last ARGV): the channel parts of the confirmed bookings' tier
-- units (see pools.lua, prepended), "<tier code>\t<bookingId>\t<part>" lines joined by "\n".
local POOLS = table.remove(ARGV)
local CHANNELS = table.remove(ARGV)
local POLICY = table.remove(ARGV)
local BLOCKED = table.remove(ARGV)
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if (redis.call('GET', KEYS[3]) or '0') ~= ARGV[1] then
  return -1
end
local blocked_key = string.sub(KEYS[2], 1, -7) .. 'blocked'
local policy_key = string.sub(KEYS[2], 1, -7) .. 'policy'
local chan_key = string.sub(KEYS[2], 1, -7) .. 'chan'
redis.call('DEL', KEYS[2], KEYS[4], KEYS[5], blocked_key, policy_key, chan_key)
-- Whether the event has a sales policy, also kept as the layout's field `policy` (below), so
-- hold_plain.lua reads it with the rows count in one call.
local has_policy = false
do
  local parts = {}
  for part in string.gmatch(POLICY, '[^\n]+') do
    parts[#parts + 1] = part
  end
  local version = tonumber(parts[1])
  if tonumber(redis.call('GET', policy_key .. 'v') or '-1') < version then
    redis.call('SET', policy_key .. 'v', version)
  end
  if #parts > 1 then
    redis.call('HSET', policy_key, unpack(parts, 2))
    has_policy = true
  end
  local seats = {}
  for part in string.gmatch(CHANNELS, '[^\n]+') do
    seats[#seats + 1] = part
    if #seats >= 4000 then
      redis.call('HSET', chan_key, unpack(seats))
      seats = {}
    end
  end
  if #seats > 0 then
    redis.call('HSET', chan_key, unpack(seats))
  end
end
for code in string.gmatch(BLOCKED, '[^\n]+') do
  redis.call('SADD', blocked_key, code)
end
local n = tonumber(ARGV[2])
local m = tonumber(ARGV[3])
local t = tonumber(ARGV[4])
local r = tonumber(ARGV[5])
local batch = 4000
local function add_range(key, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + batch - 1, last)
    redis.call('SADD', key, unpack(ARGV, i, j))
    i = j + 1
  end
end
redis.call('SADD', KEYS[1], '')
add_range(KEYS[1], 6, n + 5)
add_range(KEYS[2], n + 6, n + m + 5)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local tier_keys = {}
for j = 0, t - 1 do
  local tier, holds = KEYS[6 + 2 * j], KEYS[7 + 2 * j]
  local a = n + m + 6 + 3 * j
  tier_keys[ARGV[a]] = tier
  redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
  local held = 0
  -- The live holds keep their channel parts (and the counts of them are made again).
  local split = redis.call('HEXISTS', tier, 'x') == 1
  local keep, held_by = {}, {}
  for _, member in ipairs(redis.call('ZRANGE', holds, 0, -1)) do
    held = held + tonumber(string.match(member, '^(%d+):'))
    local id = string.match(member, '^%d+:(.*)$')
    local part = split and redis.call('HGET', tier, 'p:' .. id)
    if part then
      keep[#keep + 1] = 'p:' .. id
      keep[#keep + 1] = part
      pools_lib().each(part, function(ch, q)
        held_by[ch] = (held_by[ch] or 0) + q
      end)
    end
  end
  redis.call('DEL', tier)
  redis.call('HSET', tier, 'cap', ARGV[a + 1], 'sold', ARGV[a + 2], 'held', held)
  if #keep > 0 then
    for ch, q in pairs(held_by) do
      keep[#keep + 1] = 'h:' .. ch
      keep[#keep + 1] = q
    end
    keep[#keep + 1] = 'x'
    keep[#keep + 1] = '1'
    redis.call('HSET', tier, unpack(keep))
  end
end
for code, id, part in string.gmatch(POOLS, '([^\t\n]+)\t([^\t\n]+)\t([^\t\n]+)') do
  if tier_keys[code] then
    pools_lib().sell(tier_keys[code], id, part)
  end
end
-- The layout: rows, where each seat is, booked bits from the booked codes above, held bits
-- from the live holds (written in batches: a 100,000-seat house is one pass, no per-seat call).
local layout, held_key = KEYS[#KEYS - 1], KEYS[#KEYS]
local rowends = KEYS[#KEYS - 2]
redis.call('DEL', layout, rowends)
local booked = {}
for i = n + 6, n + m + 5 do
  booked[ARGV[i]] = true
end
local held = {}
local live = redis.call('ZRANGEBYSCORE', held_key, '(' .. now, '+inf', 'WITHSCORES')
for i = 1, #live, 2 do
  held[live[i]] = tonumber(live[i + 1])
end
local fields = {'n', r, 'policy', has_policy and '1' or '0'}
local function flush()
  if #fields > 0 then
    redis.call('HSET', layout, unpack(fields))
    fields = {}
  end
end
local rfirst = n + m + 3 * t + 6
-- Plain rows are found by name (one q: field per row, see rows.lua), unless the name ends in a
-- digit (a code would not split into name and number) or two plain rows share it; the seats of
-- every other row get a p: field each.
local specs, by_name = {}, {}
for i = 0, r - 1 do
  local parsed = row_spec(ARGV[rfirst + i])
  specs[i] = parsed
  if parsed.plain and not string.find(parsed.name, '%d$') then
    by_name[parsed.name] = by_name[parsed.name] == nil and i
  end
end
-- The booked and held seats of rows found by name are placed from their codes, so such a row
-- costs nothing per seat: row i -> {b = booked bits, h = held bits, e = earliest hold end}.
local marked = {}
local function mark_named(code, bits, ends)
  local name, digits = code_parts(code)
  local i = name and by_name[name]
  if not i then
    return
  end
  local spec = specs[i]
  local k = index_in_row(digits, spec.first, spec.first + spec.m - 1)
  if not k then
    return
  end
  local row = marked[i] or {b = '', h = ''}
  marked[i] = row
  row[bits] = bit_set(row[bits], k, true)
  if ends then
    row.e = math.min(row.e or ends, ends)
  end
end
for code in pairs(booked) do
  mark_named(code, 'b')
end
for code, ends in pairs(held) do
  if not booked[code] then
    mark_named(code, 'h', ends)
  end
end
for i = 0, r - 1 do
  local spec = ARGV[rfirst + i]
  fields[#fields + 1] = 'r:' .. i
  fields[#fields + 1] = spec
  local parsed = specs[i]
  local bbits, hbits, ends = '', '', nil
  if parsed.plain and by_name[parsed.name] == i then
    fields[#fields + 1] = 'q:' .. parsed.name
    fields[#fields + 1] = i .. ' ' .. parsed.first .. ' ' .. (parsed.first + parsed.m - 1)
    local row = marked[i]
    if row then
      bbits, hbits, ends = row.b, row.h, row.e
    end
  else
    for k = 0, parsed.m - 1 do
      local code = parsed.code(k)
      fields[#fields + 1] = 'p:' .. code
      fields[#fields + 1] = i .. ' ' .. k
      if booked[code] then
        bbits = bit_set(bbits, k, true)
      elseif held[code] then
        hbits = bit_set(hbits, k, true)
        ends = math.min(ends or held[code], held[code])
      end
    end
  end
  fields[#fields + 1] = 'b:' .. i
  fields[#fields + 1] = bbits
  fields[#fields + 1] = 'h:' .. i
  fields[#fields + 1] = hbits
  if ends then
    fields[#fields + 1] = 'e:' .. i
    fields[#fields + 1] = ends
    redis.call('ZADD', rowends, ends, i)
  end
  if #fields > 4000 then
    flush()
  end
end
flush()
for i = rfirst + r, #ARGV, 3 do
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 2] .. ':' .. ARGV[i + 1])
  redis.call('HINCRBY', KEYS[4], ARGV[i + 1], tonumber(ARGV[i + 2]))
end
return 1
