-- Workload (g): every request holds 1 unit of the general-admission tier GA of an event for a
-- random user: the tier twin of workload (a) (1 random seat), for the tier-holds / seat-holds
-- ratio. The tier's capacity is far above what a run can hold, so every hold is taken (expired
-- holds are trimmed by later holds, as in a real sale).
-- usage: wrk ... -s bench/wrk/hold_tier.lua URL -- EVENT_ID
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local head

function init(args)
  head = post_head("/events/" .. args[1] .. "/seats/reserve", { ["Content-Type"] = "application/json" })
  seed_random()
end

function request()
  local body = string.format('{"userId":"u%d","tiers":[{"code":"GA","quantity":1}]}',
    math.random(1, 1000000))
  return post_request(head, body)
end
