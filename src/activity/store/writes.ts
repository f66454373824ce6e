import { randomUUID } from 'node:crypto'
import type { ActivityStore } from '../activity-store.js'
import { MysqlBatchOps } from '../batch/mysql-batch-ops.js'
import { SqliteBatchOps } from '../batch/sqlite-batch-ops.js'
import { writeBatch } from '../batch/write-batch.js'
import { insertIgnore, type StoreContext } from './store-context.js'
import { mysqlTransaction } from './transactions.js'

type StoreWrites = Pick<ActivityStore, 'write' | 'recordConsent' | 'sampleOnline'>

/** The store's writes: the writer's batches, consent decisions, the online samples. */
export function storeWrites({ database, dialect, tables, transaction }: StoreContext): StoreWrites {
  let consentSequence = 0
  return {
    async write(events, onLocked) {
      if (events.length === 0) return onLocked?.()
      if (database.dialect === 'mysql') {
        await mysqlTransaction(database.pool, (connection) => writeBatch(new MysqlBatchOps(connection), events, onLocked))
        return
      }
      await transaction((tx) => writeBatch(new SqliteBatchOps(tx, tables), events, onLocked))
    },

    async recordConsent(record) {
      // Ordered by time, then by this process's counter, so two decisions in one ms keep their order.
      consentSequence = (consentSequence + 1) % 100_000_000
      const id = `${String(record.at).padStart(15, '0')}-${String(consentSequence).padStart(8, '0')}-${randomUUID().slice(0, 8)}`
      await transaction((tx) => insertIgnore(dialect, tx, tables.consents, [{ id, ...record }]))
    },

    async sampleOnline(minute, online) {
      await transaction((tx) => insertIgnore(dialect, tx, tables.onlineSamples, [{ t: minute, online }]))
    },
  }
}
