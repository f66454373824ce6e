--[[ beat.lua: the fast path of a periodic beat from a visible tab.
KEYS and ARGV[1..4] as in common.lua, then:
ARGV[5]  contact id       ARGV[6]  sid (tab id)
ARGV[7]  gap after        ms between two beats beyond which the time between them is not
                          visible time (a sleeping laptop): a `gap` event is appended
Returns 1 when the tab was there and visible (only its expiry moved), 0 when the full
heartbeat script must decide (unknown tab, hidden tab: its member is "…|h").
]]
local member = tab_member(ARGV[5], ARGV[6], false)
local score = redis.call('ZSCORE', TABS, member)
if not score then return 0 end
redis.call('ZADD', TABS, NOW + TIMEOUT, member)
local last = tonumber(score) - TIMEOUT
if NOW - last > tonumber(ARGV[7]) then
  local raw = redis.call('HGET', RECORDS, ARGV[5])
  if raw then
    append('gap', ARGV[5], cjson.decode(raw), ARGV[6], NOW, { 'from', string.format('%d', last) })
  end
end
return 1
