/**
 * Reads the site's presence part by part: each part the tabs of a range of buckets of one
 * partition and the records of the contacts they name, each read at a position of its
 * partition's feed of its own (SnapshotParts). A part's commands touch one partition's keys.
 */
// A Redis or a Redis Cluster: the commands used here behave alike on both.
import { setTimeout as sleep } from 'node:timers/promises'
import type { RedisClient as Redis } from './connections.js'
import { presencePart, type SnapshotPart, type SnapshotParts } from '../snapshot-parts.js'
import type { RedisCall } from './availability.js'
import { BUCKETS_PER_PARTITION, locate, type PartitionKeys } from './keys.js'
import { bucketContacts, type TabTimeouts } from './records.js'
import { recordPart } from './record-part.js'

/**
 * Tab buckets per snapshot part: 4 parts a partition, 96 in all with 24 partitions, about
 * 1 000 contacts each at 100 000 online. Small parts are sent while the next are read, and
 * their maps and arrays stay small.
 */
export const SNAPSHOT_PART_BUCKETS = 128

const PARTS_PER_PARTITION = BUCKETS_PER_PARTITION / SNAPSHOT_PART_BUCKETS

/** The number of the snapshot part that holds a contact's bucket (parts go partition by partition). */
const partAt = ({ partition, bucket }: { partition: number; bucket: number }): number => partition * PARTS_PER_PARTITION + Math.floor(bucket / SNAPSHOT_PART_BUCKETS)

/** The number of the snapshot part that holds a contact. */
export function snapshotPartOf(contactId: string, partitions: number): number {
  return partAt(locate(contactId, partitions))
}

/** The number of snapshot parts of a site of `partitions` partitions. */
export function snapshotPartCount(partitions: number): number {
  return partitions * PARTS_PER_PARTITION
}

/**
 * Snapshot parts being read while the one before them is handed over: as many as hold about
 * READ_AHEAD_CONTACTS contacts at the size of the part read last, at least MIN and at most
 * MAX. A small site's parts are a few contacts each, and each costs two round trips: many go
 * at once. At a million online a part is about 10 000 contacts, megabytes: two at a time.
 */
const READ_AHEAD_CONTACTS = 20_000
const MIN_READ_AHEAD = 2
const MAX_READ_AHEAD = 16

const readAheadAfter = (partSize: number): number => Math.max(MIN_READ_AHEAD, Math.min(MAX_READ_AHEAD, Math.floor(READ_AHEAD_CONTACTS / Math.max(1, partSize))))

/**
 * Reads of one part before the snapshot fails, and the wait before the second, doubling after.
 * A part is megabytes at a million online, and its reply can miss the command timeout while
 * the process is busy (collecting garbage, sending the parts before it): the dashboards whose
 * message has begun would lose it, so the part is read again. Each part is read at a feed
 * position of its own, so a part read later fits with the others as it is.
 */
const PART_READS = 5
const PART_RETRY_MS = 100

interface ReadPart {
  partition: number
  online: SnapshotPart
  /** The feed position at which the part's tabs were read, and its records. */
  tabsAt: number
  recordsAt: number
  /** The contacts that had tabs, bucket by bucket: those of the part's bucket b are ids[ends[b - 1] ?? 0, ends[b]). */
  ids: string[]
  ends: Uint32Array
}

/** Whether the contact had tabs when the part was read (the part holds its bucket). */
function hadTabs(part: Omit<ReadPart, 'online'>, contactId: string, bucket: number): boolean {
  const b = bucket % SNAPSHOT_PART_BUCKETS
  for (let k = b === 0 ? 0 : (part.ends[b - 1] as number); k < (part.ends[b] as number); k += 1) if (part.ids[k] === contactId) return true
  return false
}

export interface SnapshotReaderOptions extends TabTimeouts {
  redis: Redis
  partitions: readonly PartitionKeys[]
  call: RedisCall
  /** The partition's feed position and the tabs of each of the buckets, in order, each bucket's as bytes (scripts.snapshotTabs, lua/snapshot.lua), at once. */
  tabs(keys: PartitionKeys, buckets: readonly string[]): Promise<{ position: number; tabs: Buffer[] }>
  /** Told, per partition, the highest position of its parts once all are read (the feed's gap detection). */
  readUpTo(partition: number, position: number): void
}

/** Every error of a transaction's replies, thrown; the replies otherwise. */
function replies(result: [Error | null, unknown][] | null): unknown[] {
  if (result === null) throw new Error('snapshot transaction aborted')
  return result.map(([error, reply]) => {
    if (error) throw error
    return reply
  })
}

