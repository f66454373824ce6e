/**
 * The event log in Redis Streams, one per partition of the site (the presence scripts append
 * to their partition's): the activity writers of all instances read them as one consumer group
 * per stream, each event handed to one of them, and delete each entry once it is written. An
 * event's id is its entry's id and its stream's number (`ms-seq-p`), unique across the streams
 * and in order within each: a contact's events are all in one stream.
 */
// A Redis or a Redis Cluster: the commands used here behave alike on both.
import type { RedisClient as Redis } from '../../presence/redis/connections.js'
import type { LeaveReason } from '../../presence/presence-engine.js'
import type { RedisConnections } from '../../presence/redis/connections.js'
import { readFileSync } from 'node:fs'
import type { ActivityEvent, ActivityEventLog, ActivityEventSource, ActivityEventType, ConsumerOptions } from './event-log.js'

/** The consumer group of the activity writers, one per stream. */
export const WRITER_GROUP = 'cat-writers'

/** The consumer group of the webhook deliverers, one per stream: it reads the same entries at its own pace. */
export const WEBHOOK_GROUP = 'cat-webhooks'

/** Every group that may read the streams: an erased contact's entries are acknowledged in each. */
const ALL_GROUPS = [WRITER_GROUP, WEBHOOK_GROUP]

type AckDeleteRedis = Redis & { catAckDelete(stream: string, group: string, ...entryIds: string[]): Promise<number> }

/** Entries looked at per call while discarding a contact's events. */
const DISCARD_PAGE = 1000

/**
 * On a cluster, where one read cannot span streams of several slots, the streams are read
 * each on its own, without blocking, and while all are empty again after this long, until the
 * read's own wait is over.
 */
const CLUSTER_POLL_MS = 100

type Entry = [string, string[] | null]
type Reply = [string, Entry[]][] | null

/** One stream of the log: its key and how its entries' ids become event ids. */
class Stream {
  constructor(
    readonly key: string,
    /** Appended to entry ids (`-p`); empty for the stream of the layout before partitions. */
    private readonly suffix: string,
  ) {}

  eventId(entryId: string): string {
    return entryId + this.suffix
  }

  entryId(eventId: string): string {
    return this.suffix === '' ? eventId : eventId.slice(0, eventId.length - this.suffix.length)
  }
}

/** An event from a stream entry's fields (lua/records.lua names them). */
export function parseEvent(id: string, fields: string[]): ActivityEvent {
  const map: Record<string, string> = {}
  for (let i = 0; i < fields.length; i += 2) map[fields[i] as string] = fields[i + 1] as string
  const event: ActivityEvent = {
    id,
    type: map.type as ActivityEventType,
    contactId: map.contact ?? '',
    clientId: map.client ?? '',
    sid: map.sid ?? '',
    path: map.path ?? '',
    title: map.title ?? '',
    at: Number(map.at),
  }
  if (map.name !== undefined) event.name = map.name
  if (map.company !== undefined) event.company = map.company
  if (map.reason !== undefined) event.reason = map.reason as LeaveReason
  if (map.from !== undefined) event.from = Number(map.from)
  return event
}

/** The events of entries still in a stream (an entry deleted while pending has no fields: erasure). */
function eventsOf(stream: Stream, entries: readonly Entry[]): ActivityEvent[] {
  const events: ActivityEvent[] = []
  for (const [id, fields] of entries) if (fields !== null) events.push(parseEvent(stream.eventId(id), fields))
  return events
}

export interface RedisEventLogOptions {
  /** The stream of each partition, by partition number (keys.ts). */
  streams: readonly string[]
  /** A stream of the layout before partitions that may still hold unwritten events: read too while it exists. */
  legacyStream?: string
}

