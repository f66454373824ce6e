/**
 * The writer splits a large batch by contact into transactions that run at once, and
 * acknowledges the batch only when every one of them committed. Real Redis stream, real MariaDB.
 */
import t from 'tap'
import pino from 'pino'
import { Redis } from 'ioredis'
import { createActivityWriter } from '../../src/activity/activity-writer.js'
import { migrateDatabase, openDatabase } from '../../src/activity/database.js'
import { createSqlActivityStore } from '../../src/activity/sql-activity-store.js'
import type { ActivityStore } from '../../src/activity/activity-store.js'
import { DEFAULT_PARTITIONS, locate, sitePartitions } from '../../src/presence/redis/keys.js'
import { openRedisState } from '../../src/shared-state.js'
import type { ActivityEventLog } from '../../src/activity/event-log/event-log.js'
import { cleanRedisSite, REDIS_URL, uniqueSite } from '../helpers/app.js'
import { createTestDataDir, createTestMysqlDatabase } from '../helpers/database.js'

const T0 = 1_800_000_000_000
const CONTACTS = 150
const KINDS = ['join', 'nav', 'hidden', 'visible', 'leave', 'end'] as const

async function setup(t: { teardown(fn: () => unknown): void }): Promise<{ store: ActivityStore; eventLog: ActivityEventLog }> {
  const site = uniqueSite('parallel')
  cleanRedisSite(t, site)
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const partitions = sitePartitions(site, DEFAULT_PARTITIONS)
  const pipeline = redis.pipeline()
  // The streams hold the contacts' events interleaved, each in its partition's, as heartbeats would leave them.
  KINDS.forEach((type, step) => {
    for (let c = 0; c < CONTACTS; c += 1) {
      const fields = ['type', type, 'contact', `contact-${c}`, 'client', 'client-1', 'sid', 'tab', 'path', `/p${step}`, 'title', `P${step}`, 'at', String(T0 + step * 10_000 + c)]
      if (type === 'join') fields.push('name', `C${c}`, 'company', 'Co')
      if (type === 'end') fields.push('reason', 'leave')
      pipeline.xadd(partitions[locate(`contact-${c}`, DEFAULT_PARTITIONS).partition]?.events as string, '*', ...fields)
    }
  })
  await pipeline.exec()
  const database = await openDatabase({ url: await createTestMysqlDatabase(t, 'parallel'), dataDir: createTestDataDir(t, 'parallel') })
  t.teardown(() => database.close())
  await migrateDatabase(database)
  const state = await openRedisState({ url: REDIS_URL, site, now: () => T0, presenceTimeoutMs: 75_000, idleTimeoutMs: 600_000, gapAfterMs: 40_000 })
  t.teardown(() => state.close())
  return { store: createSqlActivityStore({ database, now: () => T0 }), eventLog: state.eventLog }
}

t.test('a batch written as parallel transactions: every event once, the stream empty afterwards', async (t) => {
  const { store, eventLog } = await setup(t)
  const parts: number[] = []
  const counting: ActivityStore = { ...store, write: (events) => (parts.push(events.length), store.write(events)) }
  const writer = createActivityWriter({ source: await eventLog.consumer('w'), store: counting, log: pino({ level: 'silent' }), batchSize: 1000, parallel: 3 })
  let total = 0
  for (let n = await writer.writeOnce(0); n > 0; n = await writer.writeOnce(0)) total += n
  t.equal(total, CONTACTS * KINDS.length)
  t.ok(parts.length >= 3 && parts.every((n) => n < 1000), `the batches were split (${parts.join(', ')})`)
  for (const c of [0, 77, CONTACTS - 1]) {
    const exported = await store.exportContact(`contact-${c}`)
    t.equal(exported.events.length, KINDS.length)
    t.match(exported.sessions, [{ endReason: 'leave', pages: [{ path: '/p0' }, { path: '/p1' }] }])
  }
  t.same(await eventLog.tail(10), [])
})

