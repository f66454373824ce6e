import { readFileSync } from 'node:fs'
import { Redis, type RedisOptions } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import { AppError } from '../errors/errors.js'
import type { FeedMessage, Heartbeat, HeartbeatResult, LeaveReason, Presence, PresenceChange, PresenceEngine, EngineEventsAndConsent, PresenceTimings, Snapshot } from './presence-engine.js'
import type { ActivityEvent, ActivityEventSource, ActivityEventType } from '../activity/event-log/event-log.js'
import { DEFAULT_MAX_TABS } from './presence-engine.js'
import { wholeSnapshot, type SnapshotParts } from './snapshot-parts.js'

const lua = (name: string): string => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8')

/** The consumer group of the activity writers, one per site. */
export const WRITER_GROUP = 'cat-writers'

/** Most beats in one call of beat.lua. */
const BEATS_PER_CALL = 500

/**
 * A turn's queue goes out as soon as a heartbeat for the full script makes it this long: Redis
 * then runs those scripts while this process reads the next requests, where one call at the
 * end of the turn would leave each waiting for the other (measured with bench/cpu.ts --event nav).
 */
const SEND_FULL_AT = 16

/**
 * Sends of queued heartbeats awaiting Redis's answer at a time: heartbeats that arrive while
 * one is unanswered wait for its answer and then go together, so under load the calls grow
 * instead of multiplying: a write to a socket is a good part of a heartbeat's cost, and fewer,
 * larger calls cost Redis less per beat (bench/cpu.ts prints requests per script call).
 */
const MAX_IN_FLIGHT = 1

/**
 * Turns of the event loop a send of queued heartbeats waits for, from the first heartbeat queued
 * (or from Redis's answer to the last send, when heartbeats queued meanwhile): two, so the
 * requests whose bytes arrived while the first turn's were handled are read and join the call.
 * The wait is a poll of the sockets, not a timer, so a lone heartbeat is not held back by a
 * clock; a timer would cap a client with few connections.
 */
const TURNS_BEFORE_SEND = 2

/** Most heartbeats in one call of heartbeat.lua. */
const HEARTBEATS_PER_CALL = 100

/** Due buckets handed to one sweep call. */
const SWEEP_BUCKETS = 256

/**
 * Tab buckets per snapshot part: 32 parts, about 3 000 contacts each at 100 000 online. Small
 * parts are sent while the next are read, and their maps and arrays stay small; parts of 32,
 * 64 or 128 buckets read alike (bench/snapshot.ts compares checkouts).
 */
export const SNAPSHOT_PART_BUCKETS = 64

/** Snapshot parts being read while the one before them is handed over. */
const SNAPSHOT_READ_AHEAD = 2

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
  /**
   * ms a command may go unanswered before it fails (and the request with it: 503): a Redis
   * that hangs (frozen, swapping, a script running long) is then as unavailable as one that is
   * gone. Default 1000.
   */
  commandTimeoutMs?: number
  /** Where the changes of Redis's state (unavailable, available again) are logged. */
  log?: Pick<FastifyBaseLogger, 'info' | 'warn'>
}

