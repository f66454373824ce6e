/**
 * Fault probe: three real instances (processes of src/main.ts) share a private Redis and one
 * MariaDB database; one is killed with SIGKILL under load. The survivors take over what it
 * had read and not written (stale pending events are claimed), so no acknowledged event is
 * lost or written twice, and every contact's leave reaches the dashboards exactly once.
 */
import t from 'tap'
import { adminToken, clientToken, uniqueSite } from '../helpers/app.js'
import { createTestMysqlDatabase } from '../helpers/database.js'
import { startInstance } from '../helpers/instance.js'
import { UNLIMITED_HEARTBEATS, checkWritten, endCounts, grantConsent, openDashboard, percentile, printFigures, rssMiB, runLoad, sleep, startRedisServer } from '../helpers/faults.js'

const CONTACTS = 30

t.test('kill -9 of one of three instances under load: no event lost or duplicated, every leave exactly once', async (t) => {
  const redis = await startRedisServer(t)
  const databaseUrl = await createTestMysqlDatabase(t, 'kill')
  const env = { ...UNLIMITED_HEARTBEATS, REDIS_URL: redis.url, CAT_SITE: uniqueSite('kill'), DATABASE_URL: databaseUrl }
  // The first start migrates the database; the others find it migrated.
  const a = await startInstance(t, env)
  const [b, c] = await Promise.all([startInstance(t, env), startInstance(t, env)])
  const instances = [a, b, c]
  const tokens = Array.from({ length: CONTACTS }, (_, k) => clientToken({ sub: `kill-${k}`, clientId: 'client-kill' }))
  for (const [k, token] of tokens.entries()) await grantConsent(instances[k % 3]!.origin, token)
  const dashboards = await Promise.all([b, c].map((instance) => openDashboard(instance.origin, adminToken())))
  const rssBefore = instances.map((instance) => rssMiB(instance.pid))

  // Each batch of CONTACTS requests goes to the next instance, so every contact meets all three.
  const target = (i: number): number => Math.floor(i / CONTACTS) % 3
  const loads = instances.map((instance, n) => runLoad({
    origin: instance.origin,
    maxRequests: 3000,
    durationMs: 4000,
    concurrency: 2,
    timeoutMs: 5000,
    request: (j) => {
      // Worker n sends the requests i with target(i) = n, in order.
      const i = Math.floor(j / CONTACTS) * CONTACTS * 3 + n * CONTACTS + (j % CONTACTS)
      if (target(i) !== n) throw new Error('routing')
      return { path: `/cat_heartbeat?token=${tokens[i % CONTACTS]}&sid=killtab${i % CONTACTS}&event=nav&path=/n/${i}` }
    },
  }))
  await sleep(1500)
  a.signal('SIGKILL')
  const killed = await a.exited
  const results = await Promise.all(loads)
  const sent = results.flatMap((r) => r.sent.map((s) => ({ ...s, i: Number(s.path.split('/n/')[1]) })))

  // Every contact that was acknowledged closes its tab on a survivor.
  const ackedContacts = new Set(sent.filter((s) => s.status === 204).map((s) => s.i % CONTACTS))
  const leaves = await runLoad({
    origin: c.origin,
    maxRequests: CONTACTS,
    durationMs: 10_000,
    concurrency: 2,
    request: (k) => (ackedContacts.has(k) ? { path: `/cat_heartbeat?token=${tokens[k]}&sid=killtab${k}&event=leave&path=/bye` } : { path: '/healthz' }),
  })
  const rssAfter = [b, c].map((instance) => rssMiB(instance.pid))
  const acked = sent.filter((s) => s.status === 204).map((s) => `/n/${s.i}`)
  // The killed instance's unacknowledged reads are claimed once idle for the claim period.
  const check = await checkWritten(databaseUrl, acked, 60_000)
  const allLeft = await Promise.all(dashboards.map((d) => d.waitFor(() => [...ackedContacts].every((k) => d.messages.some((m) => m.left?.some((l) => l.contactId === `kill-${k}`) === true)), 10_000)))
  // A later join is the marker: what the leaves sent has arrived before it.
  await runLoad({ origin: b.origin, maxRequests: 1, durationMs: 5000, request: () => ({ path: `/cat_heartbeat?token=${tokens[0]}&sid=killmarker&event=nav&path=/marker` }) })
  await Promise.all(dashboards.map((d) => d.waitFor((m) => m.joined?.some((p) => p.contactId === 'kill-0') === true, 5000, 1)))
  const leftCounts = dashboards.map((d) => [...ackedContacts].map((k) => d.messages.flatMap((m) => m.left ?? []).filter((l) => l.contactId === `kill-${k}`).length))
  const ends = await endCounts(databaseUrl)
  for (const d of dashboards) d.socket.close()

  printFigures(t, 'instance-kill', {
    instances: 3,
    faults: 1,
    requests: sent.length,
    acked: acked.length,
    written: check.written,
    lost: check.lost,
    duplicates: check.duplicates,
    leaves: ackedContacts.size,
    leavesSeenOnce: leftCounts.flat().filter((n) => n === 1).length / 2,
    http5xx: sent.filter((s) => s.status >= 500).length,
    refusedByKilled: results[0]!.statuses[0] ?? 0,
    p50ms: percentile(results.flatMap((r) => r.latencies), 50),
    p99ms: percentile(results.flatMap((r) => r.latencies), 99),
    rssBeforeMiB: rssBefore.join('/'),
    rssAfterMiB: rssAfter.join('/'),
  })
  t.equal(killed.signal, 'SIGKILL', 'the instance died of SIGKILL')
  t.same(sent.filter((s) => s.status !== 204 && s.status !== 0).map((s) => `${s.status} ${s.body}`), [], 'the survivors answered every heartbeat 204')
  t.equal(ackedContacts.size, CONTACTS, 'every contact was acknowledged')
  t.equal(check.lost, 0, 'every acknowledged event is in the activity log')
  t.equal(check.duplicates, 0, 'no event is written twice')
  t.same(leaves.statuses, { 204: CONTACTS }, 'every leave was acknowledged')
  t.same(allLeft, [true, true], 'both dashboards saw every leave')
  t.same(leftCounts, [Array(CONTACTS).fill(1), Array(CONTACTS).fill(1)], 'each leave arrived exactly once on each dashboard')
  t.same([...ackedContacts].map((k) => ends.get(`kill-${k}`) ?? 0), Array(CONTACTS).fill(1), 'each session ended once in the activity log')
})
