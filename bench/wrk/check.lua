-- A row's script (bench/costs.sh) run briefly with every response's status counted, to check the
-- row answers what it should (200 or 409) before it is measured. The row's script is named by
-- the environment variable CHECK_SCRIPT; its arguments are passed through.
-- usage: CHECK_SCRIPT=hold_random.lua wrk ... -s bench/wrk/check.lua URL -- ARGS...
dofile(os.getenv("BENCH_WRK_DIR") .. "/" .. os.getenv("CHECK_SCRIPT"))

function response(status)
  bump("status_" .. status)
end
