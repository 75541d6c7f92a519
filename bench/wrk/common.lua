-- Shared by the wrk scripts in bench/wrk/ (loaded with dofile from each of them).
-- Gives every wrk thread its own id (for distinct random seeds and user ids) and prints one
-- machine-readable line at the end, which bench/report.py parses:
--   BENCHJSON {"requests":..,"duration_us":..,"p50_us":..,...,"counters":{..}}
-- Per-thread counters that a script keeps in the global table `counts` are summed into
-- "counters" (wrk runs one Lua state per thread; setup() and done() run in the main one).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

counts = {}

function bump(name)
  counts[name] = (counts[name] or 0) + 1
end

function seed_random()
  -- os.time() alone would give both threads the same sequence.
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919 + math.floor((os.clock() * 1e6) % 1000))
  for _ = 1, 10 do math.random() end
end

local function json_escape(s)
  return (tostring(s):gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end))
end

function done(summary, latency, requests)
  local totals = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    if c then
      for k, v in pairs(c) do totals[k] = (totals[k] or 0) + v end
    end
  end
  local parts = {}
  for k, v in pairs(totals) do
    parts[#parts + 1] = string.format('"%s":%d', json_escape(k), v)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d},' ..
    '"counters":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max,
    table.concat(parts, ",")))
end

-- The head of a POST request (request line and headers, Content-Length left out), built once by
-- wrk.format; request() then only appends the length and a body. Keeps the client's CPU per
-- request small and the same for every workload that uses it.
function post_head(path, headers)
  local template = wrk.format("POST", path, headers, "x")
  local head = template:sub(1, #template - 1):gsub("Content%-Length: 1\r\n", "")
  return head:sub(1, #head - 2)
end

function post_request(head, body)
  return head .. "Content-Length: " .. #body .. "\r\n\r\n" .. body
end
