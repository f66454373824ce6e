import type { PoolConnection, RowDataPacket } from 'mysql2/promise'
import type { PageVisitRow, SessionRow } from './fold.js'
import type { BatchOps, ContactRow, EventRow } from './write-batch.js'

/**
 * The writer's statements for MySQL/MariaDB as plain SQL on one connection: one multi-row
 * statement per table and batch. Drizzle's builder spent more time composing the multi-row
 * inserts (an object per value and column) than MariaDB spent running them. Column names are
 * those of schema-mysql.ts; values are escaped by mysql2 (`?`).
 */

/** Rows per statement, and roughly the most bytes of text (max_allowed_packet is 16 MiB by default, 4 MiB on MySQL 5.7). */
const MAX_ROWS = 2000
const MAX_CHARS = 1_000_000

function chunks<T>(rows: readonly T[], width: (row: T) => number): T[][] {
  const out: T[][] = []
  let current: T[] = []
  let chars = 0
  for (const row of rows) {
    const size = width(row)
    if (current.length > 0 && (current.length >= MAX_ROWS || chars + size > MAX_CHARS)) {
      out.push(current)
      current = []
      chars = 0
    }
    current.push(row)
    chars += size
  }
  if (current.length > 0) out.push(current)
  return out
}

/** `(?,?,…),(?,?,…)…` for `rows` rows of `columns` values. */
function placeholders(rows: number, columns: number): string {
  const one = `(${new Array<string>(columns).fill('?').join(',')})`
  return new Array<string>(rows).fill(one).join(',')
}

const text = (value: string | null): number => (value === null ? 4 : value.length * 2 + 3)

const SESSION_COLUMNS = ['id', 'contact_id', 'client_id', 'name', 'company', 'started_at', 'ended_at', 'visible_ms', 'visible_since', 'end_reason', 'pages_count', 'last_event_at']
const PAGE_COLUMNS = ['id', 'session_id', 'contact_id', 'sid', 'path', 'title', 'started_at', 'ended_at', 'visible_ms', 'visible_since']
const CONTACT_COLUMNS = ['contact_id', 'client_id', 'open_session_id', 'last_event_id', 'fold_state']
const EVENT_COLUMNS = ['id', 'contact_id', 'client_id', 'sid', 'type', 'path', 'title', 'at', 'from_at', 'name', 'company', 'reason']

const list = (columns: readonly string[]): string => columns.map((c) => `\`${c}\``).join(',')
const overwrite = (columns: readonly string[]): string =>
  columns
    .slice(1)
    .map((c) => `\`${c}\`=VALUES(\`${c}\`)`)
    .join(',')

const nullableNumber = (value: unknown): number | null => (value === null ? null : Number(value))

function eventFromRow(row: RowDataPacket): EventRow {
  return {
    id: row.id as string,
    contactId: row.contact_id as string,
    clientId: row.client_id as string,
    sid: row.sid as string,
    type: row.type as string,
    path: row.path as string,
    title: row.title as string,
    at: Number(row.at),
    fromAt: nullableNumber(row.from_at),
    name: row.name as string | null,
    company: row.company as string | null,
    reason: row.reason as string | null,
  }
}

