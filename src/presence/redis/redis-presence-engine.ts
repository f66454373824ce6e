/**
 * Presence in Redis, shared by every instance of a site. The site's state is split into
 * partitions (keys.ts), a contact's in one. A heartbeat goes from heartbeat() to the batcher
 * (batcher.ts), which sends it with others as script calls (scripts.ts, lua/), one per
 * partition on a cluster, one for every partition on one Redis; the script
 * stores the change, appends the activity event to the partition's stream and publishes the
 * change on the partition's feed channel, which every instance's feed (feed.ts) hands to its hub.
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
import { DEFAULT_PARTITIONS, locate, sitePartitions, type PartitionKeys } from './keys.js'
import { definePresenceScripts, type BeatGroup, type ScriptBeat, type ScriptSettings } from './scripts.js'
import { readSnapshotParts } from './snapshot-reader.js'
import { RecentBeats } from './recent-beats.js'
import { sweepExpired } from './sweep.js'

export interface RedisPresenceEngineOptions extends PresenceTimings {
  /** Namespace of the keys (keys.ts). */
  site: string
  /** Partitions of the site's state (keys.ts); part of the site's layout (layout.ts). */
  partitions?: number
  now: () => number
  /** Tabs handled per sweep call. */
  sweepBatch?: number
  /** Runs a function in the next turn of the event loop (the batcher's wait; setImmediate). */
  schedule?: (fn: () => void) => void
}

export interface RedisPresenceEngine extends PresenceEngine {
  /** The keys of each partition, by partition number. */
  readonly partitions: readonly PartitionKeys[]
  /** The keys of the partition that holds a contact. */
  partitionOf(contactId: string): PartitionKeys
  /** The command connection, for inspection (MEMORY USAGE, tests). */
  readonly redis: Redis
  /** The subscriber connection's name in CLIENT LIST. */
  readonly subscriberName: string
}

/** A heartbeat waiting in the batcher for its script call. */
interface QueuedBeat extends ScriptBeat {
  keys: PartitionKeys
  /** true: a fast-path beat (beat.lua), settled with 1 when it applied; false: heartbeat.lua. */
  fast: boolean
  /** A fast-path beat within the gap of the last one this instance had applied (recent-beats.ts), and its tab's hashes there (fast-path beats only). */
  recent: boolean
  hashA: number
  hashB: number
  resolve(result: unknown): void
  reject(error: unknown): void
}

/** One call's results (the groups' beats in order) as a list per group. */
function splitAs<R>(groups: readonly Group[], results: readonly R[]): R[][] {
  if (groups.length === 1) return [results as R[]]
  let at = 0
  return groups.map((group) => results.slice(at, (at += group.beats.length)))
}

/** A run's items in groups of one partition each (for beat.lua, and of beats recent or not), with each item's place in the run. */
interface Group {
  keys: PartitionKeys
  beats: QueuedBeat[]
  places: number[]
  recent: boolean
}

function byPartition(run: readonly QueuedBeat[], partitions: number): Group[] {
  const byNumber: (Group | undefined)[] = new Array(partitions * 2)
  const groups: Group[] = []
  for (let i = 0; i < run.length; i += 1) {
    const item = run[i] as QueuedBeat
    const at = item.partition * 2 + (item.recent ? 1 : 0)
    let group = byNumber[at]
    if (group === undefined) groups.push((byNumber[at] = group = { keys: item.keys, beats: [], places: [], recent: item.recent }))
    group.beats.push(item)
    group.places.push(i)
  }
  return groups
}

/** Results given in the groups' order, put back in the run's. */
function inRunOrder<R>(groups: readonly Group[], results: readonly (readonly R[])[]): R[] {
  if (groups.length === 1) return results[0] as R[]
  const out: R[] = []
  groups.forEach((group, g) => group.places.forEach((place, i) => (out[place] = (results[g] as readonly R[])[i] as R)))
  return out
}

