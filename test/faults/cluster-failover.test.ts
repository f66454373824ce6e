/**
 * Fault probe: a master of a Redis Cluster dies under heartbeat load. Two real instances
 * (processes of src/main.ts) run on a private cluster (3 masters, 3 replicas) and one MariaDB
 * database; the master that serves the site's presence is killed with SIGKILL while contacts
 * beat through both instances, and its replica takes over. Meanwhile every heartbeat gets 204,
 * or 503 with Retry-After; afterwards the dashboards have had a fresh snapshot, hold exactly
 * the contacts still beating, and each contact that stops gets exactly one `left` on each
 * dashboard and one `end` in the activity log.
 */
import t from 'tap'
import { DEFAULT_PARTITIONS, partitionKeys } from '../../src/presence/redis/keys.js'
import { adminToken, clientToken, uniqueSite } from '../helpers/app.js'
import { createTestMysqlDatabase } from '../helpers/database.js'
import { UNLIMITED_HEARTBEATS, checkWritten, endCounts, eventually, grantConsent, isErrorBody, openDashboard, percentile, printFigures, runLoad, type DashboardMessage, type Sent } from '../helpers/faults.js'
import { startInstance } from '../helpers/instance.js'
import { startPrivateCluster } from '../helpers/private-cluster.js'
import { slotOf } from '../helpers/redis-cluster.js'

const CONTACTS = 12
/** Contacts 0 … STOPPED-1 stop beating after the failover and expire; the others go on. */
const STOPPED = 6
const HEARTBEAT_INTERVAL_S = 1
/** Longer than a failover takes here (the cluster's node timeout is 2 s), so no beating contact expires during it. */
const PRESENCE_TIMEOUT_S = 8

/**
 * The key whose master is killed: partition 0's records. The contacts of every partition on
 * that master (8 of the 24 on 3 masters) are the ones hit.
 */
function victimKey(site: string): string {
  return partitionKeys(site, 0, DEFAULT_PARTITIONS).records
}

/** The contacts a dashboard shows after its messages: a snapshot replaces them, a diff patches them. */
function viewOf(messages: readonly DashboardMessage[]): Set<string> {
  const view = new Set<string>()
  for (const message of messages) {
    if (message.type === 'snapshot') {
      view.clear()
      for (const p of message.online ?? []) view.add(p.contactId)
    } else if (message.type === 'diff') {
      for (const l of message.left ?? []) view.delete(l.contactId)
      for (const p of message.joined ?? []) view.add(p.contactId)
      for (const p of (message as { updated?: { contactId: string }[] }).updated ?? []) view.add(p.contactId)
    }
  }
  return view
}

const sorted = (ids: Iterable<string>): string[] => [...ids].sort()

