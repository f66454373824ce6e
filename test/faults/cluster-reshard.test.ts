/**
 * Fault probe: two real instances (processes of src/main.ts) on a private Redis Cluster and one
 * MariaDB database, dashboards connected, consented contacts beating. Under that load the slot
 * of one partition of the site's presence moves to another master the way resharding moves it
 * (CLUSTER SETSLOT IMPORTING / MIGRATING, MIGRATE … KEYS in batches, SETSLOT NODE on every
 * master). Heartbeats see nothing worse than brief 503s with Retry-After, no acknowledged event
 * is lost, the dashboards end with exactly the online set, and each expiry after the move
 * reaches every dashboard exactly once.
 */
import t from 'tap'
import { adminToken, clientToken, uniqueSite } from '../helpers/app.js'
import { createTestMysqlDatabase } from '../helpers/database.js'
import { startInstance } from '../helpers/instance.js'
import { UNLIMITED_HEARTBEATS, checkWritten, endCounts, grantConsent, openDashboard, percentile, printFigures, runLoad, sleep } from '../helpers/faults.js'
import { startPrivateCluster } from '../helpers/private-cluster.js'
import { openReconnectingDashboard } from '../helpers/reconnecting-dashboard.js'
import { clusterShards, moveSlot } from '../helpers/redis-cluster.js'
import { DEFAULT_PARTITIONS, keySlot, locate, partitionKeys } from '../../src/presence/redis/keys.js'

const CONTACTS = 20
const LOAD_MS = 6000
const MOVE_AT_MS = 2000
const PRESENCE_TIMEOUT_S = 5
/** Keys per MIGRATE: two, so many heartbeats meet the slot half-moved (ASK, TRYAGAIN). */
const MIGRATE_BATCH = 2

/** The slot of the partition that holds a contact's presence (its keys share a hash tag). */
function presenceSlot(site: string, contactId: string): number {
  return keySlot(partitionKeys(site, locate(contactId, DEFAULT_PARTITIONS).partition, DEFAULT_PARTITIONS).records)
}

