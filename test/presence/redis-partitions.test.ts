/**
 * A site's presence in partitions (src/presence/redis/keys.ts, layout.ts): the tags spread the
 * partitions evenly over a cluster's masters, every key of a partition lies in one slot, and an
 * instance whose partition count is not the site's refuses to start. Real Redis and the real
 * test Redis Cluster.
 */
import t from 'tap'
import { REDIS_URL, cleanRedisSite, createClock, uniqueSite } from '../helpers/app.js'
import { REDIS_CLUSTER_NODES, clusterSeeds, clusterShards, slotOf } from '../helpers/redis-cluster.js'
import { BUCKETS_PER_PARTITION, DEFAULT_PARTITIONS, keySlot, partitionKeys, siteKeys, sitePartitions } from '../../src/presence/redis/keys.js'
import { LayoutMismatchError } from '../../src/presence/redis/layout.js'
import { openRedisState } from '../../src/shared-state.js'

const timings = { presenceTimeoutMs: 75_000, idleTimeoutMs: 600_000, gapAfterMs: 40_000 }

t.test('keySlot is Redis Cluster\'s own slot of a key, hash tags included', async (t) => {
  const names = ['foo', '{user1000}.following', 'a{}b', '{}{x}', 'x{y', `cat:{${uniqueSite('slot')}:3:1}:contacts`, 'Zoë ☕', '{a}{b}']
  for (const name of names) t.equal(keySlot(name), await slotOf(name), name)
})

t.test('every key of a partition shares its slot; the tags of a site put its partitions in the middle of their share of the slots', async (t) => {
  for (const site of ['default', 'portal-eu', 'x', 'A.b_c-9']) {
    const partitions = sitePartitions(site, DEFAULT_PARTITIONS)
    const share = 16384 / DEFAULT_PARTITIONS
    for (const keys of partitions) {
      const slot = keySlot(keys.records)
      const own = [keys.due, keys.events, keys.seq, keys.feedChannel, keys.bucket(0), keys.bucket(BUCKETS_PER_PARTITION - 1)].map(keySlot)
      if (!own.every((s) => s === slot)) t.fail(`${site} partition ${keys.partition}: keys in several slots`)
      const offset = slot - keys.partition * share
      if (offset < share / 4 || offset >= (3 * share) / 4) t.fail(`${site} partition ${keys.partition}: slot ${slot} not in the middle half of its share`)
    }
    t.equal(new Set(partitions.map((keys) => keys.tag)).size, DEFAULT_PARTITIONS, `${site}: a tag per partition`)
  }
  t.not(partitionKeys('a', 0, 24).tag, partitionKeys('b', 0, 24).tag, 'sites have tags of their own')
})

t.test('on the test cluster, each of its 3 masters serves 8 of the 24 partitions of any site', async (t) => {
  const shards = await clusterShards(REDIS_CLUSTER_NODES)
  t.equal(shards.length, 3)
  for (const site of ['default', uniqueSite('spread')]) {
    const perMaster = shards.map((shard) => sitePartitions(site, DEFAULT_PARTITIONS).filter((keys) => shard.ranges.some(([first, last]) => keySlot(keys.records) >= first && keySlot(keys.records) <= last)).length)
    t.strictSame(perMaster, [8, 8, 8], `${site}: partitions per master`)
  }
})

t.test('an instance whose partition count is not the site\'s refuses to start, naming both', async (t) => {
  const site = uniqueSite('layout-refuse')
  cleanRedisSite(t, site)
  const clock = createClock(Date.now())
  const first = await openRedisState({ url: REDIS_URL, site, now: clock.now, partitions: 24, ...timings })
  t.teardown(() => first.close())
  const same = await openRedisState({ url: REDIS_URL, site, now: clock.now, partitions: 24, ...timings })
  await same.close()
  t.pass('a second instance with the same count starts')
  const error = await openRedisState({ url: REDIS_URL, site, now: clock.now, partitions: 16, ...timings }).then(
    async (state) => {
      await state.close()
      return undefined
    },
    (caught: unknown) => caught,
  )
  t.type(error, LayoutMismatchError)
  t.match((error as Error).message, /24 partitions of 512 buckets.*16 partitions of 512 buckets.*CAT_REDIS_PARTITIONS/, 'the message names the site\'s layout and this instance\'s')
  t.notMatch((error as Error).message, /\n/, 'on one line')
})

t.test('the same on a cluster, whose layout key lies on one of its masters', async (t) => {
  const site = uniqueSite('layout-refuse-cluster')
  const clock = createClock(Date.now())
  const clusterNodes = clusterSeeds(REDIS_CLUSTER_NODES)
  const first = await openRedisState({ clusterNodes, site, now: clock.now, partitions: 12, ...timings })
  t.teardown(async () => {
    await first.presence.redis.del(siteKeys(site).layout)
    await first.close()
  })
  await t.rejects(openRedisState({ clusterNodes, site, now: clock.now, partitions: 24, ...timings }), { name: 'LayoutMismatchError', message: /12 partitions.*24 partitions/ })
})
