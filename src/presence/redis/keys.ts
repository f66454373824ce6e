/**
 * Every Redis key and channel of a site, named here and nowhere else. All share the hash tag
 * `{site}`, so each script's keys lie in one cluster slot. What each holds: lua/common.lua.
 */

export interface RedisKeys {
  /** The tab index: member = bucket number, score at or before the earliest expiry in that bucket. */
  due: string
  /** The contact records hash (contact id → record, format: records.ts and lua/records.lua). */
  records: string
  /** The stream of activity events on their way to the durable log. */
  events: string
  /** The feed counter: one per published change. */
  seq: string
  /** Pub/sub: the presence changes (the feed). */
  feedChannel: string
  /** Pub/sub: contact ids whose consent changed. */
  consentChannel: string
}

/**
 * Tabs are spread over this many sorted sets, so each stays small enough for Redis's compact
 * listpack encoding (zset-max-listpack-entries, 128 by default): about 50 tabs a bucket at
 * 100 000 online, the first buckets pass 128 near 200 000. A bucket past that converts to a
 * skiplist and still works, it only takes more memory. Fewer buckets would cost less per
 * bucket when few are online (each key has ~100 bytes of overhead, and the index an entry) but
 * reach 128 sooner. Part of the key layout: every instance of a site must use the same number.
 */
export const TAB_BUCKETS = 2048

/** A contact's bucket: FNV-1a of its id's UTF-16 code units, folded to TAB_BUCKETS. */
export function tabBucket(contactId: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < contactId.length; i += 1) hash = Math.imul(hash ^ contactId.charCodeAt(i), 0x01000193)
  return (hash ^ (hash >>> 16)) & (TAB_BUCKETS - 1)
}

function sitePrefix(site: string): string {
  return `cat:{${site}}:`
}

export function redisKeys(site: string): RedisKeys {
  const prefix = sitePrefix(site)
  return {
    due: `${prefix}due`,
    records: `${prefix}contacts`,
    events: `${prefix}events`,
    seq: `${prefix}seq`,
    feedChannel: `${prefix}feed`,
    consentChannel: `${prefix}consent`,
  }
}

/** The sorted set holding the tabs of bucket number `bucket` (lua/common.lua reads the number back from its end). */
export function bucketKey(site: string, bucket: number | string): string {
  return `${sitePrefix(site)}t:${bucket}`
}

/** Every key holding presence state (not the event stream or the feed counter): what an online contact costs. */
export function presenceKeys(site: string): string[] {
  const keys = redisKeys(site)
  const all = [keys.due, keys.records]
  for (let bucket = 0; bucket < TAB_BUCKETS; bucket += 1) all.push(bucketKey(site, bucket))
  return all
}
