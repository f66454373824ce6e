import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import { createActivityWriter, type ActivityWriter } from '../activity/activity-writer.js'
import { createActivityJobs, type ActivityJobs } from '../activity/activity-jobs.js'

declare module 'fastify' {
  interface FastifyInstance {
    activityWriter: ActivityWriter
    activityJobs: ActivityJobs
  }
}

export interface ActivityLoopOptions {
  /** False leaves the loops to the caller (tests drive app.activityWriter and app.activityJobs by hand). */
  loops: boolean
}

export interface ActivityWriterOptions extends ActivityLoopOptions {
  /** Names this instance's consumer of the event log; unique per start by default. */
  consumerName?: string
}

/** The memory event log dies with the process: at close the writer flushes it for up to this long. */
const MEMORY_DRAIN_MS = 5_000

/**
 * Moves the activity events from the event log to the database. Closed before the shared state
 * and the database, so its final flush still has both.
 */
export const activityWriterPlugin = fp<ActivityWriterOptions>(async (app, { loops, consumerName }) => {
  // Unique per start: it names this instance's stream consumer, and pids repeat across containers.
  const name = consumerName ?? `cat-${process.pid}-${randomBytes(3).toString('hex')}`
  const source = await app.eventLog.consumer(name)
  const { metrics } = app
  const writer = createActivityWriter({
    source,
    store: app.activity,
    log: app.log,
    now: app.now,
    onWritten: (count) => metrics.activityWritten.inc(count),
    onWriteFailed: () => metrics.activityWriteErrors.inc(),
  })
  // Redis keeps what is not written pending for the next instance: nothing to flush there.
  const drainMs = app.config.redisUrl === undefined && app.config.redisClusterNodes === undefined ? MEMORY_DRAIN_MS : 0
  app.addHook('onClose', async () => {
    await writer.stop({ drainMs })
  })
  if (loops) writer.start()
  app.decorate('activityWriter', writer)
}, { name: 'activity-writer', dependencies: ['database', 'shared-state', 'metrics'] })

/** The activity log's timers: the online count sampled each minute, and the retention purge. */
export const activityJobsPlugin = fp<ActivityLoopOptions>(async (app, { loops }) => {
  const jobs = createActivityJobs({
    store: app.activity,
    engine: app.presence,
    now: app.now,
    retentionDays: app.settings.current.retentionDays,
    log: app.log,
    ...(loops ? {} : { purgeEveryMs: 0, sampleEveryMs: 0 }),
  })
  const stopFollowing = app.settings.onChange((next) => jobs.setRetentionDays(next.retentionDays))
  app.addHook('onClose', async () => {
    stopFollowing()
    jobs.stop()
  })
  app.decorate('activityJobs', jobs)
}, { name: 'activity-jobs', dependencies: ['database', 'shared-state', 'settings'] })
