import { existsSync, mkdirSync, statSync } from 'node:fs'
import { Socket } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import BetterSqlite3 from 'better-sqlite3'
import { drizzle as drizzleSqlite, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate as migrateSqlite } from 'drizzle-orm/better-sqlite3/migrator'
import { drizzle as drizzleMysql, type MySql2Database } from 'drizzle-orm/mysql2'
import { migrate as migrateMysql } from 'drizzle-orm/mysql2/migrator'
import { createPool, format, type Pool, type PoolConnection, type PoolOptions, type RowDataPacket, type SqlValue } from 'mysql2/promise'
import { schema as mysqlSchema } from './schema-mysql.js'
import { schema as sqliteSchema } from './schema-sqlite.js'

/** The durable activity log's database: MySQL/MariaDB when DATABASE_URL is set, else embedded SQLite. */
export type Database =
  | {
      dialect: 'mysql'
      db: MySql2Database<typeof mysqlSchema>
      pool: Pool
      /** Runs `SELECT 1`; rejects when the server cannot be reached or the pool is closed. */
      ping(): Promise<void>
      /** Ends the pool (idempotent). */
      close(): Promise<void>
    }
  | {
      dialect: 'sqlite'
      db: BetterSQLite3Database<typeof sqliteSchema>
      sqlite: BetterSqlite3.Database
      ping(): Promise<void>
      close(): Promise<void>
    }

export interface OpenDatabaseOptions {
  /** `mysql://user:pass@host:3306/db`; undefined means SQLite at `${dataDir}/cat.db`. Never logged. */
  url: string | undefined
  dataDir: string
  log?: { info(obj: object, msg: string): void }
}

/**
 * The MySQL advisory lock that serializes migrations of instances starting at once. GET_LOCK
 * names are server-wide, so the name carries the database (hashed: names stop at 64
 * characters); deployments or test files using other databases on the same server do not wait.
 */
export const MIGRATION_LOCK_SQL = "CONCAT('cat_migrate.', SHA1(COALESCE(DATABASE(), '')))"
const MIGRATION_LOCK_TIMEOUT_S = 60
const CONNECT_TIMEOUT_MS = 10_000
const TIMEZONE = 'Z'

/** The SQLite file for a data directory. */
export function sqliteFilePath(dataDir: string): string {
  return join(resolve(dataDir), 'cat.db')
}

/**
 * Opens the database without touching the schema (see migrateDatabase). A MySQL pool connects
 * lazily, so this succeeds while the server is down; ping() tells whether it is up.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  if (options.url === undefined) return openSqlite(options.dataDir, options.log)
  return openMysql(options.url, options.log)
}

function openMysql(url: string, log: OpenDatabaseOptions['log']): Database {
  if (!url.startsWith('mysql://')) throw new Error('DATABASE_URL: expected a mysql:// URL')
  const pool = createPool({
    uri: url,
    connectionLimit: 10,
    // BIGINT columns come back as JS numbers (ms timestamps are far below 2^53); only a value
    // beyond 2^53 would come back as a string instead of silently losing precision.
    supportBigNumbers: true,
    bigNumberStrings: false,
    timezone: TIMEZONE,
    enableKeepAlive: true,
    keepAliveInitialDelay: 10_000,
    // A host that drops packets fails a connect after this long instead of hanging.
    connectTimeout: CONNECT_TIMEOUT_MS,
    // No call-site stack captured for every statement (mysql2's promise API does by default,
    // an Error.captureStackTrace per call, a cost the activity writer pays per statement). A
    // failed statement's error still names the server's code and message.
    trace: false,
    // mysql2's own formatting, except that a statement given an empty list of values is sent
    // as it is: the default scans the whole text for placeholders even then.
    // (mysql2's typings declare it returning void; it returns the SQL to send.)
    queryFormat: ((sql: string, values: SqlValue | SqlValue[] | undefined) => (Array.isArray(values) && values.length === 0 ? sql : format(sql, values, false, TIMEZONE))) as unknown as PoolOptions['queryFormat'],
  })
  // A pooled connection whose server goes away emits 'error'. mysql2 listens only `once` (to
  // drop it from the pool), so a second error on the same connection (a write after the fatal
  // one) would be an unhandled 'error' event and end the process. Queries still reject
  // normally; this listener only keeps the process alive. Sockets are tracked so that close()
  // resolves only once every one of them is closed (no handle left for the caller to wait on).
  const sockets = new Set<Socket>()
  pool.pool.on('connection', (connection) => {
    connection.on('error', () => {})
    const socket = (connection as unknown as { stream?: unknown }).stream
    if (socket instanceof Socket && !socket.destroyed) {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
    }
  })

  const db = drizzleMysql(pool, { schema: mysqlSchema, mode: 'default' })
  let closing: Promise<void> | undefined
  const { host, port, database } = describeMysqlUrl(url)
  log?.info({ dialect: 'mysql', host, port, database }, 'activity database: mysql')
  return {
    dialect: 'mysql',
    db,
    pool,
    async ping() {
      await pool.query('SELECT 1')
    },
    close() {
      closing ??= pool.end().finally(() => Promise.all([...sockets].map(socketClosed)).then(() => undefined))
      return closing
    },
  }
}

/** Resolves when the socket is closed; one the server does not hang up in time is destroyed. */
function socketClosed(socket: Socket): Promise<void> {
  if (socket.closed) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => socket.destroy(), 2000)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** The parts of a mysql:// URL that may be logged: never the user or the password. */
