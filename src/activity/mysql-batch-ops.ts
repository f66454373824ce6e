import { type PoolConnection, type RowDataPacket } from 'mysql2/promise'
import type { PageVisitRow } from './fold.js'
import type { BatchOps, ContactRow, EventRow, LockedContact, StoredSession } from './write-batch.js'

/**
 * The writer's statements for MySQL/MariaDB as plain SQL on one connection: one multi-row
 * statement per table and batch for the reads, prepared multi-row statements for the writes.
 * Drizzle's builder spent more time composing the multi-row inserts (an object per value and
 * column) than MariaDB spent running them; and MariaDB spent a quarter of its time parsing
 * the literals of text INSERTs, which a prepared statement, parsed once per connection, skips.
 * Column names are those of schema-mysql.ts.
 */

/**
 * Rows per read, and rows and roughly the most bytes of values per run of writes (each statement of
 * a run is smaller still; max_allowed_packet is 16 MiB by default, 4 MiB on MySQL 5.7).
 */
const MAX_ROWS = 2000
const MAX_CHARS = 1_000_000

/**
 * The row counts of the prepared multi-row writes, largest first: a run of rows goes as
 * statements of these sizes, so a connection prepares at most this many statements per table.
 */
const PREPARED_ROWS = [500, 100, 20, 5, 1]

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

const text = (value: string | null): number => (value === null ? 4 : value.length * 2 + 3)

const SESSION_COLUMNS = ['id', 'contact_id', 'client_id', 'name', 'company', 'started_at', 'ended_at', 'visible_ms', 'visible_since', 'end_reason', 'pages_count', 'last_event_at', 'last_event_id', 'fold_state']
const PAGE_COLUMNS = ['id', 'session_id', 'contact_id', 'sid', 'path', 'title', 'started_at', 'ended_at', 'visible_ms', 'visible_since']
const CONTACT_COLUMNS = ['contact_id', 'client_id', 'open_session_id', 'last_event_id']
const EVENT_COLUMNS = ['id', 'contact_id', 'client_id', 'sid', 'type', 'path', 'title', 'at', 'from_at', 'name', 'company', 'reason']

const list = (columns: readonly string[]): string => columns.map((c) => `\`${c}\``).join(',')
const overwrite = (columns: readonly string[]): string => columns.map((c) => `\`${c}\`=VALUES(\`${c}\`)`).join(',')

/**
 * What a later fold may change in a stored session or page visit. The other columns come from
 * the event that opened it (its id is that event's), and a re-fold that could attribute it
 * differently deletes the rows first; not assigning them saves MariaDB work on every update.
 */
const SESSION_CHANGES = ['ended_at', 'visible_ms', 'visible_since', 'end_reason', 'pages_count', 'last_event_at', 'last_event_id', 'fold_state']
const PAGE_CHANGES = ['ended_at', 'visible_ms', 'visible_since']

const nullableNumber = (value: unknown): number | null => (value === null ? null : Number(value))

function sessionFromRow(row: RowDataPacket): StoredSession {
  return {
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
    lastEventId: row.last_event_id as string | null,
    foldState: row.fold_state as string | null,
  }
}

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

type Value = string | number | null

/** Bytes a row's values take in an execute packet, about (a UTF-16 unit is at most 3 bytes of UTF-8). */
const width = (values: readonly Value[]): number => {
  let bytes = 0
  for (const value of values) bytes += typeof value === 'string' ? value.length * 3 + 9 : 9
  return bytes
}

/** The text of a prepared multi-row write, by head and row count (built once). */
const statements = new Map<string, string>()
function statement(head: string, columns: readonly string[], tail: string, rows: number): string {
  const key = `${rows} ${head}${tail}`
  let sql = statements.get(key)
  if (sql === undefined) {
    const tuple = `(${columns.map(() => '?').join(',')})`
    sql = `${head} (${list(columns)}) VALUES ${Array.from({ length: rows }, () => tuple).join(',')}${tail}`
    statements.set(key, sql)
  }
  return sql
}

