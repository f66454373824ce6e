/**
 * Fault probe: the private Redis of the test is killed (SIGKILL) under load and started again,
 * once with persistence (append-only file, fsync per write) and once without (it comes back
 * empty). Heartbeats answer 503 while it is away, and after it returns the writer resumes
 * (a lost consumer group is created again), dashboards get a fresh snapshot instead of being
 * dropped, and every event acknowledged with a 204 is in the activity log, once.
 */
import t from 'tap'
import { adminToken, buildTestApp, clientToken, uniqueSite } from '../helpers/app.js'
import { createTestMysqlDatabase } from '../helpers/database.js'
import { connectDashboard, wsBase } from '../helpers/ws.js'
import { UNLIMITED_HEARTBEATS, checkWritten, createGate, eventually, grantConsent, percentile, printFigures, rssMiB, runLoad, sleep, startRedisServer } from '../helpers/faults.js'

const CONTACTS = 10

for (const persistence of [true, false]) {
  const label = persistence ? 'with persistence' : 'without persistence'
  t.test(`Redis killed and restarted ${label} under load: writer resumes, dashboards resynced, 0 acknowledged events lost`, async (t) => {
    const redis = await startRedisServer(t, { persistence })
    const databaseUrl = await createTestMysqlDatabase(t, 'restart')
    const site = uniqueSite('restart')
    const app = await buildTestApp(t, { activityLoops: true, env: { ...UNLIMITED_HEARTBEATS, REDIS_URL: redis.url, CAT_SITE: site, DATABASE_URL: databaseUrl } })
    const origin = (await wsBase(app)).replace('ws:', 'http:')
    const tokens = Array.from({ length: CONTACTS }, (_, k) => clientToken({ sub: `restart-${k}`, clientId: 'client-restart' }))
    for (const token of tokens) await grantConsent(origin, token)
    const dashboard = await connectDashboard(app, adminToken())
    await dashboard.waitFor((m) => m.type === 'snapshot')
    let dashboardClosed: { code: number } | undefined
    void dashboard.closed.then((closed) => (dashboardClosed = closed))
    const rssBefore = rssMiB()

    const gate = createGate()
    const track = { inFlight: 0 }
    const ackedSoFar: string[] = []
    const loadStart = performance.now()
    const load = runLoad({
      origin,
      // The duration bounds the load, not the count: 503s while Redis is away come fast, and a
      // count would be spent before the restart, leaving nothing to show that heartbeats resume.
      maxRequests: 100_000,
      durationMs: 7000,
      concurrency: 4,
      gate: gate.wait,
      track,
      timeoutMs: 5000,
      onResponse: (s) => {
        if (s.status === 204) ackedSoFar.push(`/n/${s.i}`)
      },
      request: (i) => ({ path: `/cat_heartbeat?token=${tokens[i % CONTACTS]}&sid=restarttab${i % CONTACTS}&event=nav&path=/n/${i}` }),
    })
    await sleep(1500)
    if (!persistence) {
      // What Redis held and the writer had not written yet dies with it: that is what
      // persistence is for. Without it, the kill comes once the log has caught up.
      gate.close()
      await eventually(() => track.inFlight === 0, 5000, 10)
      const caughtUp = await checkWritten(databaseUrl, [...ackedSoFar], 10_000)
      t.equal(caughtUp.lost, 0, 'the log caught up before the kill')
    }
    // A resync is only sent once the subscription is back, so any snapshot after the kill is
    // one; counting from the restart's return would miss a resync that came before it did.
    const killedAt = dashboard.messages.length
    await redis.kill()
    gate.open()
    await sleep(1000)
    await redis.start()
    const restartedAtMs = performance.now() - loadStart
    const result = await load
    const rssAfter = rssMiB()

    const acked = result.sent.filter((s) => s.status === 204).map((s) => `/n/${s.i}`)
    const ackedAfterRestart = result.sent.filter((s) => s.status === 204 && s.at > restartedAtMs).length
    const check = await checkWritten(databaseUrl, acked, 20_000)
    const unexpected = result.sent.filter((s) => s.status !== 204 && !(s.status === 503 && s.retryAfter !== undefined) && s.status !== 0)
    const resynced = await dashboard.waitFor((m) => m.type === 'snapshot', 5000, killedAt).then(() => true, () => false)
    printFigures(t, `redis-restart-${persistence ? 'aof' : 'none'}`, {
      requests: result.sent.length,
      faults: 1,
      acked: acked.length,
      ackedAfterRestart,
      written: check.written,
      lost: check.lost,
      duplicates: check.duplicates,
      http503: result.statuses[503] ?? 0,
      http5xx: result.sent.filter((s) => s.status >= 500).length,
      networkErrors: result.statuses[0] ?? 0,
      p50ms: percentile(result.latencies, 50),
      p99ms: percentile(result.latencies, 99),
      rssBeforeMiB: rssBefore,
      rssAfterMiB: rssAfter,
    })
    t.same(unexpected.map((s) => `${s.status} ${s.body}`), [], 'every answer is 204, or 503 with Retry-After while Redis is away')
    t.ok(ackedAfterRestart > 0, 'heartbeats are acknowledged again after the restart')
    t.equal(check.lost, 0, 'every acknowledged event is in the activity log (the writer resumed)')
    t.equal(check.duplicates, 0, 'no event is written twice')
    t.ok(resynced, 'the dashboard got a fresh snapshot after the reconnect')
    t.equal(dashboardClosed, undefined, 'the dashboard was not dropped')
    await dashboard.close()
  })
}
