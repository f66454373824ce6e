/**
 * Fault probe: a fuzz with a fixed seed (fast-check) of every route over real sockets, and of
 * the dashboard WebSocket. HTTP: random methods, paths, parameters, queries, headers and
 * bodies, and raw requests no client library would send (no Host, oversized headers, broken
 * request lines). WebSocket: random text, binary and oversized frames. The process answers no
 * 5xx but a documented 503 with Retry-After, every error body is the documented
 * {"error":{"code","message"}}, it stays up, and protocol violations close the socket with
 * their documented codes (1008, 1009).
 */
import t from 'tap'
import fc from 'fast-check'
import { connect } from 'node:net'
import WebSocket from 'ws'
import { adminToken, buildTestApp, clientToken } from '../helpers/app.js'
import { wsBase } from '../helpers/ws.js'
import { grantConsent, isErrorBody, printFigures, rssMiB, runLoad } from '../helpers/faults.js'

const SEED = 14_2026
const HTTP_REQUESTS = 9_000
const RAW_REQUESTS = 1_200
const WS_FRAMES = 1_200

const ROUTES = [
  '/cat_heartbeat',
  '/clients/cat_consent',
  '/clients/cat_consent_js',
  '/admin',
  '/admin/widget.js',
  '/admin/dashboard.js',
  '/admin/api/license',
  '/admin/ws',
  '/admin/api/online',
  '/admin/api/stats/online',
  '/admin/api/contacts/:id',
  '/admin/api/contacts/:id/activity',
  '/admin/api/contacts/:id/export',
  '/admin/api/clients/:id/activity',
  '/healthz',
  '/readyz',
  '/demo',
  '/',
  '/nowhere',
]

const client = clientToken({ sub: 'fuzz-contact', clientId: 'client-fuzz' })
const admin = adminToken()

/** Text that may carry anything a URL may: %-escapes good and broken, unicode, long runs. */
const urlText = fc.oneof(
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.string({ unit: 'binary', maxLength: 40 }).map(encodeURIComponent),
  fc.constantFrom('%', '%zz', '%E0%A4%A', '..', '%2e%2e%2f', '%00', ';', '*', '~', ''),
  fc.integer({ min: 90, max: 300 }).map((n) => 'x'.repeat(n)),
  fc.stringMatching(/^[A-Za-z0-9_.~!$&'()*+,;=:@-]{0,30}$/),
)

const tokenValue = fc.constantFrom(client, admin, 'garbage', `${client}x`, client.split('.').slice(0, 2).join('.'), 'a.b.c', '', 'x'.repeat(5000))

const httpRequest = fc.record({
  method: fc.constantFrom('GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'),
  route: fc.constantFrom(...ROUTES),
  param: urlText,
  suffix: fc.constantFrom('', '', '', '/', '//', '/extra', '?', '#frag'),
  query: fc.dictionary(
    fc.constantFrom('token', 'sid', 'path', 'title', 'event', 'lang', 'from', 'to', 'limit', 'cursor', 'range', 'x', 'token[]', '__proto__'),
    fc.oneof(urlText, tokenValue.map(encodeURIComponent), fc.constantFrom('beat', 'nav', 'leave', 'hidden', 'visible', 'tab0123456', '/', '1h', '24h', '7d', '-1', '1e309', 'NaN')),
    { maxKeys: 6 },
  ),
  authorization: fc.option(fc.oneof(tokenValue.map((v) => `Bearer ${v}`), fc.string({ maxLength: 30 }).map((s) => s.replace(/[^\x20-\x7e]/g, ''))), { nil: undefined }),
  contentType: fc.option(fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', 'text/plain; charset=latin1', 'application/json; charset=utf-16'), { nil: undefined }),
  body: fc.option(
    fc.oneof(
      fc.json(),
      fc.string({ maxLength: 200 }),
      fc.constantFrom(JSON.stringify({ token: client, decision: 'granted', version: 'v', locale: 'en' }), JSON.stringify({ token: client, sid: 'tab0123456', event: 'nav', path: '/x' }), '{', '{"__proto__":{"a":1}}', 'token=x&sid=y'),
      fc.integer({ min: 8_000, max: 20_000 }).map((n) => 'b'.repeat(n)),
    ),
    { nil: undefined },
  ),
  origin: fc.option(fc.constantFrom('https://evil.example', 'null', 'http://127.0.0.1'), { nil: undefined }),
})

/** Raw requests, written to the socket as they are. */
const rawRequest = fc.oneof(
  fc.constantFrom(
    'GET /healthz HTTP/1.1\r\n\r\n', // no Host
    'GET /cat_heartbeat?token=%zz HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /%%% HTTP/1.1\r\nHost: x\r\n\r\n',
    'GARBAGE\r\n\r\n',
    'GET / HTTP/9.9\r\nHost: x\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
    'POST /cat_heartbeat HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
    'POST /cat_heartbeat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    'POST /cat_heartbeat HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'GET /admin/api/online HTTP/1.0\r\n\r\n',
    'GET http://other.example/healthz HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n',
  ),
  fc.integer({ min: 17_000, max: 40_000 }).map((n) => `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(n)}\r\n\r\n`),
  fc.integer({ min: 9_000, max: 20_000 }).map((n) => `GET /cat_heartbeat?token=${'t'.repeat(n)} HTTP/1.1\r\nHost: x\r\n\r\n`),
  fc.integer({ min: 101, max: 300 }).map((n) => `DELETE /admin/api/contacts/${'c'.repeat(n)} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin}\r\n\r\n`),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 300 }).map((s) => `${s}\r\n\r\n`),
)

interface RawAnswer {
  status: number
  retryAfter: boolean
  body: string
}

/** The body of a chunked answer. */
function unchunk(text: string): string {
  let body = ''
  let rest = text
  for (;;) {
    const line = rest.indexOf('\r\n')
    const size = parseInt(rest.slice(0, line), 16)
    if (line < 0 || !(size > 0)) return body
    body += rest.slice(line + 2, line + 2 + size)
    rest = rest.slice(line + 2 + size + 2)
  }
}

/** Sends one raw request and reads the answer until the server closes (Connection: close). */
function sendRaw(port: number, text: string): Promise<RawAnswer | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.setTimeout(3000, () => socket.destroy())
    socket.on('connect', () => socket.end(text.includes('Connection:') ? text : text.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n')))
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', () => {})
    socket.on('close', () => {
      const answer = Buffer.concat(chunks).toString('latin1')
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(answer)
      if (match === null) return resolve(undefined)
      const split = answer.indexOf('\r\n\r\n')
      const head = answer.slice(0, split)
      let body = answer.slice(split + 4)
      const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1]
      if (length !== undefined) body = body.slice(0, Number(length))
      else if (/\r\ntransfer-encoding: *chunked/i.test(head)) body = unchunk(body)
      resolve({ status: Number(match[1]), retryAfter: /\r\nretry-after:/i.test(head), body: Buffer.from(body, 'latin1').toString('utf8') })
    })
  })
}

