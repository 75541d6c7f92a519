-- rows.lua: the per-row availability of an event's seat layout, kept by every script that
-- changes a seat (prepended to hold.lua, best.lua, settle.lua, mark_booked.lua and rebuild.lua),
-- so that best.lua finds free blocks without reading every seat of a big house.
--
-- The layout is one HASH, {e}:layout (written by rebuild.lua from Postgres):
--   n        number of rows (0 for an event whose seats have no rows)
--   policy   "1" while the event has a sales policy, "0" while it has none (rebuild.lua,
--            set_policy.lua); absent while the inventory is not cached (a dropped cache, a policy
--            changed meanwhile) until the next rebuild; read by hold_plain.lua with n
--   r:<i>    row i's seats in number order, either "code\tnumber\ttype\tprice_cents" lines, or
--            for a plain row (numbers first..last without a gap, codes <name><number>, one type
--            and price) the one line "=\tname\tfirst\tlast\ttype\tprice_cents"
--   b:<i>    booked bits of row i (bit k = the row's k-th seat is sold)
--   h:<i>    held bits of row i (bit k = held when last seen; a hold that ended since is found
--            by best.lua when the row's e:<i> has passed, and cleared then)
--   e:<i>    the earliest end (ms) of a hold marked in h:<i>, or absent
--   q:<name> "<i> <first> <last>": where the seats of a plain row are, for a plain row whose name
--            does not end in a digit and is no other plain row's name (its seat <name><number> is
--            seat number - first of row i: one field per row, not per seat)
--   p:<code> "<i> <k>": where a seat of any other row is
--   s:<i>    row i's runs of adjacent free seats as "k:length,..." (k: the run's first seat, from
--            0), exact while present: every change of a seat of the row deletes it (best.lua
--            writes it anew after holding a block), and it is not trusted once e:<i> has passed
--   avail    the last "type\tmax price\tcount" of matching free seats best.lua counted for a
--            NO_BLOCK answer; any change of any seat deletes it
--   hints    "h1,h2,...,h16": for a block of c seats (c > 16 uses h16), rows before hc had no run
--            of c free seats when last read; a seat coming free in row i lowers every hint to i
-- and a ZSET {e}:rowends, row index -> the earliest end (ms) of a hold marked in it: a row whose
-- entry has passed may have room again, so best.lua moves the hints back to it.
-- Bits are strings of bytes (bit k of byte floor(k/8)+1), short: a 100-seat row is 13 bytes.

local function bit_get(s, k)
  local byte = string.byte(s or '', math.floor(k / 8) + 1) or 0
  return bit.band(byte, bit.lshift(1, k % 8)) ~= 0
end

