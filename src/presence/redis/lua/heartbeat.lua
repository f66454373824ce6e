--[[ heartbeat.lua: applies, in order, a batch of heartbeats that missed the fast path or are
not plain beats. The batcher (batcher.ts) gathers them into one call, as it does the fast path's
beats (beat.lua): per heartbeat that saves a command in ioredis and a script call in Redis.
The heartbeats come in groups, one per partition, as beat.lua's: on a cluster a call has one
group; on one Redis one call carries the groups of every partition. Each group's four common
keys (common.lua) and channel replace the previous group's before its heartbeats are applied,
and its changes are published on its own channel.
KEYS                     per group: its KEYS[1..4] as in common.lua, then the bucket of each of
                         its heartbeats' contacts
ARGV[1..5] as in common.lua (ARGV[4], the channel, is the first group's), then:
ARGV[6]                  gap after (as in beat.lua)
ARGV[7]                  max tabs: most open tabs per contact; a new tab beyond it is refused
ARGV[8]                  groups, g
ARGV[8 + j], j = 1 … g   the number of heartbeats of group j
ARGV[8 + g + j]          the feed channel of group j
then, per heartbeat      now (the caller's clock when it arrived, ms), contact id, sid (tab
                         id), event (beat|nav|visible|hidden|leave), client id, name, company,
                         path, title
Returns, for each heartbeat, joined | updated | left | unchanged | ignored | refused (a new tab
beyond max tabs: nothing is written).
]]
local GAP_AFTER = tonumber(ARGV[6])
local MAX_TABS = tonumber(ARGV[7])

local function apply(BUCKET, NOW, contact, sid, event, client, name, company, path, title)
  local raw = redis.call('HGET', CONTACTS, contact)
  local rec = raw and decode(raw) or nil
  local tab = rec and rec.hidden[sid] -- nil: unknown tab, 0: visible, 1: hidden

  if event == 'leave' or event == 'hidden' then
    if rec == nil or tab == nil then return 'ignored' end
    local before = dashboard_view(rec)
    redis.call('ZREM', BUCKET, tab_member(contact, sid, tab == 1))
    if event == 'leave' then
      remove_tab(rec, sid)
      append('leave', contact, rec, sid, NOW)
      if #rec.sids == 0 then
        end_contact(contact, rec, sid, NOW, 'leave')
        return 'left'
      end
    else
      set_tab(rec, sid, 1)
      redis.call('ZADD', BUCKET, NOW + IDLE, tab_member(contact, sid, true))
      due_at_most(BUCKET, NOW + IDLE)
      append('hidden', contact, rec, sid, NOW)
    end
    redis.call('HSET', CONTACTS, contact, encode(rec))
    if dashboard_view(rec) == before then return 'unchanged' end
    if event == 'hidden' then publish('updated', presence_of(BUCKET, contact, rec, sid, NOW + IDLE))
    else publish('updated', presence_of(BUCKET, contact, rec)) end
    return 'updated'
  end

  if event == 'beat' and tab == 0 then
    -- A visible tab the fast path left to us: a late beat (the time since the last one is a
    -- gap, not visible time), or a tab missing from its bucket. Only the expiry moves.
    local member = tab_member(contact, sid, false)
    local score = redis.call('ZSCORE', BUCKET, member)
    local last = score and tonumber(score) - TIMEOUT
    if last and NOW - last > GAP_AFTER then
      append('gap', contact, rec, sid, NOW, { 'from', string.format('%d', last) })
    end
    redis.call('ZADD', BUCKET, NOW + TIMEOUT, member)
    due_at_most(BUCKET, NOW + TIMEOUT)
    return 'unchanged'
  end

  -- beat from an unknown or hidden tab, nav, visible: the tab is there and visible.
  if tab == nil and rec ~= nil and #rec.sids >= MAX_TABS then return 'refused' end
  local joined = rec == nil
  local before = ''
  if joined then
    rec = { since = NOW, sids = {}, hidden = {} }
  else
    before = dashboard_view(rec)
  end
  rec.clientId, rec.name, rec.company = client, name, company
  if joined or tab == nil or event ~= 'beat' then
    rec.path, rec.title = path, title
  end
  if tab == 1 then redis.call('ZREM', BUCKET, tab_member(contact, sid, true)) end
  set_tab(rec, sid, 0)
  redis.call('ZADD', BUCKET, NOW + TIMEOUT, tab_member(contact, sid, false))
  due_at_most(BUCKET, NOW + TIMEOUT)
  redis.call('HSET', CONTACTS, contact, encode(rec))

  if joined then
    append('join', contact, rec, sid, NOW, { 'name', rec.name, 'company', rec.company })
  elseif tab == nil or event == 'nav' then
    append('nav', contact, rec, sid, NOW)
  else
    append('visible', contact, rec, sid, NOW)
  end

  if joined then
    publish('joined', presence_of(BUCKET, contact, rec, sid, NOW + TIMEOUT))
    return 'joined'
  end
  if dashboard_view(rec) == before then return 'unchanged' end
  publish('updated', presence_of(BUCKET, contact, rec, sid, NOW + TIMEOUT))
  return 'updated'
end

local groups = tonumber(ARGV[8])
local results = {}
local k = 0
local a = 9 + 2 * groups
local i = 0
for g = 1, groups do
  DUE, CONTACTS, EVENTS, SEQ = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  CHANNEL = ARGV[8 + groups + g]
  k = k + 4
  for _ = 1, tonumber(ARGV[8 + g]) do
    k = k + 1
    i = i + 1
    results[i] = apply(KEYS[k], tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5],
      ARGV[a + 6], ARGV[a + 7], ARGV[a + 8])
    a = a + 9
  end
  flush_feed()
end
return results
