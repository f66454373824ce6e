/**
 * The consent bus: a notice reaches this instance's listeners at once and every other
 * instance's once; after a dropped subscriber connection listeners hear `*`. Real Redis.
 */
import t, { type Test } from 'tap'
import { REDIS_URL, cleanRedisSite, createClock, uniqueSite } from '../helpers/app.js'
import { openMemoryState, openRedisState, type SharedState } from '../../src/shared-state.js'
import type { RedisPresenceEngine } from '../../src/presence/redis/redis-presence-engine.js'

const TIMINGS = { presenceTimeoutMs: 75_000, idleTimeoutMs: 600_000, gapAfterMs: 40_000 }

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 3_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

async function redisState(t: Test, site: string): Promise<SharedState<RedisPresenceEngine>> {
  const state = await openRedisState({ url: REDIS_URL, site, now: createClock(0).now, ...TIMINGS })
  t.teardown(() => state.close())
  return state
}

t.test('memory: a notice reaches the listeners before publish settles; unsubscribed ones no more', async (t) => {
  const state = openMemoryState({ now: createClock(0).now, ...TIMINGS })
  t.teardown(() => state.close())
  const heard: string[] = []
  const unsubscribe = state.consentBus.subscribe((contactId) => heard.push(contactId))
  const published = state.consentBus.publish('contact-1')
  t.strictSame(heard, ['contact-1'], 'at once')
  await published
  unsubscribe()
  await state.consentBus.publish('contact-2')
  t.strictSame(heard, ['contact-1'])
})

t.test('redis: a notice reaches this instance at once and the others once', async (t) => {
  const site = uniqueSite('consent-bus')
  cleanRedisSite(t, site)
  const a = await redisState(t, site)
  const b = await redisState(t, site)
  const heardA: string[] = []
  const heardB: string[] = []
  a.consentBus.subscribe((contactId) => heardA.push(contactId))
  b.consentBus.subscribe((contactId) => heardB.push(contactId))
  const published = a.consentBus.publish('contact|1')
  t.strictSame(heardA, ['contact|1'], 'the sender at once')
  await published
  await until('the other instance to hear it', () => heardB.length > 0)
  await b.consentBus.publish('contact-2')
  await until('the first instance to hear the second notice', () => heardA.length > 1)
  t.strictSame(heardA, ['contact|1', 'contact-2'], 'its own notice once, not again from Redis')
  t.strictSame(heardB, ['contact|1', 'contact-2'])
})

t.test('redis: after the subscriber connection dropped, listeners hear * and the feed a reset', async (t) => {
  const site = uniqueSite('consent-drop')
  cleanRedisSite(t, site)
  const state = await redisState(t, site)
  const heard: string[] = []
  state.consentBus.subscribe((contactId) => heard.push(contactId))
  const feed: string[] = []
  state.presence.onFeed((message) => feed.push(message.type))
  const { redis, subscriberName } = state.presence
  const clients = (await redis.client('LIST')) as string
  const line = clients.split('\n').find((l) => l.includes(`name=${subscriberName} `))
  const id = /id=(\d+)/.exec(line ?? '')?.[1]
  t.ok(id, 'the subscriber connection is named')
  await redis.client('KILL', 'ID', id as string)
  await until('the bus to tell *', () => heard.includes('*'))
  t.strictSame(heard, ['*'])
  t.strictSame(feed, ['reset'])
})
