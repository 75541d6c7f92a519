-- Cost table row "+ rows" (bench/costs.sh): every request holds 1 random seat of an event of
-- ROWS rows of 100 named R<i>- (seat codes R<i>-<n>) for a random user.
-- usage: wrk ... -s bench/wrk/hold_rows.lua URL -- EVENT_ID ROWS
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local head, rows

function init(args)
  head = post_head("/events/" .. args[1] .. "/seats/reserve", { ["Content-Type"] = "application/json" })
  rows = tonumber(args[2])
  seed_random()
end

function request()
  local body = string.format('{"userId":"u%d","seatCodes":["R%d-%d"]}',
    math.random(1, 1000000), math.random(1, rows), math.random(1, 100))
  return post_request(head, body)
end
