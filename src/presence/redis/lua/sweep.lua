--[[ sweep.lua: claims expired tabs and emits what follows from each, exactly once.
Every instance runs it; scripts run one at a time, so a tab removed here is not seen by the
next caller, and each leave is published by the call that removed it.
KEYS[1..4] as in common.lua, KEYS[5…]: buckets the caller found due (ZRANGEBYSCORE due -inf
now); each is checked again here, another sweeper may have been first.
ARGV[1..5] as in common.lua, then:
ARGV[6]  limit            most tabs removed in one call (bounds the time Redis is busy)
Returns the number of tabs removed; the limit reached means there may be more.
]]
local limit = tonumber(ARGV[6])
local removed = 0
for b = 5, #KEYS do
  if removed >= limit then break end
  local bucket = KEYS[b]
  local id = bucket_id(bucket)
  local due = redis.call('ZSCORE', DUE, id)
  if due and tonumber(due) <= NOW then
    local expired = redis.call('ZRANGEBYSCORE', bucket, '-inf', NOW, 'WITHSCORES', 'LIMIT', 0, limit - removed)
    for i = 1, #expired, 2 do
      local member, score = expired[i], tonumber(expired[i + 1])
      redis.call('ZREM', bucket, member)
      removed = removed + 1
      local hidden = string.sub(member, -2) == '|h'
      local rest = hidden and string.sub(member, 1, -3) or member
      local contact, sid = string.match(rest, '^(.*)|([^|]*)$')
      local raw = contact and redis.call('HGET', CONTACTS, contact)
      if raw then
        local rec = decode(raw)
        if rec.hidden[sid] ~= nil then
          remove_tab(rec, sid)
          local at = score - (hidden and IDLE or TIMEOUT)
          if #rec.sids == 0 then
            end_contact(contact, rec, sid, at, hidden and 'idle' or 'timeout')
          else
            redis.call('HSET', CONTACTS, contact, encode(rec))
            append('leave', contact, rec, sid, at)
            publish('updated', presence_of(bucket, contact, rec))
          end
        end
      end
    end
    -- The index entry becomes the bucket's true earliest expiry (still due if the limit cut it short).
    local first = redis.call('ZRANGE', bucket, 0, 0, 'WITHSCORES')
    if first[1] then
      redis.call('ZADD', DUE, first[2], id)
    else
      redis.call('ZREM', DUE, id)
    end
  end
end
flush_feed()
return removed
