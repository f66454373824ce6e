import { readFileSync } from 'node:fs'
import { Redis, type RedisOptions } from 'ioredis'
import { AppError } from '../errors/errors.js'
import type {
  ActivityEvent,
  ActivityEventSource,
  ActivityEventType,
  FeedMessage,
  Heartbeat,
  HeartbeatResult,
  LeaveReason,
  Presence,
  PresenceChange,
  PresenceEngine,
  PresenceTimings,
  Snapshot,
} from './presence-engine.js'

const lua = (name: string): string => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8')

/** The consumer group of the activity writers, one per site. */
export const WRITER_GROUP = 'cat-writers'

/** Redis answers slower than this, or not at all: the heartbeat gets 503 with this Retry-After. */
const RETRY_AFTER_S = 5

export interface RedisPresenceEngineOptions extends PresenceTimings {
  url: string
  /** Namespace of the keys: `cat:{site}:…`, hash-tagged so every script's keys share a cluster slot. */
  site: string
  now: () => number
  /** Tabs handled per sweep call. */
  sweepBatch?: number
  /** Names the connections in CLIENT LIST, e.g. the instance id. */
  connectionName?: string
}

export interface RedisKeys {
  tabs: string
  records: string
  events: string
  seq: string
  channel: string
  /** Pub/sub: contact ids whose consent changed. */
  consentChannel: string
}

export function redisKeys(site: string): RedisKeys {
  const prefix = `cat:{${site}}:`
  return { tabs: `${prefix}tabs`, records: `${prefix}records`, events: `${prefix}events`, seq: `${prefix}seq`, channel: `${prefix}feed`, consentChannel: `${prefix}consent` }
}

interface ScriptedRedis extends Redis {
  catBeat(...args: (string | number)[]): Promise<number>
  catHeartbeat(...args: (string | number)[]): Promise<HeartbeatResult>
  catSweep(...args: (string | number)[]): Promise<number>
  catEnd(...args: (string | number)[]): Promise<number>
}

interface StoredRecord {
  c: string
  n: string
  o: string
  p: string
  t: string
  s: number
  h: Record<string, 0 | 1>
}

export interface RedisPresenceEngine extends PresenceEngine {
  readonly keys: RedisKeys
  /** The command connection, for inspection (MEMORY USAGE, tests). */
  readonly redis: Redis
  /** The subscriber connection's name in CLIENT LIST. */
  readonly subscriberName: string
}

function unavailable(cause: unknown): AppError {
  return new AppError('unavailable', 'Presence store (Redis) is unavailable.', { retryAfterS: RETRY_AFTER_S, cause })
}

