import type { PoolConnection, RowDataPacket } from 'mysql2/promise'
import type { PageVisitRow } from '../fold.js'
import type { BatchOps, Erasure } from './batch-ops.js'
import type { ContactRow, EventRow, LockedContact, StoredSession } from './contact-rows.js'
import {
  chunks,
  columnList,
  CONTACT_COLUMNS,
  EVENT_COLUMNS,
  eventFromRow,
  multiRowStatement,
  overwrite,
  PAGE_CHANGES,
  PAGE_COLUMNS,
  pageFromRow,
  PREPARED_ROWS,
  SESSION_CHANGES,
  SESSION_COLUMNS,
  sessionFromRow,
  textWidth,
  valuesWidth,
  type Value,
} from './mysql-statements.js'

/**
 * The writer's statements for MySQL/MariaDB as plain SQL on one connection: one multi-row
 * statement per table and batch for the reads, prepared multi-row statements for the writes.
 * Plain SQL because drizzle's builder composes a multi-row insert from an object per value and
 * column, which costs more than the database takes to run it; prepared because the server
 * then parses each statement once per connection, not the literals of every INSERT.
 */
export class MysqlBatchOps implements BatchOps {
  constructor(private readonly connection: PoolConnection) {}

  async lockContacts(fresh: readonly { contactId: string; clientId: string }[]): Promise<{ contacts: LockedContact[]; erasures: Erasure[] }> {
    // Rows that exist are locked by the read itself (in contact-id order). The others are
    // created with INSERT … ON DUPLICATE KEY UPDATE, which, should another writer create one
    // first, waits for it and then locks it exclusively (INSERT IGNORE would take a shared
    // lock, and two writers upgrading theirs for the same contact deadlock), and read.
    const ids = fresh.map((row) => row.contactId)
    const [found, erasuresIfAll] = await this.lockThenReadErasures(ids, ids)
    if (found.length === fresh.length) return { contacts: found, erasures: erasuresIfAll }
    const known = new Set(found.map((row) => row.contactId))
    const missing = fresh.filter((row) => !known.has(row.contactId))
    await this.insert('INSERT INTO cat_contacts', ['contact_id', 'client_id'], ' ON DUPLICATE KEY UPDATE contact_id = contact_id', missing, (row) => [row.contactId, row.clientId])
    const [created, erasures] = await this.lockThenReadErasures(
      missing.map((row) => row.contactId),
      ids,
    )
    return { contacts: [...found, ...created], erasures }
  }

  async deleteContact(contactId: string): Promise<void> {
    await this.connection.query('DELETE FROM cat_contacts WHERE contact_id = ?', [contactId])
  }

  insertEvents(rows: readonly EventRow[]): Promise<void> {
    return this.insert('INSERT IGNORE INTO cat_events', EVENT_COLUMNS, '', rows, (row) => [
      row.id,
      row.contactId,
      row.clientId,
      row.sid,
      row.type,
      row.path,
      row.title,
      row.at,
      row.fromAt,
      row.name,
      row.company,
      row.reason,
    ])
  }

  async sessionsById(ids: readonly string[]): Promise<StoredSession[]> {
    const out: StoredSession[] = []
    for (const chunk of chunks(ids, textWidth)) {
      const [rows] = await this.connection.query<RowDataPacket[]>(`SELECT ${columnList(SESSION_COLUMNS)} FROM cat_sessions WHERE id IN (?)`, [chunk])
      for (const row of rows) out.push(sessionFromRow(row))
    }
    return out
  }

  async pagesById(ids: readonly string[]): Promise<PageVisitRow[]> {
    const out: PageVisitRow[] = []
    for (const chunk of chunks(ids, textWidth)) {
      const [rows] = await this.connection.query<RowDataPacket[]>(`SELECT ${columnList(PAGE_COLUMNS)} FROM cat_page_visits WHERE id IN (?)`, [chunk])
      for (const row of rows) out.push(pageFromRow(row))
    }
    return out
  }

  async joinBefore(contactId: string, id: string): Promise<string | undefined> {
    const [rows] = await this.connection.query<RowDataPacket[]>("SELECT MAX(id) AS id FROM cat_events WHERE contact_id = ? AND type = 'join' AND id < ?", [contactId, id])
    return (rows[0]?.id as string | null | undefined) ?? undefined
  }

