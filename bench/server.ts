/**
 * A server for the benchmarks, in its own process so the load generator does not share its
 * event loop. `node --import tsx bench/server.ts '<ServerSpec as JSON>'` prints
 * `ready {"port":…,"clockOffsetMs":…}` once listening and once its contacts are seeded.
 *
 * The engines are built by the production `buildApp`; only the background activity writer is
 * off (its own scenario measures it), so a heartbeat benchmark measures the heartbeat.
 */
import { rmSync } from 'node:fs'
import { PerformanceObserver } from 'node:perf_hooks'
import { getHeapSpaceStatistics } from 'node:v8'
import BetterSqlite3 from 'better-sqlite3'
import Fastify from 'fastify'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config/config.js'
import { sqliteFilePath } from '../src/activity/database.js'
import type { Heartbeat } from '../src/presence/presence-engine.js'
import { BENCH_SECRET, REDIS_URL, contactClaims, profileFromHere, tabId, PRESENCE_TIMEOUT_S, type ServerSpec } from './lib.js'

/** BENCH_GC=1: the time spent in GC by kind, from `ready` (or SIGUSR2) to SIGTERM, on stderr. */
function gcFromHere(kind: string): () => void {
  if (process.env.BENCH_GC !== '1') return () => {}
  const kinds = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' } as Record<number, string>
  let totals = new Map<string, { count: number; ms: number }>()
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const name = kinds[((entry as unknown as { detail?: { kind: number } }).detail)?.kind ?? 0] ?? 'other'
      const total = totals.get(name) ?? { count: 0, ms: 0 }
      total.count += 1
      total.ms += entry.duration
      totals.set(name, total)
    }
  })
  observer.observe({ entryTypes: ['gc'] })
  const spaces = (): string => getHeapSpaceStatistics().map((s) => `${s.space_name.replace('_space', '')} ${(s.space_used_size / 1e6).toFixed(1)}`).join(', ')
  let before = spaces()
  process.on('SIGUSR2', () => {
    totals = new Map()
    before = spaces()
  })
  return () => {
    const text = [...totals].map(([name, t]) => `${name} ${t.count}× ${t.ms.toFixed(0)} ms`).join(', ')
    const after = spaces()
    ;(globalThis as { gc?: () => void }).gc?.()
    process.stderr.write(`gc ${kind}: ${text}\n  heap MB before: ${before}\n  heap MB after:  ${after}\n  after a full gc: ${spaces()}\n`)
  }
}

