/**
 * The connections on a real Redis Cluster (3 masters, 3 replicas; scripts/test-services.sh
 * starts the shared one): commands routed to every master, sharded pub/sub across masters, and
 * what a subscriber sees when its connection to a master drops; on a private cluster, when its
 * channel's slot moves or its master is killed. Keys and channels carry this file's own hash tags.
 */
import t, { type Test } from 'tap'
import { Cluster } from 'ioredis'
import { openRedisConnections, type RedisConnections } from '../../src/presence/redis/connections.js'
import { timedOut } from '../../src/presence/redis/availability.js'
import { AppError } from '../../src/errors/errors.js'
import { REDIS_URL, uniqueSite, until } from '../helpers/app.js'
import { clusterSeeds, clusterSettled, moveSlot, onNode, slotOf, tagsOnEveryMaster } from '../helpers/redis-cluster.js'
import { startPrivateCluster } from '../helpers/private-cluster.js'

const prefix = uniqueSite('cluster-conn')
/** Connections to a cluster from its REDIS_CLUSTER_NODES seeds (the shared test cluster's by default), closed when `t` ends. */
async function open(t: Test, label: string, options: { commandTimeoutMs?: number; seeds?: string } = {}): Promise<RedisConnections> {
  const { commandTimeoutMs = 1000, seeds } = options
  const connections = await openRedisConnections({ clusterNodes: clusterSeeds(seeds), connectionName: `${prefix}-${label}`, commandTimeoutMs })
  t.teardown(() => connections.close())
  return connections
}

/** Connection ids on `node` whose CLIENT LIST name is `name`. */
async function clientIds(node: string, name: string): Promise<string[]> {
  const list = String(await onNode(node, (redis) => redis.client('LIST')))
  return list.split('\n').filter((line) => line.includes(` name=${name} `)).map((line) => /^id=(\d+)/.exec(line)?.[1] as string)
}

/** The messages `connections` hands to the listeners made by `handler`, by channel. */
function collect(): { messages: Map<string, string[]>; handler(channel: string): (text: string) => void } {
  const messages = new Map<string, string[]>()
  return {
    messages,
    handler: (channel) => (text) => messages.set(channel, [...(messages.get(channel) ?? []), text]),
  }
}

t.before(async () => {
  await clusterSettled()
})

t.test('REDIS_CLUSTER_NODES seeds open a cluster whose commands reach every master', async (t) => {
  const connections = await open(t, 'commands')
  t.equal(connections.kind, 'cluster')
  t.ok(connections.redis instanceof Cluster, 'the command client is an ioredis Cluster')
  t.equal(connections.shardedPubSub, true, 'sharded channels are published with SPUBLISH here')

  const tags = await tagsOnEveryMaster(`${prefix}-cmd`)
  t.equal(new Set(tags.map(({ shard }) => shard.master)).size, 3, 'one tag on each of the three masters')
  for (const { tag, shard } of tags) {
    const key = `${tag}:value`
    t.equal(await connections.call(() => connections.redis.set(key, shard.master, 'EX', 60)), 'OK')
    // Several keys of one tag in one command (a script's keys are so): one slot, one master.
    t.equal(await connections.call(() => connections.redis.mset(`${tag}:a`, '1', `${tag}:b`, '2')), 'OK')
    t.same(await connections.call(() => connections.redis.mget(`${tag}:a`, `${tag}:b`)), ['1', '2'])
    t.equal(await connections.call(() => connections.redis.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, `${tag}:n`, 5)), 5, 'a script on the master of its key')
    // The master itself holds it: no redirection involved.
    t.equal(await onNode(shard.master, (redis) => redis.get(key)), shard.master, `${key} lives on ${shard.master}`)
    await connections.redis.del(key, `${tag}:a`, `${tag}:b`, `${tag}:n`)
  }
})

