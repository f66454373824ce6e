--[[ beat.lua: the fast path of a periodic beat from a visible tab, on time.
KEYS[1..5] (KEYS[5]: the contact's bucket) and ARGV[1..4] as in common.lua, then:
ARGV[5]  contact id       ARGV[6]  sid (tab id)
ARGV[7]  gap after        ms between two beats beyond which the time between them is not
                          visible time (a sleeping laptop)
Returns 1 when the tab was there and visible and the beat on time (only its expiry moved), 0
when the full heartbeat script must decide: unknown tab, hidden tab (its member is "…|h"), or
a late beat (heartbeat.lua appends the `gap` event).
The index (due) is left alone when the score rises, as it does unless the clocks of two
instances disagree: the sweeper corrects an early index entry when it comes due.
]]
local BUCKET = KEYS[5]
local member = tab_member(ARGV[5], ARGV[6], false)
local score = redis.call('ZSCORE', BUCKET, member)
if not score then return 0 end
score = tonumber(score)
if NOW - (score - TIMEOUT) > tonumber(ARGV[7]) then return 0 end
local expires = NOW + TIMEOUT
redis.call('ZADD', BUCKET, expires, member)
if expires < score then due_at_most(BUCKET, expires) end
return 1
