/**
 * CAT_DEMO_TRAFFIC's simulated contacts, as a dashboard and the activity log see them, played
 * with the test's clock (an hour in seconds, no sleeping): all join within the first heartbeat
 * interval, spread over it; then they navigate, hide and show tabs, open second tabs, leave,
 * fall silent (and time out), and come back; every request they send is answered as a
 * browser's would be; the activity log fills; close stops them and leaves no timer.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import type { FeedMessage, Presence } from '../../src/presence/presence-engine.js'
import { DEMO_COMPANIES, demoContacts } from '../../src/demo/demo-population.js'
import { createDemoTraffic } from '../../src/demo/demo-traffic.js'
import { seededRandom } from '../../src/demo/random.js'
import { adminToken, buildTestApp, cleanRedisSite, createClock, testConfig, uniqueSite, until } from '../helpers/app.js'
import { createTestDataDir } from '../helpers/database.js'
import { createManualScheduler } from '../helpers/manual-scheduler.js'

const CONTACTS = 16
const INTERVAL_MS = 30_000
// An hour played in seconds keeps the event loop busy the whole time: overload shedding, which
// would read that as an instance falling behind, is off.
const DEMO = { CAT_DEMO_MODE: '1', CAT_DEMO_TRAFFIC: String(CONTACTS), CAT_MAX_EVENT_LOOP_DELAY_MS: '0' }

interface Seen {
  joined: { contactId: string; at: number }[]
  updated: Presence[]
  left: { contactId: string; reason: string }[]
}

function watchFeed(app: FastifyInstance, clock: { now(): number }): Seen {
  const seen: Seen = { joined: [], updated: [], left: [] }
  const stop = app.presence.onFeed((message: FeedMessage) => {
    if (message.type !== 'change') return
    const { change } = message
    if (change.kind === 'joined') seen.joined.push({ contactId: change.presence.contactId, at: message.at ?? clock.now() })
    else if (change.kind === 'updated') seen.updated.push(change.presence)
    else seen.left.push({ contactId: change.left.contactId, reason: change.left.reason })
  })
  t.teardown(stop)
  return seen
}

async function drain(app: FastifyInstance): Promise<void> {
  while ((await app.activityWriter.writeOnce(0)) > 0);
}

for (const engine of ['memory', 'redis'] as const) {
  t.test(`${engine} engine: an hour of simulated browsing through the real heartbeat path`, async (t) => {
    const site = engine === 'redis' ? uniqueSite('demo') : undefined
    if (site !== undefined) cleanRedisSite(t, site)
    const clock = createClock()
    const scheduler = createManualScheduler(clock)
    const app = await buildTestApp(t, { site, env: DEMO, now: clock.now, demoScheduler: scheduler, demoSeed: 7 })
    const traffic = app.demoTraffic
    if (traffic === undefined) throw new Error('no demo traffic')
    const settle = (): Promise<void> => traffic.settled()
    const seen = watchFeed(app, clock)
    const start = clock.now()
    const admin = { authorization: `Bearer ${adminToken({}, start)}` }
    const online = async (): Promise<Presence[]> => {
      const res = await app.inject({ url: '/admin/api/online', headers: admin })
      if (res.statusCode !== 200) throw new Error(`online: ${res.statusCode} ${res.body}`)
      return (res.json() as { online: Presence[] }).online
    }

    t.equal(scheduler.pending(), CONTACTS, 'ready: each contact waits for its turn; nothing sent yet')
    t.same(traffic.stats().sent, {})

    await scheduler.advance(INTERVAL_MS, settle)
    const everyone = await online()
    t.equal(everyone.length, CONTACTS, 'every simulated contact is online within one heartbeat interval')
    t.equal(new Set(everyone.map((p) => p.name)).size, CONTACTS, 'each with a name of its own')
    t.same(new Set(everyone.map((p) => p.clientId)), new Set(DEMO_COMPANIES.map((c) => c.clientId)), 'of the demo companies')
    t.ok(everyone.every((p) => p.path.startsWith('/clients')), 'on portal pages')
    await until('every join on the feed', () => (seen.joined.length >= CONTACTS ? true : undefined), 5000)
    const joinTimes = seen.joined.map((j) => j.at - start)
    t.ok(Math.max(...joinTimes) < INTERVAL_MS, `the last joined ${Math.max(...joinTimes)} ms after the start`)
    t.ok(Math.max(...joinTimes) - Math.min(...joinTimes) > INTERVAL_MS / 2, 'spread over the interval, not a burst')
    t.equal(new Set(joinTimes).size, CONTACTS, 'one at a time')

    // An hour, swept every 5 s as the sweeper does every second, the activity log written every minute.
    for (let elapsed = 0; elapsed < 60 * 60_000; elapsed += 5000) {
      await scheduler.advance(5000, settle)
      await app.presence.sweep()
      if (elapsed % 60_000 === 0) await drain(app)
    }
    await drain(app)

    const stats = traffic.stats()
    t.equal(stats.errors, 0, 'the simulation threw nothing')
    t.same(Object.keys(stats.answers).sort(), ['204', '404'], `every request answered as expected: ${JSON.stringify(stats.answers)}`)
    t.equal(stats.answers['404'], CONTACTS, 'a 404 only for each contact\'s first consent check (no decision yet)')
    t.equal(stats.sent.consent, CONTACTS, 'each contact granted consent once')
    t.ok((stats.sent.nav ?? 0) > CONTACTS * 20, `navigations: ${stats.sent.nav}`)
    t.ok((stats.sent.beat ?? 0) > (stats.sent.nav ?? 0), `beats: ${stats.sent.beat}`)
    t.ok((stats.sent.hidden ?? 0) > 0 && (stats.sent.visible ?? 0) > 0, `tabs hidden (${stats.sent.hidden}) and shown again (${stats.sent.visible})`)
    t.ok((stats.sent.leave ?? 0) > 0, `leaves: ${stats.sent.leave}`)
    t.ok(stats.secondTabs > 0, `second tabs: ${stats.secondTabs}`)
    t.ok(stats.silentEnds > 0, `visits ended in silence: ${stats.silentEnds}`)
    t.ok(stats.visits > CONTACTS * 2, `visits: ${stats.visits} (contacts come back)`)

    await until('the feed has caught up', () => (seen.left.length > 0 ? true : undefined), 5000)
    const reasons = new Set(seen.left.map((l) => l.reason))
    t.ok(reasons.has('leave'), 'dashboards saw contacts leave')
    t.ok(reasons.has('timeout'), 'and time out')
    t.ok(seen.updated.some((p) => p.tabs === 2), 'a contact with two tabs')
    t.ok(seen.updated.some((p) => p.state === 'idle'), 'a contact with its tab hidden (idle)')
    const joins = new Map<string, number>()
    for (const j of seen.joined) joins.set(j.contactId, (joins.get(j.contactId) ?? 0) + 1)
    t.ok([...joins.values()].every((n) => n >= 2), 'every contact came back at least once')
    const now = (await online()).length
    t.ok(now > 0 && now <= CONTACTS, `online after an hour: ${now}`)

    const sessions: { endReason: string | null; pages: { path: string }[]; durationS: number }[] = []
    for (const { clientId } of DEMO_COMPANIES) {
      const res = await app.inject({ url: `/admin/api/clients/${clientId}/activity?limit=100`, headers: admin })
      t.equal(res.statusCode, 200)
      sessions.push(...(res.json() as { sessions: typeof sessions }).sessions)
    }
    t.ok(sessions.length >= stats.visits - CONTACTS, `the activity log holds the visits: ${sessions.length} sessions`)
    const endReasons = new Set(sessions.map((s) => s.endReason))
    t.ok(endReasons.has('leave') && endReasons.has('timeout'), `sessions ended by leave and by timeout: ${[...endReasons].join(', ')}`)
    t.ok(sessions.some((s) => s.pages.length >= 4), 'sessions of several pages')
    t.ok(sessions.every((s) => s.pages.every((p) => p.path.startsWith('/clients'))), 'all portal pages')
    t.ok(sessions.some((s) => s.durationS >= 120), 'minutes long')

    await app.close()
    t.equal(scheduler.pending(), 0, 'closed: no timer left')
    const after = JSON.stringify(traffic.stats())
    await scheduler.advance(10 * 60_000, settle)
    t.equal(JSON.stringify(traffic.stats()), after, 'nothing sent after close')
  })
}

t.test('without CAT_DEMO_TRAFFIC nothing is simulated, in demo mode or not', async (t) => {
  for (const env of [{}, { CAT_DEMO_MODE: '1' }]) {
    const clock = createClock()
    const scheduler = createManualScheduler(clock)
    const app = await buildTestApp(t, { env, now: clock.now, demoScheduler: scheduler })
    t.equal(app.demoTraffic, undefined)
    t.equal(scheduler.pending(), 0)
  }
})

/** What keeps the process alive, by kind: sockets, timers, servers. */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1
  return counts
}

