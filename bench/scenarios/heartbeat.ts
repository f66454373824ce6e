/**
 * Heartbeats against the limit: requests per second of the fast path (periodic `beat` of a
 * known visible tab) and of `nav` (full script: page change, stream append, feed publish),
 * each as a ratio to a bare Fastify route returning 204, same load tool, same connections,
 * same run. Then, on the Redis server still holding every contact: latency at half the
 * measured maximum rate, Redis memory per online contact, and a snapshot of all of them to one
 * dashboard.
 */
import { Redis } from 'ioredis'
import WebSocket from 'ws'
import { presenceMemoryUsage } from '../../src/presence/redis/memory-usage.js'
import { REDIS_URL, adminToken, cleanSite, clientToken, heartbeatPaths, load, log, medianBy, quantile, redisCpuMs, round, startServer, type BenchServer, type LoadResult } from '../lib.js'
import type { RunOptions, Row, ScenarioResult } from './types.js'

const CONNECTIONS = 50
/**
 * Connections of the latency measure. autocannon paces each connection on its own and sends
 * in bursts: with 50 connections at half the bare route's rate, even the bare route's p99 is
 * 4-5 ms on this machine, the load tool's queueing rather than the server's. 10 connections
 * at the same total rate measure the server; the bare route's figure beside it is the floor.
 */
const LATENCY_CONNECTIONS = 10

type Measured = LoadResult & { redisCpuUs?: number }

function cpuDetail(result: Measured, bare: Measured): string {
  const server = result.serverCpuUs ?? Number.NaN
  const redisPart = result.redisCpuUs !== undefined && result.redisCpuUs >= 1 ? `, Redis ${result.redisCpuUs} µs` : ''
  return `server CPU ${server} µs/request (bare ${bare.serverCpuUs ?? '?'})${redisPart}`
}

/** Bytes of the site's presence keys (the activity stream aside) over the contacts online. */
export async function presenceBytes(site: string, contacts: number): Promise<{ perContact: number; bytes: number; keys: number }> {
  const redis = new Redis(REDIS_URL)
  try {
    const { bytes, keys } = await presenceMemoryUsage(redis, site)
    return { perContact: bytes / contacts, bytes, keys }
  } finally {
    redis.disconnect()
  }
}

/** One dashboard connects; ms to the first byte of its snapshot and to the last. */
export async function snapshotTiming(port: number, expectOnline: number, token = adminToken()): Promise<{ firstByteMs: number; lastByteMs: number; bytes: number; online: number }> {
  const started = performance.now()
  const socket = new WebSocket(`ws://127.0.0.1:${port}/admin/ws?token=${token}`, { maxPayload: 1 << 30 })
  return new Promise((resolve, reject) => {
    let firstByteMs: number | undefined
    socket.once('open', () => {
      const raw = (socket as unknown as { _socket: NodeJS.ReadableStream })._socket
      raw.once('data', () => {
        firstByteMs ??= performance.now() - started
      })
    })
    socket.once('message', (data: Buffer) => {
      const lastByteMs = performance.now() - started
      firstByteMs ??= lastByteMs
      const message = JSON.parse(data.toString()) as { type: string; online?: unknown[] }
      socket.close()
      const online = message.online?.length ?? -1
      if (message.type !== 'snapshot' || online !== expectOnline) reject(new Error(`expected a snapshot of ${expectOnline}, got ${message.type} of ${online}`))
      else resolve({ firstByteMs, lastByteMs, bytes: data.length, online })
    })
    socket.once('error', reject)
  })
}

/** CPU seconds the Redis server has used, as ms, on a connection of its own. */
async function redisCpuNow(): Promise<number> {
  const redis = new Redis(REDIS_URL)
  try {
    return await redisCpuMs(redis)
  } finally {
    redis.disconnect()
  }
}

function ratioRow(measure: string, result: LoadResult, bare: LoadResult, target: number): Row {
  // Medians: of the rounds for the fast path; of three runs for nav, against the bare median.
  const ratio = result.rps / bare.rps
  return {
    scenario: 'heartbeats',
    measure,
    value: `${round(ratio, 2).toFixed(2)} (${Math.round(result.rps)} req/s${result.errors > 0 ? `, ${result.errors} errors` : ''})`,
    detail: cpuDetail(result, bare),
    target: `≥ ${target}`,
    pass: ratio >= target && result.errors === 0,
  }
}

function withRounds(row: Row, rps: number[]): Row {
  return { ...row, detail: `${row.detail ?? ''}; rounds ${rps.join(', ')} req/s` }
}

/** The run with the median throughput. */
const medianRun = (results: readonly Measured[]): Measured => medianBy(results, (run) => run.rps)