export async function createRedisEventLog(connections: RedisConnections, options: RedisEventLogOptions): Promise<ActivityEventLog> {
  const { call } = connections
  const redis = connections.redis as AckDeleteRedis
  // Entries leave a stream once every group is done with them (lua/ack-delete.lua).
  redis.defineCommand('catAckDelete', { numberOfKeys: 1, lua: readFileSync(new URL('../../presence/redis/lua/ack-delete.lua', import.meta.url), 'utf8') })
  const streams = options.streams.map((key, partition) => new Stream(key, `-${partition}`))
  if (options.legacyStream !== undefined && (await redis.exists(options.legacyStream)) === 1) streams.push(new Stream(options.legacyStream, ''))
  const groupsOf = (name: string): ConsumerGroup[] => streams.map((stream) => new ConsumerGroup(redis, stream, name))
  const groups = groupsOf(WRITER_GROUP)
  return {
    async consumer(name, { group: groupName = WRITER_GROUP }: ConsumerOptions = {}) {
      const consumerGroups = groupName === WRITER_GROUP ? groups : groupsOf(groupName)
      // An event id's third part is its partition, the number of its stream; an id of two parts is
      // of the stream before partitions, the last one.
      const groupOf = (eventId: string): ConsumerGroup => {
        const partition = eventId.split('-')[2]
        const group = partition === undefined ? (streams.length > options.streams.length ? consumerGroups.at(-1) : undefined) : consumerGroups[Number(partition)]
        if (group === undefined) throw new Error(`event id ${eventId} is of no stream of this log`)
        return group
      }
      // Its own connection: XREADGROUP … BLOCK holds the connection while it waits. No command
      // timeout on it (a read that waits would hit it); each read has a deadline of its own.
      const reader = await connections.open(groupName === WRITER_GROUP ? 'writer' : 'webhooks')
      await Promise.all(consumerGroups.map((group) => group.create()))
      return new RedisEventSource(consumerGroups, groupOf, reader, name, connections.commandTimeoutMs, connections.kind === 'cluster')
    },

    async removeGroup(group) {
      if (group === WRITER_GROUP) throw new Error('the writers\' group is not removed')
      // 1 where the group was there; a stream that does not exist has no group.
      const destroyed = await call(() => Promise.all(streams.map((stream) => (redis.xgroup('DESTROY', stream.key, group) as Promise<number>).catch(() => 0))))
      // Entries the writers are done with and that waited only for the removed group.
      await call(() => Promise.all(groups.filter((_writers, i) => destroyed[i] === 1).map((writers) => deleteWritten(writers))))
    },

    async tail(count) {
      const all = await call(() => Promise.all(streams.map(async (stream) => (await redis.xrevrange(stream.key, '+', '-', 'COUNT', count)).map(([id, fields]) => parseEvent(stream.eventId(id), fields)))))
      return all.flat().sort(byEntryId).slice(-count)
    },

    // A written event is deleted from its stream once every group is done with it (ackAndDelete):
    // what the streams hold is what is not yet written, or, with webhooks on, not yet delivered.
    async backlog() {
      const lengths = await call(() => Promise.all(streams.map((stream) => redis.xlen(stream.key))))
      return lengths.reduce((sum, length) => sum + length, 0)
    },

    async discard(contactId) {
      return call(async () => {
        let discarded = 0
        for (const group of groups) discarded += await discardFrom(group, contactId)
        return discarded
      })
    },
  }
}

/** Event ids in the order of their entries' ids (ms, then sequence). */
function byEntryId(a: ActivityEvent, b: ActivityEvent): number {
  const [msA = 0, seqA = 0] = a.id.split('-').map(Number)
  const [msB = 0, seqB = 0] = b.id.split('-').map(Number)
  return msA - msB || seqA - seqB
}

/** Deletes the entries of a stream that the writers have read and acknowledged (when no other group needs them). */
async function deleteWritten(writers: ConsumerGroup): Promise<void> {
  const { redis, stream } = writers
  const info = (await redis.xinfo('GROUPS', stream.key)) as unknown[][]
  const groupNames = info.map((fields) => fields[fields.indexOf('name') + 1])
  if (groupNames.some((name) => name !== WRITER_GROUP)) return
  const mine = info.find((fields) => fields[fields.indexOf('name') + 1] === WRITER_GROUP)
  if (mine === undefined) return
  const lastDelivered = String(mine[mine.indexOf('last-delivered-id') + 1])
  const pending = new Set<string>()
  let start = '-'
  for (;;) {
    const page = (await redis.xpending(stream.key, WRITER_GROUP, start, '+', DISCARD_PAGE)) as [string, ...unknown[]][]
    for (const [id] of page) pending.add(id)
    if (page.length < DISCARD_PAGE) break
    start = `(${(page[page.length - 1] as [string])[0]}`
  }
  start = '-'
  for (;;) {
    const entries = await redis.xrange(stream.key, start, lastDelivered, 'COUNT', DISCARD_PAGE)
    const done = entries.map(([id]) => id).filter((id) => !pending.has(id))
    if (done.length > 0) await redis.xdel(stream.key, ...done)
    if (entries.length < DISCARD_PAGE) return
    start = `(${(entries[entries.length - 1] as [string, string[]])[0]}`
  }
}

