import type { ActivityEvent } from '../event-log/event-log.js'
import { foldEvents, type FoldState, type PageVisitRow, type SessionRow } from '../fold.js'
import type { BatchOps } from './batch-ops.js'
import {
  encodeFoldState,
  fromEventRow,
  samePage,
  sameSession,
  toEventRow,
  type ContactRow,
  type EventRow,
  type LockedContact,
  type StoredSession,
  type StoredTabs,
} from './contact-rows.js'

type Folded = ReturnType<typeof foldEvents>

/** The newer of two event ids, either possibly null. */
const newer = (one: string | null, other: string | null): string | null => (one === null ? other : other === null || one > other ? one : other)

const byEventId = (a: EventRow, b: EventRow): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/**
 * Writes a batch of events: the raw events (idempotent on their id), then each contact's
 * sessions and page visits, under the contact's lock. Per contact:
 *
 * - its new events all come after what was folded (the usual case): the fold continues from
 *   the state stored with the open session (none open: from nothing), and no event is read back;
 * - an event is older than one already folded (a redelivery, another writer's batch that
 *   committed first, an event before its join): its stored events are folded again from the
 *   last join before the oldest new event, and its rows from there are replaced.
 *
 * Either way the rows and the state are those of one fold over all the contact's events in id
 * order, whatever the order in which batches commit. The contact row is rewritten only when
 * its open session changes (or while none is open); in between the open session row, which
 * changes with every event anyway, carries the newest event id and the state.
 */
export async function writeBatch(ops: BatchOps, events: readonly ActivityEvent[], onLocked?: () => void): Promise<void> {
  if (events.length === 0) return onLocked?.()
  const byContact = eventRowsByContact(events)
  const { contacts, ids } = await lockContacts(ops, byContact, onLocked)
  if (ids.length === 0) return
  // Statements that do not depend on each other are issued together: on MySQL they still run
  // one after the other on the transaction's connection, without a wait in between.
  const inserted = ops.insertEvents(ids.flatMap((id) => byContact.get(id) as EventRow[]))
  inserted.catch(() => {}) // awaited below; a rejection meanwhile is not unhandled

  const batch = new BatchFolds(contacts, await readUnreadOpenSessions(ops, ids, contacts))
  const { continuing, refoldFrom } = await planFolds(ops, ids, byContact, batch)
  const { tabsByContact, openPages } = await readOpenPages(ops, continuing, batch)
  await inserted
  for (const id of continuing) {
    const start = continueFold(id, byContact.get(id) as EventRow[], batch, tabsByContact.get(id) ?? [], openPages)
    if (start !== undefined) refoldFrom.set(id, start)
  }
  if (refoldFrom.size > 0) await refold(ops, refoldFrom, batch)
  await Promise.all([ops.upsertSessions(batch.sessions), ops.upsertPages(batch.pages), ops.upsertContacts(batch.contactRows)])
}

/** The batch's events as rows, by contact, each contact's in id order without duplicates. */
function eventRowsByContact(events: readonly ActivityEvent[]): Map<string, EventRow[]> {
  const byContact = new Map<string, EventRow[]>()
  for (const event of events) {
    const row = toEventRow(event)
    const rows = byContact.get(row.contactId)
    if (rows === undefined) byContact.set(row.contactId, [row])
    else rows.push(row)
  }
  for (const [id, rows] of byContact) {
    if (rows.length === 1) continue
    rows.sort(byEventId)
    // The same event twice in one batch (a redelivery of a redelivery) is one event.
    byContact.set(
      id,
      rows.filter((row, i) => i === 0 || (rows[i - 1] as EventRow).id !== row.id),
    )
  }
  return byContact
}

/**
 * One writer per contact at a time: the rows are created if missing, then locked and read
 * (`onLocked` once they are held). Events of an erased contact that were still on their way
 * are dropped from `byContact`, not revived. The erasures are read under the lock: an erasure
 * deletes the contact's row, so it either committed before the lock (and is seen) or waits
 * for this transaction and deletes after it. Returns the locked rows and the ids left to fold.
 */
