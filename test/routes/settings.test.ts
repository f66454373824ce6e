/**
 * GET and PUT /admin/api/settings: checked by the environment's own rules with the same
 * messages, saved in the database, and applied where each setting acts: the heartbeat's
 * CAT-Interval, when a contact times out or idles out (memory and Redis engines, injected
 * clock, sweeps driven by the test), the diff window, the retention, and on the other
 * instances of the site (a Redis notice on one Redis and on a Redis Cluster; a re-read of a
 * shared SQLite file).
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { ConfigError, loadConfig } from '../../src/config/config.js'
import { adminToken, buildTestApp, cleanRedisSite, clientToken, createClock, ensureConsent, heartbeatUrl, SECRET, uniqueSite, until } from '../helpers/app.js'
import { createTestDataDir, createTestMysqlDatabase } from '../helpers/database.js'
import { cleanClusterSite, REDIS_CLUSTER_NODES } from '../helpers/redis-cluster.js'
import { connectDashboard } from '../helpers/ws.js'

const admin = (now = Date.now()): Record<string, string> => ({ authorization: `Bearer ${adminToken({}, now)}` })

async function getSettings(app: FastifyInstance, headers: Record<string, string> = admin()): Promise<{ statusCode: number; body: Record<string, unknown> }> {
  const res = await app.inject({ method: 'GET', url: '/admin/api/settings', headers })
  return { statusCode: res.statusCode, body: res.json() }
}

async function putSettings(app: FastifyInstance, payload: unknown, headers: Record<string, string> = admin()): Promise<{ statusCode: number; body: Record<string, unknown> & { error?: { code: string; message: string } } }> {
  const res = await app.inject({ method: 'PUT', url: '/admin/api/settings', headers: { ...headers, 'content-type': 'application/json' }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) })
  return { statusCode: res.statusCode, body: res.json() }
}

/** The one line the environment's loader stops the start with. */
function envMessage(env: Record<string, string>): string {
  try {
    loadConfig({ CAT_SECRET: SECRET, ...env })
  } catch (error) {
    if (error instanceof ConfigError) return error.message
    throw error
  }
  throw new Error(`the environment ${JSON.stringify(env)} was accepted`)
}

const values = (body: Record<string, unknown>): Record<string, unknown> => {
  const { heartbeatIntervalS, presenceTimeoutS, idleTimeoutS, diffIntervalMs, retentionDays } = body
  return { heartbeatIntervalS, presenceTimeoutS, idleTimeoutS, diffIntervalMs, retentionDays }
}

t.test('GET answers the environment\'s values until someone saves; PUT saves, merges, resets with null, and a new app on the database reads them', async (t) => {
  const env = { DATABASE_URL: await createTestMysqlDatabase(t, 'settings'), CAT_HEARTBEAT_INTERVAL_S: '20', CAT_PRESENCE_TIMEOUT_S: '50', CAT_IDLE_TIMEOUT_S: '300', CAT_DIFF_INTERVAL_MS: '40', CAT_RETENTION_DAYS: '30' }
  const clock = createClock()
  const app = await buildTestApp(t, { env, now: clock.now })
  const before = await getSettings(app, admin(clock.now()))
  t.equal(before.statusCode, 200)
  t.same(before.body, {
    heartbeatIntervalS: 20, presenceTimeoutS: 50, idleTimeoutS: 300, diffIntervalMs: 40, retentionDays: 30,
    sources: { heartbeatIntervalS: 'environment', presenceTimeoutS: 'environment', idleTimeoutS: 'environment', diffIntervalMs: 'environment', retentionDays: 'environment' },
    updatedAt: null,
  })

  const saved = await putSettings(app, { heartbeatIntervalS: 10, presenceTimeoutS: 25 }, admin(clock.now()))
  t.equal(saved.statusCode, 200)
  t.same(values(saved.body), { heartbeatIntervalS: 10, presenceTimeoutS: 25, idleTimeoutS: 300, diffIntervalMs: 40, retentionDays: 30 }, 'a partial PUT merges with the values in force')
  t.same(saved.body.sources, { heartbeatIntervalS: 'saved', presenceTimeoutS: 'saved', idleTimeoutS: 'environment', diffIntervalMs: 'environment', retentionDays: 'environment' })
  t.equal(saved.body.updatedAt, clock.now())
  t.same((await getSettings(app, admin(clock.now()))).body, saved.body, 'GET answers what was saved')

  clock.advance(1000)
  const more = await putSettings(app, { retentionDays: 7, diffIntervalMs: 0 }, admin(clock.now()))
  t.same(values(more.body), { heartbeatIntervalS: 10, presenceTimeoutS: 25, idleTimeoutS: 300, diffIntervalMs: 0, retentionDays: 7 }, 'a second save keeps the first one\'s values')

  const fresh = await buildTestApp(t, { env, now: clock.now })
  t.same((await getSettings(fresh, admin(clock.now()))).body, more.body, 'a new app on the same database starts with the saved values')

  const reset = await putSettings(app, { heartbeatIntervalS: null }, admin(clock.now()))
  t.equal(reset.statusCode, 200)
  t.equal(reset.body.heartbeatIntervalS, 20, 'null returns a setting to the environment\'s value')
  t.equal((reset.body.sources as Record<string, string>).heartbeatIntervalS, 'environment')
})

