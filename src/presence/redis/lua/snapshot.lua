--[[ snapshot.lua: the tabs of a snapshot part, with the partition's feed position, at once.
KEYS[1]   the partition's change counter (its feed position)
KEYS[2…]  the part's buckets
Returns {position, tabs, tabs, …}: each `tabs` the member/score pairs of one bucket that has
any (ZRANGE … WITHSCORES), empty buckets left out. One call instead of a transaction of a
ZRANGE per bucket: the reply is the same, the commands to send and parse are not.
]]
local out = { redis.call('GET', KEYS[1]) or '0' }
for b = 2, #KEYS do
  local tabs = redis.call('ZRANGE', KEYS[b], 0, -1, 'WITHSCORES')
  if #tabs > 0 then out[#out + 1] = tabs end
end
return out
