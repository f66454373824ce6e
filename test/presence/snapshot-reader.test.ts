import t from 'tap'
import { buildTestApp, cleanRedisSite, uniqueSite } from '../helpers/app.js'
import type { RedisPresenceEngine } from '../../src/presence/redis/redis-presence-engine.js'
import { locate } from '../../src/presence/redis/keys.js'
import { readSnapshotParts, snapshotPartOf } from '../../src/presence/redis/snapshot-reader.js'
import { startRedisServer } from '../helpers/redis-server.js'

const CONTACTS = 2000

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

  // The tabs read as the engine's script reads them (the position and each bucket's tabs at
  // once), but the read of the contacts' bucket is followed by a change of their partition
  // before its tabs are handed back.
  const tabs = async (partKeys: typeof keys, buckets: readonly string[]): Promise<{ position: number; tabs: Buffer[][] }> => {
    const tx = engine.redis.multi().get(partKeys.seq)
    for (const b of buckets) tx.zrangeBuffer(b, 0, -1, 'WITHSCORES')
    const replies = ((await tx.exec()) ?? []).map(([error, reply]) => {
      if (error) throw error
      return reply
    })
    if (buckets.includes(bucket)) await engine.redis.incr(keys.seq)
    const [position, ...read] = replies as [string | null, ...Buffer[][]]
    return { position: Number(position ?? 0), tabs: read }
  }
  const reader = readSnapshotParts({ redis: engine.redis, partitions: engine.partitions, call: (read) => read(), tabs, presenceTimeoutMs: 75_000, idleTimeoutMs: 600_000, readUpTo: () => {} })
  const seen: string[] = []
  for await (const part of reader.parts) for (const presence of part.presences()) seen.push(presence.contactId)
  t.strictSame(seen, [online], 'the contact with a tab is in the snapshot')
  t.equal(reader.position(online), before + 1, 'its changes up to the records\' read are in it')
  t.equal(reader.position(away), before, 'the changes of one without tabs are in it up to the tabs\' read only')
})
