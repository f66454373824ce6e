--[[ ack-delete.lua: an event stream's entries are done with by one consumer group; each is
deleted once no group of the stream still needs it. The activity writers' group and the
webhooks' group read the same streams, each at its own pace.

KEYS[1]: the stream.
ARGV[1]: the group that is done with the entries; ARGV[2..]: their entry ids (ms-seq).

An entry is still needed by another group while it is past that group's last-delivered-id
(not read yet) or pending in it (read, not acknowledged). Returns how many entries were deleted.
]]
local stream = KEYS[1]
local group = ARGV[1]
local ids = {}
for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
redis.call('XACK', stream, group, unpack(ids))

local others = {}
for _, info in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local name, last
  for i = 1, #info, 2 do
    if info[i] == 'name' then name = info[i + 1] elseif info[i] == 'last-delivered-id' then last = info[i + 1] end
  end
  if name ~= group then others[#others + 1] = { name, last } end
end
if #others == 0 then return redis.call('XDEL', stream, unpack(ids)) end

local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function later(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am > bm or (am == bm and as > bs)
end

local done = {}
for _, id in ipairs(ids) do
  local free = true
  for _, other in ipairs(others) do
    if later(id, other[2]) or #redis.call('XPENDING', stream, other[1], id, id, 1) > 0 then
      free = false
      break
    end
  end
  if free then done[#done + 1] = id end
end
if #done == 0 then return 0 end
return redis.call('XDEL', stream, unpack(done))
