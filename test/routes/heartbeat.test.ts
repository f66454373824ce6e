import t from 'tap'
import { adminToken, buildTestApp, cleanRedisSite, clientToken, createClock, heartbeatUrl, uniqueSite, ensureConsent } from '../helpers/app.js'
import { locate } from '../../src/presence/redis/keys.js'
import type { RedisPresenceEngine } from '../../src/presence/redis/redis-presence-engine.js'

const SID = 'tab0000001'

function errorOf(body: string): { code: string; message: string } {
  return (JSON.parse(body) as { error: { code: string; message: string } }).error
}

t.test('a heartbeat is acknowledged with 204 and CAT-Interval, and the contact is online', async (t) => {
  const clock = createClock()
  const app = await buildTestApp(t, { now: clock.now, env: { CAT_HEARTBEAT_INTERVAL_S: '20', CAT_PRESENCE_TIMEOUT_S: '50' } })
  const token = clientToken({ sub: 'c-1', clientId: 'k-1', name: 'Ann', company: 'Acme' }, clock.now())
  await ensureConsent(app, token)
  const res = await app.inject(heartbeatUrl({ token, sid: SID, path: '/clients/tickets', title: 'Tickets', event: 'nav' }))
  t.equal(res.statusCode, 204)
  t.equal(res.headers['cat-interval'], '20')
  t.equal(res.body, '')

  const online = await app.inject({ url: '/admin/api/online', headers: { authorization: `Bearer ${adminToken({}, clock.now())}` } })
  t.equal(online.statusCode, 200)
  t.same(online.json(), {
    at: clock.now(),
    online: [{ contactId: 'c-1', clientId: 'k-1', name: 'Ann', company: 'Acme', path: '/clients/tickets', title: 'Tickets', state: 'active', since: clock.now(), lastSeen: clock.now(), tabs: 1 }],
  })
})

t.test('event defaults to beat, path to /, and a beat of an unknown tab joins', async (t) => {
  const app = await buildTestApp(t)
  const token = clientToken()
  await ensureConsent(app, token)
  const res = await app.inject(heartbeatUrl({ token, sid: SID }))
  t.equal(res.statusCode, 204)
  const { online } = (await app.presence.snapshot())
  t.equal(online.length, 1)
  t.equal(online[0]?.path, '/')
})

t.test('POST as sendBeacon sends it: query string, JSON text/plain body, or a form', async (t) => {
  const app = await buildTestApp(t)
  const token = clientToken()
  await ensureConsent(app, token)
  const query = await app.inject({ method: 'POST', url: heartbeatUrl({ token, sid: SID, event: 'nav', path: '/a' }), headers: { 'content-type': 'text/plain;charset=UTF-8' }, payload: '' })
  t.equal(query.statusCode, 204)
  const json = await app.inject({ method: 'POST', url: '/cat_heartbeat', headers: { 'content-type': 'text/plain;charset=UTF-8' }, payload: JSON.stringify({ token, sid: SID, event: 'nav', path: '/b', title: 'B' }) })
  t.equal(json.statusCode, 204)
  t.equal((await app.presence.snapshot()).online[0]?.path, '/b')
  const form = await app.inject({ method: 'POST', url: '/cat_heartbeat', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ token, sid: SID, event: 'leave' }).toString() })
  t.equal(form.statusCode, 204)
  t.same((await app.presence.snapshot()).online, [], 'the leave from the form body ended the presence')
})

t.test('tokens: missing, wrong audience, expired, forged → 401 invalid_token, nothing stored', async (t) => {
  const clock = createClock()
  const app = await buildTestApp(t, { now: clock.now })
  const cases: [string, string | undefined][] = [
    ['missing', undefined],
    ['admin token', adminToken({}, clock.now())],
    ['expired', clientToken({ ttlS: 60 }, clock.now() - 120_000)],
    ['forged', clientToken({}, clock.now(), ['another-secret-0123456789'])],
    ['garbage', 'not.a.jwt'],
  ]
  for (const [label, token] of cases) {
    const res = await app.inject(heartbeatUrl({ token, sid: SID, event: 'nav' }))
    t.equal(res.statusCode, 401, label)
    t.equal(errorOf(res.body).code, 'invalid_token', label)
    t.ok(errorOf(res.body).message.length > 0, `${label}: says why`)
  }
  t.same((await app.presence.snapshot()).online, [])
})

