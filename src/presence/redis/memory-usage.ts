import type { Redis } from 'ioredis'
import { presenceKeys, type PartitionKeys } from './keys.js'

/** Sum of `MEMORY USAGE key SAMPLES 0` over the presence keys of the partitions (one Redis), and how many of them exist. */
export async function presenceMemoryUsage(redis: Redis, partitions: readonly PartitionKeys[]): Promise<{ bytes: number; keys: number }> {
  const pipeline = redis.pipeline()
  for (const key of presenceKeys(partitions)) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')
  let bytes = 0
  let keys = 0
  for (const [error, usage] of (await pipeline.exec()) ?? []) {
    if (error) throw error
    if (usage === null) continue
    bytes += Number(usage)
    keys += 1
  }
  return { bytes, keys }
}
