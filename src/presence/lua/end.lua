--[[ end.lua: ends a contact's presence at once (consent withdrawn, erasure).
KEYS and ARGV[1..4] as in common.lua, then:
ARGV[5]  contact id       ARGV[6]  reason (withdrawn|leave|timeout|idle)
Returns 1 when the contact was online, else 0.
]]
local contact = ARGV[5]
local raw = redis.call('HGET', RECORDS, contact)
if not raw then return 0 end
local rec = cjson.decode(raw)
for sid, hidden in pairs(rec.h) do
  redis.call('ZREM', TABS, tab_member(contact, sid, hidden == 1))
end
end_contact(contact, rec, '', NOW, ARGV[6])
return 1
