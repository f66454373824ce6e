/**
 * The calls of the Lua scripts in lua/: their definitions, and the KEYS and ARGV each gets
 * (the scripts' headers say what each argument is).
 */
import { readFileSync } from 'node:fs'
// A Redis or a Redis Cluster: the commands used here behave alike on both.
import type { RedisClient as Redis } from './connections.js'
import type { Heartbeat, HeartbeatResult, LeaveReason } from '../presence-engine.js'
import type { PartitionKeys } from './keys.js'
import type { ReplicaWait } from './replica-wait.js'

const lua = (name: string): string => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8')

type ScriptedRedis = Redis & {
  catBeat(...args: (string | number)[]): Promise<number[]>
  catHeartbeat(...args: (string | number)[]): Promise<HeartbeatResult[]>
  catSweep(...args: (string | number)[]): Promise<number>
  catEnd(...args: (string | number)[]): Promise<number>
  catSnapshotTabsBuffer(...args: string[]): Promise<[Buffer, ...Buffer[]]>
}

/** A heartbeat on its way to a script: its contact's partition, bucket key and the time it arrived. */
export interface ScriptBeat {
  partition: number
  bucket: string
  at: number
  beat: Heartbeat
  /** The tab's member, "<contact id>|<sid>" (beat.lua's argument). */
  member: string
}

/**
 * What the scripts are called with. The timings are read at each call, so a change to them
 * (the live settings) applies to the next call.
 */
export interface ScriptSettings {
  /** PUBLISH on one Redis, SPUBLISH on a cluster (the feed channels are shard channels there). */
  publishCommand: 'PUBLISH' | 'SPUBLISH'
  presenceTimeoutMs: number
  idleTimeoutMs: number
  gapAfterMs: number
  maxTabs: number
  /** The calls that append activity events (heartbeat, end, sweep) go through it; beat appends none. */
  replicaWait?: ReplicaWait
}

/** Beats of one partition, for one group of beat.lua. */
export interface BeatGroup {
  keys: PartitionKeys
  beats: readonly ScriptBeat[]
  /** beat.lua: every beat of the group is known to be on time (recent-beats.ts). */
  recent?: boolean
}

export interface PresenceScripts {
  /**
   * beat.lua: the fast path, for groups of beats of one partition each (one group on a
   * cluster); 1 per beat that applied, 0 where the full script must decide, in the groups' order.
   */
  beat(groups: readonly BeatGroup[]): Promise<number[]>
  /** heartbeat.lua: the full script, in order, for groups of heartbeats of one partition each (one group on a cluster). */
  heartbeat(groups: readonly BeatGroup[]): Promise<HeartbeatResult[]>
  /** end.lua: 1 when the contact was online. */
  end(keys: PartitionKeys, bucket: string, at: number, contactId: string, reason: LeaveReason): Promise<number>
  /** sweep.lua: the number of tabs removed from the due `buckets` of the partition. */
  sweep(keys: PartitionKeys, buckets: readonly string[], at: number, limit: number): Promise<number>
  /** snapshot.lua: the partition's feed position and the member/score pairs of each of `buckets` as bytes, joined by 0xFF (empty for one without tabs). */
  snapshotTabs(keys: PartitionKeys, buckets: readonly string[]): Promise<{ position: number; tabs: Buffer[] }>
}

export function definePresenceScripts(connection: Redis, settings: ScriptSettings): PresenceScripts {
  const { publishCommand, maxTabs } = settings
  const redis = connection as ScriptedRedis
  // A call on `keys`' partition, followed by the wait for a replica (on a cluster, to the master of its slot).
  const replicated = <T>(keys: PartitionKeys, send: (target: ScriptedRedis) => Promise<T>): Promise<T> =>
    settings.replicaWait === undefined ? send(redis) : settings.replicaWait.run(keys.events, (target) => send(target as ScriptedRedis))
  const common = lua('common')
  const full = common + lua('records')
  // heartbeat, end: the four common keys and the contact's bucket. sweep: the common keys and
  // any number of buckets, beat: per group the index and one bucket per beat, so their key
  // counts come first in their arguments. The fast path (beat) stands alone with few arguments:
  // definitions and arguments cost time on every call.
  redis.defineCommand('catBeat', { lua: lua('beat') })
  redis.defineCommand('catHeartbeat', { lua: full + lua('heartbeat') })
  redis.defineCommand('catSweep', { lua: full + lua('sweep') })
  redis.defineCommand('catEnd', { numberOfKeys: 5, lua: full + lua('end') })
  redis.defineCommand('catSnapshotTabs', { lua: lua('snapshot') })
  const commonKeys = (keys: PartitionKeys): string[] => [keys.due, keys.records, keys.events, keys.seq]

  return {
    async beat(groups) {
      const keyArgs: (string | number)[] = [0]
      const args: (string | number)[] = [settings.presenceTimeoutMs, settings.gapAfterMs, groups.length]
      let count = 0
      for (const { keys, beats, recent } of groups) {
        count += beats.length
        keyArgs.push(keys.due)
        for (const queued of beats) keyArgs.push(queued.bucket)
        args.push(recent === true ? -beats.length : beats.length)
      }
      keyArgs[0] = keyArgs.length - 1
      // One clock for the call, the latest beat's: a beat's expiry is then at most the few
      // milliseconds of the batcher's wait later than its own, never earlier.
      let now = 0
      for (const { beats } of groups) for (const { at } of beats) if (at > now) now = at
      args.push(now)
      for (const { beats } of groups) for (const { member } of beats) args.push(member)
      // beat.lua answers with the places of the beats that did not apply: nearly always none.
      const undecided = await redis.catBeat(...keyArgs, ...args)
      const applied = new Array<number>(count).fill(1)
      for (const place of undecided) applied[place - 1] = 0
      return applied
    },
    heartbeat(groups) {
      const keyArgs: (string | number)[] = [0]
      const first = groups[0] as BeatGroup
      const args: (string | number)[] = [(first.beats[0] as ScriptBeat).at, settings.presenceTimeoutMs, settings.idleTimeoutMs, first.keys.feedChannel, publishCommand, settings.gapAfterMs, maxTabs, groups.length]
      for (const { keys, beats } of groups) {
        keyArgs.push(...commonKeys(keys))
        for (const queued of beats) keyArgs.push(queued.bucket)
        args.push(beats.length)
      }
      for (const { keys } of groups) args.push(keys.feedChannel)
      keyArgs[0] = keyArgs.length - 1
      for (const { beats } of groups) for (const { at, beat } of beats) args.push(at, beat.contactId, beat.sid, beat.event, beat.clientId, beat.name, beat.company, beat.path, beat.title)
      return replicated(first.keys, (target) => target.catHeartbeat(...keyArgs, ...args))
    },
    end(keys, bucket, at, contactId, reason) {
      return replicated(keys, (target) => target.catEnd(...commonKeys(keys), bucket, at, settings.presenceTimeoutMs, settings.idleTimeoutMs, keys.feedChannel, publishCommand, contactId, reason))
    },
    sweep(keys, buckets, at, limit) {
      return replicated(keys, (target) => target.catSweep(4 + buckets.length, ...commonKeys(keys), ...buckets, at, settings.presenceTimeoutMs, settings.idleTimeoutMs, keys.feedChannel, publishCommand, limit))
    },
    async snapshotTabs(keys, buckets) {
      const [position, ...tabs] = await redis.catSnapshotTabsBuffer(String(1 + buckets.length), keys.seq, ...buckets)
      return { position: Number(position.toString('latin1')), tabs }
    },
  }
}
