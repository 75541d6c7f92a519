-- history.lua: read an event's history stream after a position, with the Redis clock of the
-- same instant (the history may expire a hold by that clock only if no entry after the read
-- could have moved its end).
--
-- KEYS[1]  {e}:hist   STREAM of what the hold scripts changed (see src/store/redis/history.rs)
-- ARGV[1]  the id of the last entry already copied ("0-0" before the first)
-- ARGV[2]  most entries to read
--
-- Returns {seconds, microseconds, entries}: TIME, and XRANGE's reply after ARGV[1].
local t = redis.call('TIME')
return {t[1], t[2], redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])}