export function mysqlBatchOps(connection: PoolConnection): BatchOps {
  async function insert<T>(head: string, columns: readonly string[], tail: string, rows: readonly T[], values: (row: T, out: unknown[]) => number): Promise<void> {
    // One pass per chunk: values are collected while their sizes are counted.
    let params: unknown[] = []
    let count = 0
    let chars = 0
    const flush = async (): Promise<void> => {
      if (count === 0) return
      await connection.query(`${head} (${list(columns)}) VALUES ${placeholders(count, columns.length)}${tail}`, params)
      params = []
      count = 0
      chars = 0
    }
    for (const row of rows) {
      chars += values(row, params)
      count += 1
      if (count >= MAX_ROWS || chars >= MAX_CHARS) await flush()
    }
    await flush()
  }

  return {
    async lockContacts(fresh) {
      if (fresh.length === 0) return []
      // ON DUPLICATE KEY UPDATE (a no-op) takes an exclusive lock on a row that exists, as the
      // insert does on one it creates, row by row in the order given (contact-id order).
      // INSERT IGNORE would take a shared lock, and two writers upgrading theirs to exclusive
      // for the same contact deadlock.
      for (const chunk of chunks(fresh, (row) => text(row.contactId) + text(row.clientId))) {
        await connection.query(`INSERT INTO cat_contacts (contact_id, client_id) VALUES ${placeholders(chunk.length, 2)} ON DUPLICATE KEY UPDATE contact_id = contact_id`, chunk.flatMap((row) => [row.contactId, row.clientId]))
      }
      const out: ContactRow[] = []
      for (const chunk of chunks(fresh, (row) => text(row.contactId))) {
        const [rows] = await connection.query<RowDataPacket[]>(
          'SELECT contact_id, client_id, open_session_id, last_event_id, fold_state FROM cat_contacts WHERE contact_id IN (?) ORDER BY contact_id FOR UPDATE',
          [chunk.map((row) => row.contactId)],
        )
        for (const row of rows) {
          out.push({ contactId: row.contact_id as string, clientId: row.client_id as string, openSessionId: row.open_session_id as string | null, lastEventId: row.last_event_id as string | null, foldState: row.fold_state as string | null })
        }
      }
      return out
    },

    async erasures(contactIds) {
      const out: { contactId: string; erasedAt: number }[] = []
      for (const chunk of chunks(contactIds, text)) {
        const [rows] = await connection.query<RowDataPacket[]>('SELECT contact_id, erased_at FROM cat_erasures WHERE contact_id IN (?)', [chunk])
        for (const row of rows) out.push({ contactId: row.contact_id as string, erasedAt: Number(row.erased_at) })
      }
      return out
    },

    async deleteContact(contactId) {
      await connection.query('DELETE FROM cat_contacts WHERE contact_id = ?', [contactId])
    },

    insertEvents(rows) {
      return insert('INSERT IGNORE INTO cat_events', EVENT_COLUMNS, '', rows, (row, out) => {
        out.push(row.id, row.contactId, row.clientId, row.sid, row.type, row.path, row.title, row.at, row.fromAt, row.name, row.company, row.reason)
        return 60 + text(row.contactId) + text(row.clientId) + text(row.sid) + text(row.path) + text(row.title) + text(row.name) + text(row.company)
      })
    },

    async sessionsById(ids) {
      const out: SessionRow[] = []
      for (const chunk of chunks(ids, text)) {
        const [rows] = await connection.query<RowDataPacket[]>(`SELECT ${list(SESSION_COLUMNS)} FROM cat_sessions WHERE id IN (?)`, [chunk])
        for (const row of rows) {
          out.push({
            id: row.id as string,
            contactId: row.contact_id as string,
            clientId: row.client_id as string,
            name: row.name as string,
            company: row.company as string,
            startedAt: Number(row.started_at),
            endedAt: nullableNumber(row.ended_at),
            visibleMs: Number(row.visible_ms),
            visibleSince: nullableNumber(row.visible_since),
            endReason: row.end_reason as string | null,
            pagesCount: Number(row.pages_count),
            lastEventAt: Number(row.last_event_at),
          })
        }
      }
      return out
    },

    async pagesById(ids) {
      const out: PageVisitRow[] = []
      for (const chunk of chunks(ids, text)) {
        const [rows] = await connection.query<RowDataPacket[]>(`SELECT ${list(PAGE_COLUMNS)} FROM cat_page_visits WHERE id IN (?)`, [chunk])
        for (const row of rows) {
          out.push({
            id: row.id as string,
            sessionId: row.session_id as string,
            contactId: row.contact_id as string,
            sid: row.sid as string,
            path: row.path as string,
            title: row.title as string,
            startedAt: Number(row.started_at),
            endedAt: nullableNumber(row.ended_at),
            visibleMs: Number(row.visible_ms),
            visibleSince: nullableNumber(row.visible_since),
          })
        }
      }
      return out
    },

    async joinBefore(contactId, id) {
      const [rows] = await connection.query<RowDataPacket[]>("SELECT MAX(id) AS id FROM cat_events WHERE contact_id = ? AND type = 'join' AND id < ?", [contactId, id])
      return (rows[0]?.id as string | null | undefined) ?? undefined
    },

    async deleteRowsFrom(contactId, from) {
      await connection.query('DELETE FROM cat_page_visits WHERE contact_id = ? AND id >= ?', [contactId, from])
      await connection.query('DELETE FROM cat_sessions WHERE contact_id = ? AND id >= ?', [contactId, from])
    },

    async eventsFrom(contactIds, from) {
      const out: EventRow[] = []
      for (const chunk of chunks(contactIds, text)) {
        const [rows] = await connection.query<RowDataPacket[]>(`SELECT ${list(EVENT_COLUMNS)} FROM cat_events WHERE contact_id IN (?) AND id >= ? ORDER BY contact_id, id`, [chunk, from])
        for (const row of rows) out.push(eventFromRow(row))
      }
      return out
    },

    upsertSessions(rows: readonly SessionRow[]) {
      return insert('INSERT INTO cat_sessions', SESSION_COLUMNS, ` ON DUPLICATE KEY UPDATE ${overwrite(SESSION_COLUMNS)}`, rows, (row, out) => {
        out.push(row.id, row.contactId, row.clientId, row.name, row.company, row.startedAt, row.endedAt, row.visibleMs, row.visibleSince, row.endReason, row.pagesCount, row.lastEventAt)
        return 120 + text(row.contactId) + text(row.clientId) + text(row.name) + text(row.company)
      })
    },

    upsertPages(rows: readonly PageVisitRow[]) {
      return insert('INSERT INTO cat_page_visits', PAGE_COLUMNS, ` ON DUPLICATE KEY UPDATE ${overwrite(PAGE_COLUMNS)}`, rows, (row, out) => {
        out.push(row.id, row.sessionId, row.contactId, row.sid, row.path, row.title, row.startedAt, row.endedAt, row.visibleMs, row.visibleSince)
        return 120 + text(row.contactId) + text(row.sid) + text(row.path) + text(row.title)
      })
    },

    upsertContacts(rows: readonly ContactRow[]) {
      return insert('INSERT INTO cat_contacts', CONTACT_COLUMNS, ` ON DUPLICATE KEY UPDATE ${overwrite(CONTACT_COLUMNS)}`, rows, (row, out) => {
        out.push(row.contactId, row.clientId, row.openSessionId, row.lastEventId, row.foldState)
        return 80 + text(row.contactId) + text(row.clientId) + text(row.foldState)
      })
    },
  }
}