function queryString(query: Record<string, string>): string {
  const pairs = Object.entries(query).map(([key, value]) => `${encodeURIComponent(key)}=${value}`)
  return pairs.length === 0 ? '' : `?${pairs.join('&')}`
}

t.test(`fuzz, seed ${SEED}: ${HTTP_REQUESTS + RAW_REQUESTS} HTTP requests and ${WS_FRAMES} WebSocket frames: no 5xx but 503 with Retry-After, documented error bodies, documented close codes`, async (t) => {
  // The memory engine: what is fuzzed is the HTTP and WebSocket handling, the same over either
  // engine, and a resync is cheaper on it (a Redis snapshot reads every tab bucket).
  const app = await buildTestApp(t)
  const base = await wsBase(app)
  const origin = base.replace('ws:', 'http:')
  const port = Number(new URL(origin).port)
  await grantConsent(origin, client)
  // The admin token verified before the flood: the flood's forged tokens put 127.0.0.1 over its
  // authentication failures (CAT_RATE_LIMIT_AUTH_FAILURES), and an address over them is served
  // only tokens verified before; the dashboard's connections below use this one.
  const verified = await app.inject({ url: '/admin/api/online', headers: { authorization: `Bearer ${admin}` } })
  if (verified.statusCode !== 200) throw new Error(`the admin token was refused: ${verified.statusCode}`)
  const rssBefore = rssMiB()

  // HTTP through a client library: anything a browser or a script could send.
  const requests = fc.sample(httpRequest, { seed: SEED, numRuns: HTTP_REQUESTS })
  const http = await runLoad({
    origin,
    maxRequests: requests.length,
    durationMs: 120_000,
    concurrency: 8,
    timeoutMs: 10_000,
    request: (i) => {
      const r = requests[i]!
      const path = `${r.route.replace(':id', r.param)}${r.suffix}${queryString(r.query)}`
      const headers: Record<string, string> = {}
      if (r.authorization !== undefined) headers.authorization = r.authorization
      if (r.contentType !== undefined) headers['content-type'] = r.contentType
      if (r.origin !== undefined) headers.origin = r.origin
      const hasBody = r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD'
      return { path, method: r.method as 'GET', headers, body: hasBody ? (typeof r.body === 'string' ? r.body : JSON.stringify(r.body)) : undefined }
    },
  })
  const httpBad = http.sent.filter((s) => s.status === 0 || (s.status >= 500 && !(s.status === 503 && s.retryAfter !== undefined)) || (s.status >= 400 && requests[s.i]!.method !== 'HEAD' && !isErrorBody(s.body)))

  // Raw requests: what only a broken or hostile client sends.
  const raws = fc.sample(rawRequest, { seed: SEED, numRuns: RAW_REQUESTS })
  const rawAnswers: (RawAnswer | undefined)[] = []
  for (let i = 0; i < raws.length; i += 8) rawAnswers.push(...(await Promise.all(raws.slice(i, i + 8).map((raw) => sendRaw(port, raw)))))
  const rawBad = rawAnswers.flatMap((answer, i) => (answer !== undefined && ((answer.status >= 500 && !(answer.status === 503 && answer.retryAfter)) || (answer.status >= 400 && !isErrorBody(answer.body))) ? [`${answer.status} ${answer.body.slice(0, 120)} ← ${JSON.stringify(raws[i]!.slice(0, 80))}`] : []))

  // WebSocket frames: a violation closes the socket with its code; a resync gets a snapshot.
  const frames = fc.sample(
    fc.oneof(
      { weight: 5, arbitrary: fc.constant({ kind: 'resync' as const, data: '{"type":"resync"}' }) },
      { weight: 2, arbitrary: fc.oneof(fc.string({ maxLength: 200 }), fc.json({ maxDepth: 3 })).map((data) => ({ kind: 'text' as const, data })) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((data) => ({ kind: 'binary' as const, data })) },
      { weight: 1, arbitrary: fc.integer({ min: 4097, max: 70_000 }).map((n) => ({ kind: 'oversized' as const, data: `{"type":"resync","pad":"${'x'.repeat(n)}"}` })) },
    ),
    { seed: SEED, numRuns: WS_FRAMES },
  )
  const expected = (frame: (typeof frames)[number]): number | undefined => {
    if (frame.kind === 'binary') return 1008
    if (Buffer.byteLength(frame.data) > 4096) return 1009
    try {
      return (JSON.parse(frame.data) as { type?: unknown } | null)?.type === 'resync' ? undefined : 1008
    } catch {
      return 1008
    }
  }
  const wsBad: string[] = []
  const closeCodes: Record<number, number> = {}
  let socket: WebSocket | undefined
  let messages = 0
  let closed: Promise<number> | undefined
  for (const frame of frames) {
    if (socket === undefined) {
      const current = new WebSocket(`${base}/admin/ws?token=${encodeURIComponent(admin)}`)
      messages = 0
      current.on('message', () => (messages += 1))
      current.on('error', () => {})
      closed = new Promise((resolve) => current.on('close', (code) => resolve(code)))
      await new Promise((resolve, reject) => {
        current.once('open', resolve)
        current.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)))
      })
      socket = current
    }
    const before = messages
    socket.send(frame.data, { binary: frame.kind === 'binary' })
    const code = expected(frame)
    if (code === undefined) {
      const answered = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 3000)
        const check = (): void => {
          if (messages > before) {
            clearTimeout(timer)
            resolve(true)
          } else setTimeout(check, 2)
        }
        check()
      })
      if (!answered) wsBad.push(`no snapshot after ${frame.data.slice(0, 60)}`)
      continue
    }
    const got: number = await Promise.race([closed ?? Promise.resolve(-1), new Promise<number>((resolve) => setTimeout(() => resolve(-1), 3000))])
    closeCodes[got] = (closeCodes[got] ?? 0) + 1
    if (got !== code) wsBad.push(`${frame.kind} frame ${String(frame.data).slice(0, 60)}: closed ${got}, expected ${code}`)
    socket.terminate()
    socket = undefined
  }
  socket?.terminate()

  const health = await runLoad({ origin, maxRequests: 1, durationMs: 5000, request: () => ({ path: '/healthz' }) })
  const rssAfter = rssMiB()
  const allStatuses = [...http.sent.map((s) => s.status), ...rawAnswers.map((a) => a?.status ?? 0)]
  printFigures(t, 'fuzz', {
    seed: SEED,
    httpRequests: http.sent.length + raws.length,
    http2xx: allStatuses.filter((s) => s >= 200 && s < 300).length,
    http4xx: allStatuses.filter((s) => s >= 400 && s < 500).length,
    http503: allStatuses.filter((s) => s === 503).length,
    http5xx: allStatuses.filter((s) => s >= 500).length,
    offContract: httpBad.length + rawBad.length,
    wsFrames: frames.length,
    ws1008: closeCodes[1008] ?? 0,
    ws1009: closeCodes[1009] ?? 0,
    wsOffContract: wsBad.length,
    rssBeforeMiB: rssBefore,
    rssAfterMiB: rssAfter,
  })
  t.ok(http.sent.length + raws.length >= 10_000, 'at least 10 000 requests')
  t.ok(frames.length >= 1_000, 'at least 1 000 frames')
  t.same(httpBad.slice(0, 20).map((s) => `${s.status} ${s.error ?? s.body.slice(0, 120)} ← ${requests[s.i]!.method} ${s.path.slice(0, 100)}`), [], 'no 5xx but 503 with Retry-After; every error body is {"error":{"code","message"}}')
  t.equal(httpBad.length, 0, 'requests off the contract')
  t.same(rawBad.slice(0, 20), [], 'raw requests: the same')
  t.equal(rawBad.length, 0, 'raw requests off the contract')
  t.same(wsBad.slice(0, 20), [], 'every violation closed with its documented code; every resync answered')
  t.same(health.statuses, { 200: 1 }, 'the process is up and healthy')
})