export async function createRedisPresenceEngine(options: RedisPresenceEngineOptions): Promise<RedisPresenceEngine> {
  const { url, site, now, presenceTimeoutMs, idleTimeoutMs, gapAfterMs, sweepBatch = 1000 } = options
  const keys = redisKeys(site)
  const name = options.connectionName ?? `cat-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  // No offline queue: while Redis is away a heartbeat fails at once with 503 and the snippet
  // backs off, instead of piling up in memory behind a reconnect.
  const base: RedisOptions = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 }
  const redis = new Redis(url, { ...base, connectionName: `${name}:cmd` }) as ScriptedRedis
  const subscriberName = `${name}:sub`
  const subscriber = new Redis(url, { ...base, connectionName: subscriberName, enableOfflineQueue: true })
  // Errors surface on the calls that fail; the connection events are only reconnect noise.
  redis.on('error', () => {})
  subscriber.on('error', () => {})

  const common = lua('common')
  redis.defineCommand('catBeat', { numberOfKeys: 4, lua: common + lua('beat') })
  redis.defineCommand('catHeartbeat', { numberOfKeys: 4, lua: common + lua('heartbeat') })
  redis.defineCommand('catSweep', { numberOfKeys: 4, lua: common + lua('sweep') })
  redis.defineCommand('catEnd', { numberOfKeys: 4, lua: common + lua('end') })

  const scriptHead = (): (string | number)[] => [keys.tabs, keys.records, keys.events, keys.seq, now(), presenceTimeoutMs, idleTimeoutMs, keys.channel]

  const listeners = new Set<(message: FeedMessage) => void>()
  let lastN: number | undefined
  let interrupted = false
  const emit = (message: FeedMessage): void => {
    for (const listener of listeners) listener(message)
  }
  const consentListeners = new Set<(contactId: string) => void>()
  subscriber.on('message', (channel: string, text: string) => {
    if (channel === keys.consentChannel) {
      const cut = text.indexOf('\u0000')
      // Our own notices were delivered locally when sent.
      if (text.slice(0, cut) === name) return
      for (const listener of consentListeners) listener(text.slice(cut + 1))
      return
    }
    let parsed: { n: number; k: 'joined' | 'updated' | 'left'; p?: Presence; l?: { contactId: string; at: number; reason: LeaveReason } }
    try {
      parsed = JSON.parse(text)
    } catch {
      return
    }
    if (lastN !== undefined) {
      // n at or below lastN: a change the last snapshot already holds, arriving late.
      // n = 1 below lastN: the counter started over (the keys were deleted).
      if (parsed.n > lastN + 1 || (parsed.n === 1 && lastN > 1)) emit({ type: 'reset' })
    }
    lastN = lastN === undefined || parsed.n > lastN || parsed.n === 1 ? parsed.n : lastN
    let change: PresenceChange
    if (parsed.k === 'left' && parsed.l !== undefined) {
      change = { kind: 'left', left: { contactId: String(parsed.l.contactId), at: parsed.l.at, reason: parsed.l.reason } }
    }
    else if ((parsed.k === 'joined' || parsed.k === 'updated') && parsed.p !== undefined) change = { kind: parsed.k, presence: fixPresence(parsed.p) }
    else return
    emit({ type: 'change', n: parsed.n, change })
  })
  subscriber.on('close', () => {
    interrupted = true
  })
  subscriber.on('ready', () => {
    // ioredis resubscribes by itself; whatever was published meanwhile is lost to us.
    if (!interrupted) return
    interrupted = false
    lastN = undefined
    emit({ type: 'reset' })
    for (const listener of consentListeners) listener('*')
  })

  await Promise.all([redis.connect(), subscriber.connect()])
  await subscriber.subscribe(keys.channel, keys.consentChannel)

  /** The event sources' own connections: closed with the engine if their owner did not. */
  const readers = new Set<Redis>()

  async function call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      throw unavailable(error)
    }
  }

  return {
    kind: 'redis',
    keys,
    redis,
    subscriberName,

    async heartbeat(beat: Heartbeat): Promise<HeartbeatResult> {
      return call(async () => {
        if (beat.event === 'beat') {
          // The fast path: a periodic beat of a known visible tab only pushes its expiry (and
          // notes a gap when it came late). 0: the tab is unknown or hidden, the full script decides.
          if ((await redis.catBeat(...scriptHead(), beat.contactId, beat.sid, gapAfterMs)) === 1) return 'unchanged'
        }
        return redis.catHeartbeat(
          ...scriptHead(),
          beat.contactId, beat.sid, beat.event, beat.clientId, beat.name, beat.company, beat.path, beat.title,
        )
      })
    },

    async end(contactId: string, reason: LeaveReason): Promise<boolean> {
      return call(async () => (await redis.catEnd(...scriptHead(), contactId, reason)) === 1)
    },

    async sweep(): Promise<number> {
      return call(async () => {
        let total = 0
        for (;;) {
          const removed = await redis.catSweep(...scriptHead(), sweepBatch)
          total += removed
          if (removed < sweepBatch) return total
        }
      })
    },

    async snapshot(): Promise<Snapshot> {
      return call(async () => {
        const result = await redis.multi().get(keys.seq).hgetall(keys.records).zrange(keys.tabs, 0, -1, 'WITHSCORES').exec()
        if (result === null) throw new Error('snapshot transaction aborted')
        for (const [error] of result) if (error) throw error
        const seq = result[0]?.[1] as string | null
        const records = result[1]?.[1] as Record<string, string>
        const tabs = result[2]?.[1] as string[]
        const lastSeen = new Map<string, number>()
        for (let i = 0; i < tabs.length; i += 2) {
          const member = tabs[i] as string
          const hidden = member.endsWith('|h')
          const rest = hidden ? member.slice(0, -2) : member
          const contactId = rest.slice(0, rest.lastIndexOf('|'))
          const seen = Number(tabs[i + 1]) - (hidden ? idleTimeoutMs : presenceTimeoutMs)
          if (seen > (lastSeen.get(contactId) ?? 0)) lastSeen.set(contactId, seen)
        }
        const online: Presence[] = []
        for (const [contactId, text] of Object.entries(records)) {
          const record = JSON.parse(text) as StoredRecord
          let tabCount = 0
          let active = false
          for (const hidden of Object.values(record.h)) {
            tabCount += 1
            if (hidden === 0) active = true
          }
          online.push({
            contactId,
            clientId: record.c,
            name: record.n,
            company: record.o,
            path: record.p,
            title: record.t,
            state: active ? 'active' : 'idle',
            since: record.s,
            lastSeen: lastSeen.get(contactId) ?? record.s,
            tabs: tabCount,
          })
        }
        const n = seq === null ? 0 : Number(seq)
        // The snapshot is a known position: a change after it that never arrives is a gap.
        if (!interrupted) lastN = Math.max(lastN ?? 0, n)
        return { n, online }
      })
    },

    onFeed(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },

    async tailEvents(count: number): Promise<ActivityEvent[]> {
      const entries = await call(() => redis.xrevrange(keys.events, '+', '-', 'COUNT', count))
      return entries.reverse().map(([id, fields]) => parseEvent(id, fields))
    },

    async eventSource(consumer: string): Promise<ActivityEventSource> {
      // Its own connection: XREADGROUP … BLOCK holds the connection while it waits.
      const reader = new Redis(url, { ...base, connectionName: `${name}:writer` })
      readers.add(reader)
      reader.on('error', () => {})
      await reader.connect()
      try {
        await redis.xgroup('CREATE', keys.events, WRITER_GROUP, '0', 'MKSTREAM')
      } catch (error) {
        if (!String(error).includes('BUSYGROUP')) throw error
      }
      /** Handed to this consumer and not yet acknowledged: read again before anything new. */
      const unacked = new Set<string>()
      const take = (entries: [string, string[] | null][]): ActivityEvent[] => {
        const events: ActivityEvent[] = []
        for (const [id, fields] of entries) {
          if (fields === null) continue // deleted while pending (erasure)
          unacked.add(id)
          events.push(parseEvent(id, fields))
        }
        return events
      }
      type Reply = [string, [string, string[] | null][]][] | null
      return {
        async read(count, waitMs) {
          if (unacked.size > 0) {
            const own = (await reader.xreadgroup('GROUP', WRITER_GROUP, consumer, 'COUNT', count, 'STREAMS', keys.events, '0')) as Reply
            const entries = own?.[0]?.[1] ?? []
            const gone = entries.filter(([, fields]) => fields === null).map(([id]) => id)
            if (gone.length > 0) await redis.xack(keys.events, WRITER_GROUP, ...gone)
            const events = take(entries)
            if (events.length > 0) return events
            unacked.clear()
          }
          const fresh = (await reader.xreadgroup('GROUP', WRITER_GROUP, consumer, 'COUNT', count, 'BLOCK', Math.max(1, waitMs), 'STREAMS', keys.events, '>')) as Reply
          return take(fresh?.[0]?.[1] ?? [])
        },
        async claimStale(minIdleMs, count) {
          const reply = (await redis.xautoclaim(keys.events, WRITER_GROUP, consumer, minIdleMs, '0-0', 'COUNT', count)) as [string, [string, string[] | null][]]
          return take(reply[1])
        },
        async ack(ids) {
          if (ids.length === 0) return
          // Written entries leave the stream at once; nothing unwritten is ever trimmed.
          await redis.multi().xack(keys.events, WRITER_GROUP, ...ids).xdel(keys.events, ...ids).exec()
          for (const id of ids) unacked.delete(id)
        },
        async close() {
          readers.delete(reader)
          reader.disconnect()
        },
      }
    },

    async discardEvents(contactId: string): Promise<number> {
      return call(async () => {
        let start = '-'
        let discarded = 0
        for (;;) {
          const entries = await redis.xrange(keys.events, start, '+', 'COUNT', 1000)
          const mine = entries.filter(([, fields]) => parseEvent('', fields).contactId === contactId).map(([id]) => id)
          if (mine.length > 0) {
            await redis.multi().xack(keys.events, WRITER_GROUP, ...mine).xdel(keys.events, ...mine).exec()
            discarded += mine.length
          }
          if (entries.length < 1000) return discarded
          start = `(${(entries[entries.length - 1] as [string, string[]])[0]}`
        }
      })
    },

    async count(): Promise<number> {
      return call(() => redis.hlen(keys.records))
    },

    async notifyConsentChange(contactId: string): Promise<void> {
      // Locally at once (the caller may act on it next), and to the other instances.
      for (const listener of consentListeners) listener(contactId)
      await call(() => redis.publish(keys.consentChannel, `${name}\u0000${contactId}`))
    },

    onConsentChange(listener) {
      consentListeners.add(listener)
      return () => consentListeners.delete(listener)
    },

    async ping(): Promise<void> {
      await call(() => redis.ping())
    },

    async close(): Promise<void> {
      listeners.clear()
      consentListeners.clear()
      for (const reader of readers) reader.disconnect()
      readers.clear()
      await Promise.allSettled([redis.quit(), subscriber.quit()])
      redis.disconnect()
      subscriber.disconnect()
    },
  }
}

/** Puts a presence decoded from Lua's cjson (keys in hash order) into the contract's key order. */
function fixPresence(p: Presence): Presence {
  return {
    contactId: String(p.contactId),
    clientId: String(p.clientId),
    name: p.name,
    company: p.company,
    path: p.path,
    title: p.title,
    state: p.state,
    since: p.since,
    lastSeen: p.lastSeen,
    tabs: p.tabs,
  }
}

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
