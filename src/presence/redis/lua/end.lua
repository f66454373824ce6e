--[[ end.lua: ends a contact's presence at once (consent withdrawn, erasure).
KEYS[1..5] (KEYS[5]: the contact's bucket) and ARGV[1..5] as in common.lua, then:
ARGV[6]  contact id       ARGV[7]  reason (withdrawn|leave|timeout|idle)
Returns 1 when the contact was online, else 0.
]]
local BUCKET = KEYS[5]
local contact = ARGV[6]
local raw = redis.call('HGET', CONTACTS, contact)
if not raw then return 0 end
local rec = decode(raw)
for _, sid in ipairs(rec.sids) do
  redis.call('ZREM', BUCKET, tab_member(contact, sid, rec.hidden[sid] == 1))
end
end_contact(contact, rec, '', NOW, ARGV[7])
flush_feed()
return 1
