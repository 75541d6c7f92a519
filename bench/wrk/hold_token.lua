-- Workload (t): workload (a) in token mode. Every request holds 1 random seat of a big event as
-- a random buyer, authenticated by that buyer's JWT (the body names no userId: the token's sub
-- is the buyer).
-- usage: wrk ... -s bench/wrk/hold_token.lua URL -- EVENT_ID SEATS TOKENS_FILE
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local path, seats
local tokens = {}
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  path = "/events/" .. args[1] .. "/seats/reserve"
  seats = tonumber(args[2])
  for line in io.lines(args[3]) do
    tokens[#tokens + 1] = "Bearer " .. line
  end
  seed_random()
end

function request()
  headers["Authorization"] = tokens[math.random(1, #tokens)]
  local body = string.format('{"seatCodes":["S%d"]}', math.random(1, seats))
  return wrk.format("POST", path, headers, body)
end
