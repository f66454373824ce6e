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
ARGV[3 + j]                   the number of beats of group j, for j = 1 … g; negative when
                              every beat of the group is known to be on time (the instance
                              had a beat of each tab applied within the gap: recent-beats.ts)
ARGV[4 + g]  now              the caller's clock (ms) at the latest beat of the call: the beats
                              of one call arrived within a few turns of the event loop
then, per beat in order       the tab's member, "<contact id>|<sid>" (tab_member in common.lua)
Returns the places (1-based, in the call's order) of the beats the full heartbeat script must
decide: unknown tab, hidden tab (its member is "…|h"), or a late beat (heartbeat.lua appends the
`gap` event). Every other beat applied: its tab was there and visible, the beat on time, and
only its expiry moved. Nearly always the list is empty, which costs Redis and the caller less
than a result per beat.
A beat known to be on time is one `ZADD XX GT CH`: it applies when the tab's visible member is
there and its expiry rises; otherwise (no such member, or an expiry set later by an instance
whose clock is ahead) it is judged from the score as any other beat.
The index is left alone when the score rises, as it does unless the clocks of two instances
disagree: the sweeper corrects an early index entry when it comes due.
The expiry goes to ZADD as a string, made once: a number argument of redis.call is formatted
anew on every call, a good part of a beat's cost.
]]
local TIMEOUT, GAP = tonumber(ARGV[1]), tonumber(ARGV[2])
local groups = tonumber(ARGV[3])
local now = tonumber(ARGV[4 + groups])
local expires = now + TIMEOUT
local expiresArg = string.format('%.17g', expires)
local call = redis.call

-- A beat judged from the tab's score: 1 when it applied.
local function judged(due, bucket, member)
  local score = call('ZSCORE', bucket, member)
  if not score then return 0 end
  score = tonumber(score)
  if now - (score - TIMEOUT) > GAP then return 0 end
  call('ZADD', bucket, expiresArg, member)
  if expires < score then call('ZADD', due, 'LT', expiresArg, string.match(bucket, '(%d+)$')) end
  return 1
end

local undecided, u = {}, 0
local k = 0
local a = 5 + groups
local i = 0
for g = 1, groups do
  k = k + 1
  local due = KEYS[k]
  local n = tonumber(ARGV[3 + g])
  local recent = n < 0
  for _ = 1, math.abs(n) do
    k = k + 1
    i = i + 1
    local bucket, member = KEYS[k], ARGV[a]
    a = a + 1
    if not (recent and call('ZADD', bucket, 'XX', 'GT', 'CH', expiresArg, member) == 1) and judged(due, bucket, member) == 0 then
      u = u + 1
      undecided[u] = i
    end
  end
end
return undecided
