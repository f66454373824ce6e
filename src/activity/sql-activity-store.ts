import { and, asc, desc, eq, getTableColumns, gte, inArray, isNotNull, isNull, lt, lte, max, or, sql, type SQL } from 'drizzle-orm'
import type { MySql2Database } from 'drizzle-orm/mysql2'
import type { MySqlTable } from 'drizzle-orm/mysql-core'
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import type { SQLiteTable } from 'drizzle-orm/sqlite-core'
import { randomUUID } from 'node:crypto'
import { AppError } from '../errors/errors.js'
import type { ActivityEvent, ActivityEventType, LeaveReason } from '../presence/presence-engine.js'
import * as mysqlTables from './schema-mysql.js'
import * as sqliteTables from './schema-sqlite.js'
import type { Database } from './database.js'
import { foldEvents, type PageVisitRow, type SessionRow } from './fold.js'
import { sortableId, sortableIdAt, type ActivityPage, type ActivityQuery, type ActivityStore, type ConsentDecision, type ConsentRecord, type ContactExport, type SessionView } from './activity-store.js'

/**
 * Both dialects share this code. The two schemas declare the same tables and columns and
 * drizzle's select/update/delete builders are the same for both, so the queries are written
 * once against the MySQL types; only inserts that ignore or overwrite duplicates differ and
 * are branched on the dialect. SQLite has one connection: its transactions are serialised
 * here with a queue, MySQL's by row locks on cat_contacts.
 */
type Db = MySql2Database<typeof mysqlTables.schema>
type Tables = typeof mysqlTables.schema
type EventRow = typeof mysqlTables.events.$inferSelect

/** Rows per INSERT: well under both databases' placeholder limits. */
const CHUNK = 400
/** A MySQL deadlock or lock wait is retried this many times before the batch fails. */
const LOCK_RETRIES = 3

function chunks<T>(rows: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = []
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size))
  return out
}

function toRow(event: ActivityEvent): EventRow {
  return {
    id: sortableId(event.id),
    contactId: event.contactId,
    clientId: event.clientId,
    sid: event.sid,
    type: event.type,
    path: event.path,
    title: event.title,
    at: event.at,
    fromAt: event.from ?? null,
    name: event.name ?? null,
    company: event.company ?? null,
    reason: event.reason ?? null,
  }
}

