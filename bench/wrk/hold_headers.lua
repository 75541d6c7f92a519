-- Cost table rows with credentials (bench/costs.sh): workload (a) with each request's headers
-- taken at random from a file, one request's headers per line, separated by tabs
-- ("Authorization: Bearer …<TAB>Seatlock-Admission: …"). Each line's request head is built once.
-- usage: wrk ... -s bench/wrk/hold_headers.lua URL -- EVENT_ID SEATS HEADERS_FILE WITH_USER
-- WITH_USER 1: the body names a random buyer (a service key acts for it); 0: the token is the
-- buyer.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local heads = {}
local seats, with_user

function init(args)
  local path = "/events/" .. args[1] .. "/seats/reserve"
  for line in io.lines(args[3]) do
    local headers = { ["Content-Type"] = "application/json" }
    for field in string.gmatch(line, "[^\t]+") do
      local name, value = string.match(field, "^([^:]+):%s*(.*)$")
      headers[name] = value
    end
    heads[#heads + 1] = post_head(path, headers)
  end
  seats = tonumber(args[2])
  with_user = args[4] == "1"
  seed_random()
end

function request()
  local body
  if with_user then
    body = string.format('{"userId":"u%d","seatCodes":["S%d"]}', math.random(1, 1000000),
      math.random(1, seats))
  else
    body = string.format('{"seatCodes":["S%d"]}', math.random(1, seats))
  end
  return post_request(heads[math.random(1, #heads)], body)
end