t.test('bad input gets 400 invalid_request naming the parameter, never a 500', async (t) => {
  const app = await buildTestApp(t)
  const token = clientToken()
  const cases: [string, Record<string, string | undefined>, string][] = [
    ['no sid', { token }, 'sid'],
    ['short sid', { token, sid: 'abc' }, 'sid'],
    ['sid with a separator', { token, sid: 'abcdefgh|x' }, 'sid'],
    ['sid too long', { token, sid: 'a'.repeat(65) }, 'sid'],
    ['relative path', { token, sid: SID, path: 'clients' }, 'path'],
    ['path too long', { token, sid: SID, path: '/' + 'p'.repeat(2048) }, 'path'],
    ['title too long', { token, sid: SID, title: 't'.repeat(513) }, 'title'],
    ['unknown event', { token, sid: SID, event: 'explode' }, 'event'],
    ['token too long', { token: 'x'.repeat(4097), sid: SID }, 'token'],
  ]
  for (const [label, params, name] of cases) {
    const res = await app.inject(heartbeatUrl(params))
    t.equal(res.statusCode, 400, label)
    const error = errorOf(res.body)
    t.equal(error.code, 'invalid_request', label)
    t.match(error.message, name, `${label}: names ${name}`)
  }
  const repeated = await app.inject(`/cat_heartbeat?token=${token}&sid=${SID}&sid=${SID}`)
  t.equal(repeated.statusCode, 400, 'a repeated parameter is refused')
  const badJson = await app.inject({ method: 'POST', url: '/cat_heartbeat', headers: { 'content-type': 'text/plain' }, payload: '{"token":' })
  t.equal(badJson.statusCode, 400)
  t.equal(errorOf(badJson.body).code, 'invalid_request')
  const wrongType = await app.inject({ method: 'POST', url: '/cat_heartbeat', headers: { 'content-type': 'application/xml' }, payload: '<a/>' })
  t.equal(wrongType.statusCode, 400)
  t.equal(errorOf(wrongType.body).code, 'invalid_request')
  const tooLarge = await app.inject({ method: 'POST', url: '/cat_heartbeat', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ token, sid: SID, title: 'x'.repeat(10_000) }) })
  t.equal(tooLarge.statusCode, 413)
  t.equal(errorOf(tooLarge.body).code, 'too_large')
  const unknown = await app.inject('/nowhere?token=x')
  t.equal(unknown.statusCode, 404)
  t.equal(errorOf(unknown.body).code, 'not_found')
  t.same((await app.presence.snapshot()).online, [], 'nothing was stored')
})

t.test('CORS: allowed origins may read the response and CAT-Interval; others may not', async (t) => {
  const app = await buildTestApp(t, { env: { CAT_ALLOWED_ORIGINS: 'https://portal.example.com' } })
  const token = clientToken()
  await ensureConsent(app, token)
  const url = heartbeatUrl({ token, sid: SID })
  const allowed = await app.inject({ url, headers: { origin: 'https://portal.example.com' } })
  t.equal(allowed.statusCode, 204)
  t.equal(allowed.headers['access-control-allow-origin'], 'https://portal.example.com')
  t.match(String(allowed.headers['access-control-expose-headers']), /CAT-Interval/)
  const foreign = await app.inject({ url, headers: { origin: 'https://evil.example.net' } })
  t.equal(foreign.headers['access-control-allow-origin'], undefined)
  t.match(String(foreign.headers.vary), /Origin/, 'caches keep answers to different origins apart')
  // A browser does not check CORS headers on a same-origin request: none are needed.
  const same = await app.inject({ url, headers: { origin: 'http://localhost:80', host: 'localhost:80' } })
  t.equal(same.statusCode, 204, 'same origin is always allowed')
  const preflight = await app.inject({ method: 'OPTIONS', url: '/admin/api/online', headers: { origin: 'https://portal.example.com', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } })
  t.equal(preflight.statusCode, 204)
  t.match(String(preflight.headers['access-control-allow-headers']), /Authorization/i)
  t.equal(preflight.headers['access-control-allow-origin'], 'https://portal.example.com')
  const foreignPreflight = await app.inject({ method: 'OPTIONS', url: '/admin/api/online', headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'GET' } })
  t.equal(foreignPreflight.headers['access-control-allow-origin'], undefined, 'a foreign preflight is not granted (the browser stops there)')
})

