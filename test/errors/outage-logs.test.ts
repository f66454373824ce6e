import t from 'tap'
import type { Socket } from 'node:net'
import type { LightMyRequestResponse } from 'fastify'
import { adminToken, buildTestApp, clientToken, ensureConsent, heartbeatUrl, uniqueSite } from '../helpers/app.js'
import { connectDashboard } from '../helpers/ws.js'
import { startRedisServer } from '../helpers/redis-server.js'

interface Line {
  level: number
  msg: string
  [key: string]: unknown
}

function capture(): { lines: string[]; logStream: { write(line: string): void }; since(n: number): Line[] } {
  const lines: string[] = []
  return {
    lines,
    logStream: { write: (line: string) => void lines.push(line) },
    since: (n) => lines.slice(n).map((line) => JSON.parse(line) as Line),
  }
}

t.test('an outage of hundreds of heartbeats logs a few lines, without a stack', async (t) => {
  const server = await startRedisServer(t)
  const log = capture()
  // The background loops run as in production: the sweeper every 100 ms, the activity writer.
  const app = await buildTestApp(t, {
    site: uniqueSite('logs'),
    env: { REDIS_URL: server.url, LOG_LEVEL: 'info' },
    logStream: log.logStream,
    sweepIntervalMs: 100,
    activityLoops: true,
  })
  const tokens = Array.from({ length: 10 }, (_, i) => clientToken({ sub: `c${i}` }))
  for (const token of tokens) await ensureConsent(app, token)
  const send = (i: number): Promise<LightMyRequestResponse> => app.inject(heartbeatUrl({ token: tokens[i % tokens.length] as string, sid: `tab-000000-${i % tokens.length}`, event: 'nav', path: `/p${i}` }))
  t.equal((await send(0)).statusCode, 204)

  const before = log.lines.length
  await server.kill()
  const statuses: number[] = []
  for (let round = 0; round < 20; round += 1) {
    // 25 at once, as a busy instance gets them; a sweep runs in between.
    for (const res of await Promise.all(Array.from({ length: 25 }, (_, i) => send(round * 25 + i)))) statuses.push(res.statusCode)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.equal(statuses.filter((status) => status === 503).length, 500, 'all 500 heartbeats got 503')

  await server.start()
  await (async () => {
    const deadline = Date.now() + 15_000
    while ((await send(1)).statusCode !== 204) {
      if (Date.now() > deadline) throw new Error('no 204 within 15 s of the restart')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })()

  const lines = log.since(before)
  const byMessage = new Map<string, number>()
  for (const line of lines) byMessage.set(line.msg, (byMessage.get(line.msg) ?? 0) + 1)
  t.ok(lines.length <= 8, `a few lines for the whole outage (${lines.length}): ${JSON.stringify([...byMessage])}`)
  t.same(lines.filter((line) => JSON.stringify(line).includes('"stack"')).map((line) => line.msg), [], 'no stack (the lines with one named)')
  const messages = lines.map((line) => line.msg)
  t.ok(messages.includes('Redis is unavailable; its callers get 503 until it answers again'), 'the engine said Redis is unavailable')
  t.ok(messages.includes('answering 503 unavailable'), 'the first 503 was logged with its reason')
  t.ok(messages.includes('Redis is available again'), 'and that it is back')
  t.match(lines.find((line) => line.msg === 'answering 503 unavailable'), { reason: /Redis/ })
})

t.test("a client's malformed WebSocket frames log nothing above debug", async (t) => {
  const log = capture()
  const app = await buildTestApp(t, { env: { LOG_LEVEL: 'debug' }, logStream: log.logStream })
  const frames: [string, Buffer, number][] = [
    // FIN + reserved opcode 3, masked, empty.
    ['a reserved opcode', Buffer.from([0x83, 0x80, 0, 0, 0, 0]), 1002],
    // A text frame announcing 5 000 bytes, over the 4 KiB limit.
    ['a frame over the size limit', Buffer.from([0x81, 0xfe, 0x13, 0x88, 0, 0, 0, 0]), 1009],
    // A text frame of invalid UTF-8.
    ['invalid UTF-8', Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0xc3, 0x28]), 1007],
  ]
  for (const [label, frame, code] of frames) {
    const dash = await connectDashboard(app, adminToken())
    await dash.waitFor((m) => m.type === 'snapshot')
    const before = log.lines.length
    ;(dash.socket as unknown as { _socket: Socket })._socket.write(frame)
    t.equal((await dash.closed).code, code, `${label}: closed with ${code}`)
    await new Promise((resolve) => setImmediate(resolve))
    const loud = log.since(before).filter((line) => line.level > 20)
    t.same(loud.map((line) => line.msg), [], `${label}: nothing above debug`)
  }
})
