/**
 * The activity event log: one suite run against the memory and the Redis implementation (real
 * Redis, and the real test Redis Cluster), the events made by heartbeats of the presence engine
 * beside it.
 */
import t, { type Test } from 'tap'
import { REDIS_URL, cleanRedisSite, createClock, uniqueSite } from '../helpers/app.js'
import { clusterSeeds } from '../helpers/redis-cluster.js'
import { Redis } from 'ioredis'
import { siteKeys } from '../../src/presence/redis/keys.js'
import { openMemoryState, openRedisState, type SharedState } from '../../src/shared-state.js'
import type { Heartbeat, HeartbeatEvent, PresenceEngine } from '../../src/presence/presence-engine.js'
import type { ActivityEventLog } from '../../src/activity/event-log/event-log.js'

const TIMEOUT = 75_000
const IDLE = 600_000
const GAP = 40_000
const T0 = 1_800_000_000_000
const CONTACT = 'contact-1'

function beat(event: HeartbeatEvent, over: Partial<Heartbeat> = {}): Heartbeat {
  return { contactId: CONTACT, clientId: 'client-7', name: 'Ann Example', company: 'Acme Ltd', sid: 'tab-aaaa-0001', path: '/clients/tickets', title: 'Tickets', event, ...over }
}

async function memoryState(t: Test): Promise<SharedState> {
  const state = openMemoryState({ now: createClock(T0).now, presenceTimeoutMs: TIMEOUT, idleTimeoutMs: IDLE, gapAfterMs: GAP })
  t.teardown(() => state.close())
  return state
}

async function redisState(t: Test): Promise<SharedState> {
  const site = uniqueSite('event-log')
  cleanRedisSite(t, site)
  const state = await openRedisState({ url: REDIS_URL, site, now: createClock(T0).now, presenceTimeoutMs: TIMEOUT, idleTimeoutMs: IDLE, gapAfterMs: GAP })
  t.teardown(() => state.close())
  return state
}

async function clusterState(t: Test): Promise<SharedState> {
  const site = uniqueSite('event-log-cluster')
  const state = await openRedisState({ clusterNodes: clusterSeeds(), site, now: createClock(T0).now, presenceTimeoutMs: TIMEOUT, idleTimeoutMs: IDLE, gapAfterMs: GAP })
  t.teardown(() => state.close())
  return state
}

function eventLogContract(name: string, open: (t: Test) => Promise<SharedState>): void {
  t.test(name, async (t) => {
    async function setup(t: Test): Promise<{ engine: PresenceEngine; eventLog: ActivityEventLog }> {
      const state = await open(t)
      return { engine: state.presence, eventLog: state.eventLog }
    }

    t.test('event source: read, acknowledge, re-read what was not acknowledged', async (t) => {
      const { engine, eventLog } = await setup(t)
      const source = await eventLog.consumer('writer-a')
      t.teardown(() => source.close())
      await engine.heartbeat(beat('nav'))
      await engine.heartbeat(beat('nav', { path: '/b' }))
      await engine.heartbeat(beat('hidden'))
      const first = await source.read(2, 10)
      t.strictSame(first.map((e) => e.type), ['join', 'nav'])
      // The writer reads ahead while the first batch is written: the next read gives what follows.
      const ahead = await source.read(2, 10)
      t.strictSame(ahead.map((e) => e.type), ['hidden'], 'read ahead: the events after those handed out')
      t.strictSame(await source.read(2, 10), [], 'everything is handed out')
      // The write failed: everything not acknowledged is handed out again, in order, first.
      source.retry()
      const again = await source.read(2, 10)
      t.strictSame(again.map((e) => e.id), first.map((e) => e.id), 'not acknowledged: handed out again after retry()')
      await source.ack(first.map((e) => e.id))
      const rest = await source.read(10, 10)
      t.strictSame(rest.map((e) => e.type), ['hidden'], 'then the rest of what was handed out')
      await source.ack(rest.map((e) => e.id))
      t.strictSame(await source.read(10, 10), [], 'nothing left')
      t.strictSame(await eventLog.tail(10), [], 'acknowledged events leave the stream')
    })

    t.test('event source: a waiting read wakes when an event arrives', async (t) => {
      const { engine, eventLog } = await setup(t)
      const source = await eventLog.consumer('writer-a')
      t.teardown(() => source.close())
      const pending = source.read(10, 5_000)
      await new Promise((resolve) => setImmediate(resolve))
      await engine.heartbeat(beat('nav'))
      const started = Date.now()
      t.strictSame((await pending).map((e) => e.type), ['join'])
      t.ok(Date.now() - started < 2_000, 'did not wait for the timeout')
    })

    t.test('discard drops one contact\'s unwritten events only', async (t) => {
      const { engine, eventLog } = await setup(t)
      await engine.heartbeat(beat('nav'))
      await engine.heartbeat(beat('nav', { contactId: 'other' }))
      await engine.heartbeat(beat('hidden'))
      t.equal(await eventLog.discard(CONTACT), 2)
      t.strictSame((await eventLog.tail(10)).map((e) => e.contactId), ['other'])
      t.equal(await engine.count(), 2, 'presence itself is untouched')
    })
  })
}