t.test('CORS with no other origins listed: no CORS headers to anyone, heartbeats still answered', async (t) => {
  const app = await buildTestApp(t)
  const token = clientToken()
  await ensureConsent(app, token)
  const res = await app.inject({ url: heartbeatUrl({ token, sid: SID }), headers: { origin: 'https://portal.example.com' } })
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], undefined)
})

t.test('Redis engine: heartbeats reach Redis; Redis gone → 503 unavailable with Retry-After; readiness names it', async (t) => {
  const site = uniqueSite('hb')
  cleanRedisSite(t, site)
  const app = await buildTestApp(t, { site })
  const token = clientToken()
  await ensureConsent(app, token)
  const ok = await app.inject(heartbeatUrl({ token, sid: SID, event: 'nav', path: '/x' }))
  t.equal(ok.statusCode, 204)
  const engine = app.presence as RedisPresenceEngine
  t.equal(await engine.redis.zcard(engine.partitionOf('contact-1').bucket(locate('contact-1', engine.partitions.length).bucket)), 1, 'the tab is in its bucket before the 204')
  t.equal((await app.inject('/readyz')).statusCode, 200)

  engine.redis.disconnect()
  const down = await app.inject(heartbeatUrl({ token, sid: SID }))
  t.equal(down.statusCode, 503)
  t.equal(errorOf(down.body).code, 'unavailable')
  t.ok(Number(down.headers['retry-after']) > 0, 'Retry-After says when to come back')
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 503)
  t.match(ready.json(), { error: { code: 'unavailable' }, checks: { 'presence (redis)': 'down' } })
  t.equal((await app.inject('/healthz')).statusCode, 200, 'liveness is unaffected')
})

t.test('readiness fails while draining', async (t) => {
  const app = await buildTestApp(t)
  t.equal((await app.inject('/readyz')).statusCode, 200)
  app.draining = true
  const res = await app.inject('/readyz')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { checks: { instance: 'draining' } })
})

t.test('admin REST needs an admin bearer token', async (t) => {
  const app = await buildTestApp(t)
  for (const [label, headers] of [
    ['none', {}],
    ['client token', { authorization: `Bearer ${clientToken()}` }],
    ['not bearer', { authorization: `Basic ${adminToken()}` }],
  ] as const) {
    const res = await app.inject({ url: '/admin/api/online', headers })
    t.equal(res.statusCode, 401, label)
    t.equal(errorOf(res.body).code, 'invalid_token', label)
  }
})

t.test('a tab beyond CAT_MAX_TABS_PER_CONTACT gets 429 rate_limited with Retry-After; the open tabs go on', async (t) => {
  for (const engine of ['memory', 'redis'] as const) {
    t.test(engine, async (t) => {
      const site = engine === 'redis' ? uniqueSite('tab-bound') : undefined
      if (site !== undefined) cleanRedisSite(t, site)
      const app = await buildTestApp(t, { site, env: { CAT_MAX_TABS_PER_CONTACT: '3', CAT_HEARTBEAT_INTERVAL_S: '20', CAT_PRESENCE_TIMEOUT_S: '50' } })
      const token = clientToken({ sub: 'tabby' })
      await ensureConsent(app, token)
      for (const sid of ['tab0000001', 'tab0000002', 'tab0000003']) {
        t.equal((await app.inject(heartbeatUrl({ token, sid, event: 'nav' }))).statusCode, 204, sid)
      }
      const refused = await app.inject(heartbeatUrl({ token, sid: 'tab0000004', event: 'nav', path: '/other' }))
      t.equal(refused.statusCode, 429)
      t.equal(refused.headers['retry-after'], '20')
      t.equal(errorOf(refused.body).code, 'rate_limited')
      t.match(errorOf(refused.body).message, /3 tabs/)
      t.equal((await app.inject(heartbeatUrl({ token, sid: 'tab0000001' }))).statusCode, 204, 'an open tab still beats')
      const [presence] = (await app.presence.snapshot()).online
      t.equal(presence?.tabs, 3)
      t.equal(presence?.path, '/', 'the refused tab changed nothing')
      t.equal((await app.inject(heartbeatUrl({ token, sid: 'tab0000002', event: 'leave' }))).statusCode, 204)
      t.equal((await app.inject(heartbeatUrl({ token, sid: 'tab0000004', event: 'nav' }))).statusCode, 204, 'a new tab once one closed')
    })
  }
})
