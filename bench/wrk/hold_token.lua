-- Workload (t): workload (a) in token mode. Every request holds 1 random seat of a big event as
-- a random buyer, authenticated by that buyer's JWT (the body names no userId: the token's sub
-- is the buyer). Each buyer's request head (with its Authorization header) is built once.
-- usage: wrk ... -s bench/wrk/hold_token.lua URL -- EVENT_ID SEATS TOKENS_FILE
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local heads = {}
local seats

function init(args)
  local path = "/events/" .. args[1] .. "/seats/reserve"
  for token in io.lines(args[3]) do
    heads[#heads + 1] = post_head(path, {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. token,
    })
  end
  seats = tonumber(args[2])
  seed_random()
end

function request()
  local body = string.format('{"seatCodes":["S%d"]}', math.random(1, seats))
  return post_request(heads[math.random(1, #heads)], body)
end
