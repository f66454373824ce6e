/**
 * Heartbeats against the limit, driven by wrk in a process of its own (bench/heartbeat.lua:
 * each request a contact picked at random from the pre-minted tokens): the CPU time the server
 * process spends per heartbeat of the fast path (periodic `beat` of a known visible tab) and of
 * `nav` (full script: page change, stream append, feed publish), against the CPU per request
 * of a bare Fastify route returning 204, and Redis's CPU per heartbeat; beside them each
 * throughput as a ratio to the bare route's. Then, on the Redis server still holding every
 * contact: latency at half the measured maximum rate, Redis memory per online contact, and a
 * snapshot of all of them to one dashboard.
 */
import { rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { Redis } from 'ioredis'
import WebSocket from 'ws'
import { DEFAULT_PARTITIONS, sitePartitions } from '../../src/presence/redis/keys.js'
import { presenceMemoryUsage } from '../../src/presence/redis/memory-usage.js'
import { REDIS_URL, adminToken, clientToken, heartbeatPaths, load, log, quantile, round, startPrivateRedis, startServer, writeTokensFile, wrkLoad, type BenchServer, type LoadResult, type WrkResult } from '../lib.js'
import type { RunOptions, Row, ScenarioResult } from './types.js'
import { firstMessageRaw, type RawMessage } from '../raw-message.js'

/** wrk's connections for the measured loads, on one thread: a second would take a core from the server. */
const CONNECTIONS = 50
const WRK_THREADS = 1
/**
 * Connections of the latency measure, which autocannon drives: it paces to a total rate
 * (`overallRate`), wrk does not. autocannon paces each connection on its own and sends in
 * bursts: with 50 connections at half the bare route's rate, even the bare route's p99 is
 * 4-5 ms on this machine, the load tool's queueing rather than the server's. 10 connections
 * at the same total rate measure the server; the bare route's figure beside it is the floor.
 */
const LATENCY_CONNECTIONS = 10

/**
 * The servers' heartbeat interval and presence timeout. The loads beat each contact several
 * times in a server's turn and then not while the other two servers take theirs; on a busy
 * machine that pause can pass the 40 s after which a beat is late under the default 30 s
 * interval (the full script and a `gap` event, not the fast path), or the 75 s timeout (the
 * contact expires; its next beat is a join). What a beat on time costs does not depend on
 * either, so the servers run with values no pause of the scenario reaches.
 */
const TIMING = { heartbeatIntervalS: 300, presenceTimeoutS: 900 }

/** Targets of the heartbeat figures (see bench/README.md). */
export const TARGETS = {
  /** Node CPU per fast-path heartbeat on the Redis engine, as a multiple of the bare route's per request. */
  redisNodeCpu: 1.25,
  /** Redis CPU per fast-path heartbeat, µs. */
  redisRedisCpuUs: 5,
  /** Throughputs, as ratios to the bare route's. */
  redisRps: 0.5,
  memoryRps: 0.6,
  navRps: 0.3,
  /** Node CPU per fast-path heartbeat with metrics and rate limits on, as a multiple of the same with both off. */
  metricsCost: 1.03,
}

/** A wrk load, and on the Redis engine the activity events it caused (the stream's growth). */
export type Measured = WrkResult & { events?: number }

/** The median of each figure over runs (the runs of one server, taken in turn with the others); errors and activity events summed. */
export interface Summary {
  rps: number
  serverCpuUs: number
  redisCpuUs: number
  wrkCpuUs: number
  errors: number
  requests: number
  events?: number
}

export function summarise(runs: readonly Measured[]): Summary {
  const median = (pick: (run: Measured) => number): number => quantile(runs.map(pick), 0.5)
  const sum = (pick: (run: Measured) => number): number => runs.reduce((total, r) => total + pick(r), 0)
  return {
    rps: median((r) => r.rps),
    serverCpuUs: median((r) => r.serverCpuUs ?? Number.NaN),
    redisCpuUs: median((r) => r.redisCpuUs ?? Number.NaN),
    wrkCpuUs: median((r) => r.wrkCpuUs),
    errors: sum((r) => r.errors),
    requests: sum((r) => r.requests),
    ...(runs.some((r) => r.events !== undefined) ? { events: sum((r) => r.events ?? 0) } : {}),
  }
}

/** Each figure's median over the rounds of its ratio to another server's in the same round. */
export interface RoundRatios {
  serverCpu: number
  rps: number
}

/**
 * The ratios of a server's runs to another's (the bare route's; with metrics and limits off),
 * taken round by round (the two ran a few seconds apart), and the median of each: the
 * machine's speed moves by more between rounds than the servers differ, and a ratio within a
 * round cancels most of it.
 */
export function roundRatios(runs: readonly Measured[], against: readonly Measured[]): RoundRatios {
  const median = (pick: (run: Measured) => number): number => quantile(runs.map((run, r) => pick(run) / pick(against[r] as Measured)), 0.5)
  return { serverCpu: median((run) => run.serverCpuUs ?? Number.NaN), rps: median((run) => run.rps) }
}

const us = (value: number): string => `${value.toFixed(1)} µs`
const times = (value: number): string => `${value.toFixed(2)}×`
const errorsNote = (s: Summary): string => (s.errors > 0 ? `, ${s.errors} errors` : '')

/**
 * The rows of one load against the bare route: Node CPU per heartbeat (and its multiple of the
 * bare route's), Redis CPU per heartbeat for the Redis engine, throughput ratio. `fastPath`: a
 * load of beats, none of which may cause an activity event (a late beat's `gap`, a join of a
 * contact that expired: the full script): when one did, the row says how many and meets no target.
 */
export function heartbeatRows(label: string, result: Summary, bare: Summary, targets: { nodeCpu?: number; redisCpuUs?: number; rps: number }, redisEngine: boolean, rounds: string, fastPath = true, ratios?: RoundRatios): Row[] {
  const cpuRatio = ratios?.serverCpu ?? result.serverCpuUs / bare.serverCpuUs
  const rpsRatio = ratios?.rps ?? result.rps / bare.rps
  const events = result.events ?? 0
  const ok = result.errors === 0 && (!fastPath || events === 0)
  const note = `${errorsNote(result)}${fastPath && events > 0 ? `, ${events} not the fast path` : ''}`
  const changesDetail = result.events === undefined ? '' : `; activity events ${result.events} for ${result.requests} requests`
  const detail = `wrk ${us(result.wrkCpuUs)}/request; ${rounds}${changesDetail}`
  const rows: Row[] = [
    {
      scenario: 'heartbeats',
      measure: `${label}: Node CPU per heartbeat`,
      value: `${us(result.serverCpuUs)} (${times(cpuRatio)} bare)${note}`,
      target: targets.nodeCpu === undefined ? '' : `≤ ${times(targets.nodeCpu)} bare`,
      detail,
      ...(targets.nodeCpu === undefined ? {} : { pass: ok && cpuRatio <= targets.nodeCpu }),
    },
  ]
  if (redisEngine) {
    rows.push({
      scenario: 'heartbeats',
      measure: `${label}: Redis CPU per heartbeat`,
      value: us(result.redisCpuUs),
      target: targets.redisCpuUs === undefined ? '' : `≤ ${targets.redisCpuUs} µs`,
      detail: `Redis CPU in the bare route's rounds, which do not use it: ${us(bare.redisCpuUs)}/request`,
      ...(targets.redisCpuUs === undefined ? {} : { pass: ok && result.redisCpuUs <= targets.redisCpuUs }),
    })
  }
  rows.push({
    scenario: 'heartbeats',
    measure: `${label}: throughput vs bare`,
    value: `${rpsRatio.toFixed(2)} (${Math.round(result.rps)} req/s${note})`,
    target: `≥ ${targets.rps}`,
    detail,
    pass: ok && rpsRatio >= targets.rps,
  })
  return rows
}

/** Bytes of the site's presence keys (the activity stream aside) over the contacts online. */
export async function presenceBytes(site: string, contacts: number, url = REDIS_URL): Promise<{ perContact: number; bytes: number; keys: number }> {
  const redis = new Redis(url)
  try {
    const { bytes, keys } = await presenceMemoryUsage(redis, sitePartitions(site, DEFAULT_PARTITIONS))
    return { perContact: bytes / contacts, bytes, keys }
  } finally {
    redis.disconnect()
  }
}

/**
 * The first message on `socket`: rejects with the close code and reason when the socket closes
 * before it, with the error when one comes first, and when none came within `deadlineMs`.
 */
export function firstMessage(socket: WebSocket, what: string, deadlineMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer)
      socket.off('message', onMessage)
      socket.off('close', onClose)
      socket.off('error', onError)
    }
    const onMessage = (data: Buffer): void => {
      done()
      resolve(data)
    }
    const onClose = (code: number, reason: Buffer): void => {
      done()
      reject(new Error(`${what}: the socket closed before it arrived (code ${code}${reason.length > 0 ? `, reason "${reason.toString()}"` : ''})`))
    }
    const onError = (error: Error): void => {
      done()
      socket.terminate()
      reject(new Error(`${what}: ${error.message}`))
    }
    const timer = setTimeout(() => {
      done()
      socket.terminate()
      reject(new Error(`${what}: none within ${deadlineMs} ms`))
    }, deadlineMs)
    socket.on('message', onMessage)
    socket.on('close', onClose)
    socket.on('error', onError)
  })
}

