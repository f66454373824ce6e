/**
 * Fault probe: the private Redis of the test is frozen with SIGSTOP under load: it keeps its
 * sockets open and answers nothing. A command timeout (CAT_REDIS_TIMEOUT_MS, about a second)
 * turns the hang into 503 + Retry-After, and heartbeats get 204 again after SIGCONT.
 */
import t from 'tap'
import { buildTestApp, clientToken, uniqueSite } from '../helpers/app.js'
import { wsBase } from '../helpers/ws.js'
import { UNLIMITED_HEARTBEATS, eventually, grantConsent, percentile, printFigures, rssMiB, runLoad, sleep, startRedisServer } from '../helpers/faults.js'
import { Pool } from 'undici'

const FREEZE_MS = 3000

t.test('Redis frozen under load: heartbeats answer 503 with Retry-After while it hangs, and 204 after SIGCONT', async (t) => {
  const redis = await startRedisServer(t)
  const site = uniqueSite('frozen')
  const app = await buildTestApp(t, { env: { ...UNLIMITED_HEARTBEATS, REDIS_URL: redis.url, CAT_SITE: site } })
  const origin = (await wsBase(app)).replace('ws:', 'http:')
  const token = clientToken({ sub: 'frozen-innocent', clientId: 'client-frozen' })
  await grantConsent(origin, token)
  const rssBefore = rssMiB()

  const loadStart = performance.now()
  const load = runLoad({
    origin,
    maxRequests: 20_000,
    durationMs: 1000 + FREEZE_MS + 1500,
    concurrency: 4,
    timeoutMs: FREEZE_MS + 5000,
    request: (i) => ({ path: `/cat_heartbeat?token=${token}&sid=frozentab${i % 4}&event=beat&path=/` }),
  })
  await sleep(1000)
  const frozenAt = performance.now() - loadStart
  redis.freeze()
  await sleep(FREEZE_MS)
  redis.thaw()
  const thawedAt = performance.now() - loadStart
  const result = await load
  const rssAfter = rssMiB()

  // Answered while Redis was frozen: the response came in the frozen window.
  const duringFreeze = result.sent.filter((s) => s.at > frozenAt && s.at <= thawedAt)
  const unavailable = result.sent.filter((s) => s.status === 503)
  const pool = new Pool(origin, { connections: 1 })
  t.teardown(() => pool.close())
  const recovered = await eventually(async () => {
    const res = await pool.request({ method: 'GET', path: `/cat_heartbeat?token=${token}&sid=frozentab0&event=beat&path=/` })
    await res.body.text()
    return res.statusCode === 204
  }, 5000)
  printFigures(t, 'redis-frozen', {
    requests: result.sent.length,
    faults: 1,
    frozenMs: FREEZE_MS,
    answeredWhileFrozen: duringFreeze.length,
    http503: unavailable.length,
    http5xx: result.sent.filter((s) => s.status >= 500).length,
    networkErrors: result.statuses[0] ?? 0,
    p50ms: percentile(result.latencies, 50),
    p99ms: percentile(result.latencies, 99),
    maxms: percentile(result.latencies, 100),
    rssBeforeMiB: rssBefore,
    rssAfterMiB: rssAfter,
  })
  t.ok(duringFreeze.some((s) => s.status === 503), 'heartbeats are answered 503 while Redis hangs, not held until it wakes')
  t.same(unavailable.filter((s) => s.retryAfter === undefined).map((s) => s.body), [], 'every 503 has Retry-After')
  t.same(result.sent.filter((s) => s.status !== 204 && s.status !== 503).map((s) => `${s.status} ${s.error ?? s.body}`), [], 'nothing but 204 and 503')
  t.ok(recovered, 'heartbeats get 204 again after SIGCONT')
})
