-- Cluster workload: every request holds 1 random seat of one of many events (spread over the
-- shards of a cluster by their hash tags) for a random user.
-- usage: wrk ... -s bench/wrk/hold_events.lua URL -- SEATS EVENT_ID [EVENT_ID ...]
-- Counts answers by status class (2xx, 4xx, 5xx) in the BENCHJSON counters.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local heads, seats = {}, 0

function init(args)
  seats = tonumber(args[1])
  for i = 2, #args do
    heads[#heads + 1] = post_head("/events/" .. args[i] .. "/seats/reserve",
      { ["Content-Type"] = "application/json" })
  end
  seed_random()
end

function request()
  local body = string.format('{"userId":"u%d","seatCodes":["S%d"]}',
    math.random(1, 1000000), math.random(1, seats))
  return post_request(heads[math.random(1, #heads)], body)
end

function response(status)
  bump(string.format("%dxx", math.floor(status / 100)))
end
