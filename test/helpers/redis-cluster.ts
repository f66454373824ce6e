import { Redis } from 'ioredis'
import { loadConfig, type RedisClusterNode } from '../../src/config/config.js'

/**
 * The real Redis Cluster of the tests (3 masters, 3 replicas), started by
 * scripts/test-services.sh; its seed nodes as REDIS_CLUSTER_NODES takes them.
 */
export const REDIS_CLUSTER_NODES = process.env.TEST_REDIS_CLUSTER_NODES
  ?? [7000, 7001, 7002, 7003, 7004, 7005].map((port) => `127.0.0.1:${port}`).join(',')

/**
 * The seed nodes, parsed by the configuration as the server parses them. Every helper below
 * takes the seeds of the cluster it works on, the shared test cluster's by default (a private
 * one's from test/helpers/private-cluster.ts otherwise).
 */
export function clusterSeeds(seeds = REDIS_CLUSTER_NODES): readonly RedisClusterNode[] {
  return loadConfig({ REDIS_CLUSTER_NODES: seeds }).redisClusterNodes as readonly RedisClusterNode[]
}

/** A master and the replicas that follow it, as CLUSTER SLOTS tells. */
export interface ClusterShard {
  /** `host:port` */
  readonly master: string
  readonly replicas: readonly string[]
  /** [first, last] slot ranges it serves. */
  readonly ranges: readonly (readonly [number, number])[]
}

/** A plain connection to one node (`host:port`) with the seeds' credentials, for what a test asks a node itself. */
export function nodeConnection(node: string, seeds = REDIS_CLUSTER_NODES): Redis {
  const seed = clusterSeeds(seeds)[0] as RedisClusterNode
  const cut = node.lastIndexOf(':')
  const redis = new Redis({
    host: node.slice(0, cut), port: Number(node.slice(cut + 1)), username: seed.username, password: seed.password,
    lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 1000, retryStrategy: () => null,
  })
  redis.on('error', () => {})
  return redis
}

/** Runs `fn` on a fresh connection to `node`, then closes it. */
export async function onNode<T>(node: string, fn: (redis: Redis) => Promise<T>, seeds = REDIS_CLUSTER_NODES): Promise<T> {
  const redis = nodeConnection(node, seeds)
  try {
    await redis.connect()
    return await fn(redis)
  } finally {
    redis.disconnect()
  }
}

/** Any node of the seeds that answers. */
async function anyNode(seeds: string): Promise<string> {
  for (const { host, port } of clusterSeeds(seeds)) {
    const node = `${host}:${port}`
    try {
      if ((await onNode(node, (redis) => redis.ping(), seeds)) === 'PONG') return node
    } catch {
      // the next one
    }
  }
  throw new Error(`no node of ${seeds} answers (the shared test cluster: run scripts/test-services.sh cluster)`)
}

/** The shards as the cluster sees them now. */
export async function clusterShards(seeds = REDIS_CLUSTER_NODES): Promise<ClusterShard[]> {
  const slots = await onNode(await anyNode(seeds), (redis) => redis.cluster('SLOTS'), seeds)
  const shards = new Map<string, { master: string; replicas: string[]; ranges: [number, number][] }>()
  for (const [first, last, master, ...replicas] of slots) {
    if (master === undefined) continue
    const key = `${master[0]}:${master[1]}`
    const shard = shards.get(key) ?? { master: key, replicas: replicas.map(([host, port]) => `${host}:${port}`), ranges: [] }
    shard.ranges.push([first, last])
    shards.set(key, shard)
  }
  return [...shards.values()]
}

/** The master serving `slot` now. */
export async function masterOf(slot: number, seeds = REDIS_CLUSTER_NODES): Promise<ClusterShard> {
  const shard = (await clusterShards(seeds)).find((candidate) => candidate.ranges.some(([first, last]) => slot >= first && slot <= last))
  if (shard === undefined) throw new Error(`no master serves slot ${slot}`)
  return shard
}

/** The hash slot of a key or channel. */
export async function slotOf(name: string, seeds = REDIS_CLUSTER_NODES): Promise<number> {
  return Number(await onNode(await anyNode(seeds), (redis) => redis.cluster('KEYSLOT', name), seeds))
}

