--[[ common.lua: the keys, arguments and helpers the presence scripts share; scripts.ts
prepends it, then records.lua, to each one but beat.lua (the fast path stands alone). The key
names: keys.ts. Every key a call gets belongs to one partition of the site (keys.ts): the
partition's keys share a hash tag, so on a cluster they lie in one slot.

KEYS[1]  due      sorted set  the tab index: member = bucket number n, score at or before the
                              earliest expiry in bucket n; every non-empty bucket is in it. Kept
                              lazily: a score that only rises (a beat) leaves it early, the
                              sweeper visits the bucket then and corrects it
KEYS[2]  contacts hash        field contactId -> record (format: records.lua)
KEYS[3]  events   stream      activity events for the durable log
KEYS[4]  feed seq string      counter: one per published change, for gap detection
KEYS[5…] buckets  sorted sets `cat:{tag}:t:<n>`: member "contactId|sid" (visible tab) or
                              "contactId|sid|h" (hidden tab), score = ms since the epoch at which
                              the tab is gone. n is a hash of the contact id (computed by the
                              engine), so all tabs of a contact share one bucket; a bucket stays
                              small enough for Redis's compact listpack encoding. end gets the
                              contact's bucket, heartbeat one per heartbeat, sweep the due ones
ARGV[1]  now                  ms since the epoch (the caller's injected clock)
ARGV[2]  presence timeout     ms a visible tab lives without a heartbeat
ARGV[3]  idle timeout         ms a hidden tab lives
ARGV[4]  feed channel         pub/sub channel of presence changes (the partition's)
ARGV[5]  publish command      PUBLISH on one Redis, SPUBLISH (a shard channel) on a cluster

The record format, the stream's fields and the feed's messages: records.lua.
]]
local DUE, CONTACTS, EVENTS, SEQ = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local NOW = tonumber(ARGV[1])
local TIMEOUT = tonumber(ARGV[2])
local IDLE = tonumber(ARGV[3])
local CHANNEL = ARGV[4]
local PUBLISH_COMMAND = ARGV[5]

local function tab_member(contact, sid, hidden)
  if hidden then return contact .. '|' .. sid .. '|h' end
  return contact .. '|' .. sid
end

-- The bucket number of a bucket key (its last ":"-separated part).
local function bucket_id(key)
  return string.match(key, '(%d+)$')
end

-- A tab's score went down or in: the index must not be later than it.
local function due_at_most(bucket, score)
  redis.call('ZADD', DUE, 'LT', score, bucket_id(bucket))
end
