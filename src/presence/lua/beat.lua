--[[ beat.lua: the fast path of a periodic beat from a visible tab.
KEYS[1..5] (KEYS[5]: the contact's bucket) and ARGV[1..4] as in common.lua, then:
ARGV[5]  contact id       ARGV[6]  sid (tab id)
ARGV[7]  gap after        ms between two beats beyond which the time between them is not
                          visible time (a sleeping laptop): a `gap` event is appended
Returns 1 when the tab was there and visible (only its expiry moved), 0 when the full
heartbeat script must decide (unknown tab, hidden tab: its member is "…|h").
The index (due) is left alone when the score rises, as it does unless the clocks of two
instances disagree: the sweeper corrects an early index entry when it comes due.
]]
local BUCKET = KEYS[5]
local member = tab_member(ARGV[5], ARGV[6], false)
local score = redis.call('ZSCORE', BUCKET, member)
if not score then return 0 end
local expires = NOW + TIMEOUT
redis.call('ZADD', BUCKET, expires, member)
score = tonumber(score)
if expires < score then due_at_most(BUCKET, expires) end
local last = score - TIMEOUT
if NOW - last > tonumber(ARGV[7]) then
  local raw = redis.call('HGET', CONTACTS, ARGV[5])
  if raw then
    append('gap', ARGV[5], decode(raw), ARGV[6], NOW, { 'from', string.format('%d', last) })
  end
end
return 1