export async function heartbeatScenario({ quick }: RunOptions): Promise<ScenarioResult> {
  const contacts = quick ? 10_000 : 100_000
  const durationS = quick ? 2 : 8
  // The three servers take turns, `rounds` times, and each ratio is of medians: the machine's
  // load drifts, and a drift during one server's only run would count against that server.
  const rounds = quick ? 3 : 5
  const opts = { connections: CONNECTIONS, durationS }
  // Each contact's own token in every request, as its tab sends it: the same for beats and navs.
  const now = Date.now()
  const tokens = Array.from({ length: contacts }, (_, j) => clientToken(j, now))
  const beats = heartbeatPaths(tokens, 'beat')
  const navs = heartbeatPaths(tokens, 'nav')
  const site = `bench-hb-${process.pid}`
  const runs: Record<string, Measured> = {}
  const results: Record<'bare' | 'memory' | 'redis', Measured[]> = { bare: [], memory: [], redis: [] }
  // Every contact once before measuring, as in steady state: each token has been seen (and
  // its signature cached) at the contact's previous beat.
  const warm = async (server: BenchServer): Promise<void> => {
    await load(server.port, beats, { connections: CONNECTIONS, amount: contacts })
  }
  const measure = async (server: BenchServer, paths: string[], rate?: number): Promise<Measured> => {
    const redisBefore = await redisCpuNow()
    const result = await load(server.port, paths, { ...opts, pid: server.child.pid, ...(rate === undefined ? {} : { rate, connections: LATENCY_CONNECTIONS }) })
    return { ...result, redisCpuUs: round(((await redisCpuNow()) - redisBefore) * 1000 / Math.max(1, result.requests), 1) }
  }
  const roundRps = (kind: keyof typeof results): number[] => results[kind].map((r) => Math.round(r.rps))
  const data: Record<string, unknown> = { contacts, durationS, rounds, connections: CONNECTIONS, runs }
  const servers: BenchServer[] = []
  try {
    log(`heartbeats: bare Fastify, memory engine and Redis engine, seeding ${contacts} contacts each`)
    const bare = await startServer({ kind: 'bare', site })
    servers.push(bare)
    const memory = await startServer({ kind: 'memory', site: `${site}-m`, online: contacts })
    servers.push(memory)
    const t0 = performance.now()
    const redis = await startServer({ kind: 'redis', site, online: contacts })
    servers.push(redis)
    data.seedS = round((performance.now() - t0) / 1000, 1)
    const kinds = { bare, memory, redis }
    for (const server of servers) await warm(server)
    for (let r = 0; r < rounds; r += 1) {
      log(`heartbeats: round ${r + 1} of ${rounds} (bare, memory, Redis)`)
      for (const kind of ['bare', 'memory', 'redis'] as const) results[kind].push(await measure(kinds[kind], beats))
    }
    runs.bare = medianRun(results.bare)
    runs.memory = medianRun(results.memory)
    runs.redis = medianRun(results.redis)
    data.rps = { bare: roundRps('bare'), memory: roundRps('memory'), redis: roundRps('redis') }
    log(`heartbeats: latency at half the maximum rate, bare and Redis`)
    // The floor of the latency measure: the same load at half the rate, on the bare route.
    runs.bareHalfRate = await measure(bare, beats, runs.bare.rps / 2)
    runs.redisHalfRate = await measure(redis, beats, runs.redis.rps / 2)
    data.memory = await presenceBytes(site, contacts)
    log(`heartbeats: snapshot of ${contacts} to one dashboard`)
    const snapshots = []
    for (let k = 0; k < rounds; k += 1) snapshots.push(await snapshotTiming(redis.port, contacts))
    data.snapshots = snapshots
    log(`heartbeats: nav (page change) on the Redis engine`)
    // Three runs, the median against the bare median: one run moved with the machine's load.
    const navRuns: Measured[] = []
    for (let k = 0; k < 3; k += 1) navRuns.push(await measure(redis, navs))
    runs.redisNav = medianRun(navRuns)
    data.navRps = navRuns.map((r) => Math.round(r.rps))
  } finally {
    for (const server of servers) await server.stop()
    await cleanSite(site)
  }

  const bare = runs.bare as LoadResult
  const half = runs.redisHalfRate as LoadResult
  const bareHalf = runs.bareHalfRate as LoadResult
  const memoryBytes = data.memory as { perContact: number }
  const snapshots = data.snapshots as { firstByteMs: number; lastByteMs: number; bytes: number }[]
  const snapshotLast = quantile(snapshots.map((s) => s.lastByteMs), 0.5)
  const snapshotFirst = quantile(snapshots.map((s) => s.firstByteMs), 0.5)
  const rows: Row[] = [
    { scenario: 'heartbeats', measure: `bare Fastify 204 (baseline; median of ${rounds} rounds taken in turn with the engines)`, value: `${Math.round(bare.rps)} req/s`, target: '', detail: `${cpuDetail(bare, bare)}; rounds ${roundRps('bare').join(', ')} req/s` },
    withRounds(ratioRow(`fast path, Redis engine, ${contacts} contacts`, runs.redis as LoadResult, bare, 0.6), roundRps('redis')),
    withRounds(ratioRow(`fast path, memory engine, ${contacts} contacts`, runs.memory as LoadResult, bare, 0.8), roundRps('memory')),
    withRounds(ratioRow('nav (full script, page change, stream append), Redis engine', runs.redisNav as LoadResult, bare, 0.35), data.navRps as number[]),
    {
      scenario: 'heartbeats',
      measure: `latency at half the maximum rate (${Math.round(half.rps)} req/s, ${LATENCY_CONNECTIONS} connections), Redis engine`,
      value: `p50 ${half.p50} ms, p99 ${half.p99} ms`,
      target: 'p99 ≤ 5 ms',
      pass: half.p99 <= 5 && half.errors === 0,
    },
    {
      scenario: 'heartbeats',
      measure: `the same on the bare route (${Math.round(bareHalf.rps)} req/s): the machine's floor`,
      value: `p50 ${bareHalf.p50} ms, p99 ${bareHalf.p99} ms`,
      target: '',
    },
    { scenario: 'memory', measure: `Redis bytes per online contact, ${contacts} online`, value: `${Math.round(memoryBytes.perContact)} B`, target: '≤ 256 B', pass: memoryBytes.perContact <= 256 },
    {
      scenario: 'snapshot',
      measure: `${contacts} online to one dashboard (median of ${snapshots.length}, ${round((snapshots[0]?.bytes ?? 0) / 1e6, 1)} MB)`,
      value: `first byte ${Math.round(snapshotFirst)} ms, last byte ${Math.round(snapshotLast)} ms`,
      target: '≤ 1000 ms to last',
      pass: snapshotLast <= 1000,
    },
  ]
  return { name: 'heartbeats', rows, data }
}
