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
 * of REDIS_URL. Prints each round, then the median first and last byte per server.
 */
import { parseArgs } from 'node:util'
import { snapshotTiming } from './scenarios/heartbeat.js'
import { cleanSite, clientToken, heartbeatPaths, load, log, quantile, startServer, type BenchServer } from './lib.js'

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

// The servers are seeded one after another, minutes apart at a million: with the heartbeat
// scenario's long interval and timeout the first server's contacts are still online when the
// last one's are seeded and the rounds begin.
const TIMING = { heartbeatIntervalS: 300, presenceTimeoutS: 900 }
const servers: { dir: string; site: string; server: BenchServer }[] = []
try {
  for (const [k, dir] of dirs.entries()) {
    const site = `bench-snap-${process.pid}-${k}`
    log(`snapshot: seeding ${contacts} contacts for ${dir}`)
    servers.push({ dir, site, server: await startServer({ kind: 'redis', site, online: contacts, timing: TIMING, ...(values.cluster === undefined ? {} : { redisClusterNodes: values.cluster }) }, undefined, dir === '.' ? undefined : dir) })
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
  const times = servers.map(() => ({ first: [] as number[], last: [] as number[] }))
  for (let r = 0; r < rounds; r += 1) {
    for (const [k, { dir, server }] of servers.entries()) {
      const { firstByteMs, lastByteMs, bytes } = await snapshotTiming(server.port, contacts)
      times[k]?.first.push(firstByteMs)
      times[k]?.last.push(lastByteMs)
      log(`round ${r + 1} ${dir}: first byte ${Math.round(firstByteMs)} ms, last byte ${Math.round(lastByteMs)} ms, ${bytes} bytes`)
    }
  }
  for (const [k, { dir }] of servers.entries()) {
    const t = times[k] as { first: number[]; last: number[] }
    console.log(JSON.stringify({ dir, contacts, rounds, firstByteMs: Math.round(quantile(t.first, 0.5)), lastByteMs: Math.round(quantile(t.last, 0.5)) }))
  }
} finally {
  for (const { server, site } of servers) {
    await server.stop()
    await cleanSite(site)
  }
}
