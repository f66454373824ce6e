import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { RedisClusterNode } from '../../config/config.js'
import { createRedisCall, type RedisCall } from './availability.js'
import { createReplicaWait, type ReplicaWait } from './replica-wait.js'

/** A command client: one Redis, or a Redis Cluster (which routes each command by its keys' slot). */
export type RedisClient = Redis | Cluster

/** Options of a connection opened with `open()`, good for one Redis and for the nodes of a cluster. */
export type ConnectionOptions = NonNullable<ClusterOptions['redisOptions']>

interface CommonConnectionOptions {
  /** Names the connections in CLIENT LIST, e.g. the instance id. */
  connectionName?: string
  /**
   * ms a command may go unanswered before it fails (and the request with it: 503): a Redis
   * that hangs (frozen, swapping, a script running long) is then as unavailable as one that is
   * gone. Default 1000.
   */
  commandTimeoutMs?: number
  /**
   * Replicas a script call that appends activity events waits for (WAIT), for at most a tenth
   * of `commandTimeoutMs`; 0 for none. Default 0.
   */
  waitReplicas?: number
  /** Where the changes of Redis's state (unavailable, available again) are logged. */
  log?: Pick<FastifyBaseLogger, 'info' | 'warn'>
}

/** One Redis (`url`, REDIS_URL) or a Redis Cluster (`clusterNodes`, REDIS_CLUSTER_NODES). */
export type RedisConnectionOptions = CommonConnectionOptions & ({ url: string; clusterNodes?: undefined } | { clusterNodes: readonly RedisClusterNode[]; url?: undefined })

export interface SubscribeOptions {
  /**
   * A shard channel: on a cluster it is subscribed with SSUBSCRIBE on the master that owns the
   * channel's slot, and must be published with SPUBLISH (`shardedPubSub`), so its messages stay
   * on that shard instead of crossing the whole cluster bus. On a single Redis it is an ordinary
   * channel (SUBSCRIBE, PUBLISH). Default false: SUBSCRIBE and PUBLISH everywhere.
   */
  sharded?: boolean
}

/**
 * The connections an instance holds to Redis, opened once and shared by the presence engine,
 * the event log and the consent bus: one for commands, subscribers whose messages go to the
 * handler of their channel, and the event log's readers, opened on demand.
 */
export interface RedisConnections {
  /** One Redis (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES). */
  readonly kind: 'single' | 'cluster'
  /** Names this instance's connections and its consent notices. */
  readonly name: string
  readonly commandTimeoutMs: number
  /** The command client: a `Redis`, or a `Cluster` routing each command to the master of its keys' slot. */
  readonly redis: RedisClient
  /** The subscriber connections' name in CLIENT LIST (on a cluster, of each node's subscriber). */
  readonly subscriberName: string
  /**
   * Whether a channel subscribed with `{ sharded: true }` is published with SPUBLISH (true: on a
   * cluster) or PUBLISH (false: one Redis); a Lua script that publishes needs to know.
   */
  readonly shardedPubSub: boolean
  /** Every request's call to Redis goes through this (503 when Redis is unavailable). */
  readonly call: RedisCall
  /** The script calls that append activity events go through this: WAIT for the replicas behind them. */
  readonly replicaWait: ReplicaWait
  /** Subscribes to a channel, its messages handed to `onMessage`. */
  subscribe(channel: string, onMessage: (text: string) => void, options?: SubscribeOptions): Promise<void>
  /** Publishes on a channel as `subscribe` with the same options listens to it; resolves with the receivers counted by Redis. */
  publish(channel: string, message: string, options?: SubscribeOptions): Promise<number>
  /**
   * A subscription is not in place and is not back yet: what is published meanwhile is lost.
   * On one Redis: the subscriber connection dropped. On a cluster: a node's subscriber
   * connection dropped, or a sharded channel's slot moved to another master (failover, resharding).
   */
  readonly interrupted: boolean
  /** Called when every subscription is back after an interruption: what was published meanwhile is lost. */
  onResubscribed(listener: () => void): void
  /** A connection of its own (closed with the others), e.g. for a blocking read; a `Cluster` on a cluster. */
  open(suffix: string, options?: ConnectionOptions): Promise<RedisClient>
  close(): Promise<void>
}

/** The subscriber side, one Redis or a cluster: hands messages to `onMessage`, reports interruptions. */
interface Subscriber {
  connect(): Promise<void>
  subscribe(channel: string, sharded: boolean): Promise<void>
  close(): Promise<void>
}

interface SubscriberEvents {
  onMessage(channel: string, text: string): void
  /** A subscription is lost (a connection dropped, a slot moved). */
  onInterrupted(): void
  /** Every subscription is in place again. */
  onRestored(): void
}