t.test('a master killed under heartbeat load: 204 or 503 with Retry-After, then presence, resync and expiry right', async (t) => {
  const cluster = await startPrivateCluster(t)
  const databaseUrl = await createTestMysqlDatabase(t, 'failover')
  const site = uniqueSite('failover')
  const env = {
    ...UNLIMITED_HEARTBEATS,
    REDIS_CLUSTER_NODES: cluster.seeds,
    CAT_SITE: site,
    DATABASE_URL: databaseUrl,
    CAT_HEARTBEAT_INTERVAL_S: String(HEARTBEAT_INTERVAL_S),
    CAT_PRESENCE_TIMEOUT_S: String(PRESENCE_TIMEOUT_S),
  }
  // The first start migrates the database; the second finds it migrated.
  const a = await startInstance(t, env)
  const b = await startInstance(t, env)
  const instances = [a, b]
  const exits: string[] = []
  for (const instance of instances) void instance.exited.then(({ code, signal }) => exits.push(`${instance.origin} exited (${code ?? signal})`))

  const ids = Array.from({ length: CONTACTS + 1 }, (_, k) => `fo-${k}`)
  const tokens = ids.map((sub) => clientToken({ sub, clientId: 'client-failover' }))
  for (const token of tokens) await grantConsent(a.origin, token)
  const marker = CONTACTS
  const dashboards = await Promise.all(instances.map((instance) => openDashboard(instance.origin, adminToken())))
  const closes: string[] = []
  for (const [n, d] of dashboards.entries()) void d.closed.then(({ code }) => closes.push(`dashboard ${n} closed ${code}`))

  // Every contact beats through both instances; every fourth round of a contact is a page
  // view (the full script, an event appended), the others periodic beats (the fast path).
  let active = ids.slice(0, CONTACTS)
  let stopLoad = false
  /** When each instance's load last got a 204 (ms since the load began). */
  const lastOk: (number | undefined)[] = instances.map(() => undefined)
  const started = performance.now()
  const loads = instances.map((instance, n) => runLoad({
    origin: instance.origin,
    maxRequests: 100_000,
    durationMs: 120_000,
    concurrency: 2,
    gapMs: 20,
    timeoutMs: 10_000,
    stop: () => stopLoad,
    onResponse: (s) => {
      if (s.status === 204) lastOk[n] = s.at
    },
    request: (i) => {
      const id = active[i % active.length] as string
      const k = ids.indexOf(id)
      const round = Math.floor(i / active.length)
      const nav = round % 4 === 0
      const path = nav ? `/fo/${n}/${i}` : '/fo'
      return { path: `/cat_heartbeat?token=${tokens[k]}&sid=fotab-${String(k).padStart(4, '0')}&event=${nav ? 'nav' : 'beat'}&path=${encodeURIComponent(path)}` }
    },
  }))
  const everyone = sorted(ids.slice(0, CONTACTS))
  const allOnline = await Promise.all(dashboards.map((d) => eventually(() => sorted(viewOf(d.messages)).join() === everyone.join(), 15_000)))
  t.same(allOnline, [true, true], 'both dashboards show every contact before the fault')

  const slot = await slotOf(victimKey(site), cluster.seeds)
  const master = await cluster.masterOf(slot)
  const replica = await cluster.replicaOf(master)
  const seenBeforeKill = dashboards.map((d) => d.messages.length)
  const killedAt = performance.now() - started
  await cluster.kill(master)
  const promoted = await eventually(async () => (await cluster.masterOf(slot).catch(() => '')) === replica, 30_000, 100)
  const promotedAt = performance.now() - started
  t.ok(promoted, `the replica ${replica} took over slot ${slot} from ${master}`)
  // Served again through both instances, then a while of steady load.
  const servedAgain = await eventually(() => lastOk.every((at) => at !== undefined && at > promotedAt), 30_000)
  t.ok(servedAgain, 'both instances serve heartbeats again after the takeover')
  const resynced = await Promise.all(dashboards.map((d, n) => eventually(() => d.messages.slice(seenBeforeKill[n]).some((m) => m.type === 'snapshot'), 15_000)))
  t.same(resynced, [true, true], 'each dashboard got a fresh snapshot after the failover')
  const viewAfter = await Promise.all(dashboards.map((d) => eventually(() => sorted(viewOf(d.messages)).join() === everyone.join(), 10_000)))
  t.same(viewAfter, [true, true], 'after the failover both dashboards show every contact beating')

  // Half the contacts stop and expire; the other half go on beating.
  const stoppedIds = ids.slice(0, STOPPED)
  active = ids.slice(STOPPED, CONTACTS)
  const seenBeforeStop = dashboards.map((d) => d.messages.length)
  const goingOn = sorted(active)
  const expired = await Promise.all(dashboards.map((d) => eventually(() => sorted(viewOf(d.messages)).join() === goingOn.join(), (PRESENCE_TIMEOUT_S + 10) * 1000)))
  t.same(expired, [true, true], 'each dashboard ends with exactly the contacts still beating')
  // A later join is the marker: whatever was published before it has arrived before it.
  const markerLoad = await runLoad({ origin: b.origin, maxRequests: 1, durationMs: 5000, request: () => ({ path: `/cat_heartbeat?token=${tokens[marker]}&sid=marker-tab&event=nav&path=/marker` }) })
  t.same(markerLoad.statuses, { 204: 1 }, 'the marker joined')
  const markerSeen = await Promise.all(dashboards.map((d, n) => d.waitFor((m) => m.joined?.some((p) => p.contactId === ids[marker]) === true, 5000, seenBeforeStop[n])))
  t.same(markerSeen, [true, true], 'both dashboards saw the marker join')
  stopLoad = true
  const results = await Promise.all(loads)

  const leftCounts = dashboards.map((d) => {
    const counts = new Map<string, number>()
    for (const m of d.messages) for (const l of m.left ?? []) counts.set(l.contactId, (counts.get(l.contactId) ?? 0) + 1)
    return counts
  })
  const sent: Sent[] = results.flatMap((r) => r.sent)
  const acked = sent.filter((s) => s.status === 204 && s.path.includes('event=nav')).map((s) => decodeURIComponent(/path=([^&]*)/.exec(s.path)?.[1] ?? ''))
  const check = await checkWritten(databaseUrl, acked, 30_000)
  const ends = await endCounts(databaseUrl, stoppedIds)
  for (const d of dashboards) d.socket.close()

  const unavailable = sent.filter((s) => s.status === 503)
  const windowMs = unavailable.length === 0 ? 0 : Math.round((unavailable.at(-1) as Sent).at - (unavailable[0] as Sent).at)
  const during = sent.filter((s) => s.at >= killedAt && s.at <= promotedAt)
  printFigures(t, 'cluster-failover', {
    instances: 2,
    contacts: CONTACTS,
    requests: sent.length,
    http204: sent.filter((s) => s.status === 204).length,
    http503: unavailable.length,
    http5xxOther: sent.filter((s) => s.status >= 500 && s.status !== 503).length,
    networkErrors: sent.filter((s) => s.status === 0).length,
    windowMs,
    takeoverMs: Math.round(promotedAt - killedAt),
    ackedNavs: acked.length,
    written: check.written,
    lost: check.lost,
    duplicates: check.duplicates,
    expired: STOPPED,
    leftOncePerDashboard: leftCounts.map((counts) => stoppedIds.filter((id) => counts.get(id) === 1).length).join('/'),
    endsOnce: stoppedIds.filter((id) => ends.get(id) === 1).length,
    p50ms: percentile(during.map((s) => s.ms), 50),
    p99ms: percentile(during.map((s) => s.ms), 99),
  })

  t.same(sent.filter((s) => s.status !== 204 && s.status !== 503).map((s) => `${s.status || s.error} ${s.body}`), [], 'every heartbeat was answered 204 or 503: no 500, no dropped connection')
  t.same(unavailable.filter((s) => s.retryAfter === undefined || !isErrorBody(s.body)).map((s) => s.body), [], 'every 503 has Retry-After and the error body')
  t.ok(unavailable.length > 0, `the failover was felt: ${unavailable.length} × 503 over ${windowMs} ms`)
  t.same(exits, [], 'both instances stayed up')
  t.same(closes, [], 'the dashboards stayed connected')
  t.equal(check.lost, 0, 'every acknowledged page view is in the activity log')
  t.equal(check.duplicates, 0, 'no page view is written twice')
  t.same(leftCounts.map((counts) => stoppedIds.map((id) => counts.get(id) ?? 0)), [Array(STOPPED).fill(1), Array(STOPPED).fill(1)], 'each expired contact left exactly once on each dashboard')
  t.same(leftCounts.map((counts) => active.filter((id) => counts.has(id))), [[], []], 'no contact that kept beating was shown leaving')
  t.same(stoppedIds.map((id) => ends.get(id) ?? 0), Array(STOPPED).fill(1), 'each expired contact has exactly one end in the activity log')
  t.same(active.filter((id) => ends.has(id)), [], 'no contact that kept beating has an end')
})