t.test('a bad value gets 400 invalid_request with the message the environment gives, from the same validator', async (t) => {
  const app = await buildTestApp(t)
  const cases: { body: Record<string, unknown>; env: Record<string, string>; api: string; fromEnv: string }[] = [
    {
      body: { presenceTimeoutS: 20 },
      env: { CAT_PRESENCE_TIMEOUT_S: '20' },
      api: 'presenceTimeoutS: expected whole seconds above heartbeatIntervalS (30), got 20',
      fromEnv: 'CAT_PRESENCE_TIMEOUT_S: expected whole seconds above CAT_HEARTBEAT_INTERVAL_S (30), got 20',
    },
    {
      body: { heartbeatIntervalS: 700 },
      env: { CAT_HEARTBEAT_INTERVAL_S: '700' },
      api: 'presenceTimeoutS: expected whole seconds above heartbeatIntervalS (700), got 75',
      fromEnv: 'CAT_PRESENCE_TIMEOUT_S: expected whole seconds above CAT_HEARTBEAT_INTERVAL_S (700), got 75',
    },
    {
      body: { heartbeatIntervalS: 60, presenceTimeoutS: 120, idleTimeoutS: 45 },
      env: { CAT_HEARTBEAT_INTERVAL_S: '60', CAT_PRESENCE_TIMEOUT_S: '120', CAT_IDLE_TIMEOUT_S: '45' },
      api: 'idleTimeoutS: expected whole seconds above heartbeatIntervalS (60), got 45',
      fromEnv: 'CAT_IDLE_TIMEOUT_S: expected whole seconds above CAT_HEARTBEAT_INTERVAL_S (60), got 45',
    },
    { body: { retentionDays: 0 }, env: { CAT_RETENTION_DAYS: '0' }, api: 'retentionDays: expected whole days, 1-36500, got 0', fromEnv: 'CAT_RETENTION_DAYS: expected whole days, 1-36500, got "0"' },
    { body: { diffIntervalMs: 60001 }, env: { CAT_DIFF_INTERVAL_MS: '60001' }, api: 'diffIntervalMs: expected whole milliseconds, 0-60000, got 60001', fromEnv: 'CAT_DIFF_INTERVAL_MS: expected whole milliseconds, 0-60000, got "60001"' },
    { body: { heartbeatIntervalS: 2.5 }, env: { CAT_HEARTBEAT_INTERVAL_S: '2.5' }, api: 'heartbeatIntervalS: expected whole seconds, 1-3600, got 2.5', fromEnv: 'CAT_HEARTBEAT_INTERVAL_S: expected whole seconds, 1-3600, got "2.5"' },
    { body: { heartbeatIntervalS: 0 }, env: { CAT_HEARTBEAT_INTERVAL_S: '0' }, api: 'heartbeatIntervalS: expected whole seconds, 1-3600, got 0', fromEnv: 'CAT_HEARTBEAT_INTERVAL_S: expected whole seconds, 1-3600, got "0"' },
    { body: { idleTimeoutS: 'ten' }, env: { CAT_IDLE_TIMEOUT_S: 'ten' }, api: 'idleTimeoutS: expected whole seconds above heartbeatIntervalS, got "ten"', fromEnv: 'CAT_IDLE_TIMEOUT_S: expected whole seconds above CAT_HEARTBEAT_INTERVAL_S, got "ten"' },
    { body: { presenceTimeoutS: 86401 }, env: { CAT_PRESENCE_TIMEOUT_S: '86401' }, api: 'presenceTimeoutS: expected whole seconds above heartbeatIntervalS, got 86401', fromEnv: 'CAT_PRESENCE_TIMEOUT_S: expected whole seconds above CAT_HEARTBEAT_INTERVAL_S, got "86401"' },
  ]
  for (const { body, env, api, fromEnv } of cases) {
    const res = await putSettings(app, body)
    t.equal(res.statusCode, 400, JSON.stringify(body))
    t.same(res.body, { error: { code: 'invalid_request', message: api } })
    t.equal(envMessage(env), fromEnv, `the environment's line for ${JSON.stringify(env)}`)
  }
  t.same(values((await getSettings(app)).body), { heartbeatIntervalS: 30, presenceTimeoutS: 75, idleTimeoutS: 600, diffIntervalMs: 20, retentionDays: 90 }, 'nothing was saved')
})