t.test('with real timers: the contacts join within the interval, and app.close() stops them leaving no handle', async (t) => {
  const before = resources()
  const app = await buildApp(testConfig({ ...DEMO, CAT_DEMO_TRAFFIC: '5', CAT_HEARTBEAT_INTERVAL_S: '1', CAT_DATA_DIR: createTestDataDir(t, 'demo-close') }), { sweepIntervalMs: 50 })
  const started = Date.now()
  await app.ready()
  await until('five contacts online', async () => ((await app.presence.count()) === 5 ? true : undefined), 5000)
  t.ok(Date.now() - started < 1500, `online after ${Date.now() - started} ms`)
  await until('a beat after the first nav', () => ((app.demoTraffic?.stats().sent.beat ?? 0) > 0 ? true : undefined), 5000)
  await app.close()
  const stats = app.demoTraffic?.stats()
  t.equal(stats?.errors, 0)
  t.same(Object.keys(stats?.answers ?? {}).filter((status) => !['200', '204', '404'].includes(status)), [], `no refusal: ${JSON.stringify(stats?.answers)}`)
  // Sockets finish closing on later turns of the loop: up to 2 s. Handles of the tests before
  // this one may close meanwhile; none may be added.
  const added = (): Record<string, number> => Object.fromEntries(Object.entries(resources()).filter(([kind, n]) => n > (before[kind] ?? 0)))
  for (let i = 0; i < 200 && Object.keys(added()).length > 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 10))
  t.same(added(), {}, 'no handle beyond those open before the app existed')
})

