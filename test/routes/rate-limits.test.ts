import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { adminToken, buildTestApp, cleanRedisSite, clientToken, createClock, ensureConsent, heartbeatUrl, uniqueSite, until } from '../helpers/app.js'
import { parseMetrics, sampleValue } from '../helpers/metrics.js'

// A whole minute: the limits count in windows of a minute aligned to the clock.
const T0 = 1_800_000_000_000
const FORGED = `${clientToken({ sub: 'ann' }).split('.').slice(0, 2).join('.')}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`

async function metric(app: FastifyInstance, name: string, labels: Record<string, string>): Promise<number | undefined> {
  return sampleValue(parseMetrics((await app.inject('/metrics')).body), name, labels)
}

function refused(t: Test, res: LightMyRequestResponse, retryAfterS: number, what: string): void {
  t.equal(res.statusCode, 429, what)
  t.equal(res.headers['retry-after'], String(retryAfterS), `${what}: Retry-After is the rest of the minute`)
  t.match(res.json(), { error: { code: 'rate_limited', message: /a minute/ } })
}

t.test('memory engine: one contact\'s flood of heartbeats gets 429 with Retry-After; another contact is served; the next minute it is served again', async (t) => {
  const clock = createClock(T0 + 15_000)
  const app = await buildTestApp(t, { now: clock.now, env: { CAT_RATE_LIMIT_HEARTBEATS: '20' } })
  const ann = clientToken({ sub: 'ann' }, clock.now())
  const bob = clientToken({ sub: 'bob' }, clock.now())
  await ensureConsent(app, ann)
  await ensureConsent(app, bob)
  const beat = (token: string, sid: string): Promise<LightMyRequestResponse> => app.inject(heartbeatUrl({ token, sid }))
  const statuses: number[] = []
  for (let k = 0; k < 20; k += 1) statuses.push((await beat(ann, `tab-ann-${String(k % 5).padStart(4, '0')}`)).statusCode)
  t.same([...new Set(statuses)], [204], 'twenty heartbeats a minute are served (five tabs)')
  refused(t, await beat(ann, 'tab-ann-0000'), 45, 'the 21st')
  refused(t, await beat(ann, 'tab-ann-0001'), 45, 'from another of the tabs too')
  t.equal((await beat(bob, 'tab-bob-0000')).statusCode, 204, 'another contact is served')
  t.equal(await metric(app, 'cat_rate_limited_total', { route: 'heartbeat' }), 2)
  t.equal(await metric(app, 'cat_heartbeats_total', { event: 'beat', outcome: 'rate_limited' }), 2)
  clock.advance(45_000)
  t.equal((await beat(ann, 'tab-ann-0000')).statusCode, 204, 'the next minute, served again')
})

t.test('memory engine: an address whose requests keep failing authentication is refused before any token is checked; other addresses and known tokens are served', async (t) => {
  const clock = createClock(T0)
  const app = await buildTestApp(t, { now: clock.now, env: { CAT_RATE_LIMIT_AUTH_FAILURES: '5' } })
  const ann = clientToken({ sub: 'ann' }, clock.now())
  await ensureConsent(app, ann)
  const from = (remoteAddress: string, url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> => app.inject({ url, remoteAddress, headers })
  t.equal((await from('10.0.0.1', heartbeatUrl({ token: ann, sid: 'tab-ann-0000' }))).statusCode, 204, 'ann\'s token is verified once, from that address')
  const forged: number[] = []
  for (let k = 0; k < 5; k += 1) forged.push((await from('10.0.0.1', heartbeatUrl({ token: FORGED, sid: 'tab-ann-0000' }))).statusCode)
  t.same(forged, [401, 401, 401, 401, 401], 'five forged tokens: 401 each')
  refused(t, await from('10.0.0.1', heartbeatUrl({ token: FORGED, sid: 'tab-ann-0000' })), 60, 'the sixth forged token')
  refused(t, await from('10.0.0.1', heartbeatUrl({ sid: 'tab-ann-0000' })), 60, 'a missing token')
  refused(t, await from('10.0.0.1', heartbeatUrl({ token: clientToken({ sub: 'carl' }, clock.now()), sid: 'tab-carl-000' })), 60, 'a good token never seen: not checked either')
  refused(t, await from('10.0.0.1', '/admin/api/online', { authorization: `Bearer ${FORGED}` }), 60, 'on the admin API too')
  t.equal((await from('10.0.0.1', heartbeatUrl({ token: ann, sid: 'tab-ann-0000' }))).statusCode, 204, 'a token verified before is served as usual')
  t.equal((await from('10.0.0.2', heartbeatUrl({ token: FORGED, sid: 'tab-ann-0000' }))).statusCode, 401, 'another address: its own count')
  t.equal(await metric(app, 'cat_rate_limited_total', { route: 'auth' }), 4)
  clock.advance(60_000)
  t.equal((await from('10.0.0.1', heartbeatUrl({ token: FORGED, sid: 'tab-ann-0000' }))).statusCode, 401, 'the next minute: checked (and failing) again')
})

t.test('memory engine: consent decisions per contact, the admin API per staff member over all its routes', async (t) => {
  const clock = createClock(T0 + 30_000)
  const app = await buildTestApp(t, { now: clock.now, env: { CAT_RATE_LIMIT_CONSENT: '3', CAT_RATE_LIMIT_ADMIN: '4' } })
  const decide = (token: string): Promise<LightMyRequestResponse> =>
    app.inject({ method: 'POST', url: '/clients/cat_consent', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ token, decision: 'granted', version: 'v1', locale: 'en' }) })
  const ann = clientToken({ sub: 'ann' }, clock.now())
  const decided: number[] = []
  for (let k = 0; k < 3; k += 1) decided.push((await decide(ann)).statusCode)
  t.same(decided, [204, 204, 204])
  refused(t, await decide(ann), 30, 'the fourth decision in a minute')
  t.equal((await decide(clientToken({ sub: 'bob' }, clock.now()))).statusCode, 204, 'another contact decides')
  t.equal((await app.inject({ url: `/clients/cat_consent?token=${encodeURIComponent(ann)}` })).statusCode, 200, 'reading the decision is not limited')
  t.equal((await decide('not.a.token')).statusCode, 401, 'a bad token is refused as such')

  const staff = adminToken({ sub: 'staff-1' }, clock.now())
  const call = (url: string, token = staff): Promise<LightMyRequestResponse> => app.inject({ url, headers: { authorization: `Bearer ${token}` } })
  const answered = [await call('/admin/api/online'), await call('/admin/api/stats/online?range=24h'), await call('/admin/api/online'), await call('/admin/api/contacts/ann/activity')].map((r) => r.statusCode)
  t.same(answered, [200, 200, 200, 200], 'four calls over three routes')
  refused(t, await call('/admin/api/stats/online?range=24h'), 30, 'the fifth, on any route')
  t.equal((await call('/admin/api/online', adminToken({ sub: 'staff-2' }, clock.now()))).statusCode, 200, 'another staff member is served')
  t.equal(await metric(app, 'cat_rate_limited_total', { route: 'consent' }), 1)
  t.equal(await metric(app, 'cat_rate_limited_total', { route: 'admin' }), 1)
})

