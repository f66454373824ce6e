/**
 * The edge of the HTTP server, over real sockets where Node's parser answers before Fastify
 * does: every status >= 400 is the catalogue's JSON body, every 503 has Retry-After, and a
 * client that sends slowly loses its socket.
 */
import t, { type Test } from 'tap'
import type WebSocket from 'ws'
import type { Socket } from 'node:net'
import { Writable } from 'node:stream'
import { ERRORS } from '../../src/errors/errors.js'
import { MAX_HEADER_BYTES } from '../../src/app.js'
import { adminToken, buildTestApp, clientToken } from '../helpers/app.js'
import { connectDashboard } from '../helpers/ws.js'
import { listenPort, parseResponse, rawConnect, rawRequest, type RawResponse } from '../helpers/raw-http.js'

/** The response is the catalogue's body for `code`, with the catalogue's status. */
function isCatalogueError(t: Test, response: RawResponse, code: keyof typeof ERRORS, label: string): void {
  t.equal(response.status, ERRORS[code].status, `${label}: status ${ERRORS[code].status}`)
  t.match(response.headers['content-type'], /^application\/json/, `${label}: JSON`)
  let body: unknown
  try {
    body = JSON.parse(response.body)
  } catch {
    t.fail(`${label}: body is not JSON: ${JSON.stringify(response.body.slice(0, 200))}`)
    return
  }
  t.match(body, { error: { code, message: String } }, `${label}: {"error":{"code":"${code}","message"}}`)
  const error = (body as { error?: unknown }).error
  t.same(error !== null && typeof error === 'object' ? Object.keys(error).sort() : error, ['code', 'message'], `${label}: nothing else in the error`)
}

