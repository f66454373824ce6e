/**
 * The Redis engine's key layout (src/presence/redis/keys.ts, lua/common.lua): tabs spread over bucket sorted
 * sets with an index of when each bucket is next due, compact contact records. Real Redis.
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { REDIS_URL, cleanRedisSite, createClock, uniqueSite } from '../helpers/app.js'
import { BUCKETS_PER_PARTITION, DEFAULT_PARTITIONS, locate, partitionKeys, presenceKeys, siteKeyPatterns, siteKeys, sitePartitions, type PartitionKeys } from '../../src/presence/redis/keys.js'
import { presenceMemoryUsage } from '../../src/presence/redis/memory-usage.js'
import { recordPresence } from '../../src/presence/redis/records.js'
import type { RedisPresenceEngine } from '../../src/presence/redis/redis-presence-engine.js'
import { openRedisState, type SharedState } from '../../src/shared-state.js'
import type { FeedMessage, Heartbeat, PresenceChange } from '../../src/presence/presence-engine.js'

const TIMEOUT = 75_000
const IDLE = 600_000
const GAP = 40_000
const T0 = 1_800_000_000_000

type Clock = ReturnType<typeof createClock>

function beat(contactId: string, event: Heartbeat['event'], over: Partial<Heartbeat> = {}): Heartbeat {
  return { contactId, clientId: 'client-1', name: 'Ann', company: 'Acme', sid: 'tab-aaaa-0001', path: '/p', title: 'P', event, ...over }
}

async function stateOn(t: Test, site: string, clock: Clock, sweepBatch?: number): Promise<SharedState<RedisPresenceEngine>> {
  const state = await openRedisState({
    url: REDIS_URL, site, now: clock.now, presenceTimeoutMs: TIMEOUT, idleTimeoutMs: IDLE, gapAfterMs: GAP, ...(sweepBatch === undefined ? {} : { sweepBatch }),
  })
  t.teardown(() => state.close())
  return state
}

async function engineOn(t: Test, site: string, clock: Clock, sweepBatch?: number): Promise<RedisPresenceEngine> {
  return (await stateOn(t, site, clock, sweepBatch)).presence
}

function inspector(t: Test): Redis {
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  return redis
}

/**
 * Every change on the feed, in order; `upTo(positions)` waits until each partition's feed
 * reached its position, `upTo(n)` until n changes arrived.
 */
