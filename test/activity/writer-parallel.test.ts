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
import { createRedisPresenceEngine, redisKeys } from '../../src/presence/redis-presence-engine.js'
import { cleanRedisSite, REDIS_URL, uniqueSite } from '../helpers/app.js'
import { createTestDataDir, createTestMysqlDatabase } from '../helpers/database.js'

const T0 = 1_800_000_000_000
const CONTACTS = 150
const KINDS = ['join', 'nav', 'hidden', 'visible', 'leave', 'end'] as const

async function setup(t: { teardown(fn: () => unknown): void }): Promise<{ store: ActivityStore; engine: Awaited<ReturnType<typeof createRedisPresenceEngine>> }> {
  const site = uniqueSite('parallel')
  cleanRedisSite(t, site)
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const keys = redisKeys(site)
  const pipeline = redis.pipeline()
  // The stream holds the contacts' events interleaved, as heartbeats would leave them.
  KINDS.forEach((type, step) => {
    for (let c = 0; c < CONTACTS; c += 1) {
      const fields = ['type', type, 'contact', `contact-${c}`, 'client', 'client-1', 'sid', 'tab', 'path', `/p${step}`, 'title', `P${step}`, 'at', String(T0 + step * 10_000 + c)]
      if (type === 'join') fields.push('name', `C${c}`, 'company', 'Co')
      if (type === 'end') fields.push('reason', 'leave')
      pipeline.xadd(keys.events, '*', ...fields)
    }
  })
  await pipeline.exec()
  const database = await openDatabase({ url: await createTestMysqlDatabase(t, 'parallel'), dataDir: createTestDataDir(t, 'parallel') })
  t.teardown(() => database.close())
  await migrateDatabase(database)
  const engine = await createRedisPresenceEngine({ url: REDIS_URL, site, now: () => T0, presenceTimeoutMs: 75_000, idleTimeoutMs: 600_000, gapAfterMs: 40_000 })
  t.teardown(() => engine.close())
  return { store: createSqlActivityStore({ database, now: () => T0 }), engine }
}

t.test('a batch written as parallel transactions: every event once, the stream empty afterwards', async (t) => {
  const { store, engine } = await setup(t)
  const parts: number[] = []
  const counting: ActivityStore = { ...store, write: (events) => (parts.push(events.length), store.write(events)) }
  const writer = createActivityWriter({ source: await engine.eventSource('w'), store: counting, log: pino({ level: 'silent' }), batchSize: 1000, parallel: 3 })
  let total = 0
  for (let n = await writer.writeOnce(0); n > 0; n = await writer.writeOnce(0)) total += n
  t.equal(total, CONTACTS * KINDS.length)
  t.ok(parts.length >= 3 && parts.every((n) => n < 1000), `the batches were split (${parts.join(', ')})`)
  for (const c of [0, 77, CONTACTS - 1]) {
    const exported = await store.exportContact(`contact-${c}`)
    t.equal(exported.events.length, KINDS.length)
    t.match(exported.sessions, [{ endReason: 'leave', pages: [{ path: '/p0' }, { path: '/p1' }] }])
  }
  t.same(await engine.tailEvents(10), [])
})

t.test('one part fails: nothing of the batch is acknowledged, and the next read writes it all', async (t) => {
  const { store, engine } = await setup(t)
  let fail = true
  const flaky: ActivityStore = {
    ...store,
    async write(events) {
      if (fail && events.some((event) => event.contactId === 'contact-5')) throw new Error('database away')
      await store.write(events)
    },
  }
  const writer = createActivityWriter({ source: await engine.eventSource('w'), store: flaky, log: pino({ level: 'silent' }), batchSize: CONTACTS * KINDS.length, parallel: 2 })
  await t.rejects(writer.writeOnce(0), /database away/)
  t.equal((await engine.tailEvents(10_000)).length, CONTACTS * KINDS.length, 'every event still in the stream')
  fail = false
  t.equal(await writer.writeOnce(0), CONTACTS * KINDS.length, 'the whole batch is read again and written')
  t.equal((await store.exportContact('contact-5')).events.length, KINDS.length)
  t.equal((await store.exportContact('contact-6')).events.length, KINDS.length, 'the part that committed the first time is written once')
  t.same(await engine.tailEvents(10), [])
})
