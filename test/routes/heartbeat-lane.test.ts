import t, { type Test } from 'tap'
import { request } from 'undici'
import type { FastifyInstance, onResponseHookHandler, RouteOptions } from 'fastify'
import { buildTestApp, cleanRedisSite, clientToken, createClock, ensureConsent, heartbeatUrl, uniqueSite, until, type TestAppOptions } from '../helpers/app.js'
import { listenPort } from '../helpers/raw-http.js'
import { parseMetrics } from '../helpers/metrics.js'
import { startRedisServer } from '../helpers/redis-server.js'

// The lane (src/routes/heartbeat-lane.ts) answers the usual heartbeat below Fastify. Requests
// sent with inject() never meet it (they enter Fastify directly), so each answer over HTTP is
// compared with inject()'s answer to the same request on a twin app: they must be the same.

const T0 = 1_800_000_000_000

interface Answer {
  status: number
  headers: Record<string, string>
  body: string
}

/** What a client is told: status, body and headers, less those of the connection (Node's, not the route's). */
function answerOf(status: number, headers: Record<string, string | string[] | undefined>, body: string): Answer {
  const kept: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) if (!['date', 'connection', 'keep-alive'].includes(name) && value !== undefined) kept[name] = String(value)
  return { status, headers: kept, body }
}

interface Step {
  what: string
  url: string
  method?: 'GET' | 'HEAD'
  headers?: Record<string, string>
}

/** An app that counts the answers its heartbeat route gives, errors included: those the lane gives are not among them. */
async function countingApp(t: Test, options: TestAppOptions): Promise<{ app: FastifyInstance; routeCalls(): number }> {
  let calls = 0
  const app = await buildTestApp(t, {
    ...options,
    onRoute(route: RouteOptions) {
      if (route.url !== '/cat_heartbeat') return
      const counted: onResponseHookHandler = (_request, _reply, done) => {
        calls += 1
        done()
      }
      route.onResponse = [...[route.onResponse ?? []].flat(), counted]
    },
  })
  return { app, routeCalls: () => calls }
}

async function overHttp(port: number, step: Step): Promise<Answer> {
  const res = await request(`http://127.0.0.1:${port}${step.url}`, { method: step.method ?? 'GET', headers: step.headers })
  return answerOf(res.statusCode, res.headers, await res.body.text())
}

async function injected(app: FastifyInstance, step: Step): Promise<Answer> {
  const res = await app.inject({ url: step.url, method: step.method ?? 'GET', headers: step.headers })
  return answerOf(res.statusCode, res.headers as Record<string, string>, res.body)
}

/** The heartbeat counters and the duration histogram's count, by labels. */
function heartbeatCounts(text: string): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const sample of parseMetrics(text)) {
    if (sample.name === 'cat_heartbeats_total' || sample.name === 'cat_heartbeat_duration_seconds_count') counts[`${sample.name}${JSON.stringify(sample.labels)}`] = sample.value
  }
  return counts
}

