/**
 * The durable activity log, end to end: heartbeats → presence engine → event stream → writer
 * → database → REST. The same suite runs against real MariaDB and against SQLite; the
 * Redis-only cases (two writers on one stream, a dead writer, an outage) follow.
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { adminToken, buildTestApp, cleanRedisSite, clientToken, createClock, heartbeatUrl, uniqueSite, ensureConsent } from '../helpers/app.js'
import { createTestDataDir, createTestMysqlDatabase, mysqlUrlFor } from '../helpers/database.js'
import { createTcpProxy } from '../helpers/tcp-proxy.js'
import { createActivityWriter } from '../../src/activity/activity-writer.js'

const T0 = 1_800_000_000_000
const DAY = 86_400_000
type Clock = ReturnType<typeof createClock>
type Target = 'mysql' | 'sqlite'

async function databaseEnv(t: Test, target: Target): Promise<Record<string, string>> {
  return target === 'mysql' ? { DATABASE_URL: await createTestMysqlDatabase(t, 'log') } : { CAT_DATA_DIR: createTestDataDir(t, 'log') }
}

async function send(app: FastifyInstance, clock: Clock, sub: string, event: string, extra: { sid?: string; path?: string; title?: string; clientId?: string } = {}): Promise<void> {
  const token = clientToken({ sub, clientId: extra.clientId ?? 'client-1', name: `Name ${sub}` }, clock.now())
  await ensureConsent(app, token)
  const res = await app.inject(heartbeatUrl({ token, sid: extra.sid ?? `tab-${sub}-1`, event, path: extra.path ?? '/', title: extra.title ?? '' }))
  if (res.statusCode !== 204) throw new Error(`heartbeat answered ${res.statusCode}: ${res.body}`)
}

async function drain(app: FastifyInstance): Promise<number> {
  let total = 0
  for (;;) {
    const written = await app.activityWriter.writeOnce(0)
    if (written === 0) return total
    total += written
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies, asserted with t.match
async function get(app: FastifyInstance, clock: Clock, url: string): Promise<{ status: number; body: any }> {
  const res = await app.inject({ url, headers: { authorization: `Bearer ${adminToken({}, clock.now())}` } })
  return { status: res.statusCode, body: res.json() }
}

/** join at /a, /b after 10 s, /c after 30 s, hidden 50-110 s, leave at 130 s: 70 s visible. */
async function scriptedVisit(app: FastifyInstance, clock: Clock, sub = 'ann'): Promise<void> {
  const start = clock.now()
  const at = (s: number): void => clock.set(start + s * 1000)
  await send(app, clock, sub, 'nav', { path: '/a', title: 'A' })
  at(10)
  await send(app, clock, sub, 'nav', { path: '/b', title: 'B' })
  at(20)
  await send(app, clock, sub, 'beat', { path: '/b' })
  at(30)
  await send(app, clock, sub, 'nav', { path: '/c', title: 'C' })
  at(50)
  await send(app, clock, sub, 'hidden')
  at(110)
  await send(app, clock, sub, 'visible', { path: '/c', title: 'C' })
  at(130)
  await send(app, clock, sub, 'leave')
}

const VISIT = {
  durationS: 70,
  endReason: 'leave',
  pages: [
    { path: '/a', title: 'A', durationS: 10 },
    { path: '/b', title: 'B', durationS: 20 },
    { path: '/c', title: 'C', durationS: 40 },
  ],
}

