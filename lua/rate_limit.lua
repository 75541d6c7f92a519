-- rate_limit.lua (after gcra.lua): one request against a caller's limit, shared by every
-- seatlock instance.
--
-- KEYS[1]  rate:{<scope>:<identity>}
-- ARGV[1]  emission interval in microseconds (1e6 / requests per second)
-- ARGV[2]  burst: requests allowed at once
--
-- Returns {allowed (1|0), remaining, retry_after_us, reset_us} (see gcra.lua).
local allowed, remaining, retry, reset = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now_us())
return {allowed, remaining, retry, reset}
