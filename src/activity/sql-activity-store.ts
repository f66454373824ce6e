import { and, asc, desc, eq, getTableColumns, gte, inArray, isNotNull, isNull, lt, max, or, sql, type SQL } from 'drizzle-orm'
import type { Pool, PoolConnection } from 'mysql2/promise'
import type { MySql2Database } from 'drizzle-orm/mysql2'
import type { MySqlTable } from 'drizzle-orm/mysql-core'
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import type { SQLiteTable } from 'drizzle-orm/sqlite-core'
import { randomUUID } from 'node:crypto'
import { AppError } from '../errors/errors.js'
import type { LeaveReason } from '../presence/presence-engine.js'
import * as mysqlTables from './schema-mysql.js'
import * as sqliteTables from './schema-sqlite.js'
import type { Database } from './database.js'
import type { PageVisitRow } from './fold.js'
import { mysqlBatchOps } from './mysql-batch-ops.js'
import { fromRow, writeBatch, type BatchOps, type LockedContact, type StoredSession } from './write-batch.js'
import { sortableIdAt, type ActivityPage, type ActivityQuery, type ActivityStore, type ConsentDecision, type ConsentRecord, type ContactExport, type SessionView } from './activity-store.js'

/**
 * Both dialects share this code. The two schemas declare the same tables and columns and
 * drizzle's select/update/delete builders are the same for both, so the queries are written
 * once against the MySQL types; only inserts that ignore or overwrite duplicates differ and
 * are branched on the dialect. SQLite has one connection: its transactions are serialised
 * here with a queue, MySQL's by row locks on cat_contacts.
 */
type Db = MySql2Database<typeof mysqlTables.schema>
type Tables = typeof mysqlTables.schema

/** Rows per INSERT: well under both databases' placeholder limits. */
const CHUNK = 400
/** A MySQL deadlock or lock wait is retried this many times before the batch fails. */
const LOCK_RETRIES = 3

function chunks<T>(rows: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = []
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size))
  return out
}

function consentFromRow(row: typeof mysqlTables.consents.$inferSelect): ConsentRecord {
  return {
    contactId: row.contactId,
    clientId: row.clientId,
    decision: row.decision as ConsentDecision,
    version: row.version,
    locale: row.locale,
    at: row.at,
    ip: row.ip,
    userAgent: row.userAgent,
  }
}

function encodeCursor(startedAt: number, id: string): string {
  return Buffer.from(JSON.stringify([startedAt, id])).toString('base64url')
}

function decodeCursor(cursor: string): { startedAt: number; id: string } {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (Array.isArray(value) && value.length === 2 && Number.isSafeInteger(value[0]) && typeof value[1] === 'string') {
      return { startedAt: value[0] as number, id: value[1] }
    }
  } catch {
    // fall through
  }
  throw new AppError('invalid_request', 'cursor is not one this server gave out')
}

function isLockConflict(error: unknown): boolean {
  const code = (error as { code?: string; cause?: { code?: string } }).code ?? (error as { cause?: { code?: string } }).cause?.code
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT'
}

/**
 * A READ COMMITTED transaction on one pooled connection, for the writer's plain SQL
 * (mysql-batch-ops.ts): after waiting for a contact's row lock, the events and state another
 * writer committed meanwhile are visible to the statements that follow. A deadlock or lock
 * wait timeout is retried.
 */