export interface TagOnMaster {
  /** `{prefix-N}` */
  readonly tag: string
  readonly shard: ClusterShard
}

/**
 * One hash tag per master, `{prefix-N}`, so that a test's keys (and shard channels) named with
 * them land on every master of the cluster; in the order of `clusterShards()`.
 */
export async function tagsOnEveryMaster(prefix: string, seeds = REDIS_CLUSTER_NODES): Promise<[TagOnMaster, TagOnMaster, TagOnMaster]> {
  const shards = await clusterShards(seeds)
  const found = new Map<string, string>()
  for (let i = 0; found.size < shards.length; i += 1) {
    if (i > 1000) throw new Error('no hash tag found for every master')
    const tag = `{${prefix}-${i}}`
    const slot = await slotOf(tag, seeds)
    const shard = shards.find((candidate) => candidate.ranges.some(([first, last]) => slot >= first && slot <= last))
    if (shard !== undefined && !found.has(shard.master)) found.set(shard.master, tag)
  }
  if (shards.length !== 3) throw new Error(`the test cluster has ${shards.length} masters, not 3`)
  return shards.map((shard) => ({ tag: found.get(shard.master) as string, shard })) as [TagOnMaster, TagOnMaster, TagOnMaster]
}

/** Waits until every node of the seeds says cluster_state:ok and every node agrees on the masters. */
export async function clusterSettled(ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    const states = await Promise.all(clusterSeeds().map(({ host, port }) =>
      onNode(`${host}:${port}`, async (redis) => String(await redis.cluster('INFO'))).catch(() => ''),
    ))
    if (states.every((info) => /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info) && /cluster_size:3/.test(info))) return
    if (Date.now() > deadline) throw new Error(`the cluster is not ok within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * Moves one slot, with its keys, to another master (CLUSTER SETSLOT IMPORTING/MIGRATING,
 * MIGRATE, SETSLOT NODE): what resharding does, one slot at a time. Keys go over in batches of
 * `batch` (redis-cli's --cluster-pipeline, 10 by default there); a small batch keeps the slot
 * half-moved over more of a load's requests.
 */
export async function moveSlot(slot: number, to: string, seeds = REDIS_CLUSTER_NODES, batch = 100): Promise<void> {
  const from = (await masterOf(slot, seeds)).master
  if (from === to) return
  const idOf = async (node: string): Promise<string> => String(await onNode(node, (redis) => redis.cluster('MYID'), seeds))
  const [fromId, toId] = [await idOf(from), await idOf(to)]
  await onNode(to, (redis) => redis.cluster('SETSLOT', slot, 'IMPORTING', fromId), seeds)
  await onNode(from, async (redis) => {
    await redis.cluster('SETSLOT', slot, 'MIGRATING', toId)
    const cut = to.lastIndexOf(':')
    for (;;) {
      const keys = (await redis.cluster('GETKEYSINSLOT', slot, batch)) as string[]
      if (keys.length === 0) break
      await redis.call('MIGRATE', to.slice(0, cut), to.slice(cut + 1), '', 0, 5000, 'KEYS', ...keys)
    }
  }, seeds)
  // The new owner first, then the old one, then the others: the order redis-cli uses.
  const others = (await clusterShards(seeds)).map((shard) => shard.master).filter((node) => node !== from && node !== to)
  for (const node of [to, from, ...others]) await onNode(node, (redis) => redis.cluster('SETSLOT', slot, 'NODE', toId), seeds)
  const deadline = Date.now() + 10_000
  while ((await masterOf(slot, seeds)).master !== to) {
    if (Date.now() > deadline) throw new Error(`slot ${slot} is not served by ${to} within 10 s`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * Deletes a site's keys from every master of the cluster when the test ends (the site is
 * unique to the test, so any key naming it is the test's).
 */
export function cleanClusterSite(t: { teardown(fn: () => Promise<void>): void }, site: string, seeds = REDIS_CLUSTER_NODES): void {
  t.teardown(async () => {
    for (const { master } of await clusterShards(seeds)) {
      await onNode(master, async (redis) => {
        const keys = await redis.keys(`cat:*${site}*`)
        for (const key of keys) await redis.unlink(key)
      }, seeds)
    }
  })
}
