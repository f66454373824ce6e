import t from 'tap'
import { createTestDataDir } from '../helpers/database.js'
import { buildApp } from '../../src/app.js'
import { redactUrl, truncateIp } from '../../src/log/logger.js'
import { SECRET, adminToken, clientToken, heartbeatUrl, testConfig, ensureConsent } from '../helpers/app.js'

t.test('truncateIp keeps the network, drops the host', async (t) => {
  t.equal(truncateIp('203.0.113.77'), '203.0.113.0')
  t.equal(truncateIp('10.1.2.3'), '10.1.2.0')
  t.equal(truncateIp('::ffff:198.51.100.9'), '198.51.100.0')
  t.equal(truncateIp('::FFFF:198.51.100.9'), '198.51.100.0')
  t.equal(truncateIp('2001:db8:abcd:12::1'), '2001:db8:abcd::')
  t.equal(truncateIp('2001:db8:abcd:0012:0000:0000:0000:0001'), '2001:db8:abcd::')
  t.equal(truncateIp('2001:db8::7'), '2001:db8:0::')
  const loopback = truncateIp('::1')
  t.notOk(loopback.includes('::1'), `::1 is truncated (${loopback})`)
  t.notMatch(loopback, /1/, 'no host bits left')
  t.equal(truncateIp(''), '')
  t.equal(truncateIp(undefined), '')
  t.equal(truncateIp('not-an-ip'), '', 'anything else is dropped, not logged')
})

t.test('redactUrl removes token values from query strings', async (t) => {
  t.equal(redactUrl('/cat_heartbeat?token=abc.def.ghi&sid=abcdefgh1234'), '/cat_heartbeat?token=[redacted]&sid=abcdefgh1234')
  t.equal(redactUrl('/admin/ws?sid=1&token=abc.def.ghi'), '/admin/ws?sid=1&token=[redacted]')
  t.equal(redactUrl('/x?access_token=abc#frag'), '/x?access_token=[redacted]#frag')
  t.equal(redactUrl('/x?TOKEN=abc&token=def'), '/x?TOKEN=[redacted]&token=[redacted]')
  t.equal(redactUrl('/x?mytoken=keep&sid=1'), '/x?mytoken=keep&sid=1', 'other parameters are kept')
  t.equal(redactUrl('/healthz'), '/healthz')
})

t.test('no token or secret reaches a log line', async (t) => {
  const lines: string[] = []
  const logStream = { write: (line: string) => void lines.push(line) }
  const config = testConfig({ LOG_LEVEL: 'debug', CAT_DATA_DIR: createTestDataDir(t, 'logger') })
  const app = await buildApp(config, { logStream, sweepIntervalMs: 0 })
  t.teardown(() => app.close())
  // Request logging is off in production; log every request here as Fastify would, so the
  // req serializer and the redaction paths are exercised with real requests.
  app.addHook('onResponse', async (request, reply) => {
    request.log.info({ req: request, res: reply }, 'request completed')
  })
  await app.ready()

  const client = clientToken()
  const admin = adminToken()
  const invalid = `${adminToken({ sub: 'forged' }).slice(0, -6)}AAAAAA`

  await ensureConsent(app, client)
  const heartbeat = await app.inject({ url: heartbeatUrl({ token: client, sid: 'abcdefgh1234', event: 'nav', path: '/x' }), remoteAddress: '203.0.113.77' })
  t.not(heartbeat.statusCode, 401, 'the client token was accepted')
  const online = await app.inject({ url: '/admin/api/online', headers: { authorization: `Bearer ${admin}`, cookie: 'session=COOKIEVALUE' } })
  t.equal(online.statusCode, 200)
  const refused = await app.inject({ url: '/admin/api/online', headers: { authorization: `Bearer ${invalid}` } })
  t.equal(refused.statusCode, 401)
  const badHeartbeat = await app.inject({ url: heartbeatUrl({ token: invalid, sid: 'abcdefgh1234' }) })
  t.equal(badHeartbeat.statusCode, 401)
  const unknown = await app.inject({ url: '/no/such/page?token=SECRETVALUE&x=1' })
  t.equal(unknown.statusCode, 404)
  t.notOk(unknown.body.includes('SECRETVALUE'), 'not echoed in the 404 body either')

  app.log.info({ token: 'LOGGED-TOKEN-VALUE', config: { ...app.config, databaseUrl: 'mysql://cat:DbPassw0rdXYZ@db.example:3306/cat' } }, 'msg')
  app.log.debug({ secret: SECRET, secrets: app.config.secrets, nested: { token: client, secret: SECRET } }, 'debug msg')

  const all = lines.join('')
  t.ok(lines.length >= 7, `lines were collected (${lines.length})`)
  t.match(all, /"msg":"msg"/, 'the info line was written')
  t.match(all, /"msg":"debug msg"/, 'debug is on')
  t.match(all, /\/cat_heartbeat\?token=\[redacted\]/, 'the heartbeat URL is logged, redacted')
  t.match(all, /\/no\/such\/page\?token=\[redacted\]&x=1/, 'the unknown URL is logged, redacted')
  t.match(all, /203\.0\.113\.0/, 'the truncated address is logged')
  const requestLines = lines.filter((line) => line.includes('"msg":"request completed"'))
  t.ok(requestLines.length >= 5, 'every request was logged')
  t.ok(requestLines.every((line) => /"reqId":"req-[0-9a-z]+"/.test(line)), 'each request line names its request (the lazy child logger has the bindings)')
  t.equal(new Set(requestLines.map((line) => /"reqId":"([^"]+)"/.exec(line)?.[1])).size, requestLines.length, 'one id per request')
  t.notOk(all.includes('203.0.113.77'), 'the full address is not')
  t.match(all, /"site":"default"/, 'the config was logged')
  for (const [label, value] of [
    ['client token', client],
    ['admin token', admin],
    ['invalid token', invalid],
    ['token payload', client.split('.')[1] ?? ''],
    ['admin signature', admin.split('.')[2] ?? ''],
    ['secret', SECRET],
    ['token in the query of an unknown URL', 'SECRETVALUE'],
    ['logged token', 'LOGGED-TOKEN-VALUE'],
    ['database password in the logged config', 'DbPassw0rdXYZ'],
    ['cookie', 'COOKIEVALUE'],
  ] as const) {
    t.ok(value.length > 8, `${label} is a real value`)
    t.notOk(all.includes(value), `no line contains the ${label}`)
  }
})
