-- Workload (c): hold + confirm pairs. A connection sends a reserve of 1 random seat; when it
-- succeeds, its holdGroupId goes into the thread's queue and the next request any connection
-- of that thread sends is the confirm of it (wrk does not expose connections to Lua, so pairs
-- are matched per thread, not per connection; every successful hold is confirmed exactly once).
-- A refused hold (409, the seat was taken) is simply followed by another reserve.
-- usage: wrk ... -s bench/wrk/hold_confirm.lua URL -- EVENT_ID SEATS
-- Counters (summed over threads, printed by done()): held, confirmed, reserve_409,
-- confirm_409, confirm_410, status_<code> for anything else.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local reserve_path, confirm_path, seats, user
local headers = { ["Content-Type"] = "application/json" }
local queue = {}

function init(args)
  reserve_path = "/events/" .. args[1] .. "/seats/reserve"
  confirm_path = "/events/" .. args[1] .. "/seats/confirm"
  seats = tonumber(args[2])
  -- One user per thread, so whichever connection sends the confirm owns the hold.
  user = "pair-" .. tostring(tid)
  seed_random()
end

function request()
  local n = #queue
  if n > 0 then
    local id = queue[n]
    queue[n] = nil
    return wrk.format("POST", confirm_path, headers,
      '{"userId":"' .. user .. '","holdGroupId":"' .. id .. '"}')
  end
  return wrk.format("POST", reserve_path, headers,
    string.format('{"userId":"%s","seatCodes":["S%d"]}', user, math.random(1, seats)))
end

function response(status, hdrs, body)
  if status == 200 then
    local id = body:match('"holdGroupId":"([^"]+)"')
    if id then
      queue[#queue + 1] = id
      bump("held")
    elseif body:find('"success":true', 1, true) then
      bump("confirmed")
    else
      bump("status_200_unparsed")
    end
  elseif status == 409 then
    if body:find("SEATS_UNAVAILABLE", 1, true) then
      bump("reserve_409")
    else
      bump("confirm_409")
    end
  elseif status == 410 then
    bump("confirm_410")
  else
    bump("status_" .. status)
  end
end
