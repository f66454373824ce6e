import t from 'tap'
import { Redis } from 'ioredis'
import { REDIS_URL, adminToken, buildTestApp, cleanRedisSite, clientToken, createClock, ensureConsent, heartbeatUrl, uniqueSite, until } from '../helpers/app.js'
import { createTestMysqlDatabase, mysqlUrlFor } from '../helpers/database.js'
import { createTcpProxy } from '../helpers/tcp-proxy.js'
import { connectDashboard } from '../helpers/ws.js'
import { parseMetrics, sampleValue, type Sample } from '../helpers/metrics.js'
import { locate, partitionKeys } from '../../src/presence/redis/keys.js'
import type { FastifyInstance } from 'fastify'

const T0 = 1_800_000_000_000
const METRICS_TOKEN = 'metrics-token-0123456789'

async function scrape(app: FastifyInstance): Promise<Sample[]> {
  const res = await app.inject('/metrics')
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}: ${res.body}`)
  return parseMetrics(res.body)
}

t.test('memory engine: heartbeats by event and outcome, their time, the online count, leaves and the sweep lag, the activity backlog', async (t) => {
  const clock = createClock(T0)
  const app = await buildTestApp(t, { now: clock.now })
  const ann = clientToken({ sub: 'ann' }, clock.now())
  const bob = clientToken({ sub: 'bob' }, clock.now())
  const carl = clientToken({ sub: 'carl' }, clock.now())
  await ensureConsent(app, ann)
  await ensureConsent(app, carl)
  const beat = async (params: Record<string, string | undefined>): Promise<number> => (await app.inject(heartbeatUrl(params))).statusCode

  t.equal(await beat({ token: ann, sid: 'tab-ann-0001' }), 204)
  t.equal(await beat({ token: ann, sid: 'tab-ann-0001' }), 204)
  t.equal(await beat({ token: ann, sid: 'tab-ann-0001', event: 'nav', path: '/invoices' }), 204)
  t.equal(await beat({ token: ann, sid: 'no' }), 400, 'a sid too short')
  t.equal(await beat({ token: ann, sid: 'tab-ann-0001', event: 'bogus' }), 400, 'an event that does not exist')
  t.equal(await beat({ token: 'forged.token.here', sid: 'tab-ann-0001' }), 401)
  t.equal(await beat({ token: bob, sid: 'tab-bob-0001' }), 403, 'bob has not consented')
  t.equal(await beat({ token: carl, sid: 'tab-carl-001' }), 204)

  let samples = await scrape(app)
  const heartbeats = (event: string, outcome: string): number | undefined => sampleValue(samples, 'cat_heartbeats_total', { event, outcome })
  t.equal(heartbeats('beat', 'ok'), 3, 'three beats answered 204 (ann twice, carl once)')
  t.equal(heartbeats('nav', 'ok'), 1)
  t.equal(heartbeats('beat', 'invalid'), 1, 'the bad sid is counted under the event it named')
  t.equal(heartbeats('unknown', 'invalid'), 1, 'an event that does not exist is counted as unknown')
  t.equal(heartbeats('beat', 'unauthorized'), 1)
  t.equal(heartbeats('beat', 'consent_required'), 1)
  t.equal(heartbeats('beat', 'rate_limited'), 0, 'every outcome is reported from the start, at 0')
  t.equal(sampleValue(samples, 'cat_heartbeat_duration_seconds_count'), 8, 'every heartbeat timed')
  t.equal(sampleValue(samples, 'cat_heartbeat_duration_seconds_bucket', { le: '1' }), 8)
  t.ok(sampleValue(samples, 'cat_heartbeat_duration_seconds_bucket', { le: '0.0001' }) !== undefined, 'buckets from 100 µs')
  t.equal(sampleValue(samples, 'cat_online_contacts'), 2, 'ann and carl online')
  t.equal(sampleValue(samples, 'cat_dashboard_sockets'), 0)
  t.ok((sampleValue(samples, 'process_cpu_user_seconds_total') ?? -1) >= 0, 'prom-client\'s process metrics')
  t.ok((sampleValue(samples, 'nodejs_heap_size_used_bytes') ?? 0) > 0)
  const backlog = sampleValue(samples, 'cat_activity_backlog_events') ?? 0
  t.ok(backlog >= 3, `the activity events wait to be written (${backlog})`)
  t.equal(sampleValue(samples, 'cat_activity_written_total'), 0)

  t.equal(await beat({ token: ann, sid: 'tab-ann-0001', event: 'leave' }), 204)
  // carl's only tab expires 75 s after his beat; the sweep runs 1.5 s after that.
  clock.advance(75_000 + 1_500)
  t.equal(await app.presence.sweep(), 1)
  const written = await app.activityWriter.writeOnce()
  samples = await scrape(app)
  t.equal(sampleValue(samples, 'cat_leaves_total', { reason: 'leave' }), 1)
  t.equal(sampleValue(samples, 'cat_leaves_total', { reason: 'timeout' }), 1)
  t.equal(sampleValue(samples, 'cat_leaves_total', { reason: 'idle' }), 0)
  t.equal(sampleValue(samples, 'cat_sweep_lag_seconds_count'), 1, 'the expiry is timed once')
  t.equal(sampleValue(samples, 'cat_sweep_lag_seconds_sum'), 1.5, 'from its expiry to its removal')
  t.equal(sampleValue(samples, 'cat_sweep_lag_seconds_bucket', { le: '1' }), 0)
  t.equal(sampleValue(samples, 'cat_sweep_lag_seconds_bucket', { le: '1.5' }), 1)
  t.equal(sampleValue(samples, 'cat_online_contacts'), 0)
  t.equal(sampleValue(samples, 'cat_activity_written_total'), written, `what the writer wrote (${written})`)
  t.equal(sampleValue(samples, 'cat_activity_backlog_events'), 0, 'nothing left to write')
})

t.test('who may read /metrics: loopback callers, or the bearer of CAT_METRICS_TOKEN; everyone else gets the 404 of no route', async (t) => {
  const open = await buildTestApp(t)
  const guarded = await buildTestApp(t, { env: { CAT_METRICS_TOKEN: METRICS_TOKEN } })
  const off = await buildTestApp(t, { env: { CAT_METRICS: 'off' } })
  const status = async (app: FastifyInstance, remoteAddress: string, headers: Record<string, string> = {}): Promise<number> => (await app.inject({ url: '/metrics', remoteAddress, headers })).statusCode

  t.equal(await status(open, '127.0.0.1'), 200, 'loopback, IPv4')
  t.equal(await status(open, '::1'), 200, 'loopback, IPv6')
  t.equal(await status(open, '::ffff:127.0.0.1'), 200, 'loopback, IPv4 mapped into IPv6')
  t.equal(await status(open, '10.0.0.5'), 404, 'another address')
  t.equal(await status(open, '127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }), 404, 'a proxy on this machine forwarding for someone else')
  t.equal(await status(open, '10.0.0.5', { authorization: `Bearer ${METRICS_TOKEN}` }), 404, 'a token where none is configured')
  t.equal(await status(guarded, '10.0.0.5', { authorization: `Bearer ${METRICS_TOKEN}` }), 200, 'the token, from anywhere')
  t.equal(await status(guarded, '10.0.0.5', { authorization: `Bearer ${METRICS_TOKEN}x` }), 404, 'a wrong token')
  t.equal(await status(guarded, '10.0.0.5', { authorization: 'Basic abc' }), 404)
  t.equal(await status(guarded, '127.0.0.1'), 200, 'loopback needs no token')
  t.equal(await status(off, '127.0.0.1'), 404, 'CAT_METRICS=off: no /metrics at all')

  const refused = await open.inject({ url: '/metrics', remoteAddress: '10.0.0.5' })
  const unknown = await open.inject({ url: '/no-such-route', remoteAddress: '10.0.0.5' })
  t.same(refused.json(), { error: { code: 'not_found', message: 'No route for GET /metrics' } })
  t.equal(refused.headers['content-type'], unknown.headers['content-type'], 'as a route that does not exist')
  const served = await open.inject('/metrics')
  t.match(served.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(served.body, /# TYPE cat_heartbeats_total counter/)
  t.match(served.body, /# TYPE cat_heartbeat_duration_seconds histogram/)
  t.match(served.body, /# TYPE cat_online_contacts gauge/)
  t.notMatch(served.body, new RegExp(METRICS_TOKEN), 'no secret in the metrics')
})

t.test('Redis engine: dashboards, the diff latency from the change to its send, feed resyncs, leaves seen by every instance', async (t) => {
  const site = uniqueSite('metrics')
  cleanRedisSite(t, site)
  const first = await buildTestApp(t, { site })
  const second = await buildTestApp(t, { site })
  const dashboard = await connectDashboard(second, adminToken())
  t.teardown(() => dashboard.close())
  await dashboard.waitFor((m) => m.type === 'snapshot')
  const ann = clientToken({ sub: 'ann' })
  await ensureConsent(first, ann)
  t.equal((await first.inject(heartbeatUrl({ token: ann, sid: 'tab-ann-0001', event: 'nav', path: '/a' }))).statusCode, 204)
  await dashboard.waitFor((m) => m.type === 'diff' && (m.joined ?? []).some((p) => p.contactId === 'ann'))

  const onSecond = await until('the diff is timed', async () => {
    const samples = await scrape(second)
    return (sampleValue(samples, 'cat_diff_latency_seconds_count') ?? 0) >= 1 ? samples : undefined
  })
  t.equal(sampleValue(onSecond, 'cat_dashboard_sockets'), 1, 'the dashboard on this instance')
  const latency = sampleValue(onSecond, 'cat_diff_latency_seconds_sum') ?? -1
  t.ok(latency > 0 && latency < 5, `from the change in Redis to the diff's send: ${latency} s`)
  t.equal(sampleValue(onSecond, 'cat_online_contacts'), 1, 'the site\'s count, not this instance\'s share')
  const onFirst = await scrape(first)
  t.equal(sampleValue(onFirst, 'cat_dashboard_sockets'), 0)
  t.equal(sampleValue(onFirst, 'cat_diff_latency_seconds_count'), 0, 'no dashboard here: no diff sent')
  t.equal(sampleValue(onFirst, 'cat_online_contacts'), 1)

  // A change lost on its way (its position skipped) makes every instance re-read the feed.
  const keys = partitionKeys(site, locate('ann', first.config.redisPartitions).partition, first.config.redisPartitions)
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  await redis.incrby(keys.seq, 3)
  t.equal((await first.inject(heartbeatUrl({ token: ann, sid: 'tab-ann-0001', event: 'leave' }))).statusCode, 204)
  for (const app of [first, second]) {
    const samples = await until('the resync and the leave are counted', async () => {
      const s = await scrape(app)
      return sampleValue(s, 'cat_leaves_total', { reason: 'leave' }) === 1 ? s : undefined
    })
    t.equal(sampleValue(samples, 'cat_feed_resyncs_total'), 1, 'one gap, one resync')
    t.equal(sampleValue(samples, 'cat_online_contacts'), 0)
  }
})

