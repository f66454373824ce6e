import type { RowDataPacket } from 'mysql2/promise'
import type { PageVisitRow } from '../fold.js'
import type { EventRow, StoredSession } from './contact-rows.js'

/**
 * The SQL text and row mapping of the writer's MySQL statements (mysql-batch-ops.ts). Column
 * names are those of schema-mysql.ts.
 */

/**
 * Rows per read, and rows and roughly the most bytes of values per run of writes (each
 * statement of a run is smaller still; max_allowed_packet is 16 MiB by default, 4 MiB on
 * MySQL 5.7).
 */
const MAX_ROWS = 2000
const MAX_CHARS = 1_000_000

/**
 * The row counts of the prepared multi-row writes, largest first: a run of rows goes as
 * statements of these sizes, so a connection prepares at most this many statements per table.
 */
export const PREPARED_ROWS = [500, 100, 20, 5, 1]

/** Splits rows into runs of at most MAX_ROWS rows and about MAX_CHARS of `width`. */
export function chunks<T>(rows: readonly T[], width: (row: T) => number): T[][] {
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

/** The width of a string as an escaped SQL literal, about. */
export const textWidth = (value: string | null): number => (value === null ? 4 : value.length * 2 + 3)

export type Value = string | number | null

/** Bytes a row's values take in an execute packet, about (a UTF-16 unit is at most 3 bytes of UTF-8). */
export const valuesWidth = (values: readonly Value[]): number => {
  let bytes = 0
  for (const value of values) bytes += typeof value === 'string' ? value.length * 3 + 9 : 9
  return bytes
}

export const SESSION_COLUMNS = ['id', 'contact_id', 'client_id', 'name', 'company', 'started_at', 'ended_at', 'visible_ms', 'visible_since', 'end_reason', 'pages_count', 'last_event_at', 'last_event_id', 'fold_state']
export const PAGE_COLUMNS = ['id', 'session_id', 'contact_id', 'sid', 'path', 'title', 'started_at', 'ended_at', 'visible_ms', 'visible_since']
export const CONTACT_COLUMNS = ['contact_id', 'client_id', 'open_session_id', 'last_event_id']
export const EVENT_COLUMNS = ['id', 'contact_id', 'client_id', 'sid', 'type', 'path', 'title', 'at', 'from_at', 'name', 'company', 'reason']

/**
 * What a later fold may change in a stored session or page visit. The other columns come from
 * the event that opened it (its id is that event's), and a re-fold that could attribute it
 * differently deletes the rows first; not assigning them saves MariaDB work on every update.
 */
export const SESSION_CHANGES = ['ended_at', 'visible_ms', 'visible_since', 'end_reason', 'pages_count', 'last_event_at', 'last_event_id', 'fold_state']
export const PAGE_CHANGES = ['ended_at', 'visible_ms', 'visible_since']

/** `a`,`b`,… */
export const columnList = (columns: readonly string[]): string => columns.map((column) => `\`${column}\``).join(',')
/** `a`=VALUES(`a`),… for ON DUPLICATE KEY UPDATE. */
export const overwrite = (columns: readonly string[]): string => columns.map((column) => `\`${column}\`=VALUES(\`${column}\`)`).join(',')

/** The text of a prepared multi-row write, by head and row count (built once). */
const statements = new Map<string, string>()
export function multiRowStatement(head: string, columns: readonly string[], tail: string, rows: number): string {
  const key = `${rows} ${head}${tail}`
  let sql = statements.get(key)
  if (sql === undefined) {
    const tuple = `(${columns.map(() => '?').join(',')})`
    sql = `${head} (${columnList(columns)}) VALUES ${Array.from({ length: rows }, () => tuple).join(',')}${tail}`
    statements.set(key, sql)
  }
  return sql
}

const nullableNumber = (value: unknown): number | null => (value === null ? null : Number(value))

/** A cat_sessions row read with SESSION_COLUMNS. */
export function sessionFromRow(row: RowDataPacket): StoredSession {
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

/** A cat_page_visits row read with PAGE_COLUMNS. */
export function pageFromRow(row: RowDataPacket): PageVisitRow {
  return {
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
  }
}

/** A cat_events row read with EVENT_COLUMNS. */
export function eventFromRow(row: RowDataPacket): EventRow {
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
