/**
 * The server of the `million` scenario, in its own process:
 *
 *   node --expose-gc --import tsx bench/million-server.ts '<MillionSpec as JSON>'
 *
 * Built by the production `buildApp` on Redis (the background activity writer off). Its clock
 * stands still at T while it is set up, so every contact stays online however long that
 * takes: each contact's consent row, then its first heartbeat through the engine's write path
 * (a `nav`). The `leaving` contacts were last seen earlier, so that once the clock runs they
 * expire `leavingPerS` a second from LEAVING_FROM_S into the run. Prints
 * `ready {"port","startMs","baseline"}`, then answers lines on stdin:
 *   `run`     the clock runs on from T (answers `running`);
 *   `memory`  after a full GC, `memory {"heapUsed","arrayBuffers","rss","tokens","contacts"}`.
 */
import { rmSync } from 'node:fs'
import { createInterface } from 'node:readline'
import BetterSqlite3 from 'better-sqlite3'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config/config.js'
import { sqliteFilePath } from '../src/activity/database.js'
import type { Heartbeat } from '../src/presence/presence-engine.js'
import { LEAVING_FROM_S, type MillionSpec } from './million-spec.js'
import { BENCH_SECRET, PRESENCE_TIMEOUT_S, REDIS_URL, contactClaims, tabId } from './lib.js'


function gc(): void {
  ;(globalThis as { gc?: () => void }).gc?.()
  ;(globalThis as { gc?: () => void }).gc?.()
}

function memory(extra: Record<string, number> = {}): Record<string, number> {
  gc()
  const { heapUsed, arrayBuffers, rss } = process.memoryUsage()
  return { heapUsed, arrayBuffers, rss, ...extra }
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as MillionSpec
  const startMs = Date.now()
  let clock: number | undefined = startMs
  let offset = 0
  const now = (): number => clock ?? Date.now() + offset
  const config = loadConfig({
    CAT_SECRET: BENCH_SECRET,
    LOG_LEVEL: process.env.BENCH_SERVER_LOG ?? 'silent',
    CAT_SITE: spec.site,
    CAT_DATA_DIR: `/tmp/cat-bench-${spec.site}`,
    CAT_PRESENCE_TIMEOUT_S: String(PRESENCE_TIMEOUT_S),
    REDIS_URL,
  })
  const app = await buildApp(config, { now, sweepIntervalMs: 1000, activityLoops: false })
  const baseline = memory()

  // The ledger rows in one transaction: through the store they would take many minutes.
  const sqlite = new BetterSqlite3(sqliteFilePath(config.dataDir))
  const insert = sqlite.prepare("INSERT INTO cat_consents (id, contact_id, client_id, decision, version, locale, at, ip, user_agent) VALUES (?, ?, ?, 'granted', 'bench', 'en', ?, '127.0.0.0', 'bench')")
  sqlite.transaction(() => {
    for (let j = 0; j < spec.online; j += 1) insert.run(`bench-${j}`, contactClaims(j).sub, contactClaims(j).clientId, startMs)
  })()
  sqlite.close()

  const timeoutMs = PRESENCE_TIMEOUT_S * 1000
  const chunk = 500
  for (let i = 0; i < spec.online; i += chunk) {
    const batch: Promise<unknown>[] = []
    for (let j = i; j < Math.min(spec.online, i + chunk); j += 1) {
      // Leaving contact j expires at T + LEAVING_FROM_S + j / leavingPerS.
      clock = j < spec.leaving ? startMs - timeoutMs + LEAVING_FROM_S * 1000 + Math.floor((j * 1000) / spec.leavingPerS) : startMs
      const claims = contactClaims(j)
      const beat: Heartbeat = { contactId: claims.sub, clientId: claims.clientId, name: claims.name, company: claims.company, sid: tabId(j), path: '/clients/tickets', title: 'Support tickets', event: 'nav' }
      batch.push(app.presence.heartbeat(beat))
    }
    await Promise.all(batch)
  }
  clock = startMs
  await app.listen({ port: 0, host: '127.0.0.1' })
  process.stdout.write(`ready ${JSON.stringify({ port: (app.server.address() as { port: number }).port, startMs, baseline })}\n`)

  const lines = createInterface({ input: process.stdin })
  lines.on('line', (line) => {
    if (line === 'run') {
      offset = startMs - Date.now()
      clock = undefined
      process.stdout.write('running\n')
    } else if (line === 'memory') {
      const { tokens, contacts } = app.clientContacts.usage()
      process.stdout.write(`memory ${JSON.stringify(memory({ tokens, contacts }))}\n`)
    }
  })
  process.on('SIGTERM', () => {
    void app.close().then(() => {
      rmSync(config.dataDir, { recursive: true, force: true })
      process.exit(0)
    })
  })
}

await main()