for (const target of ['mysql', 'sqlite'] as const) {
  t.test(`${target}: a scripted visit is one session with three page visits and their visible time`, async (t) => {
    const clock = createClock(T0)
    const app = await buildTestApp(t, { now: clock.now, env: await databaseEnv(t, target) })
    await scriptedVisit(app, clock)
    t.equal(await drain(app), 7, 'seven events were written: join, nav, nav, hidden, visible, leave, end')
    const contact = await get(app, clock, '/admin/api/contacts/ann/activity')
    t.equal(contact.status, 200)
    t.match(contact.body, { sessions: [{ contactId: 'ann', clientId: 'client-1', startedAt: T0, endedAt: T0 + 130_000, ...VISIT }], nextCursor: null })
    t.equal(contact.body.sessions.length, 1)
    t.equal(contact.body.sessions[0].pages.length, 3)
    const client = await get(app, clock, '/admin/api/clients/client-1/activity')
    t.same(client.body, contact.body, 'the client view lists the same session')
    t.same((await get(app, clock, '/admin/api/contacts/nobody/activity')).body, { sessions: [], nextCursor: null })
  })

  t.test(`${target}: an open session shows its visible time so far; a timeout ends it when last seen`, async (t) => {
    const clock = createClock(T0)
    const app = await buildTestApp(t, { now: clock.now, env: await databaseEnv(t, target) })
    await send(app, clock, 'bob', 'nav', { path: '/x' })
    await drain(app)
    clock.advance(20_000)
    t.match((await get(app, clock, '/admin/api/contacts/bob/activity')).body.sessions, [{ endedAt: null, durationS: 20, endReason: null, pages: [{ path: '/x', durationS: 20 }] }])
    clock.advance(100_000)
    await app.presence.sweep()
    await drain(app)
    t.match((await get(app, clock, '/admin/api/contacts/bob/activity')).body.sessions, [{ endedAt: T0, durationS: 0, endReason: 'timeout' }], 'no beat after the join: nothing visible is credited past it')
  })

  t.test(`${target}: newest first, time range, cursor pages, bad input`, async (t) => {
    const clock = createClock(T0)
    const app = await buildTestApp(t, { now: clock.now, env: await databaseEnv(t, target) })
    for (let i = 0; i < 3; i += 1) {
      clock.set(T0 + i * 3_600_000)
      await send(app, clock, 'cy', 'nav', { path: `/visit-${i}` })
      clock.advance(5_000)
      await send(app, clock, 'cy', 'leave')
    }
    await drain(app)
    const first = await get(app, clock, '/admin/api/contacts/cy/activity?limit=2')
    t.same(first.body.sessions.map((s: { startedAt: number }) => s.startedAt), [T0 + 7_200_000, T0 + 3_600_000])
    t.type(first.body.nextCursor, 'string')
    const second = await get(app, clock, `/admin/api/contacts/cy/activity?limit=2&cursor=${first.body.nextCursor}`)
    t.same(second.body.sessions.map((s: { startedAt: number }) => s.startedAt), [T0])
    t.equal(second.body.nextCursor, null)
    const ranged = await get(app, clock, `/admin/api/contacts/cy/activity?from=${T0 + 1}&to=${T0 + 7_200_000}`)
    t.same(ranged.body.sessions.map((s: { startedAt: number }) => s.startedAt), [T0 + 3_600_000])
    for (const bad of ['limit=0', 'limit=101', 'limit=x', 'from=-1', 'cursor=nonsense', `from=${T0 + 10}&to=${T0}`]) {
      const res = await get(app, clock, `/admin/api/contacts/cy/activity?${bad}`)
      t.equal(res.status, 400, bad)
      t.equal(res.body.error.code, 'invalid_request', bad)
    }
    const anonymous = await app.inject('/admin/api/contacts/cy/activity')
    t.equal(anonymous.statusCode, 401)
  })

  t.test(`${target}: a redelivered batch (writer killed before acknowledging) makes no second row`, async (t) => {
    const clock = createClock(T0)
    const app = await buildTestApp(t, { now: clock.now, env: await databaseEnv(t, target) })
    await scriptedVisit(app, clock)
    const source = await app.eventLog.consumer('doomed')
    const events = await source.read(1000, 0)
    await app.activity.write(events) // … and the writer dies before it acknowledges
    await app.activity.write(events.slice(3)) // a partial redelivery, out of order
    await app.activity.write(events)
    const exported = await app.activity.exportContact('ann')
    t.equal(exported.events.length, events.length, 'one row per event')
    t.equal(exported.sessions.length, 1)
    t.match(exported.sessions[0], VISIT)
  })

  t.test(`${target}: events arriving before their join are folded once it comes`, async (t) => {
    const clock = createClock(T0)
    const app = await buildTestApp(t, { now: clock.now, env: await databaseEnv(t, target) })
    await scriptedVisit(app, clock)
    const source = await app.eventLog.consumer('reader')
    const events = await source.read(1000, 0)
    for (let i = events.length - 1; i >= 0; i -= 1) await app.activity.write([events[i] as (typeof events)[0]])
    t.match((await app.activity.exportContact('ann')).sessions, [VISIT])
  })

  t.test(`${target}: retention deletes exactly the rows older than CAT_RETENTION_DAYS`, async (t) => {
    const clock = createClock(T0)
    const app = await buildTestApp(t, { now: clock.now, env: { ...(await databaseEnv(t, target)), CAT_RETENTION_DAYS: '90' } })
    await send(app, clock, 'old', 'nav')
    await send(app, clock, 'old', 'leave')
    await app.activityJobs.sampleNow()
    clock.set(T0 + 2 * DAY)
    await send(app, clock, 'newer', 'nav')
    await send(app, clock, 'newer', 'leave')
    await app.activityJobs.sampleNow()
    await drain(app)
    clock.set(T0 + 90 * DAY + 1)
    t.ok((await app.activityJobs.purgeNow()) > 0)
    t.same((await app.activity.exportContact('old')).sessions, [], 'the old session is gone')
    t.same((await app.activity.exportContact('old')).events, [], 'so are its events')
    t.equal((await app.activity.exportContact('newer')).sessions.length, 1, 'the newer session stays')
    t.equal((await app.activity.exportContact('newer')).events.length, 3)
    t.same(await app.activity.onlineSamples(0, Number.MAX_SAFE_INTEGER), [{ t: T0 + 2 * DAY, online: 0 }], 'only the newer sample stays')
    t.equal(await app.activityJobs.purgeNow(), 0, 'a second purge finds nothing')
  })

  t.test(`${target}: erasure leaves nothing of the contact behind`, async (t) => {
    const clock = createClock(T0)
    const app = await buildTestApp(t, { now: clock.now, env: await databaseEnv(t, target) })
    await scriptedVisit(app, clock, 'eve')
    await drain(app)
    await send(app, clock, 'eve', 'nav', { path: '/again' }) // online again, its events not yet written
    await send(app, clock, 'other', 'nav')
    const source = await app.eventLog.consumer('in-flight')
    const inFlight = (await source.read(1000, 0)).filter((e) => e.contactId === 'eve')
    t.ok(inFlight.length > 0)

    const res = await app.inject({ method: 'DELETE', url: '/admin/api/contacts/eve', headers: { authorization: `Bearer ${adminToken({}, clock.now())}` } })
    t.equal(res.statusCode, 204)
    await app.activity.write(inFlight) // a writer that read them before the erasure
    await drain(app)
    t.same(await app.activity.exportContact('eve'), { contactId: 'eve', sessions: [], events: [], consents: [] })
    t.notOk((await app.presence.snapshot()).online.some((p) => p.contactId === 'eve'), 'no presence')
    t.notOk((await app.eventLog.tail(1000)).some((e) => e.contactId === 'eve'), 'no pending events')
    t.equal((await app.activity.exportContact('other')).sessions.length, 1, 'others are untouched')
    const exported = await get(app, clock, '/admin/api/contacts/eve/export')
    t.match(exported.body, { contactId: 'eve', presence: null, sessions: [], events: [], consents: [] })
  })

  t.test(`${target}: export gives everything stored about the contact`, async (t) => {
    const clock = createClock(T0)
    const app = await buildTestApp(t, { now: clock.now, env: await databaseEnv(t, target) })
    await scriptedVisit(app, clock)
    await drain(app)
    const res = await get(app, clock, '/admin/api/contacts/ann/export')
    t.equal(res.status, 200)
    t.match(res.body, { contactId: 'ann', presence: null, sessions: [VISIT], consents: [{ decision: 'granted', version: 'test-version' }] })
    t.same(res.body.events.map((e: { type: string }) => e.type), ['join', 'nav', 'nav', 'hidden', 'visible', 'leave', 'end'])
  })

  t.test(`${target}: the online count is sampled once a minute across instances`, async (t) => {
    const clock = createClock(T0)
    const env = await databaseEnv(t, target)
    const app = await buildTestApp(t, { now: clock.now, env })
    await send(app, clock, 'p1', 'nav')
    await send(app, clock, 'p2', 'nav')
    await app.activityJobs.sampleNow()
    await app.activityJobs.sampleNow()
    clock.advance(60_000)
    await send(app, clock, 'p3', 'nav')
    await app.activityJobs.sampleNow()
    const stats = await get(app, clock, '/admin/api/stats/online?range=1h')
    t.same(stats.body, { points: [{ t: T0, online: 2 }, { t: T0 + 60_000, online: 3 }] })
    const day = await get(app, clock, '/admin/api/stats/online?range=24h')
    t.same(day.body, { points: [{ t: T0 - (T0 % 600_000), online: 3 }] }, 'a 10-minute point holds its peak')
    t.equal((await get(app, clock, '/admin/api/stats/online?range=1y')).status, 400)
  })
}