function collect(t: Test, engine: RedisPresenceEngine): { changes: PresenceChange[]; upTo(target: number | readonly number[]): Promise<PresenceChange[]> } {
  const messages: FeedMessage[] = []
  t.teardown(engine.onFeed((m) => messages.push(m)))
  const changes = (): PresenceChange[] => messages.flatMap((m) => (m.type === 'change' ? [m.change] : []))
  const reached = (target: number | readonly number[]): boolean => {
    if (typeof target === 'number') return changes().length >= target
    const last: number[] = []
    for (const m of messages) if (m.type === 'change') last[m.partition] = m.position
    return target.every((n, partition) => (last[partition] ?? 0) >= n)
  }
  return {
    get changes() {
      return changes()
    },
    async upTo(target) {
      const deadline = Date.now() + 5_000
      for (;;) {
        if (messages.some((m) => m.type === 'reset')) throw new Error('reset in the feed')
        if (reached(target)) return changes()
        if (Date.now() > deadline) throw new Error(`feed did not reach ${String(target)}`)
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    },
  }
}

const P = DEFAULT_PARTITIONS

/** A contact's bucket as one number across the site's partitions. */
const siteBucket = (contactId: string): number => {
  const { partition, bucket } = locate(contactId, P)
  return partition * BUCKETS_PER_PARTITION + bucket
}

/** The keys of a contact's partition, and its bucket's key. */
function placeOf(site: string, contactId: string): { keys: PartitionKeys; bucket: number; bucketKey: string } {
  const { partition, bucket } = locate(contactId, P)
  const keys = partitionKeys(site, partition, P)
  return { keys, bucket, bucketKey: keys.bucket(bucket) }
}

/** Contact ids that all fall into one bucket. */
function sameBucket(count: number): { ids: string[] } {
  const bucket = siteBucket('crowd-0')
  const ids: string[] = []
  for (let i = 0; ids.length < count; i += 1) if (siteBucket(`crowd-${i}`) === bucket) ids.push(`crowd-${i}`)
  return { ids }
}

/** Contact ids (`prefix-…`) that all fall into one partition. */
function samePartition(prefix: string, count: number): string[] {
  const partition = locate(`${prefix}-0`, P).partition
  const ids: string[] = []
  for (let i = 0; ids.length < count; i += 1) if (locate(`${prefix}-${i}`, P).partition === partition) ids.push(`${prefix}-${i}`)
  return ids
}

/** For every non-empty bucket of every partition: its index entry exists and is not later than its earliest tab. */
async function checkIndex(t: Test, redis: Redis, site: string): Promise<void> {
  const bad: string[] = []
  for (const keys of sitePartitions(site, P)) {
    const due = new Map<string, number>()
    const entries = await redis.zrange(keys.due, 0, -1, 'WITHSCORES')
    for (let i = 0; i < entries.length; i += 2) due.set(entries[i] as string, Number(entries[i + 1]))
    const pipeline = redis.pipeline()
    for (let n = 0; n < BUCKETS_PER_PARTITION; n += 1) pipeline.zrange(keys.bucket(n), 0, 0, 'WITHSCORES')
    const firsts = ((await pipeline.exec()) ?? []).map(([, reply]) => reply as string[])
    firsts.forEach((first, n) => {
      if (first.length === 0) return
      const at = due.get(String(n))
      if (at === undefined || at > Number(first[1])) bad.push(`partition ${keys.partition} bucket ${n}: index ${at}, earliest tab ${first[1]}`)
    })
  }
  t.strictSame(bad, [], 'every non-empty bucket is indexed no later than its earliest tab')
}

t.test('locate spreads contacts evenly over the partitions and their buckets, and is stable', async (t) => {
  const partitions = new Array<number>(P).fill(0)
  const buckets = new Array<number>(P * BUCKETS_PER_PARTITION).fill(0)
  for (let i = 0; i < 1_000_000; i += 1) {
    const id = `contact-${i}`
    const { partition } = locate(id, P)
    partitions[partition] = (partitions[partition] ?? 0) + 1
    buckets[siteBucket(id)] = (buckets[siteBucket(id)] ?? 0) + 1
  }
  t.ok(Math.max(...partitions) < 1.02 * (1_000_000 / P) && Math.min(...partitions) > 0.98 * (1_000_000 / P), `1 000 000 contacts: every partition within 2 % of its share (${Math.min(...partitions)}-${Math.max(...partitions)})`)
  t.ok(Math.max(...buckets) <= 128, `no bucket past 128, a listpack's most (max ${Math.max(...buckets)})`)
  t.ok(Math.min(...buckets) >= 40, `and none nearly empty (min ${Math.min(...buckets)})`)
  t.strictSame(locate('contact-1', P), locate('contact-1', P))
  const odd = locate('\u{1F408}|x', P)
  t.ok(odd.partition >= 0 && odd.partition < P && odd.bucket >= 0 && odd.bucket < BUCKETS_PER_PARTITION)
})

t.test('many contacts across buckets, two engines sweeping concurrently in small batches: each expiry exactly once', async (t) => {
  const site = uniqueSite('layout-once')
  cleanRedisSite(t, site)
  const clock = createClock(T0)
  const stateA = await stateOn(t, site, clock, 7)
  const a = stateA.presence
  const b = await engineOn(t, site, clock, 7)
  const feedA = collect(t, a)
  const feedB = collect(t, b)
  const ids = Array.from({ length: 300 }, (_, i) => `contact-${i}`)
  t.ok(new Set(ids.map(siteBucket)).size > 250, 'the contacts span many buckets')
  t.equal(new Set(ids.map((id) => locate(id, P).partition)).size, P, 'and every partition')
  let tabs = 0
  for (const [i, id] of ids.entries()) {
    const engine = i % 2 === 0 ? a : b
    await engine.heartbeat(beat(id, 'nav'))
    tabs += 1
    if (i % 5 === 0) {
      await engine.heartbeat(beat(id, 'nav', { sid: 'tab-bbbb-0002' }))
      tabs += 1
    }
    if (i % 7 === 0) await engine.heartbeat(beat(id, 'hidden')) // gone only after the idle timeout
  }
  const withHidden = ids.filter((_, i) => i % 7 === 0)
  const joins = ids.length
  clock.set(T0 + TIMEOUT + 1)
  const removed = await Promise.all([a.sweep(), b.sweep(), a.sweep(), b.sweep()])
  const hiddenTabs = withHidden.length
  t.equal(removed.reduce((sum, r) => sum + r, 0), tabs - hiddenTabs, 'each visible tab removed by exactly one call')
  t.strictSame((await a.snapshot()).online.map((p) => p.contactId).sort(), [...withHidden].sort(), 'only the contacts with a hidden tab remain')
  clock.set(T0 + IDLE + 1)
  const removedLater = await Promise.all([b.sweep(), a.sweep(), b.sweep()])
  t.equal(removedLater.reduce((sum, r) => sum + r, 0), hiddenTabs, 'then the hidden tabs, each once')
  t.strictSame(await Promise.all([a.sweep(), b.sweep()]), [0, 0], 'nothing left')

  const { positions } = await a.snapshot()
  const [changesA, changesB] = [await feedA.upTo(positions), await feedB.upTo(positions)]
  t.strictSame(changesA, changesB, 'both instances see the same feed')
  const leftIds = changesA.flatMap((c) => (c.kind === 'left' ? [c.left.contactId] : []))
  t.equal(leftIds.length, ids.length, 'one left per contact')
  t.strictSame([...leftIds].sort(), [...ids].sort())
  t.equal(changesA.filter((c) => c.kind === 'joined').length, joins)
  const ends = (await stateA.eventLog.tail(10_000)).filter((e) => e.type === 'end').map((e) => e.contactId)
  t.strictSame(ends.sort(), [...ids].sort(), 'one end event per contact')
  const inspect = inspector(t)
  for (const keys of sitePartitions(site, P)) t.equal(await inspect.zcard(keys.due), 0, `partition ${keys.partition}: the index is empty once every bucket is`)
})

/**
 * The script calls the engine writes to Redis, in order, as its connection sends them (ioredis
 * sends EVAL the first time a connection calls a script, EVALSHA after). Redis's MONITOR would
 * show the same, but ioredis's monitor mode fails now and then when another client's command
 * is logged in the same read as MONITOR's OK ("Command queue state error").
 */
function scriptCalls(engine: RedisPresenceEngine): string[] {
  const calls: string[] = []
  const redis = engine.redis as Redis
  const send = redis.sendCommand.bind(redis)
  redis.sendCommand = ((command, stream) => {
    if (/^eval(sha)?$/i.test(command.name)) calls.push(command.name)
    return send(command, stream)
  }) as typeof redis.sendCommand
  return calls
}

t.test('heartbeats of one turn go to Redis as one script call per run of a kind, in the order they arrived (batcher.ts, against real Redis)', async (t) => {
  const site = uniqueSite('layout-batch')
  cleanRedisSite(t, site)
  const clock = createClock(T0)
  const engine = await engineOn(t, site, clock)
  const feed = collect(t, engine)
  const calls = scriptCalls(engine)
  /** The calls sent up to now. */
  const callsSoFar = (): number => calls.splice(0).length
  // Three contacts of one partition: the full script's calls are per partition.
  const [ann, bob, cid] = samePartition('one', 3) as [string, string, string]
  await engine.heartbeat(beat(ann, 'nav'))
  t.equal(callsSoFar(), 1)

  // One turn: a beat of Ann's open tab, two joins, Ann's tab leaves, a beat of it again, Bob navigates.
  const pending = [engine.heartbeat(beat(ann, 'beat'))]
  clock.advance(1_000)
  pending.push(engine.heartbeat(beat(bob, 'nav')), engine.heartbeat(beat(cid, 'nav')))
  clock.advance(1_000)
  pending.push(engine.heartbeat(beat(ann, 'leave')), engine.heartbeat(beat(ann, 'beat')))
  clock.advance(1_000)
  pending.push(engine.heartbeat(beat(bob, 'nav', { path: '/q' })))
  const results = await Promise.all(pending)
  t.strictSame(results, ['unchanged', 'joined', 'joined', 'left', 'joined', 'updated'],
    'each in order: the beat after the leave finds no tab and opens it again')
  // beat | nav nav leave | beat (no tab: the full script, next turn) | nav
  t.equal(callsSoFar(), 5, 'a call per run of the same kind, and one for the beat that missed the fast path')
  const changes = await feed.upTo(6)
  const name = (id: string): string => ({ [ann]: 'ann', [bob]: 'bob', [cid]: 'cid' })[id] ?? id
  const shown = changes.slice(1).map((c) => (c.kind === 'left' ? `left ${name(c.left.contactId)} ${c.left.at - T0}` : `${c.kind} ${name(c.presence.contactId)} ${c.presence.since - T0}`))
  t.strictSame(shown, ['joined bob 1000', 'joined cid 1000', 'left ann 2000', 'updated bob 1000', 'joined ann 3000'],
    'the feed in the order of arrival, each with the time it arrived')
})

t.test('on one Redis a call takes the heartbeats of every partition, the fast path\'s and the full script\'s', async (t) => {
  const site = uniqueSite('layout-groups')
  cleanRedisSite(t, site)
  const clock = createClock(T0)
  const engine = await engineOn(t, site, clock)
  const ids = Array.from({ length: 60 }, (_, i) => `group-${i}`)
  const partitions = new Set(ids.map((id) => locate(id, P).partition))
  t.ok(partitions.size > 15, `the contacts are in ${partitions.size} partitions`)
  const calls = scriptCalls(engine)
  t.strictSame(await Promise.all(ids.map((id) => engine.heartbeat(beat(id, 'nav')))), ids.map(() => 'joined'))
  const joinCalls = calls.splice(0).length
  t.ok(joinCalls < partitions.size, `joins: ${joinCalls} calls of the full script for ${partitions.size} partitions (one per send, whatever the partitions)`)
  clock.advance(30_000)
  t.strictSame(await Promise.all(ids.map((id) => engine.heartbeat(beat(id, 'beat')))), ids.map(() => 'unchanged'))
  t.equal(calls.splice(0).length, 1, 'beats of every partition: one call')
  const online = (await engine.snapshot()).online
  t.equal(online.length, ids.length)
  t.ok(online.every((p) => p.lastSeen === T0 + 30_000), 'every beat moved its contact\'s expiry')
  await checkIndex(t, inspector(t), site)
})

t.test('a bucket past 128 tabs (no longer a listpack) still works: fast path, hidden, snapshot, expiry', async (t) => {
  const site = uniqueSite('layout-big')
  cleanRedisSite(t, site)
  const clock = createClock(T0)
  const engine = await engineOn(t, site, clock, 50)
  const redis = inspector(t)
  const { ids } = sameBucket(200)
  for (const id of ids) t.equal(await engine.heartbeat(beat(id, 'nav')), 'joined')
  const key = placeOf(site, ids[0] as string).bucketKey
  t.equal(await redis.zcard(key), 200)
  t.equal(await redis.object('ENCODING', key), 'skiplist', 'converted past zset-max-listpack-entries')
  clock.set(T0 + 30_000)
  for (const id of ids.slice(0, 100)) t.equal(await engine.heartbeat(beat(id, 'beat')), 'unchanged')
  t.equal(await engine.heartbeat(beat(ids[150] as string, 'hidden')), 'updated')
  const online = new Map((await engine.snapshot()).online.map((p) => [p.contactId, p]))
  t.equal(online.size, 200)
  t.match(online.get(ids[0] as string), { lastSeen: T0 + 30_000, state: 'active' })
  t.match(online.get(ids[150] as string), { lastSeen: T0 + 30_000, state: 'idle' })
  t.match(online.get(ids[199] as string), { lastSeen: T0, state: 'active' })
  await checkIndex(t, redis, site)
  clock.set(T0 + TIMEOUT + 1)
  t.equal(await engine.sweep(), 99, 'the 99 tabs that did not beat or hide, over several calls of 50')
  clock.set(T0 + 30_000 + TIMEOUT + 1)
  t.equal(await engine.sweep(), 100)
  t.strictSame((await engine.snapshot()).online.map((p) => p.contactId), [ids[150]])
  await checkIndex(t, redis, site)
})

t.test('the index: early entries are corrected by the sweeper, a beat that lowers a score (clock skew) lowers it too', async (t) => {
  const site = uniqueSite('layout-due')
  cleanRedisSite(t, site)
  const clock = createClock(T0)
  const engine = await engineOn(t, site, clock)
  const redis = inspector(t)
  const id = 'skewed'
  const { keys, bucket: number } = placeOf(site, id)
  const bucket = String(number)
  await engine.heartbeat(beat(id, 'nav'))
  t.equal(Number(await redis.zscore(keys.due, bucket)), T0 + TIMEOUT)
  clock.set(T0 + 30_000)
  await engine.heartbeat(beat(id, 'beat'))
  t.equal(Number(await redis.zscore(keys.due, bucket)), T0 + TIMEOUT, 'a beat that raises the score leaves the index early (no write)')
  clock.set(T0 + TIMEOUT)
  t.equal(await engine.sweep(), 0, 'the early entry comes due: nothing expired')
  t.equal(Number(await redis.zscore(keys.due, bucket)), T0 + 30_000 + TIMEOUT, 'the sweeper set it to the earliest tab')

  // Another instance whose clock is 20 s behind: its beat moves the expiry earlier.
  clock.set(T0 + 40_000 - 20_000)
  t.equal(await engine.heartbeat(beat(id, 'beat')), 'unchanged')
  t.equal(Number(await redis.zscore(keys.due, bucket)), T0 + 20_000 + TIMEOUT, 'the index follows the lower score')
  await checkIndex(t, redis, site)
  clock.set(T0 + 20_000 + TIMEOUT + 1)
  t.equal(await engine.sweep(), 1, 'expired at the lower score, not 20 s later')

  // hidden and visible move the score both ways.
  clock.set(T0 + 200_000)
  await engine.heartbeat(beat(id, 'nav'))
  await engine.heartbeat(beat(id, 'hidden'))
  await engine.heartbeat(beat(id, 'nav', { sid: 'tab-bbbb-0002' }))
  await checkIndex(t, redis, site)
  await engine.heartbeat(beat(id, 'visible'))
  await checkIndex(t, redis, site)
  t.equal(await engine.end(id, 'withdrawn'), true)
  clock.set(T0 + 200_000 + TIMEOUT + 1)
  t.equal(await engine.sweep(), 0)
  t.equal(await redis.zscore(keys.due, bucket), null, 'an emptied bucket leaves the index when it comes due')
})

t.test('presenceKeys lists every key that holds presence state; presenceMemoryUsage sums MEMORY USAGE over them', async (t) => {
  const site = uniqueSite('layout-keys')
  cleanRedisSite(t, site)
  const clock = createClock(T0)
  const engine = await engineOn(t, site, clock)
  const redis = inspector(t)
  for (let i = 0; i < 50; i += 1) await engine.heartbeat(beat(`contact-${i}`, 'nav'))
  await engine.heartbeat(beat('contact-1', 'hidden'))
  const partitions = sitePartitions(site, P)
  const listed = new Set(presenceKeys(partitions))
  const existing = (await Promise.all(siteKeyPatterns(site).map((pattern) => redis.keys(pattern)))).flat()
  const notListed = existing.filter((key) => !listed.has(key)).sort()
  const used = partitions.filter((keys) => Array.from({ length: 50 }, (_, i) => locate(`contact-${i}`, P).partition).includes(keys.partition))
  const expected = [siteKeys(site).layout, ...used.flatMap((keys) => [keys.events, keys.seq])].sort()
  t.strictSame(notListed, expected, 'everything but the layout, the event streams and the feed counters is listed')
  const present = existing.filter((key) => listed.has(key))
  t.equal(present.length, 2 * used.length + new Set(Array.from({ length: 50 }, (_, i) => siteBucket(`contact-${i}`))).size, 'per partition used the index and the records, one key per used bucket')
  let bytes = 0
  for (const key of present) bytes += Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'))
  t.strictSame(await presenceMemoryUsage(redis, partitions), { bytes, keys: present.length })
  t.equal(listed.size, P * (BUCKETS_PER_PARTITION + 2))
})

t.test('recordPresence decodes what the scripts store: escapes, several tabs, hidden ones; refuses anything else', async (t) => {
  const US = '\x1f'
  const raw = ['c\x1e1x', 'N\x1e0\x1e1', '', '/p q', 'T\x1e', '1800000000000', '1tab-aaaa-0001 0tab-bbbb-0002 1tab-cccc-0003'].join(US)
  t.strictSame(recordPresence('k', raw, undefined), {
    contactId: 'k', clientId: 'c\x1fx', name: 'N\x1e\x1f', company: '', path: '/p q', title: 'T\x1e', state: 'active', since: 1_800_000_000_000, lastSeen: 1_800_000_000_000, tabs: 3,
  })
  t.match(recordPresence('k', ['c', 'n', 'o', 'p', 't', '5', '1tab-aaaa-0001 1tab-bbbb-0002'].join(US), 9), { state: 'idle', tabs: 2, since: 5, lastSeen: 9 })
  t.throws(() => recordPresence('k', '{"c":"client-1"}', undefined), /not a presence record/, 'JSON')
  t.throws(() => recordPresence('k', ['c', 'n', 'o', 'p', 't', '5', '0x', 'extra'].join(US), undefined), /not a presence record/)
})