t.test('unknown fields, a body that is not an object, garbage JSON: 400; no token: 401; a staff token: 403', async (t) => {
  const app = await buildTestApp(t)
  const unknown = await putSettings(app, { presenceTimeoutS: 80, sweepEveryS: 5 })
  t.equal(unknown.statusCode, 400)
  t.same(unknown.body.error, { code: 'invalid_request', message: 'sweepEveryS: not a setting; expected only heartbeatIntervalS, presenceTimeoutS, idleTimeoutS, diffIntervalMs, retentionDays' })
  for (const [payload, kind] of [['[1,2]', 'an array'], ['"text"', 'a string'], ['null', 'null'], ['42', 'a number']] as const) {
    const res = await putSettings(app, payload)
    t.equal(res.statusCode, 400, payload)
    t.same(res.body.error, { code: 'invalid_request', message: `settings: expected a JSON object of heartbeatIntervalS, presenceTimeoutS, idleTimeoutS, diffIntervalMs, retentionDays, got ${kind}` })
  }
  const text = await app.inject({ method: 'PUT', url: '/admin/api/settings', headers: { ...admin(), 'content-type': 'text/plain' }, payload: '{"presenceTimeoutS": 80}' })
  t.equal(text.statusCode, 400, 'a text body is not taken for JSON')
  t.match(text.json().error.message, /got a string$/)
  const empty = await app.inject({ method: 'PUT', url: '/admin/api/settings', headers: admin() })
  t.equal(empty.statusCode, 400, 'no body at all')
  t.match(empty.json().error.message, /got no body$/)
  const garbage = await putSettings(app, '{"presenceTimeoutS": 8')
  t.equal(garbage.statusCode, 400)
  t.equal(garbage.body.error?.code, 'invalid_request')

  const none = await app.inject({ method: 'GET', url: '/admin/api/settings' })
  t.equal(none.statusCode, 401)
  t.equal(none.json().error.code, 'invalid_token')
  const nonePut = await app.inject({ method: 'PUT', url: '/admin/api/settings', payload: { presenceTimeoutS: 80 } })
  t.equal(nonePut.statusCode, 401)

  const staff = { authorization: `Bearer ${adminToken({ role: 'staff' })}` }
  const staffGet = await getSettings(app, staff)
  t.equal(staffGet.statusCode, 403)
  t.equal((staffGet.body.error as { code: string }).code, 'forbidden')
  const staffPut = await putSettings(app, { presenceTimeoutS: 80 }, staff)
  t.equal(staffPut.statusCode, 403)
  t.equal(staffPut.body.error?.code, 'forbidden')
  t.equal((await getSettings(app)).body.presenceTimeoutS, 75, 'nothing was saved')
})

