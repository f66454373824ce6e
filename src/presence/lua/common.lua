--[[ common.lua: shared by every presence script; the engine prepends it to each one.

KEYS[1]  tabs     sorted set  member "contactId|sid" (visible tab) or "contactId|sid|h" (hidden
                              tab), score = ms since the epoch at which the tab is gone
KEYS[2]  records  hash        field contactId -> JSON {c=clientId, n=name, o=company, p=path,
                              t=title, s=since ms, h={sid=0 visible | 1 hidden}}
KEYS[3]  events   stream      activity events for the durable log (fields below)
KEYS[4]  feed seq string      counter: one per published change, for gap detection
ARGV[1]  now                  ms since the epoch (the caller's injected clock)
ARGV[2]  presence timeout     ms a visible tab lives without a heartbeat
ARGV[3]  idle timeout         ms a hidden tab lives
ARGV[4]  feed channel         pub/sub channel of presence changes

Stream entry fields: type (join|nav|hidden|visible|leave|end), contact, client, sid, path,
title, at (ms); join adds name, company; end adds reason (timeout|leave|idle|withdrawn).
Feed message: JSON {n=seq, k="joined"|"updated", p=PRESENCE} or {n=seq, k="left", l={contactId, at, reason}}.
]]
local TABS, RECORDS, EVENTS, SEQ = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local NOW = tonumber(ARGV[1])
local TIMEOUT = tonumber(ARGV[2])
local IDLE = tonumber(ARGV[3])
local CHANNEL = ARGV[4]

local function tab_member(contact, sid, hidden)
  if hidden then return contact .. '|' .. sid .. '|h' end
  return contact .. '|' .. sid
end

local function presence_of(contact, rec)
  local active, tabs, last_seen = false, 0, 0
  for sid, hidden in pairs(rec.h) do
    tabs = tabs + 1
    local is_hidden = hidden == 1
    if not is_hidden then active = true end
    local score = redis.call('ZSCORE', TABS, tab_member(contact, sid, is_hidden))
    if score then
      local seen = tonumber(score) - (is_hidden and IDLE or TIMEOUT)
      if seen > last_seen then last_seen = seen end
    end
  end
  return {
    contactId = contact, clientId = rec.c, name = rec.n, company = rec.o, path = rec.p, title = rec.t,
    state = active and 'active' or 'idle', since = rec.s, lastSeen = last_seen, tabs = tabs,
  }
end

-- What a dashboard sees of a presence, lastSeen aside: a change here is an `updated`.
local function shown(p)
  return p.path .. '\n' .. p.title .. '\n' .. p.state .. '\n' .. p.tabs .. '\n' .. p.name .. '\n' .. p.company
end

local function publish(kind, body)
  local msg = { n = redis.call('INCR', SEQ), k = kind }
  if kind == 'left' then msg.l = body else msg.p = body end
  redis.call('PUBLISH', CHANNEL, cjson.encode(msg))
end

local function append(kind, contact, rec, sid, at, extra)
  local fields = { 'type', kind, 'contact', contact, 'client', rec.c, 'sid', sid, 'path', rec.p, 'title', rec.t,
    'at', string.format('%d', at) }
  if extra then
    for i = 1, #extra do fields[#fields + 1] = extra[i] end
  end
  redis.call('XADD', EVENTS, '*', unpack(fields))
end

-- Removes a contact whose last tab is gone: the session ends, dashboards see `left`.
local function end_contact(contact, rec, sid, at, reason)
  redis.call('HDEL', RECORDS, contact)
  append('end', contact, rec, sid, at, { 'reason', reason })
  publish('left', { contactId = contact, at = at, reason = reason })
end
