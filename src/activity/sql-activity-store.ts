import { AppError } from '../errors/errors.js'
import type { ActivityStore } from './activity-store.js'
import type { Database } from './database.js'
import { storeErasure } from './store/erasure.js'
import { storeInstallState } from './store/install-state.js'
import { storeReads } from './store/reads.js'
import { storeRetention } from './store/retention.js'
import { createStoreContext } from './store/store-context.js'
import { storeWrites } from './store/writes.js'

/** Seconds a client is told to wait when the database does not answer. */
const RETRY_AFTER_S = 5

/**
 * The activity store on MySQL/MariaDB or SQLite, one code for both (store/store-context.ts).
 * Its parts: the writes (the writer's batches through batch/write-batch.ts, consent decisions,
 * online samples), the reads, the erasure of a contact, the retention purge, the install's documents.
 */
export function createSqlActivityStore(options: { database: Database; now: () => number }): ActivityStore {
  const context = createStoreContext(options.database, options.now)
  const { database } = context
  return guarded({
    dialect: database.dialect,
    ...storeWrites(context),
    ...storeReads(context),
    ...storeErasure(context),
    ...storeRetention(context),
    ...storeInstallState(context),
    ping: () => database.ping(),
    close: () => database.close(),
  })
}

/** Database failures reach clients as 503 unavailable (with Retry-After), not as a 500. */
function guarded(store: ActivityStore): ActivityStore {
  const wrapped = { ...store }
  for (const [key, value] of Object.entries(store)) {
    if (typeof value !== 'function' || key === 'close') continue
    ;(wrapped as Record<string, unknown>)[key] = async (...args: unknown[]) => {
      try {
        return await (value as (...a: unknown[]) => Promise<unknown>).apply(store, args)
      } catch (error) {
        if (error instanceof AppError) throw error
        throw new AppError('unavailable', 'The activity database is unavailable.', { retryAfterS: RETRY_AFTER_S, cause: error })
      }
    }
  }
  return wrapped
}