t.test('mysql: two instances sample the same minute: one row', async (t) => {
  const clock = createClock(T0)
  const site = uniqueSite('sample')
  cleanRedisSite(t, site)
  const env = { DATABASE_URL: await createTestMysqlDatabase(t, 'sample') }
  const [a, b] = await Promise.all([buildTestApp(t, { now: clock.now, env, site, instanceId: `${site}-a` }), buildTestApp(t, { now: clock.now, env, site, instanceId: `${site}-b` })])
  await send(a as FastifyInstance, clock, 'p1', 'nav')
  await Promise.all([(a as FastifyInstance).activityJobs.sampleNow(), (b as FastifyInstance).activityJobs.sampleNow()])
  t.same(await (a as FastifyInstance).activity.onlineSamples(0, Number.MAX_SAFE_INTEGER), [{ t: T0, online: 1 }])
})

t.test('redis + mysql: two writers on one stream split the work and write every event once', async (t) => {
  const clock = createClock(T0)
  const site = uniqueSite('writers')
  cleanRedisSite(t, site)
  const env = { DATABASE_URL: await createTestMysqlDatabase(t, 'writers') }
  const [a, b] = (await Promise.all(['a', 'b'].map((n) => buildTestApp(t, { now: clock.now, env, site, instanceId: `${site}-${n}` })))) as [FastifyInstance, FastifyInstance]
  for (let i = 0; i < 10; i += 1) await scriptedVisit(i % 2 === 0 ? a : b, clock, `c${i}`)
  // Small batches, so one contact's events are split between the writers and race.
  const sources = await Promise.all([a.eventLog.consumer('wa'), b.eventLog.consumer('wb')])
  const counts = [0, 0]
  const run = async (index: 0 | 1): Promise<void> => {
    const writer = createActivityWriter({ source: sources[index], store: (index === 0 ? a : b).activity, log: a.log, batchSize: 3 })
    for (;;) {
      const written = await writer.writeOnce(0)
      if (written === 0) return
      counts[index] = (counts[index] as number) + written
    }
  }
  await Promise.all([run(0), run(1)])
  t.ok((counts[0] as number) > 0 && (counts[1] as number) > 0, `both wrote (${counts.join(' + ')})`)
  t.equal((counts[0] as number) + (counts[1] as number), 10 * 7, 'every event once')
  for (let i = 0; i < 10; i += 1) {
    const exported = await a.activity.exportContact(`c${i}`)
    t.equal(exported.events.length, 7, `c${i}: its events once`)
    t.match(exported.sessions, [VISIT], `c${i}: one session, three pages, the right visible time`)
  }
  t.same(await a.eventLog.tail(10), [], 'the stream is empty')
})