t.test('a sharded publish reaches the sharded subscriber of channels on different masters', async (t) => {
  const subscriber = await open(t, 'sub')
  const publisher = await open(t, 'pub')
  const tags = await tagsOnEveryMaster(`${prefix}-chan`)
  const { messages, handler } = collect()
  for (const { tag } of tags) await subscriber.subscribe(`${tag}:feed`, handler(`${tag}:feed`), { sharded: true })
  const classic = `${prefix}-classic`
  await subscriber.subscribe(classic, handler(classic))

  for (const { tag, shard } of tags) {
    const channel = `${tag}:feed`
    // SSUBSCRIBE on the master of the channel's slot, not SUBSCRIBE anywhere.
    const [, shardSubscribers] = (await onNode(shard.master, (redis) => redis.call('PUBSUB', 'SHARDNUMSUB', channel))) as [string, number]
    t.equal(shardSubscribers, 1, `${channel}: one shard subscriber on its master ${shard.master}`)
    t.equal(await publisher.publish(channel, `to ${shard.master}`, { sharded: true }), 1, 'SPUBLISH counts the subscriber')
  }
  // PUBLISH counts the receivers of the node it reached only; the message crosses the cluster bus.
  await publisher.publish(classic, 'to everyone')
  await until('every message arrives', () => (tags.every(({ tag }) => messages.has(`${tag}:feed`)) && messages.has(classic) ? true : undefined), 5000)
  for (const { tag, shard } of tags) t.same(messages.get(`${tag}:feed`), [`to ${shard.master}`], `${tag}:feed got its own message only`)
  t.same(messages.get(classic), ['to everyone'])
  t.equal(subscriber.interrupted, false)
})

t.test('a dropped subscriber connection interrupts, and its channels are subscribed again', async (t) => {
  const subscriber = await open(t, 'drop')
  const publisher = await open(t, 'drop-pub')
  const [{ tag, shard }, other] = await tagsOnEveryMaster(`${prefix}-drop`)
  const channel = `${tag}:feed`
  const otherChannel = `${other.tag}:feed`
  const { messages, handler } = collect()
  await subscriber.subscribe(channel, handler(channel), { sharded: true })
  await subscriber.subscribe(otherChannel, handler(otherChannel), { sharded: true })
  let resubscribed = 0
  subscriber.onResubscribed(() => {
    resubscribed += 1
  })

  const ids = await clientIds(shard.master, subscriber.subscriberName)
  t.equal(ids.length, 1, `one subscriber connection on ${shard.master}`)
  // The master then sleeps half a second, so the subscription stays away long enough to be seen away.
  await onNode(shard.master, (redis) => redis.pipeline().client('KILL', 'ID', ids[0] as string).call('DEBUG', 'SLEEP', '0.5').exec())
  await until('interrupted', () => (subscriber.interrupted ? true : undefined), 5000)
  await until('resubscribed', () => (resubscribed > 0 ? true : undefined), 10_000)
  t.equal(resubscribed, 1, 'onResubscribed fires once')
  t.equal(subscriber.interrupted, false, 'not interrupted once the channels are back')

  t.equal(await publisher.publish(channel, 'after', { sharded: true }), 1, 'the channel has its subscriber again')
  await publisher.publish(otherChannel, 'untouched', { sharded: true })
  await until('both arrive', () => (messages.has(channel) && messages.has(otherChannel) ? true : undefined), 5000)
  t.same(messages.get(channel), ['after'])
  t.same(messages.get(otherChannel), ['untouched'], 'the channel on another master was not disturbed')
})

