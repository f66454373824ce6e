import fp from 'fastify-plugin'
import { openDatabase, migrateDatabase } from '../activity/database.js'
import type { ActivityStore } from '../activity/activity-store.js'
import { createSqlActivityStore } from '../activity/sql-activity-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The durable activity log (MySQL or SQLite). */
    activity: ActivityStore
  }
}

/**
 * The durable activity log: opens the database, brings its schema up to date and decorates
 * `activity`. Migrations run at start; a database that is down at start stops the start (the
 * event log would keep the events, but a schema that may be behind is no base to write on).
 */
export const databasePlugin = fp(async (app) => {
  const database = await openDatabase({ url: app.config.databaseUrl, dataDir: app.config.dataDir, log: app.log })
  const activity = createSqlActivityStore({ database, now: app.now })
  // Closed however the start ends: a failed migration leaves an open pool too.
  app.addHook('onClose', async () => {
    await activity.close()
  })
  await migrateDatabase(database)
  app.decorate('activity', activity)
}, { name: 'database', dependencies: ['core'] })
