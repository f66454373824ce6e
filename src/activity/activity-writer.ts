import type { FastifyBaseLogger } from 'fastify'
import type { ActivityEvent, ActivityEventSource } from './event-log/event-log.js'
import type { ActivityStore } from './activity-store.js'

export interface ActivityWriterOptions {
  source: ActivityEventSource
  store: ActivityStore
  log: FastifyBaseLogger
  /** Events per read from the stream. */
  batchSize?: number
  /**
   * A batch is written as this many transactions at once, each with the events of its own
   * contacts (a contact's events stay in one transaction); acknowledged when all committed.
   * While the database runs one transaction's statements this process prepares the next's.
   */
  parallel?: number
  /**
   * Batches written at once: the next one starts as soon as the one before holds its
   * contacts' locks (on a contact both have, it waits for that one's commit), so this process
   * prepares and reads while the database writes. Each is acknowledged when it committed.
   */
  depth?: number
  /** ms a read waits for new events. */
  waitMs?: number
  /** ms an event may stay unacknowledged with another consumer before this one takes it over. */
  claimIdleMs?: number
  /** ms between looks for such events. */
  claimEveryMs?: number
  /** Backoff after a failed write, ms: doubles from min up to max. */
  retryMinMs?: number
  retryMaxMs?: number
  /** ms the loop may go on failing (reads or writes) before it counts as stalled. */
  stallAfterMs?: number
  /** The clock the stall is measured with. */
  now?: () => number
}

export interface ActivityWriter {
  start(): void
  /** Stops the loop; with `drainMs`, first writes what can be read until then (shutdown). */
  stop(options?: { drainMs?: number }): Promise<void>
  /** Reads and writes one batch; resolves with how many events were written. */
  writeOnce(waitMs?: number): Promise<number>
  /** Takes over and writes events another consumer left pending; resolves with how many. */
  claimOnce(minIdleMs?: number): Promise<number>
  /**
   * True while the loop has been failing for `stallAfterMs` or longer, whatever fails (the
   * stream, the database): it writes nothing, and readiness says so.
   */
  readonly stalled: boolean
}

/** An error in one line for the log: its code and message, no stack. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message
}

/** Below this many events per part a batch is written as one transaction. */
const MIN_PARALLEL = 200

/** The events in `count` parts by contact (a hash of its id), each part in stream order. */
function split(events: readonly ActivityEvent[], count: number): (readonly ActivityEvent[])[] {
  if (count <= 1) return [events]
  const parts: ActivityEvent[][] = Array.from({ length: count }, () => [])
  for (const event of events) {
    let hash = 0x811c9dc5
    for (let i = 0; i < event.contactId.length; i += 1) hash = Math.imul(hash ^ event.contactId.charCodeAt(i), 0x01000193)
    ;(parts[(hash >>> 0) % count] as ActivityEvent[]).push(event)
  }
  return parts.filter((part) => part.length > 0)
}

/**
 * Moves activity events from the stream (or the memory queue) into the database: a batch per
 * transaction, acknowledged only after the commit, so a crash between the two redelivers the
 * batch and the idempotent write makes it harmless. While the database is down nothing is
 * acknowledged: the events wait in the stream and the writer retries with backoff.
 */
