/**
 * The licence life cycle against the real licence server on loopback (issue 18): activation,
 * re-validation, grace while the server is down, expiry and the 402 on the staff side (the
 * portal side working on), a domain mismatch, a revoked key, a lease altered by one byte or
 * signed by another key, a restart and a second instance reading the stored lease. Time is the
 * injected clock; the licence loop is driven by hand (licensePollMs 0).
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { adminToken, buildTestApp, clientToken, createClock, ensureConsent, heartbeatUrl, testConfig } from '../helpers/app.js'
import { buildApp } from '../../src/app.js'
import { connectDashboard } from '../helpers/ws.js'
import { createTestDataDir, createTestMysqlDatabase } from '../helpers/database.js'
import { createKeyPair, DAY_MS, DOMAIN, startLicenseServer, type TestLicenseServer } from '../helpers/license.js'
import { LICENSE_STATE_NAME } from '../../src/license/license-manager.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** An admin token minted on the app's clock, which the tests move by days. */
const admin = (app: FastifyInstance): Record<string, string> => ({ authorization: `Bearer ${adminToken({}, app.now())}` })

async function licenseOf(app: FastifyInstance): Promise<Record<string, unknown>> {
  const res = await app.inject({ url: '/admin/api/license', headers: admin(app) })
  if (res.statusCode !== 200) throw new Error(`GET /admin/api/license answered ${res.statusCode}: ${res.body}`)
  return res.json()
}

async function activate(app: FastifyInstance, key: string, token = adminToken({}, app.now())): Promise<{ statusCode: number; body: Record<string, unknown> }> {
  const res = await app.inject({ method: 'POST', url: '/admin/api/license', headers: { authorization: `Bearer ${token}` }, payload: { key } })
  return { statusCode: res.statusCode, body: res.json() }
}

/** What a staff member and a dashboard get on the staff side: the status of a read, the upgrade and the widget. */
async function staffSide(app: FastifyInstance): Promise<{ online: number; ws: number; widget: number; message: string }> {
  const online = await app.inject({ url: '/admin/api/online', headers: admin(app) })
  const widget = await app.inject('/admin/widget.js')
  let ws = 101
  try {
    const dashboard = await connectDashboard(app, adminToken({}, app.now()))
    await dashboard.close()
  } catch (error) {
    ws = (error as { statusCode?: number }).statusCode ?? 0
  }
  return { online: online.statusCode, ws, widget: widget.statusCode, message: online.statusCode === 200 ? '' : online.json<{ error: { message: string } }>().error.message }
}

