-- Reference floor: GET /healthz, i.e. seatlock's HTTP stack (axum, middleware, metrics) with no
-- Redis or Postgres call. Static request, no response() callback.
-- usage: wrk ... -s bench/wrk/healthz.lua URL
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

function init(args)
  wrk.method = "GET"
  wrk.path = "/healthz"
end
