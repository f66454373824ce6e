import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { adminToken, buildTestApp, cleanRedisSite, clientToken, heartbeatUrl, testConfig, uniqueSite } from '../helpers/app.js'
import { createTestDataDir } from '../helpers/database.js'
import { connectDashboard } from '../helpers/ws.js'
import { buildApp } from '../../src/app.js'

const SID = 'tabconsent1'

async function decide(app: FastifyInstance, token: string, decision: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await app.inject({ method: 'POST', url: '/clients/cat_consent', headers: { 'content-type': 'text/plain;charset=UTF-8', 'user-agent': 'Mozilla/5.0 test', ...headers }, payload: JSON.stringify({ token, decision, version: 'v1', locale: 'de' }), remoteAddress: '203.0.113.77' })
  return res.statusCode
}

async function beat(app: FastifyInstance, token: string, event = 'nav', headers: Record<string, string> = {}): Promise<{ status: number; code?: string }> {
  const res = await app.inject({ url: heartbeatUrl({ token, sid: SID, event, path: '/p' }), headers })
  return { status: res.statusCode, code: res.statusCode === 204 ? undefined : (res.json() as { error: { code: string } }).error.code }
}

t.test('no decision: GET says 404, a heartbeat gets 403 consent_required and nothing is stored', async (t) => {
  const app = await buildTestApp(t)
  const token = clientToken({ sub: 'undecided' })
  const got = await app.inject(`/clients/cat_consent?token=${token}`)
  t.equal(got.statusCode, 404)
  t.equal(got.json().error.code, 'not_found')
  t.same(await beat(app, token), { status: 403, code: 'consent_required' })
  t.same((await app.presence.snapshot()).online, [], 'no presence')
  t.same(await app.eventLog.tail(10), [], 'no event')
})

t.test('granted: recorded in the ledger with truncated address and user agent; heartbeats pass', async (t) => {
  const app = await buildTestApp(t)
  const token = clientToken({ sub: 'yes', clientId: 'k9' })
  t.equal(await decide(app, token, 'granted'), 204)
  const got = await app.inject(`/clients/cat_consent?token=${token}`)
  t.match(got.json(), { decision: 'granted', version: 'v1' })
  t.type(got.json().at, 'number')
  t.same(await beat(app, token), { status: 204, code: undefined })
  const [entry] = (await app.activity.exportContact('yes')).consents
  t.match(entry, { contactId: 'yes', clientId: 'k9', decision: 'granted', version: 'v1', locale: 'de', ip: '203.0.113.0', userAgent: 'Mozilla/5.0 test' })
})

t.test('denied, and withdrawn while online: 403 from then on; the presence ends with reason withdrawn', async (t) => {
  const app = await buildTestApp(t)
  const no = clientToken({ sub: 'no' })
  t.equal(await decide(app, no, 'denied'), 204)
  t.same(await beat(app, no), { status: 403, code: 'consent_required' })

  const later = clientToken({ sub: 'later' })
  await decide(app, later, 'granted')
  const dash = await connectDashboard(app, adminToken())
  await dash.waitFor((m) => m.type === 'snapshot')
  t.equal((await beat(app, later)).status, 204)
  await dash.waitFor((m) => m.joined?.some((p) => p.contactId === 'later') === true)
  t.equal(await decide(app, later, 'withdrawn'), 204)
  const left = await dash.waitFor((m) => m.left?.some((l) => l.contactId === 'later') === true)
  t.match(left.left, [{ contactId: 'later', reason: 'withdrawn' }])
  t.same(await beat(app, later, 'beat'), { status: 403, code: 'consent_required' })
  t.match((await app.inject(`/clients/cat_consent?token=${later}`)).json(), { decision: 'withdrawn' })
  await dash.close()
})

