import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { Socket } from 'node:net'
import { createConnection, type Connection } from 'mysql2/promise'

/** Real MariaDB/MySQL, never a mock: CI starts it (scripts/test-services.sh). No database in the path. */
export const MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** Runs SQL on a connection of its own, and returns only once its socket is closed (tests compare handles). */
async function adminQuery(sql: string): Promise<void> {
  const connection: Connection = await createConnection({ uri: MYSQL_URL, connectTimeout: 5000 })
  const socket = (connection as unknown as { connection?: { stream?: unknown } }).connection?.stream
  const closed = socket instanceof Socket && !socket.closed ? once(socket, 'close') : undefined
  try {
    await connection.query(sql)
  } finally {
    await connection.end()
    await closed
  }
}

/** A name safe to splice into SQL and a URL: lower-case letters, digits and _ only. */
function safeLabel(label: string): string {
  return label.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 24)
}

/** MYSQL_URL with `database` as its path, keeping any query string. */
export function mysqlUrlFor(database: string, base = MYSQL_URL): string {
  const url = new URL(base)
  url.pathname = `/${database}`
  return url.toString()
}

/**
 * Creates an empty database of its own for a test (`cat_t_<label>_<pid>_<random>`), dropped at
 * teardown, and returns its mysql:// URL. `charset` overrides the server's default character
 * set (e.g. `latin1`, MySQL 5.7's default).
 */
export async function createTestMysqlDatabase(t: Teardown, label: string, options: { charset?: 'latin1' | 'utf8mb4' } = {}): Promise<string> {
  const name = `cat_t_${safeLabel(label)}_${process.pid}_${randomBytes(4).toString('hex')}`
  await adminQuery(`CREATE DATABASE \`${name}\`${options.charset === undefined ? '' : ` CHARACTER SET ${options.charset}`}`)
  t.teardown(() => adminQuery(`DROP DATABASE IF EXISTS \`${name}\``))
  return mysqlUrlFor(name)
}

/** A temporary directory (for an SQLite file), removed at teardown. */
export function createTestDataDir(t: Teardown, label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `cat-t-${safeLabel(label)}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export type TestDatabaseTarget =
  | { name: 'mysql'; url: string; dataDir: string }
  | { name: 'sqlite'; url: undefined; dataDir: string }

/**
 * A fresh MySQL database and a fresh SQLite directory, so a suite can run against both:
 * `for (const target of await openTestDatabases(t, 'x')) t.test(target.name, () => openDatabase(target) …)`.
 * Both carry the same temp dataDir (MySQL ignores it), so each can be passed to openDatabase as it is.
 */
export async function openTestDatabases(t: Teardown, label: string): Promise<[TestDatabaseTarget, TestDatabaseTarget]> {
  const url = await createTestMysqlDatabase(t, label)
  const dataDir = createTestDataDir(t, label)
  return [
    { name: 'mysql', url, dataDir },
    { name: 'sqlite', url: undefined, dataDir },
  ]
}
