/**
 * Fault probe: slow headers and slow bodies (slowloris). Sockets that send one byte a second
 * are cut by the server's header and request timeouts (seconds, fitting an 8 KiB heartbeat
 * body), long before the client would have finished, while heartbeats keep their 204.
 */
import t from 'tap'
import { connect } from 'node:net'
import { buildTestApp, clientToken } from '../helpers/app.js'
import { wsBase } from '../helpers/ws.js'
import { UNLIMITED_HEARTBEATS, grantConsent, percentile, printFigures, rssMiB, runLoad } from '../helpers/faults.js'

/** Bytes a slow client sends, one a second: it would need this long (s) to finish. */
const SLOW_BYTES = 25

/** Writes `head`, then one byte a second of `drip`; resolves with the seconds until the server cut the socket, or undefined when it never did. */
function slowClient(port: number, head: string, drip: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const started = performance.now()
    let sent = 0
    let timer: NodeJS.Timeout | undefined
    socket.on('connect', () => {
      socket.write(head)
      timer = setInterval(() => {
        if (sent >= drip.length) {
          clearInterval(timer)
          socket.destroy()
          resolve(undefined)
          return
        }
        socket.write(drip[sent] ?? '')
        sent += 1
      }, 1000)
    })
    socket.on('data', () => {})
    socket.on('error', () => {})
    socket.on('close', () => {
      clearInterval(timer)
      resolve(Math.round((performance.now() - started) / 100) / 10)
    })
  })
}

t.test('slow headers and slow bodies are cut by the server timeouts while heartbeats keep working', async (t) => {
  const app = await buildTestApp(t, { env: { ...UNLIMITED_HEARTBEATS } })
  const origin = (await wsBase(app)).replace('ws:', 'http:')
  const port = Number(new URL(origin).port)
  const token = clientToken({ sub: 'slow-innocent', clientId: 'client-slow' })
  await grantConsent(origin, token)
  const rssBefore = rssMiB()

  const slowHeaders = Array.from({ length: 5 }, () => slowClient(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', `X-Slow: ${'a'.repeat(SLOW_BYTES)}`))
  const slowBodies = Array.from({ length: 5 }, () => slowClient(port, `POST /cat_heartbeat?token=${token}&sid=slowtab001 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 8000\r\n\r\n`, 'b'.repeat(SLOW_BYTES)))
  let slowDone = false
  const all = Promise.all([Promise.all(slowHeaders), Promise.all(slowBodies)]).finally(() => (slowDone = true))
  const beats = await runLoad({
    origin,
    maxRequests: 5000,
    durationMs: (SLOW_BYTES + 5) * 1000,
    concurrency: 1,
    gapMs: 50,
    stop: () => slowDone,
    request: () => ({ path: `/cat_heartbeat?token=${token}&sid=slowinnocent1&event=beat&path=/` }),
  })
  const [headerCuts, bodyCuts] = await all
  const rssAfter = rssMiB()

  printFigures(t, 'slowloris', {
    slowHeaderSockets: headerCuts.length,
    slowBodySockets: bodyCuts.length,
    headersCutAfterS: headerCuts.map(String).join('/'),
    bodiesCutAfterS: bodyCuts.map(String).join('/'),
    beats: beats.sent.length,
    p50ms: percentile(beats.latencies, 50),
    p99ms: percentile(beats.latencies, 99),
    http5xx: beats.sent.filter((s) => s.status >= 500).length,
    rssBeforeMiB: rssBefore,
    rssAfterMiB: rssAfter,
  })
  t.ok(headerCuts.every((s) => s !== undefined), `every slow-header socket was cut before its ${SLOW_BYTES} s dribble ended`)
  t.ok(bodyCuts.every((s) => s !== undefined), `every slow-body socket was cut before its ${SLOW_BYTES} s dribble ended`)
  t.ok(beats.sent.length > 0, 'heartbeats ran alongside')
  t.same(beats.statuses, { 204: beats.sent.length }, 'every heartbeat answered 204')
})
