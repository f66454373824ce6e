/**
 * Demo mode (CAT_DEMO_MODE=1) as staff and visitors see it: the staff side only reads (every
 * change, erasure included, answers 403 demo_mode and changes nothing), the portal side works
 * (consent, heartbeats), the dashboards' feed works, and /demo is served wherever the server
 * runs, with a link to the read-only dashboard.
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { staffOnly } from '../../src/auth/admin-auth.js'
import { AUDIENCES, createTokenVerifier } from '../../src/auth/tokens.js'
import { adminToken, buildTestApp, clientToken, heartbeatUrl, testConfig, SECRET } from '../helpers/app.js'
import { createTestDataDir } from '../helpers/database.js'
import { connectDashboard } from '../helpers/ws.js'

const DEMO = { CAT_DEMO_MODE: '1' }

async function drain(app: FastifyInstance): Promise<void> {
  while ((await app.activityWriter.writeOnce(0)) > 0);
}

/**
 * The app with a staff route of each method beside the real ones, as a route another part
 * adds later (settings, licence) would be: the guard must cover it without the route doing
 * anything. `calls` counts the handlers that ran.
 */
async function appWithChangingRoutes(t: Test, env: Record<string, string>): Promise<{ app: FastifyInstance; calls: string[] }> {
  const app = await buildApp(testConfig({ CAT_DATA_DIR: createTestDataDir(t, 'demo-mode'), ...env }), { sweepIntervalMs: 0, activityLoops: false })
  t.teardown(() => app.close())
  const calls: string[] = []
  await app.register(async (staff) => {
    await staffOnly(staff)
    for (const method of ['GET', 'PUT', 'POST', 'PATCH', 'DELETE'] as const) {
      staff.route({ method, url: '/admin/api/test-change', schema: { hide: true }, handler: async () => {
        calls.push(method)
        return { changed: method }
      } })
    }
  })
  await app.ready()
  return { app, calls }
}

t.test('demo mode: every change on the staff side answers 403 demo_mode and runs nothing; reads work; a bad token is still 401', async (t) => {
  const { app, calls } = await appWithChangingRoutes(t, DEMO)
  for (const role of ['admin', 'staff'] as const) {
    const authorization = `Bearer ${adminToken({ role })}`
    for (const method of ['PUT', 'POST', 'PATCH', 'DELETE'] as const) {
      const res = await app.inject({ method, url: '/admin/api/test-change', headers: { authorization, 'content-type': 'application/json' }, payload: '{"retentionDays":1}' })
      t.equal(res.statusCode, 403, `${role} ${method}: 403`)
      t.match(res.json(), { error: { code: 'demo_mode', message: /demo mode.*read-only/ } }, `${role} ${method}: demo_mode`)
    }
    const read = await app.inject({ url: '/admin/api/test-change', headers: { authorization } })
    t.equal(read.statusCode, 200, `${role} GET: a read works`)
  }
  t.same(calls, ['GET', 'GET'], 'no changing handler ran')

  for (const [label, headers] of [['no token', {}], ['a bad token', { authorization: 'Bearer not.a.token' }], ['a client token', { authorization: `Bearer ${clientToken()}` }]] as const) {
    const res = await app.inject({ method: 'PUT', url: '/admin/api/test-change', headers })
    t.equal(res.statusCode, 401, `${label}: 401 first`)
    t.match(res.json(), { error: { code: 'invalid_token' } })
  }
})

t.test('outside demo mode the same changes reach their handlers', async (t) => {
  const { app, calls } = await appWithChangingRoutes(t, {})
  for (const method of ['PUT', 'POST', 'PATCH', 'DELETE'] as const) {
    const res = await app.inject({ method, url: '/admin/api/test-change', headers: { authorization: `Bearer ${adminToken()}` } })
    t.equal(res.statusCode, 200, method)
  }
  t.same(calls, ['PUT', 'POST', 'PATCH', 'DELETE'])
})

