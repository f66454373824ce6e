--[[ beat.lua: the fast path, for a batch of periodic beats from visible tabs, on time. The
batcher (batcher.ts) gathers the beats of a few turns of the event loop into one call. It stands
alone (no common.lua, no records.lua) with the fewest arguments: every definition and argument
costs time, and nearly all heartbeats are of this kind.
KEYS[1]      due              the bucket index (common.lua)
KEYS[1 + i]  bucket           the tab bucket of beat i (common.lua)
ARGV[1]      presence timeout ms a visible tab lives without a heartbeat
ARGV[2]      gap after        ms between two beats beyond which the time between them is not
                              visible time (a sleeping laptop)
ARGV[3i .. 3i + 2]            beat i: now (the caller's clock, ms), contact id, sid
Returns, for each beat, 1 when the tab was there and visible and the beat on time (only its
expiry moved), 0 when the full heartbeat script must decide: unknown tab, hidden tab (its
member is "…|h"), or a late beat (heartbeat.lua appends the `gap` event).
The index is left alone when the score rises, as it does unless the clocks of two instances
disagree: the sweeper corrects an early index entry when it comes due.
]]
local DUE = KEYS[1]
local TIMEOUT, GAP = tonumber(ARGV[1]), tonumber(ARGV[2])
local done = {}
for i = 1, #KEYS - 1 do
  local bucket = KEYS[1 + i]
  local now = tonumber(ARGV[3 * i])
  local member = ARGV[3 * i + 1] .. '|' .. ARGV[3 * i + 2] -- tab_member(contact, sid, false) in common.lua
  local score = redis.call('ZSCORE', bucket, member)
  done[i] = 0
  if score then
    score = tonumber(score)
    if now - (score - TIMEOUT) <= GAP then
      local expires = now + TIMEOUT
      redis.call('ZADD', bucket, expires, member)
      if expires < score then redis.call('ZADD', DUE, 'LT', expires, string.match(bucket, '(%d+)$')) end
      done[i] = 1
    end
  end
end
return done
