/**
 * Redis CPU per beat of the fast-path script alone, without Node's server: seeds TABS visible
 * tabs over the layout's buckets (DEFAULT_PARTITIONS × BUCKETS_PER_PARTITION), then calls the
 * script with calls of BATCH beats of random tabs, as the batcher sends them (one group per
 * partition), and reads Redis's CPU time around each round. Beside src/presence/redis/lua/beat.lua
 * (with beats judged from their tab's score, and with beats an instance knows are on time,
 * recent-beats.ts, the usual case in service) it runs two bounds of what any fast path costs in this layout: `args-only` (the call and its
 * arguments, no command) and `zadd-xx` (one `ZADD XX` per beat, no check of the tab's last
 * beat), and any other script given with --script FILE (same KEYS and ARGV as beat.lua).
 *
 *   node --import tsx bench/beat-script.ts [--tabs 100000] [--batch 48] [--calls 3000] [--rounds 5] [--script FILE …]
 *     [--recent (the scripts of --script get their groups as recent beats, with a negative count)]
 *
 * Prints per script the median µs of Redis CPU per beat and each round's figure.
 */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { BUCKETS_PER_PARTITION, DEFAULT_PARTITIONS } from '../src/presence/redis/keys.js'
import { REDIS_URL, log, quantile, redisCpuMs, round } from './lib.js'

const { values } = parseArgs({
  options: {
    tabs: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '48' },
    calls: { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '5' },
    script: { type: 'string', multiple: true, default: [] },
    recent: { type: 'boolean', default: false },
  },
})
const tabCount = Number(values.tabs)
const batch = Number(values.batch)
const calls = Number(values.calls)
const rounds = Number(values.rounds)
const TIMEOUT_MS = 900_000
const GAP_MS = 600_000

const ARGS_ONLY = `local groups = tonumber(ARGV[3])
local done, n = {}, 0
for g = 1, groups do n = n + tonumber(ARGV[3 + g]) end
for i = 1, n do done[i] = 1 end
return done`
const ZADD_XX = `local groups = tonumber(ARGV[3])
local expires = tonumber(ARGV[4 + groups]) + tonumber(ARGV[1])
local done = {}
local k, a, i = 0, 5 + groups, 0
for g = 1, groups do
  k = k + 1
  for _ = 1, tonumber(ARGV[3 + g]) do
    k, i = k + 1, i + 1
    done[i] = redis.call('ZADD', KEYS[k], 'XX', 'CH', expires, ARGV[a])
    a = a + 1
  end
end
return done`

const BEAT_LUA = readFileSync(new URL('../src/presence/redis/lua/beat.lua', import.meta.url), 'utf8')
// [name, script, whether the groups go as recent (recent-beats.ts: a negative count)]
const scripts: [string, string, boolean?][] = [
  ['beat.lua', BEAT_LUA],
  ['beat.lua, recent beats', BEAT_LUA, true],
  ['args-only', ARGS_ONLY],
  ['zadd-xx', ZADD_XX],
  ...values.script.map((file): [string, string, boolean] => [basename(file), readFileSync(file, 'utf8'), values.recent]),
]

const prefix = `bench-beat-script-${process.pid}`
const partitions = DEFAULT_PARTITIONS
const tabs = Array.from({ length: tabCount }, (_, i) => ({
  partition: i % partitions,
  key: `${prefix}:{p${i % partitions}}:t:${Math.floor(i / partitions) % BUCKETS_PER_PARTITION}`,
  member: `${100_000 + i}|tab${String(i).padStart(12, '0')}`,
}))
const due = (partition: number): string => `${prefix}:{p${partition}}:due`

/** One call's KEYS and ARGV as scripts.ts builds beat.lua's. */
function callArgs(beats: readonly (typeof tabs)[number][], now: number, recent = false): (string | number)[] {
  const groups = new Map<number, (typeof tabs)[number][]>()
  for (const tab of beats) groups.set(tab.partition, [...(groups.get(tab.partition) ?? []), tab])
  const keys: string[] = []
  const args: (string | number)[] = [TIMEOUT_MS, GAP_MS, groups.size]
  for (const [partition, group] of groups) {
    keys.push(due(partition), ...group.map((tab) => tab.key))
    args.push(recent ? -group.length : group.length)
  }
  args.push(now)
  for (const group of groups.values()) args.push(...group.map((tab) => tab.member))
  return [keys.length, ...keys, ...args]
}

async function clean(redis: Redis): Promise<void> {
  for (let cursor = '0'; ;) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
    if (keys.length > 0) await redis.unlink(...keys)
    if (next === '0') return
    cursor = next
  }
}

const redis = new Redis(REDIS_URL)
try {
  const start = Date.now()
  log(`beat-script: seeding ${tabCount} tabs over ${partitions} × ${BUCKETS_PER_PARTITION} buckets`)
  for (let i = 0; i < tabs.length; i += 10_000) {
    const pipeline = redis.pipeline()
    for (const tab of tabs.slice(i, i + 10_000)) pipeline.zadd(tab.key, start + TIMEOUT_MS, tab.member)
    await pipeline.exec()
  }
  const shas = await Promise.all(scripts.map(([, lua]) => redis.script('LOAD', lua) as Promise<string>))
  const perBeat: number[][] = scripts.map(() => [])
  for (let r = 0; r < rounds; r += 1) {
    for (const [s, sha] of shas.entries()) {
      const recent = scripts[s]?.[2] === true
      // Each script's turn later than the last, and each call a millisecond after the one before
      // (as time goes on in service): every beat is on time and raises its tab's expiry.
      const now = start + calls * (r * scripts.length + s + 1)
      const argsOfCalls = Array.from({ length: calls }, (_, c) => callArgs(Array.from({ length: batch }, () => tabs[Math.floor(Math.random() * tabs.length)] as (typeof tabs)[number]), now + c, recent))
      const before = await redisCpuMs(redis)
      // Four calls in flight, as a few instances' batchers would keep Redis busy.
      for (let c = 0; c < argsOfCalls.length; c += 4) await Promise.all(argsOfCalls.slice(c, c + 4).map(([count, ...rest]) => redis.evalsha(sha, count as number, ...rest)))
      perBeat[s]?.push(((await redisCpuMs(redis)) - before) * 1000 / (calls * batch))
    }
  }
  for (const [s, [name]] of scripts.entries()) {
    const figures = perBeat[s] as number[]
    log(`${name}: ${round(quantile(figures, 0.5), 2)} µs of Redis CPU per beat (rounds ${figures.map((f) => round(f, 2)).join(', ')})`)
  }
} finally {
  await clean(redis)
  redis.disconnect()
}
