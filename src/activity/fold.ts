import type { ActivityEvent } from './event-log/event-log.js'

/** A session as stored: from a contact's join to its end. Times in ms. */
export interface SessionRow {
  /** The id of the join event that started it. */
  id: string
  contactId: string
  clientId: string
  name: string
  company: string
  startedAt: number
  endedAt: number | null
  /** Visible time credited so far. */
  visibleMs: number
  /** While some tab is visible: when the running visible period began. */
  visibleSince: number | null
  endReason: string | null
  pagesCount: number
  lastEventAt: number
}

/** One page shown in one tab: from its nav to the next nav of the tab, or the tab's end. */
export interface PageVisitRow {
  /** The id of the join or nav event that opened it. */
  id: string
  sessionId: string
  contactId: string
  sid: string
  path: string
  title: string
  startedAt: number
  endedAt: number | null
  visibleMs: number
  visibleSince: number | null
}

interface Tab {
  visible: boolean
  page: PageVisitRow | undefined
}

/**
 * Where a fold stopped: the open session and its tabs (each with its open page, if any). With
 * no open session there is nothing to carry (an end clears the tabs; before a join nothing is
 * folded). Plain JSON: the writer stores it with the contact, so that new events that come
 * after everything folded continue from it without reading the session's events again.
 */
export interface FoldState {
  session: SessionRow
  tabs: [sid: string, visible: boolean, page: PageVisitRow | null][]
}

function credit(row: { visibleMs: number; visibleSince: number | null }, until: number): void {
  if (row.visibleSince === null) return
  row.visibleMs += Math.max(0, until - row.visibleSince)
  row.visibleSince = Math.max(row.visibleSince, until)
}

function anyVisible(tabs: Map<string, Tab>): boolean {
  for (const tab of tabs.values()) if (tab.visible) return true
  return false
}

function openPage(pages: PageVisitRow[], event: ActivityEvent, sessionId: string): PageVisitRow {
  const page: PageVisitRow = {
    id: event.id,
    sessionId,
    contactId: event.contactId,
    sid: event.sid,
    path: event.path,
    title: event.title,
    startedAt: event.at,
    endedAt: null,
    visibleMs: 0,
    visibleSince: event.at,
  }
  pages.push(page)
  return page
}

function closePage(page: PageVisitRow | undefined, at: number): void {
  if (page === undefined || page.endedAt !== null) return
  credit(page, at)
  page.visibleSince = null
  page.endedAt = at
}

/** Ends the session and its tabs' pages (the caller forgets the session). */
function closeSession(open: SessionRow, tabs: Map<string, Tab>, at: number, reason: string): void {
  for (const tab of tabs.values()) closePage(tab.page, at)
  tabs.clear()
  credit(open, at)
  open.visibleSince = null
  open.endedAt = at
  open.endReason = reason
}

/**
 * Turns one contact's events, in id order, into sessions and page visits. Pure: the writer
 * continues it from the stored state when new events all come after what was folded, and runs
 * it again over the stored events from the join before an older one (a redelivery, another
 * writer), so the result never depends on the order in which writers happened to commit.
 *
 * Visible time: a session is credited while at least one of its tabs is visible, a page
 * while its own tab is; `hidden` stops the credit, `visible` restarts it, a `gap` (a late beat:
 * a sleeping laptop) credits nothing between the last beat before it and the beat after it,
 * and an expiry ends the session at the last time the contact was seen. Events before the
 * first `join` (their join is not written yet) are left for a later pass.
 *
 * `from` continues an earlier fold: `foldEvents(b, foldEvents(a).state)` gives the same rows
 * as `foldEvents([...a, ...b])` for the session open at the end of `a` and everything after
 * (rows closed within `a` are not repeated). `state` is where this fold stopped; it shares its
 * objects with the rows returned, and the fold copies what it continues from.
 */
export function foldEvents(events: readonly ActivityEvent[], from: FoldState | null = null): { sessions: SessionRow[]; pages: PageVisitRow[]; state: FoldState | null } {
  const fold = new ContactFold(from)
  for (const event of events) fold.apply(event)
  return fold.result()
}

/** One fold in progress: the rows made so far, the open session and its tabs. */
class ContactFold {
  readonly sessions: SessionRow[] = []
  readonly pages: PageVisitRow[] = []
  session: SessionRow | undefined
  readonly tabs = new Map<string, Tab>()

