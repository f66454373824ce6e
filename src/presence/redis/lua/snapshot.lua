--[[ snapshot.lua: the tabs of a snapshot part, with the partition's feed position, at once.
KEYS[1]   the partition's change counter (its feed position)
KEYS[2…]  the part's buckets
Returns {position, tabs, tabs, …}: each `tabs` one bucket's member/score pairs (ZRANGE …
WITHSCORES) in one string, member and score and the next member joined by the byte 0xFF, in
the order of KEYS; empty for a bucket without tabs. 0xFF is in no member or score: both are
UTF-8 text (a score's digits, a member's contact id and sid), where that byte never occurs.
One call instead of a transaction of a ZRANGE per bucket: the client sends and parses one
command, not 129; and one string per bucket instead of two per tab: at a million online the
client reads 12 288 strings, not two million.
]]
local concat = table.concat
local out = { redis.call('GET', KEYS[1]) or '0' }
for b = 2, #KEYS do
  out[b] = concat(redis.call('ZRANGE', KEYS[b], 0, -1, 'WITHSCORES'), '\255')
end
return out
