--[[ beat.lua: the fast path, for a batch of periodic beats from visible tabs, on time. The
batcher (batcher.ts) gathers the beats of a few turns of the event loop into one call. It stands
alone (no common.lua, no records.lua) with the fewest arguments: every definition and argument
costs time, and nearly all heartbeats are of this kind.
The beats come in groups, one per partition: on a cluster a call has one group (its keys lie
in one slot); on one Redis, where keys of any slot may meet in a script, one call carries the
groups of every partition, and costs what one call costs.
KEYS                          per group: the partition's bucket index (due, common.lua), then
                              the tab bucket of each of its beats
ARGV[1]      presence timeout ms a visible tab lives without a heartbeat
ARGV[2]      gap after        ms between two beats beyond which the time between them is not
                              visible time (a sleeping laptop)
ARGV[3]      groups           the number of groups, g
ARGV[3 + j]                   the number of beats of group j, for j = 1 … g
ARGV[4 + g]  now              the caller's clock (ms) at the latest beat of the call: the beats
                              of one call arrived within a few turns of the event loop
then, per beat in order       the tab's member, "<contact id>|<sid>" (tab_member in common.lua)
Returns, for each beat in order, 1 when the tab was there and visible and the beat on time
(only its expiry moved), 0 when the full heartbeat script must decide: unknown tab, hidden tab
(its member is "…|h"), or a late beat (heartbeat.lua appends the `gap` event).
The index is left alone when the score rises, as it does unless the clocks of two instances
disagree: the sweeper corrects an early index entry when it comes due.
]]
local TIMEOUT, GAP = tonumber(ARGV[1]), tonumber(ARGV[2])
local groups = tonumber(ARGV[3])
local now = tonumber(ARGV[4 + groups])
local expires = now + TIMEOUT
local done = {}
local k = 0
local a = 5 + groups
local i = 0
for g = 1, groups do
  k = k + 1
  local due = KEYS[k]
  for _ = 1, tonumber(ARGV[3 + g]) do
    k = k + 1
    i = i + 1
    local bucket = KEYS[k]
    local member = ARGV[a]
    a = a + 1
    local score = redis.call('ZSCORE', bucket, member)
    done[i] = 0
    if score then
      score = tonumber(score)
      if now - (score - TIMEOUT) <= GAP then
        redis.call('ZADD', bucket, expires, member)
        if expires < score then redis.call('ZADD', due, 'LT', expires, string.match(bucket, '(%d+)$')) end
        done[i] = 1
      end
    end
  end
end
return done