function fromRow(row: EventRow): ActivityEvent {
  const event: ActivityEvent = { id: row.id, type: row.type as ActivityEventType, contactId: row.contactId, clientId: row.clientId, sid: row.sid, path: row.path, title: row.title, at: row.at }
  if (row.fromAt !== null) event.from = row.fromAt
  if (row.name !== null) event.name = row.name
  if (row.company !== null) event.company = row.company
  if (row.reason !== null) event.reason = row.reason as LeaveReason
  return event
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

    async write(events) {
      if (events.length === 0) return
      const byContact = new Map<string, EventRow[]>()
      for (const row of events.map(toRow)) {
        const list = byContact.get(row.contactId) ?? []
        list.push(row)
        byContact.set(row.contactId, list)
      }
      let ids = [...byContact.keys()].sort()

      await transaction(async (tx) => {
        // One writer per contact at a time. The rows must exist before they can be locked (a
        // locking read of a missing row locks nothing under READ COMMITTED): create them, in
        // a fixed order, waiting for any other writer creating the same, then lock and read
        // them; that read sees what a writer that held the lock before us committed.
        const fresh = ids.map((id) => ({ contactId: id, clientId: (byContact.get(id) as EventRow[])[0]?.clientId ?? '', openSessionId: null, lastEventId: null }))
        await insertIgnore(tx, t.contacts, fresh)
        let locked = tx.select().from(t.contacts).where(inArray(t.contacts.contactId, ids)).orderBy(asc(t.contacts.contactId))
        if (database.dialect === 'mysql') locked = locked.for('update') as typeof locked
        const state = new Map((await locked).map((row) => [row.contactId, row]))

        // Events of an erased contact that were still on their way are dropped, not revived.
        // Read under the lock: an erasure deletes the contact's row, so it either committed
        // before the lock (and is seen here) or waits for this transaction and deletes after it.
        const erased = await tx.select().from(t.erasures).where(inArray(t.erasures.contactId, ids))
        for (const { contactId, erasedAt } of erased) {
          const later = (byContact.get(contactId) as EventRow[]).filter((row) => row.at > erasedAt)
          if (later.length > 0) {
            byContact.set(contactId, later)
            continue
          }
          byContact.delete(contactId)
          // The insert above re-created the row the erasure deleted.
          if (state.get(contactId)?.lastEventId == null) await tx.delete(t.contacts).where(eq(t.contacts.contactId, contactId))
        }
        if (erased.length > 0) ids = [...byContact.keys()].sort()
        if (ids.length === 0) return
        await insertIgnore(tx, t.events, ids.flatMap((id) => byContact.get(id) as EventRow[]))

        // Where each contact's re-fold starts: its open session, or, when an event arrives
        // older than one already folded (two writers, a redelivery), the join before it.
        const starts: [string, string][] = []
        /** Contacts whose new events all come after what is folded: rows closed before them are final. */
        const settledBefore = new Map<string, number>()
        for (const id of ids) {
          const first = (byContact.get(id) as EventRow[]).reduce((a, b) => (b.id < a ? b.id : a), '\uffff')
          const known = state.get(id)
          let start = known?.openSessionId ?? first
          const inOrder = known?.lastEventId == null || first > known.lastEventId
          if (inOrder) settledBefore.set(id, Math.min(...(byContact.get(id) as EventRow[]).map((row) => row.at)))
          if (!inOrder) {
            const [join] = await tx.select({ id: max(t.events.id) }).from(t.events).where(and(eq(t.events.contactId, id), eq(t.events.type, 'join'), lte(t.events.id, first)))
            start = join?.id ?? first
          }
          starts.push([id, start < first ? start : first])
        }
        const stored = await tx
          .select()
          .from(t.events)
          // One range per contact would be exact, but an OR of hundreds of ranges costs the
          // optimizer more than reading a few extra rows; those are dropped below.
          .where(and(inArray(t.events.contactId, ids), gte(t.events.id, starts.reduce((a, [, start]) => (start < a ? start : a), '\uffff'))))
          .orderBy(asc(t.events.contactId), asc(t.events.id))

        const startOf = new Map(starts)
        const sessions: SessionRow[] = []
        const pages: PageVisitRow[] = []
        const contactRows: (typeof t.contacts.$inferInsert)[] = []
        let index = 0
        for (const id of ids) {
          const own: ActivityEvent[] = []
          const start = startOf.get(id) as string
          while (index < stored.length && (stored[index] as EventRow).contactId === id) {
            const row = stored[index++] as EventRow
            if (row.id >= start) own.push(fromRow(row))
          }
          const folded = foldEvents(own)
          // Rewriting rows that closed before the new events would write the same values again.
          const since = settledBefore.get(id) ?? -Infinity
          const changed = (row: { endedAt: number | null }): boolean => row.endedAt === null || row.endedAt >= since
          sessions.push(...folded.sessions.filter(changed))
          pages.push(...folded.pages.filter(changed))
          const known = state.get(id)
          const latest = folded.sessions[folded.sessions.length - 1]
          const lastId = own.length > 0 ? (own[own.length - 1] as ActivityEvent).id : null
          contactRows.push({
            contactId: id,
            clientId: latest?.clientId ?? known?.clientId ?? (byContact.get(id) as EventRow[])[0]?.clientId ?? '',
            openSessionId: latest === undefined ? (known?.openSessionId ?? null) : latest.endedAt === null ? latest.id : null,
            lastEventId: [known?.lastEventId ?? null, lastId].filter((v): v is string => v !== null).sort().pop() ?? null,
          })
        }
        await upsert(tx, t.sessions, 'id', sessions as unknown as Record<string, unknown>[])
        await upsert(tx, t.pageVisits, 'id', pages as unknown as Record<string, unknown>[])
        await upsert(tx, t.contacts, 'contactId', contactRows)
      })
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
