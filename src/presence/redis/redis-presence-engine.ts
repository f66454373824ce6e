/**
 * Presence in Redis, shared by every instance of a site. A heartbeat goes from heartbeat() to
 * the batcher (batcher.ts), which sends it with others as one script call (scripts.ts, lua/);
 * the script stores the change, appends the activity event and publishes the change on the
 * feed channel, which every instance's feed (feed.ts) hands to its hub.
 */
// A Redis or a Redis Cluster: the commands used here behave alike on both.
import type { RedisClient as Redis } from './connections.js'
import type { Heartbeat, HeartbeatResult, LeaveReason, PresenceEngine, PresenceTimings, Snapshot } from '../presence-engine.js'
import { DEFAULT_MAX_TABS } from '../presence-engine.js'
import { wholeSnapshot, type SnapshotParts } from '../snapshot-parts.js'
import { timedOut } from './availability.js'
import { Batcher } from './batcher.js'
import type { RedisConnections } from './connections.js'
import { RedisFeed } from './feed.js'
import { bucketKey, redisKeys, tabBucket, type RedisKeys } from './keys.js'
import { definePresenceScripts, type ScriptBeat } from './scripts.js'
import { readSnapshotParts } from './snapshot-reader.js'
import { sweepExpired } from './sweep.js'

export interface RedisPresenceEngineOptions extends PresenceTimings {
  /** Namespace of the keys (keys.ts). */
  site: string
  now: () => number
  /** Tabs handled per sweep call. */
  sweepBatch?: number
  /** Runs a function in the next turn of the event loop (the batcher's wait; setImmediate). */
  schedule?: (fn: () => void) => void
}

export interface RedisPresenceEngine extends PresenceEngine {
  readonly keys: RedisKeys
  /** The command connection, for inspection (MEMORY USAGE, tests). */
  readonly redis: Redis
  /** The subscriber connection's name in CLIENT LIST. */
  readonly subscriberName: string
}

/** A heartbeat waiting in the batcher for its script call. */
interface QueuedBeat extends ScriptBeat {
  /** true: a fast-path beat (beat.lua), settled with 1 when it applied; false: heartbeat.lua. */
  fast: boolean
  resolve(result: unknown): void
  reject(error: unknown): void
}

export async function createRedisPresenceEngine(connections: RedisConnections, options: RedisPresenceEngineOptions): Promise<RedisPresenceEngine> {
  const { site, now, presenceTimeoutMs, idleTimeoutMs, gapAfterMs, maxTabs = DEFAULT_MAX_TABS, sweepBatch = 1000 } = options
  const { redis, call } = connections
  const keys = redisKeys(site)
  const scripts = definePresenceScripts(redis, { keys, presenceTimeoutMs, idleTimeoutMs, gapAfterMs, maxTabs, replicaWait: connections.replicaWait })
  const feed = await RedisFeed.open(connections, keys.feedChannel)
  const batcher = new Batcher<QueuedBeat>({
    send: (run) => ((run[0] as QueuedBeat).fast ? scripts.beat(run) : scripts.heartbeat(run)),
    schedule: options.schedule,
    timedOut,
  })
  const enqueue = (fast: boolean, beat: Heartbeat): Promise<unknown> =>
    new Promise((resolve, reject) => {
      batcher.add({ fast, bucket: bucketKey(site, tabBucket(beat.contactId)), at: now(), beat, resolve, reject })
    })
  const snapshotParts = (): SnapshotParts =>
    readSnapshotParts({ redis, site, keys, call, presenceTimeoutMs, idleTimeoutMs, readUpTo: (position) => feed.readUpTo(position) })

  return {
    kind: 'redis',
    keys,
    redis,
    subscriberName: connections.subscriberName,

    async heartbeat(beat: Heartbeat): Promise<HeartbeatResult> {
      return call(async () => {
        // The fast path: a periodic beat of a known visible tab, on time, only pushes its
        // expiry. 0: the tab is unknown or hidden, or the beat late; the full script decides.
        if (beat.event === 'beat' && (await enqueue(true, beat)) === 1) return 'unchanged'
        return enqueue(false, beat) as Promise<HeartbeatResult>
      })
    },

    async end(contactId: string, reason: LeaveReason): Promise<boolean> {
      return call(async () => {
        // Heartbeats accepted before the end go to Redis before it.
        batcher.flush()
        return (await scripts.end(bucketKey(site, tabBucket(contactId)), now(), contactId, reason)) === 1
      })
    },

    sweep(): Promise<number> {
      return call(() => sweepExpired({ redis, scripts, site, keys, now, sweepBatch }))
    },

    snapshot(): Promise<Snapshot> {
      return wholeSnapshot(snapshotParts())
    },

    snapshotParts,

    onFeed(listener) {
      return feed.listen(listener)
    },

    count(): Promise<number> {
      return call(() => redis.hlen(keys.records))
    },

    async ping(): Promise<void> {
      await call(() => redis.ping())
    },

    /** Stops the feed; the connections are the shared state's to close. */
    async close(): Promise<void> {
      feed.close()
    },
  }
}
