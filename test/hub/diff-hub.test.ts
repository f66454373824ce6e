import t, { type Test } from 'tap'
import pino from 'pino'
import WebSocket, { WebSocketServer } from 'ws'
import { createDiffHub } from '../../src/hub/diff-hub.js'
import { until } from '../helpers/app.js'
import type { FeedMessage, Presence, PresenceEngine } from '../../src/presence/presence-engine.js'
import { presencePart, type SnapshotParts } from '../../src/presence/snapshot-parts.js'
import { recordPart } from '../../src/presence/redis/record-part.js'
import { EVERY_CLIENT, visibilityOf, type Visibility } from '../../src/auth/visibility.js'

const presence = (contactId: string, path = '/home'): Presence => ({
  contactId, clientId: 'client-1', name: contactId, company: 'Acme', path, title: 'Home', state: 'active', since: 1, lastSeen: 1, tabs: 1,
})


/**
 * The hub of `engine` behind a WebSocket server on loopback, listening: each socket that
 * connects is added with the next of `visibilities` (every client once they run out).
 */
async function hubServer(t: Test, engine: PresenceEngine, diffIntervalMs: number, visibilities: Visibility[] = []): Promise<{ hub: ReturnType<typeof createDiffHub>; server: WebSocketServer }> {
  const hub = createDiffHub({ engine, diffIntervalMs, now: () => 1000, log: pino({ level: 'silent' }) })
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  t.teardown(() => {
    hub.close()
    server.close()
  })
  server.on('connection', (socket) => hub.add(socket, visibilities.shift()))
  await new Promise((resolve) => server.once('listening', resolve))
  return { hub, server }
}

t.test('a change that reaches the hub after the snapshot, at or below its contact\'s position there, is not sent again', async (t) => {
  // An engine whose snapshot holds `x` as of feed position 5 and everyone else as of 3: the
  // pub/sub feed may deliver change 4 (to x, already in the snapshot) only after the snapshot
  // went out. Only the hub's bookkeeping is under test here: the parts and the feed are given.
  let emit!: (message: FeedMessage) => void
  const parts: SnapshotParts = {
    parts: (async function* () {
      yield presencePart([presence('x', '/after-4')])
    })(),
    position: (contactId) => (contactId === 'x' ? 5 : 3),
    partitions: 1,
    lowest: () => 3,
    highest: () => 5,
  }
  const engine = {
    snapshotParts: () => parts,
    onFeed(listener: (message: FeedMessage) => void) {
      emit = listener
      return () => {}
    },
  } as unknown as PresenceEngine
  const { server } = await hubServer(t, engine, 10)
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}`)
  const messages: { type: string; joined?: Presence[]; updated?: Presence[]; online?: Presence[] }[] = []
  const arrived = (count: number): Promise<void> => new Promise((resolve) => {
    const check = (): void => {
      if (messages.length < count) return
      client.off('message', check)
      resolve()
    }
    client.on('message', check)
    check()
  })
  client.on('message', (data) => messages.push(JSON.parse(data.toString()) as (typeof messages)[number]))
  await arrived(1)
  t.strictSame(messages[0]?.online?.map((p) => p.contactId), ['x'])

  emit({ type: 'change', partition: 0, position: 4, change: { kind: 'updated', presence: presence('x', '/after-4') } })
  emit({ type: 'change', partition: 0, position: 5, change: { kind: 'joined', presence: presence('y') } })
  await arrived(2)
  t.strictSame(messages[1]?.joined?.map((p) => p.contactId), ['y'], 'y joined after its position (3)')
  t.strictSame(messages[1]?.updated, [], 'x\'s change 4 was in the snapshot')
  emit({ type: 'change', partition: 0, position: 6, change: { kind: 'updated', presence: presence('x', '/after-6') } })
  await arrived(3)
  t.strictSame(messages[2]?.updated?.map((p) => [p.contactId, p.path]), [['x', '/after-6']], 'x\'s change after its position is sent')
  client.close()
})

t.test('a feed reset while a snapshot is read: the socket gets that snapshot, then a new one, and only the changes after the new one', async (t) => {
  let emit!: (message: FeedMessage) => void
  let openFirst!: () => void
  const firstGate = new Promise<void>((resolve) => {
    openFirst = resolve
  })
  const reads: number[] = []
  const engine = {
    snapshotParts(): SnapshotParts {
      const read = reads.length
      const position = read === 0 ? 3 : 5
      reads.push(position)
      return {
        parts: (async function* () {
          if (read === 0) await firstGate
          yield presencePart([presence('x', `/read-${read}`)])
        })(),
        position: () => position,
        partitions: 1,
        lowest: () => position,
        highest: () => position,
      }
    },
    onFeed(listener: (message: FeedMessage) => void) {
      emit = listener
      return () => {}
    },
  } as unknown as PresenceEngine
  const { server } = await hubServer(t, engine, 5)
  const connected = new Promise((resolve) => server.once('connection', resolve))
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}`)
  const messages: { type: string; seq: number; online?: Presence[]; updated?: Presence[] }[] = []
  client.on('message', (data) => messages.push(JSON.parse(data.toString()) as (typeof messages)[number]))
  await connected
  await until('the first read began', () => (reads.length === 1 ? true : undefined))

  emit({ type: 'change', partition: 0, position: 4, change: { kind: 'updated', presence: presence('x', '/change-4') } })
  emit({ type: 'reset' })
  emit({ type: 'change', partition: 0, position: 5, change: { kind: 'updated', presence: presence('x', '/change-5') } })
  openFirst()
  await until('the second snapshot', () => (messages.length >= 2 ? true : undefined))
  emit({ type: 'change', partition: 0, position: 6, change: { kind: 'updated', presence: presence('x', '/change-6') } })
  await until('the diff after it', () => (messages.length >= 3 ? true : undefined))
  t.strictSame(messages.map((m) => [m.type, m.seq]), [['snapshot', 1], ['snapshot', 2], ['diff', 3]], 'no catch-up diff from the first snapshot')
  t.strictSame(messages[1]?.online?.map((p) => p.path), ['/read-1'])
  t.strictSame(messages[2]?.updated?.map((p) => p.path), ['/change-6'], 'changes 4 and 5 are in the second snapshot, and not sent')
  t.equal(reads.length, 2, 'two reads')
  client.close()
})

