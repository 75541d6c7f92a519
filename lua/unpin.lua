-- unpin.lua: clear a confirm's pin after that confirm failed without writing anything, so the
-- owner may release the hold again. Compare-and-delete: a pin set by another confirm attempt of
-- the same hold stays.
--
-- KEYS[1]  {e}:hold:<holdGroupId>
-- ARGV[1]  the pin token that confirm attempt set
--
-- Returns 1 if the pin was removed, 0 otherwise.
if redis.call('HGET', KEYS[1], 'pinned') == ARGV[1] then
  return redis.call('HDEL', KEYS[1], 'pinned')
end
return 0
