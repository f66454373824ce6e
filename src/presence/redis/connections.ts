import { Redis, type RedisOptions } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import { createRedisCall, type RedisCall } from './availability.js'

export interface RedisConnectionOptions {
  url: string
  /** Names the connections in CLIENT LIST, e.g. the instance id. */
  connectionName?: string
  /**
   * ms a command may go unanswered before it fails (and the request with it: 503): a Redis
   * that hangs (frozen, swapping, a script running long) is then as unavailable as one that is
   * gone. Default 1000.
   */
  commandTimeoutMs?: number
  /** Where the changes of Redis's state (unavailable, available again) are logged. */
  log?: Pick<FastifyBaseLogger, 'info' | 'warn'>
}

/**
 * The connections an instance holds to Redis, opened once and shared by the presence engine,
 * the event log and the consent bus: one for commands, one subscriber whose messages go to the
 * handler of their channel, and the event log's readers, opened on demand.
 */
export interface RedisConnections {
  /** Names this instance's connections and its consent notices. */
  readonly name: string
  readonly commandTimeoutMs: number
  /** The command connection. */
  readonly redis: Redis
  /** The subscriber connection's name in CLIENT LIST. */
  readonly subscriberName: string
  /** Every request's call to Redis goes through this (503 when Redis is unavailable). */
  readonly call: RedisCall
  /** Subscribes to a channel, its messages handed to `onMessage`. */
  subscribe(channel: string, onMessage: (text: string) => void): Promise<void>
  /** The subscriber connection dropped and is not back yet: what is published meanwhile is lost. */
  readonly interrupted: boolean
  /** Called when the subscriber is back after a dropped connection: what was published meanwhile is lost. */
  onResubscribed(listener: () => void): void
  /** A connection of its own (closed with the others), e.g. for a blocking read. */
  open(suffix: string, options?: RedisOptions): Promise<Redis>
  close(): Promise<void>
}

export async function openRedisConnections(options: RedisConnectionOptions): Promise<RedisConnections> {
  const { url, commandTimeoutMs = 1000 } = options
  const name = options.connectionName ?? `cat-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  // No offline queue: while Redis is away a heartbeat fails at once with 503 and the snippet
  // backs off, instead of piling up in memory behind a reconnect.
  const base: RedisOptions = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 }
  // No auto-pipelining: the batcher already sends the beats of a few event-loop turns as one
  // script call; on top of it ioredis's per-turn pipelines cost more CPU per request than they
  // save (bench/cpu.ts). ioredis keeps the command of a timed-out call in its queue and matches
  // the late reply to it, so the answers that follow still reach their own calls.
  const redis = new Redis(url, { ...base, connectionName: `${name}:cmd`, commandTimeout: commandTimeoutMs })
  const subscriberName = `${name}:sub`
  const subscriber = new Redis(url, { ...base, connectionName: subscriberName, enableOfflineQueue: true })
  // Errors surface on the calls that fail; the connection events are only reconnect noise.
  redis.on('error', () => {})
  subscriber.on('error', () => {})

  const handlers = new Map<string, (text: string) => void>()
  subscriber.on('message', (channel: string, text: string) => handlers.get(channel)?.(text))
  const resubscribed: (() => void)[] = []
  let interrupted = false
  subscriber.on('close', () => {
    interrupted = true
  })
  subscriber.on('ready', () => {
    // ioredis resubscribes by itself; whatever was published meanwhile is lost to us.
    if (!interrupted) return
    interrupted = false
    for (const listener of resubscribed) listener()
  })

  const others = new Set<Redis>()
  await Promise.all([redis.connect(), subscriber.connect()])
  return {
    name,
    commandTimeoutMs,
    redis,
    subscriberName,
    call: createRedisCall(options.log),
    get interrupted() {
      return interrupted
    },
    async subscribe(channel, onMessage) {
      handlers.set(channel, onMessage)
      await subscriber.subscribe(channel)
    },
    onResubscribed(listener) {
      resubscribed.push(listener)
    },
    async open(suffix, extra = {}) {
      const connection = new Redis(url, { ...base, connectionName: `${name}:${suffix}`, ...extra })
      connection.on('error', () => {})
      connection.on('end', () => others.delete(connection))
      others.add(connection)
      await connection.connect()
      return connection
    },
    async close() {
      handlers.clear()
      resubscribed.length = 0
      for (const connection of others) connection.disconnect()
      others.clear()
      await Promise.allSettled([redis.quit(), subscriber.quit()])
      redis.disconnect()
      subscriber.disconnect()
    },
  }
}
