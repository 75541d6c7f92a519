-- Workload (b): hot-seat storm. Every request asks for the same two seats (S1, S2) of a small
-- event, so after the first one wins (per TTL) nearly all answers are 409 SEATS_UNAVAILABLE.
-- usage: wrk ... -s bench/wrk/storm.lua URL -- EVENT_ID
-- The request is static (no request() function), so wrk builds it once: the cheapest client.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

function init(args)
  wrk.method = "POST"
  wrk.path = "/events/" .. args[1] .. "/seats/reserve"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"userId":"storm","seatCodes":["S1","S2"]}'
end