for (const engine of ['memory', 'redis'] as const) {
  t.test(`${engine}: the lane answers the usual heartbeat as the route does, and hands it everything else`, async (t) => {
    const clock = createClock(T0)
    const env = { CAT_MAX_TABS_PER_CONTACT: '2', CAT_RATE_LIMIT_HEARTBEATS: '12', CAT_HEARTBEAT_INTERVAL_S: '20' }
    const sites = engine === 'redis' ? [uniqueSite('lane-http'), uniqueSite('lane-inject')] : [undefined, undefined]
    for (const site of sites) if (site !== undefined) cleanRedisSite(t, site)
    const overNet = await countingApp(t, { now: clock.now, site: sites[0], env })
    const twin = await buildTestApp(t, { now: clock.now, site: sites[1], env })
    const port = await listenPort(overNet.app)
    const ann = clientToken({ sub: 'ann', clientId: 'acme', name: 'Ann', company: 'Acme' }, clock.now())
    const bob = clientToken({ sub: 'bob' }, clock.now())
    for (const app of [overNet.app, twin]) await ensureConsent(app, ann)
    const hb = (params: Record<string, string | undefined>): string => heartbeatUrl({ token: ann, ...params })

    // lane: whether the heartbeat route does not answer it (the lane does, or the router's 404).
    const steps: (Step & { lane: boolean })[] = [
      { what: 'a first heartbeat (the consent verified the token)', url: hb({ sid: 'tab-ann-0001', event: 'nav', path: '/clients/tickets', title: 'Tickets' }), lane: true },
      { what: 'a beat of a known token and a consenting contact', url: hb({ sid: 'tab-ann-0001' }), lane: true },
      { what: 'a navigation, with the defaults of path and title', url: hb({ sid: 'tab-ann-0001', event: 'nav' }), lane: true },
      { what: 'a hidden tab', url: hb({ sid: 'tab-ann-0001', event: 'hidden' }), lane: true },
      { what: 'a second tab', url: hb({ sid: 'tab-ann-0002', event: 'nav', path: '/clients/invoices', title: 'Invoices' }), lane: true },
      { what: 'a third tab: one more than allowed, refused after the lane took it', url: hb({ sid: 'tab-ann-0003', event: 'nav' }), lane: false },
      { what: 'an invalid sid', url: hb({ sid: 'short' }), lane: false },
      { what: 'a path without its slash', url: hb({ sid: 'tab-ann-0001', path: 'clients' }), lane: false },
      { what: 'a repeated parameter', url: `${hb({ sid: 'tab-ann-0001' })}&sid=tab-ann-0009`, lane: false },
      { what: 'an unknown event', url: hb({ sid: 'tab-ann-0001', event: 'jump' }), lane: false },
      { what: 'Global Privacy Control', url: hb({ sid: 'tab-ann-0001' }), headers: { 'sec-gpc': '1' }, lane: false },
      { what: 'no token', url: heartbeatUrl({ sid: 'tab-ann-0001' }), lane: false },
      { what: 'a token altered in its last character', url: heartbeatUrl({ token: `${ann.slice(0, -1)}${ann.endsWith('A') ? 'B' : 'A'}`, sid: 'tab-ann-0001' }), lane: false },
      { what: 'a contact without consent', url: heartbeatUrl({ token: bob, sid: 'tab-bob-0001' }), lane: false },
      { what: 'the same again: the token is known now, the consent still is not', url: heartbeatUrl({ token: bob, sid: 'tab-bob-0001' }), lane: false },
      { what: 'HEAD', url: hb({ sid: 'tab-ann-0001' }), method: 'HEAD', lane: false },
      { what: 'a path the router does not match (404, not the route)', url: `/cat_heartbeat/?${hb({ sid: 'tab-ann-0001' }).split('?')[1]}`, lane: true },
      { what: 'a tab leaving', url: hb({ sid: 'tab-ann-0002', event: 'leave' }), lane: true },
    ]
    // Ann's heartbeats this minute so far, counted by the rate limit: those that reached the
    // handler or the lane (not those the validator refused).
    const counted = 9
    for (let n = counted + 1; n <= 12; n += 1) steps.push({ what: `beat ${n} of the minute`, url: hb({ sid: 'tab-ann-0001' }), lane: true })
    steps.push({ what: 'beat 13 of the minute: over the rate limit', url: hb({ sid: 'tab-ann-0001' }), lane: false })

    for (const step of steps) {
      const before = overNet.routeCalls()
      const viaLane = await overHttp(port, step)
      const viaRoute = await injected(twin, step)
      t.same(viaLane, viaRoute, `${step.what}: the same answer over HTTP as from the route (${viaRoute.status})`)
      t.equal(overNet.routeCalls() - before, step.lane ? 0 : 1, `${step.what}: ${step.lane ? 'answered by the lane' : 'answered by the route'}`)
    }

    // The same presence, and the same counts in the metrics.
    const online = async (app: FastifyInstance): Promise<unknown> => (await app.presence.snapshot()).online
    t.same(await online(overNet.app), await online(twin), 'the same contacts online, on the same pages')
    t.match(await online(overNet.app), [{ contactId: 'ann', tabs: 1 }])
    const metrics = async (app: FastifyInstance): Promise<Record<string, number>> => heartbeatCounts((await app.inject('/metrics')).body)
    const counts = await metrics(overNet.app)
    t.same(counts, await metrics(twin), 'the same heartbeat counts and timings counted, by event and outcome')
    t.equal(counts['cat_heartbeats_total{"event":"beat","outcome":"ok"}'], 5, 'the beats the lane answered are counted')

    // The token expires: the lane no longer knows it, and the route answers 401.
    clock.advance(3_700_000)
    const late: Step = { what: 'an expired token', url: hb({ sid: 'tab-ann-0001' }) }
    const before = overNet.routeCalls()
    const expired = await overHttp(port, late)
    t.same(expired, await injected(twin, late), 'an expired token: the same answer')
    t.equal(expired.status, 401)
    t.equal(overNet.routeCalls() - before, 1, 'answered by the route')
  })
}