export function mysqlBatchOps(connection: PoolConnection): BatchOps {
  /**
   * Multi-row writes as prepared statements of the PREPARED_ROWS sizes (mysql2 keeps each
   * connection's prepared statements): `values` gives a row's values in `columns` order.
   */
  async function insert<T>(head: string, columns: readonly string[], tail: string, rows: readonly T[], values: (row: T) => Value[]): Promise<void> {
    for (const chunk of chunks(rows.map(values), width)) {
      let at = 0
      for (const size of PREPARED_ROWS) {
        for (; chunk.length - at >= size; at += size) {
          const params: Value[] = []
          for (let i = at; i < at + size; i += 1) for (const value of chunk[i] as Value[]) params.push(value)
          await connection.execute(statement(head, columns, tail, size), params)
        }
      }
    }
  }

  async function readErasures(contactIds: readonly string[]): Promise<{ contactId: string; erasedAt: number }[]> {
    const out: { contactId: string; erasedAt: number }[] = []
    for (const chunk of chunks(contactIds, text)) {
      const [rows] = await connection.query<RowDataPacket[]>('SELECT contact_id, erased_at FROM cat_erasures WHERE contact_id IN (?)', [chunk])
      for (const row of rows) out.push({ contactId: row.contact_id as string, erasedAt: Number(row.erased_at) })
    }
    return out
  }

  /** Locks and reads contact rows, each with its open session (locked too: it is the contact's). */
  async function lockAndRead(contactIds: readonly string[]): Promise<LockedContact[]> {
    const out: LockedContact[] = []
    for (const chunk of chunks(contactIds, text)) {
      const [rows] = await connection.query<RowDataPacket[]>(
        `SELECT c.contact_id AS c_contact_id, c.client_id AS c_client_id, c.open_session_id AS c_open_session_id, c.last_event_id AS c_last_event_id, ${SESSION_COLUMNS.map((column) => `s.\`${column}\``).join(',')}
         FROM cat_contacts c LEFT JOIN cat_sessions s ON s.id = c.open_session_id
         WHERE c.contact_id IN (?) ORDER BY c.contact_id FOR UPDATE`,
        [chunk],
      )
      for (const row of rows) {
        out.push({
          contactId: row.c_contact_id as string,
          clientId: row.c_client_id as string,
          openSessionId: row.c_open_session_id as string | null,
          lastEventId: row.c_last_event_id as string | null,
          openSession: row.id === null ? null : sessionFromRow(row),
        })
      }
    }
    return out
  }

  return {
    async lockContacts(fresh) {
      // Rows that exist are locked by the read itself (in contact-id order). The others are
      // created with INSERT … ON DUPLICATE KEY UPDATE, which, should another writer create one
      // first, waits for it and then locks it exclusively (INSERT IGNORE would take a shared
      // lock, and two writers upgrading theirs for the same contact deadlock), and read. The
      // erasures are asked for together with the last locking read: the connection runs them
      // after it, under the locks, with no wait in between.
      const ids = fresh.map((row) => row.contactId)
      const lockThenErasures = async (lock: readonly string[]): Promise<[LockedContact[], { contactId: string; erasedAt: number }[]]> => {
        // Queued together only when the locking read is one statement (else the erasures would run between its parts).
        if (chunks(lock, text).length === 1) return Promise.all([lockAndRead(lock), readErasures(ids)])
        const locked = await lockAndRead(lock)
        return [locked, await readErasures(ids)]
      }
      const [found, erasedIfAll] = await lockThenErasures(ids)
      if (found.length === fresh.length) return { contacts: found, erasures: erasedIfAll }
      const known = new Set(found.map((row) => row.contactId))
      const missing = fresh.filter((row) => !known.has(row.contactId))
      await insert('INSERT INTO cat_contacts', ['contact_id', 'client_id'], ' ON DUPLICATE KEY UPDATE contact_id = contact_id', missing, (row) => [row.contactId, row.clientId])
      const [created, erased] = await lockThenErasures(missing.map((row) => row.contactId))
      return { contacts: [...found, ...created], erasures: erased }
    },

    async deleteContact(contactId) {
      await connection.query('DELETE FROM cat_contacts WHERE contact_id = ?', [contactId])
    },

    insertEvents(rows) {
      return insert(
        'INSERT IGNORE INTO cat_events',
        EVENT_COLUMNS,
        '',
        rows,
        (row) => [row.id, row.contactId, row.clientId, row.sid, row.type, row.path, row.title, row.at, row.fromAt, row.name, row.company, row.reason],
      )
    },

    async sessionsById(ids) {
      const out: StoredSession[] = []
      for (const chunk of chunks(ids, text)) {
        const [rows] = await connection.query<RowDataPacket[]>(`SELECT ${list(SESSION_COLUMNS)} FROM cat_sessions WHERE id IN (?)`, [chunk])
        for (const row of rows) out.push(sessionFromRow(row))
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
      // The ids first (a plain read, by the contact index), then deletes by primary key: a
      // DELETE … WHERE contact_id = ? AND id >= ? may scan the primary key instead, waiting
      // for rows another writer holds (its contacts' open sessions) and deadlocking with it.
      for (const table of ['cat_page_visits', 'cat_sessions']) {
        const [rows] = await connection.query<RowDataPacket[]>(`SELECT id FROM ${table} WHERE contact_id = ? AND id >= ?`, [contactId, from])
        if (rows.length > 0) await connection.query(`DELETE FROM ${table} WHERE id IN (?)`, [rows.map((row) => row.id as string)])
      }
    },

    async eventsFrom(contactIds, from) {
      const out: EventRow[] = []
      for (const chunk of chunks(contactIds, text)) {
        const [rows] = await connection.query<RowDataPacket[]>(`SELECT ${list(EVENT_COLUMNS)} FROM cat_events WHERE contact_id IN (?) AND id >= ? ORDER BY contact_id, id`, [chunk, from])
        for (const row of rows) out.push(eventFromRow(row))
      }
      return out
    },

    upsertSessions(rows: readonly StoredSession[]) {
      return insert(
        'INSERT INTO cat_sessions',
        SESSION_COLUMNS,
        ` ON DUPLICATE KEY UPDATE ${overwrite(SESSION_CHANGES)}`,
        rows,
        (row) => [row.id, row.contactId, row.clientId, row.name, row.company, row.startedAt, row.endedAt, row.visibleMs, row.visibleSince, row.endReason, row.pagesCount, row.lastEventAt, row.lastEventId, row.foldState],
      )
    },

    upsertPages(rows: readonly PageVisitRow[]) {
      return insert(
        'INSERT INTO cat_page_visits',
        PAGE_COLUMNS,
        ` ON DUPLICATE KEY UPDATE ${overwrite(PAGE_CHANGES)}`,
        rows,
        (row) => [row.id, row.sessionId, row.contactId, row.sid, row.path, row.title, row.startedAt, row.endedAt, row.visibleMs, row.visibleSince],
      )
    },

    upsertContacts(rows: readonly ContactRow[]) {
      return insert(
        'INSERT INTO cat_contacts',
        CONTACT_COLUMNS,
        ` ON DUPLICATE KEY UPDATE ${overwrite(CONTACT_COLUMNS.slice(1))}`,
        rows,
        (row) => [row.contactId, row.clientId, row.openSessionId, row.lastEventId],
      )
    },
  }
}
