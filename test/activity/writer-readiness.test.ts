import t from 'tap'
import { buildTestApp, clientToken, createClock, ensureConsent, heartbeatUrl, until } from '../helpers/app.js'
import { createTestMysqlDatabase, mysqlUrlFor } from '../helpers/database.js'
import { createTcpProxy } from '../helpers/tcp-proxy.js'

const T0 = 1_800_000_000_000


t.test('memory engine: a writer that cannot write is named by readiness, and is not once it writes again', async (t) => {
  const clock = createClock(T0)
  const database = await createTestMysqlDatabase(t, 'ready')
  const proxy = await createTcpProxy(3306)
  t.teardown(() => proxy.close())
  const url = new URL(mysqlUrlFor(new URL(database).pathname.slice(1)))
  url.port = String(proxy.port)
  const app = await buildTestApp(t, { now: clock.now, activityLoops: true, env: { DATABASE_URL: url.toString() } })
  const token = clientToken({ sub: 'ann' }, clock.now())
  await ensureConsent(app, token)
  const nav = (path: string): Promise<number> => app.inject(heartbeatUrl({ token, sid: 'tab-ann-0001', event: 'nav', path })).then((res) => res.statusCode)
  t.equal(await nav('/one'), 204)
  const written = (path: string) => async (): Promise<true | undefined> =>
    (await app.activity.exportContact('ann').catch(() => ({ events: [] as { path: string }[] }))).events.some((event) => event.path === path) ? true : undefined
  await until('/one is written', written('/one'))
  t.match((await app.inject('/readyz')).json(), { status: 'ok', checks: { activityWriter: 'ok' } })

  await proxy.stop()
  t.equal(await nav('/two'), 204, 'heartbeats go on: the event waits in the queue')
  const stalled = await until('readiness names the writer', async () => {
    clock.advance(1000)
    const ready = await app.inject('/readyz')
    const body = ready.json() as { checks: Record<string, string> }
    return body.checks.activityWriter === 'stalled' ? { status: ready.statusCode, body } : undefined
  })
  t.equal(stalled.status, 503)
  t.match(stalled.body, { error: { code: 'unavailable', message: /activityWriter/ }, checks: { 'presence (memory)': 'ok', activityWriter: 'stalled' } })

  await proxy.start()
  await until('/two is written once the database is back', written('/two'))
  const ready = await until('readiness is 200 again', async () => {
    const res = await app.inject('/readyz')
    return res.statusCode === 200 ? res : undefined
  })
  t.match(ready.json(), { checks: { activityWriter: 'ok' } })
})