t.test('moving the presence slot to another master under load: brief 503s at worst, nothing lost, every expiry once', async (t) => {
  const cluster = await startPrivateCluster(t)
  const databaseUrl = await createTestMysqlDatabase(t, 'reshard')
  const site = uniqueSite('reshard')
  const env = {
    ...UNLIMITED_HEARTBEATS,
    REDIS_CLUSTER_NODES: cluster.seeds, CAT_SITE: site, DATABASE_URL: databaseUrl,
    CAT_HEARTBEAT_INTERVAL_S: '2', CAT_PRESENCE_TIMEOUT_S: String(PRESENCE_TIMEOUT_S),
  }
  // The first start migrates the database; the second finds it migrated.
  const a = await startInstance(t, env)
  const b = await startInstance(t, env)
  const instances = [a, b]
  const ids = Array.from({ length: CONTACTS }, (_, k) => `reshard-${k}`)
  const tokens = ids.map((sub) => clientToken({ sub, clientId: 'client-reshard' }))
  for (const [k, token] of tokens.entries()) await grantConsent(instances[k % 2]!.origin, token)

  const wsUrl = (origin: string): string => `${origin.replace(/^http/, 'ws')}/admin/ws?token=${encodeURIComponent(adminToken())}`
  const views = await Promise.all(instances.map((instance) => openReconnectingDashboard(wsUrl(instance.origin), instance.origin)))
  t.teardown(() => Promise.all(views.map((view) => view.stop())))
  const raw = await Promise.all(instances.map((instance) => openDashboard(instance.origin, adminToken())))
  t.teardown(() => raw.forEach((d) => d.socket.close()))

  // The slot of the partition of the first contact (with the other contacts of that partition).
  const slot = presenceSlot(site, ids[0] as string)
  const from = await cluster.masterOf(slot)
  const to = (await clusterShards(cluster.seeds)).map((shard) => shard.master).find((master) => master !== from) as string

  // Each instance beats every contact in turn, a nav to a path used once (an event to write).
  const started = performance.now()
  const loads = instances.map((instance, n) => runLoad({
    origin: instance.origin,
    maxRequests: 100_000,
    durationMs: LOAD_MS,
    concurrency: 2,
    gapMs: 5,
    timeoutMs: 5000,
    request: (j) => {
      const k = j % CONTACTS
      return { path: `/cat_heartbeat?token=${tokens[k]}&sid=reshtab${k}&event=nav&path=/r/${n}-${j}` }
    },
  }))
  await sleep(MOVE_AT_MS)
  const keysBefore = await cluster.onNode(from, (redis) => redis.cluster('COUNTKEYSINSLOT', slot)) as number
  for (const node of [from, to]) await cluster.onNode(node, (redis) => redis.config('RESETSTAT'))
  const moveStart = performance.now() - started
  await moveSlot(slot, to, cluster.seeds, MIGRATE_BATCH)
  const moveEnd = performance.now() - started
  const keysAfter = await cluster.onNode(to, (redis) => redis.cluster('COUNTKEYSINSLOT', slot)) as number
  // Multi-key scripts that met the slot half-moved: ioredis retries them (retryDelayOnTryAgain).
  let tryAgain = 0
  for (const node of [from, to]) tryAgain += Number(/errorstat_TRYAGAIN:count=(\d+)/.exec(await cluster.onNode(node, (redis) => redis.info('errorstats')))?.[1] ?? 0)
  const results = await Promise.all(loads)
  const sent = results.flatMap((r) => r.sent)
  const afterMove = sent.filter((s) => s.at > moveEnd && s.status === 204).length
  const duringMove = sent.filter((s) => s.at >= moveStart && s.at <= moveEnd).length

  // Right after the load every contact is online, on the dashboards that were connected all
  // along and on a fresh one.
  const everyone = [...ids].sort()
  const online = (view: { state: ReadonlyMap<string, unknown> }): string[] => [...view.state.keys()].sort()
  await Promise.all(views.map((view) => view.until('every contact online', () => online(view).length === CONTACTS, 3000).catch(() => {})))
  const onlineAtEnd = views.map(online)
  const fresh = await openDashboard(a.origin, adminToken())
  await fresh.waitFor((m) => m.type === 'snapshot', 3000)
  const freshOnline = (fresh.messages.find((m) => m.type === 'snapshot')?.online ?? []).map((p) => p.contactId).sort()
  fresh.socket.close()

  // Nobody beats any more: every contact expires once, after the move, swept by one instance.
  const allLeft = await Promise.all(views.map((view) => view.until('every contact left', () => view.state.size === 0, (PRESENCE_TIMEOUT_S + 10) * 1000).then(() => true, () => false)))
  const acked = sent.filter((s) => s.status === 204).map((s) => new URL(s.path, 'http://x').searchParams.get('path') as string)
  const check = await checkWritten(databaseUrl, acked, 30_000)
  const leftCounts = raw.map((d) => ids.map((id) => d.messages.flatMap((m) => m.left ?? []).filter((l) => l.contactId === id).length))
  const ends = await endCounts(databaseUrl)
  const unavailable = sent.filter((s) => s.status === 503)

  printFigures(t, 'cluster-reshard', {
    instances: 2,
    contacts: CONTACTS,
    slot,
    keysMoved: keysAfter,
    moveMs: Math.round(moveEnd - moveStart),
    tryAgainAnswered: tryAgain,
    requests: sent.length,
    duringMove,
    acked: acked.length,
    ackedAfterMove: afterMove,
    http503: unavailable.length,
    http5xxOther: sent.filter((s) => s.status >= 500 && s.status !== 503).length,
    networkErrors: sent.filter((s) => s.status === 0).length,
    written: check.written,
    lost: check.lost,
    duplicates: check.duplicates,
    p50ms: percentile(results.flatMap((r) => r.latencies), 50),
    p99ms: percentile(results.flatMap((r) => r.latencies), 99),
  })
  t.not(from, to, `the slot ${slot} moved from ${from} to ${to}`)
  t.equal(await cluster.masterOf(slot), to, 'the new master serves the slot')
  t.ok(keysBefore > 0 && keysAfter >= keysBefore, `the site's keys moved with it (${keysBefore} before, ${keysAfter} on the new master)`)
  t.ok(duringMove > 0 || moveEnd - moveStart < 50, 'heartbeats were answered while the slot moved (or the move took under 50 ms)')
  t.ok(afterMove > 0, 'heartbeats were acknowledged after the move')
  t.same(sent.filter((s) => s.status !== 204 && !(s.status === 503 && s.retryAfter !== undefined)).map((s) => `${s.status} ${s.error ?? s.body}`), [], 'every heartbeat answered 204, or 503 with Retry-After')
  t.same(instances.map((instance) => instance.output().match(/"level":(?:50|60)[^\n]*/g) ?? []), [[], []], 'no instance logged an error')
  t.equal(check.lost, 0, 'every acknowledged event is in the activity log')
  t.equal(check.duplicates, 0, 'no event is written twice')
  t.same(onlineAtEnd, [everyone, everyone], 'the dashboards connected all along end with every contact online')
  t.same(freshOnline, everyone, 'a fresh dashboard gets every contact online')
  t.same(allLeft, [true, true], 'every contact expired on both dashboards')
  t.same(leftCounts, [ids.map(() => 1), ids.map(() => 1)], 'each expiry reached each dashboard exactly once')
  t.same(ids.map((id) => ends.get(id) ?? 0), ids.map(() => 1), 'each session ended once in the activity log')
})