  async deleteRowsFrom(contactId: string, from: string): Promise<void> {
    // The ids first (a plain read, by the contact index), then deletes by primary key: a
    // DELETE … WHERE contact_id = ? AND id >= ? may scan the primary key instead, waiting
    // for rows another writer holds (its contacts' open sessions) and deadlocking with it.
    for (const table of ['cat_page_visits', 'cat_sessions']) {
      const [rows] = await this.connection.query<RowDataPacket[]>(`SELECT id FROM ${table} WHERE contact_id = ? AND id >= ?`, [contactId, from])
      if (rows.length > 0) await this.connection.query(`DELETE FROM ${table} WHERE id IN (?)`, [rows.map((row) => row.id as string)])
    }
  }

  async eventsFrom(contactIds: readonly string[], from: string): Promise<EventRow[]> {
    const out: EventRow[] = []
    for (const chunk of chunks(contactIds, textWidth)) {
      const [rows] = await this.connection.query<RowDataPacket[]>(`SELECT ${columnList(EVENT_COLUMNS)} FROM cat_events WHERE contact_id IN (?) AND id >= ? ORDER BY contact_id, id`, [chunk, from])
      for (const row of rows) out.push(eventFromRow(row))
    }
    return out
  }

  upsertSessions(rows: readonly StoredSession[]): Promise<void> {
    return this.insert('INSERT INTO cat_sessions', SESSION_COLUMNS, ` ON DUPLICATE KEY UPDATE ${overwrite(SESSION_CHANGES)}`, rows, (row) => [
      row.id,
      row.contactId,
      row.clientId,
      row.name,
      row.company,
      row.startedAt,
      row.endedAt,
      row.visibleMs,
      row.visibleSince,
      row.endReason,
      row.pagesCount,
      row.lastEventAt,
      row.lastEventId,
      row.foldState,
    ])
  }

  upsertPages(rows: readonly PageVisitRow[]): Promise<void> {
    return this.insert('INSERT INTO cat_page_visits', PAGE_COLUMNS, ` ON DUPLICATE KEY UPDATE ${overwrite(PAGE_CHANGES)}`, rows, (row) => [
      row.id,
      row.sessionId,
      row.contactId,
      row.sid,
      row.path,
      row.title,
      row.startedAt,
      row.endedAt,
      row.visibleMs,
      row.visibleSince,
    ])
  }

  upsertContacts(rows: readonly ContactRow[]): Promise<void> {
    return this.insert('INSERT INTO cat_contacts', CONTACT_COLUMNS, ` ON DUPLICATE KEY UPDATE ${overwrite(CONTACT_COLUMNS.slice(1))}`, rows, (row) => [
      row.contactId,
      row.clientId,
      row.openSessionId,
      row.lastEventId,
    ])
  }

  /**
   * Locks and reads the `lock` contacts, then reads the erasures of `erasuresOf`. When the
   * locking read is one statement both are sent at once: the connection runs the erasure read
   * after it, under the locks, with no wait in between (else it would run between its parts).
   */
  private async lockThenReadErasures(lock: readonly string[], erasuresOf: readonly string[]): Promise<[LockedContact[], Erasure[]]> {
    if (chunks(lock, textWidth).length === 1) return Promise.all([this.lockAndRead(lock), this.readErasures(erasuresOf)])
    const locked = await this.lockAndRead(lock)
    return [locked, await this.readErasures(erasuresOf)]
  }

  private async readErasures(contactIds: readonly string[]): Promise<Erasure[]> {
    const out: Erasure[] = []
    for (const chunk of chunks(contactIds, textWidth)) {
      const [rows] = await this.connection.query<RowDataPacket[]>('SELECT contact_id, erased_at FROM cat_erasures WHERE contact_id IN (?)', [chunk])
      for (const row of rows) out.push({ contactId: row.contact_id as string, erasedAt: Number(row.erased_at) })
    }
    return out
  }

  /** Locks and reads contact rows, each with its open session (locked too: it is the contact's). */
  private async lockAndRead(contactIds: readonly string[]): Promise<LockedContact[]> {
    const out: LockedContact[] = []
    for (const chunk of chunks(contactIds, textWidth)) {
      const [rows] = await this.connection.query<RowDataPacket[]>(
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

  /**
   * Multi-row writes as prepared statements of the PREPARED_ROWS sizes (mysql2 keeps each
   * connection's prepared statements): `values` gives a row's values in `columns` order.
   */
  private async insert<T>(head: string, columns: readonly string[], tail: string, rows: readonly T[], values: (row: T) => Value[]): Promise<void> {
    for (const chunk of chunks(rows.map(values), valuesWidth)) {
      let at = 0
      for (const size of PREPARED_ROWS) {
        for (; chunk.length - at >= size; at += size) {
          const params: Value[] = []
          for (let i = at; i < at + size; i += 1) for (const value of chunk[i] as Value[]) params.push(value)
          await this.connection.execute(multiRowStatement(head, columns, tail, size), params)
        }
      }
    }
  }
}