t.test('Redis, two instances: the limits hold over both', async (t) => {
  const site = uniqueSite('limits')
  cleanRedisSite(t, site)
  const clock = createClock(T0 + 10_000)
  const env = { CAT_RATE_LIMIT_HEARTBEATS: '20', CAT_RATE_LIMIT_AUTH_FAILURES: '10', CAT_RATE_LIMIT_CONSENT: '4' }
  const apps = [await buildTestApp(t, { site, now: clock.now, env }), await buildTestApp(t, { site, now: clock.now, env })]
  const ann = clientToken({ sub: 'ann' }, clock.now())
  const bob = clientToken({ sub: 'bob' }, clock.now())
  for (const app of apps) {
    await ensureConsent(app, ann)
    await ensureConsent(app, bob)
  }

  // ann's beats alternate between the instances: twenty in all are served, not twenty each.
  const statuses: number[] = []
  for (let k = 0; k < 24; k += 1) statuses.push((await (apps[k % 2] as FastifyInstance).inject(heartbeatUrl({ token: ann, sid: 'tab-ann-0000' }))).statusCode)
  t.same(statuses.slice(0, 20), Array(20).fill(204), 'twenty served, spread over both')
  t.same(statuses.slice(20), [429, 429, 429, 429], 'then 429 on either instance')
  for (const app of apps) t.equal((await app.inject(heartbeatUrl({ token: bob, sid: 'tab-bob-0000' }))).statusCode, 204, 'bob is served on each')

  // Forged tokens from one address, alternating: refused once the address's failures over both
  // instances pass the limit (counted in Redis without the request waiting: a request or two late).
  let failures = 0
  await until('both instances refuse the address', async () => {
    const answers = await Promise.all(apps.map((app) => app.inject({ url: heartbeatUrl({ token: FORGED, sid: 'tab-ann-0000' }), remoteAddress: '10.0.0.9' })))
    failures += answers.filter((r) => r.statusCode === 401).length
    return answers.every((r) => r.statusCode === 429) ? true : undefined
  })
  t.ok(failures >= 10 && failures <= 13, `refused after ${failures} failures over both instances (the limit is 10 an address, not 10 each)`)

  const decide = (app: FastifyInstance): Promise<number> =>
    app.inject({ method: 'POST', url: '/clients/cat_consent', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ token: ann, decision: 'granted', version: 'v2', locale: 'en' }) }).then((r) => r.statusCode)
  // ensureConsent made one decision of ann's on each instance: two more are allowed.
  t.same([await decide(apps[0] as FastifyInstance), await decide(apps[1] as FastifyInstance), await decide(apps[0] as FastifyInstance), await decide(apps[1] as FastifyInstance)], [204, 204, 429, 429], 'consent: four a minute over both')
})
