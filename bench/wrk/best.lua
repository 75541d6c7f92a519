-- Workload (ba0 / ba80): best-available holds, each released again. A connection asks for 2-4
-- seats together ({"bestAvailable": {"count": n}}); when it gets them, their holdGroupId goes into
-- the thread's queue and the next request any connection of that thread sends is the release of
-- it (as hold_confirm.lua pairs them: per thread, one user per thread). So the house stays as
-- sold as it was set up (0% or 80%) for the whole run, plus at most a few blocks per connection,
-- instead of filling up in a second and measuring refusals.
-- usage: wrk ... -s bench/wrk/best.lua URL -- EVENT_ID [COUNT]   (COUNT left out: 2-4 at random)
-- Counters (summed over threads): held, released, no_block (409 NO_ADJACENT_SEATS),
-- status_<code> for anything else.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local reserve_path, release_path, user, count
local headers = { ["Content-Type"] = "application/json" }
local queue = {}

function init(args)
  reserve_path = "/events/" .. args[1] .. "/seats/reserve"
  release_path = "/events/" .. args[1] .. "/seats/release"
  user = "best-" .. tostring(tid)
  count = tonumber(args[2])
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
    string.format('{"userId":"%s","bestAvailable":{"count":%d}}', user, count or math.random(2, 4)))
end

function response(status, hdrs, body)
  if status == 200 then
    local id = body:match('"holdGroupId":"([^"]+)"')
    if id then
      queue[#queue + 1] = id
      bump("held")
    elseif body:find('"released":true', 1, true) then
      bump("released")
    else
      bump("status_200_unparsed")
    end
  elseif status == 409 and body:find("NO_ADJACENT_SEATS", 1, true) then
    bump("no_block")
  else
    bump("status_" .. status)
  end
end
