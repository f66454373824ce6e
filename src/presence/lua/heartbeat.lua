--[[ heartbeat.lua: applies one heartbeat that missed the fast path (or is not a plain beat).
KEYS[1..5] (KEYS[5]: the contact's bucket) and ARGV[1..4] as in common.lua, then:
ARGV[5]  contact id       ARGV[6]  sid (tab id)       ARGV[7]  event: beat|nav|visible|hidden|leave
ARGV[8]  client id        ARGV[9]  name               ARGV[10] company
ARGV[11] path             ARGV[12] title              ARGV[13] gap after (as in beat.lua)
Returns joined | updated | left | unchanged | ignored.
]]
local BUCKET = KEYS[5]
local contact, sid, event = ARGV[5], ARGV[6], ARGV[7]
local raw = redis.call('HGET', CONTACTS, contact)
local rec = raw and decode(raw) or nil
local tab = rec and rec.h[sid] -- nil: unknown tab, 0: visible, 1: hidden

if event == 'leave' or event == 'hidden' then
  if rec == nil or tab == nil then return 'ignored' end
  local before = shown(presence_of(BUCKET, contact, rec))
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
  local p = presence_of(BUCKET, contact, rec)
  if shown(p) == before then return 'unchanged' end
  publish('updated', p)
  return 'updated'
end

if event == 'beat' and tab == 0 then
  -- A visible tab the fast path left to us: a late beat (the time since the last one is a
  -- gap, not visible time), or a tab missing from its bucket. Only the expiry moves.
  local member = tab_member(contact, sid, false)
  local score = redis.call('ZSCORE', BUCKET, member)
  local last = score and tonumber(score) - TIMEOUT
  if last and NOW - last > tonumber(ARGV[13]) then
    append('gap', contact, rec, sid, NOW, { 'from', string.format('%d', last) })
  end
  redis.call('ZADD', BUCKET, NOW + TIMEOUT, member)
  due_at_most(BUCKET, NOW + TIMEOUT)
  return 'unchanged'
end

-- beat from an unknown or hidden tab, nav, visible: the tab is there and visible.
local joined = rec == nil
local before = ''
if joined then
  rec = { s = NOW, sids = {}, h = {} }
else
  before = shown(presence_of(BUCKET, contact, rec))
end
rec.c, rec.n, rec.o = ARGV[8], ARGV[9], ARGV[10]
if joined or tab == nil or event ~= 'beat' then
  rec.p, rec.t = ARGV[11], ARGV[12]
end
if tab == 1 then redis.call('ZREM', BUCKET, tab_member(contact, sid, true)) end
set_tab(rec, sid, 0)
redis.call('ZADD', BUCKET, NOW + TIMEOUT, tab_member(contact, sid, false))
due_at_most(BUCKET, NOW + TIMEOUT)
redis.call('HSET', CONTACTS, contact, encode(rec))

if joined then
  append('join', contact, rec, sid, NOW, { 'name', rec.n, 'company', rec.o })
elseif tab == nil or event == 'nav' then
  append('nav', contact, rec, sid, NOW)
else
  append('visible', contact, rec, sid, NOW)
end

local p = presence_of(BUCKET, contact, rec)
if joined then
  publish('joined', p)
  return 'joined'
end
if shown(p) == before then return 'unchanged' end
publish('updated', p)
return 'updated'