t.test('one part fails: nothing of the batch is acknowledged, and the next read writes it all', async (t) => {
  const { store, eventLog } = await setup(t)
  let fail = true
  const flaky: ActivityStore = {
    ...store,
    async write(events) {
      if (fail && events.some((event) => event.contactId === 'contact-5')) throw new Error('database away')
      await store.write(events)
    },
  }
  const writer = createActivityWriter({ source: await eventLog.consumer('w'), store: flaky, log: pino({ level: 'silent' }), batchSize: CONTACTS * KINDS.length, parallel: 2 })
  await t.rejects(writer.writeOnce(0), /database away/)
  t.equal((await eventLog.tail(10_000)).length, CONTACTS * KINDS.length, 'every event still in the stream')
  fail = false
  t.equal(await writer.writeOnce(0), CONTACTS * KINDS.length, 'the whole batch is read again and written')
  t.equal((await store.exportContact('contact-5')).events.length, KINDS.length)
  t.equal((await store.exportContact('contact-6')).events.length, KINDS.length, 'the part that committed the first time is written once')
  t.same(await eventLog.tail(10), [])
})

t.test('the running loop reads ahead; a failed write in the middle loses nothing and writes nothing twice', async (t) => {
  const { store, eventLog } = await setup(t)
  let writes = 0
  const seen = new Map<string, number>()
  let overlapped = false
  let reading = 0
  let readsInFlight = 0
  const source = await eventLog.consumer('loop')
  // A write that begins while a read is still on its way: the loop reads ahead.
  const watched = {
    ...source,
    read: (count: number, waitMs: number) => {
      reading += 1
      readsInFlight += 1
      return source.read(count, waitMs).finally(() => {
        readsInFlight -= 1
      })
    },
    retry: () => source.retry(),
    ack: (ids: readonly string[]) => source.ack(ids),
    claimStale: (minIdleMs: number, count: number) => source.claimStale(minIdleMs, count),
    close: () => source.close(),
  }
  const flaky: ActivityStore = {
    ...store,
    async write(events) {
      if (readsInFlight > 0) overlapped = true
      writes += 1
      if (writes === 3) throw new Error('database away for a moment')
      await store.write(events)
      for (const event of events) seen.set(event.id, (seen.get(event.id) ?? 0) + 1)
    },
  }
  const writer = createActivityWriter({ source: watched, store: flaky, log: pino({ level: 'silent' }), batchSize: 100, parallel: 1, retryMinMs: 1, waitMs: 10 })
  writer.start()
  t.teardown(() => writer.stop())
  const total = CONTACTS * KINDS.length
  while ((await eventLog.tail(1)).length > 0) await new Promise((resolve) => setTimeout(resolve, 10))
  await writer.stop()
  t.ok(overlapped, 'a read ran while a batch was being written')
  t.ok(reading > total / 100, `${reading} reads`)
  t.equal(seen.size, total, 'every event was written')
  t.same([...seen.values()].filter((n) => n !== 1), [], 'each committed once: the failed batch was written after the failure, not twice')
  for (const c of [0, 77, CONTACTS - 1]) t.equal((await store.exportContact(`contact-${c}`)).events.length, KINDS.length)
})

t.test('the loop writes the next batch while one commits; a contact in both waits for the first, and its rows come out as if written one by one', async (t) => {
  const { store, eventLog } = await setup(t)
  let inFlight = 0
  let most = 0
  const watched: ActivityStore = {
    ...store,
    async write(events, onLocked) {
      inFlight += 1
      most = Math.max(most, inFlight)
      try {
        await store.write(events, onLocked)
      } finally {
        inFlight -= 1
      }
    },
  }
  // Batches of 100 over 150 contacts: each batch has contacts of the one before it.
  const writer = createActivityWriter({ source: await eventLog.consumer('depth'), store: watched, log: pino({ level: 'silent' }), batchSize: 100, parallel: 1, depth: 2, waitMs: 10 })
  writer.start()
  t.teardown(() => writer.stop())
  while ((await eventLog.tail(1)).length > 0) await new Promise((resolve) => setTimeout(resolve, 10))
  await writer.stop()
  t.equal(most, 2, 'two batches were being written at once')
  for (let c = 0; c < CONTACTS; c += 1) {
    const exported = await store.exportContact(`contact-${c}`)
    t.equal(exported.events.length, KINDS.length)
    t.match(exported.sessions, [{ startedAt: T0 + c, endedAt: T0 + 5 * 10_000 + c, durationS: 30, endReason: 'leave', pages: [{ path: '/p0', durationS: 10 }, { path: '/p1', durationS: 20 }] }])
  }
})