export async function openRedisConnections(options: RedisConnectionOptions): Promise<RedisConnections> {
  const { commandTimeoutMs = 1000 } = options
  const name = options.connectionName ?? `cat-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  const subscriberName = `${name}:sub`
  const cluster = options.clusterNodes === undefined ? undefined : clusterSettings(options.clusterNodes)

  const handlers = new Map<string, (text: string) => void>()
  const resubscribed: (() => void)[] = []
  let interrupted = false
  const events: SubscriberEvents = {
    onMessage: (channel, text) => handlers.get(channel)?.(text),
    onInterrupted: () => {
      interrupted = true
    },
    onRestored: () => {
      // What was published while the subscription was away is lost to us.
      if (!interrupted) return
      interrupted = false
      for (const listener of resubscribed) listener()
    },
  }

  let redis: RedisClient
  let subscriber: Subscriber
  const others = new Set<RedisClient>()
  const track = (connection: RedisClient): RedisClient => {
    // Errors surface on the calls that fail; the connection events are only reconnect noise.
    connection.on('error', () => {})
    connection.on('end', () => others.delete(connection))
    others.add(connection)
    return connection
  }
  let open: (suffix: string, extra: ConnectionOptions) => RedisClient
  if (cluster === undefined) {
    const url = options.url as string
    // No offline queue: while Redis is away a heartbeat fails at once with 503 and the snippet
    // backs off, instead of piling up in memory behind a reconnect.
    const base: RedisOptions = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 }
    // No auto-pipelining: the batcher already sends the beats of a few event-loop turns as one
    // script call; on top of it ioredis's per-turn pipelines cost more CPU per request than they
    // save (bench/cpu.ts). ioredis keeps the command of a timed-out call in its queue and matches
    // the late reply to it, so the answers that follow still reach their own calls.
    redis = new Redis(url, { ...base, connectionName: `${name}:cmd`, commandTimeout: commandTimeoutMs })
    redis.on('error', () => {})
    subscriber = singleSubscriber(new Redis(url, { ...base, connectionName: subscriberName, enableOfflineQueue: true }), events)
    open = (suffix, extra) => new Redis(url, { ...base, connectionName: `${name}:${suffix}`, ...extra })
  } else {
    const commands = new Cluster(cluster.seeds, cluster.options({ connectionName: `${name}:cmd`, commandTimeout: commandTimeoutMs }))
    commands.on('error', () => {})
    redis = commands
    subscriber = clusterSubscriber(commands, cluster, { connectionName: subscriberName, commandTimeout: commandTimeoutMs }, events)
    // A connection of its own holds no subscription: its slot map is read again on MOVED only,
    // not on a timer (ioredis opens a connection for each reading).
    open = (suffix, extra) => new Cluster(cluster.seeds, { ...cluster.options({ connectionName: `${name}:${suffix}`, ...extra }), slotsRefreshInterval: 0 })
  }
  try {
    await Promise.all([redis.connect(), subscriber.connect()])
  } catch (error) {
    redis.disconnect()
    await subscriber.close()
    throw error
  }

  return {
    kind: cluster === undefined ? 'single' : 'cluster',
    name,
    commandTimeoutMs,
    redis,
    subscriberName,
    shardedPubSub: cluster !== undefined,
    call: createRedisCall(options.log),
    replicaWait: createReplicaWait(redis, { replicas: options.waitReplicas ?? 0, timeoutMs: commandTimeoutMs * WAIT_SHARE_OF_TIMEOUT, log: options.log }),
    get interrupted() {
      return interrupted
    },
    async subscribe(channel, onMessage, subscribeOptions = {}) {
      handlers.set(channel, onMessage)
      await subscriber.subscribe(channel, cluster !== undefined && subscribeOptions.sharded === true)
    },
    async publish(channel, message, publishOptions = {}) {
      return Number(await (cluster !== undefined && publishOptions.sharded === true ? redis.spublish(channel, message) : redis.publish(channel, message)))
    },
    onResubscribed(listener) {
      resubscribed.push(listener)
    },
    async open(suffix, extra = {}) {
      const connection = track(open(suffix, extra))
      await connection.connect()
      return connection
    },
    async close() {
      handlers.clear()
      resubscribed.length = 0
      for (const connection of others) connection.disconnect()
      others.clear()
      await Promise.allSettled([redis.quit(), subscriber.close()])
      redis.disconnect()
    },
  }
}

/** One Redis: one subscriber connection, which ioredis reconnects and resubscribes by itself. */
function singleSubscriber(connection: Redis, events: SubscriberEvents): Subscriber {
  connection.on('error', () => {})
  connection.on('message', (channel: string, text: string) => events.onMessage(channel, text))
  connection.on('close', () => events.onInterrupted())
  // ioredis resubscribes on 'ready' before anything published after it can arrive.
  connection.on('ready', () => events.onRestored())
  return {
    connect: () => connection.connect(),
    async subscribe(channel) {
      await connection.subscribe(channel)
    },
    async close() {
      await connection.quit().catch(() => {})
      connection.disconnect()
    },
  }
}

interface ClusterSettings {
  seeds: { host: string; port: number }[]
  /** The Cluster options of one client, `redisOptions` merged into those every node connection gets. */
  options(redisOptions: ConnectionOptions): ClusterOptions
  /** The options of a plain connection to one node of the cluster. */
  node(host: string, port: number, extra: RedisOptions): RedisOptions
}

/**
 * The share of the command timeout a WAIT for replicas may take: a WAIT holds its connection,
 * so the commands sent behind it on that connection wait with it, and a few such waits in a row
 * must still leave them time to be answered within the command timeout.
 */
const WAIT_SHARE_OF_TIMEOUT = 0.1

/** How often a Cluster client reads the slot map again, besides on MOVED and CLUSTERDOWN. */
const SLOTS_REFRESH_MS = 2000

function clusterSettings(nodes: readonly RedisClusterNode[]): ClusterSettings {
  // Every seed carries the cluster's credentials and TLS (the config checks they agree).
  const { username, password, tls } = nodes[0] as RedisClusterNode
  const auth: RedisOptions = { username, password, ...(tls ? { tls: {} } : {}) }
  return {
    seeds: nodes.map(({ host, port }) => ({ host, port })),
    options: (redisOptions) => ({
      lazyConnect: true,
      // As with one Redis: no offline queue, so a command while the cluster is not ready (its
      // slot map not read yet, a reconnect) fails at once with 503.
      enableOfflineQueue: false,
      // Reads from the masters only: a replica may not have the latest write yet.
      scaleReads: 'master',
      // The slot map is read again on every MOVED and CLUSTERDOWN, and every SLOTS_REFRESH_MS
      // (ioredis reads it on no timer unless told): an instance that sends nothing to the slots
      // of a failed-over master still learns of it, and moves its shard subscriptions.
      slotsRefreshInterval: SLOTS_REFRESH_MS,
      // Reconnecting to the seeds after losing every node goes on for as long as the process runs.
      clusterRetryStrategy: (times: number) => Math.min(100 + times * 100, 2000),
      // TLS certificates name the hosts given, not the addresses the cluster announces.
      ...(tls ? { dnsLookup: (address: string, callback: (error: null, address: string) => void) => callback(null, address) } : {}),
      redisOptions: { maxRetriesPerRequest: 1, ...auth, ...redisOptions },
    }),
    node: (host, port, extra) => ({ host, port, ...auth, ...extra }),
  }
}

/** Bounds of the wait before a failed resubscription is tried again (a failover takes seconds). */
const RESUBSCRIBE_FIRST_DELAY_MS = 100
const RESUBSCRIBE_MAX_DELAY_MS = 2000

interface ClusterChannel {
  readonly name: string
  readonly sharded: boolean
  /** The channel's hash slot (CLUSTER KEYSLOT). */
  readonly slot: number
  /** `host:port` of the node whose connection holds the subscription; undefined while it does not. */
  node: string | undefined
}

/** A subscriber connection to one node of the cluster. */
interface NodeConnection {
  readonly redis: Redis
  /**
   * Settles once the connection is ready. Subscriptions wait for it: ioredis writes a
   * subscribe command at once while its ready check is still to come, and the check's INFO
   * then fails on a connection in subscriber mode, failing the subscribe with it.
   */
  readonly ready: Promise<void>
  /** Dropped, or closed by us: its subscriptions are gone. */
  lost: boolean
}

/**
 * The subscriptions on a cluster, each on a connection to the master that owns the channel's
 * slot (one connection per master): SSUBSCRIBE for a shard channel, which only that master
 * serves, SUBSCRIBE for an ordinary one, which any node serves. The owners come from the
 * command client's slot map, which ioredis reads again on every MOVED and every few seconds;
 * a shard channel whose slot has moved (failover, resharding) lost its subscription on the old
 * owner (Redis sends the subscriber a SUNSUBSCRIBE), and a dropped connection lost all of its
 * own. Either is an interruption, and the channels are subscribed again on their current owner,
 * with a backoff while the cluster is failing over, until every one is in place.
 */
function clusterSubscriber(commands: Cluster, cluster: ClusterSettings, connectionOptions: RedisOptions, events: SubscriberEvents): Subscriber {
  const channels = new Map<string, ClusterChannel>()
  const connections = new Map<string, NodeConnection>()
  let closed = false
  /** Subscriptions being placed: their connections are not idle, though no channel names them yet. */
  let placing = 0
  let repairing: Promise<void> | undefined
  let wait: NodeJS.Timeout | undefined

  const ownerOf = (channel: ClusterChannel): string | undefined => commands.slots[channel.slot]?.[0]

  const lose = (channel: ClusterChannel): void => {
    channel.node = undefined
    events.onInterrupted()
    repair()
  }

  const connectionTo = (node: string): NodeConnection => {
    const existing = connections.get(node)
    if (existing !== undefined && !existing.lost) return existing
    const cut = node.lastIndexOf(':')
    // No reconnects of its own: the owner of a slot may have changed by then, so a dropped
    // connection is replaced by the repair, towards the current owners.
    const redis = new Redis(cluster.node(node.slice(0, cut), Number(node.slice(cut + 1)), {
      ...connectionOptions,
      lazyConnect: true,
      enableOfflineQueue: true,
      autoResubscribe: false,
      retryStrategy: () => null,
      maxRetriesPerRequest: null,
      connectTimeout: Math.max(1000, connectionOptions.commandTimeout ?? 0),
    }))
    const ready = redis.connect()
    ready.catch(() => {})
    const connection: NodeConnection = { redis, ready, lost: false }
    connections.set(node, connection)
    redis.on('error', (error: Error) => {
      // A SUNSUBSCRIBE that Redis pushes when the channel's slot leaves the node (failover,
      // resharding) answers no command of ours, and ioredis reports it as an error: the slot
      // map is read again at once rather than at the next SLOTS_REFRESH_MS.
      if (error.message.includes('sunsubscribe')) commands.refreshSlotsCache()
    })
    redis.on('message', (name: string, text: string) => events.onMessage(name, text))
    redis.on('smessage', (name: string, text: string) => events.onMessage(name, text))
    redis.on('close', () => {
      if (connection.lost) return
      connection.lost = true
      if (connections.get(node) === connection) connections.delete(node)
      for (const channel of channels.values()) if (channel.node === node) lose(channel)
    })
    return connection
  }

  const place = async (channel: ClusterChannel): Promise<void> => {
    const owner = ownerOf(channel)
    if (owner === undefined) throw new Error(`no node serves slot ${channel.slot}`)
    const connection = connectionTo(owner)
    placing += 1
    try {
      await connection.ready
      await (channel.sharded ? connection.redis.ssubscribe(channel.name) : connection.redis.subscribe(channel.name))
    } finally {
      placing -= 1
    }
    if (connection.lost) throw new Error('the subscriber connection dropped')
    channel.node = owner
  }

  /** Subscribes every channel not in place, until all are; one repair runs at a time. */
  const repair = (): void => {
    if (repairing !== undefined || closed) return
    repairing = (async () => {
      let delay = RESUBSCRIBE_FIRST_DELAY_MS
      while (!closed) {
        const missing = [...channels.values()].filter((channel) => channel.node === undefined)
        if (missing.length === 0) break
        const results = await Promise.allSettled(missing.map(place))
        if (results.every((result) => result.status === 'fulfilled')) continue
        // The slot map is stale (a master died and its replica is not promoted yet): read it
        // again, and try once more after the wait.
        commands.refreshSlotsCache()
        await new Promise<void>((resolve) => {
          wait = setTimeout(resolve, delay)
        })
        delay = Math.min(delay * 2, RESUBSCRIBE_MAX_DELAY_MS)
      }
    })()
      .finally(() => {
        repairing = undefined
        if (closed) return
        if ([...channels.values()].some((channel) => channel.node === undefined)) repair()
        else events.onRestored()
      })
      .catch(() => {})
  }

  // Each new slot map: a shard channel whose slot is served by another master now lost its
  // subscription on the old one.
  commands.on('refresh', () => {
    for (const channel of channels.values()) {
      if (!channel.sharded || channel.node === undefined || ownerOf(channel) === channel.node) continue
      const old = connections.get(channel.node)
      old?.redis.sunsubscribe(channel.name).catch(() => {})
      lose(channel)
    }
    // Connections to nodes that hold no subscription any more are closed.
    if (placing > 0) return
    for (const [node, connection] of connections) {
      if ([...channels.values()].some((channel) => channel.node === node)) continue
      connection.lost = true
      connections.delete(node)
      connection.redis.disconnect()
    }
  })

  return {
    async connect() {},
    async subscribe(name, sharded) {
      const slot = Number(await commands.cluster('KEYSLOT', name))
      const channel: ClusterChannel = { name, sharded, slot, node: undefined }
      channels.set(name, channel)
      await place(channel)
    },
    async close() {
      closed = true
      clearTimeout(wait)
      for (const connection of connections.values()) {
        connection.lost = true
        connection.redis.disconnect()
      }
      connections.clear()
      channels.clear()
    },
  }
}