t.test('sockets of different visibilities share one read whose parts are the same bytes for both: each gets its snapshot whole', async (t) => {
  // Parts written from records (the Redis engine's): for every client, and for a token that
  // sees every client of the part, a part's text is one and the same buffer. The staff
  // member's array begins with the second part, which the admin's goes on with.
  const record = (clientId: string, name: string): Buffer => Buffer.from([clientId, name, 'Acme', '/home', 'Home', '1', '0tab'].join('\x1f'))
  const parts = [
    recordPart(['a1'], [record('client-2', 'A1')], [5]),
    recordPart(['b1', 'b2'], [record('client-1', 'B1'), record('client-1', 'B2')], [6, 7]),
    recordPart(['c1', 'c2'], [record('client-1', 'C1'), record('client-2', 'C2')], [8, 9]),
  ]
  let openFirst!: () => void
  const firstGate = new Promise<void>((resolve) => {
    openFirst = resolve
  })
  let reads = 0
  const engine = {
    snapshotParts(): SnapshotParts {
      const read = reads++
      return {
        parts: (async function* () {
          if (read === 0) await firstGate
          yield* parts
        })(),
        position: () => 0,
        partitions: 1,
        lowest: () => 0,
        highest: () => 0,
      }
    },
    onFeed: () => () => {},
  } as unknown as PresenceEngine
  // The first socket's read waits at the gate; the two that connect meanwhile share the next.
  const { hub, server } = await hubServer(t, engine, 5, [EVERY_CLIENT, EVERY_CLIENT, visibilityOf(['client-1'])])
  const url = `ws://127.0.0.1:${(server.address() as { port: number }).port}`
  const texts = [[], [], []] as string[][]
  const clients = texts.map((received) => {
    const client = new WebSocket(url)
    client.on('message', (data) => received.push(data.toString()))
    return client
  })
  t.teardown(() => clients.forEach((client) => client.close()))
  await until('three sockets on the hub', () => (hub.size === 3 ? true : undefined))
  openFirst()
  await until('every snapshot', () => (texts.every((received) => received.length > 0) ? true : undefined))
  t.equal(reads, 2, 'two reads: the two later sockets shared the second')
  const online = texts.map((received) => (JSON.parse(received[0] as string) as { online: Presence[] }).online.map((p) => p.contactId))
  t.strictSame(online[1], ['a1', 'b1', 'b2', 'c1', 'c2'], 'the admin of the shared read has every contact')
  t.strictSame(online[2], ['b1', 'b2', 'c1'], 'the staff member of client-1 has theirs')
  t.strictSame(online[0], ['a1', 'b1', 'b2', 'c1', 'c2'], 'as has the first socket')
})
