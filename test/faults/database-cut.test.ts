/**
 * Fault probe: the database goes away under load and comes back. Heartbeats do not wait on
 * the database (presence is in Redis, events queue in its stream), so they keep their 204;
 * once the database is back the writer catches up: every acknowledged event is written once.
 */
import t from 'tap'
import { buildTestApp, cleanRedisSite, clientToken, uniqueSite } from '../helpers/app.js'
import { createTestMysqlDatabase } from '../helpers/database.js'
import { createTcpProxy } from '../helpers/tcp-proxy.js'
import { wsBase } from '../helpers/ws.js'
import { UNLIMITED_HEARTBEATS, checkWritten, grantConsent, percentile, printFigures, rssMiB, runLoad, sleep } from '../helpers/faults.js'

const CONTACTS = 12

t.test('database cut under load: heartbeats keep 204, events are written once it returns, 0 lost, 0 duplicates', async (t) => {
  const site = uniqueSite('dbcut')
  cleanRedisSite(t, site)
  const databaseUrl = await createTestMysqlDatabase(t, 'dbcut')
  const proxy = await createTcpProxy(Number(new URL(databaseUrl).port || 3306))
  t.teardown(() => proxy.close())
  const proxied = new URL(databaseUrl)
  proxied.port = String(proxy.port)
  const app = await buildTestApp(t, { site, activityLoops: true, env: { ...UNLIMITED_HEARTBEATS, DATABASE_URL: proxied.toString() } })
  const origin = (await wsBase(app)).replace('ws:', 'http:')
  const tokens = Array.from({ length: CONTACTS }, (_, k) => clientToken({ sub: `dbcut-${k}`, clientId: 'client-dbcut' }))
  for (const token of tokens) await grantConsent(origin, token)
  const rssBefore = rssMiB()

  const load = runLoad({
    origin,
    maxRequests: 6000,
    durationMs: 5000,
    concurrency: 4,
    request: (i) => ({ path: `/cat_heartbeat?token=${tokens[i % CONTACTS]}&sid=dbcuttab${i % CONTACTS}&event=nav&path=/n/${i}` }),
  })
  await sleep(1000)
  await proxy.stop()
  await sleep(2000)
  await proxy.start()
  const result = await load
  const rssAfter = rssMiB()

  const acked = result.sent.filter((s) => s.status === 204).map((s) => `/n/${s.i}`)
  const fiveXx = result.sent.filter((s) => s.status >= 500).length
  const check = await checkWritten(databaseUrl, acked, 20_000)
  printFigures(t, 'database-cut', {
    requests: result.sent.length,
    faults: 1,
    acked: acked.length,
    written: check.written,
    lost: check.lost,
    duplicates: check.duplicates,
    http5xx: fiveXx,
    p50ms: percentile(result.latencies, 50),
    p99ms: percentile(result.latencies, 99),
    rssBeforeMiB: rssBefore,
    rssAfterMiB: rssAfter,
  })
  t.same(result.statuses, { 204: result.sent.length }, 'every heartbeat answered 204, through the cut too')
  t.ok(acked.length > 0, 'the load was acknowledged')
  t.equal(check.lost, 0, 'every acknowledged event is in the activity log')
  t.equal(check.duplicates, 0, 'no event is written twice')
})