t.test('on a cluster of its own: a slot that moves, a master that dies', async (t) => {
  // Moving slots and killing a master would disturb the other test files on the shared cluster.
  const cluster = await startPrivateCluster(t)
  const seeds = cluster.seeds

  t.test('a channel whose slot moves to another master interrupts, and is subscribed again on its new master', async (t) => {
    const subscriber = await open(t, 'moved', { seeds })
    const publisher = await open(t, 'moved-pub', { seeds })
    const [{ tag, shard }, { shard: target }] = await tagsOnEveryMaster(`${prefix}-moved`, seeds)
    const channel = `${tag}:feed`
    const { messages, handler } = collect()
    await subscriber.subscribe(channel, handler(channel), { sharded: true })
    let resubscribed = 0
    subscriber.onResubscribed(() => {
      resubscribed += 1
    })

    await moveSlot(await slotOf(channel, seeds), target.master, seeds)
    await until('interrupted and resubscribed', () => (resubscribed > 0 ? true : undefined), 10_000)
    t.equal(resubscribed, 1, 'onResubscribed fires once')
    t.equal(subscriber.interrupted, false)
    const shardSubscribers = async (node: string): Promise<number> =>
      ((await cluster.onNode(node, (redis) => redis.call('PUBSUB', 'SHARDNUMSUB', channel))) as [string, number])[1]
    t.equal(await shardSubscribers(target.master), 1, `subscribed again on the new master ${target.master}`)
    t.equal(await shardSubscribers(shard.master), 0, `no longer on the old master ${shard.master}`)
    t.equal(await publisher.publish(channel, 'after the move', { sharded: true }), 1, 'the publisher follows the MOVED to the new master')
    await until('the message arrives', () => (messages.has(channel) ? true : undefined), 5000)
    t.same(messages.get(channel), ['after the move'])
  })

  t.test('a killed master: its commands get 503 until its replica takes over, and its channels follow', async (t) => {
    await cluster.settled({ replicas: true })
    const subscriber = await open(t, 'killed', { seeds, commandTimeoutMs: 500 })
    const commands = await open(t, 'killed-cmd', { seeds, commandTimeoutMs: 500 })
    const [{ tag, shard }, other] = await tagsOnEveryMaster(`${prefix}-killed`, seeds)
    const channel = `${tag}:feed`
    const key = `${tag}:k`
    const otherKey = `${other.tag}:k`
    const { messages, handler } = collect()
    await subscriber.subscribe(channel, handler(channel), { sharded: true })
    let resubscribed = 0
    subscriber.onResubscribed(() => {
      resubscribed += 1
    })
    const replica = await cluster.replicaOf(shard.master)

    await cluster.kill(shard.master)
    await until('interrupted', () => (subscriber.interrupted ? true : undefined), 5000)
    // Until the replica takes over, its master's slots answer nothing: 503, never a 500.
    const failed = await commands.call(() => commands.redis.set(key, 'during')).then(() => undefined, (error: unknown) => error)
    t.ok(failed instanceof AppError && failed.code === 'unavailable', `a command on the dead master's slots is a 503 (${String((failed as AppError | undefined)?.cause)})`)
    t.ok(timedOut((failed as AppError).cause), 'recognised as Redis unavailable, so what is queued behind it fails at once')
    t.equal(await commands.call(() => commands.redis.set(otherKey, 'fine')), 'OK', 'the other masters answer meanwhile')

    await until(`${replica} takes over`, async () => ((await cluster.masterOf(await slotOf(channel, seeds))) === replica ? true : undefined), 30_000)
    await until('resubscribed', () => (resubscribed > 0 ? true : undefined), 30_000)
    t.equal(resubscribed, 1, 'onResubscribed fires once')
    t.equal(subscriber.interrupted, false)
    await until('commands on its slots answer again', () => commands.call(() => commands.redis.set(key, 'after')).then(() => true, () => undefined), 30_000)
    t.equal(await commands.redis.get(key), 'after')
    await commands.publish(channel, 'after the failover', { sharded: true })
    await until('the message arrives', () => (messages.has(channel) ? true : undefined), 5000)
    t.same(messages.get(channel), ['after the failover'], `subscribed on the new master ${replica}`)
  })
})

t.test('a frozen master fails its commands within the command timeout; the other masters answer', async (t) => {
  const connections = await open(t, 'frozen', { commandTimeoutMs: 250 })
  const [frozen, healthy] = await tagsOnEveryMaster(`${prefix}-frozen`)
  const frozenKey = `${frozen.tag}:k`
  const healthyKey = `${healthy.tag}:k`
  await connections.redis.set(frozenKey, '1', 'EX', 60)
  await connections.redis.set(healthyKey, '1', 'EX', 60)

  // DEBUG SLEEP holds the node for far less than the cluster's node timeout (no failover), and
  // less than the default command timeout of other test files using the cluster.
  const sleeping = onNode(frozen.shard.master, (redis) => redis.call('DEBUG', 'SLEEP', '0.8'))
  await new Promise((resolve) => setTimeout(resolve, 100))
  const started = Date.now()
  const error = await connections.call(() => connections.redis.get(frozenKey)).then(() => undefined, (caught: unknown) => caught)
  const tookMs = Date.now() - started
  t.ok(error instanceof AppError && error.code === 'unavailable', 'the call fails as unavailable (503)')
  t.ok(error instanceof AppError && timedOut(error.cause), 'its cause is a timeout')
  t.ok(tookMs < 600, `within the command timeout, not the 0.8 s sleep (${tookMs} ms)`)
  t.equal(await connections.call(() => connections.redis.get(healthyKey)), '1', 'another master answers meanwhile')
  await sleeping
  t.equal(await connections.call(() => connections.redis.get(frozenKey)), '1', 'it answers again after the sleep')
  await connections.redis.del(frozenKey)
  await connections.redis.del(healthyKey)
})

