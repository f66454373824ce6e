/**
 * The site's layout in Redis: how many partitions its state is split into and how many tab
 * buckets each has. Every instance of a site must use the same, or they would look for a
 * contact in different keys; the first instance records it, the others compare.
 */
import type { RedisClient as Redis } from './connections.js'
import { BUCKETS_PER_PARTITION } from './keys.js'

/** The start of an instance whose layout is not the site's: the message names both. */
export class LayoutMismatchError extends Error {
  constructor(site: string, configured: string, recorded: string) {
    super(`site "${site}" in Redis is laid out as ${recorded}, this instance as ${configured}: start every instance of a site with the same CAT_REDIS_PARTITIONS`)
    this.name = 'LayoutMismatchError'
  }
}

export function describeLayout(partitions: number, buckets = BUCKETS_PER_PARTITION): string {
  return `${partitions} partitions of ${buckets} buckets`
}

/** Records the layout when the site has none, else checks that it is the same (LayoutMismatchError). */
export async function claimLayout(redis: Redis, key: string, site: string, partitions: number): Promise<void> {
  const layout = describeLayout(partitions)
  const recorded = (await redis.set(key, layout, 'NX', 'GET')) as string | null
  if (recorded !== null && recorded !== layout) throw new LayoutMismatchError(site, layout, recorded)
}