t.test('redis + mysql: a writer that died holding events: another takes them over', async (t) => {
  const clock = createClock(T0)
  const site = uniqueSite('claim')
  cleanRedisSite(t, site)
  const app = await buildTestApp(t, { now: clock.now, site, env: { DATABASE_URL: await createTestMysqlDatabase(t, 'claim') } })
  await scriptedVisit(app, clock)
  const dead = await app.eventLog.consumer('dead')
  const held = await dead.read(1000, 0)
  await app.activity.write(held.slice(0, 4)) // … written in part, never acknowledged
  await dead.close()
  t.equal(await app.activityWriter.writeOnce(0), 0, 'nothing new to read')
  t.equal(await app.activityWriter.claimOnce(0), held.length, 'the dead writer\'s events are claimed')
  const exported = await app.activity.exportContact('ann')
  t.equal(exported.events.length, held.length)
  t.match(exported.sessions, [VISIT])
  t.same(await app.eventLog.tail(10), [])
})

t.test('redis + mysql: MariaDB away while heartbeats go on: nothing is lost', async (t) => {
  const clock = createClock(T0)
  const site = uniqueSite('outage')
  cleanRedisSite(t, site)
  const database = await createTestMysqlDatabase(t, 'outage')
  const proxy = await createTcpProxy(3306)
  t.teardown(() => proxy.close())
  const url = new URL(mysqlUrlFor(new URL(database).pathname.slice(1)))
  url.port = String(proxy.port)
  const app = await buildTestApp(t, { now: clock.now, site, env: { DATABASE_URL: url.toString() } })
  // Consent is given while the database is up; the heartbeat path then needs only Redis.
  for (let i = 0; i <= 20; i += 1) await ensureConsent(app, clientToken({ sub: `d${i}` }, clock.now()))
  await send(app, clock, 'd0', 'nav')
  t.equal(await drain(app), 1)

  await proxy.stop()
  const consent = await app.inject({ method: 'POST', url: '/clients/cat_consent', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ token: clientToken({ sub: 'late' }, clock.now()), decision: 'granted', version: 'v', locale: 'en' }) })
  t.equal(consent.statusCode, 503, 'a decision cannot be recorded meanwhile: 503, not a 500')
  t.ok(Number(consent.headers['retry-after']) > 0)
  let sent = 1
  for (let i = 1; i <= 20; i += 1) {
    await send(app, clock, `d${i}`, 'nav') // heartbeats keep answering 204 (send throws otherwise)
    sent += 1
  }
  await t.rejects(app.activityWriter.writeOnce(0), 'the write fails while the database is away')
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 503)
  t.match(ready.json(), { checks: { 'database (mysql)': 'down' } })
  t.equal((await app.eventLog.tail(1000)).length, sent - 1, 'the events wait in the stream')

  await proxy.start()
  t.equal(await drain(app), sent - 1, 'they drain when it is back')
  let rows = 0
  for (let i = 0; i <= 20; i += 1) rows += (await app.activity.exportContact(`d${i}`)).events.length
  t.equal(rows, sent, 'one row per heartbeat event sent')
  t.equal((await app.inject('/readyz')).statusCode, 200)
})

t.test('in production the writer runs by itself, and a closing app writes its memory queue first', async (t) => {
  const dataDir = createTestDataDir(t, 'loop')
  const clock = createClock(T0)
  const app = await buildTestApp(t, { now: clock.now, activityLoops: true, env: { CAT_DATA_DIR: dataDir } })
  await send(app, clock, 'looped', 'nav', { path: '/one' })
  const deadline = Date.now() + 5_000
  while ((await app.activity.exportContact('looped')).events.length === 0) {
    if (Date.now() > deadline) throw new Error('the writer loop wrote nothing within 5 s')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.pass('the loop wrote the join')
  await send(app, clock, 'looped', 'nav', { path: '/two' })
  await send(app, clock, 'looped', 'leave')
  await app.close()

  const reopened = await buildTestApp(t, { now: clock.now, env: { CAT_DATA_DIR: dataDir } })
  const exported = await reopened.activity.exportContact('looped')
  t.same(exported.events.map((e) => e.type), ['join', 'nav', 'leave', 'end'], 'nothing acknowledged was lost at shutdown')
  t.match(exported.sessions, [{ endReason: 'leave', pages: [{ path: '/one' }, { path: '/two' }] }])
})
