// A Redis or a Redis Cluster: the commands used here behave alike on both.
import type { RedisClient as Redis } from './connections.js'
import type { PartitionKeys } from './keys.js'
import type { PresenceScripts } from './scripts.js'

/** Due buckets handed to one sweep call. */
const SWEEP_BUCKETS = 256

export interface SweepOptions {
  redis: Redis
  scripts: PresenceScripts
  partitions: readonly PartitionKeys[]
  now: () => number
  /** Most tabs removed per sweep call (bounds the time Redis is busy with one). */
  sweepBatch: number
}

/**
 * Removes every expired tab of every partition, the partitions side by side: in each, the
 * buckets its index says are due, SWEEP_BUCKETS at a time, each call of sweep.lua removing at
 * most `sweepBatch` tabs. Every instance sweeps; the script checks each bucket again, so each
 * expiry is handled by exactly one call. Returns how many tabs were removed.
 */
export async function sweepExpired(options: SweepOptions): Promise<number> {
  const removed = await Promise.all(options.partitions.map((keys) => sweepPartition(options, keys)))
  return removed.reduce((sum, n) => sum + n, 0)
}

async function sweepPartition(options: SweepOptions, keys: PartitionKeys): Promise<number> {
  const { redis, scripts, now, sweepBatch } = options
  let total = 0
  for (;;) {
    const at = now()
    const due = await redis.zrangebyscore(keys.due, '-inf', at, 'LIMIT', 0, SWEEP_BUCKETS)
    if (due.length === 0) return total
    const removed = await scripts.sweep(keys, due.map((bucket) => keys.bucket(bucket)), at, sweepBatch)
    total += removed
    // Fewer than asked on both counts: every due bucket was swept up to `at`.
    if (removed < sweepBatch && due.length < SWEEP_BUCKETS) return total
  }
}
