/**
 * The calls of the Lua scripts in lua/: their definitions, and the KEYS and ARGV each gets
 * (the scripts' headers say what each argument is).
 */
import { readFileSync } from 'node:fs'
// A Redis or a Redis Cluster: the commands used here behave alike on both.
import type { RedisClient as Redis } from './connections.js'
import type { Heartbeat, HeartbeatResult, LeaveReason } from '../presence-engine.js'
import type { RedisKeys } from './keys.js'
import type { ReplicaWait } from './replica-wait.js'

const lua = (name: string): string => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8')

type ScriptedRedis = Redis & {
  catBeat(...args: (string | number)[]): Promise<number[]>
  catHeartbeat(...args: (string | number)[]): Promise<HeartbeatResult[]>
  catSweep(...args: (string | number)[]): Promise<number>
  catEnd(...args: (string | number)[]): Promise<number>
}

/** A heartbeat on its way to a script: its contact's bucket key and the time it arrived. */
export interface ScriptBeat {
  bucket: string
  at: number
  beat: Heartbeat
}

export interface ScriptSettings {
  keys: RedisKeys
  presenceTimeoutMs: number
  idleTimeoutMs: number
  gapAfterMs: number
  maxTabs: number
  /** The calls that append activity events (heartbeat, end, sweep) go through it; beat appends none. */
  replicaWait?: ReplicaWait
}

export interface PresenceScripts {
  /** beat.lua: the fast path; 1 per beat that applied, 0 where the full script must decide. */
  beat(batch: readonly ScriptBeat[]): Promise<number[]>
  /** heartbeat.lua: the full script, in order. */
  heartbeat(batch: readonly ScriptBeat[]): Promise<HeartbeatResult[]>
  /** end.lua: 1 when the contact was online. */
  end(bucket: string, at: number, contactId: string, reason: LeaveReason): Promise<number>
  /** sweep.lua: the number of tabs removed from the due `buckets`. */
  sweep(buckets: readonly string[], at: number, limit: number): Promise<number>
}

export function definePresenceScripts(connection: Redis, settings: ScriptSettings): PresenceScripts {
  const { keys, presenceTimeoutMs, idleTimeoutMs, gapAfterMs, maxTabs } = settings
  const redis = connection as ScriptedRedis
  const replicated = <T>(send: (target: ScriptedRedis) => Promise<T>): Promise<T> =>
    settings.replicaWait === undefined ? send(redis) : settings.replicaWait.run(keys.events, (target) => send(target as ScriptedRedis))
  const common = lua('common')
  const full = common + lua('records')
  // heartbeat, end: the four common keys and the contact's bucket. sweep: the common keys and
  // any number of buckets, beat: the index and one bucket per beat, so their key counts come
  // first in their arguments. The fast path (beat) stands alone with few arguments:
  // definitions and arguments cost time on every call.
  redis.defineCommand('catBeat', { lua: lua('beat') })
  redis.defineCommand('catHeartbeat', { lua: full + lua('heartbeat') })
  redis.defineCommand('catSweep', { lua: full + lua('sweep') })
  redis.defineCommand('catEnd', { numberOfKeys: 5, lua: full + lua('end') })
  const commonKeys = [keys.due, keys.records, keys.events, keys.seq]

  return {
    beat(batch) {
      const args: (string | number)[] = [1 + batch.length, keys.due]
      for (const queued of batch) args.push(queued.bucket)
      args.push(presenceTimeoutMs, gapAfterMs)
      for (const { at, beat } of batch) args.push(at, beat.contactId, beat.sid)
      return redis.catBeat(...args)
    },
    heartbeat(batch) {
      const args: (string | number)[] = [commonKeys.length + batch.length, ...commonKeys]
      for (const queued of batch) args.push(queued.bucket)
      args.push((batch[0] as ScriptBeat).at, presenceTimeoutMs, idleTimeoutMs, keys.feedChannel, gapAfterMs, maxTabs)
      for (const { at, beat } of batch) args.push(at, beat.contactId, beat.sid, beat.event, beat.clientId, beat.name, beat.company, beat.path, beat.title)
      return replicated((target) => target.catHeartbeat(...args))
    },
    end(bucket, at, contactId, reason) {
      return replicated((target) => target.catEnd(...commonKeys, bucket, at, presenceTimeoutMs, idleTimeoutMs, keys.feedChannel, contactId, reason))
    },
    sweep(buckets, at, limit) {
      return replicated((target) => target.catSweep(commonKeys.length + buckets.length, ...commonKeys, ...buckets, at, presenceTimeoutMs, idleTimeoutMs, keys.feedChannel, limit))
    },
  }
}
