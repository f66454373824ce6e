import { loadConfigOrExit } from '../config/config.js'
import { migrateDatabase, openDatabase, sqliteFilePath } from './database.js'
import { reasonOf } from '../log/logger.js'

/**
 * `npm run migrate`: applies the activity log's pending migrations to the configured database
 * (DATABASE_URL, else the SQLite file under CAT_DATA_DIR) and exits. The server applies them at
 * start too; this is for deploy pipelines that migrate before rolling instances.
 */

/** An error's message with the database URL and its password cut out, whatever the driver put in it. */
function safeMessage(error: unknown, url: string | undefined): string {
  let message = reasonOf(error)
  if (url !== undefined) {
    const secrets = [url]
    try {
      const password = new URL(url).password
      if (password !== '') secrets.push(password, decodeURIComponent(password))
    } catch {
      // an unparsable URL is hidden whole above
    }
    for (const secret of secrets) if (secret !== '') message = message.split(secret).join('(hidden)')
  }
  return message === '' ? 'unknown error' : message
}

async function main(): Promise<number> {
  const config = loadConfigOrExit()
  try {
    const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir })
    try {
      await migrateDatabase(database)
    } finally {
      await database.close()
    }
    process.stdout.write(database.dialect === 'mysql' ? 'migrated mysql database\n' : `migrated sqlite database at ${sqliteFilePath(config.dataDir)}\n`)
    return 0
  } catch (error) {
    process.stderr.write(`migration failed: ${safeMessage(error, config.databaseUrl)}\n`)
    return 1
  }
}

process.exit(await main())
