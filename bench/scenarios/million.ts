/**
 * A million online on one instance and one Redis: ONLINE contacts consented and online (set up
 * through the engine's write path, bench/million-server.ts), each contact's first heartbeat
 * over HTTP as after a deploy (a signature check and a consent lookup each), then periodic
 * heartbeats at ONLINE / 30 per second (one per contact per 30 s) for RUN_S seconds, with a
 * dashboard connected and the sweeper running, while LEAVING contacts expire.
 *
 * Reported: the rate sustained with p50/p99, Node's CPU per heartbeat and the load
 * generator's and Redis's beside it (what limits, when the rate is not reached), the bytes per
 * contact in Node (heap and typed arrays, over the empty server's) and in Redis, the sweep
 * lag, and the full snapshot to one dashboard.
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { Redis } from 'ioredis'
import WebSocket from 'ws'
import { presenceMemoryUsage } from '../../src/presence/redis/memory-usage.js'
import { DEFAULT_PARTITIONS, sitePartitions } from '../../src/presence/redis/keys.js'
import { LEAVING_FROM_S, type MillionSpec } from '../million-spec.js'
import { PRESENCE_TIMEOUT_S, REDIS_URL, SERVER_NODE_ARGS, adminToken, cleanSite, clientToken, load, log, processCpuMs, quantile, redisCpuMs, round, tabId } from '../lib.js'
import { firstMessage, snapshotTiming } from './heartbeat.js'
import { snapshotTimingApart } from '../snapshot-client.js'
import type { RunOptions, ScenarioResult } from './types.js'

const LEAVING_PER_S = 1000

interface Memory {
  heapUsed: number
  arrayBuffers: number
  rss: number
  tokens?: number
  contacts?: number
}

export async function millionScenario({ quick }: RunOptions): Promise<ScenarioResult> {
  const online = quick ? 100_000 : 1_000_000
  const runS = quick ? 25 : 60
  const leaving = (quick ? 5 : 30) * LEAVING_PER_S
  const rate = Math.round(online / 30)
  const site = `bench-million-${process.pid}`
  const spec: MillionSpec = { site, online, leaving, leavingPerS: LEAVING_PER_S }
  log(`million: seeding ${online} online through the engine (the clock stands still meanwhile)`)
  const child = spawn(process.execPath, [...SERVER_NODE_ARGS, '--expose-gc', '--import', 'tsx', 'bench/million-server.ts', JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const lines = createInterface({ input: child.stdout })
  const waiting: ((line: string) => void)[] = []
  const early: string[] = []
  lines.on('line', (line) => {
    const next = waiting.shift()
    if (next === undefined) early.push(line)
    else next(line)
  })
  const nextLine = (): Promise<string> => new Promise((resolve, reject) => {
    const line = early.shift()
    if (line !== undefined) resolve(line)
    else {
      waiting.push(resolve)
      void exited.then(() => reject(new Error('the million bench server exited')))
    }
  })
  const ask = async (command: string, answer: string): Promise<string> => {
    child.stdin.write(`${command}\n`)
    for (;;) {
      const line = await nextLine()
      if (line.startsWith(answer)) return line.slice(answer.length).trim()
    }
  }
  const redis = new Redis(REDIS_URL)
  let dashboard: WebSocket | undefined
  let stopping = false
  try {
    let ready = ''
    while (!ready.startsWith('ready ')) ready = await nextLine()
    const { port, startMs, baseline } = JSON.parse(ready.slice(6)) as { port: number; startMs: number; baseline: Memory }
    const pid = child.pid as number
    const partitions = sitePartitions(site, DEFAULT_PARTITIONS)
    const redisBytes = await presenceMemoryUsage(redis, partitions)
    const count = (await Promise.all(partitions.map((keys) => redis.hlen(keys.records)))).reduce((sum, n) => sum + n, 0)

    // Tokens minted at the server's standing clock; the leaving contacts get no heartbeat.
    const beating = Array.from({ length: online - leaving }, (_, k) => clientToken(leaving + k, startMs))
    const paths = beating.map((token, k) => `/cat_heartbeat?token=${token}&sid=${tabId(leaving + k)}&path=%2Fclients%2Ftickets&title=Support%20tickets&event=beat`)
    log(`million: the first heartbeat of ${beating.length} contacts over HTTP, as after a start`)
    const firstCpu = processCpuMs(pid)
    const first = await load(port, paths, { connections: 50, amount: paths.length })
    const firstCpuUs = ((processCpuMs(pid) - firstCpu) * 1000) / first.requests
    const memoryAfter = JSON.parse(await ask('memory', 'memory')) as Memory
    const nodeBytes = (memoryAfter.heapUsed + memoryAfter.arrayBuffers - baseline.heapUsed - baseline.arrayBuffers) / online

    // The dashboard in a process of its own, as a browser is: this process holds the million
    // tokens and paths, and its collections would be timed with the server. Twice, the slower
    // reported; one received here between them, for comparison.
    log(`million: a full snapshot of ${online} to one dashboard in a process of its own, twice, and one received in the bench's process`)
    const apart = [await snapshotTimingApart(port, online, adminToken(startMs))]
    const inBench = await snapshotTiming(port, online, adminToken(startMs))
    apart.push(await snapshotTimingApart(port, online, adminToken(startMs)))
    const snapshot = apart.reduce((slower, next) => (next.lastByteMs > slower.lastByteMs ? next : slower))
    log(`million: snapshot last byte ${apart.map((s) => Math.round(s.lastByteMs)).join(' and ')} ms apart, ${Math.round(inBench.lastByteMs)} ms received in the bench's process`)

    // The dashboard that stays: its snapshot is skipped unread, its `left`s are timed.
    const lefts: { receivedAt: number; at: number }[] = []
    dashboard = new WebSocket(`ws://127.0.0.1:${port}/admin/ws?token=${adminToken(startMs)}`, { maxPayload: 1 << 30 })
    dashboard.on('message', (data: Buffer) => {
      const receivedAt = Date.now()
      if (data.subarray(0, 24).toString().includes('"snapshot"')) return
      const message = JSON.parse(data.toString()) as { left?: { at: number }[] }
      for (const left of message.left ?? []) lefts.push({ receivedAt, at: left.at })
    })
    await firstMessage(dashboard, 'the staying dashboard\'s snapshot', 120_000)
    dashboard.on('close', (code: number, reason: Buffer) => {
      if (!stopping) log(`million: the staying dashboard closed (code ${code}${reason.length > 0 ? `, reason "${reason.toString()}"` : ''}); its lefts stop`)
    })

    log(`million: ${rate} heartbeats/s for ${runS} s over ${beating.length} contacts, ${LEAVING_PER_S}/s expiring`)
    const runStart = Date.now()
    await ask('run', 'running')
    const offset = startMs - runStart
    const cpu = { server: processCpuMs(pid), redis: await redisCpuMs(redis), bench: process.cpuUsage() }
    const run = await load(port, paths, { connections: 100, durationS: runS, rate })
    const benchCpu = process.cpuUsage(cpu.bench)
    const perRequest = (ms: number): number => round((ms * 1000) / run.requests, 1)
    const serverCpuUs = perRequest(processCpuMs(pid) - cpu.server)
    const redisCpuUs = perRequest((await redisCpuMs(redis)) - cpu.redis)
    const generatorCpuUs = perRequest((benchCpu.user + benchCpu.system) / 1000)
    const memoryRun = JSON.parse(await ask('memory', 'memory')) as Memory

    // Expiries inside the run, from the server's clock (wall clock + offset) back to the wall.
    const timeoutMs = PRESENCE_TIMEOUT_S * 1000
    const runEnd = runStart + runS * 1000
    const lags = lefts.map((l) => ({ lag: l.receivedAt - (l.at + timeoutMs - offset), expiredAt: l.at + timeoutMs - offset })).filter((l) => l.expiredAt < runEnd - 2000)
    const expectedLefts = Math.min(leaving, Math.max(0, Math.floor(((runS - LEAVING_FROM_S) * 1000 - 2000) * LEAVING_PER_S / 1000)))
    const sweepP99 = quantile(lags.map((l) => l.lag), 0.99)

    const sustained = run.requests / runS
    const data = {
      online: count, leaving, rate, runS,
      first: { rps: round(first.rps), p99: first.p99, errors: first.errors, serverCpuUs: round(firstCpuUs, 1) },
      run: { requests: run.requests, sustained: round(sustained), p50: run.p50, p99: run.p99, errors: run.errors, serverCpuUs, redisCpuUs, generatorCpuUs },
      node: { bytesPerContact: round(nodeBytes), baseline, afterFirstBeats: memoryAfter, afterRun: memoryRun },
      redis: { bytesPerContact: round(redisBytes.bytes / count), keys: redisBytes.keys },
      snapshot: { firstByteMs: round(snapshot.firstByteMs), lastByteMs: round(snapshot.lastByteMs), bytes: snapshot.bytes, lastByteMsApart: apart.map((s) => round(s.lastByteMs)), lastByteMsInBench: round(inBench.lastByteMs) },
      sweep: { lefts: lags.length, expected: expectedLefts, p50: round(quantile(lags.map((l) => l.lag), 0.5)), p99: round(sweepP99) },
    }
    const rateMet = sustained >= rate * 0.98 && run.errors === 0
    const cpuDetail = `CPU per heartbeat: Node ${serverCpuUs} µs, Redis ${redisCpuUs} µs, load generator ${generatorCpuUs} µs`
    return {
      name: 'million',
      rows: [
        {
          scenario: 'million',
          measure: `periodic heartbeats, ${count} online, ${rate}/s for ${runS} s, a dashboard and the sweeper running`,
          value: `${Math.round(sustained)}/s, p50 ${run.p50} ms, p99 ${run.p99} ms${run.errors > 0 ? `, ${run.errors} errors` : ''}`,
          target: `${rate}/s, p99 ≤ 20 ms`,
          detail: cpuDetail,
          pass: rateMet && run.p99 <= 20,
        },
        { scenario: 'million', measure: `CPU per periodic heartbeat at ${count} online (Node, Redis; the load generator)`, value: `${serverCpuUs} µs, ${redisCpuUs} µs; ${generatorCpuUs} µs`, target: '' },
        { scenario: 'million', measure: `first heartbeat of each contact after a start (signature check, consent lookup)`, value: `${Math.round(first.rps)}/s, Node ${round(firstCpuUs, 1)} µs each`, target: '' },
        { scenario: 'million', measure: `Node bytes per online contact (heap + typed arrays over the empty server's)`, value: `${Math.round(nodeBytes)} B (RSS ${Math.round(memoryRun.rss / 1e6)} MB)`, target: '≤ 250 B', pass: nodeBytes <= 250 },
        { scenario: 'million', measure: `Redis bytes per online contact, ${count} online`, value: `${Math.round(redisBytes.bytes / count)} B`, target: '≤ 210 B', pass: redisBytes.bytes / count <= 210 },
        { scenario: 'million', measure: `expiry → \`left\` received during the run, ${LEAVING_PER_S} expiring/s`, value: `p99 ${Math.round(sweepP99)} ms${lags.length === expectedLefts ? '' : `, ${lags.length} of ${expectedLefts} lefts`}`, target: 'p99 ≤ 1500 ms', pass: sweepP99 <= 1500 && lags.length === expectedLefts },
        { scenario: 'million', measure: `snapshot of ${count} online to one dashboard in a process of its own, the slower of two (${round(snapshot.bytes / 1e6, 1)} MB)`, value: `first byte ${Math.round(snapshot.firstByteMs)} ms, last byte ${Math.round(snapshot.lastByteMs)} ms`, target: '≤ 5000 ms to last', pass: snapshot.lastByteMs <= 5000 },
      ],
      data,
    }
  } finally {
    stopping = true
    dashboard?.terminate()
    if (child.exitCode === null) child.kill('SIGTERM')
    await exited
    redis.disconnect()
    await cleanSite(site)
  }
}