function readyAndServe(port: number, stopProfile: () => Promise<void>, close: () => Promise<void>, extra: Record<string, unknown> = {}): void {
  const stopGc = gcFromHere((JSON.parse(process.argv[2] ?? '{}') as ServerSpec).kind)
  process.stdout.write(`ready ${JSON.stringify({ port, ...extra })}\n`)
  process.on('SIGTERM', () => void stopProfile().then(() => stopGc()).then(close).then(() => process.exit(0)))
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as ServerSpec
  if (spec.kind === 'bare') {
    // The baseline: the fastest answer Fastify gives on this machine, a route returning 204.
    const app = Fastify({ logger: false })
    app.get('/cat_heartbeat', async (_request, reply) => reply.code(204).send())
    await app.listen({ port: 0, host: '127.0.0.1' })
    readyAndServe((app.server.address() as { port: number }).port, await profileFromHere(spec.kind), () => app.close(), { clockOffsetMs: 0 })
    return
  }
  let clock: number | undefined
  let offset = 0
  const now = (): number => clock ?? Date.now() + offset
  const config = loadConfig({
    CAT_SECRET: BENCH_SECRET,
    LOG_LEVEL: 'silent',
    CAT_SITE: spec.site,
    CAT_DATA_DIR: `/tmp/cat-bench-${spec.site}`,
    CAT_HEARTBEAT_INTERVAL_S: String(spec.timing?.heartbeatIntervalS ?? 30),
    CAT_PRESENCE_TIMEOUT_S: String(spec.timing?.presenceTimeoutS ?? PRESENCE_TIMEOUT_S),
    CAT_DIFF_INTERVAL_MS: String(spec.diffIntervalMs ?? 100),
    ...(spec.operations === false
      ? { CAT_METRICS: 'off', CAT_RATE_LIMIT_HEARTBEATS: '0', CAT_RATE_LIMIT_AUTH_FAILURES: '0', CAT_RATE_LIMIT_CONSENT: '0', CAT_RATE_LIMIT_ADMIN: '0' }
      : {}),
    ...(spec.kind === 'redis' ? (spec.redisClusterNodes === undefined ? { REDIS_URL: spec.redisUrl ?? REDIS_URL } : { REDIS_CLUSTER_NODES: spec.redisClusterNodes }) : {}),
  })
  const app = await buildApp(config, { now, sweepIntervalMs: spec.sweepIntervalMs ?? 1000, activityLoops: false })
  const online = spec.online ?? 0
  // The expiry scenario seeds far in the future, so nothing expires while seeding; at `ready`
  // the clock jumps to just before the first expiry.
  const future = Date.now() + 3_600_000
  const stepMs = spec.expiry === undefined ? 0 : 1000 / spec.expiry.expiringPerS
  // Every contact has consented (heartbeats are refused otherwise), as after the banner: the
  // ledger rows in one transaction (through the store they would take a minute per 100 000),
  // then each contact asked for once, as its first heartbeat would, which caches the answer.
  const consented: [string, string][] = []
  if (spec.expiry === undefined) for (let j = 0; j < online; j += 1) consented.push([contactClaims(j).sub, contactClaims(j).clientId])
  for (let j = 0; j < (spec.consented?.count ?? 0); j += 1) consented.push([`${spec.consented?.prefix}-${j}`, `client-${j % 1000}`])
  if (consented.length > 0) {
    const sqlite = new BetterSqlite3(sqliteFilePath(config.dataDir))
    const insert = sqlite.prepare("INSERT INTO cat_consents (id, contact_id, client_id, decision, version, locale, at, ip, user_agent) VALUES (?, ?, ?, 'granted', 'bench', 'en', ?, '127.0.0.0', 'bench')")
    const at = Date.now()
    sqlite.transaction(() => {
      for (const [id, clientId] of consented) insert.run(`bench-${id}`, id, clientId, at)
    })()
    sqlite.close()
    for (const [id] of consented) if (!(await app.consent.isGranted(id))) throw new Error(`consent for ${id} was not recorded`)
  }
  const chunk = 500
  // Last contact first when seeding expiries: the sweeper runs meanwhile on the seeding clock,
  // which then only goes back, so it never reaches a tab already seeded.
  for (let i = 0; i < online; i += chunk) {
    const batch: Promise<unknown>[] = []
    for (let k = i; k < Math.min(online, i + chunk); k += 1) {
      const j = spec.expiry === undefined ? k : online - 1 - k
      const claims = contactClaims(j)
      const beat: Heartbeat = { contactId: claims.sub, clientId: claims.clientId, name: claims.name, company: claims.company, sid: tabId(j), path: '/clients/tickets', title: 'Support tickets', event: 'nav' }
      if (spec.expiry !== undefined) clock = future - PRESENCE_TIMEOUT_S * 1000 + Math.round(j * stepMs)
      batch.push(app.presence.heartbeat(beat))
    }
    await Promise.all(batch)
  }
  clock = undefined
  if (spec.expiry !== undefined) offset = future - Date.now() - spec.expiry.expiryStartS * 1000
  await app.listen({ port: 0, host: '127.0.0.1' })
  const expiryStartsAt = spec.expiry === undefined ? undefined : future - offset
  readyAndServe((app.server.address() as { port: number }).port, await profileFromHere(spec.kind), async () => {
    await app.close()
    rmSync(config.dataDir, { recursive: true, force: true })
  }, { clockOffsetMs: offset, expiryStartsAt })
}

await main()
