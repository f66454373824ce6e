import { readFileSync } from 'node:fs'
import t from 'tap'
import { Redis } from 'ioredis'
import { REDIS_URL, buildTestApp, cleanRedisSite, uniqueSite } from '../helpers/app.js'
import { bucketContacts, tabMember } from '../../src/presence/redis/records.js'
import type { RedisPresenceEngine } from '../../src/presence/redis/redis-presence-engine.js'
import { locate } from '../../src/presence/redis/keys.js'
import { readSnapshotParts, snapshotPartOf } from '../../src/presence/redis/snapshot-reader.js'
import { startRedisServer } from '../helpers/redis-server.js'

const CONTACTS = 2000
/** The engine's snapshot script, called as it is by the tests that stand between its reply and the reader. */
const SNAPSHOT_SCRIPT = readFileSync(new URL('../../src/presence/redis/lua/snapshot.lua', import.meta.url), 'utf8')

t.test('Redis answers no part of a snapshot for longer than the command timeout while it is read: the parts come whole, every contact once', async (t) => {
  const server = await startRedisServer(t)
  const app = await buildTestApp(t, { site: uniqueSite('snapshot-stall'), env: { REDIS_URL: server.url, CAT_REDIS_TIMEOUT_MS: '100' } })
  for (let i = 0; i < CONTACTS; i += 200) {
    await Promise.all(Array.from({ length: 200 }, (_, k) => {
      const j = i + k
      return app.presence.heartbeat({ contactId: `c${j}`, clientId: `client${j % 7}`, name: `Contact ${j}`, company: 'Acme', sid: `tab${j}`, path: '/tickets', title: 'Tickets', event: 'nav' })
    }))
  }

  const reader = app.presence.snapshotParts()
  const seen: string[] = []
  let frozen = false
  // After the first part the next ones are on their way: Redis stops answering for four
  // command timeouts, then answers again.
  for await (const part of reader.parts) {
    for (const presence of part.presences()) seen.push(presence.contactId)
    if (!frozen) {
      frozen = true
      server.freeze()
      setTimeout(() => server.thaw(), 400)
    }
  }
  t.ok(frozen, 'Redis stood still during the read')
  t.equal(seen.length, CONTACTS, 'every contact is in the parts')
  t.equal(new Set(seen).size, CONTACTS, 'each of them once')
})

t.test('a change between the read of a part\'s tabs and of its records: a contact that had tabs is at the records\' position, one that had none at the tabs\'', async (t) => {
  const site = uniqueSite('snapshot-positions')
  cleanRedisSite(t, site)
  const app = await buildTestApp(t, { site })
  const engine = app.presence as RedisPresenceEngine
  const count = engine.partitions.length
  // Two contacts of one part: `online` has a tab, `away` none.
  const online = 'pos-online'
  let away = ''
  for (let i = 0; away === ''; i += 1) if (snapshotPartOf(`pos-away-${i}`, count) === snapshotPartOf(online, count)) away = `pos-away-${i}`
  await app.presence.heartbeat({ contactId: online, clientId: 'client1', name: 'On', company: 'Acme', sid: 'tab1', path: '/', title: 'Home', event: 'nav' })
  const keys = engine.partitionOf(online)
  const bucket = keys.bucket(locate(online, count).bucket)
  const before = Number(await engine.redis.get(keys.seq))

  // The tabs read by the engine's script (the position and each bucket's tabs at once), but
  // the read of the contacts' bucket is followed by a change of their partition before its
  // tabs are handed back.
  const tabs = async (partKeys: typeof keys, buckets: readonly string[]): Promise<{ position: number; tabs: Buffer[] }> => {
    const [position, ...read] = (await engine.redis.callBuffer('EVAL', SNAPSHOT_SCRIPT, 1 + buckets.length, partKeys.seq, ...buckets)) as [Buffer, ...Buffer[]]
    if (buckets.includes(bucket)) await engine.redis.incr(keys.seq)
    return { position: Number(position.toString()), tabs: read }
  }
  const reader = readSnapshotParts({ redis: engine.redis, partitions: engine.partitions, call: (read) => read(), tabs, presenceTimeoutMs: 75_000, idleTimeoutMs: 600_000, readUpTo: () => {} })
  const seen: string[] = []
  for await (const part of reader.parts) for (const presence of part.presences()) seen.push(presence.contactId)
  t.strictSame(seen, [online], 'the contact with a tab is in the snapshot')
  t.equal(reader.position(online), before + 1, 'its changes up to the records\' read are in it')
  t.equal(reader.position(away), before, 'the changes of one without tabs are in it up to the tabs\' read only')
})

t.test("a bucket's tabs as the snapshot script joins them: each contact once, with its latest tab's heartbeat, whatever its id holds", async (t) => {
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.disconnect())
  const key = `cat:{${uniqueSite('bucket-tabs')}}:t:0`
  t.teardown(() => redis.del(key))
  const timeouts = { presenceTimeoutMs: 75_000, idleTimeoutMs: 600_000 }
  const read = async (): Promise<{ ids: string[]; lastSeen: number[] }> => {
    const [, tabs] = (await redis.callBuffer('EVAL', SNAPSHOT_SCRIPT, 2, `${key}:seq`, key)) as [Buffer, Buffer]
    const ids: string[] = []
    const lastSeen: number[] = []
    bucketContacts(tabs, timeouts, ids, lastSeen)
    return { ids, lastSeen }
  }
  t.strictSame(await read(), { ids: [], lastSeen: [] }, 'an empty bucket has no contacts')
  // Scores in order: a (visible 1 000 000, hidden 2 000 000), b|c (with a `|` in its id),
  // an id in three scripts and an emoji, then a again with a later visible tab.
  await redis.zadd(key, 1_075_000, tabMember('a', 'tab1', false), 2_600_000, tabMember('a', 'tab2', true), 3_075_000, tabMember('b|c', 'tab3', false), 4_600_000, tabMember('Zoë 山田 🙂', 'tab4', true), 5_075_000, tabMember('a', 'tab5', false))
  t.strictSame(await read(), { ids: ['a', 'b|c', 'Zoë 山田 🙂'], lastSeen: [5_000_000, 3_000_000, 4_000_000] }, 'ids whole, hidden tabs by the idle timeout, a contact\'s latest tab')
  // A score past 15 digits and one with a fraction are read as numbers all the same.
  await redis.del(key)
  await redis.zadd(key, 1_234_567_890_123_456, tabMember('d', 'tab6', false), 75_000.5, tabMember('e', 'tab7', false))
  t.strictSame(await read(), { ids: ['e', 'd'], lastSeen: [0.5, 1_234_567_890_048_456] }, 'long and fractional scores')
  t.throws(() => bucketContacts(Buffer.from('a|tab1'), timeouts, [], []), /a bucket's tabs end in a member: "a\|tab1"/, 'a member without its score is an error that names it')
})
