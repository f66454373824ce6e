import t from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import pino from 'pino'
import type { FastifyInstance } from 'fastify'
import { adminToken, buildTestApp, clientToken, ensureConsent, heartbeatUrl, uniqueSite, until } from '../helpers/app.js'
import { connectDashboard, type Message } from '../helpers/ws.js'
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js'
import { createDiffHub } from '../../src/hub/diff-hub.js'
import type { Presence, PresenceEngine } from '../../src/presence/presence-engine.js'
import { presencePart, type SnapshotParts } from '../../src/presence/snapshot-parts.js'

// Each test runs its own redis-server and restarts or kills it; the shared Redis is not touched.


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

t.test('hub: a snapshot read that fails is tried again, the socket kept; one that fails mid-message closes its socket with 1011', async (t) => {
  // Only the hub's handling is under test: an engine whose reads fail as told (the Redis cases are above).
  const presence = (contactId: string): Presence => ({ contactId, clientId: 'c', name: contactId, company: 'Acme', path: '/', title: '', state: 'active', since: 1, lastSeen: 1, tabs: 1 })
  const plan: ('fail-at-once' | 'fail-after-a-part' | 'ok')[] = ['fail-at-once', 'fail-at-once', 'ok', 'fail-after-a-part', 'ok']
  const reads = (): SnapshotParts => {
    const how = plan.shift() ?? 'ok'
    return {
      parts: (async function* () {
        if (how === 'fail-at-once') throw new Error('Redis is away')
        yield presencePart([presence('a')])
        if (how === 'fail-after-a-part') throw new Error('Redis went away')
        yield presencePart([presence('b')])
      })(),
      position: () => 0,
      partitions: 1,
      lowest: () => 0,
      highest: () => 0,
    }
  }
  const engine = { snapshotParts: reads, onFeed: () => () => {} } as unknown as PresenceEngine
  const hub = createDiffHub({ engine, diffIntervalMs: 10, retryMinMs: 10, retryMaxMs: 20, now: () => 1000, log: pino({ level: 'silent' }) })
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  t.teardown(() => {
    hub.close()
    server.close()
  })
  server.on('connection', (socket) => hub.add(socket))
  await new Promise((resolve) => server.once('listening', resolve))
  const connect = async (): Promise<{ socket: WebSocket; messages: Message[]; closed: Promise<number> }> => {
    const socket = new WebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}`)
    const messages: Message[] = []
    socket.on('message', (data) => messages.push(JSON.parse(data.toString()) as Message))
    const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)))
    await new Promise((resolve) => socket.once('open', resolve))
    return { socket, messages, closed }
  }

  const first = await connect()
  const snapshot = await until('a snapshot after two failed reads', () => first.messages[0])
  t.match(snapshot, { type: 'snapshot', seq: 1 })
  t.same(names(snapshot), ['a /', 'b /'], 'whole')
  t.equal(first.socket.readyState, WebSocket.OPEN, 'kept open through the failures')

  first.socket.send(JSON.stringify({ type: 'resync' }))
  t.equal(await first.closed, 1011, 'a snapshot broken off after its first part: the socket cannot take another, 1011')
  t.equal(first.messages.length, 1, 'and no half message reached it')

  const second = await connect()
  t.same(names(await until('the next dashboard gets its snapshot', () => second.messages[0])), ['a /', 'b /'])
  second.socket.close()
})
