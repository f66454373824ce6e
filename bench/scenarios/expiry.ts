/**
 * The expiry sweep: ONLINE contacts online, their tabs expiring EXPIRING_PER_S per second;
 * for each, the time from its expiry (last heartbeat + presence timeout) to one dashboard
 * receiving its `left`. Every instance sweeps once a second (the default), so the floor is
 * up to a second plus the diff window.
 */
import WebSocket from 'ws'
import { PRESENCE_TIMEOUT_S, adminToken, cleanSite, log, quantile, round, startServer } from '../lib.js'
import type { RunOptions, ScenarioResult } from './types.js'

const EXPIRING_PER_S = 1000
const EXPIRY_START_S = 4

export async function expiryScenario({ quick }: RunOptions): Promise<ScenarioResult> {
  const online = quick ? 20_000 : 100_000
  const measureS = quick ? 5 : 15
  const site = `bench-expiry-${process.pid}`
  log(`expiry: seeding ${online} online, ${EXPIRING_PER_S} expiring per second`)
  const server = await startServer({ kind: 'redis', site, online, expiry: { expiringPerS: EXPIRING_PER_S, expiryStartS: EXPIRY_START_S } })
  const latencies: number[] = []
  let snapshotSize = -1
  let socket: WebSocket | undefined
  try {
    // The server's clock runs ahead by clockOffsetMs; its tokens are checked against that clock.
    socket = new WebSocket(`ws://127.0.0.1:${server.port}/admin/ws?token=${adminToken(Date.now() + server.clockOffsetMs)}`, { maxPayload: 1 << 30 })
    const arrivals: (number | Buffer)[] = []
    socket.on('message', (data: Buffer) => {
      arrivals.push(Date.now(), data)
    })
    await new Promise((resolve, reject) => {
      socket?.once('open', resolve)
      socket?.once('error', reject)
    })
    const end = server.expiryStartsAt + measureS * 1000
    await new Promise((resolve) => setTimeout(resolve, end - Date.now() + 2000))
    const timeoutMs = PRESENCE_TIMEOUT_S * 1000
    let expiredInWindow = 0
    let snapshots = 0
    let later = 0
    for (let i = 0; i < arrivals.length; i += 2) {
      const at = arrivals[i] as number
      const message = JSON.parse((arrivals[i + 1] as Buffer).toString()) as { type: string; online?: unknown[]; left?: { at: number }[] }
      if (message.type === 'snapshot') {
        snapshots += 1
        snapshotSize = message.online?.length ?? -1
      }
      for (const left of message.left ?? []) {
        // left.at is the last time the tab was seen, on the server's clock.
        const expiredAt = left.at + timeoutMs - server.clockOffsetMs
        if (expiredAt >= end) {
          later += 1
          continue
        }
        expiredInWindow += 1
        latencies.push(at - expiredAt)
      }
    }
    const expected = measureS * EXPIRING_PER_S
    const p50 = quantile(latencies, 0.5)
    const p99 = quantile(latencies, 0.99)
    return {
      name: 'expiry',
      rows: [{
        scenario: 'expiry sweep',
        measure: `expiry → \`left\` received, ${online} online, ${EXPIRING_PER_S} expiring/s for ${measureS} s`,
        value: `p50 ${Math.round(p50)} ms, p99 ${Math.round(p99)} ms${expiredInWindow === expected ? '' : `, ${expiredInWindow} of ${expected} lefts`}`,
        target: 'p99 ≤ 1500 ms',
        pass: p99 <= 1500 && expiredInWindow === expected,
      }],
      data: { online, snapshots, later, snapshotSize, expiringPerS: EXPIRING_PER_S, measureS, lefts: expiredInWindow, expected, p50: round(p50), p90: round(quantile(latencies, 0.9)), p99: round(p99), max: round(quantile(latencies, 1)) },
    }
  } finally {
    socket?.terminate()
    await server.stop()
    await cleanSite(site)
  }
}
