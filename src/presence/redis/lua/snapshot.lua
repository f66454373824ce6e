--[[ snapshot.lua: the tabs of a snapshot part, with the partition's feed position, at once.
KEYS[1]   the partition's change counter (its feed position)
KEYS[2…]  the part's buckets
Returns {position, tabs, tabs, …}: each `tabs` the member/score pairs of one bucket, in the
order of KEYS, empty for a bucket without tabs (ZRANGE … WITHSCORES). One call instead of a
transaction of a ZRANGE per bucket: the client sends and parses one command, not 129.
]]
local out = { redis.call('GET', KEYS[1]) or '0' }
for b = 2, #KEYS do
  out[b] = redis.call('ZRANGE', KEYS[b], 0, -1, 'WITHSCORES')
end
return out
