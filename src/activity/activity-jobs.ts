import type { FastifyBaseLogger } from 'fastify'
import type { PresenceEngine } from '../presence/presence-engine.js'
import type { ActivityStore } from './activity-store.js'
import { reasonOf } from '../log/logger.js'

const MINUTE_MS = 60_000
const DAY_MS = 86_400_000
/** Rows deleted per table and statement: bounded so a purge never holds locks for long. */
export const PURGE_BATCH = 1000

export interface ActivityJobsOptions {
  store: ActivityStore
  engine: PresenceEngine
  now: () => number
  retentionDays: number
  log: FastifyBaseLogger
  /** ms between purges; 0 leaves them to the caller (tests). */
  purgeEveryMs?: number
  /** ms between looks at the clock for a new minute to sample; 0 leaves it to the caller. */
  sampleEveryMs?: number
}

export interface ActivityJobs {
  /** Records this minute's online count, once across all instances (the minute is the key). */
  sampleNow(): Promise<void>
  /** Deletes everything older than the retention, in bounded batches; returns how many rows. */
  purgeNow(): Promise<number>
  /** Changes the retention (a live setting); the next purge uses it. */
  setRetentionDays(days: number): void
  stop(): void
}

/** The background jobs of the activity log; every instance runs them, which is safe. */
export function createActivityJobs(options: ActivityJobsOptions): ActivityJobs {
  const { store, engine, now, log, purgeEveryMs = 3_600_000, sampleEveryMs = 5_000 } = options
  let lastMinute = -1
  let retentionDays = options.retentionDays
  const timers: NodeJS.Timeout[] = []

  async function sampleNow(): Promise<void> {
    const minute = Math.floor(now() / MINUTE_MS) * MINUTE_MS
    if (minute === lastMinute) return
    await store.sampleOnline(minute, await engine.count())
    lastMinute = minute
  }

  async function purgeNow(): Promise<number> {
    const before = now() - retentionDays * DAY_MS
    let total = 0
    for (;;) {
      const deleted = await store.purge(before, PURGE_BATCH)
      total += deleted
      if (deleted === 0) return total
    }
  }

  const every = (ms: number, job: () => Promise<unknown>, what: string): void => {
    if (ms <= 0) return
    let busy = false
    const timer = setInterval(() => {
      if (busy) return
      busy = true
      job()
        .catch((error: unknown) => log.warn({ reason: reasonOf(error) }, `${what} failed; will try again`))
        .finally(() => {
          busy = false
        })
    }, ms)
    timer.unref()
    timers.push(timer)
  }
  every(sampleEveryMs, sampleNow, 'online sample')
  every(purgeEveryMs, purgeNow, 'retention purge')

  return {
    sampleNow,
    purgeNow,
    setRetentionDays(days) {
      retentionDays = days
    },
    stop() {
      for (const timer of timers) clearInterval(timer)
    },
  }
}
