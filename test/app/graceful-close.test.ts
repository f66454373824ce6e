/**
 * Closing lets requests in flight finish: a load balancer in front resends a cut GET to another
 * instance (served twice) and cannot resend a cut POST at all. Their connections close after
 * them, idle ones at once, and one still busy after drainMs is cut so the close completes.
 */
import { once } from 'node:events'
import t from 'tap'
import { buildTestApp, clientToken } from '../helpers/app.js'
import { listenPort, parseResponse, rawConnect } from '../helpers/raw-http.js'

function consentRequest(): { head: string; body: string } {
  const body = JSON.stringify({ token: clientToken({ sub: 'closing-contact' }), decision: 'granted', version: 'v1', locale: 'en' })
  const head = `POST /clients/cat_consent HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`
  return { head, body }
}

t.test('a request in flight when the app closes gets its answer with Connection: close; idle connections close; close does not wait for keep-alive', async (t) => {
  const app = await buildTestApp(t)
  const port = await listenPort(app)

  const idle = await rawConnect(port)
  idle.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal((await idle.responses(1))[0]?.headers.connection, 'keep-alive', 'a kept-alive connection, idle from here on')

  // The request's head is in, its body is not: it is in flight when closing begins.
  const busy = await rawConnect(port)
  const { head, body } = consentRequest()
  const received = once(app.server, 'request')
  busy.socket.write(head + body.slice(0, 10))
  await received
  const started = Date.now()
  const closing = app.close()
  await new Promise((resolve) => setImmediate(resolve))
  busy.socket.write(body.slice(10))

  const answer = parseResponse(await busy.closed)
  t.equal(answer.status, 204, 'the request in flight is served, not cut')
  t.equal(answer.headers.connection, 'close', 'with Connection: close, and its connection closes after it')
  await idle.closed
  t.ok(idle.socket.closed, 'the idle connection is closed')
  await closing
  t.ok(Date.now() - started < 2000, `the close completes once the request is answered (${Date.now() - started} ms), not after the keep-alive timeout`)
})

t.test('a connection still busy drainMs after closing began is cut, and the close completes', async (t) => {
  const app = await buildTestApp(t, { httpTimeouts: { drainMs: 200 } })
  const port = await listenPort(app)
  const stuck = await rawConnect(port)
  const { head, body } = consentRequest()
  const received = once(app.server, 'request')
  stuck.socket.write(head + body.slice(0, 10))
  await received
  const started = Date.now()
  await app.close()
  const elapsed = Date.now() - started
  await stuck.closed
  t.ok(elapsed >= 190 && elapsed < 2000, `closed after the drain time, not before and not never (${elapsed} ms)`)
})

t.test('a connection that has sent nothing when closing begins is closed at once: the close does not wait drainMs for it', async (t) => {
  const app = await buildTestApp(t, { httpTimeouts: { drainMs: 60_000 } })
  const port = await listenPort(app)
  const silent = await rawConnect(port)
  const connected = await rawConnect(port)
  connected.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal((await connected.responses(1))[0]?.status, 200, 'a connection that was served, idle from here on')
  const started = Date.now()
  const closed = await Promise.race([app.close().then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 10_000).unref())])
  t.ok(closed, `the close completes without waiting the drain time (${Date.now() - started} ms)`)
  await silent.closed
  t.ok(silent.socket.closed, 'the silent connection is closed')
  await connected.closed
})
