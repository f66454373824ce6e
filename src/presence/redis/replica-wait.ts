/**
 * A bounded wait for replication after the script calls that append activity events. Redis
 * replicates asynchronously: a master acknowledges a call and may die before its replica has
 * it, and the replica promoted in its place then never had the events. WAIT, sent on the same
 * connection right behind the call, holds the answer until a replica has it, or until the wait
 * runs out: then the call still counts (it is on the master), and is counted as unreplicated.
 */
import { Cluster } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { RedisClient } from './connections.js'
import { keySlot } from './keys.js'

/** Unreplicated calls are logged at most this often, with their count since the last line. */
const LOG_EVERY_MS = 10_000

/**
 * Errors of a pipelined command that did not run: a redirection (a slot moved, a failover the
 * slot map does not know yet) or a cluster that refuses for now. Sent again alone, the command
 * follows ioredis's redirections and retries, which a pipeline with a write in it does not.
 */
const NOT_RUN = /^(?:MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /

export interface ReplicaWaitOptions {
  /** Replicas to wait for; 0: no WAIT, the calls go out as they are. */
  replicas: number
  /** ms the wait may take; WAIT 0 would wait for ever, so at least 1. */
  timeoutMs: number
  log?: Pick<FastifyBaseLogger, 'warn'>
  /** The clock of the log's pace. */
  now?: () => number
}

export interface ReplicaWait {
  /** Replicas each call waits for (0: off). */
  readonly replicas: number
  readonly timeoutMs: number
  /** Calls answered before as many replicas as wanted had them, since the start. */
  readonly unreplicated: number
  /**
   * Issues one command with `send(target)` (a script call whose keys share the slot of `key`)
   * and resolves with its reply. With replicas to wait for, `target` is a pipeline that goes to
   * the slot's master with `WAIT replicas timeoutMs` right behind the command; `send` must issue
   * its one command synchronously and its return value is ignored. The command leaves in the
   * same turn as without the wait, so calls keep their order.
   */
  run<T>(key: string, send: (target: RedisClient) => Promise<T>): Promise<T>
}

export function createReplicaWait(redis: RedisClient, options: ReplicaWaitOptions): ReplicaWait {
  const { replicas, log, now = Date.now } = options
  const timeoutMs = Math.max(1, Math.round(options.timeoutMs))
  const cluster = redis instanceof Cluster ? redis : undefined
  let unreplicated = 0
  let unlogged = 0
  let loggedAt = -Infinity

  const counted = (): void => {
    unreplicated += 1
    unlogged += 1
    const at = now()
    if (at - loggedAt < LOG_EVERY_MS) return
    log?.warn({ calls: unlogged, replicas, waitMs: timeoutMs }, 'Redis: event-writing calls answered before a replica had them; a failover of their master now would lose their events')
    unlogged = 0
    loggedAt = at
  }

  /**
   * Replicas to wait for on the master of `key`'s slot: no more than the cluster's slot map
   * (read every few seconds) says follow it. A master without a replica (its replica promoted
   * after a failover, the old master not back yet) has nobody to wait for.
   */
  const wanted = (key: string): number => {
    if (cluster === undefined) return replicas
    const nodes = cluster.slots[keySlot(key)]
    return nodes === undefined ? replicas : Math.min(replicas, nodes.length - 1)
  }

  return {
    replicas,
    timeoutMs,
    get unreplicated() {
      return unreplicated
    },
    async run<T>(key: string, send: (target: RedisClient) => Promise<T>): Promise<T> {
      if (replicas === 0) return send(redis)
      const want = wanted(key)
      if (want === 0) {
        counted()
        return send(redis)
      }
      const pipeline = redis.pipeline()
      void send(pipeline as unknown as RedisClient)
      pipeline.call('WAIT', want, timeoutMs)
      const results = (await pipeline.exec()) ?? []
      const [error, reply] = results[0] ?? [new Error('the pipeline answered nothing'), undefined]
      if (error) {
        if (!NOT_RUN.test(error.message)) throw error
        counted()
        return send(redis)
      }
      const [waitError, acknowledged] = results[1] ?? [null, 0]
      if (waitError || Number(acknowledged) < replicas) counted()
      return reply as T
    },
  }
}