t.test('a heartbeat the lane took, with Redis gone: 503 with Retry-After, as the route answers it', async (t) => {
  const server = await startRedisServer(t)
  const clock = createClock(T0)
  const { app, routeCalls } = await countingApp(t, { now: clock.now, site: uniqueSite('lane-outage'), env: { REDIS_URL: server.url } })
  const port = await listenPort(app)
  const token = clientToken({ sub: 'ann' }, clock.now())
  await ensureConsent(app, token)
  const step: Step = { what: 'a beat', url: heartbeatUrl({ token, sid: 'tab-ann-0001', event: 'nav' }) }
  t.equal((await overHttp(port, step)).status, 204)
  t.equal((await overHttp(port, step)).status, 204)
  const before = routeCalls()
  await server.kill()
  const viaLane = await overHttp(port, step)
  t.equal(routeCalls() - before, 1, 'the lane took it and handed its error to the route')
  t.equal(viaLane.status, 503)
  t.equal(viaLane.headers['retry-after'], '5')
  t.match(JSON.parse(viaLane.body), { error: { code: 'unavailable' } })
  t.same(viaLane, await injected(app, step), 'the same answer as the route gives')
  await server.restart({ persist: true })
  const back = await until('answered 204 again', async () => {
    const res = await overHttp(port, step)
    return res.status === 204 ? res : undefined
  })
  t.equal(back.status, 204)
})

t.test('an overloaded instance: the lane leaves the heartbeat to the route, which sheds it', async (t) => {
  // Overload is judged from one sample after the start: time to record the consent and a first heartbeat.
  const { app, routeCalls } = await countingApp(t, { pressureSampleMs: 1500, env: { CAT_MAX_HEAP_USED_MB: '1' } })
  const port = await listenPort(app)
  const token = clientToken({ sub: 'ann' })
  await ensureConsent(app, token)
  const step: Step = { what: 'a beat', url: heartbeatUrl({ token, sid: 'tab-ann-0001' }) }
  t.equal((await overHttp(port, step)).status, 204, 'served before the first sample')
  await until('the instance is overloaded', () => (app.overloaded() ? true : undefined), 10_000)
  const before = routeCalls()
  const shed = await overHttp(port, step)
  t.equal(shed.status, 503)
  t.equal(shed.headers['retry-after'], '5')
  t.match(JSON.parse(shed.body), { error: { code: 'unavailable', message: /overloaded/ } })
  t.equal(routeCalls() - before, 1, 'the route shed it')
})

t.test('with CAT_ALLOWED_ORIGINS the lane is off: every heartbeat gets the route and its CORS headers', async (t) => {
  const { app, routeCalls } = await countingApp(t, { env: { CAT_ALLOWED_ORIGINS: 'https://portal.example' } })
  const port = await listenPort(app)
  const token = clientToken({ sub: 'ann' })
  await ensureConsent(app, token)
  const step: Step = { what: 'a beat', url: heartbeatUrl({ token, sid: 'tab-ann-0001' }) }
  for (let i = 0; i < 3; i += 1) {
    const res = await overHttp(port, { ...step, headers: i === 2 ? { origin: 'https://portal.example' } : {} })
    t.equal(res.status, 204)
    t.match(res.headers, { vary: 'Origin', 'access-control-expose-headers': 'CAT-Interval, Retry-After' })
  }
  t.equal(routeCalls(), 3, 'each reached the route')
})

t.test("the heartbeat route's hooks are the one the lane stands in for", async (t) => {
  // The lane answers without running the route's hooks; it checks for overload itself, which is
  // what the one hook there does. A hook added to the route (or to every route) must be
  // mirrored in the lane (or turn it off, as CORS does) before this list changes.
  const app = await buildTestApp(t)
  const routes = app.printRoutes({ includeHooks: true, commonPrefix: false, method: 'GET' }).split('\n')
  const at = routes.findIndex((line) => /\/cat_heartbeat \(GET\)/.test(line))
  t.ok(at >= 0, 'the route is listed')
  const hooks: string[] = []
  for (const line of routes.slice(at + 1)) {
    const hook = /•\s*(.*)$/.exec(line)
    if (hook === null) break
    hooks.push((hook[1] as string).trim())
  }
  t.same(hooks, ['(onRequest) ["onRequest()"]'], 'only the overload hook of @fastify/under-pressure')
})