eventLogContract('memory event log', memoryState)
eventLogContract('redis event log', redisState)
eventLogContract('redis cluster event log (a read per stream)', clusterState)

t.test('redis event log: two consumers split the events; a dead consumer\'s events are claimed', async (t) => {
  const { presence: engine, eventLog } = await redisState(t)
  const a = await eventLog.consumer('writer-a')
  const b = await eventLog.consumer('writer-b')
  t.teardown(() => Promise.all([a.close(), b.close()]))
  for (let i = 0; i < 6; i += 1) await engine.heartbeat(beat('nav', { contactId: `c${i}` }))
  // A read takes up to its count from each partition's stream; what it took beyond its count
  // is handed out by the next reads of the same consumer.
  const fromA = await a.read(3, 10)
  t.equal(fromA.length, 3, 'a read hands out its count')
  const fromB = await b.read(10, 10)
  const restOfA = await a.read(10, 10)
  t.equal(fromA.length + restOfA.length + fromB.length, 6)
  t.strictSame(new Set([...fromA, ...restOfA, ...fromB].map((e) => e.id)).size, 6, 'each event handed to one consumer')
  await b.ack(fromB.map((e) => e.id))
  // a dies without acknowledging; b takes over what a held.
  const claimed = await b.claimStale(0, 10)
  t.strictSame(claimed.map((e) => e.id).sort(), [...fromA, ...restOfA].map((e) => e.id).sort())
  await b.ack(claimed.map((e) => e.id))
  t.strictSame(await eventLog.tail(10), [], 'all written, all gone from the stream')
})

t.test('redis event log: a read takes from every partition\'s stream, and hands out at most its count, the rest after', async (t) => {
  const { presence: engine, eventLog } = await redisState(t)
  const source = await eventLog.consumer('writer-a')
  t.teardown(() => source.close())
  const contacts = Array.from({ length: 40 }, (_, i) => `spread-${i}`)
  for (const contactId of contacts) {
    await engine.heartbeat(beat('nav', { contactId }))
    await engine.heartbeat(beat('nav', { contactId, path: '/second' }))
  }
  const batches: string[][] = []
  for (let batch = await source.read(25, 10); batch.length > 0; batch = await source.read(25, 10)) batches.push(batch.map((e) => e.id))
  t.ok(batches.every((batch) => batch.length <= 25), 'no batch past its count')
  const ids = batches.flat()
  t.equal(ids.length, 80, 'every event of every partition')
  t.equal(new Set(ids).size, 80, 'each once')
  t.ok(new Set(ids.map((id) => id.split('-')[2])).size > 10, 'from many partitions\' streams')
  source.retry()
  const again: string[] = []
  for (let batch = await source.read(25, 10); batch.length > 0; batch = await source.read(25, 10)) again.push(...batch.map((e) => e.id))
  t.strictSame([...again].sort(), [...ids].sort(), 'after retry() every unacknowledged event again, once')
  await source.ack(again)
  t.strictSame(await eventLog.tail(100), [], 'acknowledged: gone')
})

t.test('redis event log: the stream of the layout before partitions is read too while it holds events, and acknowledged', async (t) => {
  const site = uniqueSite('event-log-legacy')
  cleanRedisSite(t, site)
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const legacy = siteKeys(site).legacyEvents
  await redis.xadd(legacy, '*', 'type', 'nav', 'contact', 'old-1', 'client', 'client-7', 'sid', 'tab-old', 'path', '/before', 'title', 'Before', 'at', String(T0))
  const state = await openRedisState({ url: REDIS_URL, site, now: createClock(T0).now, presenceTimeoutMs: TIMEOUT, idleTimeoutMs: IDLE, gapAfterMs: GAP })
  t.teardown(() => state.close())
  await state.presence.heartbeat(beat('nav', { contactId: 'new-1' }))
  const source = await state.eventLog.consumer('writer-a')
  t.teardown(() => source.close())
  const events = await source.read(10, 10)
  t.strictSame(events.map((e) => [e.contactId, e.id.split('-').length]).sort(), [['new-1', 3], ['old-1', 2]], 'the old stream\'s event (id ms-seq) beside a partition\'s (ms-seq-p)')
  await source.ack(events.map((e) => e.id))
  t.equal(await redis.xlen(legacy), 0, 'acknowledged: gone from the old stream')
  t.strictSame(await state.eventLog.tail(10), [])
})
