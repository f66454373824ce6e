import type { ActivityEvent, ActivityEventType, LeaveReason } from '../presence/presence-engine.js'
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

/** A cat_contacts row: the writer's per-contact lock and where its fold stopped. */
export interface ContactRow {
  contactId: string
  clientId: string
  openSessionId: string | null
  lastEventId: string | null
  /** Where the fold of the open session stopped: its tabs (see encodeState). */
  foldState: string | null
  /** The open session's row, when lockContacts read it along (else undefined: read by id). */
  openSession?: SessionRow | null
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
   * writers seldom wait on each other in a cycle) and reads them. After the lock, the rows are
   * what the writer that held it before committed.
   */
  lockContacts(fresh: readonly { contactId: string; clientId: string }[]): Promise<ContactRow[]>
  erasures(contactIds: readonly string[]): Promise<{ contactId: string; erasedAt: number }[]>
  deleteContact(contactId: string): Promise<void>
  /** Inserts events, ignoring ids already stored. */
  insertEvents(rows: readonly EventRow[]): Promise<void>
  /** Sessions and page visits by id (those of open sessions, to continue their fold). */
  sessionsById(ids: readonly string[]): Promise<SessionRow[]>
  pagesById(ids: readonly string[]): Promise<PageVisitRow[]>
  /** The id of the contact's newest join before `id`. */
  joinBefore(contactId: string, id: string): Promise<string | undefined>
  /** Deletes the contact's sessions and page visits with an id at or after `from` (before a re-fold from there). */
  deleteRowsFrom(contactId: string, from: string): Promise<void>
  /** The stored events of these contacts with an id at or after `from`, in id order. */
  eventsFrom(contactIds: readonly string[], from: string): Promise<EventRow[]>
  /** Insert or overwrite, by primary key. */
  upsertSessions(rows: readonly SessionRow[]): Promise<void>
  upsertPages(rows: readonly PageVisitRow[]): Promise<void>
  upsertContacts(rows: readonly ContactRow[]): Promise<void>
}

type StoredTabs = [sid: string, visible: 0 | 1, pageId: string | null][]

/**
 * The stored form of a fold state: its tabs, each with its visibility and the id of its open
 * page. The session (the contact's open_session_id) and the pages are rows of their own
 * tables, read back when the fold continues: the contact row stays small.
 */
export function encodeState(state: FoldState | null): string | null {
  if (state === null) return null
  const tabs: StoredTabs = state.tabs.map(([sid, visible, page]) => [sid, visible ? 1 : 0, page?.id ?? null])
  return JSON.stringify(tabs)
}

function decodeTabs(json: string): StoredTabs {
  return JSON.parse(json) as StoredTabs
}

/** Whether an upsert would change the stored row. */
function same<T extends object>(a: T, b: T | undefined): boolean {
  if (b === undefined) return false
  for (const key of Object.keys(a) as (keyof T)[]) if (a[key] !== b[key]) return false
  return true
}

/**
 * Writes a batch of events: the raw events (idempotent on their id), then each contact's
 * sessions and page visits, under the contact's lock. Per contact:
 *
 * - its new events all come after what was folded (the usual case): the fold continues from
 *   the state stored with the contact — no event is read back;
 * - an event is older than one already folded (a redelivery, another writer's batch that
 *   committed first, an event before its join), or the contact has an open session but no
 *   stored state (written before the state was kept): its stored events are folded again from
 *   the last join before the oldest new event (or from its open session), and its rows from
 *   there are replaced.
 *
 * Either way the rows and the state are those of one fold over all the contact's events in id
 * order, whatever the order in which batches commit.
 */
