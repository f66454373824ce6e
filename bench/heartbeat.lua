-- wrk script of the heartbeat scenarios: every request is a heartbeat of a contact of a file of
-- pre-minted tokens, with that contact's own tab. The file is in random order and is walked
-- line after line from START, so requests go to the contacts in random order and each contact
-- is sent once per pass: picks drawn independently would leave some contacts unsent for
-- longer than the presence timeout, and their next beat would be a join, not the fast path.
--
--   wrk -t1 -c50 -d8s -s bench/heartbeat.lua http://127.0.0.1:PORT -- FILE EVENT SALT START THREADS
--
-- FILE    one line per contact: `token=<client JWT>&sid=<tab id>` (URL-safe as it is)
-- EVENT   `beat`: the page the contacts were seeded on, so every request is the fast path;
--         `nav`: every request is a page change (see init)
-- SALT    any word, different for every run of `nav` against one server: the pages of a run
--         are new to every contact, so its first nav is a page change too
-- START   the line (from 0) to begin with: where the previous run against the server stopped
-- THREADS wrk's -t: thread i sends lines START + i, START + i + THREADS, …
--
-- At the end one line `wrk-result {json}` on stdout: requests, duration (µs), errors by
-- kind, latency percentiles (µs), and the CPU time of the wrk process itself (user and
-- system, clock ticks), read from /proc/self/stat once its threads are joined.

local threads = 0

function setup(thread)
  thread:set("thread_index", threads)
  threads = threads + 1
end

-- The requests, built once in init: wrk.format per request would be the script's main cost.
-- requests[k] is contact k's beat, or its nav to the first page; navs[k] its nav to the second.
local requests = {}
local navs = {}
local count = 0
local nav = false
-- The next line to send, from 0, and this thread's step.
local position = 0
local stride = 1
-- nav: the page each contact was last sent by this thread (1 or 2).
local last = {}

local function heartbeat(query, page, event)
  return wrk.format("GET", "/cat_heartbeat?" .. query .. "&path=" .. page .. "&title=Support%20tickets&event=" .. event)
end

function init(args)
  local file, event, salt = args[1], args[2] or "beat", args[3] or "0"
  nav = event == "nav"
  stride = tonumber(args[5] or "1")
  position = tonumber(args[4] or "0") + (thread_index or 0)
  -- Each thread has pages of its own: another thread's nav to the same contact leaves it on a
  -- page this thread never sends, so this thread's next nav to it is a change as well.
  local id = tostring(thread_index or 0)
  local first = nav and ("%2Fclients%2Finvoices%2F" .. salt .. "-" .. id) or "%2Fclients%2Ftickets"
  local second = "%2Fclients%2Ftickets%2F" .. salt .. "-" .. id
  for line in io.lines(file) do
    if line ~= "" then
      count = count + 1
      requests[count] = heartbeat(line, first, event)
      if nav then navs[count] = heartbeat(line, second, event) end
    end
  end
  if count == 0 then error("no tokens in " .. tostring(file)) end
end

function request()
  local k = position % count + 1
  position = position + stride
  if not nav then return requests[k] end
  if last[k] == 1 then
    last[k] = 2
    return navs[k]
  end
  last[k] = 1
  return requests[k]
end

local function cpu_ticks()
  local f = io.open("/proc/self/stat", "r")
  if f == nil then return -1, -1 end
  local stat = f:read("*a")
  f:close()
  -- Fields after the command name (which may hold spaces): state is the first, utime the
  -- twelfth, stime the thirteenth (fields 14 and 15 of proc(5)).
  local rest = stat:match("^.*%) (.*)$")
  local fields = {}
  for field in rest:gmatch("%S+") do fields[#fields + 1] = field end
  return tonumber(fields[12]), tonumber(fields[13])
end

function done(summary, latency, requests)
  local e = summary.errors
  local user, system = cpu_ticks()
  io.write(string.format(
    'wrk-result {"requests":%d,"durationUs":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"latencyUs":{"p50":%d,"p90":%d,"p99":%d,"max":%d},"cpuTicks":{"user":%d,"system":%d}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, user, system))
end