async function mysqlTransaction<T>(pool: Pool, body: (connection: PoolConnection) => Promise<T>): Promise<T> {
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

/** Seconds a client is told to wait when the database does not answer. */
const RETRY_AFTER_S = 5

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

export function createSqlActivityStore(options: { database: Database; now: () => number }): ActivityStore {
  return guarded(createStore(options))
}

function createStore({ database, now }: { database: Database; now: () => number }): ActivityStore {
  const t = (database.dialect === 'mysql' ? mysqlTables.schema : sqliteTables.schema) as unknown as Tables
  const db = database.db as unknown as Db
  let sqliteQueue: Promise<unknown> = Promise.resolve()
  let consentSeq = 0

  async function transaction<T>(body: (tx: Db) => Promise<T>): Promise<T> {
    if (database.dialect === 'mysql') {
      for (let attempt = 1; ; attempt += 1) {
        try {
          // READ COMMITTED: after waiting for a contact's row lock, the events another writer
          // committed meanwhile are visible to the re-fold below.
          return await database.db.transaction((tx) => body(tx as unknown as Db), { isolationLevel: 'read committed' })
        } catch (error) {
          if (attempt >= LOCK_RETRIES || !isLockConflict(error)) throw error
        }
      }
    }
    const { sqlite } = database
    const run = sqliteQueue.then(async () => {
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
    sqliteQueue = run.catch(() => {})
    return run
  }

  async function insertIgnore(tx: Db, table: MySqlTable, rows: readonly Record<string, unknown>[]): Promise<void> {
    for (const chunk of chunks(rows)) {
      if (database.dialect === 'mysql') await tx.insert(table).ignore().values(chunk)
      else await (tx as unknown as BetterSQLite3Database).insert(table as unknown as SQLiteTable).values(chunk).onConflictDoNothing()
    }
  }

  /** Inserts rows, overwriting every column of those whose primary key exists. */
  async function upsert(tx: Db, table: MySqlTable, key: string, rows: readonly Record<string, unknown>[]): Promise<void> {
    const columns = Object.entries(getTableColumns(table)).filter(([name]) => name !== key)
    for (const chunk of chunks(rows)) {
      if (database.dialect === 'mysql') {
        const set = Object.fromEntries(columns.map(([name, column]) => [name, sql.raw(`values(\`${column.name}\`)`)]))
        await tx.insert(table).values(chunk).onDuplicateKeyUpdate({ set })
      } else {
        const set = Object.fromEntries(columns.map(([name, column]) => [name, sql.raw(`excluded."${column.name}"`)]))
        const target = (table as unknown as Record<string, unknown>)[key] as Parameters<ReturnType<ReturnType<BetterSQLite3Database['insert']>['values']>['onConflictDoUpdate']>[0]['target']
        await (tx as unknown as BetterSQLite3Database).insert(table as unknown as SQLiteTable).values(chunk).onConflictDoUpdate({ target, set })
      }
    }
  }

  /** The writer's statements for SQLite, through drizzle (one connection: no locks needed, transactions are serial). */
  function sqliteBatchOps(tx: Db): BatchOps {
    const contactColumns = { contactId: t.contacts.contactId, clientId: t.contacts.clientId, openSessionId: t.contacts.openSessionId, lastEventId: t.contacts.lastEventId }
    return {
      async lockContacts(fresh) {
        await insertIgnore(tx, t.contacts, fresh)
        const contacts: LockedContact[] = []
        const erasures: { contactId: string; erasedAt: number }[] = []
        for (const chunk of chunks(fresh)) {
          const ids = chunk.map((row) => row.contactId)
          contacts.push(...(await tx.select(contactColumns).from(t.contacts).where(inArray(t.contacts.contactId, ids))))
          erasures.push(...(await tx.select().from(t.erasures).where(inArray(t.erasures.contactId, ids))))
        }
        return { contacts, erasures }
      },
      async deleteContact(contactId) {
        await tx.delete(t.contacts).where(eq(t.contacts.contactId, contactId))
      },
      insertEvents: (rows) => insertIgnore(tx, t.events, rows as unknown as Record<string, unknown>[]),
      async sessionsById(ids) {
        const out: StoredSession[] = []
        for (const chunk of chunks(ids)) out.push(...(await tx.select().from(t.sessions).where(inArray(t.sessions.id, chunk))))
        return out
      },
      async pagesById(ids) {
        const out: PageVisitRow[] = []
        for (const chunk of chunks(ids)) out.push(...(await tx.select().from(t.pageVisits).where(inArray(t.pageVisits.id, chunk))))
        return out
      },
      async joinBefore(contactId, id) {
        const [join] = await tx.select({ id: max(t.events.id) }).from(t.events).where(and(eq(t.events.contactId, contactId), eq(t.events.type, 'join'), lt(t.events.id, id)))
        return join?.id ?? undefined
      },
      async deleteRowsFrom(contactId, from) {
        await tx.delete(t.pageVisits).where(and(eq(t.pageVisits.contactId, contactId), gte(t.pageVisits.id, from)))
        await tx.delete(t.sessions).where(and(eq(t.sessions.contactId, contactId), gte(t.sessions.id, from)))
      },
      async eventsFrom(contactIds, from) {
        const out: (typeof t.events.$inferSelect)[] = []
        for (const chunk of chunks(contactIds)) {
          out.push(...(await tx.select().from(t.events).where(and(inArray(t.events.contactId, chunk), gte(t.events.id, from))).orderBy(asc(t.events.contactId), asc(t.events.id))))
        }
        return out
      },
      upsertSessions: (rows) => upsert(tx, t.sessions, 'id', rows as unknown as Record<string, unknown>[]),
      upsertPages: (rows) => upsert(tx, t.pageVisits, 'id', rows as unknown as Record<string, unknown>[]),
      upsertContacts: (rows) => upsert(tx, t.contacts, 'contactId', rows as unknown as Record<string, unknown>[]),
    }
  }

  function view(session: typeof t.sessions.$inferSelect, pages: (typeof t.pageVisits.$inferSelect)[], at: number): SessionView {
    const visible = (row: { visibleMs: number; visibleSince: number | null }): number =>
      Math.round((row.visibleMs + (row.visibleSince === null ? 0 : Math.max(0, at - row.visibleSince))) / 1000)
    return {
      id: session.id,
      contactId: session.contactId,
      clientId: session.clientId,
      startedAt: session.startedAt,
      endedAt: session.endedAt,
      durationS: visible(session),
      endReason: session.endReason as LeaveReason | null,
      pages: pages.map((page) => ({ path: page.path, title: page.title, startedAt: page.startedAt, durationS: visible(page) })),
    }
  }

  async function sessionsWhere(where: SQL | undefined, limit: number): Promise<(typeof t.sessions.$inferSelect)[]> {
    return db.select().from(t.sessions).where(where).orderBy(desc(t.sessions.startedAt), desc(t.sessions.id)).limit(limit)
  }

  async function withPages(rows: (typeof t.sessions.$inferSelect)[]): Promise<SessionView[]> {
    const ids = rows.map((row) => row.id)
    const pages = ids.length === 0 ? [] : await db.select().from(t.pageVisits).where(inArray(t.pageVisits.sessionId, ids)).orderBy(asc(t.pageVisits.startedAt), asc(t.pageVisits.id))
    const bySession = new Map<string, (typeof t.pageVisits.$inferSelect)[]>()
    for (const page of pages) {
      const list = bySession.get(page.sessionId) ?? []
      list.push(page)
      bySession.set(page.sessionId, list)
    }
    const at = now()
    return rows.map((row) => view(row, bySession.get(row.id) ?? [], at))
  }

  async function activity(where: SQL, query: ActivityQuery): Promise<ActivityPage> {
    const conditions = [where, gte(t.sessions.startedAt, query.from), lt(t.sessions.startedAt, query.to)]
    if (query.cursor !== undefined) {
      const cursor = decodeCursor(query.cursor)
      conditions.push(or(lt(t.sessions.startedAt, cursor.startedAt), and(eq(t.sessions.startedAt, cursor.startedAt), lt(t.sessions.id, cursor.id))) as SQL)
    }
    const rows = await sessionsWhere(and(...conditions), query.limit + 1)
    const more = rows.length > query.limit
    const shown = more ? rows.slice(0, query.limit) : rows
    const last = shown[shown.length - 1]
    return { sessions: await withPages(shown), nextCursor: more && last !== undefined ? encodeCursor(last.startedAt, last.id) : null }
  }

  return {
    dialect: database.dialect,

    async write(events, onLocked) {
      if (events.length === 0) return onLocked?.()
      if (database.dialect === 'mysql') {
        await mysqlTransaction(database.pool, (connection) => writeBatch(mysqlBatchOps(connection), events, onLocked))
        return
      }
      // SQLite runs one transaction at a time, in the order they were asked for.
      await transaction((tx) => writeBatch(sqliteBatchOps(tx), events, onLocked))
    },

    contactActivity(contactId, query) {
      return activity(eq(t.sessions.contactId, contactId), query)
    },

    clientActivity(clientId, query) {
      return activity(eq(t.sessions.clientId, clientId), query)
    },

    async exportContact(contactId): Promise<ContactExport> {
      const sessions = await withPages(await sessionsWhere(eq(t.sessions.contactId, contactId), Number.MAX_SAFE_INTEGER))
      const events = (await db.select().from(t.events).where(eq(t.events.contactId, contactId)).orderBy(asc(t.events.id))).map(fromRow)
      const consents = await db.select().from(t.consents).where(eq(t.consents.contactId, contactId)).orderBy(asc(t.consents.at), asc(t.consents.id))
      return { contactId, sessions, events: events.map(({ id: _id, ...rest }) => rest), consents: consents.map(consentFromRow) }
    },

    async recordConsent(record) {
      // Ordered by time, then by this process's counter, so two decisions in one ms keep their order.
      consentSeq = (consentSeq + 1) % 100_000_000
      const id = `${String(record.at).padStart(15, '0')}-${String(consentSeq).padStart(8, '0')}-${randomUUID().slice(0, 8)}`
      await transaction((tx) => insertIgnore(tx, t.consents, [{ id, ...record }]))
    },

    async latestConsent(contactId) {
      const [row] = await db.select().from(t.consents).where(eq(t.consents.contactId, contactId)).orderBy(desc(t.consents.at), desc(t.consents.id)).limit(1)
      return row === undefined ? undefined : consentFromRow(row)
    },

    async eraseContact(contactId, at) {
      await transaction(async (tx) => {
        await upsert(tx, t.erasures, 'contactId', [{ contactId, erasedAt: at }])
        await tx.delete(t.pageVisits).where(eq(t.pageVisits.contactId, contactId))
        await tx.delete(t.sessions).where(eq(t.sessions.contactId, contactId))
        await tx.delete(t.events).where(eq(t.events.contactId, contactId))
        await tx.delete(t.contacts).where(eq(t.contacts.contactId, contactId))
        await tx.delete(t.consents).where(eq(t.consents.contactId, contactId))
      })
    },

    async sampleOnline(minute, online) {
      await transaction((tx) => insertIgnore(tx, t.onlineSamples, [{ t: minute, online }]))
    },

    async onlineSamples(from, to) {
      return db.select().from(t.onlineSamples).where(and(gte(t.onlineSamples.t, from), lt(t.onlineSamples.t, to))).orderBy(asc(t.onlineSamples.t))
    },

    async purge(before, limit) {
      const beforeId = sortableIdAt(before)
      return transaction(async (tx) => {
        let deleted = 0
        const events = await tx.select({ id: t.events.id }).from(t.events).where(lt(t.events.at, before)).limit(limit)
        if (events.length > 0) await tx.delete(t.events).where(inArray(t.events.id, events.map((row) => row.id)))
        const sessions = await tx.select({ id: t.sessions.id }).from(t.sessions).where(and(isNotNull(t.sessions.endedAt), lt(t.sessions.endedAt, before))).limit(limit)
        if (sessions.length > 0) {
          const ids = sessions.map((row) => row.id)
          await tx.delete(t.pageVisits).where(inArray(t.pageVisits.sessionId, ids))
          await tx.delete(t.sessions).where(inArray(t.sessions.id, ids))
        }
        const samples = await tx.select({ t: t.onlineSamples.t }).from(t.onlineSamples).where(lt(t.onlineSamples.t, before)).limit(limit)
        if (samples.length > 0) await tx.delete(t.onlineSamples).where(inArray(t.onlineSamples.t, samples.map((row) => row.t)))
        const erasures = await tx.select({ id: t.erasures.contactId }).from(t.erasures).where(lt(t.erasures.erasedAt, before)).limit(limit)
        if (erasures.length > 0) await tx.delete(t.erasures).where(inArray(t.erasures.contactId, erasures.map((row) => row.id)))
        const contacts = await tx.select({ id: t.contacts.contactId }).from(t.contacts).where(and(isNull(t.contacts.openSessionId), lt(t.contacts.lastEventId, beforeId))).limit(limit)
        if (contacts.length > 0) await tx.delete(t.contacts).where(inArray(t.contacts.contactId, contacts.map((row) => row.id)))
        deleted += events.length + sessions.length + samples.length + erasures.length + contacts.length
        return deleted
      })
    },

    ping() {
      return database.ping()
    },

    close() {
      return database.close()
    },
  }
}