export async function writeBatch(ops: BatchOps, events: readonly ActivityEvent[]): Promise<void> {
  if (events.length === 0) return
  const byContact = new Map<string, EventRow[]>()
  for (const event of events) {
    const row = toRow(event)
    const list = byContact.get(row.contactId)
    if (list === undefined) byContact.set(row.contactId, [row])
    else list.push(row)
  }
  for (const [id, rows] of byContact) {
    rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    // The same event twice in one batch (a redelivery of a redelivery) is one event.
    byContact.set(
      id,
      rows.filter((row, i) => i === 0 || (rows[i - 1] as EventRow).id !== row.id),
    )
  }
  let ids = [...byContact.keys()].sort()

  // One writer per contact at a time: the rows are created if missing, then locked and read.
  const fresh = ids.map((id) => ({ contactId: id, clientId: (byContact.get(id) as EventRow[])[0]?.clientId ?? '' }))
  const state = new Map((await ops.lockContacts(fresh)).map((row) => [row.contactId, row]))

  // Events of an erased contact that were still on their way are dropped, not revived. Read
  // under the lock: an erasure deletes the contact's row, so it either committed before the
  // lock (and is seen here) or waits for this transaction and deletes after it.
  const erased = await ops.erasures(ids)
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
  await ops.insertEvents(ids.flatMap((id) => byContact.get(id) as EventRow[]))

  const sessions: SessionRow[] = []
  const pages: PageVisitRow[] = []
  const contactRows: ContactRow[] = []
  const done = (id: string, folded: ReturnType<typeof foldEvents>, lastId: string | null): void => {
    const known = state.get(id)
    const lastEventId = known?.lastEventId != null && (lastId === null || known.lastEventId > lastId) ? known.lastEventId : lastId
    contactRows.push({
      contactId: id,
      clientId: folded.sessions[folded.sessions.length - 1]?.clientId ?? known?.clientId ?? (byContact.get(id) as EventRow[])[0]?.clientId ?? '',
      openSessionId: folded.state?.session.id ?? null,
      lastEventId,
      foldState: encodeState(folded.state),
    })
  }

  // Which contacts continue from their stored state, and where the others' re-fold starts:
  // their open session, or, when an event arrives older than one already folded, the join
  // before it.
  const continuing: string[] = []
  const starts = new Map<string, string>()
  for (const id of ids) {
    const rows = byContact.get(id) as EventRow[]
    const first = (rows[0] as EventRow).id
    const known = state.get(id)
    const inOrder = known?.lastEventId == null || first > known.lastEventId
    const openSessionId = known?.openSessionId ?? null
    if (inOrder && (openSessionId === null || known?.foldState != null)) {
      continuing.push(id)
      continue
    }
    const start = inOrder ? (openSessionId ?? first) : ((await ops.joinBefore(id, first)) ?? first)
    starts.set(id, start < first ? start : first)
  }

  // The open sessions and open pages the continuing folds start from.
  const tabsOf = new Map<string, StoredTabs>()
  for (const id of continuing) {
    const json = state.get(id)?.foldState
    if (state.get(id)?.openSessionId != null && json != null) tabsOf.set(id, decodeTabs(json))
  }
  const openSessions = new Map<string, SessionRow>()
  const openPages = new Map<string, PageVisitRow>()
  if (tabsOf.size > 0) {
    const unread: string[] = []
    for (const id of tabsOf.keys()) {
      const known = state.get(id) as ContactRow
      if (known.openSession === undefined) unread.push(known.openSessionId as string)
      else if (known.openSession !== null) openSessions.set(known.openSession.id, known.openSession)
    }
    if (unread.length > 0) for (const row of await ops.sessionsById(unread)) openSessions.set(row.id, row)
    const pageIds = [...tabsOf.values()].flatMap((tabs) => tabs.flatMap(([, , pageId]) => (pageId === null ? [] : [pageId])))
    if (pageIds.length > 0) for (const row of await ops.pagesById(pageIds)) openPages.set(row.id, row)
  }
  for (const id of continuing) {
    const rows = byContact.get(id) as EventRow[]
    const tabs = tabsOf.get(id)
    let from: FoldState | null = null
    if (tabs !== undefined) {
      const session = openSessions.get(state.get(id)?.openSessionId as string)
      const pages = tabs.map(([, , pageId]) => (pageId === null ? null : openPages.get(pageId)))
      if (session === undefined || pages.includes(undefined)) {
        // Rows the state refers to are gone (deleted by hand?): re-fold from the events.
        starts.set(id, state.get(id)?.openSessionId as string)
        continue
      }
      from = { session, tabs: tabs.map(([sid, visible], i) => [sid, visible === 1, pages[i] as PageVisitRow | null]) }
    }
    const folded = foldEvents(rows.map(fromRow), from)
    // Rows of the state the new events did not change are not written again.
    sessions.push(...folded.sessions.filter((row) => !same(row, openSessions.get(row.id))))
    pages.push(...folded.pages.filter((row) => !same(row, openPages.get(row.id))))
    done(id, folded, (rows[rows.length - 1] as EventRow).id)
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
      sessions.push(...folded.sessions)
      pages.push(...folded.pages)
      done(id, folded, own.length > 0 ? (own[own.length - 1] as ActivityEvent).id : null)
    }
  }
  await ops.upsertSessions(sessions)
  await ops.upsertPages(pages)
  await ops.upsertContacts(contactRows)
}
