import t from 'tap'
import type { Redis } from 'ioredis'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { adminToken, buildTestApp, clientToken, createClock, ensureConsent, heartbeatUrl, uniqueSite, until } from '../helpers/app.js'
import { startRedisServer } from '../helpers/redis-server.js'
import type { RedisPresenceEngine } from '../../src/presence/redis/redis-presence-engine.js'

// Redis here is a private redis-server of each test, killed, restarted and frozen by it; the
// shared one is never touched.

const T0 = 1_800_000_000_000


/** The answer, or a failure naming the request when none comes (a hung Redis held it). */
async function answered<T>(what: string, promise: Promise<T>, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

function beat(app: FastifyInstance, now: number, sub: string, event = 'beat', path = '/p'): Promise<LightMyRequestResponse> {
  return app.inject(heartbeatUrl({ token: clientToken({ sub }, now), sid: `tab-${sub}-0001`, event, path }))
}

t.test('Redis restarted without its data: the writer creates its group again and writes; readiness names it while it cannot', async (t) => {
  const server = await startRedisServer(t)
  const clock = createClock(T0)
  const app = await buildTestApp(t, { now: clock.now, site: uniqueSite('nogroup'), activityLoops: true, env: { REDIS_URL: server.url } })
  for (const sub of ['ann', 'bob']) await ensureConsent(app, clientToken({ sub }, clock.now()))
  t.equal((await beat(app, clock.now(), 'ann', 'nav', '/before')).statusCode, 204)
  await until('the join of ann is written', async () => ((await app.activity.exportContact('ann')).events.length > 0 ? true : undefined))
  t.equal((await app.inject('/readyz')).statusCode, 200)

  await server.kill()
  t.equal((await beat(app, clock.now(), 'ann')).statusCode, 503, 'Redis gone: 503')
  // The writer's reads fail; once they have failed for longer than it allows, readiness names it.
  const stalled = await until('readiness names the writer', async () => {
    clock.advance(1000)
    const ready = await app.inject('/readyz')
    const body = ready.json() as { checks: Record<string, string> }
    return body.checks.activityWriter === 'stalled' ? { status: ready.statusCode, body } : undefined
  })
  t.equal(stalled.status, 503)
  t.match(stalled.body, { error: { code: 'unavailable', message: /activityWriter/ }, checks: { activityWriter: 'stalled' } })

  // Back, empty: the stream and the writers' consumer group are gone.
  await server.restart({ persist: false })
  const nav = await until('a heartbeat is answered 204 again', async () => {
    const res = await beat(app, clock.now(), 'bob', 'nav', '/after')
    return res.statusCode === 204 ? res : undefined
  })
  t.equal(nav.statusCode, 204)
  const written = await until('the join of bob, after the restart, is written', async () => {
    const events = (await app.activity.exportContact('bob')).events
    return events.length > 0 ? events : undefined
  })
  t.match(written, [{ type: 'join', path: '/after' }], 'the new event reached the database')
  const ready = await until('readiness is 200 again', async () => {
    const res = await app.inject('/readyz')
    return res.statusCode === 200 ? res : undefined
  })
  t.match(ready.json(), { status: 'ok', checks: { activityWriter: 'ok' } })
})

t.test('Redis frozen: heartbeats answer 503 with Retry-After, queued ones too; thawed, 204 and the right answers', async (t) => {
  const server = await startRedisServer(t)
  const clock = createClock(T0)
  // The writer runs too: its blocking reads on a connection of their own live through the freeze.
  const app = await buildTestApp(t, { now: clock.now, site: uniqueSite('frozen'), activityLoops: true, env: { REDIS_URL: server.url, CAT_REDIS_TIMEOUT_MS: '2000' } })
  const subs = Array.from({ length: 12 }, (_, i) => `c${i}`)
  for (const sub of subs) {
    await ensureConsent(app, clientToken({ sub }, clock.now()))
    t.equal((await beat(app, clock.now(), sub, 'nav', '/one')).statusCode, 204)
  }

  server.freeze()
  // Fewer than 16 in all: that many full heartbeats queued go out at once (SEND_FULL_AT), unanswered call or not.
  const [first, behind] = [subs.slice(0, 3), subs.slice(3)]
  // The first heartbeats go to Redis in one call, which stays unanswered…
  const sent = Promise.all(first.flatMap((sub) => [beat(app, clock.now(), sub), beat(app, clock.now(), sub, 'nav', '/two')]))
  const engine = app.presence as RedisPresenceEngine
  // A heartbeat script's call, not any command nor any script: the writer's own calls (its
  // reads, and its acks, a script too) share this connection.
  const redis = engine.redis as Redis & { scriptsSet: Record<string, { sha: string }> }
  const heartbeatShas = new Set(['catBeat', 'catHeartbeat'].map((name) => redis.scriptsSet[name]?.sha))
  const scriptSent = (): true | undefined => (redis.commandQueue.toArray().some((item) => item.command.name === 'evalsha' && heartbeatShas.has(String(item.command.args[0]))) ? true : undefined)
  await until('the first call is on its way', async () => scriptSent())
  // …and these queue behind it.
  const queued = Promise.all(behind.map((sub) => beat(app, clock.now(), sub, 'nav', '/queued')))
  const during = [...await answered('heartbeats to a frozen Redis', sent), ...await answered('heartbeats queued behind', queued)]
  t.same(during.map((res) => res.statusCode), during.map(() => 503), 'every heartbeat got 503')
  t.ok(during.every((res) => Number(res.headers['retry-after']) > 0), 'each with Retry-After')
  t.equal((await answered('readiness', app.inject('/readyz'))).statusCode, 503, 'readiness fails too')

  server.thaw()
  const afterThaw = (await engine.snapshot()).online
  t.same(afterThaw.filter((p) => behind.includes(p.contactId)).map((p) => p.path), behind.map(() => '/one'),
    'the queued heartbeats failed with the call they waited for, unsent: Redis never got them')
  // The connection was never cut: the late answers of the timed-out calls come first, then
  // the new calls get their own.
  for (const sub of subs) t.equal((await beat(app, clock.now(), sub, 'nav', `/three-${sub}`)).statusCode, 204, `${sub} after the thaw`)
  const online = (await app.inject({ url: '/admin/api/online', headers: { authorization: `Bearer ${adminToken({}, clock.now())}` } })).json() as { online: { contactId: string; path: string }[] }
  t.same(online.online.map((p) => `${p.contactId} ${p.path}`).sort(), subs.map((sub) => `${sub} /three-${sub}`).sort(), 'each contact on its own last page')
  for (const sub of subs) {
    await until(`the page view of ${sub} after the thaw is written`, async () => {
      const { events } = await app.activity.exportContact(sub)
      return events.some((event) => event.path === `/three-${sub}`) ? true : undefined
    })
  }
  t.pass('the writer wrote what came after the thaw')
  t.equal((await app.inject('/readyz')).statusCode, 200)
})
