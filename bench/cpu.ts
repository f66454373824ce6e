/**
 * CPU per heartbeat at a fixed rate, for judging one change against another: at a rate every
 * server keeps up with, the CPU time the server process (and Redis) spends per request is far
 * steadier on this shared machine than the maximum rate.
 *
 *   node --import tsx bench/cpu.ts [--kinds bare,memory,redis,redis:off] [--contacts 100000]
 *     [--rate 5000 (0: as fast as it goes, 50 connections)] [--seconds 6] [--rounds 3] [--event beat|nav]
 *     [--wrk (the rounds driven by wrk as npm run bench does: 50 connections, contacts in random order)]
 *
 * Prints, per server and round, µs of server CPU per request (and of Redis CPU for redis),
 * then the median of the rounds, and for each server after the first the median of its rounds'
 * ratios to the first's. The servers take turns, in reverse order every other round: a machine
 * whose speed drifts moves the servers of a round together, and none always goes first.
 */
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { REDIS_URL, cleanSite, clientToken, heartbeatPaths, load, log, quantile, redisCpuMs, round, startServer, wrkLoad, writeTokensFile, type BenchServer } from './lib.js'

/** Script calls (EVALSHA) Redis has answered so far. */
async function scriptCalls(client: Redis): Promise<number> {
  return Number(/cmdstat_evalsha:calls=(\d+)/.exec(await client.info('commandstats'))?.[1] ?? 0)
}

const { values } = parseArgs({
  options: {
    kinds: { type: 'string', default: 'bare,memory,redis' },
    contacts: { type: 'string', default: '100000' },
    rate: { type: 'string', default: '5000' },
    seconds: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '3' },
    event: { type: 'string', default: 'beat' },
    wrk: { type: 'boolean', default: false },
  },
})
// kind or kind@DIR: DIR is another checkout (with node_modules) whose server runs beside this one's.
const kinds = values.kinds.split(',')
const contacts = Number(values.contacts)
const rate = Number(values.rate)
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const event = values.event === 'nav' ? 'nav' : 'beat'

// As the heartbeat scenario's servers: no pause between a server's rounds makes a beat late or a contact expire.
const TIMING = { heartbeatIntervalS: 300, presenceTimeoutS: 900 }
const now = Date.now()
const tokens = Array.from({ length: contacts }, (_, j) => clientToken(j, now))
const beats = heartbeatPaths(tokens, 'beat')
const paths = event === 'nav' ? heartbeatPaths(tokens, 'nav') : beats
const tokensFile = values.wrk ? writeTokensFile(tokens) : undefined
const site = `bench-cpu-${process.pid}`
const redis = new Redis(REDIS_URL)
const servers: { kind: string; server: BenchServer; server_us: number[]; redis_us: number[] }[] = []
try {
  for (const [k, kind] of kinds.entries()) {
    log(`starting ${kind}, ${contacts} contacts`)
    // kind[:off][@DIR]: `:off` runs it with metrics and rate limits off (ServerSpec.operations).
    const [named, dir] = kind.split('@') as [string, string | undefined]
    const [name, off] = named.split(':') as ['bare' | 'memory' | 'redis', string | undefined]
    const server = await startServer({ kind: name, site: `${site}-${k}`, online: name === 'bare' ? undefined : contacts, timing: TIMING, ...(off === 'off' ? { operations: false } : {}) }, undefined, dir)
    await load(server.port, beats, { connections: 50, amount: contacts })
    // Under BENCH_PROFILE, the profile starts again here: the warm-up's verifications left out.
    if (process.env.BENCH_PROFILE || process.env.BENCH_GC) server.child.kill('SIGUSR2')
    servers.push({ kind, server, server_us: [], redis_us: [] })
  }
  for (let r = 0; r < rounds; r += 1) {
    for (const entry of r % 2 === 0 ? servers : [...servers].reverse()) {
      const before = await redisCpuMs(redis)
      const callsBefore = await scriptCalls(redis)
      const pid = entry.server.child.pid
      const result = tokensFile !== undefined
        ? await wrkLoad(entry.server.port, tokensFile, { event, connections: 50, durationS: seconds, pid, salt: `r${r}` })
        : await load(entry.server.port, paths, rate > 0 ? { connections: 10, durationS: seconds, rate, pid } : { connections: 50, durationS: seconds, pid })
      const redisUs = ((await redisCpuMs(redis)) - before) * 1000 / result.requests
      const perCall = result.requests / Math.max(1, (await scriptCalls(redis)) - callsBefore)
      entry.server_us.push(result.serverCpuUs ?? Number.NaN)
      entry.redis_us.push(round(redisUs, 1))
      log(`${entry.kind} round ${r + 1}: ${Math.round(result.rps)} req/s, server ${result.serverCpuUs} µs, Redis ${round(redisUs, 1)} µs, p99 ${result.p99} ms, errors ${result.errors}${entry.kind.startsWith('redis') ? `, ${round(perCall, 1)} requests per script call` : ''}`)
    }
  }
  for (const entry of servers) {
    console.log(`${entry.kind.padEnd(7)} server ${quantile(entry.server_us, 0.5)} µs/request (${entry.server_us.join(', ')})${entry.kind.startsWith('redis') ? `, Redis ${quantile(entry.redis_us, 0.5)} µs` : ''}`)
  }
  const first = servers[0]
  if (first !== undefined) {
    for (const entry of servers.slice(1)) {
      const ratios = (pick: (e: typeof entry) => number[]): number => round(quantile(pick(entry).map((value, r) => value / (pick(first)[r] as number)), 0.5), 3)
      console.log(`${entry.kind} / ${first.kind}: median of the rounds' ratios: server ${ratios((e) => e.server_us)}${first.kind.startsWith('redis') && entry.kind.startsWith('redis') ? `, Redis ${ratios((e) => e.redis_us)}` : ''}`)
    }
  }
} finally {
  for (const entry of servers) await entry.server.stop()
  for (const k of kinds.keys()) await cleanSite(`${site}-${k}`)
  if (tokensFile !== undefined) rmSync(dirname(tokensFile), { recursive: true, force: true })
  redis.disconnect()
}