/** About what a contact takes in a snapshot's JSON (about 230 B at a million): the dashboard's buffer is made for that many. */
const SNAPSHOT_BYTES_PER_CONTACT = 256

/** How long a snapshot may take to arrive before the bench gives up on it. */
const SNAPSHOT_DEADLINE_MS = 120_000

/** One dashboard connects; ms to the first byte of its snapshot and to the last, its bytes and count (checked against `expectOnline`). */
export async function snapshotTiming(port: number, expectOnline: number, token = adminToken()): Promise<{ firstByteMs: number; lastByteMs: number; bytes: number; online: number; clientCpuMs: number }> {
  // Timed at the socket (raw-message.ts): what the dashboard's own WebSocket library would
  // spend gathering 230 MB is its work, not the server's.
  let raw: RawMessage
  try {
    raw = await firstMessageRaw(port, `/admin/ws?token=${token}`, SNAPSHOT_DEADLINE_MS, expectOnline * SNAPSHOT_BYTES_PER_CONTACT)
  } catch (error) {
    throw new Error(`a snapshot of ${expectOnline}: ${(error as Error).message}`, { cause: error })
  }
  const message = JSON.parse(raw.data.toString()) as { type: string; online?: unknown[] }
  const online = message.online?.length ?? -1
  if (message.type !== 'snapshot' || online !== expectOnline) throw new Error(`expected a snapshot of ${expectOnline}, got ${message.type} of ${online}`)
  // The receiving process's CPU from connecting to the last byte: the dashboard's share of the work.
  return { firstByteMs: raw.firstByteMs, lastByteMs: raw.lastByteMs, bytes: raw.data.length, online, clientCpuMs: raw.cpuMs }
}