  constructor(from: FoldState | null) {
    if (from === null) return
    // Continuing: the open session and open pages are the rows the new events may change.
    this.session = { ...from.session }
    this.sessions.push(this.session)
    for (const [sid, visible, stored] of from.tabs) {
      const page = stored === null ? undefined : { ...stored }
      if (page !== undefined) this.pages.push(page)
      this.tabs.set(sid, { visible, page })
    }
  }

  apply(event: ActivityEvent): void {
    if (event.type === 'join') return this.join(event)
    const { session } = this
    if (session === undefined) return
    session.lastEventAt = Math.max(session.lastEventAt, event.at)
    const tab = this.tabs.get(event.sid)
    switch (event.type) {
      case 'nav':
        return this.nav(session, tab, event)
      case 'visible':
        return this.visible(session, tab, event)
      case 'hidden':
        return this.hidden(session, tab, event.at)
      case 'leave':
        return this.leave(session, tab, event)
      case 'gap':
        return gap(session, tab, event)
      case 'end':
        closeSession(session, this.tabs, event.at, event.reason ?? 'leave')
        this.session = undefined
    }
  }

  /** The state shares its session and pages with the rows returned: no copies, a writer continues hundreds of folds per batch. */
  result(): { sessions: SessionRow[]; pages: PageVisitRow[]; state: FoldState | null } {
    const { session, tabs } = this
    const state: FoldState | null = session === undefined ? null : { session, tabs: [...tabs].map(([sid, tab]) => [sid, tab.visible, tab.page ?? null]) }
    return { sessions: this.sessions, pages: this.pages, state }
  }

  private join(event: ActivityEvent): void {
    const { at } = event
    // A join while a session is open means its end was lost: it ended when last heard of.
    if (this.session !== undefined) closeSession(this.session, this.tabs, this.session.lastEventAt, 'timeout')
    const session: SessionRow = {
      id: event.id,
      contactId: event.contactId,
      clientId: event.clientId,
      name: event.name ?? '',
      company: event.company ?? '',
      startedAt: at,
      endedAt: null,
      visibleMs: 0,
      visibleSince: at,
      endReason: null,
      pagesCount: 1,
      lastEventAt: at,
    }
    this.session = session
    this.sessions.push(session)
    this.tabs.set(event.sid, { visible: true, page: openPage(this.pages, event, session.id) })
  }

  private nav(session: SessionRow, tab: Tab | undefined, event: ActivityEvent): void {
    closePage(tab?.page, event.at)
    if (!anyVisible(this.tabs)) session.visibleSince = event.at
    this.tabs.set(event.sid, { visible: true, page: openPage(this.pages, event, session.id) })
    session.pagesCount += 1
  }

  private visible(session: SessionRow, tab: Tab | undefined, event: ActivityEvent): void {
    if (tab?.visible === true) return
    if (!anyVisible(this.tabs)) session.visibleSince = event.at
    if (tab === undefined) this.tabs.set(event.sid, { visible: true, page: undefined })
    else {
      tab.visible = true
      if (tab.page !== undefined) tab.page.visibleSince = event.at
    }
  }

  private hidden(session: SessionRow, tab: Tab | undefined, at: number): void {
    if (tab === undefined || !tab.visible) return
    tab.visible = false
    if (tab.page !== undefined) {
      credit(tab.page, at)
      tab.page.visibleSince = null
    }
    if (!anyVisible(this.tabs)) {
      credit(session, at)
      session.visibleSince = null
    }
  }

  private leave(session: SessionRow, tab: Tab | undefined, event: ActivityEvent): void {
    if (tab === undefined) return
    closePage(tab.page, event.at)
    this.tabs.delete(event.sid)
    if (tab.visible && !anyVisible(this.tabs)) {
      credit(session, event.at)
      session.visibleSince = null
    }
  }
}

/** A late beat: nothing is credited between the last beat before it (`from`) and it. */
function gap(session: SessionRow, tab: Tab | undefined, event: ActivityEvent): void {
  const from = event.from ?? event.at
  for (const row of [session, tab?.page]) {
    if (row === undefined || row.visibleSince === null) continue
    credit(row, from)
    row.visibleSince = Math.max(row.visibleSince, event.at)
  }
}