export function createActivityWriter(options: ActivityWriterOptions): ActivityWriter {
  const {
    source, store, log, batchSize = 2000, parallel = 2, depth = 2, waitMs = 250, claimIdleMs = 30_000, claimEveryMs = 10_000,
    retryMinMs = 200, retryMaxMs = 10_000, stallAfterMs = 10_000, now = Date.now,
  } = options
  let running = false
  /** When the current run of failures began; undefined while the loop succeeds. */
  let failingSince: number | undefined
  const stalled = (): boolean => running && failingSince !== undefined && now() - failingSince >= stallAfterMs
  let loop: Promise<void> | undefined
  let wakeSleep: (() => void) | undefined

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms)
      wakeSleep = () => {
        clearTimeout(timer)
        resolve()
      }
    })

  /** `onLocked`: once every part holds its contacts (see ActivityStore.write). */
  async function write(events: readonly ActivityEvent[], onLocked?: () => void): Promise<void> {
    const parts = split(events, events.length < MIN_PARALLEL * 2 ? 1 : parallel)
    if (parts.length === 1) return store.write(events, onLocked)
    const locked = new Set<number>()
    const lockedPart = (k: number) => (): void => {
      locked.add(k) // a part retried after a deadlock is locked again
      if (locked.size === parts.length) onLocked?.()
    }
    // Every part is settled before a failure is reported: a retry never races a part still running.
    const results = await Promise.allSettled(parts.map((part, k) => store.write(part, lockedPart(k))))
    const failed = results.find((result) => result.status === 'rejected')
    if (failed !== undefined) throw failed.reason
  }

  /** Writes and acknowledges; on a failure the source hands the events out again. */
  async function writeAndAck(events: readonly ActivityEvent[], onLocked?: () => void): Promise<void> {
    try {
      await write(events, onLocked)
      await source.ack(events.map((event) => event.id))
    } catch (error) {
      source.retry()
      throw error
    }
  }

  async function writeOnce(wait = 0): Promise<number> {
    const events = await source.read(batchSize, wait)
    if (events.length === 0) return 0
    await writeAndAck(events)
    return events.length
  }

  async function claimOnce(minIdleMs = claimIdleMs): Promise<number> {
    const events = await source.claimStale(minIdleMs, batchSize)
    if (events.length === 0) return 0
    log.info({ count: events.length }, 'activity writer: took over events another instance left pending')
    await writeAndAck(events)
    return events.length
  }

  async function run(): Promise<void> {
    let failures = 0
    let announced = false
    let lastClaim = 0
    // The next batch is read while this one is written: the stream read and the database
    // work overlap (a backlog drains faster by the read time).
    let ahead: Promise<ActivityEvent[]> | undefined
    // Batches being written, up to `depth`, and the first failure among them.
    const writing = new Set<Promise<void>>()
    let failure: { error: unknown } | undefined
    // (A function: the compiler cannot see the jobs setting it.)
    const failed = (): { error: unknown } | undefined => failure
    const settled = async (): Promise<void> => {
      await Promise.allSettled([...writing])
    }
    while (running) {
      try {
        const early = failed()
        if (early !== undefined) throw early.error
        const events = await (ahead ?? source.read(batchSize, waitMs))
        ahead = undefined
        if (events.length > 0) {
          ahead = source.read(batchSize, 0)
          // Settled below or dropped on a failure (retry() hands its events out again).
          ahead.catch(() => {})
          let holding!: () => void
          const locked = new Promise<void>((resolve) => {
            holding = resolve
          })
          const job = writeAndAck(events, holding).then(
            () => {
              writing.delete(job)
            },
            (error: unknown) => {
              writing.delete(job)
              failure ??= { error }
            },
          )
          writing.add(job)
          await Promise.race([locked, job])
          while (writing.size >= depth) await Promise.race(writing)
        } else await settled()
        const late = failed()
        if (late !== undefined) throw late.error
        if (Date.now() - lastClaim >= claimEveryMs) {
          lastClaim = Date.now()
          await claimOnce()
        }
        if (failures > 0) {
          log.info({ failures, failedForMs: now() - (failingSince ?? now()) }, 'activity writer: writing again')
        }
        failures = 0
        failingSince = undefined
        announced = false
      } catch (error) {
        // Nothing is read again before every batch in flight has committed or failed.
        await settled()
        failure = undefined
        if (ahead !== undefined) await ahead.catch(() => [])
        ahead = undefined
        source.retry()
        if (!running) break
        failures += 1
        failingSince ??= now()
        const delay = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(failures - 1, 16))
        // The changes of state, not every attempt: a long outage is not a log flood.
        if (failures === 1) log.warn({ reason: describe(error), retryInMs: delay }, 'activity writer: write failed; the events wait in the stream')
        if (!announced && stalled()) {
          announced = true
          log.warn({ reason: describe(error), failures, failingForMs: now() - failingSince }, 'activity writer: stalled; readiness fails until it writes again')
        }
        await sleep(delay)
      }
    }
    await settled()
    // A batch read ahead is not written by this loop: hand it out again (to the drain at stop).
    if (ahead !== undefined) await ahead.catch(() => [])
    source.retry()
  }

  return {
    start() {
      if (running) return
      running = true
      failingSince = undefined
      loop = run()
    },
    async stop({ drainMs = 0 } = {}) {
      running = false
      wakeSleep?.()
      await loop
      const deadline = Date.now() + drainMs
      while (Date.now() < deadline) {
        try {
          if ((await writeOnce(0)) === 0) break
        } catch (error) {
          log.warn({ err: error }, 'activity writer: could not flush at shutdown; the events stay pending')
          break
        }
      }
      await source.close()
    },
    writeOnce,
    claimOnce,
    get stalled() {
      return stalled()
    },
  }
}
