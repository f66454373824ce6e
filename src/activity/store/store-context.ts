import { getTableColumns, sql } from 'drizzle-orm'
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import type { MySql2Database } from 'drizzle-orm/mysql2'
import type { MySqlTable } from 'drizzle-orm/mysql-core'
import type { SQLiteTable } from 'drizzle-orm/sqlite-core'
import type { Database } from '../database.js'
import * as mysqlTables from '../schema-mysql.js'
import * as sqliteTables from '../schema-sqlite.js'
import { drizzleTransactions, type DrizzleTransaction } from './transactions.js'

/**
 * Both dialects share the store's code. The two schemas declare the same tables and columns
 * and drizzle's select/update/delete builders are the same for both, so the queries are
 * written once against the MySQL types; only inserts that ignore or overwrite duplicates
 * differ and are branched on the dialect.
 */
export type Db = MySql2Database<typeof mysqlTables.schema>
export type Tables = typeof mysqlTables.schema

/** What every part of the store works with. */
export interface StoreContext {
  database: Database
  dialect: Database['dialect']
  tables: Tables
  db: Db
  now: () => number
  transaction: DrizzleTransaction
}

export function createStoreContext(database: Database, now: () => number): StoreContext {
  return {
    database,
    dialect: database.dialect,
    tables: (database.dialect === 'mysql' ? mysqlTables.schema : sqliteTables.schema) as unknown as Tables,
    db: database.db as unknown as Db,
    now,
    transaction: drizzleTransactions(database),
  }
}

/** Rows per INSERT: well under both databases' placeholder limits. */
const CHUNK = 400

export function chunks<T>(rows: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = []
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size))
  return out
}

/** Inserts rows, skipping those whose primary key exists. */
export async function insertIgnore(dialect: Database['dialect'], tx: Db, table: MySqlTable, rows: readonly Record<string, unknown>[]): Promise<void> {
  for (const chunk of chunks(rows)) {
    if (dialect === 'mysql') await tx.insert(table).ignore().values(chunk)
    else await (tx as unknown as BetterSQLite3Database).insert(table as unknown as SQLiteTable).values(chunk).onConflictDoNothing()
  }
}

type SqliteConflictTarget = Parameters<ReturnType<ReturnType<BetterSQLite3Database['insert']>['values']>['onConflictDoUpdate']>[0]['target']

/** Inserts rows, overwriting every column of those whose primary key (`key`) exists. */
export async function upsert(dialect: Database['dialect'], tx: Db, table: MySqlTable, key: string, rows: readonly Record<string, unknown>[]): Promise<void> {
  const columns = Object.entries(getTableColumns(table)).filter(([name]) => name !== key)
  for (const chunk of chunks(rows)) {
    if (dialect === 'mysql') {
      const set = Object.fromEntries(columns.map(([name, column]) => [name, sql.raw(`values(\`${column.name}\`)`)]))
      await tx.insert(table).values(chunk).onDuplicateKeyUpdate({ set })
    } else {
      const set = Object.fromEntries(columns.map(([name, column]) => [name, sql.raw(`excluded."${column.name}"`)]))
      const target = (table as unknown as Record<string, unknown>)[key] as SqliteConflictTarget
      await (tx as unknown as BetterSQLite3Database).insert(table as unknown as SQLiteTable).values(chunk).onConflictDoUpdate({ target, set })
    }
  }
}
