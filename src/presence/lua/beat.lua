--[[ beat.lua: the fast path of a periodic beat from a visible tab, on time. It stands alone (no
common.lua, no records.lua) with the fewest arguments: every definition and argument costs time
on each of the heartbeats, which are nearly all of this kind.
KEYS[1]  due              the bucket index (common.lua)
KEYS[2]  bucket           the contact's tab bucket (common.lua)
ARGV[1]  now              ms since the epoch (the caller's injected clock)
ARGV[2]  presence timeout ms a visible tab lives without a heartbeat
ARGV[3]  contact id       ARGV[4]  sid (tab id)
ARGV[5]  gap after        ms between two beats beyond which the time between them is not
                          visible time (a sleeping laptop)
Returns 1 when the tab was there and visible and the beat on time (only its expiry moved), 0
when the full heartbeat script must decide: unknown tab, hidden tab (its member is "…|h"), or
a late beat (heartbeat.lua appends the `gap` event).
The index is left alone when the score rises, as it does unless the clocks of two instances
disagree: the sweeper corrects an early index entry when it comes due.
]]
local DUE, BUCKET = KEYS[1], KEYS[2]
local NOW, TIMEOUT = tonumber(ARGV[1]), tonumber(ARGV[2])
local member = ARGV[3] .. '|' .. ARGV[4] -- tab_member(contact, sid, false) in common.lua
local score = redis.call('ZSCORE', BUCKET, member)
if not score then return 0 end
score = tonumber(score)
if NOW - (score - TIMEOUT) > tonumber(ARGV[5]) then return 0 end
local expires = NOW + TIMEOUT
redis.call('ZADD', BUCKET, expires, member)
if expires < score then redis.call('ZADD', DUE, 'LT', expires, string.match(BUCKET, '(%d+)$')) end
return 1