async function discardFrom(group: ConsumerGroup, contactId: string): Promise<number> {
  const { redis, stream } = group
  let start = '-'
  let discarded = 0
  for (;;) {
    const entries = await redis.xrange(stream.key, start, '+', 'COUNT', DISCARD_PAGE)
    const mine = entries.filter(([, fields]) => parseEvent('', fields).contactId === contactId).map(([id]) => id)
    if (mine.length > 0) {
      // Erased: gone for every group, whatever each has read.
      const erase = redis.multi()
      for (const name of ALL_GROUPS) erase.xack(stream.key, name, ...mine)
      await erase.xdel(stream.key, ...mine).exec()
      discarded += mine.length
    }
    if (entries.length < DISCARD_PAGE) return discarded
    start = `(${(entries[entries.length - 1] as [string, string[]])[0]}`
  }
}

/** A consumer group of a stream. */
class ConsumerGroup {
  constructor(readonly redis: AckDeleteRedis, readonly stream: Stream, readonly name: string) {}

  /**
   * Creates the group unless it exists: the writers' from the start of the stream (whatever is
   * in it is unwritten), another from its end (webhooks start with the events after they are on).
   */
  async create(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.stream.key, this.name, this.name === WRITER_GROUP ? '0' : '$', 'MKSTREAM')
    } catch (error) {
      if (!String(error).includes('BUSYGROUP')) throw error
    }
  }

  /** Entries this group is done with (by entry id) leave the stream when no other group needs them; nothing needed is ever trimmed. */
  async ackAndDelete(entryIds: readonly string[]): Promise<void> {
    await this.redis.catAckDelete(this.stream.key, this.name, ...entryIds)
  }
}

class RedisEventSource implements ActivityEventSource {
  /**
   * Per stream, set by retry(): this consumer's pending entries after this id are read again
   * before anything new (a write failed). Reads go on while earlier ones are being written, so
   * what is pending is not by itself a reason to read it again.
   */
  private readonly recoverAfter = new Map<ConsumerGroup, string>()
  /** Events read from the streams (pending for this consumer) and not handed out yet: a read's share beyond its count. */
  private unread: ActivityEvent[] = []

  constructor(
    private readonly groups: readonly ConsumerGroup[],
    private readonly groupOf: (eventId: string) => ConsumerGroup,
    private readonly reader: Redis,
    private readonly name: string,
    private readonly commandTimeoutMs: number,
    /** One read per stream (a cluster), not one read of them all. */
    private readonly apart: boolean,
  ) {}

  async read(count: number, waitMs: number): Promise<ActivityEvent[]> {
    if (this.unread.length > 0) return this.unread.splice(0, count)
    // After retry(): this consumer's pending entries of every stream, up to `count`, first.
    const recovered: ActivityEvent[] = []
    while (this.recoverAfter.size > 0 && recovered.length === 0) {
      for (const [group, after] of [...this.recoverAfter]) {
        if (recovered.length >= count) break
        const own = await this.readGroup([group], 0, count - recovered.length, [after])
        const entries = own?.[0]?.[1] ?? []
        if (entries.length === 0) {
          this.recoverAfter.delete(group)
          continue
        }
        this.recoverAfter.set(group, (entries[entries.length - 1] as Entry)[0])
        const gone = entries.filter(([, fields]) => fields === null).map(([id]) => id)
        if (gone.length > 0) await group.redis.xack(group.stream.key, group.name, ...gone)
        recovered.push(...eventsOf(group.stream, entries))
      }
    }
    if (recovered.length > 0) return recovered
    // COUNT bounds each stream's share of a read: what comes beyond `count` waits in `unread`.
    let events: ActivityEvent[]
    if (!this.apart) events = this.eventsOf(await this.readGroup(this.groups, Math.max(1, waitMs), count, this.groups.map(() => '>')))
    else {
      // Each stream on its own, again every CLUSTER_POLL_MS until some arrive or the wait is over.
      const deadline = Date.now() + waitMs
      for (;;) {
        const replies = await Promise.all(this.groups.map((group) => this.readGroup([group], 0, count, ['>'])))
        events = replies.flatMap((reply) => this.eventsOf(reply))
        const left = deadline - Date.now()
        if (events.length > 0 || left <= 0) break
        await new Promise((resolve) => setTimeout(resolve, Math.min(left, CLUSTER_POLL_MS)))
      }
    }
    this.unread = events.slice(count)
    return events.slice(0, count)
  }

