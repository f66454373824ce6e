/**
 * Live diff latency: DASHBOARDS dashboards watch while new contacts join at JOINS_PER_S; for
 * every join, the time from sending its heartbeat to each dashboard receiving the `joined`.
 * Diffs are coalesced over the diff window (CAT_DIFF_INTERVAL_MS, 100 ms by default), so the
 * floor is the window itself; the target allows 50 ms on top.
 */
import { Pool } from 'undici'
import WebSocket from 'ws'
import { signToken } from '../../src/auth/tokens.js'
import { BENCH_SECRET, adminToken, cleanSite, log, processCpuMs, quantile, round, startServer } from '../lib.js'
import type { RunOptions, ScenarioResult } from './types.js'

const DASHBOARDS = Number(process.env.BENCH_DASHBOARDS ?? 100)
const JOINS_PER_S = 1000
const DIFF_WINDOW_MS = 100
const TICK_MS = 10

interface Joined {
  contactId: string
}

export async function diffScenario({ quick }: RunOptions): Promise<ScenarioResult> {
  const durationS = quick ? 3 : 10
  const joins = JOINS_PER_S * durationS
  const site = `bench-diff-${process.pid}`
  const prefix = 'joiner'
  const server = await startServer({ kind: 'redis', site, consented: { prefix, count: joins }, diffIntervalMs: DIFF_WINDOW_MS })
  const sentAt = new Map<string, number>()
  const latencies: number[] = []
  const warmUp = new Set<string>()
  let received = 0
  /** Pairs: arrival time, message. */
  const arrivals: (number | Buffer)[] = []
  const tally = (): void => {
    for (let i = 0; i < arrivals.length; i += 2) {
      const at = arrivals[i] as number
      const message = JSON.parse((arrivals[i + 1] as Buffer).toString()) as { type: string; joined?: Joined[] }
      for (const p of message.joined ?? []) {
        const sent = sentAt.get(p.contactId)
        if (sent === undefined) continue
        received += 1
        // The first half second warms up (connections, JIT): delivered, but not timed.
        if (warmUp.has(p.contactId)) continue
        latencies.push(at - sent)
      }
    }
    arrivals.length = 0
  }
  const sockets: WebSocket[] = []
  try {
    const token = adminToken()
    log(`diff: ${DASHBOARDS} dashboards`)
    await Promise.all(Array.from({ length: DASHBOARDS }, () => new Promise<void>((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${server.port}/admin/ws?token=${token}`)
      sockets.push(socket)
      let first = true
      socket.on('message', (data: Buffer) => {
        // Only the arrival time here: parsing 100 copies in this process would delay the next
        // socket's handler and count this process's CPU as the server's latency.
        if (first) {
          first = false
          resolve()
          return
        }
        arrivals.push(performance.now(), data)
      })
      socket.once('error', reject)
    })))
    const now = Date.now()
    const paths = Array.from({ length: joins }, (_, j) => {
      const t = signToken({ aud: 'client', sub: `${prefix}-${j}`, clientId: `client-${j % 1000}`, name: `Joiner ${j}`, company: `Company ${j % 1000}`, ttlS: 3600 }, [BENCH_SECRET], now)
      return `/cat_heartbeat?token=${t}&sid=join${String(j).padStart(8, '0')}&path=%2Fclients&title=Home&event=nav`
    })
    const pool = new Pool(`http://127.0.0.1:${server.port}`, { connections: 32 })
    let failed = 0
    log(`diff: ${JOINS_PER_S} joins/s for ${durationS} s`)
    const started = performance.now()
    const cpuBefore = processCpuMs(server.child.pid as number)
    const ownBefore = process.cpuUsage()
    let next = 0
    const requests: Promise<void>[] = []
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        // As many as are due by now: the rate holds even when a tick comes late.
        const due = Math.min(joins, Math.floor(((performance.now() - started) / 1000) * JOINS_PER_S))
        for (; next < due; next += 1) {
          const j = next
          sentAt.set(`${prefix}-${j}`, performance.now())
          if (j < JOINS_PER_S / 2) warmUp.add(`${prefix}-${j}`)
          requests.push(pool.request({ method: 'GET', path: paths[j] as string }).then(async (res) => {
            await res.body.dump()
            if (res.statusCode !== 204) failed += 1
          }, () => {
            failed += 1
          }))
        }
        if (next >= joins) {
          clearInterval(timer)
          resolve()
        }
      }, TICK_MS)
    })
    const sendS = (performance.now() - started) / 1000
    // Share of one core the server used while the joins came in.
    const serverCpu = (processCpuMs(server.child.pid as number) - cpuBefore) / (sendS * 1000)
    const own = process.cpuUsage(ownBefore)
    const benchCpu = (own.user + own.system) / 1000 / (sendS * 1000)
    await Promise.all(requests)
    // The last diffs are on their way: wait for them (bounded), not for a fixed time.
    // Messages are parsed only once they stopped coming (half a second without one, at most
    // 5 s): parsing while they arrive would delay the arrival times being taken.
    const deadline = performance.now() + 5000
    for (let seen = -1; arrivals.length !== seen && performance.now() < deadline;) {
      seen = arrivals.length
      await new Promise((r) => setTimeout(r, 500))
    }
    tally()
    await pool.close()
    const p50 = quantile(latencies, 0.5)
    const p99 = quantile(latencies, 0.99)
    const expected = joins * DASHBOARDS
    return {
      name: 'diff',
      rows: [{
        scenario: 'live diffs',
        measure: `heartbeat sent → \`joined\` received, ${DASHBOARDS} dashboards, ${JOINS_PER_S} joins/s (window ${DIFF_WINDOW_MS} ms)`,
        value: `p50 ${Math.round(p50)} ms, p99 ${Math.round(p99)} ms${received < expected ? `, ${expected - received} of ${expected} missing` : ''}${failed > 0 ? `, ${failed} failed` : ''}`,
        target: `p99 ≤ ${DIFF_WINDOW_MS + 50} ms`,
        pass: p99 <= DIFF_WINDOW_MS + 50 && received === expected && failed === 0,
      detail: `while joins came in: server CPU ${Math.round(serverCpu * 100)} % of a core, this process (senders and dashboards) ${Math.round(benchCpu * 100)} %`,
      }],
      data: { serverCpu: round(serverCpu, 2), benchCpu: round(benchCpu, 2), dashboards: DASHBOARDS, joinsPerS: JOINS_PER_S, joins, achievedJoinsPerS: round(joins / sendS), windowMs: DIFF_WINDOW_MS, received, expected, failed, p50: round(p50, 1), p90: round(quantile(latencies, 0.9), 1), p99: round(p99, 1), max: round(quantile(latencies, 1), 1) },
    }
  } finally {
    for (const socket of sockets) socket.terminate()
    await server.stop()
    await cleanSite(site)
  }
}
