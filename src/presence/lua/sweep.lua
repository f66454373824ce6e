--[[ sweep.lua: claims expired tabs and emits what follows from each, exactly once.
Every instance runs it; scripts run one at a time, so a tab removed here is not seen by the
next caller, and each leave is published by the call that removed it.
KEYS and ARGV[1..4] as in common.lua, then:
ARGV[5]  limit            most tabs handled in one call (bounds the time Redis is busy)
Returns the number of tabs removed.
]]
local expired = redis.call('ZRANGEBYSCORE', TABS, '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[5]), 'WITHSCORES')
local removed = 0
for i = 1, #expired, 2 do
  local member, score = expired[i], tonumber(expired[i + 1])
  redis.call('ZREM', TABS, member)
  removed = removed + 1
  local hidden = string.sub(member, -2) == '|h'
  local rest = hidden and string.sub(member, 1, -3) or member
  local contact, sid = string.match(rest, '^(.*)|([^|]*)$')
  local raw = contact and redis.call('HGET', RECORDS, contact)
  if raw then
    local rec = cjson.decode(raw)
    if rec.h[sid] ~= nil then
      rec.h[sid] = nil
      local at = score - (hidden and IDLE or TIMEOUT)
      if next(rec.h) == nil then
        end_contact(contact, rec, sid, at, hidden and 'idle' or 'timeout')
      else
        redis.call('HSET', RECORDS, contact, cjson.encode(rec))
        append('leave', contact, rec, sid, at)
        publish('updated', presence_of(contact, rec))
      end
    end
  end
end
return removed
