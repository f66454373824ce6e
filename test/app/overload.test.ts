import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { buildTestApp, clientToken, ensureConsent, heartbeatUrl, testConfig, until } from '../helpers/app.js'
import { createTestDataDir } from '../helpers/database.js'
import { parseMetrics, sampleValue } from '../helpers/metrics.js'

/** Keeps this process's event loop busy for `ms`: the app shares it. */
function block(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) {
    // busy
  }
}

async function shedAnswer(t: Test, app: FastifyInstance, token: string): Promise<void> {
  const shed = await app.inject(heartbeatUrl({ token, sid: 'tab-ann-0000' }))
  t.equal(shed.statusCode, 503, 'a heartbeat is shed')
  t.equal(shed.headers['retry-after'], '5', 'with Retry-After')
  t.match(shed.json(), { error: { code: 'unavailable', message: /overloaded/ } })
  t.equal((await app.inject('/healthz')).statusCode, 200, 'liveness is served')
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 503, 'readiness fails: take it out of the balancer')
  t.match(ready.json(), { checks: { load: 'overloaded' } })
  const metrics = await app.inject('/metrics')
  t.equal(metrics.statusCode, 200, 'the metrics are served')
  t.ok((sampleValue(parseMetrics(metrics.body), 'cat_heartbeats_total', { event: 'beat', outcome: 'unavailable' }) ?? 0) >= 1, 'the shed heartbeat is counted as unavailable')
}

t.test('a heap above CAT_MAX_HEAP_USED_MB sheds requests with 503 and Retry-After; probes and metrics are served', async (t) => {
  const app = await buildTestApp(t, { pressureSampleMs: 20, env: { CAT_MAX_HEAP_USED_MB: '1' } })
  const ann = clientToken({ sub: 'ann' })
  await until('the first sample', () => (app.overloaded() ? true : undefined), 5000)
  await shedAnswer(t, app, ann)
  t.equal((await app.inject({ method: 'POST', url: '/clients/cat_consent', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ token: ann, decision: 'granted', version: 'v', locale: 'en' }) })).statusCode, 503, 'every other route too')
})

t.test('an event loop behind by more than CAT_MAX_EVENT_LOOP_DELAY_MS sheds requests until it catches up', async (t) => {
  const app = await buildTestApp(t, { pressureSampleMs: 500, env: { CAT_MAX_EVENT_LOOP_DELAY_MS: '200' } })
  const ann = clientToken({ sub: 'ann' })
  await ensureConsent(app, ann)
  t.equal((await app.inject(heartbeatUrl({ token: ann, sid: 'tab-ann-0000' }))).statusCode, 204, 'served while the loop keeps up')
  // Blocked for longer than a sample, the loop's mean delay over it is far above 200 ms; the
  // overdue sample runs first thing after the block (timers before setImmediate), and the next
  // is 500 ms later: time for the requests below.
  await until('the instance sheds', () => {
    block(800)
    return new Promise<true | undefined>((resolve) => setImmediate(() => resolve(app.overloaded() ? true : undefined)))
  }, 10_000)
  await shedAnswer(t, app, ann)
  await until('it serves again once the loop keeps up', async () => ((await app.inject(heartbeatUrl({ token: ann, sid: 'tab-ann-0000' }))).statusCode === 204 ? true : undefined), 10_000)
  t.equal((await app.inject('/readyz')).statusCode, 200, 'and is ready again')
})

t.test("the start's own work is not load: the first requests after a start that held the loop are served", async (t) => {
  // As on a busy machine: the plugins are loaded, then the loop does not turn for several
  // samples, as a slow start's synchronous work holds it.
  const app = await buildApp(testConfig({ CAT_DATA_DIR: createTestDataDir(t, 'overload-start'), CAT_MAX_EVENT_LOOP_DELAY_MS: '50' }), { pressureSampleMs: 100, sweepIntervalMs: 0, activityLoops: false })
  t.teardown(() => app.close())
  block(350)
  const ann = clientToken({ sub: 'ann' })
  const consent = await app.inject({ method: 'POST', url: '/clients/cat_consent', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ token: ann, decision: 'granted', version: 'v', locale: 'en' }) })
  t.equal(consent.statusCode, 204, `the first request is served, not shed: ${consent.body}`)
  t.equal((await app.inject(heartbeatUrl({ token: ann, sid: 'tab-ann-0000' }))).statusCode, 204, 'and the next')
  t.equal((await app.inject('/readyz')).statusCode, 200, 'ready')
})