t.test('activity writes that fail are counted, and the events they carried are written once the database is back', async (t) => {
  const clock = createClock(T0)
  const database = await createTestMysqlDatabase(t, 'metrics')
  const proxy = await createTcpProxy(3306)
  t.teardown(() => proxy.close())
  const url = new URL(mysqlUrlFor(new URL(database).pathname.slice(1)))
  url.port = String(proxy.port)
  const app = await buildTestApp(t, { now: clock.now, env: { DATABASE_URL: url.toString() } })
  const ann = clientToken({ sub: 'ann' }, clock.now())
  await ensureConsent(app, ann)
  t.equal((await app.inject(heartbeatUrl({ token: ann, sid: 'tab-ann-0001', event: 'nav', path: '/a' }))).statusCode, 204)
  t.equal(sampleValue(await scrape(app), 'cat_ready'), 1, 'ready while the database answers')
  await proxy.stop()
  await t.rejects(app.activityWriter.writeOnce())
  let samples = await scrape(app)
  t.equal(sampleValue(samples, 'cat_ready'), 0, 'not ready while it does not, as /readyz says')
  t.equal(sampleValue(samples, 'cat_activity_write_errors_total'), 1)
  t.equal(sampleValue(samples, 'cat_activity_written_total'), 0)
  const waiting = sampleValue(samples, 'cat_activity_backlog_events') ?? 0
  t.ok(waiting >= 1, `the join waits (${waiting})`)
  await proxy.start()
  const written = await until('the writer writes again', () => app.activityWriter.writeOnce().then((n) => (n > 0 ? n : undefined)).catch(() => undefined))
  samples = await scrape(app)
  t.equal(sampleValue(samples, 'cat_activity_written_total'), written)
  t.equal(written, waiting, 'every event that waited')
  t.equal(sampleValue(samples, 'cat_activity_backlog_events'), 0)
  t.equal(sampleValue(samples, 'cat_ready'), 1)
})