export async function createRedisPresenceEngine(connections: RedisConnections, options: RedisPresenceEngineOptions): Promise<RedisPresenceEngine> {
  const { site, now, maxTabs = DEFAULT_MAX_TABS, sweepBatch = 1000, partitions: count = DEFAULT_PARTITIONS } = options
  const { redis, call } = connections
  const partitions = sitePartitions(site, count)
  const cluster = connections.kind === 'cluster'
  // Read at each script call and snapshot: setTimings changes them in place.
  const settings: ScriptSettings = {
    publishCommand: cluster ? 'SPUBLISH' : 'PUBLISH',
    presenceTimeoutMs: options.presenceTimeoutMs,
    idleTimeoutMs: options.idleTimeoutMs,
    gapAfterMs: options.gapAfterMs,
    maxTabs,
    replicaWait: connections.replicaWait,
  }
  const scripts = definePresenceScripts(redis, settings)
  const feed = await RedisFeed.open(connections, partitions.map((keys) => keys.feedChannel))
  // One Redis takes the groups of every partition in one call; a cluster a call per partition.
  const inGroups = async <R>(groups: Group[], send: (groups: BeatGroup[]) => Promise<R[]>): Promise<R[][]> => {
    const beatGroups: BeatGroup[] = groups.map((group) => ({ keys: group.keys, beats: group.beats, recent: group.recent }))
    if (!cluster || groups.length === 1) return splitAs(groups, await send(beatGroups))
    return Promise.all(beatGroups.map((group) => send([group])))
  }
  const recentBeats = new RecentBeats(now())
  const batcher = new Batcher<QueuedBeat>({
    async send(run) {
      const groups = byPartition(run, count)
      if (!(run[0] as QueuedBeat).fast) return inRunOrder(groups, await inGroups(groups, scripts.heartbeat))
      const results = inRunOrder(groups, await inGroups(groups, scripts.beat))
      for (let i = 0; i < run.length; i += 1) {
        const item = run[i] as QueuedBeat
        if (results[i] === 1) recentBeats.note(item.hashA, item.hashB, item.at, settings.gapAfterMs)
      }
      return results
    },
    schedule: options.schedule,
    timedOut,
  })
  const where = (contactId: string): { keys: PartitionKeys; partition: number; bucket: string } => {
    const { partition, bucket } = locate(contactId, count)
    const keys = partitions[partition] as PartitionKeys
    return { keys, partition, bucket: keys.bucket(bucket) }
  }
  const enqueue = (fast: boolean, beat: Heartbeat): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const { partition, bucket } = locate(beat.contactId, count)
      const keys = partitions[partition] as PartitionKeys
      const at = now()
      const member = `${beat.contactId}|${beat.sid}`
      // Only a fast-path beat is judged (and its hashes kept for note()).
      const recent = fast && recentBeats.recent(member, at, settings.gapAfterMs)
      batcher.add({ fast, keys, partition, bucket: keys.bucket(bucket), at, beat, member, recent, hashA: recentBeats.lastA, hashB: recentBeats.lastB, resolve, reject })
    })
  const snapshotParts = (): SnapshotParts =>
    readSnapshotParts({ redis, partitions, call, tabs: (keys, buckets) => scripts.snapshotTabs(keys, buckets), presenceTimeoutMs: settings.presenceTimeoutMs, idleTimeoutMs: settings.idleTimeoutMs, readUpTo: (partition, position) => feed.readUpTo(partition, position) })

  return {
    kind: 'redis',
    partitions,
    partitionOf: (contactId) => where(contactId).keys,
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

    setTimings({ presenceTimeoutMs, idleTimeoutMs, gapAfterMs }) {
      settings.presenceTimeoutMs = presenceTimeoutMs
      settings.idleTimeoutMs = idleTimeoutMs
      settings.gapAfterMs = gapAfterMs
    },

    async end(contactId: string, reason: LeaveReason): Promise<boolean> {
      return call(async () => {
        // Heartbeats accepted before the end go to Redis before it.
        batcher.flush()
        const { keys, bucket } = where(contactId)
        return (await scripts.end(keys, bucket, now(), contactId, reason)) === 1
      })
    },

    sweep(): Promise<number> {
      return call(() => sweepExpired({ redis, scripts, partitions, now, sweepBatch }))
    },

    snapshot(): Promise<Snapshot> {
      return wholeSnapshot(snapshotParts())
    },

    snapshotParts,

    onFeed(listener) {
      return feed.listen(listener)
    },

    count(): Promise<number> {
      return call(async () => (await Promise.all(partitions.map((keys) => redis.hlen(keys.records)))).reduce((sum, n) => sum + n, 0))
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
