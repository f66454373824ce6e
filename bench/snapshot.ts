/**
 * Snapshot timing alone, for judging one change against another: each server (Redis engine,
 * CONTACTS online) takes turns sending one dashboard its snapshot, `rounds` times.
 *
 *   node --import tsx bench/snapshot.ts [--contacts 100000] [--rounds 7] [--dirs DIR,DIR] [--load S] [--cluster HOST:PORT,…]
 *
 * `--load S`: first S seconds of fast-path heartbeats of every contact on each server (50
 * connections), as the heartbeat scenario runs before its snapshots.
 * `--dirs`: other checkouts (with node_modules) whose servers run beside this one's, on
 * sites of their own. `--cluster`: the servers on that Redis Cluster (its seed nodes) instead
 * of REDIS_URL. The dashboard is a process of its own (bench/snapshot-client.ts), as a browser
 * is. Prints each round, with the CPU each side spent on it (the server, Redis, the receiving
 * dashboard), then the medians per server.
 */
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { snapshotTimingApart } from './snapshot-client.js'
import { REDIS_URL, adminToken, cleanSite, clientToken, heartbeatPaths, load, log, processCpuMs, processMinorFaults, quantile, redisCpuMs, startServer, type BenchServer } from './lib.js'

const { values } = parseArgs({
  options: {
    contacts: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '7' },
    dirs: { type: 'string', default: '' },
    load: { type: 'string', default: '0' },
    cluster: { type: 'string' },
  },
})
const contacts = Number(values.contacts)
const rounds = Number(values.rounds)
const dirs = ['.', ...values.dirs.split(',').filter(Boolean)]
const cluster = values.cluster

// The servers are seeded one after another, minutes apart at a million: with the heartbeat
// scenario's long interval and timeout the first server's contacts are still online when the
// last one's are seeded and the rounds begin.
const TIMING = { heartbeatIntervalS: 300, presenceTimeoutS: 900 }
const servers: { dir: string; site: string; server: BenchServer }[] = []
try {
  for (const [k, dir] of dirs.entries()) {
    const site = `bench-snap-${process.pid}-${k}`
    log(`snapshot: seeding ${contacts} contacts for ${dir}`)
    servers.push({ dir, site, server: await startServer({ kind: 'redis', site, online: contacts, timing: TIMING, ...(cluster === undefined ? {} : { redisClusterNodes: cluster }) }, undefined, dir === '.' ? undefined : dir) })
  }
  const loadS = Number(values.load)
  if (loadS > 0) {
    const now = Date.now()
    const beats = heartbeatPaths(Array.from({ length: contacts }, (_, j) => clientToken(j, now)), 'beat')
    for (const { dir, server } of servers) {
      const { rps } = await load(server.port, beats, { connections: 50, durationS: loadS })
      log(`snapshot: ${dir} served ${Math.round(rps)} heartbeats/s for ${loadS} s`)
    }
  }
  const redis = cluster === undefined ? new Redis(REDIS_URL) : undefined
  const times = servers.map(() => ({ first: [] as number[], last: [] as number[], server: [] as number[], redis: [] as number[], client: [] as number[] }))
  try {
    for (let r = 0; r < rounds; r += 1) {
      // Alternate rounds in reverse order: the machine's speed drifts, and the order would count.
      const order = r % 2 === 0 ? [...servers.entries()] : [...servers.entries()].reverse()
      for (const [k, { dir, server }] of order) {
        const pid = server.child.pid as number
        const before = { server: processCpuMs(pid), faults: processMinorFaults(pid), redis: redis === undefined ? 0 : await redisCpuMs(redis) }
        const { firstByteMs, lastByteMs, bytes, clientCpuMs } = await snapshotTimingApart(server.port, contacts, adminToken())
        const serverMs = processCpuMs(pid) - before.server
        const faults = processMinorFaults(pid) - before.faults
        const redisMs = redis === undefined ? Number.NaN : (await redisCpuMs(redis)) - before.redis
        const t = times[k] as (typeof times)[number]
        t.first.push(firstByteMs)
        t.last.push(lastByteMs)
        t.server.push(serverMs)
        t.redis.push(redisMs)
        t.client.push(clientCpuMs)
        log(`round ${r + 1} ${dir}: first byte ${Math.round(firstByteMs)} ms, last byte ${Math.round(lastByteMs)} ms, ${bytes} bytes; CPU ms: server ${Math.round(serverMs)}, Redis ${Math.round(redisMs)}, dashboard ${Math.round(clientCpuMs)}; the server's page faults ${faults}`)
      }
    }
  } finally {
    redis?.disconnect()
  }
  for (const [k, { dir }] of servers.entries()) {
    const t = times[k] as (typeof times)[number]
    const median = (values: number[]): number => Math.round(quantile(values, 0.5))
    console.log(JSON.stringify({ dir, contacts, rounds, firstByteMs: median(t.first), lastByteMs: median(t.last), cpuMs: { server: median(t.server), redis: median(t.redis), dashboard: median(t.client) } }))
  }
} finally {
  for (const { server, site } of servers) {
    await server.stop()
    await cleanSite(site)
  }
}