t.test('Global Privacy Control is a refusal', async (t) => {
  const app = await buildTestApp(t)
  const token = clientToken({ sub: 'gpc' })
  await decide(app, token, 'granted')
  t.same(await beat(app, token, 'nav', { 'sec-gpc': '1' }), { status: 403, code: 'consent_required' }, 'a heartbeat with Sec-GPC: 1')
  const other = clientToken({ sub: 'gpc2' })
  t.equal(await decide(app, other, 'granted', { 'sec-gpc': '1' }), 204)
  t.match((await app.inject(`/clients/cat_consent?token=${other}`)).json(), { decision: 'denied' }, 'granted under GPC is recorded as denied')
})

t.test('bad consent requests: 400 or 401, never a 500', async (t) => {
  const app = await buildTestApp(t)
  const token = clientToken()
  const post = (payload: string, type = 'text/plain') => app.inject({ method: 'POST', url: '/clients/cat_consent', headers: { 'content-type': type }, payload })
  for (const [label, payload] of [
    ['not JSON', '{"token":'],
    ['unknown decision', JSON.stringify({ token, decision: 'maybe', version: 'v1', locale: 'en' })],
    ['no version', JSON.stringify({ token, decision: 'granted', locale: 'en' })],
    ['bad locale', JSON.stringify({ token, decision: 'granted', version: 'v1', locale: '<script>' })],
    ['an array', '[]'],
    // JSON carries its types: not turned into the strings they stand for.
    ['a version that is a number', JSON.stringify({ token, decision: 'granted', version: 2, locale: 'en' })],
    ['a token in an array', JSON.stringify({ token: [token], decision: 'granted', version: 'v1', locale: 'en' })],
  ] as const) {
    const res = await post(payload)
    t.equal(res.statusCode, 400, label)
    t.equal(res.json().error.code, 'invalid_request', label)
  }
  const admin = await post(JSON.stringify({ token: adminToken(), decision: 'granted', version: 'v1', locale: 'en' }), 'application/json')
  t.equal(admin.statusCode, 401, 'an admin token cannot consent for a contact')
  t.equal((await app.inject('/clients/cat_consent')).statusCode, 401)
})

t.test('a withdrawal on one instance takes effect on the others at once', async (t) => {
  const site = uniqueSite('consent')
  cleanRedisSite(t, site)
  const dataDir = createTestDataDir(t, 'consent') // one SQLite file shared, as one database is
  const [a, b] = (await Promise.all(['a', 'b'].map((n) => buildTestApp(t, { site, instanceId: `${site}-${n}`, env: { CAT_DATA_DIR: dataDir } })))) as [FastifyInstance, FastifyInstance]
  const token = clientToken({ sub: 'roamer' })
  await decide(a, token, 'granted')
  t.equal((await beat(b, token)).status, 204, 'B accepts (and remembers) the grant')
  t.equal((await beat(b, token, 'beat')).status, 204)
  await decide(a, token, 'withdrawn')
  const deadline = Date.now() + 1_000
  let last = await beat(b, token, 'beat')
  while (last.status === 204 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    last = await beat(b, token, 'beat')
  }
  t.same(last, { status: 403, code: 'consent_required' }, 'B refuses within a second')
  t.same((await b.presence.snapshot()).online, [], 'and the contact is gone')
})

t.test('the snippet: JavaScript with an ETag, cacheable, by ?lang, then Accept-Language, then English', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject('/clients/cat_consent_js')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/javascript/)
  t.match(res.headers['cache-control'], /max-age=\d+/)
  t.equal(res.headers['content-language'], 'en')
  const etag = res.headers.etag as string
  t.match(etag, /^"[^"]+"$/)
  t.match(res.body, /^\(function\(\)\{var __CAT_L=/)
  t.equal((await app.inject({ url: '/clients/cat_consent_js', headers: { 'if-none-match': etag } })).statusCode, 304)
  t.equal((await app.inject('/clients/cat_consent_js?lang=de')).headers['content-language'], 'de')
  t.equal((await app.inject({ url: '/clients/cat_consent_js', headers: { 'accept-language': 'xx-YY, fr-CH;q=0.9, de;q=0.5' } })).headers['content-language'], 'fr')
  t.equal((await app.inject({ url: '/clients/cat_consent_js?lang=zz', headers: { 'accept-language': 'pl' } })).headers['content-language'], 'pl', 'an unknown ?lang falls through to Accept-Language')
  t.equal((await app.inject({ url: '/clients/cat_consent_js', headers: { 'accept-language': 'ja' } })).headers['content-language'], 'en')
  const gz = await app.inject({ url: '/clients/cat_consent_js', headers: { 'accept-encoding': 'gzip, br' } })
  t.equal(gz.headers['content-encoding'], 'gzip')
  t.equal(gunzipSync(gz.rawPayload).toString(), res.body)
  t.not(gz.headers.etag, etag, 'the gzip variant has its own ETag')
})