async function licensedApp(t: Teardown, server: TestLicenseServer, clock: { now: () => number }, env: Record<string, string> = {}): Promise<FastifyInstance> {
  const app = await buildTestApp(t, { now: clock.now, licensePollMs: 0, env: server.env(env) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

t.test('licensing off: GET says so, nothing is blocked, nothing to activate', async (t) => {
  const app = await buildTestApp(t)
  const view = await licenseOf(app)
  t.match(view, { enabled: false, state: 'unlicensed', domain: null, validUntil: null, graceUntil: null, checkedAt: null })
  t.match(view.message, /Licensing is off/)
  t.equal((await app.inject({ url: '/admin/api/online', headers: admin(app) })).statusCode, 200)
  t.equal((await app.inject('/admin/widget.js')).statusCode, 200)
  const post = await activate(app, 'CAT-AAAAA-BBBBB')
  t.equal(post.statusCode, 400)
  t.match(post.body, { error: { code: 'invalid_request', message: /Licensing is off/ } })
})

t.test('no key: unlicensed, the staff side answers 402 while the portal side, the page and the licence endpoints work', async (t) => {
  const clock = createClock(Date.now())
  const server = await startLicenseServer(t, clock)
  const app = await licensedApp(t, server, clock)
  t.match(await licenseOf(app), { enabled: true, state: 'unlicensed', domain: DOMAIN, validUntil: null })

  const side = await staffSide(app)
  t.same({ ...side, message: '' }, { online: 402, ws: 402, widget: 402, message: '' }, '402 on a read, the WebSocket upgrade and the widget')
  t.match(side.message, /licence of this install is unlicensed/, 'the message names the state')
  const read = await app.inject({ url: '/admin/api/stats/online?range=1h', headers: admin(app) })
  t.match(read.json(), { error: { code: 'license_required' } })
  t.equal((await app.inject({ url: '/admin/api/online' })).statusCode, 401, 'no token: 401 before anything is said about the licence')

  t.equal((await app.inject('/admin')).statusCode, 200, 'the dashboard page loads')
  t.equal((await app.inject('/admin/dashboard.js')).statusCode, 200, "and so does the page's script")
  const contact = clientToken({ sub: 'unlicensed-contact' }, app.now())
  await ensureConsent(app, contact)
  t.equal((await app.inject(heartbeatUrl({ token: contact, sid: 'tab-0001', path: '/clients', event: 'nav' }))).statusCode, 204, 'heartbeats go on')
})

t.test('activation: a key issued by the vendor turns the install active; bad keys, staff tokens and an unreachable server are refused', async (t) => {
  const clock = createClock(Date.now())
  const server = await startLicenseServer(t, clock)
  const app = await licensedApp(t, server, clock)
  const key = server.issue({ days: 30 })

  const malformed = await activate(app, 'short')
  t.equal(malformed.statusCode, 400)
  t.match(malformed.body, { error: { code: 'invalid_request', message: /^key: expected 8-128 characters/ } })
  const staff = await activate(app, key, adminToken({ role: 'staff' }, app.now()))
  t.equal(staff.statusCode, 403)
  t.match(staff.body, { error: { code: 'forbidden' } })

  await server.proxy.stop()
  const down = await activate(app, key)
  t.equal(down.statusCode, 503, 'the licence server down: 503, nothing stored')
  t.match(down.body, { error: { code: 'unavailable', message: /licence server could not be reached/ } })
  t.equal((await licenseOf(app)).state, 'unlicensed')
  await server.proxy.start()

  const ok = await activate(app, key)
  t.equal(ok.statusCode, 200)
  t.match(ok.body, { enabled: true, state: 'active', domain: DOMAIN, validUntil: clock.now() + 30 * DAY_MS, checkedAt: clock.now(), graceUntil: clock.now() + 7 * DAY_MS, keyHint: key.slice(-4) })
  t.same(await staffSide(app), { online: 200, ws: 101, widget: 200, message: '' })
  t.match(server.store.activations(key), [{ domain: DOMAIN, lastStatus: 'active' }], 'the licence server recorded the activation with an instance id')
  const stored = await app.activity.readInstallState(LICENSE_STATE_NAME)
  t.match(JSON.parse(stored?.value ?? '{}'), { key, checkedAt: clock.now() }, 'the key and the lease are stored for every instance')
})

t.test('a key of another JSON type is refused as sent, not converted: a number, an array of one key', async (t) => {
  const clock = createClock(Date.now())
  const server = await startLicenseServer(t, clock)
  const app = await licensedApp(t, server, clock)
  const key = server.issue({ days: 30 })
  for (const sent of [123456789, [key], { key }, true]) {
    const res = await app.inject({ method: 'POST', url: '/admin/api/license', headers: admin(app), payload: { key: sent } })
    t.equal(res.statusCode, 400, `${JSON.stringify(sent)}: 400`)
    t.same(res.json(), { error: { code: 'invalid_request', message: 'body/key must be string' } }, 'the validator names the field and its type, as for any body')
  }
  const staff = await app.inject({ method: 'POST', url: '/admin/api/license', headers: { authorization: `Bearer ${adminToken({ role: 'staff' }, app.now())}` }, payload: { key: 123456789 } })
  t.equal(staff.statusCode, 403, 'a staff token is refused for its role first')
  t.same(server.store.activations(key), [], 'nothing reached the licence server')
  t.equal((await licenseOf(app)).state, 'unlicensed')
})

t.test('an answer of the licence server over 64 KiB is not read: 503, nothing stored, with a length given or chunked', async (t) => {
  const { createServer } = await import('node:http')
  const huge = JSON.stringify({ lease: 'A'.repeat(2 * 1024 * 1024), signature: 'x' })
  let asked = 0
  const fake = createServer((request, response) => {
    asked += 1
    request.resume()
    response.setHeader('content-type', 'application/json')
    // Even requests get the length up front, odd ones the body in chunks without it.
    if (asked % 2 === 0) response.setHeader('content-length', Buffer.byteLength(huge))
    else for (let at = 0; at < huge.length; at += 65_536) response.write(huge.slice(at, at + 65_536))
    response.end(asked % 2 === 0 ? huge : undefined)
  })
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => fake.close(() => resolve())))
  const env = { CAT_LICENSE_SERVER_URL: `http://127.0.0.1:${(fake.address() as { port: number }).port}`, CAT_PUBLIC_URL: `https://${DOMAIN}`, CAT_LICENSE_PUBLIC_KEY: createKeyPair().publicKey }
  const clock = createClock(Date.now())
  const app = await buildTestApp(t, { now: clock.now, licensePollMs: 0, env })
  for (const how of ['chunked', 'with its length']) {
    const res = await activate(app, 'CAT-TEST-KEY-0004')
    t.equal(res.statusCode, 503, `${how}: 503`)
    t.match(res.body, { error: { code: 'unavailable', message: /licence server could not be reached/ } })
  }
  t.equal(asked, 2, 'both activations asked the server')
  t.equal((await licenseOf(app)).state, 'unlicensed')
  t.equal(await app.activity.readInstallState(LICENSE_STATE_NAME), undefined, 'no lease stored')
})

t.test('re-validation after 24 h; the server down for 6 days is grace with days left, for 8 expired (402), heartbeats still 204', async (t) => {
  const clock = createClock(Date.now())
  const server = await startLicenseServer(t, clock)
  const app = await licensedApp(t, server, clock)
  const key = server.issue()
  const activatedAt = clock.now()
  t.equal((await activate(app, key)).body.state, 'active')

  clock.advance(12 * 3_600_000)
  await app.license.tick()
  t.equal((await licenseOf(app)).checkedAt, activatedAt, 'not due after 12 h: no call')

  clock.advance(12 * 3_600_000)
  await app.license.tick()
  const renewed = await licenseOf(app)
  t.match(renewed, { state: 'active', checkedAt: clock.now(), graceUntil: clock.now() + 7 * DAY_MS }, 're-validated after 24 h')
  const validatedAt = clock.now()

  await server.proxy.stop()
  clock.advance(DAY_MS)
  await app.license.tick()
  t.match(await licenseOf(app), { state: 'grace', daysLeft: 6, checkedAt: validatedAt }, 'the server unreachable at the next validation: grace')
  t.equal((await app.inject({ url: '/admin/api/online', headers: admin(app) })).statusCode, 200, 'grace serves the staff side')

  clock.set(validatedAt + 6 * DAY_MS)
  await app.license.tick()
  const grace = await licenseOf(app)
  t.match(grace, { state: 'grace', daysLeft: 1, graceUntil: validatedAt + 7 * DAY_MS }, 'down for 6 days: grace, one day left')
  t.match(grace.message, /cannot be reached \(ECONNREFUSED.*1 more day/)
  t.same(await staffSide(app), { online: 200, ws: 101, widget: 200, message: '' })

  const open = await connectDashboard(app, adminToken({}, app.now()))
  await open.waitFor((m) => m.type === 'snapshot')
  clock.set(validatedAt + 8 * DAY_MS)
  await app.license.tick()
  t.same(await open.closed, { code: 4402, reason: 'license required' }, 'a dashboard open when the grace ends is closed with 4402')
  const expired = await licenseOf(app)
  t.match(expired, { state: 'expired', daysLeft: null })
  t.match(expired.message, /grace are over/)
  const side = await staffSide(app)
  t.match(side, { online: 402, ws: 402, widget: 402, message: /licence of this install is expired/ })
  const contact = clientToken({ sub: 'expired-contact' }, app.now())
  await ensureConsent(app, contact)
  t.equal((await app.inject(heartbeatUrl({ token: contact, sid: 'tab-0001', path: '/clients', event: 'nav' }))).statusCode, 204, 'heartbeats 204 while expired')
  t.equal((await app.inject(heartbeatUrl({ token: contact, sid: 'tab-0001', path: '/clients' }))).statusCode, 204)

  await server.proxy.start()
  t.equal((await activate(app, key)).body.state, 'active', 'the server back: activating the key again restores it at once')
  t.equal((await app.inject({ url: '/admin/api/online', headers: admin(app) })).statusCode, 200)
  t.match((await app.inject({ url: '/admin/api/online', headers: admin(app) })).json(), { online: [{ contactId: 'expired-contact' }] }, 'the contact that beat while expired is online')
})

t.test('the server back during grace: the next retry turns the install active again', async (t) => {
  const clock = createClock(Date.now())
  const server = await startLicenseServer(t, clock)
  const app = await licensedApp(t, server, clock)
  await activate(app, server.issue())
  await server.proxy.stop()
  clock.advance(DAY_MS)
  await app.license.tick()
  t.equal((await licenseOf(app)).state, 'grace')
  await server.proxy.start()
  await app.license.tick()
  t.equal((await licenseOf(app)).state, 'grace', 'the retry is not due yet (backoff)')
  clock.advance(3_600_000)
  await app.license.tick()
  t.match(await licenseOf(app), { state: 'active', checkedAt: clock.now() })
})

t.test('a key bound to another domain: domain_mismatch, 402', async (t) => {
  const clock = createClock(Date.now())
  const server = await startLicenseServer(t, clock)
  const app = await licensedApp(t, server, clock)
  const res = await activate(app, server.issue({ domains: ['other.example.org'] }))
  t.equal(res.statusCode, 200)
  t.match(res.body, { state: 'domain_mismatch', domain: DOMAIN, message: /another domain than presence.example.com/ })
  t.match(await staffSide(app), { online: 402, ws: 402, widget: 402, message: /domain_mismatch/ })
})

t.test('a key the server does not know, or an expired term: invalid and expired', async (t) => {
  const clock = createClock(Date.now())
  const server = await startLicenseServer(t, clock)
  const app = await licensedApp(t, server, clock)
  t.match((await activate(app, 'CAT-NOPE0-NOPE0-NOPE0-NOPE0')).body, { state: 'invalid', message: /does not know this key/ })
  const key = server.issue({ days: 2 })
  t.equal((await activate(app, key)).body.state, 'active')
  const typo = await activate(app, 'CAT-NOPE0-NOPE0-NOPE0-NOPE0')
  t.equal(typo.statusCode, 400, 'a key that does not work, entered while another is in force: 400')
  t.match(typo.body, { error: { code: 'invalid_request', message: /invalid.*the licence in force is unchanged/ } })
  t.equal((await licenseOf(app)).state, 'active', 'the licence in force stays')
  t.equal((await app.inject({ url: '/admin/api/online', headers: admin(app) })).statusCode, 200, 'and the staff side is served')
  clock.advance(2 * DAY_MS)
  await app.license.tick()
  t.match(await licenseOf(app), { state: 'expired', message: /term ended/ }, 'the lease says until when: expired at once, no grace')
  server.store.extend(key, clock.now() + 30 * DAY_MS)
  await app.license.validate()
  t.equal((await licenseOf(app)).state, 'active', 'renewed by the vendor: active at the next validation')
})

t.test('a revoked key turns invalid at the next validation', async (t) => {
  const clock = createClock(Date.now())
  const server = await startLicenseServer(t, clock)
  const app = await licensedApp(t, server, clock)
  const key = server.issue()
  await activate(app, key)
  server.store.revoke(key, clock.now())
  t.equal((await licenseOf(app)).state, 'active', 'still active until the next validation')
  clock.advance(DAY_MS)
  await app.license.tick()
  t.match(await licenseOf(app), { state: 'invalid', message: /revoked/ })
  t.match(await staffSide(app), { online: 402, ws: 402, widget: 402, message: /invalid/ })
})

t.test('a stored lease with one byte changed, or a lease signed by another key, is invalid whatever it says', async (t) => {
  const clock = createClock(Date.now())
  const server = await startLicenseServer(t, clock)
  const app = await licensedApp(t, server, clock)
  const key = server.issue({ days: 30 })
  await activate(app, key)
  const stored = await app.activity.readInstallState(LICENSE_STATE_NAME)
  const record = JSON.parse(stored?.value ?? '{}') as { lease: string }
  // One byte: the term's first digit, so the altered lease would still read as active (and longer).
  const altered = record.lease.replace(/"validUntil":(\d)/, (_whole, digit: string) => `"validUntil":${(Number(digit) + 1) % 10}`)
  t.not(altered, record.lease)
  t.equal(Buffer.compare(Buffer.from(altered), Buffer.from(record.lease)) !== 0 && altered.length === record.lease.length, true, 'the same length, one byte changed')
  await app.activity.writeInstallState(LICENSE_STATE_NAME, JSON.stringify({ ...record, lease: altered }), clock.now())
  await app.license.tick()
  t.match(await licenseOf(app), { state: 'invalid', message: /not signed by the vendor's key/ })
  t.match(await staffSide(app), { online: 402, ws: 402, widget: 402 })

  // A licence server with another private key (the same key store): its leases say active.
  const foreign = await startLicenseServer(t, { now: clock.now, privateKey: createKeyPair().privateKey, dbFile: server.dbFile })
  const impostor = await licensedApp(t, { ...server, url: foreign.url, env: (extra = {}) => ({ ...server.env(extra), CAT_LICENSE_SERVER_URL: foreign.url }) }, clock)
  const res = await activate(impostor, key)
  t.equal(res.statusCode, 200)
  t.match(res.body, { state: 'invalid', message: /not signed by the vendor's key/ }, 'a lease signed by another key: invalid')
  t.equal((await impostor.inject({ url: '/admin/api/online', headers: admin(impostor) })).statusCode, 402)
})

t.test('CAT_LICENSE_KEY is activated at start when nothing is stored; a server down does not stop the start', async (t) => {
  const clock = createClock(Date.now())
  const server = await startLicenseServer(t, clock)
  const key = server.issue()
  const app = await licensedApp(t, server, clock, { CAT_LICENSE_KEY: key })
  await app.license.settled()
  t.match(await licenseOf(app), { state: 'active', keyHint: key.slice(-4) })

  await server.proxy.stop()
  const offline = await licensedApp(t, server, clock, { CAT_LICENSE_KEY: server.issue() })
  await offline.license.settled()
  t.match(await licenseOf(offline), { state: 'unlicensed', message: /Activating CAT_LICENSE_KEY failed \(ECONNREFUSED/ })
  await server.proxy.start()
  clock.advance(3_600_000)
  await offline.license.tick()
  t.equal((await licenseOf(offline)).state, 'active', 'retried once the server is back')
})

t.test('MariaDB: an activation on one instance reaches another; a restart with the server down reads the stored lease', async (t) => {
  const clock = createClock(Date.now())
  const server = await startLicenseServer(t, clock)
  const databaseUrl = await createTestMysqlDatabase(t, 'license')
  const first = await buildTestApp(t, { now: clock.now, licensePollMs: 0, env: server.env({ DATABASE_URL: databaseUrl }) })
  const second = await buildTestApp(t, { now: clock.now, licensePollMs: 0, env: server.env({ DATABASE_URL: databaseUrl }) })
  t.equal((await activate(first, server.issue())).body.state, 'active')
  t.equal((await licenseOf(second)).state, 'unlicensed', 'the other instance has not re-read yet')
  await second.license.tick()
  t.equal((await licenseOf(second)).state, 'active', 'it has after its next tick')
  t.equal((await second.inject({ url: '/admin/api/online', headers: admin(second) })).statusCode, 200)
  await first.close()
  await second.close()

  await server.proxy.stop()
  clock.advance(3_600_000)
  const restarted = await buildTestApp(t, { now: clock.now, licensePollMs: 0, env: server.env({ DATABASE_URL: databaseUrl }) })
  await restarted.license.settled()
  t.match(await licenseOf(restarted), { state: 'active' }, 'active from the stored lease, no network')
  t.equal((await restarted.inject({ url: '/admin/api/online', headers: admin(restarted) })).statusCode, 200)
})

t.test('the licence loop re-reads the stored licence by itself every few seconds', async (t) => {
  const clock = createClock(Date.now())
  const server = await startLicenseServer(t, clock)
  const dataDir = createTestDataDir(t, 'license-poll')
  const writer = await buildTestApp(t, { now: clock.now, licensePollMs: 0, env: server.env({ CAT_DATA_DIR: dataDir }) })
  const reader = await buildTestApp(t, { now: clock.now, licensePollMs: 50, env: server.env({ CAT_DATA_DIR: dataDir }) })
  await activate(writer, server.issue())
  const deadline = Date.now() + 5000
  while (reader.license.view.state !== 'active' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(reader.license.view.state, 'active')
})

t.test('no licence key reaches a log line: activation, failures, refusals, state changes', async (t) => {
  const clock = createClock(Date.now())
  const server = await startLicenseServer(t, clock)
  const lines: string[] = []
  const key = server.issue()
  const envKey = server.issue()
  const app = await buildTestApp(t, { now: clock.now, licensePollMs: 0, logStream: { write: (line: string) => void lines.push(line) }, env: server.env({ LOG_LEVEL: 'debug', CAT_LICENSE_KEY: envKey }) })
  await app.license.settled()
  await activate(app, 'CAT-NOPE0-NOPE0-NOPE0-NOPE0')
  await activate(app, key)
  await server.proxy.stop()
  await activate(app, key)
  clock.advance(DAY_MS)
  await app.license.tick()
  await server.proxy.start()
  await activate(app, key)
  t.ok(lines.some((line) => line.includes('licence: grace')), 'the state changes are logged')
  t.ok(lines.length > 3)
  for (const secret of [key, envKey, 'CAT-NOPE0-NOPE0-NOPE0-NOPE0']) t.notOk(lines.some((line) => line.includes(secret)), 'no key in the log')
})

t.test('app.close() with licensing on leaves no open handle: the loop stops, the connections to the licence server close', async (t) => {
  const clock = createClock(Date.now())
  const server = await startLicenseServer(t, clock)
  const dataDir = createTestDataDir(t, 'license-close')
  const key = server.issue()
  const resources = (): Record<string, number> => {
    const counts: Record<string, number> = {}
    for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1
    return counts
  }
  const before = resources()
  const app = await buildApp(testConfig(server.env({ CAT_DATA_DIR: dataDir, CAT_LICENSE_KEY: key })), { now: clock.now, licensePollMs: 20, sweepIntervalMs: 0, activityLoops: false })
  await app.ready()
  await app.license.settled()
  t.equal(app.license.view.state, 'active', 'activated over a keep-alive connection')
  await app.close()
  // Handles of the subtests before may still be closing: none may be left above the count before.
  const extra = (): string[] => Object.entries(resources()).filter(([kind, n]) => n > (before[kind] ?? 0)).map(([kind, n]) => `${kind}: ${n} > ${before[kind] ?? 0}`)
  for (let i = 0; i < 200 && extra().length > 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 10))
  t.same(extra(), [], 'no handle beyond those before the app existed')
})