t.test('an overloaded instance sheds a contact\'s consent: the contact asks again after Retry-After, not minutes later', async (t) => {
  const clock = createClock()
  const scheduler = createManualScheduler(clock)
  const sent: { at: number; kind: string; status: number }[] = []
  // Shed (503, Retry-After: 5) for the first 12 s, as @fastify/under-pressure does; then answered.
  const shedUntil = clock.now() + 12_000
  const traffic = createDemoTraffic({
    contacts: demoContacts(3),
    send: async ({ method, url }) => {
      const kind = url.startsWith('/cat_heartbeat') ? new URLSearchParams(url.split('?')[1]).get('event') ?? '' : `${method} consent`
      const answer = clock.now() < shedUntil ? { statusCode: 503, body: '{}', retryAfterS: 5 } : { statusCode: kind === 'GET consent' ? 404 : 204, body: '' }
      sent.push({ at: clock.now(), kind, status: answer.statusCode })
      return answer
    },
    mintToken: (contact) => `token-of-${contact.id}`,
    consentVersion: () => 'v1',
    heartbeatIntervalS: () => 30,
    now: clock.now,
    scheduler,
    random: seededRandom(3),
    log: { info: () => {}, warn: () => {}, debug: () => {} },
  })
  const start = clock.now()
  traffic.start()
  await scheduler.advance(30_000, () => traffic.settled())
  const shed = sent.filter((s) => s.status === 503)
  t.ok(shed.some((s) => s.kind === 'GET consent'), 'consent checks were shed')
  t.ok(shed.every((s) => s.kind === 'GET consent'), 'a shed check is not followed by a post of the decision')
  const navs = sent.filter((s) => s.kind === 'nav' && s.status === 204)
  t.equal(navs.length, 3, 'every contact is online within the first interval after the shedding stops')
  t.ok(navs.every((s) => s.at - start <= 12_000 + 7_500), `each within 1.5 x Retry-After of the end of the shedding: ${navs.map((s) => s.at - start).join(', ')} ms`)
  await traffic.stop()
  t.equal(scheduler.pending(), 0, 'stopped: no timer left')
})
