-- Workload (a): every request holds 1 random seat of a big event for a random user.
-- usage: wrk ... -s bench/wrk/hold_random.lua URL -- EVENT_ID SEATS
-- No response() callback, so wrk does not buffer bodies; the status mix comes from the
-- service's /metrics (seatlock_http_requests_total) before/after, taken by bench/run.sh.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local head, seats

function init(args)
  head = post_head("/events/" .. args[1] .. "/seats/reserve", { ["Content-Type"] = "application/json" })
  seats = tonumber(args[2])
  seed_random()
end

function request()
  local body = string.format('{"userId":"u%d","seatCodes":["S%d"]}',
    math.random(1, 1000000), math.random(1, seats))
  return post_request(head, body)
end
