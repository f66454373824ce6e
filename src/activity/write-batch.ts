import type { LeaveReason } from '../presence/presence-engine.js'
import type { ActivityEvent, ActivityEventType } from './event-log/event-log.js'
import { sortableId } from './activity-store.js'
import { foldEvents, type FoldState, type PageVisitRow, type SessionRow } from './fold.js'

/** A cat_events row. */
export interface EventRow {
  id: string
  contactId: string
  clientId: string
  sid: string
  type: string
  path: string
  title: string
  at: number
  fromAt: number | null
  name: string | null
  company: string | null
  reason: string | null
}

/** A cat_contacts row: the writer's per-contact lock, the contact's open session and the newest event id folded. */
export interface ContactRow {
  contactId: string
  clientId: string
  openSessionId: string | null
  /**
   * The newest event id folded, as of the last time the row changed: while a session stays
   * open only the session row is rewritten, and its lastEventId is the newer one.
   */
  lastEventId: string | null
}

/** A cat_sessions row: the fold's, and for an open session where its fold stopped. */
export interface StoredSession extends SessionRow {
  /** Open session: the newest event id folded. */
  lastEventId: string | null
  /** Open session: its tabs (see encodeState). */
  foldState: string | null
}

/** A contact row as locked, with its open session's row when the database read it along. */
export interface LockedContact extends ContactRow {
  /** null: none stored; undefined: not read (the writer reads it by id). */
  openSession?: StoredSession | null
}