async function beat(app: FastifyInstance, token: string, sid: string, event = 'beat'): Promise<{ status: number; interval: string | undefined }> {
  const res = await app.inject({ method: 'GET', url: heartbeatUrl({ token, sid, path: '/clients', title: 'Portal', event }) })
  if (res.statusCode !== 204) throw new Error(`heartbeat answered ${res.statusCode}: ${res.body}`)
  return { status: res.statusCode, interval: res.headers['cat-interval'] as string | undefined }
}

async function online(app: FastifyInstance, now: number): Promise<string[]> {
  const res = await app.inject({ method: 'GET', url: '/admin/api/online', headers: admin(now) })
  return (res.json() as { online: { contactId: string }[] }).online.map((p) => p.contactId).sort()
}

for (const engine of ['memory', 'redis'] as const) {
  t.test(`${engine}: the heartbeat interval, presence and idle timeouts apply from the next beat, without a restart`, async (t) => {
    const site = engine === 'redis' ? uniqueSite('settings') : undefined
    if (site !== undefined) cleanRedisSite(t, site)
    const clock = createClock()
    const app = await buildTestApp(t, { site, now: clock.now })
    const ttlS = 86_400
    const ann = clientToken({ sub: 'ann', ttlS }, clock.now())
    const bob = clientToken({ sub: 'bob', ttlS }, clock.now())
    const cid = clientToken({ sub: 'cid', ttlS }, clock.now())
    for (const token of [ann, bob, cid]) await ensureConsent(app, token)

    t.equal((await beat(app, ann, 'tab-ann-0001')).interval, '30', 'the environment\'s interval')
    // bob beats before the change: his tab keeps the expiry it got then (75 s) until it beats again.
    await beat(app, bob, 'tab-bob-0001')
    t.equal((await putSettings(app, { heartbeatIntervalS: 5, presenceTimeoutS: 12, idleTimeoutS: 20 }, admin(clock.now()))).statusCode, 200)
    const after = await beat(app, ann, 'tab-ann-0001')
    t.equal(after.interval, '5', 'the next heartbeat is told the new interval')
    await beat(app, cid, 'tab-cid-0001')
    await beat(app, cid, 'tab-cid-0001', 'hidden')

    clock.advance(12_000 - 1)
    await app.presence.sweep()
    t.same(await online(app, clock.now()), ['ann', 'bob', 'cid'], 'nobody is due a millisecond before the new timeout')
    clock.advance(2)
    await app.presence.sweep()
    t.same(await online(app, clock.now()), ['bob', 'cid'], 'ann, who beat after the change, timed out 12 s after her beat (not 75)')
    clock.advance(20_000 - 12_001)
    await app.presence.sweep()
    t.same(await online(app, clock.now()), ['bob'], 'cid\'s hidden tab idled out 20 s after it was hidden (not 600)')
    await beat(app, bob, 'tab-bob-0001')
    clock.advance(12_001)
    await app.presence.sweep()
    t.same(await online(app, clock.now()), [], 'bob\'s next beat carried the new timeout')
  })
}

for (const redis of ['one Redis', 'a Redis Cluster'] as const) {
  t.test(`${redis}: a save through one app applies on another app of the site within seconds (bus notice), and MariaDB holds it`, async (t) => {
    const site = uniqueSite('settings-bus')
    const cluster = redis === 'a Redis Cluster'
    if (cluster) cleanClusterSite(t, site)
    else cleanRedisSite(t, site)
    const env = { DATABASE_URL: await createTestMysqlDatabase(t, 'settings_bus'), ...(cluster ? { REDIS_CLUSTER_NODES, CAT_SITE: site } : {}) }
    // No periodic re-read: only the Redis notice can tell the second app.
    const options = { site: cluster ? undefined : site, env, settingsRefreshMs: 0 }
    const a = await buildTestApp(t, options)
    const b = await buildTestApp(t, options)
    t.equal(b.presence.kind, 'redis')
    const ann = clientToken({ sub: 'ann' })
    await ensureConsent(b, ann)
    t.equal((await beat(b, ann, 'tab-ann-0001')).interval, '30')
    t.equal((await putSettings(a, { heartbeatIntervalS: 7, presenceTimeoutS: 21 })).statusCode, 200)
    const started = Date.now()
    await until('the other app applies the saved interval', async () => ((await beat(b, ann, 'tab-ann-0001')).interval === '7' ? true : undefined), 5_000)
    t.ok(Date.now() - started < 5_000, `applied within ${Date.now() - started} ms`)
    t.equal((await getSettings(b)).body.presenceTimeoutS, 21)
  })
}