async function lockContacts(ops: BatchOps, byContact: Map<string, EventRow[]>, onLocked: (() => void) | undefined): Promise<{ contacts: Map<string, LockedContact>; ids: string[] }> {
  let ids = [...byContact.keys()].sort()
  const fresh = ids.map((id) => ({ contactId: id, clientId: (byContact.get(id) as EventRow[])[0]?.clientId ?? '' }))
  const contacts = new Map<string, LockedContact>()
  const { contacts: rows, erasures } = await ops.lockContacts(fresh)
  onLocked?.()
  for (const row of rows) contacts.set(row.contactId, row)
  for (const { contactId, erasedAt } of erasures) {
    const later = (byContact.get(contactId) as EventRow[]).filter((row) => row.at > erasedAt)
    if (later.length > 0) {
      byContact.set(contactId, later)
      continue
    }
    byContact.delete(contactId)
    // lockContacts re-created the row the erasure deleted.
    if (contacts.get(contactId)?.lastEventId == null) await ops.deleteContact(contactId)
  }
  if (erasures.length > 0) ids = [...byContact.keys()].sort()
  return { contacts, ids }
}

/** The open sessions the database did not read along with the lock, by id. */
async function readUnreadOpenSessions(ops: BatchOps, ids: readonly string[], contacts: Map<string, LockedContact>): Promise<Map<string, StoredSession>> {
  const unread = ids.flatMap((id) => {
    const contact = contacts.get(id) as LockedContact
    return contact.openSessionId !== null && contact.openSession === undefined ? [contact.openSessionId] : []
  })
  const openSessions = new Map<string, StoredSession>()
  if (unread.length > 0) for (const row of await ops.sessionsById(unread)) openSessions.set(row.id, row)
  return openSessions
}

/** The batch's locked contacts, and the rows their folds make, to be written at the end. */
class BatchFolds {
  readonly sessions: StoredSession[] = []
  readonly pages: PageVisitRow[] = []
  readonly contactRows: ContactRow[] = []

  constructor(
    private readonly contacts: Map<string, LockedContact>,
    private readonly unreadOpenSessions: Map<string, StoredSession>,
  ) {}

  contact(id: string): LockedContact {
    return this.contacts.get(id) as LockedContact
  }

  openSessionOf(contact: LockedContact): StoredSession | undefined {
    if (contact.openSessionId === null) return undefined
    return contact.openSession === undefined ? this.unreadOpenSessions.get(contact.openSessionId) : (contact.openSession ?? undefined)
  }

  /** The newest event id folded for the contact. */
  lastFolded(contact: LockedContact): string | null {
    return newer(contact.lastEventId, this.openSessionOf(contact)?.lastEventId ?? null)
  }

  /**
   * Collects a contact's rows: the fold's sessions (the open one with where it stopped), and the
   * contact row if it changed. `lastId`: the newest event id of this fold.
   */
  add(id: string, folded: Folded, foldedSessions: readonly SessionRow[], lastId: string | null): void {
    const contact = this.contact(id)
    const lastEventId = newer(this.lastFolded(contact), lastId)
    const open = folded.state?.session.id ?? null
    for (const row of foldedSessions as StoredSession[]) {
      // The fold's own rows: completed in place.
      row.lastEventId = row.id === open ? lastEventId : null
      row.foldState = row.id === open ? encodeFoldState(folded.state) : null
      this.sessions.push(row)
    }
    const clientId = folded.sessions[folded.sessions.length - 1]?.clientId ?? contact.clientId
    // While the same session stays open its row carries the newest event id: the contact row
    // is left as it is.
    if (open !== null && open === contact.openSessionId && clientId === contact.clientId && contact.lastEventId !== null) return
    if (open === null && contact.openSessionId === null && clientId === contact.clientId && lastEventId === contact.lastEventId) return
    this.contactRows.push({ contactId: id, clientId, openSessionId: open, lastEventId })
  }
}

/**
 * Which contacts continue from their stored state (every new event after what was folded), and
 * where the others' re-fold starts: the join before their oldest new event.
 */
async function planFolds(ops: BatchOps, ids: readonly string[], byContact: Map<string, EventRow[]>, batch: BatchFolds): Promise<{ continuing: string[]; refoldFrom: Map<string, string> }> {
  const continuing: string[] = []
  const refoldFrom = new Map<string, string>()
  for (const id of ids) {
    const first = ((byContact.get(id) as EventRow[])[0] as EventRow).id
    const last = batch.lastFolded(batch.contact(id))
    if (last === null || first > last) continuing.push(id)
    else refoldFrom.set(id, (await ops.joinBefore(id, first)) ?? first)
  }
  return { continuing, refoldFrom }
}