t.test('open() gives a Cluster client of its own, for blocking reads', async (t) => {
  const connections = await open(t, 'reader')
  const reader = await connections.open('writer')
  t.ok(reader instanceof Cluster)
  const [{ tag }] = await tagsOnEveryMaster(`${prefix}-reader`)
  const stream = `${tag}:events`
  const waiting = reader.xread('BLOCK', 5000, 'STREAMS', stream, '$')
  await new Promise((resolve) => setTimeout(resolve, 100))
  // The command client is not held by the blocking read.
  const id = await connections.call(() => connections.redis.xadd(stream, '*', 'k', 'v'))
  const read = await waiting
  t.equal(read?.[0]?.[1][0]?.[0], id, 'the blocking read gets the entry added meanwhile')
  await connections.redis.del(stream)
})

t.test("the cluster's failover errors count as Redis unavailable", async (t) => {
  for (const message of [
    'CLUSTERDOWN The cluster is down',
    'CLUSTERDOWN Hash slot not served',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'Too many Cluster redirections. Last error: ReplyError: MOVED 866 127.0.0.1:7001',
    'MOVED 866 127.0.0.1:7001',
    'Failed to refresh slots cache.',
    "Cluster isn't ready and enableOfflineQueue options is false",
    'None of startup nodes is available',
    'Connection is closed.',
    'Command timed out',
  ]) {
    t.ok(timedOut(new Error(message)), message)
  }
  for (const message of ['ERR wrong number of arguments for command', 'NOSCRIPT No matching script', 'WRONGTYPE Operation against a key holding the wrong kind of value']) {
    t.notOk(timedOut(new Error(message)), `not: ${message}`)
  }

  // A cluster that is not connected: the call fails at once as unavailable, no offline queue.
  const connections = await open(t, 'closed')
  await connections.close()
  const error = await connections.call(() => connections.redis.get(`{${prefix}-closed}:k`)).then(() => undefined, (caught: unknown) => caught)
  t.ok(error instanceof AppError && error.code === 'unavailable', 'a command on a closed cluster is a 503')
  t.ok(timedOut((error as AppError).cause), `and is recognised: ${String((error as AppError).cause)}`)
})

t.test('seeds that nobody answers stop the start', async (t) => {
  const started = Date.now()
  await t.rejects(openRedisConnections({ clusterNodes: [{ host: '127.0.0.1', port: 1, tls: false, username: undefined, password: undefined }], connectionName: `${prefix}-nobody` }))
  t.ok(Date.now() - started < 5000, 'at once, not after retrying forever')
})

t.test('on one Redis a shard channel is an ordinary one: SUBSCRIBE and PUBLISH', async (t) => {
  const connections = await openRedisConnections({ url: REDIS_URL, connectionName: `${prefix}-single` })
  t.teardown(() => connections.close())
  t.equal(connections.kind, 'single')
  t.equal(connections.shardedPubSub, false)
  const channel = `${prefix}-single-channel`
  const received: string[] = []
  await connections.subscribe(channel, (text) => received.push(text), { sharded: true })
  const [, subscribers] = (await connections.redis.call('PUBSUB', 'NUMSUB', channel)) as [string, number]
  t.equal(subscribers, 1, 'an ordinary subscription')
  t.equal(await connections.publish(channel, 'hello', { sharded: true }), 1, 'published with PUBLISH')
  await until('the message arrives', () => (received.length > 0 ? true : undefined), 5000)
  t.same(received, ['hello'])
})
