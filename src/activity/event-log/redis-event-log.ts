/**
 * The event log in a Redis Stream (the presence scripts append to it): the activity writers of
 * all instances read it as one consumer group, each event handed to one of them, and delete
 * each entry once it is written.
 */
// A Redis or a Redis Cluster: the commands used here behave alike on both.
import type { RedisClient as Redis } from '../../presence/redis/connections.js'
import type { LeaveReason } from '../../presence/presence-engine.js'
import type { RedisConnections } from '../../presence/redis/connections.js'
import type { ActivityEvent, ActivityEventLog, ActivityEventSource, ActivityEventType } from './event-log.js'

/** The consumer group of the activity writers, one per site. */
export const WRITER_GROUP = 'cat-writers'

/** Entries looked at per call while discarding a contact's events. */
const DISCARD_PAGE = 1000

type Entry = [string, string[] | null]
type Reply = [string, Entry[]][] | null

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

/** The events of entries still in the stream (an entry deleted while pending has no fields: erasure). */
function eventsOf(entries: readonly Entry[]): ActivityEvent[] {
  const events: ActivityEvent[] = []
  for (const [id, fields] of entries) if (fields !== null) events.push(parseEvent(id, fields))
  return events
}

export interface RedisEventLogOptions {
  /** The stream's key (keys.ts). */
  stream: string
}

export function createRedisEventLog(connections: RedisConnections, options: RedisEventLogOptions): ActivityEventLog {
  const { redis, call } = connections
  const { stream } = options
  const group = new ConsumerGroup(redis, stream)
  return {
    async consumer(name) {
      // Its own connection: XREADGROUP … BLOCK holds the connection while it waits. No command
      // timeout on it (a read that waits would hit it); each read has a deadline of its own.
      const reader = await connections.open('writer')
      await group.create()
      return new RedisEventSource(group, reader, name, connections.commandTimeoutMs)
    },

    async tail(count) {
      const entries = await call(() => redis.xrevrange(stream, '+', '-', 'COUNT', count))
      return entries.reverse().map(([id, fields]) => parseEvent(id, fields))
    },

    async discard(contactId) {
      return call(async () => {
        let start = '-'
        let discarded = 0
        for (;;) {
          const entries = await redis.xrange(stream, start, '+', 'COUNT', DISCARD_PAGE)
          const mine = entries.filter(([, fields]) => parseEvent('', fields).contactId === contactId).map(([id]) => id)
          if (mine.length > 0) {
            await group.ackAndDelete(mine)
            discarded += mine.length
          }
          if (entries.length < DISCARD_PAGE) return discarded
          start = `(${(entries[entries.length - 1] as [string, string[]])[0]}`
        }
      })
    },
  }
}

/** The writers' consumer group of the stream. */
class ConsumerGroup {
  constructor(readonly redis: Redis, readonly stream: string) {}

  /** Creates the group, from the start of the stream, unless it exists. */
  async create(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.stream, WRITER_GROUP, '0', 'MKSTREAM')
    } catch (error) {
      if (!String(error).includes('BUSYGROUP')) throw error
    }
  }

  /**
   * The group is gone when Redis lost its data (restarted without persistence, flushed): it is
   * created again, from the start of the stream (whatever is in it is unwritten: written
   * entries are deleted), and the call is made once more. Several writers may do this at once;
   * BUSYGROUP says another one was first.
   */
  async withGroup<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('NOGROUP'))) throw error
      await this.create()
      return fn()
    }
  }

  /** Written entries leave the stream at once; nothing unwritten is ever trimmed. */
  async ackAndDelete(ids: readonly string[]): Promise<void> {
    await this.redis.multi().xack(this.stream, WRITER_GROUP, ...ids).xdel(this.stream, ...ids).exec()
  }
}

class RedisEventSource implements ActivityEventSource {
  /**
   * Set by retry(): this consumer's pending entries after this id are read again before
   * anything new (a write failed). Reads go on while earlier ones are being written, so
   * what is pending is not by itself a reason to read it again.
   */
  private recoverAfter: string | undefined

  constructor(
    private readonly group: ConsumerGroup,
    private readonly reader: Redis,
    private readonly name: string,
    private readonly commandTimeoutMs: number,
  ) {}

  async read(count: number, waitMs: number): Promise<ActivityEvent[]> {
    const { stream } = this.group
    while (this.recoverAfter !== undefined) {
      const own = await this.readGroup(0, count, 'STREAMS', stream, this.recoverAfter)
      const entries = own?.[0]?.[1] ?? []
      if (entries.length === 0) {
        this.recoverAfter = undefined
        break
      }
      this.recoverAfter = (entries[entries.length - 1] as Entry)[0]
      const gone = entries.filter(([, fields]) => fields === null).map(([id]) => id)
      if (gone.length > 0) await this.group.redis.xack(stream, WRITER_GROUP, ...gone)
      const events = eventsOf(entries)
      if (events.length > 0) return events
    }
    const block = Math.max(1, waitMs)
    const fresh = await this.readGroup(block, count, 'BLOCK', block, 'STREAMS', stream, '>')
    return eventsOf(fresh?.[0]?.[1] ?? [])
  }

  retry(): void {
    this.recoverAfter = '0'
  }

  async claimStale(minIdleMs: number, count: number): Promise<ActivityEvent[]> {
    const { redis, stream } = this.group
    const reply = (await this.group.withGroup(() => redis.xautoclaim(stream, WRITER_GROUP, this.name, minIdleMs, '0-0', 'COUNT', count))) as [string, Entry[]]
    return eventsOf(reply[1])
  }

  async ack(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return
    await this.group.ackAndDelete(ids)
  }

  async close(): Promise<void> {
    this.reader.disconnect()
  }

  /** A read of the group, failed when Redis has not answered within its wait and the command timeout. */
  private readGroup(waitMs: number, ...args: (string | number)[]): Promise<Reply> {
    return this.group.withGroup(() => {
      let timer: NodeJS.Timeout | undefined
      const deadline = waitMs + this.commandTimeoutMs
      const late = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`Redis did not answer a read within ${deadline} ms`)), deadline)
      })
      const read = this.reader.call('XREADGROUP', 'GROUP', WRITER_GROUP, this.name, 'COUNT', ...args) as Promise<Reply>
      return Promise.race([read, late]).finally(() => clearTimeout(timer))
    })
  }
}