local function bit_set(s, k, on)
  s = s or ''
  local at = math.floor(k / 8) + 1
  if #s < at then
    s = s .. string.rep('\0', at - #s)
  end
  local byte = string.byte(s, at)
  local mask = bit.lshift(1, k % 8)
  byte = on and bit.bor(byte, mask) or bit.band(byte, bit.bnot(mask))
  return string.sub(s, 1, at - 1) .. string.char(byte) .. string.sub(s, at + 1)
end

-- A row's spec parsed: {m = seats, code(k), num(k), plain = true, name, first, type, price} for
-- a plain row (nothing per seat is built), else {m, codes, nums, types, prices}.
local function row_spec(spec)
  spec = spec or ''
  if string.sub(spec, 1, 2) == '=\t' then
    local name, first, last, typ, price =
      string.match(spec, '^=\t([^\t]+)\t(%d+)\t(%d+)\t([^\t]*)\t(%-?%d+)$')
    first = tonumber(first)
    return {
      plain = true, m = tonumber(last) - first + 1, name = name, first = first, type = typ,
      price = tonumber(price),
      code = function(k) return name .. (first + k) end,
      num = function(k) return first + k end,
    }
  end
  local codes, nums, types, prices = {}, {}, {}, {}
  for code, num, typ, price in string.gmatch(spec, '([^\t\n]+)\t(%d+)\t([^\t\n]*)\t(%-?%d+)') do
    codes[#codes + 1] = code
    nums[#nums + 1] = tonumber(num)
    types[#types + 1] = typ
    prices[#prices + 1] = tonumber(price)
  end
  return {
    m = #codes, codes = codes, nums = nums, types = types, prices = prices,
    code = function(k) return codes[k + 1] end,
    num = function(k) return nums[k + 1] end,
  }
end

-- The hints, as a table of 16 row indexes.
local function hints_get(layout)
  local hints = {}
  for h in string.gmatch(redis.call('HGET', layout, 'hints') or '', '%d+') do
    hints[#hints + 1] = tonumber(h)
  end
  for c = #hints + 1, 16 do
    hints[c] = 0
  end
  return hints
end

-- Row i may have longer free runs than last read (a seat came free, or a hold in it ended): it is
-- read again, and no hint stays past it.
local function rows_opened(layout, i)
  redis.call('HDEL', layout, 's:' .. i, 'avail')
  local hints = hints_get(layout)
  local lowered = false
  for c = 1, 16 do
    if hints[c] > i then
      hints[c] = i
      lowered = true
    end
  end
  if lowered then
    redis.call('HSET', layout, 'hints', table.concat(hints, ','))
  end
end

-- A seat code split as a plain row would build it, <name><number>: the name (the code without
-- its trailing digits) and those digits, or nil when it does not end in a digit.
local function code_parts(code)
  local name, digits = string.match(code, '^(.-)(%d+)$')
  if not name or name == '' then
    return nil
  end
  return name, digits
end

-- The index in a plain row numbered first..last of the seat whose code ended in `digits`, or nil
-- when the digits are not one of its numbers as the row writes them (no leading zero).
local function index_in_row(digits, first, last)
  local number = tonumber(digits)
  if tostring(number) == digits and number >= first and number <= last then
    return number - first
  end
  return nil
end

-- Where a seat is in the layout: its row i and its index k in the row, or nil for a seat without
-- a row. One read: the seat's own p: field and the q: field of the name its code would have in a
-- plain row; the q: answer counts only if the code is exactly that name and a number of the row
-- (codes are unique in an event, so it is that seat).
local function seat_place(layout, code)
  local name, digits = code_parts(code)
  if not name then
    local where = redis.call('HGET', layout, 'p:' .. code)
    if not where then
      return nil
    end
    local i, k = string.match(where, '^(%d+) (%d+)$')
    return i, tonumber(k)
  end
  local got = redis.call('HMGET', layout, 'p:' .. code, 'q:' .. name)
  if got[1] then
    local i, k = string.match(got[1], '^(%d+) (%d+)$')
    return i, tonumber(k)
  end
  if got[2] then
    local i, first, last = string.match(got[2], '^(%d+) (%d+) (%d+)$')
    local k = index_in_row(digits, tonumber(first), tonumber(last))
    if k then
      return i, k
    end
  end
  return nil
end

-- Marks a seat's change in its row: 'hold' (until `ends` ms; `rowends` is the {e}:rowends key),
-- 'free' (a hold ended), 'book' (sold: no longer held), 'unbook' (a sale cancelled). Seats
-- without a row are left alone.
local function rows_mark(layout, code, how, ends, rowends)
  local i, k = seat_place(layout, code)
  if not i then
    return
  end
  redis.call('HDEL', layout, 's:' .. i, 'avail')
  if how == 'hold' then
    redis.call('HSET', layout, 'h:' .. i, bit_set(redis.call('HGET', layout, 'h:' .. i), k, true))
    local e = tonumber(redis.call('HGET', layout, 'e:' .. i) or '0')
    if e == 0 or ends < e then
      redis.call('HSET', layout, 'e:' .. i, ends)
    end
    redis.call('ZADD', rowends, 'LT', ends, i)
    return
  end
  redis.call('HSET', layout, 'h:' .. i, bit_set(redis.call('HGET', layout, 'h:' .. i), k, false))
  if how == 'book' or how == 'unbook' then
    redis.call('HSET', layout, 'b:' .. i, bit_set(redis.call('HGET', layout, 'b:' .. i), k, how == 'book'))
  end
  if how ~= 'book' then
    rows_opened(layout, tonumber(i))
  end
end