t.test('memory engine on one SQLite file: a second app converges by its periodic re-read', async (t) => {
  const env = { CAT_DATA_DIR: createTestDataDir(t, 'settings-sqlite') }
  const a = await buildTestApp(t, { env })
  const b = await buildTestApp(t, { env, settingsRefreshMs: 200 })
  t.equal((await putSettings(a, { diffIntervalMs: 250, retentionDays: 3 })).statusCode, 200)
  await until('the second app re-reads the saved settings', async () => ((await getSettings(b)).body.retentionDays === 3 ? true : undefined), 5_000)
  t.equal((await getSettings(b)).body.diffIntervalMs, 250)
})

t.test('the retention follows the saved value at the next purge', async (t: Test) => {
  const clock = createClock()
  const app = await buildTestApp(t, { now: clock.now })
  const ann = clientToken({ sub: 'ann', ttlS: 86_400 * 30 }, clock.now())
  await ensureConsent(app, ann)
  await beat(app, ann, 'tab-ann-0001')
  await beat(app, ann, 'tab-ann-0001', 'leave')
  while ((await app.activityWriter.writeOnce(0)) > 0);
  clock.advance(3 * 86_400_000)
  t.equal(await app.activityJobs.purgeNow(), 0, 'three days old: kept under the 90 days of the environment')
  t.equal((await putSettings(app, { retentionDays: 2 }, admin(clock.now()))).statusCode, 200)
  t.ok((await app.activityJobs.purgeNow()) > 0, 'deleted under the saved 2 days')
})

t.test('saved settings that no longer fit a changed environment give way to the environment\'s values', async (t) => {
  const dataDir = createTestDataDir(t, 'settings-misfit')
  const before = await buildTestApp(t, { env: { CAT_DATA_DIR: dataDir } })
  t.equal((await putSettings(before, { presenceTimeoutS: 40 })).statusCode, 200)
  await before.close()
  // Restarted with a longer interval: the saved 40 s is no longer above it.
  const lines: string[] = []
  const after = await buildTestApp(t, { env: { CAT_DATA_DIR: dataDir, CAT_HEARTBEAT_INTERVAL_S: '60', LOG_LEVEL: 'warn' }, logStream: { write: (line: string) => void lines.push(line) } })
  const { body } = await getSettings(after)
  t.same(values(body), { heartbeatIntervalS: 60, presenceTimeoutS: 75, idleTimeoutS: 600, diffIntervalMs: 20, retentionDays: 90 })
  t.equal((body.sources as Record<string, string>).presenceTimeoutS, 'environment')
  t.match(lines.join(''), /the saved settings do not fit the environment's; the environment's values apply/, 'and says so in the log')
  t.match(lines.join(''), /presenceTimeoutS: expected whole seconds above heartbeatIntervalS \(60\), got 40/)
})

t.test('the diff window follows the saved value: a join waits for the new window before it reaches a dashboard', async (t) => {
  const app = await buildTestApp(t)
  const dashboard = await connectDashboard(app, adminToken())
  t.teardown(() => dashboard.close())
  await dashboard.waitFor((m) => m.type === 'snapshot')
  const joinDelay = async (sub: string): Promise<number> => {
    const token = clientToken({ sub })
    await ensureConsent(app, token)
    const from = dashboard.messages.length
    const sent = Date.now()
    await beat(app, token, `tab-${sub}-0001`, 'nav')
    await dashboard.waitFor((m) => m.type === 'diff' && (m.joined ?? []).some((p) => p.contactId === sub), 5_000, from)
    return Date.now() - sent
  }
  const before = await joinDelay('ann')
  t.ok(before < 900, `under the environment's 20 ms window the join arrives at once (${before} ms)`)
  t.equal((await putSettings(app, { diffIntervalMs: 1000 })).statusCode, 200)
  const after = await joinDelay('bob')
  t.ok(after >= 950, `under the saved 1000 ms window the join waits for the window to close (${after} ms)`)
})
