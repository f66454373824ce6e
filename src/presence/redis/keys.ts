/**
 * Every Redis key and channel of a site, named here and nowhere else.
 *
 * A site's presence is split into partitions: a contact belongs to one, by a hash of its id
 * (`locate`), and each partition's keys share one hash tag, so every script call touches the
 * keys of one partition, which on a Redis Cluster lie in one slot. The tags are chosen so that
 * the partitions spread evenly over the slots (`partitionTag`): with the cluster's slots split
 * evenly among its masters, each master serves the same number of partitions. The partition
 * count and the buckets per partition are the site's layout, kept in the layout key; every
 * instance of a site must use the same (layout.ts). What each key holds: lua/common.lua.
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
}

/** The keys of one partition of a site. */
export interface PartitionKeys extends RedisKeys {
  partition: number
  /** The hash tag every key of the partition shares (without the braces). */
  tag: string
  /** The sorted set of tabs of bucket number `bucket` of this partition (lua/common.lua reads the number back from its end). */
  bucket(bucket: number | string): string
}

/** The keys of a site that no partition owns. */
export interface SiteKeys {
  /** The site's layout: partition count and buckets per partition (layout.ts). */
  layout: string
  /** Pub/sub: contact ids whose consent changed. */
  consentChannel: string
  /** Pub/sub: the saved live settings changed (each instance re-reads them from the database). */
  settingsChannel: string
  /** The event stream of the layout before partitions, drained by the writers while it exists. */
  legacyEvents: string
  /** The webhook deliverer's lease: the name of the instance that delivers (webhook-lease.ts). */
  webhookLease: string
}

/** CAT_REDIS_PARTITIONS's default: 8 partitions per master on a cluster of 3 masters. */
export const DEFAULT_PARTITIONS = 24

/**
 * Tabs of a partition are spread over this many sorted sets, so each stays small enough for
 * Redis's compact listpack encoding (zset-max-listpack-entries, 128 by default): with 24
 * partitions about 80 tabs a bucket at 1 000 000 online. A bucket past 128 converts to a
 * skiplist and still works, it only takes more memory. Fewer buckets would cost less per
 * bucket when few are online (each key has ~100 bytes of overhead, and the index an entry) but
 * pass 128 sooner. Part of the site's layout.
 */
export const BUCKETS_PER_PARTITION = 512

/** Where a contact's state lives: its partition and its bucket in it. */
export interface Location {
  partition: number
  bucket: number
}

/** FNV-1a of a contact id's UTF-16 code units, with murmur3's finaliser so that every bit of it mixes. */
function contactHash(contactId: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < contactId.length; i += 1) hash = Math.imul(hash ^ contactId.charCodeAt(i), 0x01000193)
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b)
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35)
  return (hash ^ (hash >>> 16)) >>> 0
}

/** A contact's partition (from the hash's high bits) and bucket (its low bits). */
export function locate(contactId: string, partitions: number): Location {
  const hash = contactHash(contactId)
  return { partition: Math.floor((hash / 0x1_0000_0000) * partitions), bucket: hash & (BUCKETS_PER_PARTITION - 1) }
}

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256)
  for (let i = 0; i < 256; i += 1) {
    let crc = i << 8
    for (let bit = 0; bit < 8; bit += 1) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    table[i] = crc
  }
  return table
})()

/** CRC16-XMODEM of a string's UTF-8 bytes, as Redis Cluster hashes keys. */
function crc16(text: string): number {
  let crc = 0
  for (const byte of Buffer.from(text, 'utf8')) crc = ((crc << 8) & 0xffff) ^ (CRC16_TABLE[((crc >>> 8) ^ byte) & 0xff] as number)
  return crc
}

/** The cluster slot of a key: of its hash tag (the first `{…}` with something in it) when it has one. */
export function keySlot(key: string): number {
  const open = key.indexOf('{')
  if (open !== -1) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) return crc16(key.slice(open + 1, close)) % 16384
  }
  return crc16(key) % 16384
}

/**
 * The hash tag of partition `partition` of `partitions`: `site:partition:k` with the first k
 * whose slot lies in the middle half of the partition's share of the 16384 slots. A cluster
 * created with its slots split evenly among its masters then has each partition on the master
 * of its share, never at the edge between two: 24 partitions on 3 masters are 8 on each.
 * Tags of consecutive numbers (`{0}`, `{1}`, …) would fall where CRC16 puts them, unevenly.
 */
export function partitionTag(site: string, partition: number, partitions: number): string {
  const share = 16384 / partitions
  const low = partition * share + share / 4
  const high = partition * share + (3 * share) / 4
  for (let k = 0; ; k += 1) {
    const tag = `${site}:${partition}:${k}`
    const slot = crc16(tag) % 16384
    if (slot >= low && slot < high) return tag
  }
}

export function partitionKeys(site: string, partition: number, partitions: number): PartitionKeys {
  const tag = partitionTag(site, partition, partitions)
  const prefix = `cat:{${tag}}:`
  return {
    partition,
    tag,
    due: `${prefix}due`,
    records: `${prefix}contacts`,
    events: `${prefix}events`,
    seq: `${prefix}seq`,
    feedChannel: `${prefix}feed`,
    bucket: (bucket) => `${prefix}t:${bucket}`,
  }
}

/** The keys of every partition of a site, by partition number. */
export function sitePartitions(site: string, partitions: number): PartitionKeys[] {
  return Array.from({ length: partitions }, (_, partition) => partitionKeys(site, partition, partitions))
}

export function siteKeys(site: string): SiteKeys {
  const prefix = `cat:{${site}}:`
  return { layout: `${prefix}layout`, consentChannel: `${prefix}consent`, settingsChannel: `${prefix}settings`, legacyEvents: `${prefix}events`, webhookLease: `${prefix}webhooks:lease` }
}

/** Every key holding presence state (not the event streams or the feed counters): what online contacts cost. */
export function presenceKeys(partitions: readonly PartitionKeys[]): string[] {
  const all: string[] = []
  for (const keys of partitions) {
    all.push(keys.due, keys.records)
    for (let bucket = 0; bucket < BUCKETS_PER_PARTITION; bucket += 1) all.push(keys.bucket(bucket))
  }
  return all
}

/** KEYS/SCAN patterns that together match every key of a site, of every partition (site names hold no `:`, `{`, `}`, `*`). */
export function siteKeyPatterns(site: string): string[] {
  return [`cat:{${site}}:*`, `cat:{${site}:*}:*`]
}