function describeMysqlUrl(url: string): { host: string; port: number; database: string } {
  try {
    const parsed = new URL(url)
    return { host: parsed.hostname, port: parsed.port === '' ? 3306 : Number(parsed.port), database: decodeURIComponent(parsed.pathname.slice(1)) }
  } catch {
    return { host: '(unparsable)', port: 0, database: '' }
  }
}

function openSqlite(dataDir: string, log: OpenDatabaseOptions['log']): Database {
  const file = sqliteFilePath(dataDir)
  mkdirSync(dirname(file), { recursive: true })
  const sqlite = new BetterSqlite3(file)
  try {
    sqlite.pragma('journal_mode = WAL')
    sqlite.pragma('busy_timeout = 5000')
    sqlite.pragma('foreign_keys = ON')
    sqlite.pragma('synchronous = NORMAL')
  } catch (error) {
    sqlite.close()
    throw error
  }
  const db = drizzleSqlite(sqlite, { schema: sqliteSchema })
  log?.info({ dialect: 'sqlite', file }, 'activity database: sqlite')
  return {
    dialect: 'sqlite',
    db,
    sqlite,
    async ping() {
      sqlite.prepare('SELECT 1').get()
    },
    async close() {
      if (sqlite.open) sqlite.close()
    },
  }
}

/**
 * The directory holding package.json and drizzle/: found by walking up from this file, so it
 * is the same from src/activity (tsx, tests) and from dist/src/activity (compiled).
 */
export function findProjectRoot(start = dirname(fileURLToPath(import.meta.url))): string {
  let dir = start
  for (;;) {
    if (isDirectory(join(dir, 'drizzle')) && existsSync(join(dir, 'package.json'))) return dir
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`no directory holding drizzle/ and package.json above ${start}`)
    dir = parent
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

/** Where a dialect's migrations live (drizzle/mysql, drizzle/sqlite). */
export function migrationsFolder(dialect: Database['dialect']): string {
  return join(findProjectRoot(), 'drizzle', dialect)
}

/**
 * Applies the pending migrations; a no-op when there are none. On MySQL, instances starting
 * at once take turns: the advisory lock and the migration share one connection, so the lock
 * is held exactly while that connection migrates, and is freed if the connection dies.
 */
export async function migrateDatabase(database: Database): Promise<void> {
  if (database.dialect === 'sqlite') {
    migrateSqlite(database.db, { migrationsFolder: migrationsFolder('sqlite') })
    return
  }
  const folder = migrationsFolder('mysql')
  const connection = await database.pool.getConnection()
  let healthy = true
  try {
    const [rows] = await connection.query<RowDataPacket[]>(`SELECT GET_LOCK(${MIGRATION_LOCK_SQL}, ?) AS locked`, [MIGRATION_LOCK_TIMEOUT_S])
    const locked: unknown = rows[0]?.locked
    if (Number(locked) !== 1) {
      throw new Error(`could not take the migration lock within ${MIGRATION_LOCK_TIMEOUT_S} s (another instance is migrating?)`)
    }
    try {
      // drizzle on the locked connection itself: a pool would run the statements (and its own
      // transaction) on other connections, outside the lock's session.
      await migrateMysql(drizzleMysql(connection, { schema: mysqlSchema, mode: 'default' }), { migrationsFolder: folder })
    } finally {
      await releaseLock(connection).catch(() => {
        healthy = false
      })
    }
  } catch (error) {
    healthy = false
    throw error
  } finally {
    if (healthy) connection.release()
    else connection.destroy()
  }
}

async function releaseLock(connection: PoolConnection): Promise<void> {
  await connection.query(`SELECT RELEASE_LOCK(${MIGRATION_LOCK_SQL})`)
}