t.test('what Node\'s parser and Fastify\'s router refuse is answered in the catalogue\'s format', async (t) => {
  const app = await buildTestApp(t)
  const port = await listenPort(app)
  const token = clientToken()
  const cases: [string, string, keyof typeof ERRORS, RegExp?][] = [
    ['headers over MAX_HEADER_BYTES', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(MAX_HEADER_BYTES + 10)}\r\n\r\n`, 'headers_too_large'],
    ['a request line over MAX_HEADER_BYTES', `GET /cat_heartbeat?token=${token}&title=${'t'.repeat(MAX_HEADER_BYTES + 10)} HTTP/1.1\r\nHost: x\r\n\r\n`, 'headers_too_large'],
    ['not HTTP at all', 'HELLO THERE\r\n\r\n', 'invalid_request'],
    ['a header line without a colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n', 'invalid_request'],
    ['Content-Length and Transfer-Encoding together', 'POST /cat_heartbeat HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'invalid_request'],
    ['a bad chunk size', 'POST /clients/cat_consent HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'invalid_request'],
    ['HTTP/1.1 without Host', 'GET /healthz HTTP/1.1\r\n\r\n', 'invalid_request', /Host/],
    ['a WebSocket upgrade without Host', 'GET /admin/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', 'invalid_request', /Host/],
    ['a WebSocket upgrade to another path', 'GET /cat_heartbeat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', 'not_found'],
    ['a broken percent-encoding in the path', 'GET /admin/api/contacts/%E0%A4%A/export HTTP/1.1\r\nHost: x\r\n\r\n', 'invalid_request', /URL/],
    ['a path parameter longer than any id', `GET /admin/api/contacts/${'x'.repeat(1200)}/export HTTP/1.1\r\nHost: x\r\n\r\n`, 'uri_too_long'],
  ]
  for (const [label, request, code, message] of cases) {
    const response = await rawRequest(port, request)
    isCatalogueError(t, response, code, label)
    if (message !== undefined) t.match(JSON.parse(response.body), { error: { message } }, `${label}: the message says why`)
  }
})

t.test('what is allowed at the edge still works', async (t) => {
  const app = await buildTestApp(t)
  const port = await listenPort(app)
  t.equal((await rawRequest(port, 'GET /healthz HTTP/1.0\r\n\r\n')).status, 200, 'HTTP/1.0 needs no Host')
  t.equal((await rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\n\r\n')).status, 200, 'an unknown Expect is ignored, not a bare 417')
  const continued = await rawConnect(port)
  continued.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n')
  const [interim] = await continued.responses(1)
  t.equal(interim?.status, 100, 'Expect: 100-continue gets 100 Continue first')
  continued.socket.destroy()
  // Keep-alive: two requests on one connection.
  const connection = await rawConnect(port)
  connection.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  t.same((await connection.responses(2)).map((r) => r.status), [200, 200])
  connection.socket.destroy()
})

t.test('router errors through app.inject: a bad URL and an over-long parameter', async (t) => {
  const app = await buildTestApp(t)
  const headers = { authorization: `Bearer ${adminToken()}` }
  for (const [label, url, code] of [
    ['broken percent-encoding', '/admin/api/contacts/%E0%A4%A/export', 'invalid_request'],
    ['broken percent-encoding in a static path', '/cat_heartbeat%zz', 'invalid_request'],
    ['a parameter over 1 152 characters', `/admin/api/contacts/${'y'.repeat(1153)}`, 'uri_too_long'],
    ['a parameter of 1 152 characters, longer than an id', `/admin/api/contacts/${'y'.repeat(1152)}`, 'invalid_request'],
  ] as const) {
    const res = await app.inject({ method: 'DELETE', url, headers })
    t.equal(res.statusCode, ERRORS[code].status, `${label}: ${ERRORS[code].status}`)
    t.match(res.json(), { error: { code, message: String } }, `${label}: ${code}`)
  }
})

/** Writes `chunks` one at a time, `everyMs` apart, until they run out or the socket closes; returns how many were written. */
async function dribble(socket: Socket, chunks: string[], everyMs: number): Promise<number> {
  let written = 0
  for (const chunk of chunks) {
    if (socket.destroyed || socket.closed || !socket.writable) break
    socket.write(chunk)
    written += 1
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  return written
}

t.test('slow clients lose their socket: slow headers, a slow body, a connection that sends nothing', async (t) => {
  // Short timeouts so the test runs fast; production's are documented in the README.
  const logs: string[] = []
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString())
      done()
    },
  })
  const app = await buildTestApp(t, { httpTimeouts: { headersMs: 300, requestMs: 600, checkIntervalMs: 50 }, logStream, env: { LOG_LEVEL: 'debug' } })
  const port = await listenPort(app)
  const token = clientToken()
  // One byte every 100 ms for 20 s: far longer than either timeout.
  const bytes = Array.from({ length: 200 }, () => 'a')

  const slowHeaders = await rawConnect(port)
  slowHeaders.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ')
  const headersSent = await dribble(slowHeaders.socket, bytes, 100)
  t.ok(headersSent < bytes.length, `cut after ${headersSent} of ${bytes.length} header bytes`)
  isCatalogueError(t, parseResponse(await slowHeaders.closed), 'request_timeout', 'slow headers')

  const slowBody = await rawConnect(port)
  slowBody.socket.write(`POST /cat_heartbeat?token=${token}&sid=slowtab01 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 8192\r\n\r\n`)
  const bodySent = await dribble(slowBody.socket, bytes, 100)
  t.ok(bodySent < bytes.length, `cut after ${bodySent} of ${bytes.length} body bytes`)
  isCatalogueError(t, parseResponse(await slowBody.closed), 'request_timeout', 'slow body')

  const silent = await rawConnect(port)
  isCatalogueError(t, parseResponse(await silent.closed), 'request_timeout', 'a connection that sends nothing')

  t.notOk(logs.some((line) => line.includes(token)), 'no token in the logs')
  t.notOk(logs.some((line) => JSON.parse(line).level > 30), `nothing logged above info: ${logs.filter((line) => JSON.parse(line).level > 30).join('')}`)
})

t.test('a request that arrives while the app closes gets 503 with Retry-After, in the catalogue\'s format', async (t) => {
  const app = await buildTestApp(t)
  const port = await listenPort(app)
  const connection = await rawConnect(port)
  connection.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal((await connection.responses(1))[0]?.status, 200, 'served before closing')

  // A dashboard that stops reading never answers the close frame: closing waits on it (up to
  // the WebSocket close timeout), and requests on open connections arrive meanwhile.
  const dashboard = await connectDashboard(app, adminToken())
  await dashboard.waitFor((m) => m.type === 'snapshot')
  const dashboardSocket = (dashboard.socket as WebSocket & { _socket: Socket })._socket
  dashboardSocket.pause()
  const closing = app.close()
  await new Promise((resolve) => setImmediate(resolve))

  connection.socket.write('GET /cat_heartbeat?token=x&sid=closing01 HTTP/1.1\r\nHost: x\r\n\r\n')
  const [, during] = await connection.responses(2)
  if (during === undefined) throw new Error('no answer while closing')
  isCatalogueError(t, during, 'unavailable', 'while closing')
  t.equal(during.headers['retry-after'], '1', 'Retry-After')
  t.equal(during.headers.connection, 'close', 'the connection is not kept')

  dashboardSocket.destroy()
  await closing
})
