/**
 * Fixed windows of a minute, aligned to the clock, so every instance counts in the same window.
 * A count shared by the instances lives in Redis (SharedCounters); each instance also counts
 * locally, so the usual request, far below a limit, never waits for Redis.
 */
import type { RedisClient as Redis } from '../presence/redis/connections.js'
import type { RedisCall } from '../presence/redis/availability.js'
import { locate, partitionTag } from '../presence/redis/keys.js'

export const WINDOW_MS = 60_000

/** The window `at` falls in (minutes since the epoch). */
export const windowOf = (at: number): number => Math.floor(at / WINDOW_MS)

/** Whole seconds from `at` to the end of its window, at least 1: the Retry-After of a refusal. */
export const secondsLeft = (at: number): number => Math.max(1, Math.ceil(((windowOf(at) + 1) * WINDOW_MS - at) / 1000))

/** Counts shared by the instances of a site: one per kind, id and window. */
export interface SharedCounters {
  /** Adds `n` to the count of `id` of `kind` in `window`; resolves with the count after it. */
  add(kind: string, id: string, window: number, n: number): Promise<number>
}

/**
 * SharedCounters in Redis: `cat:{tag}:rl:<kind>:<window>:<id>` in the partition of `id` (as a
 * contact's own keys are), so counts spread over a cluster's masters; each key expires after
 * its window.
 */
export function redisCounters(redis: Redis, call: RedisCall, site: string, partitions: number): SharedCounters {
  const tags: string[] = Array.from({ length: partitions }, (_, p) => partitionTag(site, p, partitions))
  return {
    async add(kind, id, window, n) {
      const key = `cat:{${tags[locate(id, partitions).partition] as string}}:rl:${kind}:${window}:${id}`
      const replies = await call(() => redis.multi().incrby(key, n).pexpire(key, 2 * WINDOW_MS).exec())
      const [error, count] = replies?.[0] ?? [new Error('rate counter transaction aborted'), 0]
      if (error) throw error
      return Number(count)
    },
  }
}

/**
 * A limit per id and window, counted locally first: an id's requests up to `localShare` of the
 * limit in a window are decided by this instance alone. Past it, with shared counters, the
 * instance adds what it counted to the shared count once, and each request after that, and
 * decides on the shared count: so the limit holds across instances, and only an id that is
 * already busy pays a Redis round trip. Without shared counters (one instance) the local count
 * decides.
 */
export function escalationPoint(limit: number, shared: boolean, instanceShare = 0.1): number {
  if (!shared) return limit
  return Math.max(1, Math.floor(limit * instanceShare))
}