t.test('CAT_LANG_DIR overrides strings (a new version), falls back to English, and a broken file stops the start', async (t) => {
  const dir = createTestDataDir(t, 'lang')
  const base = await buildTestApp(t)
  const en = JSON.parse(base.snippet.get('en').body.toString().match(/var __CAT_L=(\{.*?\});/)?.[1] ?? '{}') as Record<string, string>
  const key = Object.keys(en).find((k) => k !== 'version' && k !== 'locale') as string
  writeFileSync(join(dir, 'de.json'), JSON.stringify({ [key]: 'Unser eigener Text' }))
  writeFileSync(join(dir, 'eo.json'), JSON.stringify({ [key]: 'Nia propra teksto' }))
  const app = await buildTestApp(t, { env: { CAT_LANG_DIR: dir } })
  t.not(app.snippet.get('de').version, base.snippet.get('de').version, 'changed text, new version')
  t.match(app.snippet.get('de').body.toString(), /Unser eigener Text/)
  t.match(app.snippet.get('eo').body.toString(), /Nia propra teksto/, 'a new language from the operator')
  const eo = JSON.parse(app.snippet.get('eo').body.toString().match(/var __CAT_L=(\{.*?\});/)?.[1] ?? '{}') as Record<string, string>
  const other = Object.keys(en).find((k) => k !== key && k !== 'version' && k !== 'locale') as string
  t.equal(eo[other], en[other], 'a missing key falls back to English')

  for (const [label, text] of [['broken JSON', '{"title": '], ['unknown key', JSON.stringify({ titel: 'x' })], ['not a string', JSON.stringify({ [key]: 5 })]] as const) {
    const broken = join(dir, label.replace(/ /g, '-'))
    mkdirSync(broken)
    writeFileSync(join(broken, 'fr.json'), text)
    await t.rejects(buildApp(testConfig({ CAT_LANG_DIR: broken, CAT_DATA_DIR: dir }), { sweepIntervalMs: 0, activityLoops: false }), { name: 'ConfigError', message: /fr\.json/ }, label)
  }
})

t.test('the demo portal is served outside production, and only when bound to a loopback address', async (t) => {
  for (const host of ['127.0.0.1', '::1', 'localhost']) {
    const app = await buildTestApp(t, { env: { HOST: host } })
    const res = await app.inject('/demo')
    t.equal(res.statusCode, 200, `HOST=${host}: served`)
    t.match(res.body, /<script src="\/clients\/cat_consent_js" data-token="[^"]+" defer><\/script>/)
  }
  for (const [label, env] of [
    ['HOST=0.0.0.0', { HOST: '0.0.0.0' }],
    ['HOST=::', { HOST: '::' }],
    ['a public address', { HOST: '203.0.113.7' }],
    ['production on loopback', { NODE_ENV: 'production', HOST: '127.0.0.1' }],
  ] as const) {
    const app = await buildTestApp(t, { env })
    const res = await app.inject('/demo')
    t.equal(res.statusCode, 404, `${label}: 404`)
    t.match(res.json(), { error: { code: 'not_found' } }, `${label}: not_found`)
    t.notMatch(res.body, /eyJ/, `${label}: no token`)
  }
})