t.test('demo mode: consent and heartbeats work; an erasure answers 403 demo_mode and erases nothing; the feed works', async (t) => {
  const app = await buildTestApp(t, { env: DEMO })
  const token = clientToken({ sub: 'demo-keep', clientId: 'client-demo' })
  const consent = await app.inject({ method: 'POST', url: '/clients/cat_consent', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ token, decision: 'granted', version: 'v1', locale: 'en' }) })
  t.equal(consent.statusCode, 204, 'consent: 204')
  const nav = await app.inject(heartbeatUrl({ token, sid: 'demotab01', event: 'nav', path: '/clients/tickets', title: 'Tickets' }))
  t.equal(nav.statusCode, 204, 'heartbeat: 204')
  t.equal(nav.headers['cat-interval'], '30')
  const beacon = await app.inject({ method: 'POST', url: '/cat_heartbeat', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ token, sid: 'demotab02', event: 'nav', path: '/clients/invoices' }) })
  t.equal(beacon.statusCode, 204, 'a sendBeacon heartbeat: 204')
  await drain(app)

  const dash = await connectDashboard(app, adminToken({ role: 'staff' }))
  t.teardown(() => dash.close())
  const snapshot = await dash.waitFor((m) => m.type === 'snapshot')
  t.match(snapshot.online, [{ contactId: 'demo-keep', tabs: 2 }], 'a dashboard sees the contact')

  const admin = { authorization: `Bearer ${adminToken()}` }
  const erase = await app.inject({ method: 'DELETE', url: '/admin/api/contacts/demo-keep', headers: admin })
  t.equal(erase.statusCode, 403, 'erasure: 403')
  t.match(erase.json(), { error: { code: 'demo_mode' } }, 'erasure: demo_mode')
  await drain(app)

  const exported = await app.inject({ url: '/admin/api/contacts/demo-keep/export', headers: admin })
  t.equal(exported.statusCode, 200)
  t.match(exported.json(), { presence: { contactId: 'demo-keep' }, sessions: [{ contactId: 'demo-keep' }], consents: [{ decision: 'granted' }] }, 'presence, sessions and consent are all still there')
  const online = await app.inject({ url: '/admin/api/online', headers: admin })
  t.match(online.json(), { online: [{ contactId: 'demo-keep' }] }, 'still online')
  const beat = await app.inject(heartbeatUrl({ token, sid: 'demotab01' }))
  t.equal(beat.statusCode, 204, 'and still beating')

  const save = await app.inject({ method: 'PUT', url: '/admin/api/settings', headers: admin, payload: { presenceTimeoutS: 90 } })
  t.equal(save.statusCode, 403, 'saving settings: 403')
  t.match(save.json(), { error: { code: 'demo_mode' } }, 'saving settings: demo_mode')
  const settings = await app.inject({ url: '/admin/api/settings', headers: admin })
  t.equal(settings.statusCode, 200, 'the settings are read')
  t.not(settings.json().presenceTimeoutS, 90, 'and unchanged')
  const activate = await app.inject({ method: 'POST', url: '/admin/api/license', headers: admin, payload: { key: 'CAT-demo-key-0001' } })
  t.equal(activate.statusCode, 403, 'activating a licence: 403')
  t.match(activate.json(), { error: { code: 'demo_mode' } }, 'activating a licence: demo_mode')
  t.notOk(dash.messages.some((m) => m.left !== undefined && m.left.length > 0), 'no dashboard saw a leave')
})

t.test('the OpenAPI document lists 403 demo_mode on the staff side\'s changes only', async (t) => {
  const app = await buildTestApp(t)
  type ErrorSchema = { properties?: { error?: { properties?: { code?: { enum?: string[] } } } } }
  const doc = (await app.inject('/docs/openapi.json')).json() as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: ErrorSchema }> }> }>> }
  const codes = (path: string, method: string, status: string): string[] => doc.paths[path]?.[method]?.responses[status]?.content?.['application/json']?.schema?.properties?.error?.properties?.code?.enum ?? []
  t.ok(codes('/admin/api/online', 'get', '401').includes('invalid_token'), 'the document is read where it has the codes')
  t.same(codes('/admin/api/contacts/{contactId}', 'delete', '403').sort(), ['demo_mode', 'forbidden'], 'DELETE contact: forbidden or demo_mode')
  t.notOk(codes('/admin/api/online', 'get', '403').includes('demo_mode'), 'a read does not')
  t.notOk(codes('/cat_heartbeat', 'get', '403').includes('demo_mode'), 'the portal side does not')
})

t.test('demo mode: /demo is served in production on a public address, with a link to the read-only dashboard', async (t) => {
  const verifier = createTokenVerifier({ secrets: [SECRET], now: Date.now })
  for (const env of [{ ...DEMO, NODE_ENV: 'production', HOST: '0.0.0.0' }, { ...DEMO, HOST: '127.0.0.1' }]) {
    const app = await buildTestApp(t, { env })
    const res = await app.inject('/demo')
    t.equal(res.statusCode, 200, `${env.HOST}: served`)
    t.match(res.body, /<script src="\/clients\/cat_consent_js" data-token="eyJ[^"]+" defer><\/script>/, 'a client token for the visitor')
    const link = /<a href="\/admin#token=(eyJ[^"]+)"/.exec(res.body)?.[1]
    if (link === undefined) throw new Error(`no dashboard link in ${res.body}`)
    const claims = verifier.verify(link, AUDIENCES.admin)
    t.equal(claims.role, 'staff', 'the dashboard link carries a staff token')
    t.ok(claims.exp !== undefined && claims.exp - Date.now() / 1000 <= 3600 && claims.exp - Date.now() / 1000 > 3500, 'valid for an hour')
    const authorization = `Bearer ${link}`
    t.equal((await app.inject({ url: '/admin/api/online', headers: { authorization } })).statusCode, 200, 'it reads')
    const erase = await app.inject({ method: 'DELETE', url: '/admin/api/contacts/anyone', headers: { authorization } })
    t.equal(erase.statusCode, 403, 'it changes nothing')
    t.match(erase.json(), { error: { code: 'demo_mode' } })
  }
  const outside = await buildTestApp(t, { env: { HOST: '127.0.0.1' } })
  const page = await outside.inject('/demo')
  t.equal(page.statusCode, 200)
  t.notMatch(page.body, /\/admin#token=/, 'outside demo mode the page hands out no admin token')
})