/** The stored tabs of the continuing contacts' open sessions, and the open pages they name. */
async function readOpenPages(ops: BatchOps, continuing: readonly string[], batch: BatchFolds): Promise<{ tabsByContact: Map<string, StoredTabs>; openPages: Map<string, PageVisitRow> }> {
  const tabsByContact = new Map<string, StoredTabs>()
  const pageIds: string[] = []
  for (const id of continuing) {
    const json = batch.openSessionOf(batch.contact(id))?.foldState
    if (json == null) continue
    const tabs = JSON.parse(json) as StoredTabs
    tabsByContact.set(id, tabs)
    for (const [, , pageId] of tabs) if (pageId !== null) pageIds.push(pageId)
  }
  const openPages = new Map<string, PageVisitRow>()
  if (pageIds.length > 0) for (const row of await ops.pagesById(pageIds)) openPages.set(row.id, row)
  return { tabsByContact, openPages }
}

/**
 * Folds a contact's new events on from its stored state and collects the rows that changed.
 * Returns where to re-fold from instead when rows the state refers to are gone.
 */
function continueFold(id: string, rows: readonly EventRow[], batch: BatchFolds, tabs: StoredTabs, openPages: Map<string, PageVisitRow>): string | undefined {
  const contact = batch.contact(id)
  const stored = batch.openSessionOf(contact)
  let from: FoldState | null = null
  if (contact.openSessionId !== null) {
    const open = tabs.map(([, , pageId]) => (pageId === null ? null : openPages.get(pageId)))
    // Rows the state refers to are gone (deleted by hand?): re-fold from the events.
    if (stored === undefined || open.includes(undefined)) return contact.openSessionId
    // (The fold copies the session row; the writer's own two fields ride along and are set again by add.)
    from = { session: stored, tabs: tabs.map(([sid, visible], i) => [sid, visible === 1, open[i] as PageVisitRow | null]) }
  }
  const folded = foldEvents(rows.map(fromEventRow), from)
  // Rows of the state the new events did not change are not written again (the open
  // session's is: it carries the newest event id).
  const openAtEnd = folded.state?.session.id
  batch.add(
    id,
    folded,
    folded.sessions.filter((row) => row.id === openAtEnd || !sameSession(row, stored)),
    (rows[rows.length - 1] as EventRow).id,
  )
  for (const row of folded.pages) if (!samePage(row, openPages.get(row.id))) batch.pages.push(row)
  return undefined
}

/** Folds the stored events of these contacts again from where each starts, replacing their rows from there. */
async function refold(ops: BatchOps, refoldFrom: Map<string, string>, batch: BatchFolds): Promise<void> {
  const ids = [...refoldFrom.keys()].sort()
  // One range per contact would be exact, but an OR of hundreds of ranges costs the
  // optimizer more than reading a few extra rows; those are dropped below.
  const earliest = [...refoldFrom.values()].reduce((earliestSoFar, id) => (id < earliestSoFar ? id : earliestSoFar))
  const storedEvents = new Map<string, ActivityEvent[]>()
  for (const row of await ops.eventsFrom(ids, earliest)) {
    if (row.id < (refoldFrom.get(row.contactId) as string)) continue
    const events = storedEvents.get(row.contactId)
    if (events === undefined) storedEvents.set(row.contactId, [fromEventRow(row)])
    else events.push(fromEventRow(row))
  }
  for (const id of ids) {
    const own = storedEvents.get(id) ?? []
    const folded = foldEvents(own)
    // Rows an earlier fold made from a different order of events (a page opened by an event
    // that now comes after its session's end, a session a late join cut short) are not in
    // this fold: everything from the start is replaced.
    await ops.deleteRowsFrom(id, refoldFrom.get(id) as string)
    batch.add(id, folded, folded.sessions, own.length > 0 ? (own[own.length - 1] as ActivityEvent).id : null)
    batch.pages.push(...folded.pages)
  }
}
