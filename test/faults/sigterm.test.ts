/**
 * Fault probe: SIGTERM to a real instance (src/main.ts, memory engine, MariaDB) under load.
 * Readiness turns 503, dashboards are closed with 1012, the events it buffered are written
 * before it exits, it exits 0, and nothing it acknowledged is lost.
 */
import t from 'tap'
import { Pool } from 'undici'
import { adminToken, clientToken } from '../helpers/app.js'
import { createTestMysqlDatabase } from '../helpers/database.js'
import { startInstance } from '../helpers/instance.js'
import { UNLIMITED_HEARTBEATS, checkWritten, grantConsent, isErrorBody, openDashboard, percentile, printFigures, rssMiB, runLoad, sleep } from '../helpers/faults.js'

const CONTACTS = 10

t.test('SIGTERM under load: readiness 503, dashboards 1012, buffered events flushed, exit 0, nothing acknowledged lost', async (t) => {
  const databaseUrl = await createTestMysqlDatabase(t, 'sigterm')
  const instance = await startInstance(t, { ...UNLIMITED_HEARTBEATS, DATABASE_URL: databaseUrl })
  const tokens = Array.from({ length: CONTACTS }, (_, k) => clientToken({ sub: `term-${k}`, clientId: 'client-term' }))
  for (const token of tokens) await grantConsent(instance.origin, token)
  const dashboard = await openDashboard(instance.origin, adminToken())
  await dashboard.waitFor((m) => m.type === 'snapshot', 5000)
  const rssBefore = rssMiB(instance.pid)

  const load = runLoad({
    origin: instance.origin,
    maxRequests: 8000,
    durationMs: 4000,
    concurrency: 4,
    timeoutMs: 5000,
    request: (i) => ({ path: `/cat_heartbeat?token=${tokens[i % CONTACTS]}&sid=termtab${i % CONTACTS}&event=nav&path=/n/${i}` }),
  })
  await sleep(1500)
  const rssAtSignal = rssMiB(instance.pid)
  instance.signal('SIGTERM')
  const closed = await dashboard.closed
  // The dashboard's 1012 is sent once the instance is draining: from here on it is not ready.
  const ready = await (async () => {
    const pool = new Pool(instance.origin, { connections: 1 })
    try {
      const res = await pool.request({ method: 'GET', path: '/readyz' })
      const retryAfter = res.headers['retry-after']
      return { status: res.statusCode, retryAfter, body: await res.body.text() }
    } catch {
      return { status: 0, retryAfter: undefined, body: '' }
    } finally {
      await pool.destroy()
    }
  })()
  const exit = await instance.exited
  const result = await load

  const acked = result.sent.filter((s) => s.status === 204).map((s) => `/n/${s.i}`)
  const unavailable = result.sent.filter((s) => s.status === 503)
  const check = await checkWritten(databaseUrl, acked, 5000)
  printFigures(t, 'sigterm', {
    requests: result.sent.length,
    faults: 1,
    acked: acked.length,
    written: check.written,
    lost: check.lost,
    duplicates: check.duplicates,
    http503: unavailable.length,
    http5xx: result.sent.filter((s) => s.status >= 500).length,
    refusedAfterClose: result.statuses[0] ?? 0,
    readyzAfterSignal: ready.status,
    dashboardClose: closed.code,
    exitCode: String(exit.code),
    p50ms: percentile(result.latencies, 50),
    p99ms: percentile(result.latencies, 99),
    rssBeforeMiB: rssBefore,
    rssAtSignalMiB: rssAtSignal,
  })
  t.equal(closed.code, 1012, 'the dashboard is closed with 1012 (service restart)')
  t.not(ready.status, 200, 'readiness is not 200 once draining')
  if (ready.status !== 0) {
    t.equal(ready.status, 503, 'readiness answers 503 while draining')
    t.ok(ready.retryAfter !== undefined, 'with Retry-After')
  }
  t.same(exit, { code: 0, signal: null }, 'the process exits 0')
  t.ok(acked.length > 0, 'the load was acknowledged before the signal')
  t.equal(check.lost, 0, 'every acknowledged event was written before the exit')
  t.equal(check.duplicates, 0, 'no event is written twice')
  t.same(result.sent.filter((s) => s.status !== 204 && s.status !== 0 && !(s.status === 503 && s.retryAfter !== undefined && isErrorBody(s.body))).map((s) => `${s.status} ${s.body}`), [], 'while draining, a heartbeat is refused with 503, Retry-After and the error body, or its connection is')
  t.notMatch(instance.output(), /"level":50/, 'no error in the log')
})
