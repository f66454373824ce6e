import type { PageVisitRow } from '../fold.js'
import type { ContactRow, EventRow, LockedContact, StoredSession } from './contact-rows.js'

/** A contact's erasure: events of the contact at or before `erasedAt` are dropped. */
export interface Erasure {
  contactId: string
  erasedAt: number
}

/**
 * The statements of one batch, inside one transaction, for one dialect (MySQL: plain SQL on one
 * connection, mysql-batch-ops.ts; SQLite: drizzle, sqlite-batch-ops.ts). Every list goes in as
 * few statements as the database allows.
 */
export interface BatchOps {
  /**
   * Creates the missing contact rows and locks every one of them (in contact-id order, so two
   * writers seldom wait on each other in a cycle) and reads them; then, under those locks,
   * reads the contacts' erasures. After the lock, the rows are what the writer that held it
   * before committed.
   */
  lockContacts(fresh: readonly { contactId: string; clientId: string }[]): Promise<{ contacts: LockedContact[]; erasures: Erasure[] }>
  deleteContact(contactId: string): Promise<void>
  /** Inserts events, ignoring ids already stored. */
  insertEvents(rows: readonly EventRow[]): Promise<void>
  /** Sessions and page visits by id (those of open sessions, to continue their fold). */
  sessionsById(ids: readonly string[]): Promise<StoredSession[]>
  pagesById(ids: readonly string[]): Promise<PageVisitRow[]>
  /** The id of the contact's newest join before `id`. */
  joinBefore(contactId: string, id: string): Promise<string | undefined>
  /** Deletes the contact's sessions and page visits with an id at or after `from` (before a re-fold from there). */
  deleteRowsFrom(contactId: string, from: string): Promise<void>
  /** The stored events of these contacts with an id at or after `from`, in id order. */
  eventsFrom(contactIds: readonly string[], from: string): Promise<EventRow[]>
  /** Insert or overwrite, by primary key. */
  upsertSessions(rows: readonly StoredSession[]): Promise<void>
  upsertPages(rows: readonly PageVisitRow[]): Promise<void>
  upsertContacts(rows: readonly ContactRow[]): Promise<void>
}
