-- Workload (m): manual one-seat holds, each released again: the twin of best.lua for the same
-- house. A connection reserves 1 random seat by code; a successful hold is released by the next
-- request of its thread (pairs per thread, as in hold_confirm.lua); a refused one (409, the seat
-- was held) is followed by another reserve.
-- usage: wrk ... -s bench/wrk/hold_release.lua URL -- EVENT_ID SEATS [CODES_FILE]
-- Counters (summed over threads): held, released, reserve_409, status_<code> for anything else.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local reserve_path, release_path, seats, user
local codes = {}
local headers = { ["Content-Type"] = "application/json" }
local queue = {}

function init(args)
  reserve_path = "/events/" .. args[1] .. "/seats/reserve"
  release_path = "/events/" .. args[1] .. "/seats/release"
  seats = tonumber(args[2])
  -- optional: a file of seat codes, one per line, to pick from instead of S1..S<seats>
  if args[3] then
    for code in io.lines(args[3]) do
      codes[#codes + 1] = code
    end
  end
  user = "manual-" .. tostring(tid)
  seed_random()
end

function request()
  local n = #queue
  if n > 0 then
    local id = queue[n]
    queue[n] = nil
    return wrk.format("POST", release_path, headers,
      '{"userId":"' .. user .. '","holdGroupId":"' .. id .. '"}')
  end
  return wrk.format("POST", reserve_path, headers,
    string.format('{"userId":"%s","seatCodes":["%s"]}', user,
      #codes > 0 and codes[math.random(1, #codes)] or ("S" .. math.random(1, seats))))
end

function response(status, hdrs, body)
  if status == 200 then
    if body:match('"holdGroupId":"([^"]+)"') then
      queue[#queue + 1] = body:match('"holdGroupId":"([^"]+)"')
      bump("held")
    elseif body:find('"released":true', 1, true) then
      bump("released")
    else
      bump("status_200_unparsed")
    end
  elseif status == 409 then
    bump("reserve_409")
  else
    bump("status_" .. status)
  end
end