  retry(): void {
    // What waits in `unread` is pending for this consumer, and is read again with the rest.
    this.unread = []
    for (const group of this.groups) this.recoverAfter.set(group, '0')
  }

  async claimStale(minIdleMs: number, count: number): Promise<ActivityEvent[]> {
    const events: ActivityEvent[] = []
    for (const group of this.groups) {
      if (events.length >= count) break
      const { redis, stream } = group
      const reply = (await withGroups([group], () => redis.xautoclaim(stream.key, group.name, this.name, minIdleMs, '0-0', 'COUNT', count - events.length))) as [string, Entry[]]
      events.push(...eventsOf(stream, reply[1]))
    }
    return events
  }

  async ack(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return
    const byGroup = new Map<ConsumerGroup, string[]>()
    for (const id of ids) {
      const group = this.groupOf(id)
      let entryIds = byGroup.get(group)
      if (entryIds === undefined) byGroup.set(group, (entryIds = []))
      entryIds.push(group.stream.entryId(id))
    }
    await Promise.all([...byGroup].map(([group, entryIds]) => group.ackAndDelete(entryIds)))
  }

  async close(): Promise<void> {
    this.reader.disconnect()
  }

  /** The events of a reply, each with the id of its stream. */
  private eventsOf(reply: Reply): ActivityEvent[] {
    if (reply === null) return []
    return reply.flatMap(([key, entries]) => {
      const group = this.groups.find((candidate) => candidate.stream.key === key)
      return group === undefined ? [] : eventsOf(group.stream, entries)
    })
  }

  /**
   * A read of the groups' streams from `ids` (`>`: what is new), blocking up to `waitMs` when
   * it is above 0; failed when Redis has not answered within its wait and the command timeout.
   * A stream whose group is gone has it created again (withGroups).
   */
  private readGroup(groups: readonly ConsumerGroup[], waitMs: number, count: number, ids: readonly string[]): Promise<Reply> {
    const read = (): Promise<Reply> => {
      let timer: NodeJS.Timeout | undefined
      const deadline = waitMs + this.commandTimeoutMs
      const late = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`Redis did not answer a read within ${deadline} ms`)), deadline)
      })
      const block = waitMs > 0 ? ['BLOCK', waitMs] : []
      const reply = this.reader.call('XREADGROUP', 'GROUP', (groups[0] as ConsumerGroup).name, this.name, 'COUNT', count, ...block, 'STREAMS', ...groups.map((group) => group.stream.key), ...ids) as Promise<Reply>
      return Promise.race([reply, late]).finally(() => clearTimeout(timer))
    }
    return withGroups(groups, read)
  }
}

/**
 * A call on streams' groups. A group is gone when Redis lost its data (restarted without
 * persistence, flushed): on NOGROUP every group is created again, from the start of its
 * stream (whatever is in it is unwritten: written entries are deleted), and the call is made
 * once more. Several writers may do this at once; BUSYGROUP says another one was first.
 */
async function withGroups<T>(groups: readonly ConsumerGroup[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (error) {
    if (!(error instanceof Error && error.message.startsWith('NOGROUP'))) throw error
    await Promise.all(groups.map((group) => group.create()))
    return fn()
  }
}
