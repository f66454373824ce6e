import type { FastifyBaseLogger } from 'fastify'
import type { ActivityEvent, ActivityEventSource } from './event-log/event-log.js'
import type { ActivityStore } from './activity-store.js'
import { writeInParts } from './writer/contact-parts.js'
import { WriterHealth } from './writer/writer-health.js'
import { WriterLoop } from './writer/writer-loop.js'

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
  /** Told the number of events of each batch written and acknowledged (cat_activity_written_total). */
  onWritten?: (count: number) => void
  /** Told of each batch write that failed (cat_activity_write_errors_total). */
  onWriteFailed?: () => void
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

/**
 * Moves activity events from the event log into the database: a batch per transaction (or a
 * few, by contact), acknowledged only after the commit, so a crash between the two
 * redelivers the batch and the idempotent write makes it harmless. While the database is down
 * nothing is acknowledged: the events wait in the log and the writer retries with backoff.
 */
export function createActivityWriter(options: ActivityWriterOptions): ActivityWriter {
  const {
    source, store, log, batchSize = 2000, parallel = 2, depth = 2, waitMs = 250, claimIdleMs = 30_000, claimEveryMs = 10_000,
    retryMinMs = 200, retryMaxMs = 10_000, stallAfterMs = 10_000, now = Date.now, onWritten, onWriteFailed,
  } = options

  /** Writes and acknowledges; on a failure the source hands the events out again. */
  async function writeAndAck(events: readonly ActivityEvent[], onLocked?: () => void): Promise<void> {
    try {
      await writeInParts(store, events, parallel, onLocked)
    } catch (error) {
      onWriteFailed?.()
      source.retry()
      throw error
    }
    try {
      await source.ack(events.map((event) => event.id))
      onWritten?.(events.length)
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

  const health = new WriterHealth({ log, now, stallAfterMs, retryMinMs, retryMaxMs })
  const loop = new WriterLoop({ source, batchSize, depth, waitMs, claimEveryMs, writeAndAck, claimStale: () => claimOnce(), health })

  return {
    start() {
      loop.start()
    },
    async stop({ drainMs = 0 } = {}) {
      await loop.stop()
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
      return loop.stalled
    },
  }
}