export function toRow(event: ActivityEvent): EventRow {
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

export function fromRow(row: EventRow): ActivityEvent {
  const event: ActivityEvent = { id: row.id, type: row.type as ActivityEventType, contactId: row.contactId, clientId: row.clientId, sid: row.sid, path: row.path, title: row.title, at: row.at }
  if (row.fromAt !== null) event.from = row.fromAt
  if (row.name !== null) event.name = row.name
  if (row.company !== null) event.company = row.company
  if (row.reason !== null) event.reason = row.reason as LeaveReason
  return event
}

/**
 * The statements of one batch, inside one transaction, for one dialect (MySQL: raw SQL on one
 * connection; SQLite: drizzle). Every list goes in as few statements as the database allows.
 */
export interface BatchOps {
  /**
   * Creates the missing contact rows and locks every one of them (in contact-id order, so two
   * writers seldom wait on each other in a cycle) and reads them; then, under those locks,
   * reads the contacts' erasures. After the lock, the rows are what the writer that held it
   * before committed.
   */
  lockContacts(fresh: readonly { contactId: string; clientId: string }[]): Promise<{ contacts: LockedContact[]; erasures: { contactId: string; erasedAt: number }[] }>
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

type StoredTabs = [sid: string, visible: 0 | 1, pageId: string | null][]

/**
 * The stored form of a fold state: its tabs, each with its visibility and the id of its open
 * page; kept on the open session's row. The session and the pages are rows of their own
 * tables, read back when the fold continues.
 */
export function encodeState(state: FoldState | null): string | null {
  if (state === null) return null
  const tabs: StoredTabs = state.tabs.map(([sid, visible, page]) => [sid, visible ? 1 : 0, page?.id ?? null])
  return JSON.stringify(tabs)
}

function sameSession(a: SessionRow, b: SessionRow | undefined): boolean {
  return (
    b !== undefined &&
    a.endedAt === b.endedAt &&
    a.visibleMs === b.visibleMs &&
    a.visibleSince === b.visibleSince &&
    a.endReason === b.endReason &&
    a.pagesCount === b.pagesCount &&
    a.lastEventAt === b.lastEventAt &&
    a.id === b.id &&
    a.contactId === b.contactId &&
    a.clientId === b.clientId &&
    a.name === b.name &&
    a.company === b.company &&
    a.startedAt === b.startedAt
  )
}

function samePage(a: PageVisitRow, b: PageVisitRow | undefined): boolean {
  return (
    b !== undefined &&
    a.endedAt === b.endedAt &&
    a.visibleMs === b.visibleMs &&
    a.visibleSince === b.visibleSince &&
    a.id === b.id &&
    a.sessionId === b.sessionId &&
    a.contactId === b.contactId &&
    a.sid === b.sid &&
    a.path === b.path &&
    a.title === b.title &&
    a.startedAt === b.startedAt
  )
}

const newer = (a: string | null, b: string | null): string | null => (a === null ? b : b === null || a > b ? a : b)

const byEventId = (a: EventRow, b: EventRow): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/**
 * Writes a batch of events: the raw events (idempotent on their id), then each contact's
 * sessions and page visits, under the contact's lock. Per contact:
 *
 * - its new events all come after what was folded (the usual case): the fold continues from
 *   the state stored with the open session (none open: from nothing) — no event is read back;
 * - an event is older than one already folded (a redelivery, another writer's batch that
 *   committed first, an event before its join), or the open session has no stored state
 *   (written before the state was kept): its stored events are folded again from the last
 *   join before the oldest new event (or from its open session), and its rows from there are
 *   replaced.
 *
 * Either way the rows and the state are those of one fold over all the contact's events in id
 * order, whatever the order in which batches commit. The contact row is rewritten only when
 * its open session changes (or while none is open); in between the open session row, which
 * changes with every event anyway, carries the newest event id and the state.
 */
export async function writeBatch(ops: BatchOps, events: readonly ActivityEvent[], onLocked?: () => void): Promise<void> {
  if (events.length === 0) return onLocked?.()
  const byContact = new Map<string, EventRow[]>()
  for (const event of events) {
    const row = toRow(event)
    const list = byContact.get(row.contactId)
    if (list === undefined) byContact.set(row.contactId, [row])
    else list.push(row)
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
  let ids = [...byContact.keys()].sort()

  // One writer per contact at a time: the rows are created if missing, then locked and read.
  const fresh = ids.map((id) => ({ contactId: id, clientId: (byContact.get(id) as EventRow[])[0]?.clientId ?? '' }))
  const state = new Map<string, LockedContact>()
  // Events of an erased contact that were still on their way are dropped, not revived. The
  // erasures are read under the lock: an erasure deletes the contact's row, so it either
  // committed before the lock (and is seen) or waits for this transaction and deletes after it.
  const { contacts, erasures: erased } = await ops.lockContacts(fresh)
  onLocked?.()
  for (const row of contacts) state.set(row.contactId, row)
  for (const { contactId, erasedAt } of erased) {
    const later = (byContact.get(contactId) as EventRow[]).filter((row) => row.at > erasedAt)
    if (later.length > 0) {
      byContact.set(contactId, later)
      continue
    }
    byContact.delete(contactId)
    // lockContacts re-created the row the erasure deleted.
    if (state.get(contactId)?.lastEventId == null) await ops.deleteContact(contactId)
  }
  if (erased.length > 0) ids = [...byContact.keys()].sort()
  if (ids.length === 0) return
  // Statements that do not depend on each other are issued together: on MySQL they still run
  // one after the other on the transaction's connection, without a wait in between.
  const inserted = ops.insertEvents(ids.flatMap((id) => byContact.get(id) as EventRow[]))
  inserted.catch(() => {}) // awaited below; a rejection meanwhile is not unhandled

  // The open sessions the database did not read along with the lock.
  const unread = ids.flatMap((id) => {
    const known = state.get(id) as LockedContact
    return known.openSessionId !== null && known.openSession === undefined ? [known.openSessionId] : []
  })
  const openSessions = new Map<string, StoredSession>()
  if (unread.length > 0) for (const row of await ops.sessionsById(unread)) openSessions.set(row.id, row)
  const openSessionOf = (known: LockedContact): StoredSession | undefined =>
    known.openSessionId === null ? undefined : known.openSession === undefined ? openSessions.get(known.openSessionId) : (known.openSession ?? undefined)
  /** The newest event id folded for the contact. */
  const lastFolded = (known: LockedContact): string | null => newer(known.lastEventId, openSessionOf(known)?.lastEventId ?? null)

  const sessions: StoredSession[] = []
  const pages: PageVisitRow[] = []
  const contactRows: ContactRow[] = []
  /** Collects a contact's rows: the fold's sessions (the open one with where it stopped), and the contact row if it changed. */
  const done = (id: string, folded: ReturnType<typeof foldEvents>, foldedSessions: readonly SessionRow[], lastId: string | null): void => {
    const known = state.get(id) as LockedContact
    const lastEventId = newer(lastFolded(known), lastId)
    const open = folded.state?.session.id ?? null
    for (const row of foldedSessions as StoredSession[]) {
      // The fold's own rows: completed in place.
      row.lastEventId = row.id === open ? lastEventId : null
      row.foldState = row.id === open ? encodeState(folded.state) : null
      sessions.push(row)
    }
    const clientId = folded.sessions[folded.sessions.length - 1]?.clientId ?? known.clientId
    // While the same session stays open its row carries the newest event id: the contact row
    // is left as it is.
    if (open !== null && open === known.openSessionId && clientId === known.clientId && known.lastEventId !== null) return
    if (open === null && known.openSessionId === null && clientId === known.clientId && lastEventId === known.lastEventId) return
    contactRows.push({ contactId: id, clientId, openSessionId: open, lastEventId })
  }

  // Which contacts continue from their stored state, and where the others' re-fold starts:
  // their open session, or, when an event arrives older than one already folded, the join
  // before it.
  const continuing: string[] = []
  const starts = new Map<string, string>()
  for (const id of ids) {
    const rows = byContact.get(id) as EventRow[]
    const first = (rows[0] as EventRow).id
    const known = state.get(id) as LockedContact
    const last = lastFolded(known)
    const inOrder = last === null || first > last
    if (inOrder && (known.openSessionId === null || openSessionOf(known)?.foldState != null)) {
      continuing.push(id)
      continue
    }
    const start = inOrder ? (known.openSessionId ?? first) : ((await ops.joinBefore(id, first)) ?? first)
    starts.set(id, start < first ? start : first)
  }

  // The open pages the continuing folds start from.
  const tabsOf = new Map<string, StoredTabs>()
  const pageIds: string[] = []
  for (const id of continuing) {
    const json = openSessionOf(state.get(id) as LockedContact)?.foldState
    if (json == null) continue
    const tabs = JSON.parse(json) as StoredTabs
    tabsOf.set(id, tabs)
    for (const [, , pageId] of tabs) if (pageId !== null) pageIds.push(pageId)
  }
  const openPages = new Map<string, PageVisitRow>()
  if (pageIds.length > 0) for (const row of await ops.pagesById(pageIds)) openPages.set(row.id, row)
  await inserted
  for (const id of continuing) {
    const rows = byContact.get(id) as EventRow[]
    const known = state.get(id) as LockedContact
    const stored = openSessionOf(known)
    let from: FoldState | null = null
    if (known.openSessionId !== null) {
      const tabs = tabsOf.get(id) ?? []
      const open = tabs.map(([, , pageId]) => (pageId === null ? null : openPages.get(pageId)))
      if (stored === undefined || open.includes(undefined)) {
        // Rows the state refers to are gone (deleted by hand?): re-fold from the events.
        starts.set(id, known.openSessionId)
        continue
      }
      // (The fold copies the session row; the writer's own two fields ride along and are set again below.)
      from = { session: stored, tabs: tabs.map(([sid, visible], i) => [sid, visible === 1, open[i] as PageVisitRow | null]) }
    }
    const folded = foldEvents(rows.map(fromRow), from)
    // Rows of the state the new events did not change are not written again (the open
    // session's is: it carries the newest event id).
    const openAtEnd = folded.state?.session.id
    done(
      id,
      folded,
      folded.sessions.filter((row) => row.id === openAtEnd || !sameSession(row, stored)),
      (rows[rows.length - 1] as EventRow).id,
    )
    for (const row of folded.pages) if (!samePage(row, openPages.get(row.id))) pages.push(row)
  }

  if (starts.size > 0) {
    const refold = [...starts.keys()].sort()
    // One range per contact would be exact, but an OR of hundreds of ranges costs the
    // optimizer more than reading a few extra rows; those are dropped below.
    const stored = new Map<string, ActivityEvent[]>()
    for (const row of await ops.eventsFrom(refold, [...starts.values()].reduce((a, b) => (b < a ? b : a)))) {
      if (row.id < (starts.get(row.contactId) as string)) continue
      const list = stored.get(row.contactId)
      if (list === undefined) stored.set(row.contactId, [fromRow(row)])
      else list.push(fromRow(row))
    }
    for (const id of refold) {
      const own = stored.get(id) ?? []
      const folded = foldEvents(own)
      // Rows an earlier fold made from a different order of events (a page opened by an event
      // that now comes after its session's end, a session a late join cut short) are not in
      // this fold: everything from the start is replaced.
      await ops.deleteRowsFrom(id, starts.get(id) as string)
      done(id, folded, folded.sessions, own.length > 0 ? (own[own.length - 1] as ActivityEvent).id : null)
      pages.push(...folded.pages)
    }
  }
  await Promise.all([ops.upsertSessions(sessions), ops.upsertPages(pages), ops.upsertContacts(contactRows)])
}
