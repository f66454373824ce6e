--[[ records.lua: contact records, the activity stream and the feed. The engine prepends it,
after common.lua, to heartbeat.lua, sweep.lua and end.lua.

Record: clientId, name, company, path, title, since (ms), tabs, joined by "\31" (US). In the
first five "\30" (RS) is written "\30" .. "0" and "\31" is written "\30" .. "1", so any value
round-trips. tabs: one entry per tab in the order they opened, joined by " ": "0" .. sid
(visible) or "1" .. sid (hidden); sids are 8-64 of A-Z a-z 0-9 _ - (route schema).

Stream entry fields: type (join|nav|hidden|visible|leave|gap|end), contact, client, sid, path,
title, at (ms); join adds name, company; end adds reason (timeout|leave|idle|withdrawn), name, company; gap
adds from (ms).
Feed message: a JSON array of the changes one script call made, in order, each
{n=position, t=now, k="joined"|"updated", p=presence} or {n=position, t=now, k="left", l={contactId, clientId, at, reason}},
t the call's time (the metrics' diff latency) (short keys on the wire only: feed.ts reads them); the scripts that publish call flush_feed
before they return.
]]
local ESCAPE = { ['\30'] = '\30' .. '0', ['\31'] = '\30' .. '1' }
local UNESCAPE = { ['\30' .. '0'] = '\30', ['\30' .. '1'] = '\31' }

local function escape_field(s)
  if string.find(s, '[\30\31]') then return (string.gsub(s, '[\30\31]', ESCAPE)) end
  return s
end

local function unescape_field(s)
  if string.find(s, '\30', 1, true) then return (string.gsub(s, '\30[01]', UNESCAPE)) end
  return s
end

-- rec = {clientId, name, company, path, title, since (ms), sids = {sid, …} in opening order,
-- hidden = {[sid] = 0 visible | 1 hidden}}
local function decode(raw)
  local f, i = {}, 1
  for k = 1, 6 do
    local j = string.find(raw, '\31', i, true)
    f[k] = string.sub(raw, i, j - 1)
    i = j + 1
  end
  local rec = {
    clientId = unescape_field(f[1]), name = unescape_field(f[2]), company = unescape_field(f[3]),
    path = unescape_field(f[4]), title = unescape_field(f[5]), since = tonumber(f[6]), sids = {}, hidden = {},
  }
  for flag, sid in string.gmatch(string.sub(raw, i), '([01])(%S+)') do
    rec.sids[#rec.sids + 1] = sid
    rec.hidden[sid] = flag == '1' and 1 or 0
  end
  return rec
end

local function encode(rec)
  local tabs = {}
  for k, sid in ipairs(rec.sids) do tabs[k] = rec.hidden[sid] .. sid end
  return escape_field(rec.clientId) .. '\31' .. escape_field(rec.name) .. '\31' .. escape_field(rec.company) .. '\31' .. escape_field(rec.path) .. '\31' .. escape_field(rec.title)
    .. '\31' .. string.format('%d', rec.since) .. '\31' .. table.concat(tabs, ' ')
end

-- Sets a tab's visibility (0 visible, 1 hidden), adding it last when new.
local function set_tab(rec, sid, hidden)
  if rec.hidden[sid] == nil then rec.sids[#rec.sids + 1] = sid end
  rec.hidden[sid] = hidden
end

local function remove_tab(rec, sid)
  rec.hidden[sid] = nil
  for k, s in ipairs(rec.sids) do
    if s == sid then
      table.remove(rec.sids, k)
      return
    end
  end
end

-- known_sid, known_score: a tab whose score the caller has just set, not read again.
local function presence_of(bucket, contact, rec, known_sid, known_score)
  local active, last_seen = false, 0
  for _, sid in ipairs(rec.sids) do
    local is_hidden = rec.hidden[sid] == 1
    if not is_hidden then active = true end
    local score
    if sid == known_sid then score = known_score else score = redis.call('ZSCORE', bucket, tab_member(contact, sid, is_hidden)) end
    if score then
      local seen = tonumber(score) - (is_hidden and IDLE or TIMEOUT)
      if seen > last_seen then last_seen = seen end
    end
  end
  return {
    contactId = contact, clientId = rec.clientId, name = rec.name, company = rec.company, path = rec.path, title = rec.title,
    state = active and 'active' or 'idle', since = rec.since, lastSeen = last_seen, tabs = #rec.sids,
  }
end

-- What a dashboard sees of a contact (its presence_of, lastSeen aside), from the record alone:
-- a change to it is published as `updated` (dashboardView in the memory engine).
local function dashboard_view(rec)
  local state = 'idle'
  for _, sid in ipairs(rec.sids) do
    if rec.hidden[sid] ~= 1 then
      state = 'active'
      break
    end
  end
  return rec.path .. '\n' .. rec.title .. '\n' .. state .. '\n' .. #rec.sids .. '\n' .. rec.name .. '\n' .. rec.company
end

-- The changes of this call, published together by flush_feed when it ends.
local feed = {}

local function publish(kind, body)
  local change = { k = kind }
  if kind == 'left' then change.l = body else change.p = body end
  feed[#feed + 1] = change
end

-- Publishes this call's changes as one message, each numbered in turn: the counter counts
-- changes, so a subscriber still sees a skipped position as a lost change.
local function flush_feed()
  local count = #feed
  if count == 0 then return end
  local last = redis.call('INCRBY', SEQ, count)
  for i, change in ipairs(feed) do
    change.n = last - count + i
    change.t = NOW
  end
  redis.call(PUBLISH_COMMAND, CHANNEL, cjson.encode(feed))
  feed = {}
end

local function append(kind, contact, rec, sid, at, extra)
  local fields = { 'type', kind, 'contact', contact, 'client', rec.clientId, 'sid', sid, 'path', rec.path, 'title', rec.title,
    'at', string.format('%d', at) }
  if extra then
    for i = 1, #extra do fields[#fields + 1] = extra[i] end
  end
  redis.call('XADD', EVENTS, '*', unpack(fields))
end

-- Removes a contact whose last tab is gone: the session ends, dashboards see `left`.
local function end_contact(contact, rec, sid, at, reason)
  redis.call('HDEL', CONTACTS, contact)
  append('end', contact, rec, sid, at, { 'reason', reason, 'name', rec.name, 'company', rec.company })
  publish('left', { contactId = contact, clientId = rec.clientId, at = at, reason = reason })
end
