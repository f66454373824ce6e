import type { Pool, PoolConnection } from 'mysql2/promise'
import type { Database } from '../database.js'
import type { Db } from './store-context.js'

/** A MySQL deadlock or lock wait is retried this many times before the transaction fails. */
const LOCK_RETRIES = 3

function isLockConflict(error: unknown): boolean {
  const code = (error as { code?: string; cause?: { code?: string } }).code ?? (error as { cause?: { code?: string } }).cause?.code
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT'
}

/**
 * A READ COMMITTED transaction on one pooled connection, for the writer's plain SQL
 * (batch/mysql-batch-ops.ts): after waiting for a contact's row lock, the events and state
 * another writer committed meanwhile are visible to the statements that follow. A deadlock or
 * lock wait timeout is retried.
 */
export async function mysqlTransaction<T>(pool: Pool, body: (connection: PoolConnection) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    const connection = await pool.getConnection()
    let healthy = true
    try {
      // Issued together (the connection runs them in order); a failure of either throws before the body runs.
      await Promise.all([connection.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED'), connection.query('START TRANSACTION')])
      try {
        const result = await body(connection)
        await connection.query('COMMIT')
        return result
      } catch (error) {
        await connection.query('ROLLBACK').catch(() => {
          healthy = false
        })
        throw error
      }
    } catch (error) {
      if ((error as { fatal?: boolean }).fatal === true) healthy = false
      if (attempt >= LOCK_RETRIES || !isLockConflict(error)) throw error
    } finally {
      if (healthy) connection.release()
      else connection.destroy()
    }
  }
}

export type DrizzleTransaction = <T>(body: (tx: Db) => Promise<T>) => Promise<T>

/**
 * Transactions through drizzle. MySQL: READ COMMITTED, a deadlock or lock wait retried.
 * SQLite has one connection: its transactions run one at a time, in the order asked for.
 */
export function drizzleTransactions(database: Database): DrizzleTransaction {
  if (database.dialect === 'mysql') {
    return async (body) => {
      for (let attempt = 1; ; attempt += 1) {
        try {
          return await database.db.transaction((tx) => body(tx as unknown as Db), { isolationLevel: 'read committed' })
        } catch (error) {
          if (attempt >= LOCK_RETRIES || !isLockConflict(error)) throw error
        }
      }
    }
  }
  const { sqlite } = database
  const db = database.db as unknown as Db
  let queue: Promise<unknown> = Promise.resolve()
  return (body) => {
    const run = queue.then(async () => {
      sqlite.exec('BEGIN IMMEDIATE')
      try {
        const result = await body(db)
        sqlite.exec('COMMIT')
        return result
      } catch (error) {
        if (sqlite.inTransaction) sqlite.exec('ROLLBACK')
        throw error
      }
    })
    queue = run.catch(() => {})
    return run
  }
}