/** cat_heartbeats_total{event="beat",outcome="ok"} as the server's /metrics reports it. */
async function countedBeats(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`)
  const text = await res.text()
  const line = text.split('\n').find((l) => l.startsWith('cat_heartbeats_total{event="beat",outcome="ok"}'))
  if (res.status !== 200 || line === undefined) throw new Error(`/metrics answered ${res.status} without the beats counted`)
  return Number(line.split(' ').at(-1))
}

export async function heartbeatScenario({ quick }: RunOptions): Promise<ScenarioResult> {
  const contacts = quick ? 10_000 : 100_000
  const durationS = quick ? 2 : 8
  // The three servers take turns, `rounds` times, and each figure is the median of its
  // server's rounds: the machine's load drifts, and a drift during one server's only run would
  // count against that server.
  const rounds = quick ? 3 : 5
  // Each contact's own token in every request, as its tab sends it: the same for beats and navs.
  const now = Date.now()
  const tokens = Array.from({ length: contacts }, (_, j) => clientToken(j, now))
  const beats = heartbeatPaths(tokens, 'beat')
  const site = `bench-hb-${process.pid}`
  // A Redis of the scenario's own: its CPU over a load is then the load's alone.
  const privateRedis = await startPrivateRedis()
  const tokensFile = writeTokensFile(tokens)
  const redisClient = new Redis(privateRedis.url)
  const results: Record<'bare' | 'memory' | 'redis' | 'redisUncounted', Measured[]> = { bare: [], memory: [], redis: [], redisUncounted: [] }
  const navRuns: Measured[] = []
  const halfRate: Record<string, LoadResult> = {}
  // Every contact once before measuring, as in steady state: each token has been seen (and
  // its signature cached) at the contact's previous beat.
  const warm = async (server: BenchServer): Promise<void> => {
    await load(server.port, beats, { connections: CONNECTIONS, amount: contacts })
  }
  // The Redis engine's activity stream gets an entry for every heartbeat but one of the fast
  // path: a join (a contact that expired), a late beat's `gap`, a page change, an expiry.
  let redisServer: BenchServer | undefined
  const streams = sitePartitions(site, DEFAULT_PARTITIONS).map((keys) => keys.events)
  const streamLength = async (): Promise<number> => (await Promise.all(streams.map((stream) => redisClient.xlen(stream)))).reduce((sum, n) => sum + n, 0)
  const measure = async (server: BenchServer, event: 'beat' | 'nav', salt?: string): Promise<Measured> => {
    const before = server === redisServer ? await streamLength() : undefined
    const result = await wrkLoad(server.port, tokensFile, { event, connections: CONNECTIONS, threads: WRK_THREADS, durationS, pid: server.child.pid, redis: redisClient, ...(salt === undefined ? {} : { salt }) })
    return before === undefined ? result : { ...result, events: (await streamLength()) - before }
  }
  const data: Record<string, unknown> = { contacts, durationS, rounds, connections: CONNECTIONS, wrkThreads: WRK_THREADS, runs: results, navRuns, halfRate }
  const servers: BenchServer[] = []
  try {
    log(`heartbeats: bare Fastify, memory engine and Redis engine, seeding ${contacts} contacts each`)
    const bare = await startServer({ kind: 'bare', site })
    servers.push(bare)
    const memory = await startServer({ kind: 'memory', site: `${site}-m`, online: contacts, timing: TIMING })
    servers.push(memory)
    const t0 = performance.now()
    const redis = await startServer({ kind: 'redis', site, online: contacts, redisUrl: privateRedis.url, timing: TIMING })
    servers.push(redis)
    redisServer = redis
    data.seedS = round((performance.now() - t0) / 1000, 1)
    // The same with metrics and rate limits off, on a site of its own: what they cost the fast path.
    const redisUncounted = await startServer({ kind: 'redis', site: `${site}-u`, online: contacts, redisUrl: privateRedis.url, timing: TIMING, operations: false })
    servers.push(redisUncounted)
    const kinds = { bare, memory, redis, redisUncounted }
    for (const server of servers) await warm(server)
    const countedBefore = await countedBeats(redis.port)
    // The servers take turns in reverse order every other round: a server run second in a round
    // read less CPU per request than the same run first (bench/cpu.ts), and none goes first always.
    const order = ['bare', 'memory', 'redis', 'redisUncounted'] as const
    for (let r = 0; r < rounds; r += 1) {
      const turns = r % 2 === 0 ? order : [...order].reverse()
      log(`heartbeats: round ${r + 1} of ${rounds} (${turns.join(', ')}), wrk`)
      for (const kind of turns) results[kind].push(await measure(kinds[kind], 'beat'))
    }
    data.counted = { metrics: (await countedBeats(redis.port)) - countedBefore, wrk: results.redis.reduce((sum, run) => sum + run.requests, 0) }
    // What metrics and limits cost is a few per cent, below a round's noise on this machine:
    // as many rounds again of the two alone, and the median of each round's ratio (the two
    // measured back to back) rather than the ratio of the medians.
    const pairs: [Measured, Measured][] = results.redis.map((run, r) => [run, results.redisUncounted[r] as Measured])
    // In these rounds too the two take turns at going first, so neither always runs on a Redis and a
    // machine just left by the other.
    for (let r = 0; r < rounds; r += 1) {
      log(`heartbeats: metrics and limits on and off, round ${r + 1} of ${rounds}`)
      if (r % 2 === 0) {
        const off = await measure(redisUncounted, 'beat')
        pairs.push([await measure(redis, 'beat'), off])
      } else {
        pairs.push([await measure(redis, 'beat'), await measure(redisUncounted, 'beat')])
      }
    }
    data.operationsPairs = pairs.map(([on, off]) => ({ on: on.serverCpuUs, off: off.serverCpuUs, onRps: on.rps, offRps: off.rps }))
    data.operations = roundRatios(pairs.map(([on]) => on), pairs.map(([, off]) => off))
    log(`heartbeats: latency at half the maximum rate, bare and Redis (autocannon, paced)`)
    // The floor of the latency measure: the same load at half the rate, on the bare route.
    const paced = (server: BenchServer, rate: number): Promise<LoadResult> => load(server.port, beats, { connections: LATENCY_CONNECTIONS, durationS, rate, pid: server.child.pid })
    halfRate.bare = await paced(bare, summarise(results.bare).rps / 2)
    halfRate.redis = await paced(redis, summarise(results.redis).rps / 2)
    data.memory = await presenceBytes(site, contacts, privateRedis.url)
    log(`heartbeats: snapshot of ${contacts} to one dashboard`)
    const snapshots = []
    for (let k = 0; k < rounds; k += 1) snapshots.push(await snapshotTiming(redis.port, contacts))
    data.snapshots = snapshots
    log(`heartbeats: nav (page change) on the Redis engine, wrk`)
    // Three runs, the median against the bare median: one run moved with the machine's load.
    for (let k = 0; k < 3; k += 1) navRuns.push(await measure(redis, 'nav', `run${k}`))
  } finally {
    for (const server of servers) await server.stop()
    redisClient.disconnect()
    await privateRedis.stop()
    rmSync(dirname(tokensFile), { recursive: true, force: true })
  }

  const bare = summarise(results.bare)
  const memoryRuns = summarise(results.memory)
  const redisRuns = summarise(results.redis)
  const uncountedRuns = summarise(results.redisUncounted)
  const counted = data.counted as { metrics: number; wrk: number }
  const pairs = data.operationsPairs as { on: number; off: number; onRps: number; offRps: number }[]
  const { serverCpu: metricsCost, rps: metricsRps } = data.operations as RoundRatios
  const nav = summarise(navRuns)
  data.medians = { bare, memory: memoryRuns, redis: redisRuns, redisUncounted: uncountedRuns, nav }
  data.timing = TIMING
  const roundsOf = (runs: readonly Measured[]): string => `rounds ${runs.map((r) => `${Math.round(r.rps)} req/s ${us(r.serverCpuUs ?? Number.NaN)}`).join(', ')}`
  const half = halfRate.redis as LoadResult
  const bareHalf = halfRate.bare as LoadResult
  const memoryBytes = data.memory as { perContact: number }
  const snapshots = data.snapshots as { firstByteMs: number; lastByteMs: number; bytes: number }[]
  const snapshotLast = quantile(snapshots.map((s) => s.lastByteMs), 0.5)
  const snapshotFirst = quantile(snapshots.map((s) => s.firstByteMs), 0.5)
  const rows: Row[] = [
    {
      scenario: 'heartbeats',
      measure: `bare Fastify 204 (baseline; median of ${rounds} rounds taken in turn with the engines, wrk ${CONNECTIONS} connections; an engine's multiples of it are the medians of its rounds' ratios)`,
      value: `${us(bare.serverCpuUs)} Node CPU per request, ${Math.round(bare.rps)} req/s${errorsNote(bare)}`,
      target: '',
      detail: `wrk ${us(bare.wrkCpuUs)}/request; ${roundsOf(results.bare)}`,
    },
    ...heartbeatRows(`fast path, Redis engine, ${contacts} contacts`, redisRuns, bare, { nodeCpu: TARGETS.redisNodeCpu, redisCpuUs: TARGETS.redisRedisCpuUs, rps: TARGETS.redisRps }, true, roundsOf(results.redis), true, roundRatios(results.redis, results.bare)),
    {
      scenario: 'heartbeats',
      measure: `fast path, Redis engine: Node CPU per heartbeat with metrics and rate limits on, against both off (median of ${pairs.length} back-to-back pairs)`,
      value: `${times(metricsCost)} (medians ${us(redisRuns.serverCpuUs)} against ${us(uncountedRuns.serverCpuUs)}; throughput ${metricsRps.toFixed(2)}×)`,
      target: `≤ ${times(TARGETS.metricsCost)}`,
      detail: `pairs on/off: ${pairs.map((p) => `${p.on.toFixed(1)}/${p.off.toFixed(1)} µs`).join(', ')}`,
      pass: uncountedRuns.errors === 0 && metricsCost <= TARGETS.metricsCost,
    },
    {
      scenario: 'heartbeats',
      measure: 'fast path, Redis engine: beats answered 204 as /metrics counted them, against wrk\'s count',
      value: `${counted.metrics} counted, ${counted.wrk} completed by wrk`,
      target: `within ${CONNECTIONS * rounds} (wrk's connections, each with a request in flight when a round ends)`,
      pass: counted.metrics >= counted.wrk && counted.metrics - counted.wrk <= CONNECTIONS * rounds,
    },
    ...heartbeatRows(`fast path, memory engine, ${contacts} contacts`, memoryRuns, bare, { rps: TARGETS.memoryRps }, false, roundsOf(results.memory), true, roundRatios(results.memory, results.bare)),
    ...heartbeatRows('nav (full script, page change, stream append), Redis engine', nav, bare, { rps: TARGETS.navRps }, true, roundsOf(navRuns), false),
    {
      scenario: 'heartbeats',
      measure: `latency at half the maximum rate (${Math.round(half.rps)} req/s, autocannon paced, ${LATENCY_CONNECTIONS} connections), Redis engine`,
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
