-- rows.lua: the per-row availability of an event's seat layout, kept by every script that
-- changes a seat (prepended to hold.lua, best.lua, settle.lua and mark_booked.lua), so that
-- best.lua finds free blocks without reading every seat of a big house.
--
-- The layout is one HASH, {e}:layout (written by rebuild.lua from Postgres):
--   n        number of rows (0 for an event whose seats have no rows)
--   r:<i>    row i's seats in number order: "code\tnumber\ttype\tprice_cents" lines
--   b:<i>    booked bits of row i (bit k = the row's k-th seat is sold)
--   h:<i>    held bits of row i (bit k = held when last seen; a hold that ended since is found
--            by best.lua when the row's e:<i> has passed, and cleared then)
--   e:<i>    the earliest end (ms) of a hold marked in h:<i>, or absent
--   p:<code> "<i> <k>": where a seat is
--   f        first row that may have a free seat (rows before it were full when last seen)
-- and a ZSET {e}:rowends, row index -> the earliest end (ms) of a hold marked in it: a row whose
-- entry has passed may have room again, so best.lua moves the hint back to it.
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

-- Marks a seat's change in its row: 'hold' (until `ends` ms; `rowends` is the {e}:rowends key),
-- 'free' (a hold ended), 'book' (sold: no longer held), 'unbook' (a sale cancelled). Seats
-- without a row are left alone.
local function rows_mark(layout, code, how, ends, rowends)
  local where = redis.call('HGET', layout, 'p:' .. code)
  if not where then
    return
  end
  local i, k = string.match(where, '^(%d+) (%d+)$')
  k = tonumber(k)
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
    -- A seat came free: the rows before the hint may have room again.
    local f = tonumber(redis.call('HGET', layout, 'f') or '0')
    if tonumber(i) < f then
      redis.call('HSET', layout, 'f', i)
    end
  end
end
