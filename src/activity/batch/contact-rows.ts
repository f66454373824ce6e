import type { LeaveReason } from '../../presence/presence-engine.js'
import type { ActivityEvent, ActivityEventType } from '../event-log/event-log.js'
import { sortableId } from '../activity-store.js'
import type { FoldState, PageVisitRow, SessionRow } from '../fold.js'

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
  /** Open session: its tabs (see encodeFoldState). */
  foldState: string | null
}

/** A contact row as locked, with its open session's row when the database read it along. */
export interface LockedContact extends ContactRow {
  /** null: none stored; undefined: not read (the writer reads it by id). */
  openSession?: StoredSession | null
}

export function toEventRow(event: ActivityEvent): EventRow {
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

export function fromEventRow(row: EventRow): ActivityEvent {
  const event: ActivityEvent = { id: row.id, type: row.type as ActivityEventType, contactId: row.contactId, clientId: row.clientId, sid: row.sid, path: row.path, title: row.title, at: row.at }
  if (row.fromAt !== null) event.from = row.fromAt
  if (row.name !== null) event.name = row.name
  if (row.company !== null) event.company = row.company
  if (row.reason !== null) event.reason = row.reason as LeaveReason
  return event
}

/** The stored tabs of an open session: each with its visibility and the id of its open page. */
export type StoredTabs = [sid: string, visible: 0 | 1, pageId: string | null][]

/**
 * The stored form of a fold state: its tabs, kept on the open session's row. The session and
 * the pages are rows of their own tables, read back when the fold continues.
 */
export function encodeFoldState(state: FoldState | null): string | null {
  if (state === null) return null
  const tabs: StoredTabs = state.tabs.map(([sid, visible, page]) => [sid, visible ? 1 : 0, page?.id ?? null])
  return JSON.stringify(tabs)
}

/** Whether a stored session row already holds what the fold made (so it need not be written again). */
export function sameSession(folded: SessionRow, stored: SessionRow | undefined): boolean {
  return (
    stored !== undefined &&
    folded.endedAt === stored.endedAt &&
    folded.visibleMs === stored.visibleMs &&
    folded.visibleSince === stored.visibleSince &&
    folded.endReason === stored.endReason &&
    folded.pagesCount === stored.pagesCount &&
    folded.lastEventAt === stored.lastEventAt &&
    folded.id === stored.id &&
    folded.contactId === stored.contactId &&
    folded.clientId === stored.clientId &&
    folded.name === stored.name &&
    folded.company === stored.company &&
    folded.startedAt === stored.startedAt
  )
}

/** Whether a stored page visit row already holds what the fold made. */
export function samePage(folded: PageVisitRow, stored: PageVisitRow | undefined): boolean {
  return (
    stored !== undefined &&
    folded.endedAt === stored.endedAt &&
    folded.visibleMs === stored.visibleMs &&
    folded.visibleSince === stored.visibleSince &&
    folded.id === stored.id &&
    folded.sessionId === stored.sessionId &&
    folded.contactId === stored.contactId &&
    folded.sid === stored.sid &&
    folded.path === stored.path &&
    folded.title === stored.title &&
    folded.startedAt === stored.startedAt
  )
}