export interface RedisKeys {
  /** The tab index: member = bucket number, score at or before the earliest expiry in that bucket. */
  due: string
  /** The contact records hash (contact id → record, see lua/common.lua). */
  records: string
  events: string
  seq: string
  channel: string
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

export function redisKeys(site: string): RedisKeys {
  const prefix = `cat:{${site}}:`
  const due = `${prefix}due`
  return { due, records: `${prefix}contacts`, events: `${prefix}events`, seq: `${prefix}seq`, channel: `${prefix}feed`, consentChannel: `${prefix}consent` }
}

/** The sorted set holding the tabs of bucket `n` (hash-tagged like every key of the site). */
export function bucketKey(site: string, n: number | string): string {
  return `cat:{${site}}:t:${n}`
}

/** Every key holding presence state (not the event stream or the feed counter): what an online contact costs. */
export function presenceKeys(site: string): string[] {
  const keys = redisKeys(site)
  const all = [keys.due, keys.records]
  for (let n = 0; n < TAB_BUCKETS; n += 1) all.push(bucketKey(site, n))
  return all
}

/** Sum of `MEMORY USAGE key SAMPLES 0` over presenceKeys(site), and how many of them exist. */
export async function presenceMemoryUsage(redis: Redis, site: string): Promise<{ bytes: number; keys: number }> {
  const pipeline = redis.pipeline()
  for (const key of presenceKeys(site)) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')
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

/** Keys of the layout before the tab buckets (one `tabs` sorted set, JSON records in `records`). */
function legacyKeys(site: string): string[] {
  return [`cat:{${site}}:tabs`, `cat:{${site}}:records`]
}

/**
 * How long keys of the old layout are kept after an instance of this layout starts: instances
 * of the old version still running during a rolling deploy keep their state that long; then
 * the keys go (their contacts join again on their next beat; the activity log ends a session
 * left open when its contact joins again).
 */
const LEGACY_KEYS_TTL_MS = 60 * 60 * 1000

interface ScriptedRedis extends Redis {
  catBeat(...args: (string | number)[]): Promise<number[]>
  catHeartbeat(...args: (string | number)[]): Promise<HeartbeatResult[]>
  catSweep(...args: (string | number)[]): Promise<number>
  catEnd(...args: (string | number)[]): Promise<number>
}

export interface RedisPresenceEngine extends PresenceEngine, EngineEventsAndConsent {
  readonly keys: RedisKeys
  /** The command connection, for inspection (MEMORY USAGE, tests). */
  readonly redis: Redis
  /** The subscriber connection's name in CLIENT LIST. */
  readonly subscriberName: string
}

/** ioredis's error for a command unanswered within `commandTimeout`. */
function timedOut(error: unknown): boolean {
  return error instanceof Error && error.message === 'Command timed out'
}

function unavailable(cause: unknown): AppError {
  return new AppError('unavailable', 'Presence store (Redis) is unavailable.', { retryAfterS: RETRY_AFTER_S, cause })
}

export async function createRedisPresenceEngine(options: RedisPresenceEngineOptions): Promise<RedisPresenceEngine> {
  const { url, site, now, presenceTimeoutMs, idleTimeoutMs, gapAfterMs, maxTabs = DEFAULT_MAX_TABS, sweepBatch = 1000, commandTimeoutMs = 1000, log } = options
  const keys = redisKeys(site)
  const name = options.connectionName ?? `cat-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  // No offline queue: while Redis is away a heartbeat fails at once with 503 and the snippet
  // backs off, instead of piling up in memory behind a reconnect.
  const base: RedisOptions = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 }
  // No auto-pipelining: the beats of one event-loop turn already go as one script call
  // (sendQueued); on top of that ioredis's per-turn pipelines cost more than they saved
  // (more CPU per request for beats and navs alike in bench/cpu.ts).
  // ioredis keeps the command of a timed-out call in its queue and matches the late reply to
  // it, so the answers that follow still reach their own calls.
  const redis = new Redis(url, { ...base, connectionName: `${name}:cmd`, commandTimeout: commandTimeoutMs }) as ScriptedRedis
  const subscriberName = `${name}:sub`
  const subscriber = new Redis(url, { ...base, connectionName: subscriberName, enableOfflineQueue: true })
  // Errors surface on the calls that fail; the connection events are only reconnect noise.
  redis.on('error', () => {})
  subscriber.on('error', () => {})

  const common = lua('common')
  const full = common + lua('records')
  // heartbeat, end: the four common keys and the contact's bucket. sweep: the common keys and
  // any number of buckets, beat: the index and one bucket per beat, so their key counts come
  // first in their arguments. The fast path (beat) stands alone with few arguments:
  // definitions and arguments cost time on every call.
  redis.defineCommand('catBeat', { lua: lua('beat') })
  redis.defineCommand('catHeartbeat', { lua: full + lua('heartbeat') })
  redis.defineCommand('catSweep', { lua: full + lua('sweep') })
  redis.defineCommand('catEnd', { numberOfKeys: 5, lua: full + lua('end') })

  const commonKeys = [keys.due, keys.records, keys.events, keys.seq]
  /** KEYS and the common ARGV of a script about one contact. */
  const scriptHead = (contactId: string): (string | number)[] => [
    ...commonKeys, bucketKey(site, tabBucket(contactId)), now(), presenceTimeoutMs, idleTimeoutMs, keys.channel,
  ]

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
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      return
    }
    // An array: the changes of one script call, in order.
    if (Array.isArray(parsed)) for (const message of parsed) onChange(message as FeedWire)
    else onChange(parsed as FeedWire)
  })
  type FeedWire = { n: number; k: 'joined' | 'updated' | 'left'; p?: Presence; l?: { contactId: string; at: number; reason: LeaveReason } }
  function onChange(parsed: FeedWire): void {
    if (parsed === null || typeof parsed !== 'object' || typeof parsed.n !== 'number') return
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
    emit({ type: 'change', position: parsed.n, change })
  }
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
  // The old layout's keys, if a previous version left them: they expire, once (NX semantics by hand, Redis 6.2 has no PEXPIRE NX).
  await redis.eval(
    "for _, key in ipairs(KEYS) do if redis.call('PTTL', key) == -1 then redis.call('PEXPIRE', key, ARGV[1]) end end",
    2, ...legacyKeys(site), LEGACY_KEYS_TTL_MS,
  )

  /**
   * Heartbeats are gathered over two turns of the event loop (TURNS_BEFORE_SEND: the
   * connections whose requests arrived together, and those that arrived meanwhile), and while
   * the last send is unanswered (MAX_IN_FLIGHT), and sent in the order they arrived: each run
   * of fast-path beats as one call of beat.lua, each run of the others as one call of
   * heartbeat.lua. Per heartbeat that
   * saves a command in ioredis, a write to the socket and a script call in Redis. The order
   * matters: a beat queued before a leave of the same tab must not come after it and open the
   * tab again.
   */
  interface Queued {
    /** true: a fast-path beat, resolved with whether it applied; false: the full script. */
    fast: boolean
    bucket: string
    at: number
    beat: Heartbeat
    resolve: (result: HeartbeatResult | boolean) => void
    reject: (error: unknown) => void
  }
  let queue: Queued[] = []
  /** Resolves with the call's error, if it failed. */
  const settle = (batch: readonly Queued[], call: Promise<(HeartbeatResult | number)[]>): Promise<unknown> =>
    call.then(
      (results) => {
        batch.forEach((queued, i) => queued.resolve(queued.fast ? results[i] === 1 : results[i] as HeartbeatResult))
        return undefined
      },
      (error: unknown) => {
        batch.forEach((queued) => queued.reject(error))
        return error
      },
    )
  const sendRun = (batch: readonly Queued[]): Promise<unknown> => {
    const args: (string | number)[] = []
    if (batch[0]?.fast === true) {
      args.push(1 + batch.length, keys.due)
      for (const queued of batch) args.push(queued.bucket)
      args.push(presenceTimeoutMs, gapAfterMs)
      for (const { at, beat } of batch) args.push(at, beat.contactId, beat.sid)
      return settle(batch, redis.catBeat(...args))
    }
    args.push(commonKeys.length + batch.length, ...commonKeys)
    for (const queued of batch) args.push(queued.bucket)
    args.push((batch[0] as Queued).at, presenceTimeoutMs, idleTimeoutMs, keys.channel, gapAfterMs, maxTabs)
    for (const { at, beat } of batch) args.push(at, beat.contactId, beat.sid, beat.event, beat.clientId, beat.name, beat.company, beat.path, beat.title)
    return settle(batch, redis.catHeartbeat(...args))
  }
  /** Sends of the queue Redis has not answered yet. */
  let inFlight = 0
  /** Sends everything queued, now, in order (a scheduled send still comes, for what queues meanwhile). */
  const sendQueued = (): void => {
    if (queue.length === 0) return
    const all = queue
    queue = []
    let start = 0
    let last: Promise<unknown> = Promise.resolve()
    for (let i = 1; i <= all.length; i += 1) {
      const first = all[start] as Queued
      if (i === all.length || all[i]?.fast !== first.fast || i - start === (first.fast ? BEATS_PER_CALL : HEARTBEATS_PER_CALL)) {
        last = sendRun(all.slice(start, i))
        start = i
      }
    }
    inFlight += 1
    // Redis answers in order: the last call's answer ends the send. What queued meanwhile goes
    // after the turns of the wait.
    void last.then((error) => {
      inFlight -= 1
      // Unanswered within the command timeout: Redis hangs, and what queued behind the call
      // would wait as long again for its own; it fails now, with it.
      if (timedOut(error)) {
        const waiting = queue
        queue = []
        for (const queued of waiting) queued.reject(error)
      }
      if (queue.length > 0) scheduleSend()
    })
  }
  /** Turns still to wait before the scheduled send; 0: none is scheduled. */
  let turnsLeft = 0
  /** The end of a turn: after the last of the wait, the queue goes unless a send is still unanswered (its answer sends it). */
  const sendAtTurnEnd = (): void => {
    turnsLeft -= 1
    if (turnsLeft > 0) setImmediate(sendAtTurnEnd)
    else if (inFlight < MAX_IN_FLIGHT) sendQueued()
  }
  const scheduleSend = (): void => {
    if (turnsLeft > 0) return
    turnsLeft = TURNS_BEFORE_SEND
    setImmediate(sendAtTurnEnd)
  }
  const enqueue = <T extends HeartbeatResult | boolean>(fast: boolean, beat: Heartbeat): Promise<T> =>
    new Promise((resolve, reject) => {
      queue.push({ fast, bucket: bucketKey(site, tabBucket(beat.contactId)), at: now(), beat, resolve: resolve as Queued['resolve'], reject })
      if (!fast && queue.length >= SEND_FULL_AT) {
        sendQueued()
      } else if (inFlight < MAX_IN_FLIGHT) {
        scheduleSend()
      }
    })

  type Reply = [string, [string, string[] | null][]][] | null
  /** The event sources' own connections: closed with the engine if their owner did not. */
  const readers = new Set<Redis>()

  /** Whether the last call failed: the log gets the changes of state, not every failure. */
  let failing = false
  async function call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      const result = await fn()
      if (failing) {
        failing = false
        log?.info('Redis is available again')
      }
      return result
    } catch (error) {
      if (!failing) {
        failing = true
        log?.warn({ reason: error instanceof Error ? error.message : String(error) }, 'Redis is unavailable; its callers get 503 until it answers again')
      }
      throw unavailable(error)
    }
  }

  /** A contact's lastSeen from the tabs of its bucket(s): the latest tab's expiry minus the timeout of its kind. */
  function addLastSeen(lastSeen: Map<string, number>, tabs: readonly string[]): void {
    for (let i = 0; i < tabs.length; i += 2) {
      const member = tabs[i] as string
      let end = member.length
      const hidden = member.charCodeAt(end - 1) === 104 && member.charCodeAt(end - 2) === 124 // "|h"
      if (hidden) end -= 2
      const contactId = member.slice(0, member.lastIndexOf('|', end - 1))
      const seen = Number(tabs[i + 1]) - (hidden ? idleTimeoutMs : presenceTimeoutMs)
      const before = lastSeen.get(contactId)
      if (before === undefined || seen > before) lastSeen.set(contactId, seen)
    }
  }

  interface ReadPart {
    online: Presence[]
    /** The feed position at which the part's tabs were read, and its records. */
    tabsAt: number
    recordsAt: number
    /** The contacts that had tabs. */
    found: Map<string, number>
  }

  /** Every error of a transaction's replies, thrown; the replies otherwise. */
  const replies = (result: [Error | null, unknown][] | null): unknown[] => {
    if (result === null) throw new Error('snapshot transaction aborted')
    return result.map(([error, reply]) => {
      if (error) throw error
      return reply
    })
  }

  /**
   * One part: the tabs of buckets first…first+SNAPSHOT_PART_BUCKETS-1 with the feed position
   * (one transaction), then the records of the contacts they name with the position again.
   * Between the two a contact may change: one that had no tabs is in the part as it was at the
   * first position (absent), one that had tabs as it is at the second (present or gone), and
   * the hub sends each the changes after its own position (SnapshotParts.position).
   */
  async function readPart(first: number): Promise<ReadPart> {
    const tabsRead = redis.multi().get(keys.seq)
    for (let n = first; n < first + SNAPSHOT_PART_BUCKETS && n < TAB_BUCKETS; n += 1) tabsRead.zrange(bucketKey(site, n), 0, -1, 'WITHSCORES')
    const [seq, ...buckets] = replies(await tabsRead.exec())
    const tabsAt = Number(seq ?? 0)
    const found = new Map<string, number>()
    for (const tabs of buckets) addLastSeen(found, tabs as string[])
    if (found.size === 0) return { online: [], tabsAt, recordsAt: tabsAt, found }
    const ids = [...found.keys()]
    const [records, seqAgain] = replies(await redis.multi().hmget(keys.records, ...ids).get(keys.seq).exec()) as [(string | null)[], string | null]
    const online: Presence[] = []
    ids.forEach((contactId, i) => {
      const raw = records[i]
      if (raw != null) online.push(recordPresence(contactId, raw, found.get(contactId)))
    })
    return { online, tabsAt, recordsAt: Number(seqAgain ?? 0), found }
  }

  function snapshotParts(): SnapshotParts {
    const read: ReadPart[] = []
    async function* parts(): AsyncGenerator<Presence[]> {
      const ahead: Promise<ReadPart>[] = []
      let next = 0
      const readNext = (): void => {
        if (next >= TAB_BUCKETS) return
        const first = next
        const part = call(() => readPart(first))
        part.catch(() => {}) // awaited in turn; not unhandled if the reader stops before
        ahead.push(part)
        next += SNAPSHOT_PART_BUCKETS
      }
      for (let k = 0; k <= SNAPSHOT_READ_AHEAD; k += 1) readNext()
      for (let part = ahead.shift(); part !== undefined; part = ahead.shift()) {
        const done = await part
        readNext()
        read.push(done)
        yield done.online
      }
      // The parts are known positions: a change after them that never arrives is a gap.
      if (!interrupted) lastN = Math.max(lastN ?? 0, highest())
    }
    const highest = (): number => read.reduce((max, part) => Math.max(max, part.recordsAt), 0)
    return {
      parts: parts(),
      position(contactId) {
        const part = read[Math.floor(tabBucket(contactId) / SNAPSHOT_PART_BUCKETS)]
        if (part === undefined) throw new Error('snapshot position asked before its parts were read')
        return part.found.has(contactId) ? part.recordsAt : part.tabsAt
      },
      get lowest() {
        return read.reduce((min, part) => Math.min(min, part.tabsAt), Infinity)
      },
      get highest() {
        return highest()
      },
    }
  }

  return {
    kind: 'redis',
    keys,
    redis,
    subscriberName,

    async heartbeat(beat: Heartbeat): Promise<HeartbeatResult> {
      return call(async () => {
        // The fast path: a periodic beat of a known visible tab, on time, only pushes its
        // expiry. false: the tab is unknown or hidden, or the beat late; the full script decides.
        if (beat.event === 'beat' && await enqueue<boolean>(true, beat)) return 'unchanged'
        return enqueue<HeartbeatResult>(false, beat)
      })
    },

    async end(contactId: string, reason: LeaveReason): Promise<boolean> {
      return call(async () => {
        // Heartbeats accepted before the end go to Redis before it.
        sendQueued()
        return (await redis.catEnd(...scriptHead(contactId), contactId, reason)) === 1
      })
    },

    async sweep(): Promise<number> {
      return call(async () => {
        let total = 0
        for (;;) {
          const at = now()
          const due = await redis.zrangebyscore(keys.due, '-inf', at, 'LIMIT', 0, SWEEP_BUCKETS)
          if (due.length === 0) return total
          const buckets = due.map((n) => bucketKey(site, n))
          const removed = await redis.catSweep(
            commonKeys.length + buckets.length, ...commonKeys, ...buckets, at, presenceTimeoutMs, idleTimeoutMs, keys.channel, sweepBatch,
          )
          total += removed
          // Fewer than asked on both counts: every due bucket was swept up to `at`.
          if (removed < sweepBatch && due.length < SWEEP_BUCKETS) return total
        }
      })
    },

    snapshot(): Promise<Snapshot> {
      return wholeSnapshot(snapshotParts())
    },

    snapshotParts,

    onFeed(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },

    async tailEvents(count: number): Promise<ActivityEvent[]> {
      const entries = await call(() => redis.xrevrange(keys.events, '+', '-', 'COUNT', count))
      return entries.reverse().map(([id, fields]) => parseEvent(id, fields))
    },

    async eventSource(consumer: string): Promise<ActivityEventSource> {
      // Its own connection: XREADGROUP … BLOCK holds the connection while it waits. No command
      // timeout on it (a read that waits would hit it); each read has a deadline of its own.
      const reader = new Redis(url, { ...base, connectionName: `${name}:writer` })
      readers.add(reader)
      reader.on('error', () => {})
      await reader.connect()
      const createGroup = async (): Promise<void> => {
        try {
          await redis.xgroup('CREATE', keys.events, WRITER_GROUP, '0', 'MKSTREAM')
        } catch (error) {
          if (!String(error).includes('BUSYGROUP')) throw error
        }
      }
      await createGroup()
      /**
       * The group is gone when Redis lost its data (restarted without persistence, flushed):
       * it is created again, from the start of the stream (whatever is in it is unwritten:
       * written entries are deleted), and the call is made once more. Several writers may do
       * this at once; BUSYGROUP says another one was first.
       */
      const withGroup = async <T>(fn: () => Promise<T>): Promise<T> => {
        try {
          return await fn()
        } catch (error) {
          if (!(error instanceof Error && error.message.startsWith('NOGROUP'))) throw error
          await createGroup()
          return fn()
        }
      }
      /** A read of the group, failed when Redis has not answered within its wait and the command timeout. */
      const readGroup = (waitMs: number, ...args: (string | number)[]): Promise<Reply> =>
        withGroup(() => {
          let timer: NodeJS.Timeout | undefined
          const deadline = waitMs + commandTimeoutMs
          const late = new Promise<never>((_resolve, reject) => {
            timer = setTimeout(() => reject(new Error(`Redis did not answer a read within ${deadline} ms`)), deadline)
          })
          const read = reader.call('XREADGROUP', 'GROUP', WRITER_GROUP, consumer, 'COUNT', ...args) as Promise<Reply>
          return Promise.race([read, late]).finally(() => clearTimeout(timer))
        })
      /**
       * Set by retry(): this consumer's pending entries after this id are read again before
       * anything new (a write failed). Reads go on while earlier ones are being written, so
       * what is pending is not by itself a reason to read it again.
       */
      let recoverAfter: string | undefined
      const take = (entries: [string, string[] | null][]): ActivityEvent[] => {
        const events: ActivityEvent[] = []
        for (const [id, fields] of entries) {
          if (fields === null) continue // deleted while pending (erasure)
          events.push(parseEvent(id, fields))
        }
        return events
      }
      return {
        async read(count, waitMs) {
          while (recoverAfter !== undefined) {
            const own = await readGroup(0, count, 'STREAMS', keys.events, recoverAfter)
            const entries = own?.[0]?.[1] ?? []
            if (entries.length === 0) {
              recoverAfter = undefined
              break
            }
            recoverAfter = (entries[entries.length - 1] as [string, unknown])[0]
            const gone = entries.filter(([, fields]) => fields === null).map(([id]) => id)
            if (gone.length > 0) await redis.xack(keys.events, WRITER_GROUP, ...gone)
            const events = take(entries)
            if (events.length > 0) return events
          }
          const block = Math.max(1, waitMs)
          const fresh = await readGroup(block, count, 'BLOCK', block, 'STREAMS', keys.events, '>')
          return take(fresh?.[0]?.[1] ?? [])
        },
        retry() {
          recoverAfter = '0'
        },
        async claimStale(minIdleMs, count) {
          const reply = (await withGroup(() => redis.xautoclaim(keys.events, WRITER_GROUP, consumer, minIdleMs, '0-0', 'COUNT', count))) as [string, [string, string[] | null][]]
          return take(reply[1])
        },
        async ack(ids) {
          if (ids.length === 0) return
          // Written entries leave the stream at once; nothing unwritten is ever trimmed.
          await redis.multi().xack(keys.events, WRITER_GROUP, ...ids).xdel(keys.events, ...ids).exec()
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

/** Undoes the escape of lua/common.lua: RS "0" is RS, RS "1" is US. */
function unescapeField(text: string): string {
  let at = text.indexOf('\x1e')
  if (at === -1) return text
  let out = ''
  let from = 0
  for (; at !== -1; at = text.indexOf('\x1e', from)) {
    out += text.slice(from, at) + (text[at + 1] === '1' ? '\x1f' : '\x1e')
    from = at + 2
  }
  return out + text.slice(from)
}

/**
 * The presence of a contact from its record in the records hash (format: lua/common.lua);
 * lastSeen, which the record does not hold, from its tabs' scores (the record's since when unknown).
 */
export function recordPresence(contactId: string, raw: string, lastSeen: number | undefined): Presence {
  // Seven fields, six separators (no value holds a bare US). indexOf and slice, not split: a
  // snapshot decodes 100 000 of these, and this is a third faster.
  const a = raw.indexOf('\x1f')
  const b = raw.indexOf('\x1f', a + 1)
  const c = raw.indexOf('\x1f', b + 1)
  const d = raw.indexOf('\x1f', c + 1)
  const e = raw.indexOf('\x1f', d + 1)
  const f = raw.indexOf('\x1f', e + 1)
  if (a === -1 || b === -1 || c === -1 || d === -1 || e === -1 || f === -1 || raw.includes('\x1f', f + 1)) {
    throw new Error(`not a presence record: ${JSON.stringify(raw.slice(0, 80))}`)
  }
  // Tabs: "0sid" (visible) or "1sid" (hidden), joined by spaces.
  let count = 1
  let active = raw.charCodeAt(f + 1) === 48
  for (let at = raw.indexOf(' ', f + 1); at !== -1; at = raw.indexOf(' ', at + 1)) {
    count += 1
    if (raw.charCodeAt(at + 1) === 48) active = true
  }
  const since = Number(raw.slice(e + 1, f))
  return {
    contactId,
    clientId: unescapeField(raw.slice(0, a)),
    name: unescapeField(raw.slice(a + 1, b)),
    company: unescapeField(raw.slice(b + 1, c)),
    path: unescapeField(raw.slice(c + 1, d)),
    title: unescapeField(raw.slice(d + 1, e)),
    state: active ? 'active' : 'idle',
    since,
    lastSeen: lastSeen ?? since,
    tabs: count,
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