/**
 * One part: the tabs of buckets first…first+SNAPSHOT_PART_BUCKETS-1 with the feed position
 * (one script call), then the records of the contacts they name with the position again.
 * Between the two a contact may change: one that had no tabs is in the part as it was at the
 * first position (absent), one that had tabs as it is at the second (present or gone), and
 * the hub sends each the changes after its own position (SnapshotParts.position).
 */
async function readPart(options: SnapshotReaderOptions, keys: PartitionKeys, first: number): Promise<ReadPart> {
  const { redis } = options
  const { partition } = keys
  const buckets: string[] = []
  for (let bucket = first; bucket < first + SNAPSHOT_PART_BUCKETS; bucket += 1) buckets.push(keys.bucket(bucket))
  // Tabs and records as bytes: no string is made of them but the contact ids.
  const { position: tabsAt, tabs } = await options.tabs(keys, buckets)
  const ids: string[] = []
  const lastSeen: number[] = []
  const ends = new Uint32Array(SNAPSHOT_PART_BUCKETS)
  tabs.forEach((bucketTabs, b) => {
    bucketContacts(bucketTabs, options, ids, lastSeen)
    ends[b] = ids.length
  })
  if (ids.length === 0) return { partition, online: presencePart([]), tabsAt, recordsAt: tabsAt, ids, ends }
  // The part's JSON is written from the records' bytes (record-part.ts).
  const [records, seqAgain] = replies(await redis.multi().hmgetBuffer(keys.records, ...ids).get(keys.seq).exec()) as [(Buffer | null)[], string | null]
  return { partition, online: recordPart(ids, records, lastSeen), tabsAt, recordsAt: Number(seqAgain ?? 0), ids, ends }
}

/** One part, read again (PART_READS, PART_RETRY_MS) when a read fails. */
async function readPartAgain(options: SnapshotReaderOptions, keys: PartitionKeys, first: number): Promise<ReadPart> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await options.call(() => readPart(options, keys, first))
    } catch (error) {
      if (attempt >= PART_READS) throw error
      await sleep(PART_RETRY_MS * 2 ** (attempt - 1))
    }
  }
}

/** The snapshot in parts of SNAPSHOT_PART_BUCKETS buckets of a partition, some of them read ahead (readAheadAfter). */
export function readSnapshotParts(options: SnapshotReaderOptions): SnapshotParts {
  const { partitions } = options
  const count = partitions.length
  const total = snapshotPartCount(count)
  // read[p * PARTS_PER_PARTITION + k]: the positions of part k of partition p, once handed
  // over (its contacts are the caller's then).
  const read: Omit<ReadPart, 'online'>[] = []
  // Per partition, once every part is read: the lowest position of its parts and the highest.
  const lowestAt: number[] = []
  const highestAt: number[] = []
  const bounds = (): void => {
    for (let partition = 0; partition < count; partition += 1) {
      const own = read.slice(partition * PARTS_PER_PARTITION, (partition + 1) * PARTS_PER_PARTITION)
      lowestAt[partition] = own.reduce((min, part) => Math.min(min, part.tabsAt), Infinity)
      highestAt[partition] = own.reduce((max, part) => Math.max(max, part.recordsAt), 0)
    }
  }
  const bound = (at: number[], partition: number): number => {
    const value = at[partition]
    if (value === undefined) throw new Error('snapshot positions asked before its parts were read')
    return value
  }
  async function* parts(): AsyncGenerator<SnapshotPart> {
    const ahead: Promise<ReadPart>[] = []
    let next = 0
    const readNext = (): void => {
      if (next >= total) return
      const keys = partitions[Math.floor(next / PARTS_PER_PARTITION)] as PartitionKeys
      const first = (next % PARTS_PER_PARTITION) * SNAPSHOT_PART_BUCKETS
      const part = readPartAgain(options, keys, first)
      part.catch(() => {}) // awaited in turn; not unhandled if the reader stops before
      ahead.push(part)
      next += 1
    }
    for (let k = 0; k <= MIN_READ_AHEAD; k += 1) readNext()
    for (let part = ahead.shift(); part !== undefined; part = ahead.shift()) {
      const { online, ...positions } = await part
      const readAhead = readAheadAfter(online.size)
      while (ahead.length < readAhead && next < total) readNext()
      read.push(positions)
      yield online
    }
    bounds()
    for (let partition = 0; partition < count; partition += 1) options.readUpTo(partition, highestAt[partition] as number)
  }
  return {
    parts: parts(),
    partitions: count,
    position(contactId) {
      const location = locate(contactId, count)
      const part = read[partAt(location)]
      if (part === undefined) throw new Error('snapshot position asked before its parts were read')
      return hadTabs(part, contactId, location.bucket) ? part.recordsAt : part.tabsAt
    },
    lowest: (partition) => bound(lowestAt, partition),
    highest: (partition) => bound(highestAt, partition),
  }
}
