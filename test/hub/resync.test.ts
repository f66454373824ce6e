import t from 'tap'
import WebSocket from 'ws'
import type { FastifyInstance } from 'fastify'
import { adminToken, buildTestApp, clientToken, ensureConsent, heartbeatUrl, uniqueSite } from '../helpers/app.js'
import { connectDashboard, type Message } from '../helpers/ws.js'
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js'

// Each test runs its own redis-server and restarts or kills it; the shared Redis is not touched.

/** Polls `check` until it returns a value (not undefined); fails naming `what` after `ms`. */
async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** A heartbeat that opens a tab of `sub` on `path`, retried while Redis is still coming back. */
async function join(app: FastifyInstance, sub: string, path: string): Promise<void> {
  const token = clientToken({ sub })
  await ensureConsent(app, token)
  await until(`the join of ${sub} is answered 204`, async () => {
    const res = await app.inject(heartbeatUrl({ token, sid: `tab-${sub}-0001`, event: 'nav', path }))
    return res.statusCode === 204 ? true : undefined
  })
}

const names = (m: Message | undefined): string[] => (m?.online ?? []).map((p) => `${String(p.contactId)} ${String(p.path)}`).sort()
const holds = (id: string) => (m: Message): boolean =>
  (m.type === 'diff' && m.joined?.some((p) => p.contactId === id) === true) || (m.type === 'snapshot' && m.online?.some((p) => p.contactId === id) === true)

async function appOn(t: { teardown(fn: () => unknown): void }, server: TestRedisServer, lines?: string[]): Promise<FastifyInstance> {
  return buildTestApp(t, {
    site: uniqueSite('resync'),
    env: { REDIS_URL: server.url, LOG_LEVEL: lines === undefined ? 'silent' : 'info' },
    ...(lines === undefined ? {} : { logStream: { write: (line: string) => void lines.push(line) } }),
  })
}

for (const persist of [false, true]) {
  t.test(`Redis restarted ${persist ? 'with' : 'without'} its data: a connected dashboard gets a fresh snapshot and stays open`, async (t) => {
    const server = await startRedisServer(t)
    const app = await appOn(t, server)
    await join(app, 'ann', '/before')
    const dash = await connectDashboard(app, adminToken())
    t.teardown(() => dash.close())
    t.same(names(await dash.waitFor((m) => m.type === 'snapshot')), ['ann /before'])

    await server.restart({ persist })
    const fresh = await dash.waitFor((m) => m.type === 'snapshot' && m.seq > 1, 15_000)
    t.same(names(fresh), persist ? ['ann /before'] : [], persist ? 'the contact kept by Redis is in it' : 'Redis lost everyone: the snapshot says so')
    t.equal(dash.socket.readyState, WebSocket.OPEN, 'the socket is open')

    await join(app, 'bob', '/after')
    await dash.waitFor(holds('bob'), 15_000, dash.messages.indexOf(fresh))
    t.pass('a join after the restart reaches the dashboard')
    t.equal(dash.socket.readyState, WebSocket.OPEN, 'still open')
    const seqs = dash.messages.map((m) => m.seq)
    t.same(seqs, seqs.map((_, i) => i + 1), 'seq rose by one per message')
  })
}

t.test('a snapshot asked for while Redis is down: the dashboard waits, open, and gets it when Redis is back', async (t) => {
  const server = await startRedisServer(t)
  const lines: string[] = []
  const app = await appOn(t, server, lines)
  await join(app, 'ann', '/before')
  const dash = await connectDashboard(app, adminToken())
  t.teardown(() => dash.close())
  await dash.waitFor((m) => m.type === 'snapshot')

  await server.kill()
  dash.socket.send(JSON.stringify({ type: 'resync' }))
  await until('the hub tried and failed', () => (lines.some((line) => line.includes('snapshot failed')) ? true : undefined))
  t.equal(dash.socket.readyState, WebSocket.OPEN, 'open while Redis is down')

  await server.start()
  const fresh = await dash.waitFor((m) => m.type === 'snapshot' && m.seq > 1, 15_000)
  t.same(names(fresh), [], 'the snapshot of the Redis that came back (empty)')
  t.equal(dash.socket.readyState, WebSocket.OPEN, 'open after it')
  await join(app, 'bob', '/after')
  await dash.waitFor(holds('bob'), 15_000, dash.messages.indexOf(fresh))
  t.pass('live again')
})
